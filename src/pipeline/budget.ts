/**
 * The memory budget of a streamed run (--memory): everything that grows with the tensor counts
 * against it — the slice buffers in flight, each job's scratch and per-channel and per-group vectors
 * in the arena, and the vectors the run keeps on the JavaScript side. A run either fits, with the
 * largest slices that do, or is refused before anything is read, saying what to change.
 */
import { sizeText } from "../core/units.js";
import type { Dims } from "../core/dims.js";
import { InputError } from "../errors.js";
import { align64, CONTROL_BYTES } from "../kernels/arena.js";
import { type Geometry, jobArenaBytes, type Precision } from "../kernels/plan.js";
import { MAX_PAGES, WASM_PAGE } from "../kernels/wasm.js";
import { type ChunkPlan, elementBytes, planChunkItems, SLICE_TARGET, type SlicePlan, slicePlan } from "./slices.js";

/** The most one WebAssembly memory holds for the arena. */
export const ARENA_LIMIT = MAX_PAGES * WASM_PAGE - CONTROL_BYTES;
/** Preferred bytes per chunk buffer of an item streamed in chunks (chunks do not overlap: no need for more). */
export const CHUNK_TARGET = 32 * 1024 * 1024;

export type Kind = "forward" | "backward";

export type Plan =
  | { kind: "empty" }
  | { kind: "slices"; slices: SlicePlan }
  | { kind: "chunks"; chunks: ChunkPlan };

/**
 * Memory a run holds outside the slices whatever the slicing (vectors read or accumulated, an
 * input's own copy): what it is, in words for a refusal, the file it comes from, and its bytes.
 */
export interface HostPart {
  what: string;
  file: string;
  bytes: number;
  /** What else would do, instead of more memory. */
  instead?: string;
  /** Set when the part must fit half the budget (an input's copy): the refusal when it does not, given the --memory that would do. */
  half?: (budget: number, need: number) => string;
}

export interface PlanInput {
  dims: Dims;
  precision: Precision;
  kind: Kind;
  budget: number;
  threads: number;
  /** What the run holds outside the arena whatever the slicing (vectors read or accumulated, reader copies). */
  host: HostPart[];
  /** X's file, named by refusals of the slices' own memory. */
  file: string;
  /** Forward: each group's variance is kept too (the var output). */
  variance?: boolean;
  /** Backward through an activation (its coefficients in the arena). */
  act?: boolean;
}

/** Values of a run's largest job: a slice buffer's, or a chunk's (0 for an empty run). */
export function jobValues(plan: Plan): number {
  return plan.kind === "slices" ? plan.slices.cap : plan.kind === "chunks" ? plan.chunks.cap : 0;
}

export function hostBytes(parts: readonly HostPart[]): number {
  return parts.reduce((t, h) => t + h.bytes, 0);
}

/** The bytes a slice of this geometry costs: buffers in flight, the job in the arena, result copies on the host. */
function sliceCost(geo: Geometry, count: number, buffers: number, p: PlanInput): { arena: number; total: number } {
  const tensors = p.kind === "forward" ? 1 : 2;
  const eb = elementBytes(p.precision);
  const NG = geo.N * geo.G, NC = geo.N * geo.C;
  const arena = buffers * tensors * align64(count * eb) + jobArenaBytes(geo, { beta: p.kind === "forward" || !!p.act, shifts: false, gradients: p.kind === "backward", variance: p.variance, act: p.act }, p.threads);
  // forward keeps each buffer's mean/rstd (and var) until written; backward copies ds/db/mean/rstd of one slice
  const host = p.kind === "forward" ? buffers * (p.variance ? 3 : 2) * NG * 8 : 2 * NC * 8 + 2 * NG * 8;
  return { arena, total: arena + host };
}

function chunkCost(geo: Geometry, cap: number, p: PlanInput): { arena: number; total: number } {
  const tensors = p.kind === "forward" ? 1 : 2;
  const arena = tensors * align64(cap * elementBytes(p.precision)) + jobArenaBytes(geo, { beta: true, shifts: true, gradients: true, variance: p.variance, act: p.act }, p.threads);
  const host = (p.variance ? 4 : 3) * geo.G * 8 + 2 * geo.C * 8; // shifts, mean/rstd (var) results, ds/db results
  return { arena, total: arena + host };
}


/** The largest k in [1, max] with fits(k), given fits is monotone (false above some k); 0 if none. */
function largest(max: number, fits: (k: number) => boolean): number {
  if (max < 1 || !fits(1)) return 0;
  let lo = 1, hi = max;
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function planRun(p: PlanInput): Plan {
  const d = p.dims;
  if (d.N * d.C * d.HxW === 0) {
    // no slices, only what the run holds besides them (a given rstd, read whole)
    if (hostBytes(p.host) > p.budget) refuse(p, null, 0, 0);
    return { kind: "empty" };
  }
  const tensors = p.kind === "forward" ? 1 : 2;
  const eb = elementBytes(p.precision);
  // the least any slicing needs: one unit of one item streamed in chunks
  const layout = planChunkItems(d, p.precision);
  const unitCap = (k: number) => layout.unitValues * k;
  const least = chunkCost(layout.geo, unitCap(1), p);
  const halves = p.host.filter((h) => h.half);
  if (2 * hostBytes(halves) > p.budget) {
    const need = Math.max(2 * hostBytes(halves), hostBytes(p.host) + least.total);
    throw new InputError(halves[0].half!(p.budget, need), halves[0].file);
  }
  const room = p.budget - hostBytes(p.host);
  const within = (c: { arena: number; total: number }) => c.total <= room && c.arena <= ARENA_LIMIT;
  const sample = d.C * d.HxW;
  // slices of whole samples: as many as fit, at most SLICE_TARGET bytes per buffer beyond the first sample
  const sampleCost = (k: number) => sliceCost({ ...d, N: k, precision: p.precision }, k * sample, Math.min(3, Math.ceil(d.N / k)), p);
  const maxSamples = Math.max(1, Math.min(d.N, Math.floor(SLICE_TARGET / (sample * eb))));
  const samples = largest(maxSamples, (k) => within(sampleCost(k)));
  if (samples >= 1) return { kind: "slices", slices: slicePlan(d, p.precision, { samples }) };
  const group = d.D * d.HxW;
  // (interleaved groups are not contiguous: an NCHW sample over the budget is streamed in chunks)
  if (d.layout === "nchw" && !d.interleaved) {
    const groupCost = (k: number) => sliceCost({ N: 1, C: k * d.D, HxW: d.HxW, G: k, D: d.D, layout: "nchw", precision: p.precision }, k * group, 3, p);
    const maxGroups = Math.max(1, Math.min(d.G, Math.floor(SLICE_TARGET / (group * eb))));
    const groups = largest(maxGroups, (k) => within(groupCost(k)));
    if (groups >= 1) return { kind: "slices", slices: slicePlan(d, p.precision, { groups }) };
  }
  // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks of whole units
  const maxUnits = Math.max(1, Math.min(layout.units, Math.floor(CHUNK_TARGET / (layout.unitValues * eb))));
  const units = largest(maxUnits, (k) => within(chunkCost(layout.geo, unitCap(k), p)));
  if (units >= 1) return { kind: "chunks", chunks: layout.chunked(units) };
  refuse(p, least, layout.unitValues, tensors);
}

/**
 * No slicing fits: say how much --memory would do, blaming the largest part of what the run needs
 * (the vectors it holds, an input's copy, or the least slice of the tensor itself: one chunk of one
 * sample or group and its scratch) and the file it comes from; or that the tensor is beyond one
 * WebAssembly memory. `least` is null for an empty tensor (no slices).
 */
function refuse(p: PlanInput, least: { arena: number; total: number } | null, chunkValues: number, tensors: number): never {
  const d = p.dims;
  // an NHWC sample, or an NCHW one with interleaved groups (they span it), is one item
  const sampleItem = d.layout === "nhwc" || !!d.interleaved;
  const item = sampleItem ? `one sample of C = ${d.C} channels × ${d.HxW} positions` : `one group of D = ${d.D} channels × ${d.HxW} positions`;
  if (least && least.arena > ARENA_LIMIT) {
    const what = sampleItem ? `a sample of C = ${d.C} channels` : `a group of D = ${d.D} channels`;
    throw new InputError(
      `${what} × ${d.HxW} positions needs ${sizeText(least.arena)} of WebAssembly memory for its ${tensors > 1 ? "tensors' work units" : "work units"} and per-channel state, more than the 4 GiB one WebAssembly memory holds: split the channels into more groups, or the tensor into smaller ones`,
      p.file,
    );
  }
  const need = hostBytes(p.host) + (least?.total ?? 0);
  let slices: HostPart = { what: "", file: p.file, bytes: 0 };
  if (least) {
    // what the least slice's bytes are mostly: its chunk buffers, or its job's scratch and vectors
    const buffers = tensors * align64(chunkValues * elementBytes(p.precision));
    const what = buffers >= least.total - buffers
      ? `a chunk of ${chunkValues} values of ${item}${tensors > 1 ? " in each tensor" : ""}, with its scratch`
      : `the scratch and per-channel vectors in WebAssembly memory of ${item}, streamed in chunks`;
    slices = { what, file: p.file, bytes: least.total };
  }
  const blame = p.host.reduce((a, b) => (b.bytes > a.bytes ? b : a), slices);
  const rest = need - blame.bytes;
  throw new InputError(
    `the memory budget ${sizeText(p.budget)} is too small for ${blame.what} (${sizeText(blame.bytes)})${rest > 0 ? `, and the rest of the run (${sizeText(rest)})` : ""}: raise --memory to ${sizeText(need)} or more${blame.instead ? `, or ${blame.instead}` : ""}`,
    blame.file,
  );
}
