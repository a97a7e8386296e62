import { Command } from "commander";
import { parseOutputs } from "../options.js";
import { DEFAULT_MEMORY } from "../../pipeline/slices.js";
import type { Context } from "../context.js";
import { parseEps, parseGroups, parseLayoutOption, parseSize, parseThreads } from "../options.js";
import { describeOutput, progressFor, timingLine } from "../report.js";

export function backwardCommand(ctx: Context): Command {
  return new Command("backward")
    .description("gradients of GroupNorm: write dX, dgamma and dbeta")
    .argument("<DY.npy>", "upstream gradient, same shape as X")
    .argument("<X.npy>", "the forward input")
    .option("--groups <G>", "number of groups; must divide C")
    .option("--gamma <file>", "per-channel scale used in the forward pass (enables dgamma, dbeta)")
    .option("--mean <file>", "forward mean, shape (N, G) (with --rstd; default: recomputed from X)")
    .option("--rstd <file>", "forward rstd, shape (N, G)")
    .option("--eps <eps>", "added to the variance when recomputing statistics", "1e-5")
    .option("--layout <layout>", "nchw or nhwc", "nchw")
    .option("--outputs <list>", "which of dx,dgamma,dbeta to write (default: dx, and dgamma,dbeta with --gamma)")
    .option("--out-dir <dir>", "folder for dX.npy, dgamma.npy, dbeta.npy (created if missing)", ".")
    .option("--dx <file>", "write dX here instead")
    .option("--dgamma <file>", "write dgamma here instead")
    .option("--dbeta <file>", "write dbeta here instead")
    .option("--threads <K>", "worker threads (default: available cores)")
    .option("--memory <size>", "memory budget for the slices in flight, e.g. 256M or 2G (default 384M)")
    .option("--json", "print a JSON report on stdout")
    .option("--quiet", "print nothing on success")
    .action(async (dy: string, x: string, o: Record<string, string | boolean | undefined>) => {
      const groups = parseGroups(o.groups as string | undefined);
      const eps = parseEps(o.eps as string);
      const layout = parseLayoutOption(o.layout as string);
      const threads = parseThreads(o.threads as string | undefined);
      const outputs = o.outputs !== undefined ? parseOutputs(o.outputs as string) : undefined;
      const memoryBudget = o.memory ? parseSize(o.memory as string, "--memory") : DEFAULT_MEMORY;
      ctx.console.json = !!o.json;
      ctx.console.quiet = !!o.quiet;
      const engine = await ctx.engine(threads);
      const progress = progressFor(ctx.console, "backward");
      try {
        const { runBackward } = await import("../../pipeline/backward.js");
        const r = await runBackward(engine, {
          dy,
          x,
          groups,
          gamma: o.gamma as string | undefined,
          mean: o.mean as string | undefined,
          rstd: o.rstd as string | undefined,
          eps,
          layout,
          outputs,
          outDir: o.outDir as string,
          dxPath: o.dx as string | undefined,
          dgammaPath: o.dgamma as string | undefined,
          dbetaPath: o.dbeta as string | undefined,
          memoryBudget,
          onProgress: progress.update,
        });
        progress.stop();
        if (o.json) ctx.console.document(r);
        else {
          const c = ctx.console.out;
          ctx.console.info(`${c.green("backward")} ${dy} ${x}: shape (${r.input.shape.join(", ")}) ${r.input.dtype}, ${r.layout}, G=${r.groups}, statistics ${r.statistics}`);
          if (r.outputs.dx) ctx.console.info(describeOutput(c, "dX", r.outputs.dx, r.input.dtype, r.input.shape));
          if (r.outputs.dgamma) ctx.console.info(describeOutput(c, "dgamma", r.outputs.dgamma, r.input.dtype, [r.dims.C]));
          if (r.outputs.dbeta) ctx.console.info(describeOutput(c, "dbeta", r.outputs.dbeta, r.input.dtype, [r.dims.C]));
          ctx.console.info(timingLine(c, r));
        }
      } finally {
        progress.stop();
      }
    });
}
