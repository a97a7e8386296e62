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
import { BLOCK, type Geometry, type Precision, unitOffset, workLayout } from "../kernels/plan.js";

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

/**
 * The slices of a run, described arithmetically: `count` slices, each made on demand by `at(k)`, so
 * planning takes constant time and memory however many slices there are (a tensor of 2^40 samples
 * has hundreds of millions).
 */
export interface SlicePlan {
  readonly count: number;
  /** The largest slice's value count (the size of each slice buffer). */
  readonly cap: number;
  at(index: number): Slice;
}

/** Slices of whole samples (`samples` per slice) or, NCHW, of whole groups of one sample (`groups` per slice). */
export function slicePlan(d: Dims, precision: Precision, per: { samples: number } | { groups: number }): SlicePlan {
  const sample = d.C * d.HxW;
  if ("samples" in per) {
    const k = per.samples;
    return {
      count: Math.ceil(d.N / k),
      cap: Math.min(k, d.N) * sample,
      at(index) {
        const n0 = index * k, ns = Math.min(k, d.N - n0);
        return { index, start: n0 * sample, count: ns * sample, geo: { ...d, N: ns, precision }, n0, g0: 0, c0: 0, stats0: n0 * d.G };
      },
    };
  }
  const group = d.D * d.HxW;
  const k = per.groups, perSample = Math.ceil(d.G / k);
  return {
    count: d.N * perSample,
    cap: Math.min(k, d.G) * group,
    at(index) {
      const n = Math.floor(index / perSample), g0 = (index - n * perSample) * k, gs = Math.min(k, d.G - g0);
      return {
        index,
        start: n * sample + g0 * group,
        count: gs * group,
        geo: { N: 1, C: gs * d.D, HxW: d.HxW, G: gs, D: d.D, layout: d.layout, precision },
        n0: n,
        g0,
        c0: g0 * d.D,
        stats0: n * d.G + g0,
      };
    },
  };
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
  /** Groups of the item (geo.G); group g's first value, its shift K, is value g·D from `start`. */
  groups: number;
}

/** A chunk of an item: whole units [u0, u1) and their values [from, to) relative to the item's start. */
export interface Chunk {
  u0: number;
  u1: number;
  from: number;
  to: number;
}

/**
 * Items streamed in chunks, described arithmetically as slices are: `items` items of
 * `chunksPerItem` chunks each, made on demand, and the chunk buffer's size `cap` in values.
 */
export interface ChunkPlan {
  readonly geo: Geometry;
  readonly items: number;
  readonly chunksPerItem: number;
  readonly cap: number;
  item(index: number): ChunkedItemPlan;
  chunk(index: number): Chunk;
}

/**
 * Items too large for the budget (an NHWC sample, or an NCHW group as a one-group tensor), streamed
 * in chunks of whole units. The items' units are the in-memory run's units, so the partial sums, and
 * the results, are the same. `unitValues` is the largest unit's value count; `chunked(k)` cuts every
 * item into chunks of k units. Nothing here loops over units or items.
 */
export function planChunkItems(d: Dims, precision: Precision): {
  geo: Geometry;
  units: number;
  unitValues: number;
  chunked(unitsPer: number): ChunkPlan;
} {
  const eb = elementBytes(precision);
  const geo: Geometry =
    d.layout === "nhwc" ? { ...d, N: 1, precision } : { N: 1, C: d.D, HxW: d.HxW, G: 1, D: d.D, layout: "nchw", precision };
  const w = workLayout(geo);
  const units = w.unitsPerItem;
  const itemValues = geo.C * geo.HxW;
  const end = (u: number) => (u >= units ? itemValues : unitOffset(geo, u) / eb);
  // units are equal but for the last one (of the item, or NCHW of each channel's blocks), never larger
  const unitValues = geo.layout === "nhwc" ? Math.min(w.rows, geo.HxW) * geo.C : w.blocks === 1 ? Math.min(w.cpu, geo.D) * geo.HxW : Math.min(BLOCK, geo.HxW);
  return {
    geo,
    units,
    unitValues,
    chunked(unitsPer) {
      const perSample = d.layout === "nhwc" ? 1 : d.G;
      return {
        geo,
        items: d.N * perSample,
        chunksPerItem: Math.ceil(units / unitsPer),
        // a chunk of full units holds the most (with blocks, at most unitsPer full blocks)
        cap: Math.min(itemValues, unitsPer * unitValues),
        item(index) {
          const n = Math.floor(index / perSample), g = index - n * perSample;
          return d.layout === "nhwc"
            ? { start: n * itemValues, count: itemValues, geo, n, c0: 0, stats0: n * d.G, groups: d.G }
            : { start: (n * d.C + g * d.D) * d.HxW, count: itemValues, geo, n, c0: g * d.D, stats0: n * d.G + g, groups: 1 };
        },
        chunk(index) {
          const u0 = index * unitsPer, u1 = Math.min(units, u0 + unitsPer);
          return { u0, u1, from: end(u0), to: end(u1) };
        },
      };
    },
  };
}

/** Each group's shift K of a chunked item: its first value, read from the file. */
export async function readShifts(reader: TensorSource, item: ChunkedItemPlan): Promise<Float64Array> {
  const shifts = new Float64Array(item.groups);
  const one = new Float64Array(1);
  for (let g = 0; g < item.groups; g++) {
    await reader.read(item.start + g * item.geo.D, 1, one);
    shifts[g] = one[0];
  }
  return shifts;
}
