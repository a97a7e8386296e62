import { Command } from "commander";
import type { Context } from "../context.js";
import { describeOutput, timingLine } from "../report.js";
import { type Options, runOptions, runWithProgress } from "./common.js";

export function forwardCommand(ctx: Context): Command {
  const cmd = new Command("forward")
    .description("normalise X: write Y, mean and rstd")
    .argument("<X.npy>", "input tensor, (N, C, *spatial) or with --layout nhwc (N, *spatial, C)")
    .option("--gamma <file>", "per-channel scale, shape (C,) (default 1)")
    .option("--beta <file>", "per-channel shift, shape (C,) (default 0)")
    .option("--out-dir <dir>", "folder for Y.npy, mean.npy, rstd.npy (created if missing)", ".")
    .option("--y <file>", "write Y here instead")
    .option("--mean <file>", "write mean here instead")
    .option("--rstd <file>", "write rstd here instead");
  return runOptions(cmd).action((x: string, o: Options) =>
    runWithProgress(
      ctx,
      o,
      "forward",
      async (engine, s, onProgress) => {
        const { runForward } = await import("../../pipeline/forward.js");
        return runForward(engine, {
          ...s,
          x,
          gamma: o.gamma as string | undefined,
          beta: o.beta as string | undefined,
          y: o.y as string | undefined,
          mean: o.mean as string | undefined,
          rstd: o.rstd as string | undefined,
          onProgress,
        });
      },
      (r) => {
        const c = ctx.console.out;
        ctx.console.info(`${c.green("forward")} ${x}: shape (${r.input.shape.join(", ")}) ${r.input.dtype}, ${r.layout}, G=${r.groups}, eps=${r.eps}`);
        ctx.console.info(describeOutput(c, "Y", r.outputs.y, r.dtypes.y, r.input.shape));
        ctx.console.info(describeOutput(c, "mean", r.outputs.mean, r.dtypes.mean, [r.dims.N, r.dims.G]));
        ctx.console.info(describeOutput(c, "rstd", r.outputs.rstd, r.dtypes.rstd, [r.dims.N, r.dims.G]));
        ctx.console.info(timingLine(c, r));
      },
    ),
  );
}
