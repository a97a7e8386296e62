/** `groupnorm backward DY X --groups G …`: parse, call backwardFiles, print. */
import type { BackwardOutput } from "../../api/backward.js";
import { defineCommand } from "../command.js";
import { CONVENTION_FLAGS, conventionDefaults, conventionHelp, conventionOptions, conventionText } from "../conventions.js";
import { describeOutputs, progressFor, runLine, timingLine, warnCompress } from "../report.js";

export const backwardCommand = defineCommand({
  name: "backward",
  description: "gradients of GroupNorm: write dX, dgamma and dbeta",
  args: [
    ["<DY>", "upstream gradient, same shape as X (dy.npy, a.npz:key or m.safetensors:name)"],
    ["<X>", "the forward input"],
  ],
  flags: ["groups", ...CONVENTION_FLAGS, "gamma", "beta", "activation", "mean", "rstd", "eps", "layout", "outputs", "outDir", "out", "compress", "dx", "dgamma", "dbeta", "threads", "memory"],
  shownDefaults: conventionDefaults,
  help: {
    ...conventionHelp,
    gamma: "scale used in the forward pass, shape (C,), or (G,) with --affine per-group (enables dgamma, dbeta)",
    beta: "shift used in the forward pass, shape (C,), or (G,) with --affine per-group (default 0): with --activation, the pre-activation needs it",
    activation: "DY is the gradient of act(GroupNorm(X)): silu (alias swish), gelu (erf form), gelu-tanh, or none",
    mean: "forward mean, shape (N, G) (with --rstd; default: recomputed from X)",
    rstd: "forward rstd, shape (N, G)",
    outputs: "which of dx,dgamma,dbeta to write (default: those named by --dx/--dgamma/--dbeta, or dx, and dgamma,dbeta with --gamma)",
    outDir: "folder for the outputs not named (dX.npy, dgamma.npy, dbeta.npy), created with parents if missing",
    out: "write the outputs not named into one container instead, FILE.npz or FILE.safetensors, keyed dX, dgamma, dbeta",
    dx: "write dX here",
    dgamma: "write dgamma here ((C,), or (G,) with --affine per-group)",
    dbeta: "write dbeta here ((C,), or (G,) with --affine per-group)",
  },
  examples: [
    "groupnorm backward dy.npy x.npy --groups 32 --gamma gamma.npy --out-dir grads/",
    "groupnorm backward run.npz:dy run.npz:x --groups 32 --mean fwd.npz:mean --rstd fwd.npz:rstd --out grads.npz --compress",
    "groupnorm backward dy.npy h.npy --groups 32 --gamma g.npy --beta b.npy --activation silu --out-dir grads/",
  ],
  async run(ctx, [dy, x], f, given) {
    const { backwardFiles } = await import("../../api/backward.js");
    if (given.has("eps") && f.mean !== undefined && f.rstd !== undefined) ctx.console.warn("--eps has no effect when the statistics are given (--mean, --rstd): rstd already holds it");
    if (f.beta !== undefined && !f.activation) ctx.console.warn("--beta has no effect without --activation: GroupNorm's gradients do not depend on beta");
    const engine = ctx.engine(f.threads);
    const progress = progressFor(ctx.console, "backward");
    const r = await backwardFiles({
      dy, x, ...conventionOptions(f, given), gamma: f.gamma, beta: f.beta, activation: f.activation, mean: f.mean, rstd: f.rstd, outputs: f.outputs as BackwardOutput[] | undefined,
      outDir: f.out !== undefined && !given.has("outDir") ? undefined : f.outDir, out: f.out, compress: f.compress, dxPath: f.dx, dgammaPath: f.dgamma, dbetaPath: f.dbeta, memory: f.memory, engine, onProgress: progress.update,
    }).finally(progress.stop);
    warnCompress(ctx, f.compress, r.outputs);
    if (f.json) return ctx.console.document(r);
    if (ctx.console.quiet) return; // nothing to say: the outputs are on disk
    const c = ctx.console.out;
    ctx.console.info(runLine(c, "backward", [dy, x], r, `statistics ${r.statistics}${conventionText(r)}${r.activation ? `, through ${r.activation}` : ""}`));
    const affine = [r.affine === "per-group" ? r.dims.g : r.dims.c];
    for (const line of describeOutputs(c, r.outputs, r.dtypes, { dX: r.input.shape, dgamma: affine, dbeta: affine })) ctx.console.info(line);
    ctx.console.info(timingLine(c, r));
  },
});
