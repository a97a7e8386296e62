/**
 * verify: a user's own GroupNorm outputs (candidates) against the float64 reference of the stored
 * inputs, streamed; and, for a candidate that fails, the convention under which it would pass.
 */
import { formatShape, type Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import type { TensorSource } from "../io/tensor.js";
import type { Grouping } from "./conventions.js";
import { Checker, type OutputReport } from "./check.js";
import { affects, alternatives, type Convention, givenConvention } from "./conventions.js";
import { GroupIndex } from "./grouping.js";
import { affineOf, type BackwardSums, backwardSums, groupAffineMax, type Moments, moments, type Stats, statsOf, stream, VERIFY_CHUNK } from "./reference.js";
import { allowed, defaultTolerance, lengthFactor, offsetFactor, type Tolerance } from "./tolerance.js";

export type ForwardCandidate = "Y" | "mean" | "rstd" | "var";
export type BackwardCandidate = "dX" | "dgamma" | "dbeta";

export interface VerifyInputs {
  mode: "forward" | "backward";
  x: TensorSource;
  dy?: TensorSource;
  groups: number;
  layout: Layout;
  eps: number;
  /** How the candidates group channels (default contiguous). */
  grouping?: Grouping;
  /** gamma and beta were given per group (expanded here to their channels); dgamma and dbeta are then (G,). */
  affinePerGroup?: boolean;
  /** Per channel (C values), whatever the affine kind. */
  gamma: Float64Array | null;
  beta: Float64Array | null;
  /** Backward: the forward's statistics, given (else recomputed). */
  stats?: { mean: Float64Array; rstd: Float64Array } | null;
  candidates: Partial<Record<ForwardCandidate | BackwardCandidate, TensorSource>>;
  /** Fixed tolerances instead of the defaults by dtype. */
  atol?: number;
  rtol?: number;
  /** Between chunks: lets the event loop run (signals, progress). */
  breathe: () => Promise<void>;
}

/**
 * Positions tried by a diagnosis besides the failed ones: BLOCKS runs of BLOCK consecutive entries,
 * spread evenly from the first entry to the last (every entry of a smaller file).
 */
const BLOCKS = 256, BLOCK = 256;
/** Positions this close are read in one range (reading the gap costs less than another read). */
const GAP = 1024;

const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1);
const sameAfterSqueeze = (a: readonly number[], b: readonly number[]) => {
  const x = squeeze(a), y = squeeze(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

const PRECISION: Record<Dtype, number> = { bfloat16: -1, float16: 0, float32: 1, float64: 2 };

/**
 * The tolerance of a candidate: by the coarser of its dtype and X's (a float32 mean stored as
 * float64 is still a float32 result); --rtol and --atol each replace their own part only.
 */
function toleranceFor(dtype: Dtype, i: VerifyInputs): Tolerance {
  const t = defaultTolerance(PRECISION[dtype] < PRECISION[i.x.dtype] ? dtype : i.x.dtype);
  return { rtol: i.rtol ?? t.rtol, scaled: t.scaled, atol: i.atol ?? null };
}

/** The shape and dtype a candidate must have, or the report refusing it. */
function checkForm(name: string, cand: TensorSource, i: VerifyInputs, shape: readonly number[], dtype: Dtype | null, what: string): OutputReport | null {
  const tol = toleranceFor(cand.dtype, i);
  const exact = name === "Y" || name === "dX";
  if (exact ? !(cand.shape.length === shape.length && cand.shape.every((v, k) => v === shape[k])) : !sameAfterSqueeze(cand.shape, shape)) {
    return Checker.refused(cand.name, cand.dtype, cand.shape, "shape", `has shape ${formatShape(cand.shape)}, but ${name} must have shape ${formatShape(shape)} (${what})`, tol);
  }
  if (dtype && cand.dtype !== dtype) return Checker.refused(cand.name, cand.dtype, cand.shape, "dtype", `is ${cand.dtype}, but ${name} must have X's dtype, ${dtype}`, tol);
  return null;
}

/** The indexes the given convention and the alternatives read the file with (one per layout and grouping). */
function indexesFor(shape: readonly number[], G: number, conventions: Convention[]): Map<string, GroupIndex> {
  const out = new Map<string, GroupIndex>();
  for (const c of conventions) {
    const key = `${c.layout}/${c.grouping}`;
    if (!out.has(key)) out.set(key, new GroupIndex(shape, G, c.layout, c.grouping));
  }
  return out;
}
const keyOf = (c: Convention) => `${c.layout}/${c.grouping}`;

/** Sorted flat positions a diagnosis tries: the failed ones and evenly spread blocks. */
function samplePositions(size: number, failed: number[]): number[] {
  const set = new Set(failed);
  if (size <= BLOCKS * BLOCK) for (let i = 0; i < size; i++) set.add(i);
  else {
    for (let b = 0; b < BLOCKS; b++) {
      const from = Math.floor((b * (size - BLOCK)) / (BLOCKS - 1));
      for (let i = from; i < from + BLOCK; i++) set.add(i);
    }
  }
  return [...set].sort((a, b) => a - b);
}

/** Sorted positions as ranges to read, [from, to) of the file and [first, end) of the positions: nearby ones together, none over VERIFY_CHUNK. */
function rangesOf(positions: number[]): Array<{ from: number; to: number; first: number; end: number }> {
  const out: Array<{ from: number; to: number; first: number; end: number }> = [];
  for (let k = 0; k < positions.length; k++) {
    const p = positions[k], last = out[out.length - 1];
    if (last && p - last.to < GAP && p + 1 - last.from <= VERIFY_CHUNK) {
      last.to = p + 1;
      last.end = k + 1;
    } else out.push({ from: p, to: p + 1, first: k, end: k + 1 });
  }
  return out;
}

/**
 * A candidate passing with at least this share of its tolerance used is also tried against the
 * alternatives (honest float32 and float64 results use 1–8%; float16 ones more, from storage).
 */
const SUSPECT = 0.1;
/** Alternatives that fit within this factor of the best are named with it: not told apart. */
const TIED = 2;
/** …and an alternative it fits this many times more closely is named. */
const CLOSER = 4;

/**
 * The diagnosis of an output from the largest |value − reference| / tolerance under each alternative
 * (on the values tried): for a failed output, the alternatives under which every value passes — "Y
 * matches GroupNorm with eps = 1e-6 (Flax, diffusers), not 1e-5"; for one that passed close to its
 * tolerance, an alternative it fits CLOSER times more closely (a convention difference too small for
 * this data to fail, but systematic).
 */
function diagnosis(name: string, report: OutputReport, ratios: Map<Convention, number>): string | null {
  const used = report.tolerance_used ?? 0;
  // those that fit; the best and those tied with it (within TIED of it), in the list's order
  const fits = [...ratios].filter(([, r]) => (report.passed ? r * CLOSER <= used : r <= 1));
  if (fits.length === 0) return null;
  const least = Math.min(...fits.map(([, r]) => r));
  const tied = fits.filter(([, r]) => r <= Math.max(least * TIED, report.passed ? 0 : 1e-3));
  const best = tied[0][1];
  const [c, ...also] = tied.map(([conv]) => conv);
  const alsoText = also.length ? ` (also with ${also.map((a) => a.label).join("; with ")}: not told apart by these values)` : "";
  if (report.passed) {
    const pct = (v: number) => `${(100 * v).toFixed(v < 0.1 ? 2 : 1)}%`;
    return `${name} is within tolerance, but fits GroupNorm with ${c.label} more closely${c.instead ? ` than with ${c.instead}` : ""}: ${pct(best)} of the tolerance used, against ${pct(used)}${alsoText}`;
  }
  return `${name} matches GroupNorm with ${c.label}${c.instead ? `, not ${c.instead}` : ""}${alsoText}`;
}

/** Whether a diagnosis is worth computing for this report. */
const worthDiagnosing = (r: OutputReport) => !r.passed ? r.reason === "values" || r.reason === "nan" : (r.tolerance_used ?? 0) >= SUSPECT;

/** |value − reference| / tolerance: 0 for the same NaN or infinity (or any where the reference is NaN, undefined), Infinity for NaN or infinity on one side only. */
function ratio(value: number, reference: number, tol: number): number {
  if (Number.isNaN(value) || Number.isNaN(reference)) return Number.isNaN(reference) && !Number.isFinite(value) ? 0 : Infinity;
  if (!Number.isFinite(value) || !Number.isFinite(reference)) return value === reference ? 0 : Infinity;
  const err = Math.abs(value - reference);
  return tol > 0 ? err / tol : err > 0 ? Infinity : 0;
}

interface Prepared {
  given: Convention;
  alts: Convention[];
  indexes: Map<string, GroupIndex>;
  /** The given convention's statistics, and (computed when first asked: a diagnosis) the alternatives'. */
  stats: Map<Convention, Stats>;
  alternatives(): Promise<Map<Convention, Stats>>;
}

async function prepare(i: VerifyInputs): Promise<Prepared> {
  const shape = i.x.shape;
  const otherLayout = i.layout === "nchw" ? "nhwc" : "nchw";
  const given = givenConvention({ eps: i.eps, layout: i.layout, hasGamma: !!i.gamma, hasBeta: !!i.beta, otherLayout: false, statsGiven: !!i.stats, grouping: i.grouping });
  let alts = alternatives({
    eps: i.eps,
    layout: i.layout,
    hasGamma: !!i.gamma,
    hasBeta: !!i.beta,
    otherLayout: shape.length > 2 && GroupIndex.fits(shape, i.groups, otherLayout) && (i.gamma === null || new GroupIndex(shape, i.groups, otherLayout, "contiguous").C === i.gamma.length),
    statsGiven: !!i.stats,
    grouping: i.grouping,
    affinePerGroup: i.affinePerGroup,
  });
  // the other grouping is only another grouping when groups hold more than one channel and there are several
  const index0 = new GroupIndex(shape, i.groups, i.layout, "contiguous");
  if (index0.D <= 1 || i.groups <= 1) alts = alts.filter((c) => c.grouping === given.grouping);
  if (i.gamma && i.gamma.length < i.groups) alts = alts.filter((c) => c.affine !== "group");
  const indexes = indexesFor(shape, i.groups, [given, ...alts]);
  const byKey = new Map<string, Moments>();
  const [first] = await moments(i.x, [indexes.get(keyOf(given))!], i.breathe);
  byKey.set(keyOf(given), first);
  const stats = new Map<Convention, Stats>([[given, statsOf(first, given)]]);
  let altStats: Map<Convention, Stats> | null = null;
  const alternativesOf = async () => {
    if (altStats) return altStats;
    const missing = [...indexes.keys()].filter((k) => !byKey.has(k));
    const ms = await moments(i.x, missing.map((k) => indexes.get(k)!), i.breathe);
    missing.forEach((k, n) => byKey.set(k, ms[n]));
    altStats = new Map(alts.map((c) => [c, statsOf(byKey.get(keyOf(c))!, c)]));
    return altStats;
  };
  if (i.stats) {
    // the forward's statistics, given: the reference uses them (the variance as 1/rstd² − eps)
    const s = stats.get(given)!;
    s.mean.set(i.stats.mean);
    s.rstd.set(i.stats.rstd);
    for (let g = 0; g < s.rstd.length; g++) s.variance[g] = 1 / (s.rstd[g] * s.rstd[g]) - i.eps;
  }
  return { given, alts, indexes, stats, alternatives: alternativesOf };
}

/**
 * Reference values of a per-group output (mean, rstd or var) under a convention, and their scales.
 * var's relative room is twice rstd's (var = 1/rstd² − eps).
 */
function groupOutput(name: "mean" | "rstd" | "var", s: Stats, c: Convention, g: number): { value: number; scale: number } {
  const f = lengthFactor(s.index.M);
  if (name === "mean") return { value: s.mean[g], scale: f * (Math.abs(s.mean[g]) + Math.sqrt(Math.max(0, s.variance[g]))) };
  if (name === "var") return { value: s.variance[g], scale: 2 * f * Math.abs(s.variance[g]) * offsetFactor(s.mean[g], s.rstd[g]) };
  const v = s.variance[g] + c.eps;
  const value = c.rstdAs === "std" ? Math.sqrt(v) : c.rstdAs === "variance" ? s.variance[g] : c.rstdAs === "varianceEps" ? v : s.rstd[g];
  return { value, scale: f * Math.abs(value) * offsetFactor(s.mean[g], s.rstd[g]) };
}

async function checkGroupOutput(name: "mean" | "rstd" | "var", cand: TensorSource, i: VerifyInputs, p: Prepared): Promise<OutputReport> {
  const s = p.stats.get(p.given)!;
  const ix = s.index;
  const refuse = checkForm(name, cand, i, [ix.N, ix.G], null, "(N, G)");
  if (refuse) return refuse;
  const checker = new Checker(name, cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
  await stream([cand], (start, [v]) => {
    for (let k = 0; k < v.length; k++) {
      const g = start + k, r = groupOutput(name, s, p.given, g);
      checker.add(g, v[k], r.value, r.scale, g, ix.firstChannel(g % ix.G));
    }
  }, i.breathe);
  const report = checker.report();
  if (worthDiagnosing(report)) {
    // every entry, under each alternative that changes it
    const ratios = new Map(p.alts.filter((c) => affects(c, p.given, name)).map((c) => [c, 0]));
    const tol = toleranceFor(cand.dtype, i);
    const alt = await p.alternatives();
    await stream([cand], (start, [v]) => {
      for (const [c, worst] of ratios) {
        const sc = alt.get(c)!;
        let top = worst;
        for (let k = 0; k < v.length && top !== Infinity; k++) {
          const r = groupOutput(name, sc, c, start + k);
          top = Math.max(top, ratio(v[k], r.value, allowed(tol, r.value, r.scale)));
        }
        ratios.set(c, top);
      }
    }, i.breathe);
    report.diagnosis = diagnosis(name, report, ratios);
  }
  return report;
}

/** Y under a convention as arrays: per-channel scale w and shift b, per-group scale of the tolerance. */
function forwardPlan(s: Stats, conv: Convention, i: VerifyInputs): { w: Float64Array; b: Float64Array; scale: Float64Array } {
  const ix = s.index, w = new Float64Array(ix.C), b = new Float64Array(ix.C);
  for (let c = 0; c < ix.C; c++) [w[c], b[c]] = affineOf(conv, i.gamma, i.beta, c, ix.groupOf[c]);
  const amax = groupAffineMax(ix, conv, i.gamma, i.beta), f = lengthFactor(ix.M);
  const scale = new Float64Array(ix.groups);
  for (let gi = 0; gi < ix.groups; gi++) scale[gi] = yScale(s, gi, amax.wmax[gi % ix.G], amax.bmax[gi % ix.G], f);
  return { w, b, scale };
}

/** Y's reference over a chunk (a plain function of arrays: the hot loop, kept out of closures). */
function yChunk(len: number, x: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, b: Float64Array, ref: Float64Array): void {
  for (let k = 0; k < len; k++) {
    const g = gi[k], c = ch[k];
    ref[k] = (x[k] - mean[g]) * rstd[g] * w[c] + b[c];
  }
}

/** dX's reference over a chunk: rstd·(w·dy − A) − (x − mean)·rstd·B with per-group A and B. */
function dxChunk(len: number, dy: Float64Array, x: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, A: Float64Array, B: Float64Array, ref: Float64Array): void {
  for (let k = 0; k < len; k++) {
    const g = gi[k], r = rstd[g];
    ref[k] = r * (w[ch[k]] * dy[k] - A[g]) - (x[k] - mean[g]) * r * B[g];
  }
}

/**
 * The size of what produced a group's Y: its largest |y|, max|x − mean|·rstd·max|γ| + max|β|, with
 * room for the mean's rounding (the offset factor on x̂, and |mean|·rstd·max|γ|/8 for implementations
 * that fold the mean into a shift, y = x·a + b, whose rounding is that of x·a).
 */
function yScale(s: Stats, gi: number, wmax: number, bmax: number, f: number): number {
  const r = s.rstd[gi], q = offsetFactor(s.mean[gi], r);
  return f * (s.maxdev[gi] * r * wmax * q + (q - 1) * wmax + bmax);
}

/** Y's reference at one value and its group's scale, under a convention. */
function yRef(x: number, gi: number, c: number, s: Stats, conv: Convention, i: VerifyInputs, amax: { wmax: Float64Array; bmax: Float64Array }): { value: number; scale: number } {
  const g = gi % s.index.G;
  const [w, b] = affineOf(conv, i.gamma, i.beta, c, g);
  const r = s.rstd[gi];
  return { value: (x - s.mean[gi]) * r * w + b, scale: yScale(s, gi, amax.wmax[g], amax.bmax[g], lengthFactor(s.index.M)) };
}

async function checkY(cand: TensorSource, i: VerifyInputs, p: Prepared): Promise<OutputReport> {
  const refuse = checkForm("Y", cand, i, i.x.shape, i.x.dtype, "X's shape");
  if (refuse) return refuse;
  const s = p.stats.get(p.given)!, ix = s.index;
  const { w, b, scale } = forwardPlan(s, p.given, i);
  const checker = new Checker("Y", cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
  const gi = new Int32Array(VERIFY_CHUNK), ch = new Int32Array(VERIFY_CHUNK), ref = new Float64Array(VERIFY_CHUNK);
  const { mean, rstd } = s;
  await stream([i.x, cand], (start, [vx, vy]) => {
    ix.walk(start, vx.length, gi, ch);
    yChunk(vx.length, vx, gi, ch, mean, rstd, w, b, ref);
    checker.addChunk(start, vx.length, vy, ref, scale, gi, ch);
  }, i.breathe);
  const report = checker.report();
  if (worthDiagnosing(report)) {
    const alt = await p.alternatives();
    const amax = new Map([...alt].map(([conv, sc]) => [conv, groupAffineMax(sc.index, conv, i.gamma, i.beta)]));
    const ratios = await diagnoseElementwise("Y", [i.x, cand], checker.failed, i, p, (conv, vals, gIdx, c) => yRef(vals[0], gIdx, c, alt.get(conv)!, conv, i, amax.get(conv)!));
    report.diagnosis = diagnosis("Y", report, ratios);
  }
  return report;
}

/**
 * Each alternative that changes an elementwise output, tried on the failed positions and evenly
 * spread blocks of others (read as ranges: the cost is that of the positions, not of the file): the
 * largest |value − reference| / tolerance under it.
 */
async function diagnoseElementwise(
  name: string,
  sources: TensorSource[],
  failed: number[],
  i: VerifyInputs,
  p: Prepared,
  reference: (c: Convention, values: number[], gi: number, ch: number) => { value: number; scale: number },
): Promise<Map<Convention, number>> {
  const cand = sources[sources.length - 1];
  const positions = samplePositions(cand.size, failed);
  const ranges = rangesOf(positions);
  const fits = p.alts.filter((c) => affects(c, p.given, name)).map((c) => ({ c, worst: 0, index: p.indexes.get(keyOf(c))! }));
  const tol = toleranceFor(cand.dtype, i);
  const gi = new Int32Array(1), ch = new Int32Array(1);
  const longest = ranges.reduce((a, r) => Math.max(a, r.to - r.from), 0);
  const bufs = sources.map(() => new Float64Array(longest));
  let read = 0;
  for (const { from, to, first, end } of ranges) {
    const views = bufs.map((b) => b.subarray(0, to - from));
    for (const [k, s] of sources.entries()) await s.read(from, to - from, views[k]);
    for (let at = first; at < end; at++) {
      const pos = positions[at], values = views.map((v) => v[pos - from]);
      const value = values[values.length - 1];
      for (const f of fits) {
        if (f.worst === Infinity) continue;
        f.index.walk(pos, 1, gi, ch);
        const r = reference(f.c, values, gi[0], ch[0]);
        f.worst = Math.max(f.worst, ratio(value, r.value, allowed(tol, r.value, r.scale)));
      }
    }
    // as often as a stream would (about a chunk of values read)
    if ((read += to - from + GAP) >= VERIFY_CHUNK) {
      read = 0;
      await i.breathe();
    }
  }
  return new Map(fits.map((f) => [f.c, f.worst]));
}

export async function verifyForward(i: VerifyInputs): Promise<Partial<Record<ForwardCandidate, OutputReport>>> {
  const p = await prepare(i);
  const out: Partial<Record<ForwardCandidate, OutputReport>> = {};
  if (i.candidates.Y) out.Y = await checkY(i.candidates.Y, i, p);
  if (i.candidates.mean) out.mean = await checkGroupOutput("mean", i.candidates.mean, i, p);
  if (i.candidates.rstd) out.rstd = await checkGroupOutput("rstd", i.candidates.rstd, i, p);
  if (i.candidates.var) out.var = await checkGroupOutput("var", i.candidates.var, i, p);
  return out;
}

/** dX's reference at one value and a bound of its group's largest |dx|, under a convention. */
function dxRef(dy: number, x: number, gi: number, c: number, s: Stats, sums: BackwardSums, conv: Convention, i: VerifyInputs, wmax: Float64Array): { value: number; scale: number } {
  const ix = s.index, g = gi % ix.G, M = ix.M;
  const k = conv.unbiased ? M - 1 : M;
  const r = s.rstd[gi], xhat = (x - s.mean[gi]) * r;
  const w = affineOf(conv, i.gamma, null, c, g)[0];
  const value = r * (w * dy - sums.sgdy[gi] / M - (xhat * sums.sgdyx[gi]) / k);
  const q = offsetFactor(s.mean[gi], r);
  const scale = lengthFactor(M) * q * r * (wmax[g] * sums.dymax[gi] + Math.abs(sums.sgdy[gi]) / M + (s.maxdev[gi] * r * Math.abs(sums.sgdyx[gi])) / k);
  return { value, scale };
}

export async function verifyBackward(i: VerifyInputs): Promise<Partial<Record<BackwardCandidate, OutputReport>>> {
  const p = await prepare(i);
  const dy = i.dy!;
  const out: Partial<Record<BackwardCandidate, OutputReport>> = {};
  const s = p.stats.get(p.given)!, ix = s.index;
  const wanted = (["dX", "dgamma", "dbeta"] as const).filter((n) => i.candidates[n]);
  // the given convention's sums from its channel sums, which the alternatives of its index and mean
  // share; the others' channel sums only when something fails (a second pass, for all of them)
  const first = await backwardSums(dy, i.x, [{ c: p.given, stats: s }], i.gamma, i.breathe);
  const sums = first.sums[0];
  let altSums: Map<Convention, BackwardSums> | null = null;
  const sumsOfAlternatives = async () => {
    if (altSums) return altSums;
    const list = p.alts.filter((c) => wanted.some((n) => affects(c, p.given, n)));
    const alt = await p.alternatives();
    const all = await backwardSums(dy, i.x, list.map((c) => ({ c, stats: alt.get(c)! })), i.gamma, i.breathe, first.bases);
    altSums = new Map(list.map((c, n) => [c, all.sums[n]]));
    return altSums;
  };
  // a per-group affine's dgamma and dbeta: each group's per-channel sums added up (under each convention's grouping)
  const perGroup = !!i.affinePerGroup;
  const entries = (bs: BackwardSums, index: GroupIndex) => (perGroup ? groupedSums(bs, index) : bs);
  for (const name of ["dgamma", "dbeta"] as const) {
    const cand = i.candidates[name];
    if (!cand) continue;
    const refuse = checkForm(name, cand, i, [perGroup ? ix.G : ix.C], null, perGroup ? "(G,): --affine per-group" : "(C,)");
    if (refuse) {
      out[name] = refuse;
      continue;
    }
    const refOf = (bs: BackwardSums, c: number) => (name === "dgamma" ? { value: bs.dgamma[c], scale: bs.absDgamma[c] } : { value: bs.dbeta[c], scale: bs.absDbeta[c] });
    const checker = new Checker(name, cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.G, true);
    const ref = entries(sums, ix);
    await stream([cand], (start, [v]) => {
      for (let k = 0; k < v.length; k++) {
        const c = start + k, r = refOf(ref, c);
        if (perGroup) checker.add(c, v[k], r.value, r.scale, c, ix.firstChannel(c));
        else checker.add(c, v[k], r.value, r.scale, ix.groupOf[c], c);
      }
    }, i.breathe);
    const report = checker.report();
    if (worthDiagnosing(report)) {
      const alts = await sumsOfAlternatives();
      const altStats = await p.alternatives();
      const tol = toleranceFor(cand.dtype, i);
      const values = new Float64Array(cand.size);
      await cand.read(0, cand.size, values);
      const ratios = new Map([...alts].filter(([c]) => affects(c, p.given, name)).map(([c, sumsOf]) => {
        let top = 0;
        const bs = entries(sumsOf, altStats.get(c)!.index);
        values.forEach((v, ch) => {
          const r = refOf(bs, ch);
          top = Math.max(top, ratio(v, r.value, allowed(tol, r.value, r.scale)));
        });
        return [c, top];
      }));
      report.diagnosis = diagnosis(name, report, ratios);
    }
    out[name] = report;
  }
  const cand = i.candidates.dX;
  if (cand) {
    const refuse = checkForm("dX", cand, i, i.x.shape, i.x.dtype, "X's shape");
    if (refuse) out.dX = refuse;
    else {
      const { wmax } = groupAffineMax(ix, p.given, i.gamma, null);
      const checker = new Checker("dX", cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
      const gi = new Int32Array(VERIFY_CHUNK), ch = new Int32Array(VERIFY_CHUNK), ref = new Float64Array(VERIFY_CHUNK);
      // dx = rstd·(w·dy − A) − x̂·B per group, A = Σγ·dy/M, B = rstd·Σγ·dy·x̂/M: per-group constants first
      const M = ix.M, w = forwardPlan(s, p.given, i).w;
      const A = sums.sgdy.map((v) => v / M), B = sums.sgdyx.map((v, g) => (s.rstd[g] * v) / M);
      const scale = new Float64Array(ix.groups).map((_, g) => dxRef(0, s.mean[g], g, 0, s, sums, p.given, i, wmax).scale);
      const { mean, rstd } = s;
      await stream([dy, i.x, cand], (start, [vdy, vx, vc]) => {
        ix.walk(start, vx.length, gi, ch);
        dxChunk(vx.length, vdy, vx, gi, ch, mean, rstd, w, A, B, ref);
        checker.addChunk(start, vx.length, vc, ref, scale, gi, ch);
      }, i.breathe);
      const report = checker.report();
      if (worthDiagnosing(report)) {
        const alts = await sumsOfAlternatives();
        const alt = await p.alternatives();
        const wmaxOf = new Map([...alt].map(([conv, sc]) => [conv, groupAffineMax(sc.index, conv, i.gamma, null).wmax]));
        const ratios = await diagnoseElementwise("dX", [dy, i.x, cand], checker.failed, i, p, (conv, values, gIdx, c) =>
          dxRef(values[0], values[1], gIdx, c, alt.get(conv)!, alts.get(conv)!, conv, i, wmaxOf.get(conv)!));
        report.diagnosis = diagnosis("dX", report, ratios);
      }
      out.dX = report;
    }
  }
  // in the order the backward produces them
  return Object.fromEntries((["dX", "dgamma", "dbeta"] as const).filter((k) => out[k]).map((k) => [k, out[k]]));
}

/** dgamma and dbeta (values and scales) summed over each group's channels, for a per-group affine. */
function groupedSums(bs: BackwardSums, index: GroupIndex): BackwardSums {
  const sum = (v: Float64Array) => {
    const out = new Float64Array(index.G);
    for (let c = 0; c < index.C; c++) out[index.groupOf[c]] += v[c];
    return out;
  };
  return { ...bs, dgamma: sum(bs.dgamma), dbeta: sum(bs.dbeta), absDgamma: sum(bs.absDgamma), absDbeta: sum(bs.absDbeta) };
}
