import { Command } from "commander";
import { InputError } from "../../errors.js";
import { type Dims, formatShape, groupNormDims, memoryOrder, sameShape } from "../../core/dims.js";
import { normals } from "../../checks/random.js";
import { f16ToF32, f32ToF16 } from "../../io/float16.js";
import { readNpy } from "../../io/npy/index.js";
import { readChannelVector } from "../../pipeline/inputs.js";
import type { Context } from "../context.js";
import { parseEps, parseGroups, parseLayoutOption, parseNonNegative, parseShape, parseThreads } from "../options.js";
import { groupNormOptions } from "./common.js";

type Dtype = "float16" | "float32" | "float64";
const f16round = (x: number) => f16ToF32(f32ToF16(x));

/** Values as a dtype stores them. */
function stored(v: Float64Array, dtype: Dtype): Float64Array {
  if (dtype === "float64") return v;
  if (dtype === "float32") return Float64Array.from(Float32Array.from(v));
  // float16: round through the .npy layer's exact conversion
  return Float64Array.from(v, (x) => f16round(x));
}


function parseDtype(v: string): Dtype {
  const d = v.toLowerCase();
  if (d === "f16" || d === "float16") return "float16";
  if (d === "f32" || d === "float32") return "float32";
  if (d === "f64" || d === "float64") return "float64";
  throw new InputError(`--dtype must be f16, f32 or f64, got '${v}'`);
}

export function gradcheckCommand(ctx: Context): Command {
  const cmd = new Command("gradcheck")
    .description("check dX, dgamma, dbeta from the kernels against finite differences of the float64 reference (exit 0 pass, 1 fail)")
    .option("--shape <N,C,...>", "random inputs of this shape, N,C,spatial in this order for either layout")
    .option("--seed <S>", "seed for random inputs and for sampling", "0")
    .option("--dtype <dtype>", "dtype of random inputs: f16, f32 or f64", "f32")
    .option("--x <file>", "input X from a file (instead of --shape)")
    .option("--dy <file>", "upstream gradient (default: random from the seed)")
    .option("--gamma <file>", "per-channel scale (default: random with --shape, none with --x)")
    .option("--beta <file>", "per-channel shift (default: random with --shape, none with --x)")
    .option("--no-affine", "no gamma/beta: check dX only");
  return groupNormOptions(cmd)
    .option("--samples <K>", "entries of each output checked at most (sampled from the seed)", "256")
    .option("--atol <atol>", "absolute tolerance (default by dtype: f64 1e-6, f32 1e-3, f16 5e-2)")
    .option("--rtol <rtol>", "relative tolerance (default by dtype: f64 1e-5, f32 1e-3, f16 5e-2)")
    .option("--threads <K>", "worker threads (default: available cores)")
    .option("--json", "print a JSON report on stdout")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const groups = parseGroups(o.groups as string | undefined);
      const eps = parseEps(o.eps as string);
      const layout = parseLayoutOption(o.layout as string);
      const threads = parseThreads(o.threads as string | undefined);
      if (!/^\d+$/.test(String(o.seed))) throw new InputError(`--seed must be a non-negative integer, got '${o.seed}'`);
      const seed = Number(o.seed);
      if (!/^\d+$/.test(String(o.samples)) || Number(o.samples) < 1) throw new InputError(`--samples must be a positive integer, got '${o.samples}'`);
      const samples = Number(o.samples);
      if ((o.shape === undefined) === (o.x === undefined)) throw new InputError("give either --shape N,C,... (random inputs) or --x X.npy");
      const affine = o.affine !== false;
      ctx.console.json = !!o.json;

      let dtype: Dtype, shape: number[], x: Float64Array, d: Dims;
      let gamma: Float64Array | null = null, beta: Float64Array | null = null;
      if (o.shape !== undefined) {
        if (o.dy || o.gamma || o.beta) throw new InputError("--dy, --gamma and --beta go with --x; --shape makes random inputs");
        dtype = parseDtype(o.dtype as string);
        // N, C, spatial in this order for either layout (as roofline's --shape); --layout nhwc
        // lays the random tensor out channels last
        shape = parseShape(o.shape as string);
        d = groupNormDims(memoryOrder(shape, layout), groups, layout, "--shape");
        const n = shape.reduce((a, b) => a * b, 1);
        x = stored(normals(n, seed, 1.5, 0.5), dtype);
        if (affine) {
          gamma = stored(normals(d.C, seed + 2, 0.5, 1), dtype);
          beta = stored(normals(d.C, seed + 3), dtype);
        }
      } else {
        const r = await readNpy(o.x as string, "float64");
        dtype = r.header.dtype;
        shape = r.header.shape;
        x = r.data as Float64Array;
        d = groupNormDims(shape, groups, layout, o.x as string);
        if (affine && (o.gamma || o.beta)) {
          if (!o.gamma || !o.beta) throw new InputError("--gamma and --beta go together (or --no-affine)");
          gamma = await readChannelVector(o.gamma as string, d.C, "gamma");
          beta = await readChannelVector(o.beta as string, d.C, "beta");
        }
      }
      let dy: Float64Array;
      if (o.dy) {
        const r = await readNpy(o.dy as string, "float64");
        if (!sameShape(r.header.shape, shape)) throw new InputError(`dY shape ${formatShape(r.header.shape)} differs from X's shape ${formatShape(shape)}`, o.dy as string);
        dy = r.data as Float64Array;
      } else dy = stored(normals(x.length, seed + 1), dtype);

      const { defaultTolerances, gradcheck } = await import("../../checks/gradcheck.js");
      const tol = defaultTolerances(dtype);
      const atol = parseNonNegative(o.atol as string | undefined, "--atol", tol.atol);
      const rtol = parseNonNegative(o.rtol as string | undefined, "--rtol", tol.rtol);
      const engine = await ctx.engine(threads);
      const precision = dtype === "float64" ? "f64" : "f32";
      const r = await gradcheck(engine, { d, x, dy, gamma, beta, eps, precision }, { samples, seed, atol, rtol });
      ctx.exitCode = r.passed ? 0 : 1;
      const report = {
        command: "gradcheck",
        passed: r.passed,
        outputs: r.outputs,
        shape,
        dtype,
        layout,
        groups,
        eps,
        affine: gamma !== null,
        atol,
        rtol,
        samples,
        seed,
        threads: engine.runner.threads,
      };
      if (o.json) {
        ctx.console.document(report);
        return;
      }
      const c = ctx.console.out;
      ctx.console.result(`gradcheck ${formatShape(shape)} ${dtype} ${layout} G=${groups}, atol ${atol}, rtol ${rtol}: kernels vs central differences of the float64 reference`);
      for (const [name, k] of Object.entries(r.outputs)) {
        const verdict = k!.passed ? c.green("pass") : c.red("FAIL");
        ctx.console.result(`  ${name.padEnd(7)} ${verdict}  max abs error ${k!.max_abs_error.toExponential(3)}  max rel error ${k!.max_rel_error.toExponential(3)}  (${k!.checked} of ${k!.of} entries)`);
      }
      ctx.console.result(r.passed ? c.green("passed") : c.red("failed"));
    });
}
