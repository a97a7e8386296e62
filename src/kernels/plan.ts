/**
 * How a GroupNorm job is cut into work, computed once per job: the geometry, the work layout
 * (items and units) and the scratch it needs, and the one function that builds a Job record.
 * The per-thread execution of that layout is executor.ts; which thread takes which part is
 * schedule.ts.
 *
 * Work is split into *items* and *units*:
 *   NCHW  item = (n, g); unit = as many whole channel runs (HxW values each) as fit in BLOCK
 *         values, or, when one run is longer, one block of BLOCK values of one channel.
 *   NHWC  item = n;      unit = ROWS consecutive spatial rows (all C channels) of sample n.
 *   NCHW with interleaved groups (channel c in group c mod G): item = n, as NHWC, since every group
 *         spans the sample; unit = whole channel runs, or one block, in memory order, each run with
 *         its own partial sums, combined per group through the channel map (combine.ts).
 * Every unit writes its own partial sums; an item's statistics combine its partials in one fixed
 * order. Nothing about that order depends on which thread did a unit, so results are bitwise the
 * same for any thread count and any split.
 */
import type { Layout } from "../core/dims.js";
import { align64 } from "./arena.js";

export type Precision = "f32" | "f64";

/** Values per NCHW unit (one block of a channel run). */
export const BLOCK = 65536;
/** Values per NHWC unit, rounded to whole rows. */
export const NHWC_BLOCK = 262144;
/** Values per chunk of an NHWC input backward run in reverse (see Executor.dxUnit). */
export const DX_CHUNK = 65536;

export interface Geometry {
  readonly precision: Precision;
  readonly layout: Layout;
  readonly N: number;
  readonly C: number;
  readonly HxW: number;
  readonly G: number;
  readonly D: number;
  /** Channels grouped interleaved: channel c in group c mod G (MLX's default); else c in group ⌊c / D⌋. */
  readonly interleaved?: boolean;
}

/** Pointers (byte offsets in the shared memory) a job works on. f64 arrays unless stated. */
export interface JobPointers {
  readonly x: number; // input, precision dtype
  readonly y: number; // forward output (or 0)
  readonly dy: number; // backward upstream gradient (or 0)
  readonly dx: number; // backward output (or 0)
  readonly gamma: number; // C
  readonly beta: number; // C
  readonly mean: number; // N·G
  readonly rstd: number; // N·G
  readonly partials: number; // unitsPerItem · items · partialDoubles
  readonly ds: number; // N·C: Σ dy·(x − mean) per (n, c)
  readonly db: number; // N·C: Σ dy per (n, c)
  readonly perItem: number; // items · perItemBytes: shifts and coefficients (NHWC)
  readonly threadScratch: number; // threads · threadScratchBytes: each thread's own scratch
  readonly threadScratchBytes: number;
  /** Float64 [N·G] of the groups' shifts K when X is streamed in chunks (0: read K from X). */
  readonly shiftSource: number;
  /** Float64 [N·G]: the biased variance of each group as finalizeStats computes it (or 0: not kept). */
  readonly variance: number;
  /** Backward through an activation: items · actItemBytes, each item's forward coefficients (see actItemBytes); else 0. */
  readonly actCoef: number;
}

export interface Job extends Geometry, JobPointers {
  readonly eps: number;
  /** Backward: mean/rstd were supplied and must not be recomputed. */
  readonly statsGiven: boolean;
  /** Backward: compute dx (false when only dgamma/dbeta are wanted). */
  readonly wantDx: boolean;
  /** Groups interleaved (G > 1 and D > 1 only: otherwise the two groupings are the same). */
  readonly interleaved: boolean;
  /**
   * The activation after the GroupNorm, Y = act(GroupNorm(X)) (src/assembly/activation.ts): 0 none,
   * 1 silu, 2 gelu, 3 gelu-tanh. Forward: Y = act(pre) in the normalisation loops. Backward: dy is
   * replaced by dy·act'(pre) in the internal-gradient pass (which then holds the GroupNorm's own
   * upstream gradient), or, for an item streamed in chunks, in each pass that reads dy.
   */
  readonly act: number;
  /** The work layout of the geometry, computed once when the job is built or decoded. */
  readonly work: WorkLayout;
}

export interface WorkLayout {
  items: number;
  unitsPerItem: number;
  /** NCHW: channels per unit (1 when a run is split into blocks) and blocks per channel. */
  cpu: number;
  blocks: number;
  /** NHWC: rows per unit. */
  rows: number;
  /** NHWC float32 with D a multiple of 4, contiguous groups: statistics partials per group (else per channel). */
  groupStats: boolean;
  /** Items are whole samples (NHWC, and NCHW with interleaved groups), with the per-sample scratch of scratchParts. */
  samples: boolean;
  partialDoubles: number;
  perItemBytes: number;
}

/** Per-item flags after an item's scratch (float64 0/1): see ItemFlag. */
export const FLAG_BYTES = 24;
export const enum ItemFlag {
  /** The item's statistics make x − mean unsafe in float32 (set by finalizeStats). */
  Extreme = 0,
  /** Its forward coefficients are float64 (NCHW: norm_chan_f32_wide; NHWC: norm_rows_f32_mixed, float64 for the groups flagged wide). */
  NormWide = 1,
  /** Its input-backward coefficients are float64 (NCHW: dx_chan_f32_wide; NHWC: dx_rows_f32_mixed). */
  DxWide = 2,
}

/** Whether the groups are interleaved in effect: with one group, or one channel per group, both groupings are the same. */
export function interleavedGroups(g: Geometry): boolean {
  return g.interleaved === true && g.G > 1 && g.D > 1;
}

export function workLayout(g: Geometry): WorkLayout {
  const interleaved = interleavedGroups(g);
  if (g.layout === "nchw" && interleaved) {
    // per item (a sample): the parts of scratchParts, as NHWC
    const perItemBytes = sampleScratchBytes(g.C, g.G, true);
    if (g.HxW <= BLOCK) {
      const cpu = Math.max(1, g.HxW === 0 ? g.C : Math.min(g.C, Math.floor(BLOCK / g.HxW)));
      return { items: g.N, unitsPerItem: Math.max(1, Math.ceil(g.C / cpu)), cpu, blocks: 1, rows: 0, groupStats: false, samples: true, partialDoubles: 2 * cpu, perItemBytes };
    }
    const blocks = Math.ceil(g.HxW / BLOCK);
    return { items: g.N, unitsPerItem: g.C * blocks, cpu: 1, blocks, rows: 0, groupStats: false, samples: true, partialDoubles: 2, perItemBytes };
  }
  if (g.layout === "nchw") {
    // per item: coefficients (4·D f64 at most), then the flags
    if (g.HxW <= BLOCK) {
      const cpu = Math.max(1, g.HxW === 0 ? g.D : Math.min(g.D, Math.floor(BLOCK / g.HxW)));
      return { items: g.N * g.G, unitsPerItem: Math.max(1, Math.ceil(g.D / cpu)), cpu, blocks: 1, rows: 0, groupStats: false, samples: false, partialDoubles: 2 * cpu, perItemBytes: 32 * g.D + FLAG_BYTES };
    }
    const blocks = Math.ceil(g.HxW / BLOCK);
    return { items: g.N * g.G, unitsPerItem: g.D * blocks, cpu: 1, blocks, rows: 0, groupStats: false, samples: false, partialDoubles: 2, perItemBytes: 32 * g.D + FLAG_BYTES };
  }
  const rows = g.C === 0 ? Math.max(1, g.HxW) : Math.max(1, Math.floor(NHWC_BLOCK / g.C));
  const units = Math.max(1, Math.ceil(g.HxW / rows));
  // per item: shifts (C f64), means (C f64), coefficients (4·C f64 at most), two per-group flag
  // arrays (G f64 each), the flags; see scratchParts
  const groupStats = g.precision === "f32" && g.D > 0 && g.D % 4 === 0 && !interleaved;
  return { items: g.N, unitsPerItem: units, cpu: 0, blocks: 0, rows, groupStats, samples: true, partialDoubles: 2 * g.C, perItemBytes: sampleScratchBytes(g.C, g.G, interleaved) };
}

/** Bytes of one sample item's scratch (scratchParts, then the flags); interleaved groups add the per-channel parts. */
function sampleScratchBytes(C: number, G: number, interleaved: boolean): number {
  return 48 * C + 16 * G + (interleaved ? 24 * C : 0) + FLAG_BYTES;
}

/**
 * Bytes per item of a backward's activation coefficients (Job.actCoef): the forward's m, a, b per
 * channel of the item (3 arrays of D (NCHW) or C (NHWC, or a sample of interleaved groups), float32
 * or float64 as prepareNorm makes them), then (NHWC, samples) a float64 0/1 per group (its
 * coefficients are float64), then the item's flag.
 */
export function actItemBytes(g: Geometry): number {
  return g.layout === "nchw" && !interleavedGroups(g) ? 24 * g.D + 8 : 24 * g.C + 8 * g.G + 8;
}

/** Scratch sizes a job needs, in bytes. */
function scratchBytes(g: Geometry, w: WorkLayout = workLayout(g)): { partials: number; perItem: number; perThread: number } {
  // per thread (NHWC only): two float32 accumulator rows of C for the strips, or 2·C float64 unit sums
  const perThread = w.samples ? Math.ceil((16 * g.C) / 64) * 64 : 0;
  return { partials: w.items * w.unitsPerItem * w.partialDoubles * 8, perItem: w.items * w.perItemBytes, perThread };
}

/**
 * NHWC per-item scratch: byte offsets of its parts (C channels, G groups). `extreme` and `wide` are
 * per-group float64 0/1: the groups whose statistics make float32 x − mean unsafe (finalizeStats),
 * and the groups the mixed kernels (norm_rows_f32_mixed, dx_rows_f32_mixed) run in float64. With
 * interleaved groups (also NCHW), `wideC` holds the `wide` flag of each channel's group (C float64)
 * and `coef32` the float32 coefficients (4·C float32) next to the float64 ones of an NCHW sample
 * whose wide groups run in float64.
 */
export function scratchParts(C: number, G: number): { shifts: number; means: number; coef: number; extreme: number; wide: number; wideC: number; coef32: number } {
  return { shifts: 0, means: 8 * C, coef: 16 * C, extreme: 48 * C, wide: 48 * C + 8 * G, wideC: 48 * C + 16 * G, coef32: 56 * C + 16 * G };
}

/** Byte offset of unit u from the start of its item (units are in memory order). */
export function unitOffset(g: Geometry, u: number): number {
  const w = workLayout(g);
  const eb = g.precision === "f32" ? 4 : 8;
  if (g.layout === "nhwc") return u * w.rows * g.C * eb;
  if (w.blocks === 1) return u * w.cpu * g.HxW * eb;
  return (Math.floor(u / w.blocks) * g.HxW + (u % w.blocks) * BLOCK) * eb;
}

/** Where a job's scratch and vectors come from (the engine's arena). */
export interface JobMemory {
  /** Reserve `bytes` and return the byte offset. */
  alloc(bytes: number): number;
  /** A float64 vector: `values`, or `length` copies of `fill`. */
  vector(values: ArrayLike<number> | null, length: number, fill: number): number;
  readonly threads: number;
}

export interface JobSpec {
  eps: number;
  /** Tensors already in the memory (0 where a step does not use one). */
  tensors?: { x?: number; y?: number; dy?: number; dx?: number };
  gamma: ArrayLike<number> | null;
  beta?: ArrayLike<number> | null;
  /** Given statistics (backward), else recomputed; `null` leaves them zero-filled. */
  stats?: { mean: ArrayLike<number>; rstd: ArrayLike<number> } | null;
  /** Each group's shift K, when X is streamed in chunks (otherwise read from X). */
  shifts?: ArrayLike<number>;
  /** Allocate ds/db (backward). */
  gradients: boolean;
  wantDx: boolean;
  /** Keep each group's variance (forward's var output). */
  variance?: boolean;
  /** The activation's code (Job.act; default 0). */
  act?: number;
}

/** The one place a Job is built: scratch and vectors allocated in `m`, the work layout computed once. */
export function buildJob(m: JobMemory, geo: Geometry, spec: JobSpec): Job {
  const work = workLayout(geo);
  const s = scratchBytes(geo, work);
  const NG = geo.N * geo.G, NC = geo.N * geo.C;
  const t = spec.tensors ?? {};
  const stats = spec.stats ?? null;
  return {
    ...geo,
    eps: spec.eps,
    x: t.x ?? 0,
    y: t.y ?? 0,
    dy: t.dy ?? 0,
    dx: t.dx ?? 0,
    gamma: m.vector(spec.gamma, geo.C, 1),
    beta: spec.beta === undefined ? 0 : m.vector(spec.beta, geo.C, 0),
    mean: stats || spec.gradients ? m.vector(stats?.mean ?? null, NG, 0) : m.alloc(NG * 8),
    rstd: stats || spec.gradients ? m.vector(stats?.rstd ?? null, NG, 0) : m.alloc(NG * 8),
    partials: m.alloc(s.partials),
    perItem: m.alloc(s.perItem),
    threadScratch: m.alloc(s.perThread * m.threads),
    threadScratchBytes: s.perThread,
    shiftSource: spec.shifts ? m.vector(spec.shifts, geo.G, 0) : 0,
    ds: spec.gradients ? m.alloc(NC * 8) : 0,
    db: spec.gradients ? m.alloc(NC * 8) : 0,
    actCoef: spec.gradients && spec.act ? m.alloc(work.items * actItemBytes(geo)) : 0,
    statsGiven: stats !== null,
    wantDx: spec.wantDx,
    interleaved: interleavedGroups(geo),
    variance: spec.variance ? m.alloc(NG * 8) : 0,
    act: spec.act ?? 0,
    work,
  };
}

/** The per-unit steps, for running a range of units of item 0 (chunked items). */
export type UnitStep = "stats" | "norm" | "grad" | "dx" | "statsWide" | "gradWide";
export const UNIT_STEPS: UnitStep[] = ["stats", "norm", "grad", "dx", "statsWide", "gradWide"];

/** What a job allocates besides its scratch (see buildJob). */
export interface JobShape {
  beta: boolean;
  shifts: boolean;
  gradients: boolean;
  variance?: boolean;
  /** Backward through an activation (its coefficients, Job.actCoef). */
  act?: boolean;
}

/** The arena bytes buildJob allocates for a geometry (an upper bound: each allocation is 64-byte aligned). */
export function jobArenaBytes(geo: Geometry, shape: JobShape, threads: number): number {
  const s = scratchBytes(geo);
  const NG = geo.N * geo.G, NC = geo.N * geo.C;
  return (
    align64(geo.C * 8) + // gamma
    (shape.beta ? align64(geo.C * 8) : 0) +
    2 * align64(NG * 8) + // mean, rstd
    align64(s.partials) +
    align64(s.perItem) +
    align64(s.perThread * threads) +
    (shape.shifts ? align64(geo.G * 8) : 0) +
    (shape.gradients ? 2 * align64(NC * 8) : 0) + // ds, db
    (shape.variance ? align64(NG * 8) : 0) +
    (shape.gradients && shape.act ? align64(workLayout(geo).items * actItemBytes(geo)) : 0)
  );
}
