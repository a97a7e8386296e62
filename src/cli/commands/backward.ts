/** `groupnorm backward DY X --groups G …`: parse, call backwardFiles, print. */
import { backwardFiles } from "../../api/backward.js";
import { defineCommand } from "../command.js";
import { describeOutput, progressFor, timingLine } from "../report.js";

export const backwardCommand = defineCommand({
  name: "backward",
  description: "gradients of GroupNorm: write dX, dgamma and dbeta",
  args: [
    ["<DY.npy>", "upstream gradient, same shape as X"],
    ["<X.npy>", "the forward input"],
  ],
  flags: ["groups", "gamma", "mean", "rstd", "eps", "layout", "outputs", "outDir", "dx", "dgamma", "dbeta", "threads", "memory"],
  required: ["groups"],
  help: {
    gamma: "per-channel scale used in the forward pass (enables dgamma, dbeta)",
    mean: "forward mean, shape (N, G) (with --rstd; default: recomputed from X)",
    rstd: "forward rstd, shape (N, G)",
    outDir: "folder for dX.npy, dgamma.npy, dbeta.npy, created with parents if missing",
  },
  examples: [
    "groupnorm backward dy.npy x.npy --groups 32 --gamma gamma.npy --out-dir grads/",
    "groupnorm backward dy.npy x.npy --groups 32 --mean out/mean.npy --rstd out/rstd.npy --outputs dx",
  ],
  async run(ctx, [dy, x], f) {
    const engine = ctx.engine(f.threads);
    const progress = progressFor(ctx.console, "backward");
    const r = await backwardFiles({
      dy, x, groups: f.groups!, gamma: f.gamma, mean: f.mean, rstd: f.rstd, eps: f.eps, layout: f.layout, outputs: f.outputs,
      outDir: f.outDir, dxPath: f.dx, dgammaPath: f.dgamma, dbetaPath: f.dbeta, memory: f.memory, engine, onProgress: progress.update,
    }).finally(progress.stop);
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    ctx.console.info(`${c.green("backward")} ${dy} ${x}: shape (${r.input.shape.join(", ")}) ${r.input.dtype}, ${r.layout}, G=${r.groups}, statistics ${r.statistics}`);
    if (r.outputs.dx) ctx.console.info(describeOutput(c, "dX", r.outputs.dx, r.input.dtype, r.input.shape));
    if (r.outputs.dgamma) ctx.console.info(describeOutput(c, "dgamma", r.outputs.dgamma, r.input.dtype, [r.dims.C]));
    if (r.outputs.dbeta) ctx.console.info(describeOutput(c, "dbeta", r.outputs.dbeta, r.input.dtype, [r.dims.C]));
    ctx.console.info(timingLine(c, r));
  },
});
