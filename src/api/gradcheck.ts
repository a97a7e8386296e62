/**
 * gradcheck as a function: the production backward against central differences of the float64
 * reference, on random inputs of a shape or on inputs from files (the `gradcheck` command). Its
 * memory is bounded by `memory` like every run: random inputs are held in their dtype and count
 * against it; inputs from files are streamed.
 */
import { type Activation, checkActivation } from "../core/activation.js";
import { sizeText } from "../core/units.js";
import { type Dims, formatShape, groupNormDims, type Layout, memoryOrder, sameShape } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { checkEps, checkLayout, checkMemory } from "../core/params.js";
import { InputError } from "../errors.js";
import { defaultTolerances, gradcheck as check, groupBytes, type OutputCheck } from "../checks/gradcheck.js";
import { normals, normalsInto } from "../checks/random.js";
import { f16ToF32, f32ToF16 } from "../io/float16.js";
import { allocateStored, MemorySource } from "../io/memory.js";
import { closeAll, openTensors } from "../io/open.js";
import type { TensorSource } from "../io/tensor.js";
import { readChannelVector } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
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
  /** Check the gradients of act(GroupNorm(X)): "silu" (or "swish"), "gelu", "gelu-tanh" (default none). */
  activation?: Activation | "swish" | "none" | null;
  /** Entries checked per output at most (default 256). */
  samples?: number;
  /** Tolerances (default by dtype: float64 1e-6 and 1e-5; float32 1e-3 and 1e-3; float16 5e-2 and 5e-2). */
  atol?: number;
  rtol?: number;
  /** Bytes the check may hold (default 384 MiB): random inputs, the groups it perturbs, the streamed backward. */
  memory?: number;
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
  /** The activation the gradients went through, or null. */
  activation: Activation | null;
  affine: boolean;
  atol: number;
  rtol: number;
  samples: number;
  seed: number;
  threads: number;
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


/** A random tensor held as its dtype stores it (the same values as rounding float64 normals). */
function randomSource(name: string, dtype: Dtype, shape: number[], seed: number, scale = 1, offset = 0): MemorySource {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = allocateStored(dtype, n);
  normalsInto(data, seed, scale, offset, dtype === "float16" ? (v) => f32ToF16(v) : (v) => v);
  return new MemorySource(name, data, dtype, shape);
}

/** C random values as a dtype stores them, as float64 (gamma, beta). */
function storedVector(dtype: Dtype, C: number, seed: number, scale = 1, offset = 0): Float64Array {
  const v = normals(C, seed, scale, offset);
  if (dtype === "float32") return Float64Array.from(Float32Array.from(v));
  if (dtype === "float16") return Float64Array.from(v, (x) => f16ToF32(f32ToF16(x)));
  return v;
}

interface Inputs {
  dtype: Dtype;
  shape: number[];
  d: Dims;
  x: TensorSource;
  dy: TensorSource;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  /** Bytes held in memory by the inputs themselves. */
  held: number;
}

export async function gradcheck(o: GradcheckOptions): Promise<GradcheckReport> {
  const eps = checkEps(o.eps);
  const layout = checkLayout(o.layout);
  const seed = checkCount(o.seed, 0, "seed", 0);
  const samples = checkCount(o.samples, 256, "samples", 1);
  const budget = checkMemory(o.memory, DEFAULT_MEMORY);
  const activation = checkActivation(o.activation);
  if ((o.shape === undefined) === (o.x === undefined)) throw new InputError("give either --shape N,C,... (random inputs) or --x X.npy");
  let affine = o.affine !== false;
  const open: Partial<Record<string, TensorSource>> = {};
  try {
    let inp: Inputs;
    if (o.shape !== undefined) {
      if (o.dy || o.gamma || o.beta) throw new InputError("--dy, --gamma and --beta go with --x; --shape makes random inputs");
      const dtype = o.dtype ?? "float32";
      const fileShape = memoryOrder(o.shape, layout);
      const d = groupNormDims(fileShape, o.groups, layout, "--shape");
      const n = o.shape.reduce((a, b) => a * b, 1);
      const held = 2 * n * itemSizeOf(dtype);
      if (held + groupBytes(d) > budget) {
        throw new InputError(`gradcheck holds its random inputs in memory: --shape ${o.shape.join(",")} needs ${sizeText(held + groupBytes(d))}, over --memory ${sizeText(budget)}; raise --memory or check a smaller shape (the kernels are the same at every size)`);
      }
      inp = {
        dtype,
        shape: o.shape,
        d,
        x: randomSource("x", dtype, fileShape, seed, 1.5, 0.5),
        dy: randomSource("dy", dtype, fileShape, seed + 1),
        gamma: affine ? storedVector(dtype, d.C, seed + 2, 0.5, 1) : null,
        beta: affine ? storedVector(dtype, d.C, seed + 3) : null,
        held,
      };
    } else {
      if (affine && (o.gamma || o.beta) && (!o.gamma || !o.beta)) throw new InputError("--gamma and --beta go together (or --no-affine)");
      affine = affine && !!o.gamma;
      Object.assign(open, await openTensors({ x: o.x, dy: o.dy, gamma: affine ? o.gamma : undefined, beta: affine ? o.beta : undefined }));
      const xs = open.x!;
      const d = groupNormDims(xs.shape, o.groups, layout, xs.name);
      const shape = [...xs.shape];
      if (open.dy && !sameShape(open.dy.shape, shape)) throw new InputError(`dY shape ${formatShape(open.dy.shape)} differs from X's shape ${formatShape(shape)}`, open.dy.name);
      const gamma = open.gamma ? await readChannelVector(open.gamma, d.C, "gamma") : null;
      const beta = open.beta ? await readChannelVector(open.beta, d.C, "beta") : null;
      const held = open.dy ? 0 : xs.size * itemSizeOf(xs.dtype);
      if (held + groupBytes(d) > budget) {
        throw new InputError(`gradcheck needs ${sizeText(held + groupBytes(d))} for ${open.dy ? "the groups it perturbs" : "a random dY and the groups it perturbs"}, over --memory ${sizeText(budget)}; raise --memory${open.dy ? "" : " or give --dy"}`);
      }
      const dy = open.dy ?? randomSource("dy", xs.dtype, shape, seed + 1);
      inp = { dtype: xs.dtype, shape, d, x: xs, dy, gamma, beta, held };
    }
    const tol = defaultTolerances(inp.dtype);
    const atol = checkTolerance(o.atol, tol.atol, "--atol");
    const rtol = checkTolerance(o.rtol, tol.rtol, "--rtol");
    const memoryBudget = budget - inp.held - groupBytes(inp.d);
    return await withEngine(o, async (engine) => {
      const precision = inp.dtype === "float64" ? "f64" : "f32";
      const fileShape = o.shape !== undefined ? memoryOrder(inp.shape, layout) : inp.shape;
      const r = await check(engine, { d: inp.d, shape: fileShape, x: inp.x, dy: inp.dy, gamma: inp.gamma, beta: inp.beta, eps, activation, precision, memoryBudget }, { samples, seed, atol, rtol });
      return {
        command: "gradcheck",
        passed: r.passed,
        outputs: r.outputs,
        shape: inp.shape,
        dtype: inp.dtype,
        layout,
        groups: o.groups,
        eps,
        activation,
        affine: inp.gamma !== null,
        atol,
        rtol,
        samples,
        seed,
        threads: engine.threads,
      };
    });
  } finally {
    await closeAll(open);
  }
}
