/** `groupnorm forward X --groups G …`: parse, call forwardFiles, print. */
import { forwardFiles } from "../../api/forward.js";
import { defineCommand } from "../command.js";
import { describeOutput, progressFor, timingLine } from "../report.js";

export const forwardCommand = defineCommand({
  name: "forward",
  description: "normalise X: write Y, mean and rstd",
  args: [["<X.npy>", "input tensor, (N, C, *spatial), or (N, *spatial, C) with --layout nhwc"]],
  flags: ["groups", "gamma", "beta", "eps", "layout", "outDir", "y", "mean", "rstd", "threads", "memory"],
  required: ["groups"],
  help: {
    outDir: "folder for Y.npy, mean.npy, rstd.npy, created with parents if missing",
    mean: "write mean here instead of DIR/mean.npy",
    rstd: "write rstd here instead of DIR/rstd.npy",
  },
  examples: [
    "groupnorm forward x.npy --groups 32 --gamma gamma.npy --beta beta.npy --out-dir out/",
    "groupnorm forward act.npy --groups 8 --layout nhwc --y act_norm.npy --json",
  ],
  async run(ctx, [x], f) {
    const engine = ctx.engine(f.threads);
    const progress = progressFor(ctx.console, "forward");
    const r = await forwardFiles({ x, groups: f.groups!, gamma: f.gamma, beta: f.beta, eps: f.eps, layout: f.layout, outDir: f.outDir, y: f.y, mean: f.mean, rstd: f.rstd, memory: f.memory, engine, onProgress: progress.update }).finally(progress.stop);
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    ctx.console.info(`${c.green("forward")} ${x}: shape (${r.input.shape.join(", ")}) ${r.input.dtype}, ${r.layout}, G=${r.groups}, eps=${r.eps}`);
    ctx.console.info(describeOutput(c, "Y", r.outputs.y, r.dtypes.y, r.input.shape));
    ctx.console.info(describeOutput(c, "mean", r.outputs.mean, r.dtypes.mean, [r.dims.N, r.dims.G]));
    ctx.console.info(describeOutput(c, "rstd", r.outputs.rstd, r.dtypes.rstd, [r.dims.N, r.dims.G]));
    ctx.console.info(timingLine(c, r));
  },
});
