/**
 * gradcheck as a function: the production backward against central differences of the float64
 * reference, on random inputs of a shape or on inputs from files (the `gradcheck` command).
 */
import { type Dims, formatShape, groupNormDims, type Layout, memoryOrder, sameShape } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { checkEps, checkLayout } from "../core/params.js";
import { InputError } from "../errors.js";
import { defaultTolerances, gradcheck as check, type OutputCheck } from "../checks/gradcheck.js";
import { normals } from "../checks/random.js";
import { f16ToF32, f32ToF16 } from "../io/float16.js";
import { closeAll, openTensors } from "../io/open.js";
import { readAll } from "../io/tensor.js";
import { readChannelVector } from "../pipeline/inputs.js";
import { type GroupNormEngine, withEngine } from "./engine.js";

export interface GradcheckOptions {
  groups: number;
  eps?: number;
  layout?: Layout;
  /** Random inputs of this shape: N, C, spatial in this order for either layout. */
  shape?: number[];
  /** dtype of random inputs (default float32). */
  dtype?: Dtype;
  /** Seed for random inputs and for sampling (default 0). */
  seed?: number;
  /** Inputs from files instead of `shape`: X, and optionally dY (else random from the seed), gamma and beta. */
  x?: string;
  dy?: string;
  gamma?: string;
  beta?: string;
  /** false: no gamma/beta, dX only (default true; with `x`, affine only when gamma and beta are given). */
  affine?: boolean;
  /** Entries checked per output at most (default 256). */
  samples?: number;
  /** Tolerances (default by dtype: float64 1e-6 and 1e-5; float32 1e-3 and 1e-3; float16 5e-2 and 5e-2). */
  atol?: number;
  rtol?: number;
  threads?: number;
  engine?: GroupNormEngine;
}

export interface GradcheckReport {
  command: "gradcheck";
  passed: boolean;
  outputs: { dX: OutputCheck; dgamma?: OutputCheck; dbeta?: OutputCheck };
  shape: number[];
  dtype: Dtype;
  layout: Layout;
  groups: number;
  eps: number;
  affine: boolean;
  atol: number;
  rtol: number;
  samples: number;
  seed: number;
  threads: number;
}

const f16round = (x: number) => f16ToF32(f32ToF16(x));

/** Values as a dtype stores them. */
function stored(v: Float64Array, dtype: Dtype): Float64Array {
  if (dtype === "float64") return v;
  if (dtype === "float32") return Float64Array.from(Float32Array.from(v));
  // float16: round through the .npy layer's exact conversion
  return Float64Array.from(v, (x) => f16round(x));
}

function checkCount(v: number | undefined, fallback: number, what: string, min: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < min) throw new InputError(`${what} must be ${min ? "a positive" : "a non-negative"} integer, got ${v}`);
  return v;
}

function checkTolerance(v: number | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0) throw new InputError(`${what} must be a finite number >= 0, got ${v}`);
  return v;
}

interface Inputs {
  dtype: Dtype;
  shape: number[];
  d: Dims;
  x: Float64Array;
  dy: Float64Array;
  gamma: Float64Array | null;
  beta: Float64Array | null;
}

function randomInputs(o: GradcheckOptions, shape: number[], layout: Layout, seed: number, affine: boolean): Inputs {
  const dtype = o.dtype ?? "float32";
  const d = groupNormDims(memoryOrder(shape, layout), o.groups, layout, "--shape");
  const n = shape.reduce((a, b) => a * b, 1);
  const x = stored(normals(n, seed, 1.5, 0.5), dtype);
  return {
    dtype,
    shape,
    d,
    x,
    dy: stored(normals(n, seed + 1), dtype),
    gamma: affine ? stored(normals(d.C, seed + 2, 0.5, 1), dtype) : null,
    beta: affine ? stored(normals(d.C, seed + 3), dtype) : null,
  };
}

async function fileInputs(o: GradcheckOptions, layout: Layout, seed: number, affine: boolean): Promise<Inputs> {
  const src = await openTensors({ x: o.x, dy: o.dy, gamma: affine ? o.gamma : undefined, beta: affine ? o.beta : undefined });
  try {
    const xs = src.x!;
    const d = groupNormDims(xs.shape, o.groups, layout, xs.name);
    const shape = [...xs.shape];
    if (src.dy && !sameShape(src.dy.shape, shape)) throw new InputError(`dY shape ${formatShape(src.dy.shape)} differs from X's shape ${formatShape(shape)}`, src.dy.name);
    const gamma = src.gamma ? await readChannelVector(src.gamma, d.C, "gamma") : null;
    const beta = src.beta ? await readChannelVector(src.beta, d.C, "beta") : null;
    const x = await readAll(xs);
    const dy = src.dy ? await readAll(src.dy) : stored(normals(x.length, seed + 1), xs.dtype);
    return { dtype: xs.dtype, shape, d, x, dy, gamma, beta };
  } finally {
    await closeAll(src);
  }
}

export async function gradcheck(o: GradcheckOptions): Promise<GradcheckReport> {
  const eps = checkEps(o.eps);
  const layout = checkLayout(o.layout);
  const seed = checkCount(o.seed, 0, "seed", 0);
  const samples = checkCount(o.samples, 256, "samples", 1);
  if ((o.shape === undefined) === (o.x === undefined)) throw new InputError("give either --shape N,C,... (random inputs) or --x X.npy");
  let affine = o.affine !== false;
  let inp: Inputs;
  if (o.shape !== undefined) {
    if (o.dy || o.gamma || o.beta) throw new InputError("--dy, --gamma and --beta go with --x; --shape makes random inputs");
    inp = randomInputs(o, o.shape, layout, seed, affine);
  } else {
    if (affine && (o.gamma || o.beta) && (!o.gamma || !o.beta)) throw new InputError("--gamma and --beta go together (or --no-affine)");
    affine = affine && !!o.gamma;
    inp = await fileInputs(o, layout, seed, affine);
  }
  const tol = defaultTolerances(inp.dtype);
  const atol = checkTolerance(o.atol, tol.atol, "--atol");
  const rtol = checkTolerance(o.rtol, tol.rtol, "--rtol");
  return withEngine(o, async (engine) => {
    const precision = inp.dtype === "float64" ? "f64" : "f32";
    const r = await check(engine, { d: inp.d, shape: memoryOrder(inp.shape, layout), x: inp.x, dy: inp.dy, gamma: inp.gamma, beta: inp.beta, eps, precision }, { samples, seed, atol, rtol });
    return {
      command: "gradcheck",
      passed: r.passed,
      outputs: r.outputs,
      shape: inp.shape,
      dtype: inp.dtype,
      layout,
      groups: o.groups,
      eps,
      affine: inp.gamma !== null,
      atol,
      rtol,
      samples,
      seed,
      threads: engine.threads,
    };
  });
}
