import { Command } from "commander";
import type { Context } from "../context.js";
import { parseOutputs } from "../options.js";
import { describeOutput, timingLine } from "../report.js";
import { type Options, runOptions, runWithProgress } from "./common.js";

export function backwardCommand(ctx: Context): Command {
  const cmd = new Command("backward")
    .description("gradients of GroupNorm: write dX, dgamma and dbeta")
    .argument("<DY.npy>", "upstream gradient, same shape as X")
    .argument("<X.npy>", "the forward input")
    .option("--gamma <file>", "per-channel scale used in the forward pass (enables dgamma, dbeta)")
    .option("--mean <file>", "forward mean, shape (N, G) (with --rstd; default: recomputed from X)")
    .option("--rstd <file>", "forward rstd, shape (N, G)")
    .option("--outputs <list>", "which of dx,dgamma,dbeta to write (default: dx, and dgamma,dbeta with --gamma)")
    .option("--out-dir <dir>", "folder for dX.npy, dgamma.npy, dbeta.npy (created if missing)", ".")
    .option("--dx <file>", "write dX here instead")
    .option("--dgamma <file>", "write dgamma here instead")
    .option("--dbeta <file>", "write dbeta here instead");
  return runOptions(cmd).action((dy: string, x: string, o: Options) => {
    const outputs = o.outputs !== undefined ? parseOutputs(o.outputs as string) : undefined;
    return runWithProgress(
      ctx,
      o,
      "backward",
      async (engine, s, onProgress) => {
        const { runBackward } = await import("../../pipeline/backward.js");
        return runBackward(engine, {
          ...s,
          dy,
          x,
          gamma: o.gamma as string | undefined,
          mean: o.mean as string | undefined,
          rstd: o.rstd as string | undefined,
          outputs,
          dxPath: o.dx as string | undefined,
          dgammaPath: o.dgamma as string | undefined,
          dbetaPath: o.dbeta as string | undefined,
          onProgress,
        });
      },
      (r) => {
        const c = ctx.console.out;
        ctx.console.info(`${c.green("backward")} ${dy} ${x}: shape (${r.input.shape.join(", ")}) ${r.input.dtype}, ${r.layout}, G=${r.groups}, statistics ${r.statistics}`);
        if (r.outputs.dx) ctx.console.info(describeOutput(c, "dX", r.outputs.dx, r.input.dtype, r.input.shape));
        if (r.outputs.dgamma) ctx.console.info(describeOutput(c, "dgamma", r.outputs.dgamma, r.input.dtype, [r.dims.C]));
        if (r.outputs.dbeta) ctx.console.info(describeOutput(c, "dbeta", r.outputs.dbeta, r.input.dtype, [r.dims.C]));
        ctx.console.info(timingLine(c, r));
      },
    );
  });
}
