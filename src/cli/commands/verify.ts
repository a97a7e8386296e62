/** `groupnorm verify forward|backward …`: parse, call verifyFiles, print; exit 0 all pass, 1 any fails. */
import { Command } from "commander";
import type { OutputReport, VerifyReport } from "../../api/verify.js";
import { formatShape } from "../../core/dims.js";
import { quoteName } from "../../errors.js";
import { epsText } from "../../verify/conventions.js";
import { defineCommand, wrapText } from "../command.js";
import { CONVENTION_FLAGS, conventionDefaults, conventionHelp, conventionOptions, conventionText } from "../conventions.js";
import type { Console } from "../console.js";
import type { Context } from "../context.js";

const e = (v: number | null) => (v === null ? "—" : v.toExponential(2));
const used = (r: number) => (r === 0 ? "none" : r < 0.001 ? "<0.1%" : `${(100 * r).toFixed(1)}%`);
const times = (r: number) => (r < 10 ? r.toFixed(1) : r < 1e5 ? String(Math.round(r)) : r.toExponential(1).replace("e+", "e"));
const coords = (v: number[]) => `(${v.join(", ")})`;

function printReport(console: Console, r: VerifyReport): void {
  const c = console.out;
  console.result(`verify ${r.mode} ${r.input.dy === null ? "" : `${quoteName(r.input.dy)} `}${quoteName(r.input.x)}: shape ${formatShape(r.input.shape)} ${r.input.dtype}, ${r.layout}, G=${r.groups}, eps=${epsText(r.eps)}${conventionText(r)}${r.activation ? `, through ${r.activation}` : ""}: candidates against the float64 reference`);
  for (const [name, o] of Object.entries(r.outputs) as Array<[string, OutputReport]>) {
    const verdict = o.passed ? c.green("pass") : c.red("FAIL");
    if (o.reason === "shape" || o.reason === "dtype") {
      console.result(`  ${name.padEnd(6)} ${verdict}  ${quoteName(o.file)} ${o.message}`);
      continue;
    }
    const pct = o.mismatch_percent < 0.01 && o.mismatches ? "<0.01" : o.mismatch_percent.toFixed(2);
    console.result(`  ${name.padEnd(6)} ${verdict}  ${o.passed ? `${o.checked} values` : `${o.mismatches} of ${o.checked} values (${pct}%) beyond tolerance${o.nan_mismatches ? `, ${o.nan_mismatches} NaN or infinite on one side only` : ""}`}; max abs error ${e(o.max_abs_error)}, mean ${e(o.mean_abs_error)}, max rel ${e(o.max_rel_error)}, ${o.max_ulp_error === null ? "—" : o.max_ulp_error.toPrecision(3)} ulp${o.passed && o.tolerance_used !== null ? `; ${used(o.tolerance_used)} of the tolerance used` : ""}`);
    if (!o.passed && o.worst) {
      const w = o.worst;
      const where = name === "mean" || name === "rstd" || name === "var" ? "" : `, channel ${w.channel}`; // one entry per group: no channel of its own
      console.result(`         worst at ${coords(w.index)}: ${w.value} (reference ${w.reference}), group ${coords(w.group)}${where}`);
      if (o.worst_groups.length) console.result(`         worst groups: ${o.worst_groups.map((g) => `${coords(g.group)} ${g.mismatches} value${g.mismatches === 1 ? "" : "s"}, ${g.max_abs_error === Infinity ? "NaN or infinite on one side only" : g.tolerance_used === Infinity ? `max error ${e(g.max_abs_error)} (where the tolerance is 0)` : `max error ${e(g.max_abs_error)} (${times(g.tolerance_used)}× the tolerance)`}`).join("; ")}`);
    }
    if (o.diagnosis) console.result(`         ${c.yellow(o.passed ? "note:" : "diagnosis:")} ${o.diagnosis}`);
  }
  console.result(r.passed ? c.green("passed") : c.red("failed"));
}

const WHICH = "verify checks files your implementation wrote against the float64 reference of its inputs and names the convention it follows when it fails. gradcheck checks groupnorm's own backward kernels against finite differences; it cannot see your code.";

const shared = ["groups", ...CONVENTION_FLAGS, "gamma", "eps", "layout", "activation", "atol", "rtol", "memory"] as const;
const tolerances = {
  ...conventionHelp,
  compat: "check against that system's convention: torch, onnx18, onnx21, keras, flax or mlx (its eps, layout, grouping and affine; explicit flags win)",
  atol: "fixed absolute tolerance (default: by the candidate's dtype, scaled by each group's values; see docs/cli.md)",
  rtol: "relative tolerance, times |reference| (default: two units in the last place of the candidate's dtype)",
  memory: "memory for the reference's per-group and per-channel vectors, e.g. 1G (default 384M)",
};

function finish(ctx: Context, r: VerifyReport, json: boolean): void {
  ctx.exitCode = r.passed ? 0 : 1;
  if (json) return ctx.console.document(r);
  printReport(ctx.console, r);
}

const forward = defineCommand({
  name: "forward",
  description: "check your Y, mean, rstd of X against the float64 reference (exit 0 pass, 1 fail)",
  args: [["<X>", "the input your outputs were computed from (x.npy, f.npz:key or m.safetensors:name)"]],
  flags: [...shared, "beta", "y", "mean", "rstd", "var"],
  notes: WHICH,
  shownDefaults: conventionDefaults,
  help: { y: "your Y, X's shape and dtype", mean: "your mean, (N, G)", rstd: "your rstd, (N, G)", var: "your variance (biased), (N, G)", activation: "your Y is act(GroupNorm(X)): silu (alias swish), gelu, gelu-tanh, or none", ...tolerances },
  examples: [
    "groupnorm verify forward x.npy --groups 32 --gamma g.npy --beta b.npy --y my_y.npy",
    "groupnorm verify forward x.npy --groups 8 --layout nhwc --y y.npy --mean mean.npy --rstd rstd.npy --json",
    "groupnorm verify forward x.npy --groups 32 --compat mlx --gamma w.npy --beta b.npy --y mlx_y.npy",
  ],
  async run(ctx, [x], f, given) {
    const { verifyFiles } = await import("../../api/verify.js");
    const r = await verifyFiles({ mode: "forward", x, ...conventionOptions(f, given), gamma: f.gamma, beta: f.beta, activation: f.activation, y: f.y, mean: f.mean, rstd: f.rstd, var: f.var, atol: f.atol, rtol: f.rtol, memory: f.memory });
    finish(ctx, r, f.json);
  },
});

const backward = defineCommand({
  name: "backward",
  description: "check your dX, dgamma, dbeta for dY and X against the float64 reference (exit 0 pass, 1 fail)",
  args: [
    ["<DY>", "the upstream gradient (dy.npy, f.npz:key or m.safetensors:name)"],
    ["<X>", "the forward's input"],
  ],
  flags: [...shared, "beta", "mean", "rstd", "dx", "dgamma", "dbeta"],
  notes: WHICH,
  shownDefaults: conventionDefaults,
  help: {
    activation: "your gradients are of act(GroupNorm(X)): silu (alias swish), gelu, gelu-tanh, or none",
    mean: "the forward's mean, (N, G) (with --rstd; default: recomputed from X)",
    rstd: "the forward's rstd, (N, G)",
    dx: "your dX, X's shape and dtype",
    dgamma: "your dgamma, (C,), or (G,) with --affine per-group",
    dbeta: "your dbeta, (C,), or (G,) with --affine per-group",
    ...tolerances,
    beta: "with --activation: the forward's shift, shape (C,), or (G,) with --affine per-group (default 0; the pre-activation needs it)",
  },
  examples: [
    "groupnorm verify backward dy.npy x.npy --groups 32 --gamma g.npy --dx my_dx.npy --dgamma my_dg.npy --dbeta my_db.npy",
    "groupnorm verify backward dy.npy x.npy --groups 32 --mean mean.npy --rstd rstd.npy --dx dx.npy --json",
  ],
  async run(ctx, [dy, x], f, given) {
    const { verifyFiles } = await import("../../api/verify.js");
    const r = await verifyFiles({ mode: "backward", x, dy, ...conventionOptions(f, given), gamma: f.gamma, beta: f.beta, activation: f.activation, mean: f.mean, rstd: f.rstd, dx: f.dx, dgamma: f.dgamma, dbeta: f.dbeta, atol: f.atol, rtol: f.rtol, memory: f.memory });
    finish(ctx, r, f.json);
  },
});

/** `listed`: as the top-level help lists it (see MakeCommand). */
export function verifyCommand(ctx: Context, listed = false): Command {
  return new Command("verify")
    .description("check your own GroupNorm's outputs or gradients (from CUDA, Triton, JAX, MLX, ONNX…) against the float64 reference, and say why they differ")
    .addHelpText("after", `\n${wrapText(WHICH)}\n`)
    .addCommand(forward(ctx, listed))
    .addCommand(backward(ctx, listed));
}
