import { Command } from "commander";
import { DEFAULT_MEMORY } from "../../pipeline/slices.js";
import type { Context } from "../context.js";
import { parseEps, parseGroups, parseLayoutOption, parseSize, parseThreads } from "../options.js";
import { describeOutput, progressFor, timingLine } from "../report.js";

export function forwardCommand(ctx: Context): Command {
  return new Command("forward")
    .description("normalise X: write Y, mean and rstd")
    .argument("<X.npy>", "input tensor, (N, C, *spatial) or with --layout nhwc (N, *spatial, C)")
    .option("--groups <G>", "number of groups; must divide C")
    .option("--gamma <file>", "per-channel scale, shape (C,) (default 1)")
    .option("--beta <file>", "per-channel shift, shape (C,) (default 0)")
    .option("--eps <eps>", "added to the variance", "1e-5")
    .option("--layout <layout>", "nchw or nhwc", "nchw")
    .option("--out-dir <dir>", "folder for Y.npy, mean.npy, rstd.npy (created if missing)", ".")
    .option("--y <file>", "write Y here instead")
    .option("--mean <file>", "write mean here instead")
    .option("--rstd <file>", "write rstd here instead")
    .option("--threads <K>", "worker threads (default: available cores)")
    .option("--memory <size>", "memory budget for the slices in flight, e.g. 256M or 2G (default 384M)")
    .option("--json", "print a JSON report on stdout")
    .option("--quiet", "print nothing on success")
    .action(async (x: string, o: Record<string, string | boolean | undefined>) => {
      const groups = parseGroups(o.groups as string | undefined);
      const eps = parseEps(o.eps as string);
      const layout = parseLayoutOption(o.layout as string);
      const threads = parseThreads(o.threads as string | undefined);
      const memoryBudget = o.memory ? parseSize(o.memory as string, "--memory") : DEFAULT_MEMORY;
      ctx.console.json = !!o.json;
      ctx.console.quiet = !!o.quiet;
      const engine = await ctx.engine(threads);
      const progress = progressFor(ctx.console, "forward");
      try {
        const { runForward } = await import("../../pipeline/forward.js");
        const r = await runForward(engine, {
          x,
          groups,
          gamma: o.gamma as string | undefined,
          beta: o.beta as string | undefined,
          eps,
          layout,
          outDir: o.outDir as string,
          y: o.y as string | undefined,
          mean: o.mean as string | undefined,
          rstd: o.rstd as string | undefined,
          memoryBudget,
          onProgress: progress.update,
        });
        progress.stop();
        if (o.json) ctx.console.document(r);
        else {
          const c = ctx.console.out;
          ctx.console.info(`${c.green("forward")} ${x}: shape (${r.input.shape.join(", ")}) ${r.input.dtype}, ${r.layout}, G=${r.groups}, eps=${r.eps}`);
          ctx.console.info(describeOutput(c, "Y", r.outputs.y, r.dtypes.y, r.input.shape));
          ctx.console.info(describeOutput(c, "mean", r.outputs.mean, r.dtypes.mean, [r.dims.N, r.dims.G]));
          ctx.console.info(describeOutput(c, "rstd", r.outputs.rstd, r.dtypes.rstd, [r.dims.N, r.dims.G]));
          ctx.console.info(timingLine(c, r));
        }
      } finally {
        progress.stop();
      }
    });
}
