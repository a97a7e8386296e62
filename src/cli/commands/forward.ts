/** `groupnorm forward X --groups G …`: parse, call forwardFiles, print. */
import type { ForwardOutput } from "../../api/forward.js";
import { defineCommand } from "../command.js";
import { CONVENTION_FLAGS, conventionDefaults, conventionHelp, conventionOptions, conventionText } from "../conventions.js";
import { describeOutputs, progressFor, runLine, timingLine, warnCompress } from "../report.js";

export const forwardCommand = defineCommand({
  name: "forward",
  description: "normalise X: write Y, mean and rstd (and var)",
  args: [["<X>", "input tensor, (N, C, *spatial), or (N, *spatial, C) with --layout nhwc: x.npy, a.npz:key or m.safetensors:name"]],
  flags: ["groups", ...CONVENTION_FLAGS, "gamma", "beta", "eps", "layout", "activation", "outputs", "outDir", "out", "compress", "y", "mean", "rstd", "var", "threads", "memory"],
  help: {
    ...conventionHelp,
    outputs: "which of y,mean,rstd,var to write (default: those named by --y/--mean/--rstd/--var, or y,mean,rstd)",
    outDir: "folder for the outputs not named (Y.npy, mean.npy, rstd.npy, var.npy), created with parents if missing",
    out: "write the outputs not named into one container instead, FILE.npz or FILE.safetensors, keyed Y, mean, rstd (and var)",
    mean: "write mean here (shape (N, G))",
    rstd: "write rstd here (shape (N, G))",
    var: "write each group's biased variance here (shape (N, G))",
    y: "write Y here",
  },
  shownDefaults: conventionDefaults,
  examples: [
    "groupnorm forward x.npy --groups 32 --gamma gamma.npy --beta beta.npy --out-dir out/",
    "groupnorm forward act.npy --group-size 16 --compat mlx --gamma w.npy --beta b.npy --out-dir out/",
    "groupnorm forward h.npy --groups 32 --gamma g.npy --beta b.npy --activation silu --y h_act.npy",
  ],
  async run(ctx, [x], f, given) {
    const { forwardFiles } = await import("../../api/forward.js");
    const engine = ctx.engine(f.threads);
    const progress = progressFor(ctx.console, "forward");
    const r = await forwardFiles({
      x, ...conventionOptions(f, given), gamma: f.gamma, beta: f.beta, activation: f.activation, outputs: f.outputs as ForwardOutput[] | undefined,
      outDir: f.out !== undefined && !given.has("outDir") ? undefined : f.outDir, out: f.out, compress: f.compress, y: f.y, mean: f.mean, rstd: f.rstd, var: f.var, memory: f.memory, engine, onProgress: progress.update,
    }).finally(progress.stop);
    warnCompress(ctx, f.compress, r.outputs);
    if (f.json) return ctx.console.document(r);
    if (ctx.console.quiet) return; // nothing to say: the outputs are on disk
    const c = ctx.console.out;
    ctx.console.info(runLine(c, "forward", [x], r, `eps=${r.eps}${conventionText(r)}${r.activation ? `, then ${r.activation}` : ""}`));
    const stats = [r.dims.n, r.dims.g];
    for (const line of describeOutputs(c, r.outputs, r.dtypes, { Y: r.input.shape, mean: stats, rstd: stats, var: stats })) ctx.console.info(line);
    ctx.console.info(timingLine(c, r));
  },
});
