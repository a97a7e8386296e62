/**
 * Cutting a tensor into slices that fit the memory budget (streamed by stream.ts: three slice
 * buffers in flight), or, when not even one slice fits, into items streamed in chunks. A slice
 * is a run of whole samples, or, when one sample is over the budget in NCHW, a run of whole groups
 * of one sample (groups are independent and contiguous there). Slices keep the (n, g) and (n, c)
 * order of the whole tensor, so statistics, outputs and the dgamma/dbeta sums over n come out in
 * the same order, bitwise the same as one in-memory run.
 */
import type { Dims } from "../core/dims.js";
import type { Engine } from "../kernels/engine.js";
import type { TensorSource } from "../io/tensor.js";
import { type Geometry, interleavedGroups, type Precision, unitOffset, workLayout } from "../kernels/plan.js";

/** Default memory budget of a run (--memory): everything that grows with the tensor counts against it. */
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

/** Slices of whole samples (`samples` per slice) or, NCHW, of whole groups of one sample (`groups` per slice). */
export function sliceList(d: Dims, precision: Precision, per: { samples: number } | { groups: number }): Slice[] {
  const sample = d.C * d.HxW;
  const slices: Slice[] = [];
  if ("samples" in per) {
    for (let n0 = 0; n0 < d.N; n0 += per.samples) {
      const ns = Math.min(per.samples, d.N - n0);
      slices.push({ index: slices.length, start: n0 * sample, count: ns * sample, geo: { ...d, N: ns, precision }, n0, g0: 0, c0: 0, stats0: n0 * d.G });
    }
    return slices;
  }
  const group = d.D * d.HxW;
  for (let n = 0; n < d.N; n++) {
    for (let g0 = 0; g0 < d.G; g0 += per.groups) {
      const k = Math.min(per.groups, d.G - g0);
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
 * Items too large for the budget (an NHWC sample, or an NCHW group as a one-group tensor), streamed
 * in chunks of whole units. The items' units are the in-memory run's units, so the partial sums, and
 * the results, are the same. `unitValues` is the largest unit's value count; `chunked(k)` cuts every
 * item into chunks of k units and gives the chunk buffer's size in values.
 */
export function planChunkItems(d: Dims, precision: Precision): {
  geo: Geometry;
  units: number;
  unitValues: number;
  chunked(unitsPer: number): { items: ChunkedItemPlan[]; cap: number };
} {
  const eb = elementBytes(precision);
  // an NCHW sample with interleaved groups is one item, as an NHWC sample (its groups span it)
  const sampleItems = d.layout === "nhwc" || interleavedGroups({ ...d, precision });
  const geo: Geometry =
    sampleItems ? { ...d, N: 1, precision } : { N: 1, C: d.D, HxW: d.HxW, G: 1, D: d.D, layout: "nchw", precision };
  const w = workLayout(geo);
  const itemValues = geo.C * geo.HxW;
  const end = (u: number) => (u >= w.unitsPerItem ? itemValues : unitOffset(geo, u) / eb);
  let largest = 0;
  for (let u = 0; u < w.unitsPerItem; u++) largest = Math.max(largest, end(u + 1) - end(u));
  return {
    geo,
    units: w.unitsPerItem,
    unitValues: largest,
    chunked(unitsPer) {
      const chunks: ChunkedItemPlan["chunks"] = [];
      for (let u0 = 0; u0 < w.unitsPerItem; u0 += unitsPer) {
        const u1 = Math.min(w.unitsPerItem, u0 + unitsPer);
        chunks.push({ u0, u1, from: end(u0), to: end(u1) });
      }
      const items: ChunkedItemPlan[] = [];
      if (sampleItems) {
        // each group's shift: the value of its first channel (g·D, or g interleaved) at position 0
        const first = (g: number) => (geo.interleaved ? g : g * d.D) * (d.layout === "nhwc" ? 1 : d.HxW);
        for (let n = 0; n < d.N; n++) {
          items.push({ start: n * itemValues, count: itemValues, geo, n, c0: 0, stats0: n * d.G, shiftAt: Array.from({ length: d.G }, (_, g) => first(g)), chunks });
        }
      } else {
        for (let n = 0; n < d.N; n++) {
          for (let g = 0; g < d.G; g++) {
            items.push({ start: (n * d.C + g * d.D) * d.HxW, count: itemValues, geo, n, c0: g * d.D, stats0: n * d.G + g, shiftAt: [0], chunks });
          }
        }
      }
      return { items, cap: Math.max(...chunks.map((c) => c.to - c.from)) };
    },
  };
}

/** Each group's shift K of a chunked item: its first value, read from the file. */
export async function readShifts(reader: TensorSource, item: ChunkedItemPlan): Promise<Float64Array> {
  const shifts = new Float64Array(item.shiftAt.length);
  const one = new Float64Array(1);
  for (const [g, at] of item.shiftAt.entries()) {
    await reader.read(item.start + at, 1, one);
    shifts[g] = one[0];
  }
  return shifts;
}
