/**
 * gradcheck as a function: the production backward against central differences of the float64
 * reference, on random inputs of a shape or on inputs from files (the `gradcheck` command). Its
 * memory is bounded by `memory` like every run: random inputs are held in their dtype and count
 * against it; inputs from files are streamed. Everything that could refuse the run (the flags, the
 * shapes, the memory, the typed-array and WebAssembly limits, the production backward's plan) is
 * checked before any value is made or read, and the values are made in pieces that let a signal in.
 */
import { constants } from "node:buffer";
import { totalmem } from "node:os";
import { type Activation, checkActivation } from "../core/activation.js";
import { sizeText } from "../core/units.js";
import { type Dims, formatShape, groupNormDims, type Layout, memoryOrder, sameShape } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { checkEps, checkLayout, checkMemory } from "../core/params.js";
import { InputError } from "../errors.js";
import { defaultTolerances, gradcheck as check, groupBytes, type OutputCheck } from "../checks/gradcheck.js";
import { Pacer } from "../checks/pace.js";
import { normalsOnEngine } from "../checks/normals.js";
import { normalsIntoPaced } from "../checks/random.js";
import { bf16ToF32, f64ToBF16 } from "../io/bfloat16.js";
import { f16ToF32, f32ToF16 } from "../io/float16.js";
import type { Engine } from "../kernels/engine.js";
import { allocateStored, MemorySource } from "../io/memory.js";
import { closeAll, openTensors } from "../io/open.js";
import type { TensorSource } from "../io/tensor.js";
import { planRun } from "../pipeline/budget.js";
import { checkChannelVector, checkResident, precisionOf, readChannelVector } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { checkThreads, type GroupNormEngine, withEngine } from "./engine.js";

export interface GradcheckOptions {
  groups: number;
  eps?: number;
  layout?: Layout;
  /** Random inputs of this shape: N, C, spatial in this order for either layout. */
  shape?: number[];
  /** dtype of random inputs (default float32); with `x` the check runs in X's dtype, and another is refused. */
  dtype?: Dtype;
  /** Seed for random inputs and for sampling (default 0; with `x` and `dy`, for the sampling only). */
  seed?: number;
  /** Inputs from files instead of `shape`: X, and optionally dY (else random from the seed), gamma and beta. */
  x?: string;
  dy?: string;
  gamma?: string;
  beta?: string;
  /** false: no gamma/beta, dX only (default true; with `x`, affine only when gamma and beta are given; false with them is refused). */
  affine?: boolean;
  /** Check the gradients of act(GroupNorm(X)): "silu" (or "swish"), "gelu", "gelu-tanh" (default none). */
  activation?: Activation | "swish" | "none" | null;
  /** Entries checked per output at most (default 256, at most MAX_SAMPLES). */
  samples?: number;
  /** Tolerances (default by dtype: float64 1e-6 and 1e-5; float32 1e-3 and 1e-3; float16 and bfloat16 5e-2 and 5e-2). */
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

function checkCount(v: number | undefined, fallback: number, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < min) throw new InputError(`${what} must be ${min ? "a positive" : "a non-negative"} integer, got ${v}`);
  if (v > max) throw new InputError(`${what} must be at most ${max}, got ${v}`);
  return v;
}

function checkTolerance(v: number | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0) throw new InputError(`${what} must be a finite number >= 0, got ${v}`);
  return v;
}

/** Entries checked per output at most: each costs a few hundred bytes of bookkeeping (counted against --memory). */
export const MAX_SAMPLES = 1_000_000;
const SAMPLE_BYTES = 256;

/** The most elements one typed array may have in this Node.js: 2^32 in Node.js 20, a byte limit in later ones. */
function typedArrayLimit(itemSize: number): number {
  return Math.min(constants.MAX_LENGTH, Math.floor(Number.MAX_SAFE_INTEGER / itemSize));
}

const typedArrayWords = (limit: number) => `one typed array holds at most ${limit} values in Node.js ${process.version}`;

/** Flags that do nothing in the combination given are refused, not ignored. */
function checkCombination(o: GradcheckOptions): void {
  if ((o.shape === undefined) === (o.x === undefined)) throw new InputError("give either --shape N,C,... (random inputs) or --x X.npy");
  if (o.shape !== undefined) {
    if (o.dy || o.gamma || o.beta) throw new InputError("--dy, --gamma and --beta go with --x; --shape makes random inputs");
    return;
  }
  if (o.affine === false && (o.gamma || o.beta)) throw new InputError(`--no-affine checks without gamma and beta, but ${o.gamma && o.beta ? "--gamma and --beta are" : o.gamma ? "--gamma is" : "--beta is"} given: drop --no-affine to check with them, or drop them`);
  if (!o.gamma !== !o.beta) throw new InputError("--gamma and --beta go together (or --no-affine, without either)");
}

/**
 * --shape's random inputs, x and dY, are held in memory, each in one typed array: a shape they
 * cannot be held in is refused before anything is made, by the first limit it meets (one typed
 * array's length, this machine's memory, then --memory, the only one a flag changes), saying a
 * shape that would do. `extra` is what the check holds beside them.
 */
function checkRandomShape(shape: number[], itemSize: number, extra: number, budget: number, least: () => number): void {
  const n = shape.reduce((a, b) => a * b, 1);
  const held = 2 * n * itemSize + extra;
  const limit = typedArrayLimit(itemSize), machine = totalmem();
  const given = `--shape ${shape.join(",")}`;
  let why: string, need = held;
  if (n > limit) why = `${given} has ${n} values, more than the ${limit} one typed array holds in Node.js ${process.version} (each input is one)`;
  else if (held > machine) why = `${given} needs ${sizeText(held)}, more than this machine's ${sizeText(machine)}${held > budget ? ` (and over --memory ${sizeText(budget)})` : ""}`;
  else {
    need = held + least(); // with the production backward's least
    if (need <= budget) return;
    why = `${given} needs ${sizeText(need)}${need > held ? ` (${sizeText(held)} held, ${sizeText(need - held)} for the production backward)` : ""}, over --memory ${sizeText(budget)}`;
  }
  // a shape that would do: fewer samples, within --memory and one typed array, in at most half of this machine
  const sample = n / shape[0];
  const backward = need - held;
  const values = (bytes: number) => Math.floor(Math.max(0, bytes - extra - backward) / (2 * itemSize));
  const fit = (most: number) => Math.min(shape[0] - 1, Math.floor(most / sample));
  const hard = Math.min(limit, values(machine / 2));
  const within = fit(Math.min(hard, values(budget)));
  const raise = n <= limit && held <= machine ? `raise --memory to ${sizeText(need)} or ` : "";
  let smaller: string;
  if (within >= 1) smaller = `check a smaller shape, e.g. --shape ${[within, ...shape.slice(1)].join(",")}`;
  else if (fit(hard) >= 1) smaller = `check a smaller shape, e.g. --shape ${[1, ...shape.slice(1)].join(",")} with --memory ${sizeText(2 * sample * itemSize + extra + backward)}`;
  else smaller = `check a smaller shape, with fewer channels or positions (one sample has ${sample} values)`;
  throw new InputError(`gradcheck holds its random inputs in memory: ${why}; ${raise}${smaller} (the kernels are the same at every size)`);
}

/** A random tensor held as its dtype stores it (the same values as rounding float64 normals), made in pieces on the engine's threads within `bytes` of its memory. */
async function randomSource(engine: Engine, bytes: number, name: string, dtype: Dtype, shape: number[], pacer: Pacer, seed: number, scale = 1, offset = 0): Promise<MemorySource> {
  const n = shape.reduce((a, b) => a * b, 1);
  let data: ReturnType<typeof allocateStored>;
  try {
    data = allocateStored(dtype, n);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new InputError(`cannot allocate ${sizeText(n * itemSizeOf(dtype))} for the random ${name} (${e.message}); check a smaller shape`);
  }
  await normalsOnEngine(engine, data, dtype, pacer, bytes, seed, scale, offset);
  return new MemorySource(name, data, dtype, shape);
}

/** C random values as a dtype stores them, as float64 (gamma, beta), made in pieces. */
async function storedVector(dtype: Dtype, C: number, pacer: Pacer, seed: number, scale = 1, offset = 0): Promise<Float64Array> {
  const v = new Float64Array(C);
  const store = dtype === "float32" ? Math.fround : dtype === "float16" ? (x: number) => f16ToF32(f32ToF16(x)) : dtype === "bfloat16" ? (x: number) => bf16ToF32(f64ToBF16(x)) : null;
  await normalsIntoPaced(v, pacer, seed, scale, offset, store);
  return v;
}

/** What a check works on, before any value is made or read. */
interface Setup {
  dtype: Dtype;
  /** The shape reported: --shape's N, C, spatial, or X's as stored. */
  shape: number[];
  /** X's shape as stored. */
  fileShape: number[];
  d: Dims;
  /** Sources open already (files); the random ones are made after every check has passed. */
  x?: TensorSource;
  dy?: TensorSource;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  affine: boolean;
  /** Random tensors to make: dtype and seeds. */
  random: Array<{ name: "x" | "dy"; seed: number; scale: number; offset: number }>;
  /** Random gamma and beta to make (--shape with affine). */
  randomAffine: boolean;
  /** Bytes held beside the production backward (random inputs, groups, vectors, sampling). */
  held: number;
  /** What `held` is, for a refusal. */
  heldWhat: string;
}

/**
 * The least memory the production backward needs for this check beside what the check holds, found
 * from its plan before anything is read (as streamBackward plans it: its dgamma/dbeta sums, gamma,
 * and beta through an activation, the inputs' own copies, the activation's coefficients). A tensor no
 * budget can stream (a unit of work beyond one WebAssembly memory) is refused here, by the plan's own words.
 */
function backwardLeast(s: Setup, threads: number, act: boolean): number {
  const precision = precisionOf(s.dtype, s.dy?.dtype ?? s.dtype);
  const vectors = 2 + (s.affine ? 1 : 0) + (s.affine && act ? 1 : 0);
  const hostBytes = 8 * s.d.C * vectors + (s.x?.residentBytes ?? 0) + (s.dy?.residentBytes ?? 0);
  const plan = (budget: number) =>
    planRun({ dims: s.d, precision, kind: "backward", budget, threads, host: [{ what: "the backward's vectors and reader copies", file: s.x?.name ?? "", bytes: hostBytes }], file: s.x?.name ?? "", act });
  const fits = (room: number) => {
    try {
      plan(room);
      return true;
    } catch (e) {
      if (e instanceof InputError) return false;
      throw e;
    }
  };
  if (!fits(Number.MAX_SAFE_INTEGER)) plan(Number.MAX_SAFE_INTEGER); // throws its refusal
  let lo = 0, hi = Number.MAX_SAFE_INTEGER; // fits(hi), not fits(lo)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export async function gradcheck(o: GradcheckOptions): Promise<GradcheckReport> {
  const eps = checkEps(o.eps);
  const layout = checkLayout(o.layout);
  const seed = checkCount(o.seed, 0, "seed", 0);
  const samples = checkCount(o.samples, 256, "samples", 1, MAX_SAMPLES);
  const budget = checkMemory(o.memory, DEFAULT_MEMORY);
  const activation = checkActivation(o.activation);
  checkCombination(o);
  const open: Partial<Record<string, TensorSource>> = {};
  try {
    let s: Setup;
    if (o.shape !== undefined) {
      const dtype = o.dtype ?? "float32";
      const fileShape = memoryOrder(o.shape, layout);
      const d = groupNormDims(fileShape, o.groups, layout, "--shape");
      const n = o.shape.reduce((a, b) => a * b, 1);
      const affine = o.affine !== false;
      s = {
        dtype, shape: o.shape, fileShape, d, affine, gamma: null, beta: null, randomAffine: affine,
        random: [{ name: "x", seed, scale: 1.5, offset: 0.5 }, { name: "dy", seed: seed + 1, scale: 1, offset: 0 }],
        held: 2 * n * itemSizeOf(dtype),
        heldWhat: "its random inputs",
      };
    } else {
      const affine = !!o.gamma; // with --beta (checkCombination)
      Object.assign(open, await openTensors({ x: o.x, dy: o.dy, gamma: affine ? o.gamma : undefined, beta: affine ? o.beta : undefined }));
      const xs = open.x!;
      if (o.dtype !== undefined && o.dtype !== xs.dtype) {
        throw new InputError(`is ${xs.dtype}, but --dtype asks for ${o.dtype}: gradcheck --x checks in X's own dtype; drop --dtype, or save X as ${o.dtype}`, xs.name);
      }
      const d = groupNormDims(xs.shape, o.groups, layout, xs.name);
      const shape = [...xs.shape];
      if (open.dy && !sameShape(open.dy.shape, shape)) throw new InputError(`dY shape ${formatShape(open.dy.shape)} differs from X's shape ${formatShape(shape)}`, open.dy.name);
      if (!open.dy && xs.size > typedArrayLimit(itemSizeOf(xs.dtype))) {
        throw new InputError(`gradcheck holds a random dY in one typed array, and ${typedArrayWords(typedArrayLimit(itemSizeOf(xs.dtype)))}: X has ${xs.size}; give --dy`, xs.name);
      }
      // gamma and beta are checked by their headers and counted before any of their data is read
      if (open.gamma) checkChannelVector(open.gamma, d.C, "gamma");
      if (open.beta) checkChannelVector(open.beta, d.C, "beta");
      // gamma held by the check and by the backward, beta by the check (and by the backward, through an activation)
      const early = (open.dy ? 0 : xs.size * itemSizeOf(xs.dtype)) + 8 * d.C * ((open.gamma ? 2 : 0) + (open.beta ? (activation ? 2 : 1) : 0)) + groupBytes(d);
      if (early > budget) {
        const what = [open.dy ? "" : "a random dY", open.gamma ? "gamma" : "", open.beta ? "beta" : "", "the groups it perturbs"].filter((v) => v);
        throw new InputError(`gradcheck needs ${sizeText(early)} for ${what.slice(0, -1).join(", ")}${what.length > 1 ? " and " : ""}${what[what.length - 1]}, over --memory ${sizeText(budget)}; raise --memory${open.dy ? "" : " or give --dy"}`);
      }
      s = {
        dtype: xs.dtype, shape, fileShape: shape, d, affine, x: xs, dy: open.dy,
        gamma: open.gamma ? await readChannelVector(open.gamma, d.C, "gamma") : null,
        beta: open.beta ? await readChannelVector(open.beta, d.C, "beta") : null,
        random: open.dy ? [] : [{ name: "dy", seed: seed + 1, scale: 1, offset: 0 }],
        randomAffine: false,
        held: open.dy ? 0 : xs.size * itemSizeOf(xs.dtype),
        heldWhat: open.dy ? "" : "a random dY",
      };
    }
    const { d } = s;
    // beside the production backward: the groups it perturbs, gamma and beta (gamma, and beta through an activation, counted by the backward too), the dgamma/dbeta results, the sampling's bookkeeping
    const size = d.N * d.C * d.HxW;
    const extra = groupBytes(d) + 8 * d.C * (2 + (s.affine ? 2 : 0)) + SAMPLE_BYTES * (Math.min(samples, size) + 2 * Math.min(samples, d.C));
    const threads = o.engine?.threads ?? checkThreads(o.threads);
    let least: number | undefined;
    const backward = () => (least ??= backwardLeast(s, threads, activation !== null));
    if (o.shape !== undefined) checkRandomShape(o.shape, itemSizeOf(s.dtype), extra, budget, backward);
    const groupLimit = typedArrayLimit(8);
    const moreGroups = d.D > 1 ? "use more groups" : "check a smaller tensor (each group is one channel already)";
    if (d.D * d.HxW > groupLimit) {
      throw new InputError(`gradcheck holds a group's values in one float64 typed array, and ${typedArrayWords(groupLimit)}: a group of D = ${d.D} channel${d.D === 1 ? "" : "s"} × ${d.HxW} positions has ${d.D * d.HxW}; ${moreGroups}`);
    }
    s.heldWhat = [s.heldWhat, "the groups it perturbs and its per-channel vectors"].filter(Boolean).join(", ");
    s.held += extra;
    if (o.shape === undefined) {
      const machine = totalmem();
      const change = s.dy ? moreGroups : d.D > 1 ? "give --dy, or use more groups" : "give --dy";
      if (s.held > machine) throw new InputError(`gradcheck needs ${sizeText(s.held)} for ${s.heldWhat}, more than this machine's ${sizeText(machine)}; ${change}`);
      const need = s.held + backward();
      if (need > budget) throw new InputError(`gradcheck needs ${sizeText(need)}: ${sizeText(s.held)} for ${s.heldWhat}, and ${sizeText(need - s.held)} for the production backward; over --memory ${sizeText(budget)}: raise --memory to ${sizeText(need)}, or ${change}`);
      // a Fortran-order file is read through a C-order copy of it, which must fit half of what the backward has
      if (s.x) checkResident(s.x, budget - s.held);
      if (s.dy) checkResident(s.dy, budget - s.held);
    }
    const tol = defaultTolerances(s.dtype);
    const atol = checkTolerance(o.atol, tol.atol, "--atol");
    const rtol = checkTolerance(o.rtol, tol.rtol, "--rtol");
    return await withEngine(o, async (engine) => {
      engine.resetUse();
      // every check has passed: make the random inputs, in pieces that let a signal in
      const pacer = new Pacer();
      if (s.randomAffine) {
        s.gamma = await storedVector(s.dtype, d.C, pacer, seed + 2, 0.5, 1);
        s.beta = await storedVector(s.dtype, d.C, pacer, seed + 3);
      }
      // on the engine's threads, in chunks within what the production backward is given next
      for (const r of s.random) s[r.name] = await randomSource(engine, budget - s.held, r.name, s.dtype, s.fileShape, pacer, r.seed, r.scale, r.offset);
      const precision = s.dtype === "float64" ? "f64" : "f32";
      const r = await check(engine, { d, shape: s.fileShape, x: s.x!, dy: s.dy!, gamma: s.gamma, beta: s.beta, eps, activation, precision, memoryBudget: budget - s.held }, { samples, seed, atol, rtol, pacer });
      return {
        command: "gradcheck",
        passed: r.passed,
        outputs: r.outputs,
        shape: s.shape,
        dtype: s.dtype,
        layout,
        groups: o.groups,
        eps,
        activation,
        affine: s.gamma !== null,
        atol,
        rtol,
        samples,
        seed,
        threads: engine.threadsUsed,
      };
    });
  } finally {
    await closeAll(open);
  }
}
