/** `groupnorm forward X --groups G …`: parse, call forwardFiles, print. */
import type { ForwardOutput } from "../../api/forward.js";
import { defineCommand } from "../command.js";
import { describeOutputs, progressFor, runLine, timingLine, warnCompress } from "../report.js";

export const forwardCommand = defineCommand({
  name: "forward",
  description: "normalise X: write Y, mean and rstd",
  args: [["<X>", "input tensor, (N, C, *spatial), or (N, *spatial, C) with --layout nhwc: x.npy, a.npz:key or m.safetensors:name"]],
  flags: ["groups", "gamma", "beta", "eps", "layout", "activation", "outputs", "outDir", "out", "compress", "y", "mean", "rstd", "threads", "memory"],
  required: ["groups"],
  help: {
    outputs: "which of y,mean,rstd to write (default: those named by --y/--mean/--rstd, or all three)",
    outDir: "folder for the outputs not named (Y.npy, mean.npy, rstd.npy), created with parents if missing",
    out: "write the outputs not named into one container instead, FILE.npz or FILE.safetensors, keyed Y, mean, rstd",
    mean: "write mean here (shape (N, G))",
    rstd: "write rstd here (shape (N, G))",
    y: "write Y here",
  },
  examples: [
    "groupnorm forward x.npy --groups 32 --gamma gamma.npy --beta beta.npy --out-dir out/",
    "groupnorm forward act.safetensors:h --groups 8 --layout nhwc --out act_norm.safetensors --json",
    "groupnorm forward h.npy --groups 32 --gamma g.npy --beta b.npy --activation silu --y h_act.npy",
  ],
  async run(ctx, [x], f, given) {
    const { forwardFiles } = await import("../../api/forward.js");
    const engine = ctx.engine(f.threads);
    const progress = progressFor(ctx.console, "forward");
    const r = await forwardFiles({
      x, groups: f.groups!, gamma: f.gamma, beta: f.beta, eps: f.eps, layout: f.layout, activation: f.activation, outputs: f.outputs as ForwardOutput[] | undefined,
      outDir: f.out !== undefined && !given.has("outDir") ? undefined : f.outDir, out: f.out, compress: f.compress, y: f.y, mean: f.mean, rstd: f.rstd, memory: f.memory, engine, onProgress: progress.update,
    }).finally(progress.stop);
    warnCompress(ctx, f.compress, r.outputs);
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    ctx.console.info(runLine(c, "forward", [x], r, `eps=${r.eps}${r.activation ? `, then ${r.activation}` : ""}`));
    for (const line of describeOutputs(c, r.outputs, r.dtypes, { Y: r.input.shape, mean: [r.dims.n, r.dims.g], rstd: [r.dims.n, r.dims.g] })) ctx.console.info(line);
    ctx.console.info(timingLine(c, r));
  },
});
