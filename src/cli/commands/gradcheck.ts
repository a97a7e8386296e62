/** `groupnorm gradcheck …`: parse, call gradcheck, print; exit 0 pass, 1 fail. */
import { formatShape } from "../../core/dims.js";
import { defineCommand } from "../command.js";

const e = (v: number) => v.toExponential(3);

export const gradcheckCommand = defineCommand({
  name: "gradcheck",
  description: "check groupnorm's own dX, dgamma, dbeta kernels against finite differences of the float64 reference (exit 0 pass, 1 fail)",
  notes: "gradcheck tests groupnorm's own kernels (on random inputs or your X). To check the outputs or gradients of your own GroupNorm (CUDA, Triton, JAX, MLX, ONNX…), write them to .npy files and run groupnorm verify forward|backward.",
  flags: ["shape", "seed", "dtype", "x", "dy", "gamma", "beta", "affine", "groups", "eps", "layout", "activation", "samples", "atol", "rtol", "threads", "memory"],
  required: ["groups"],
  help: {
    shape: "random inputs of this shape, N,C,spatial in this order for either layout",
    gamma: "per-channel scale, with --x and --beta (default: random with --shape, none with --x)",
    beta: "per-channel shift, with --x and --gamma (default: random with --shape, none with --x)",
    dtype: "dtype of --shape's random inputs: f16, bf16, f32 or f64 (with --x, X's own or refused)",
    samples: "entries of each output checked at most, up to 1000000 (sampled from the seed)",
    seed: "seed for --shape's random inputs, a random dY, and the sampling",
    atol: "absolute tolerance (default by dtype: f64 1e-6, f32 1e-3, f16 and bf16 5e-2)",
    rtol: "relative tolerance (default by dtype: f64 1e-5, f32 1e-3, f16 and bf16 5e-2)",
    memory: "memory for the inputs held and the streamed backward, e.g. 1G (default 384M)",
    activation: "check the gradients of act(GroupNorm(X)): silu (alias swish), gelu, gelu-tanh, or none",
  },
  shownDefaults: { dtype: "f32" },
  examples: [
    "groupnorm gradcheck --shape 4,32,16,16 --groups 8 --seed 1",
    "groupnorm gradcheck --shape 2,64,9,9 --groups 16 --layout nhwc --activation silu --dtype f64",
    "groupnorm gradcheck --x x.npy --dy dy.npy --gamma g.npy --beta b.npy --groups 32 --json",
  ],
  async run(ctx, _args, f) {
    const { gradcheck } = await import("../../api/gradcheck.js");
    const r = await gradcheck({
      groups: f.groups!, eps: f.eps, layout: f.layout, activation: f.activation, shape: f.shape, dtype: f.dtype, seed: f.seed, x: f.x, dy: f.dy, gamma: f.gamma, beta: f.beta,
      affine: f.affine, samples: f.samples, atol: f.atol, rtol: f.rtol, memory: f.memory, engine: ctx.engine(f.threads),
    });
    ctx.exitCode = r.passed ? 0 : 1;
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    ctx.console.result(`gradcheck ${formatShape(r.shape)} ${r.dtype} ${r.layout} G=${r.groups}${r.activation ? `, through ${r.activation}` : ""}, atol ${r.atol}, rtol ${r.rtol}: kernels vs central differences of the float64 reference`);
    for (const [name, k] of Object.entries(r.outputs)) {
      const verdict = k.passed ? c.green("pass") : c.red("FAIL");
      const errors = k.max_abs_error === null || k.max_rel_error === null ? "no finite pair compared" : `max abs error ${e(k.max_abs_error)}  max rel error ${e(k.max_rel_error)}`;
      ctx.console.result(`  ${name.padEnd(7)} ${verdict}  ${errors}  (${k.checked} of ${k.of} entries)`);
      // NaN and infinities in words, never as an error of Infinity
      if (k.nan_mismatches || k.not_compared) ctx.console.result(`          ${k.message}`);
    }
    ctx.console.result(r.passed ? c.green("passed") : c.red("failed"));
  },
});
