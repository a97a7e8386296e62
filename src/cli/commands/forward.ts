/** `groupnorm forward X --groups G …`: parse, call forwardFiles, print. */
import { type ForwardOutput, forwardFiles } from "../../api/forward.js";
import { defineCommand } from "../command.js";
import { describeOutputs, progressFor, runLine, timingLine } from "../report.js";

export const forwardCommand = defineCommand({
  name: "forward",
  description: "normalise X: write Y, mean and rstd",
  args: [["<X.npy>", "input tensor, (N, C, *spatial), or (N, *spatial, C) with --layout nhwc"]],
  flags: ["groups", "gamma", "beta", "eps", "layout", "activation", "outputs", "outDir", "y", "mean", "rstd", "threads", "memory"],
  required: ["groups"],
  help: {
    outputs: "which of y,mean,rstd to write (default: those named by --y/--mean/--rstd, or all three)",
    outDir: "folder for the outputs not named (Y.npy, mean.npy, rstd.npy), created with parents if missing",
    mean: "write mean here (shape (N, G))",
    rstd: "write rstd here (shape (N, G))",
    y: "write Y here",
  },
  examples: [
    "groupnorm forward x.npy --groups 32 --gamma gamma.npy --beta beta.npy --out-dir out/",
    "groupnorm forward act.npy --groups 8 --layout nhwc --y act_norm.npy --json",
    "groupnorm forward h.npy --groups 32 --gamma g.npy --beta b.npy --activation silu --y h_act.npy",
  ],
  async run(ctx, [x], f) {
    const engine = ctx.engine(f.threads);
    const progress = progressFor(ctx.console, "forward");
    const r = await forwardFiles({
      x, groups: f.groups!, gamma: f.gamma, beta: f.beta, eps: f.eps, layout: f.layout, activation: f.activation, outputs: f.outputs as ForwardOutput[] | undefined,
      outDir: f.outDir, y: f.y, mean: f.mean, rstd: f.rstd, memory: f.memory, engine, onProgress: progress.update,
    }).finally(progress.stop);
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    ctx.console.info(runLine(c, "forward", [x], r, `eps=${r.eps}${r.activation ? `, then ${r.activation}` : ""}`));
    for (const line of describeOutputs(c, r.outputs, r.dtypes, { Y: r.input.shape, mean: [r.dims.n, r.dims.g], rstd: [r.dims.n, r.dims.g] })) ctx.console.info(line);
    ctx.console.info(timingLine(c, r));
  },
});
