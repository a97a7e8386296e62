/**
 * groupNorm and groupNormBackward on typed arrays: the same pipeline as the file commands, with
 * in-memory sources and sinks, so results are bitwise what the CLI writes for the same input.
 */
import { type Activation, activationCode, checkActivation } from "../core/activation.js";
import { affineVector, type ConventionOptions, conventionDims, resolveConvention } from "../core/conventions.js";
import type { Dims } from "../core/dims.js";
import { type Dtype, isHalf } from "../core/dtype.js";
import { checkMemory } from "../core/params.js";
import { InputError } from "../errors.js";
import { MemorySink, MemorySource, type StoredArray } from "../io/memory.js";
import { streamBackward } from "../pipeline/backward.js";
import { streamForward } from "../pipeline/forward.js";
import { statsDtypeOf } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { type BackwardOutput, defaultBackwardOutputs } from "./backward.js";
import { affineShape, groupSumsHeld, GroupSumSink } from "./conventions.js";
import { type GroupNormEngine, withEngine } from "./engine.js";

/** A tensor's values: float32, float64, or float16 or bfloat16 bit patterns (Uint16Array, with dtype "float16" or "bfloat16"). */
export type TensorData = Float32Array | Float64Array | Uint16Array;

export interface GroupNormOptions extends ConventionOptions {
  /**
   * Scale and shift, C values each, or G with affine "per-group" (default 1 and 0). The other
   * options: groups (or groupSize), eps (default 1e-5), layout ("nchw": shape (N, C, *spatial);
   * "nhwc": (N, *spatial, C); default "nchw"), grouping, affine and compat, as the flags.
   */
  gamma?: ArrayLike<number> | null;
  beta?: ArrayLike<number> | null;
  /** The dtype of Uint16Array inputs: "float16" or "bfloat16". Float32Array and Float64Array speak for themselves. */
  dtype?: Dtype;
  /** Threads of the default engine (default: the available cores); ignored with `engine`. */
  threads?: number;
  /** An engine from createEngine() (default: the shared one for `threads`). */
  engine?: GroupNormEngine;
  /** Bytes of slices in flight (default 384 MiB). */
  memory?: number;
  /** Y = act(GroupNorm(X)), computed in the same pass: "silu" (or "swish"), "gelu", "gelu-tanh" (default none). */
  activation?: Activation | "swish" | "none" | null;
}

export interface GroupNormResult {
  /** X's dtype and shape (Uint16Array of float16 or bfloat16 bits for those inputs). */
  y: TensorData;
  /** (N, G), float64 for float64 input, else float32. */
  mean: Float32Array | Float64Array;
  rstd: Float32Array | Float64Array;
  /** (N, G): each group's biased variance, as the statistics kernel computed it. */
  variance: Float32Array | Float64Array;
}

/** `beta` is the forward's shift, used only with `activation` (the pre-activation needs it; default 0). */
export interface GroupNormBackwardOptions extends GroupNormOptions {
  /** The forward's statistics, N·G values each, given together (default: recomputed from x with eps). */
  mean?: ArrayLike<number> | null;
  rstd?: ArrayLike<number> | null;
  /** Which results to compute (default dx, and dgamma, dbeta with gamma). */
  outputs?: BackwardOutput[];
}

export interface GroupNormBackwardResult {
  /** X's dtype and shape. */
  dx?: TensorData;
  /** C values each (G with affine "per-group"), in X's dtype. */
  dgamma?: TensorData;
  dbeta?: TensorData;
}

function dtypeOf(a: TensorData, given: Dtype | undefined, what: string): Dtype {
  const own: Dtype | null = a instanceof Float32Array ? "float32" : a instanceof Float64Array ? "float64" : null;
  if (a instanceof Uint16Array) {
    if (given === undefined || !isHalf(given)) throw new InputError(`${what} is a Uint16Array: pass dtype: "float16" or "bfloat16" to read it as float16 or bfloat16 bits`);
    return given;
  }
  if (!own) throw new InputError(`${what} must be a Float32Array, a Float64Array or a Uint16Array of float16 or bfloat16 bits`);
  if (given !== undefined && given !== own && !isHalf(given)) throw new InputError(`${what} is a ${a.constructor.name} but dtype is "${given}"`);
  return own;
}

function source(name: string, a: TensorData, shape: readonly number[], dtype: Dtype | undefined): MemorySource {
  if (!Array.isArray(shape) || shape.some((s) => !Number.isSafeInteger(s) || s < 0)) {
    throw new InputError(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const size = shape.reduce((p, s) => p * s, 1);
  if (a.length !== size) throw new InputError(`${name} has ${a.length} values but shape (${shape.join(", ")}) has ${size}`);
  return new MemorySource(name, a as StoredArray, dtypeOf(a, dtype, name), [...shape]);
}

/** Whether a vector option is given; its values, not float16 or bfloat16 bits. */
function given(v: ArrayLike<number> | null | undefined, what: string): v is ArrayLike<number> {
  if (v === null || v === undefined) return false;
  if (v instanceof Uint16Array) throw new InputError(`${what} is a Uint16Array: give its values (decode float16 bits with decodeFloat16, bfloat16 bits with decodeBfloat16)`);
  return true;
}

/** gamma or beta: C values, or G with affine "per-group", as the C per-channel values the pipeline takes. */
function affine(v: ArrayLike<number> | null | undefined, d: Dims, kind: "per-channel" | "per-group", what: string): Float64Array | null {
  if (!given(v, what)) return null;
  const [want, other] = kind === "per-group" ? [d.G, d.C] : [d.C, d.G];
  // a length of the other kind gets affineVector's hint; any other, the count
  if (v.length !== want && v.length !== other) throw new InputError(`${what} must have ${want} values (${kind === "per-group" ? `G = ${d.G}, affine: "per-group"` : `C = ${d.C}`}), got ${v.length}`);
  return affineVector(v, d, kind, what, undefined, [v.length], true);
}

function vector(v: ArrayLike<number> | null | undefined, length: number, what: string, meaning: string): Float64Array | null {
  if (!given(v, what)) return null;
  if (v.length !== length) throw new InputError(`${what} must have ${length} values (${meaning}), got ${v.length}`);
  return Float64Array.from(v);
}

/** Y = GroupNorm(X), with its per-(n, g) mean and rstd. */
export function groupNorm(x: TensorData, shape: readonly number[], o: GroupNormOptions): Promise<GroupNormResult> {
  try {
    const xs = source("x", x, shape, o.dtype);
    const conv = resolveConvention(o);
    const d = conventionDims(xs.shape, conv, "x");
    const gamma = affine(o.gamma, d, conv.affine, "gamma");
    const beta = affine(o.beta, d, conv.affine, "beta");
    const eps = conv.eps;
    const memoryBudget = checkMemory(o.memory, DEFAULT_MEMORY);
    const act = activationCode(checkActivation(o.activation));
    const statsDtype = statsDtypeOf(xs.dtype);
    return withEngine(o, async (engine) => {
      const stats = () => new MemorySink(statsDtype, [d.N, d.G]);
      const sinks = { y: new MemorySink(xs.dtype, xs.shape), mean: stats(), rstd: stats(), var: stats() };
      await streamForward(engine, { x: xs, dims: d, gamma, beta, eps, act, memoryBudget, sinks });
      const out = (s: MemorySink) => s.data as Float32Array | Float64Array;
      return { y: sinks.y.data, mean: out(sinks.mean), rstd: out(sinks.rstd), variance: out(sinks.var) };
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

/** dX, dgamma and dbeta of GroupNorm (or of act(GroupNorm), with `activation` and the forward's `beta`) for upstream gradient dY (those asked for). */
export function groupNormBackward(dy: TensorData, x: TensorData, shape: readonly number[], o: GroupNormBackwardOptions): Promise<GroupNormBackwardResult> {
  try {
    const xs = source("x", x, shape, o.dtype);
    const dys = source("dy", dy, shape, o.dtype);
    const conv = resolveConvention(o);
    const d = conventionDims(xs.shape, conv, "x");
    const gamma = affine(o.gamma, d, conv.affine, "gamma");
    if ((o.mean == null) !== (o.rstd == null)) throw new InputError("mean and rstd must be given together (or neither, to recompute them from x)");
    const mean = vector(o.mean, d.N * d.G, "mean", `N·G = ${d.N * d.G}`);
    const rstd = vector(o.rstd, d.N * d.G, "rstd", `N·G = ${d.N * d.G}`);
    const eps = conv.eps;
    const memoryBudget = checkMemory(o.memory, DEFAULT_MEMORY);
    const act = activationCode(checkActivation(o.activation));
    const beta = act ? affine(o.beta, d, conv.affine, "beta") : null;
    const wanted = o.outputs ?? defaultBackwardOutputs(gamma !== null);
    for (const w of wanted) if (w !== "dx" && w !== "dgamma" && w !== "dbeta") throw new InputError(`outputs: unknown output '${w}' (expected dx, dgamma or dbeta)`);
    return withEngine(o, async (engine) => {
      const sinks = {
        dx: wanted.includes("dx") ? new MemorySink(xs.dtype, xs.shape) : undefined,
        dgamma: wanted.includes("dgamma") ? new MemorySink(xs.dtype, affineShape(d, conv)) : undefined,
        dbeta: wanted.includes("dbeta") ? new MemorySink(xs.dtype, affineShape(d, conv)) : undefined,
      };
      // per group: the per-channel sums of each group's channels
      const sum = (s: MemorySink | undefined) => (s && conv.affine === "per-group" ? new GroupSumSink(s, d) : s);
      const held = groupSumsHeld(d, conv, wanted.filter((w) => w !== "dx"), xs.name);
      const stats = mean && rstd ? { mean, rstd } : null;
      await streamBackward(engine, { dy: dys, x: xs, dims: d, gamma, stats, eps, act, beta, memoryBudget, held, sinks: { dx: sinks.dx, dgamma: sum(sinks.dgamma), dbeta: sum(sinks.dbeta) } });
      const out: GroupNormBackwardResult = {};
      if (sinks.dx) out.dx = sinks.dx.data;
      if (sinks.dgamma) out.dgamma = sinks.dgamma.data;
      if (sinks.dbeta) out.dbeta = sinks.dbeta.data;
      return out;
    });
  } catch (e) {
    return Promise.reject(e);
  }
}
