/**
 * Cutting a tensor into slices that fit the memory budget, and streaming them through the arena:
 * while slice k is computed, slice k+1 is read and slice k−1 written (three slice buffers). A slice
 * is a run of whole samples, or, when one sample is over the budget in NCHW, a run of whole groups
 * of one sample (groups are independent and contiguous there). Slices keep the (n, g) and (n, c)
 * order of the whole tensor, so statistics, outputs and the dgamma/dbeta sums over n come out in
 * the same order, bitwise the same as one in-memory run.
 */
import { InputError } from "../errors.js";
import type { Dims } from "../core/dims.js";
import type { Engine } from "../kernels/engine.js";
import type { NpyReader } from "../io/npy/index.js";
import { type Geometry, type Precision, unitOffset, workLayout } from "../kernels/plan.js";

export interface Phases {
  read: number;
  compute: number;
  write: number;
  total: number;
}

/** Busy time per phase (phases may overlap) and the wall time from creation to `finish()`. */
export function phaseTimer(): {
  phases: Phases;
  timed: (kind: "read" | "compute" | "write", f: () => Promise<unknown>) => Promise<void>;
  finish: () => Phases;
} {
  const phases: Phases = { read: 0, compute: 0, write: 0, total: 0 };
  const t0 = performance.now();
  return {
    phases,
    async timed(kind, f) {
      const t = performance.now();
      await f();
      phases[kind] += performance.now() - t;
    },
    finish() {
      phases.total = performance.now() - t0;
      return phases;
    },
  };
}

/** Default budget for the slice buffers in the arena; the process stays well under 1 GiB. */
export const DEFAULT_MEMORY = 384 * 1024 * 1024;

/**
 * Preferred bytes per tensor buffer: small enough that reading, computing and writing overlap over
 * several slices (and the kernel never waits on one huge write), large enough to keep the pool busy.
 */
export const SLICE_TARGET = 8 * 1024 * 1024;

export function elementBytes(p: Precision): number {
  return p === "f32" ? 4 : 8;
}

export interface Slice {
  index: number;
  /** First value (C order) and number of values. */
  start: number;
  count: number;
  /** Geometry of the slice as a tensor of its own. */
  geo: Geometry;
  /** First sample, first group (within the sample) and first channel. */
  n0: number;
  g0: number;
  c0: number;
  /** Range of the (N, G) statistics it covers: [stats0, stats0 + geo.N·geo.G). */
  stats0: number;
}

/**
 * Slices of `tensors` tensors of d's shape (X alone for forward, dY and X for backward), each slice
 * buffer holding at most budget / (3·tensors) bytes per tensor (three buffers in flight). Empty when
 * not even one NCHW group or one NHWC sample fits: then the items are streamed in chunks (planChunks).
 */
export function planSlices(d: Dims, precision: Precision, tensors: number, budget: number): Slice[] {
  const eb = elementBytes(precision);
  const perBuffer = Math.min(SLICE_TARGET, Math.floor(budget / (3 * tensors)));
  const hardLimit = Math.floor(budget / (3 * tensors));
  const sample = d.C * d.HxW;
  const slices: Slice[] = [];
  if (d.N === 0 || sample === 0) {
    slices.push({ index: 0, start: 0, count: d.N * sample, geo: { ...d, precision }, n0: 0, g0: 0, c0: 0, stats0: 0 });
    return slices;
  }
  const samplesPer = Math.max(Math.floor(perBuffer / (sample * eb)), sample * eb <= hardLimit ? 1 : 0);
  if (samplesPer >= 1) {
    for (let n0 = 0; n0 < d.N; n0 += samplesPer) {
      const ns = Math.min(samplesPer, d.N - n0);
      slices.push({ index: slices.length, start: n0 * sample, count: ns * sample, geo: { ...d, N: ns, precision }, n0, g0: 0, c0: 0, stats0: n0 * d.G });
    }
    return slices;
  }
  const group = d.D * d.HxW;
  const groupsPer = Math.max(Math.floor(perBuffer / (group * eb)), group * eb <= hardLimit ? 1 : 0);
  if (d.layout !== "nchw" || groupsPer < 1) return [];
  for (let n = 0; n < d.N; n++) {
    for (let g0 = 0; g0 < d.G; g0 += groupsPer) {
      const k = Math.min(groupsPer, d.G - g0);
      slices.push({
        index: slices.length,
        start: n * sample + g0 * group,
        count: k * group,
        geo: { N: 1, C: k * d.D, HxW: d.HxW, G: k, D: d.D, layout: d.layout, precision },
        n0: n,
        g0,
        c0: g0 * d.D,
        stats0: n * d.G + g0,
      });
    }
  }
  return slices;
}

/** The largest slice's value count (the size of each slice buffer). */
export function maxCount(slices: Slice[]): number {
  return slices.reduce((m, s) => Math.max(m, s.count), 0);
}

export function viewOf(engine: Engine, p: Precision, ptr: number, count: number): Float32Array | Float64Array {
  return p === "f32" ? engine.arena.f32(ptr, count) : engine.arena.f64(ptr, count);
}

/**
 * Run read → compute → write over the slices with up to three buffer sets in rotation: read(k+1),
 * compute(k) and write(k−1) proceed together (min(3, slices) buffers are needed). Steps of one kind
 * run in slice order. Times per phase are busy times (they overlap); `total` is the wall time.
 */
export async function pipeline<B>(
  slices: Slice[],
  buffers: B[],
  steps: {
    read(s: Slice, b: B): Promise<void>;
    compute(s: Slice, b: B): Promise<void>;
    write(s: Slice, b: B): Promise<void>;
  },
  onSlice?: (done: Slice) => void,
): Promise<Phases> {
  const { timed, finish } = phaseTimer();
  const S = slices.length;
  const nb = buffers.length;
  if (nb < Math.min(3, S)) throw new Error(`pipeline: ${nb} buffers for ${S} slices`);
  for (let k = 0; k < S + 2; k++) {
    const work: Promise<void>[] = [];
    if (k < S) work.push(timed("read", () => steps.read(slices[k], buffers[k % nb])));
    if (k - 1 >= 0 && k - 1 < S) work.push(timed("compute", () => steps.compute(slices[k - 1], buffers[(k - 1) % nb])));
    if (k - 2 >= 0 && k - 2 < S) {
      const s = slices[k - 2];
      work.push(timed("write", () => steps.write(s, buffers[(k - 2) % nb])).then(() => onSlice?.(s)));
    }
    // settle all before failing, so no step is left running against a buffer we give back
    const results = await Promise.allSettled(work);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
  return finish();
}

/** An item streamed in chunks: an NHWC sample, or an NCHW group as a one-group tensor. */
export interface ChunkedItemPlan {
  /** First value of the item in the file (C order) and its number of values. */
  start: number;
  count: number;
  geo: Geometry;
  n: number;
  c0: number;
  stats0: number;
  /** Value index (from `start`) of each group's first value, its shift K. */
  shiftAt: number[];
  /** Chunks of whole units: [u0, u1) and their values [from, to) relative to `start`. */
  chunks: Array<{ u0: number; u1: number; from: number; to: number }>;
}

/**
 * Items too large for the budget, streamed in chunks of whole units through one buffer per
 * tensor of at most budget / (2·tensors) bytes. The items' units are the in-memory run's units, so
 * the partial sums, and the results, are the same.
 */
export function planChunks(d: Dims, precision: Precision, tensors: number, budget: number): ChunkedItemPlan[] {
  const eb = elementBytes(precision);
  const perBuffer = Math.floor(budget / (2 * tensors));
  const geo: Geometry =
    d.layout === "nhwc" ? { ...d, N: 1, precision } : { N: 1, C: d.D, HxW: d.HxW, G: 1, D: d.D, layout: "nchw", precision };
  const w = workLayout(geo);
  const itemValues = geo.C * geo.HxW;
  const end = (u: number) => (u >= w.unitsPerItem ? itemValues : unitOffset(geo, u) / eb);
  let largest = 0;
  for (let u = 0; u < w.unitsPerItem; u++) largest = Math.max(largest, end(u + 1) - end(u));
  const unitsPer = Math.floor(perBuffer / (largest * eb));
  if (unitsPer < 1) {
    throw new InputError(`a work unit of ${largest * eb} bytes does not fit the memory budget of ${budget} bytes; raise --memory`);
  }
  const chunks: ChunkedItemPlan["chunks"] = [];
  for (let u0 = 0; u0 < w.unitsPerItem; u0 += unitsPer) {
    const u1 = Math.min(w.unitsPerItem, u0 + unitsPer);
    chunks.push({ u0, u1, from: end(u0), to: end(u1) });
  }
  const items: ChunkedItemPlan[] = [];
  if (d.layout === "nhwc") {
    for (let n = 0; n < d.N; n++) {
      items.push({ start: n * itemValues, count: itemValues, geo, n, c0: 0, stats0: n * d.G, shiftAt: Array.from({ length: d.G }, (_, g) => g * d.D), chunks });
    }
  } else {
    for (let n = 0; n < d.N; n++) {
      for (let g = 0; g < d.G; g++) {
        items.push({ start: (n * d.C + g * d.D) * d.HxW, count: itemValues, geo, n, c0: g * d.D, stats0: n * d.G + g, shiftAt: [0], chunks });
      }
    }
  }
  return items;
}

/** Each group's shift K of a chunked item: its first value, read from the file. */
export async function readShifts(reader: NpyReader, item: ChunkedItemPlan): Promise<Float64Array> {
  const shifts = new Float64Array(item.shiftAt.length);
  const one = new Float64Array(1);
  for (const [g, at] of item.shiftAt.entries()) {
    await reader.read(item.start + at, 1, one);
    shifts[g] = one[0];
  }
  return shifts;
}
