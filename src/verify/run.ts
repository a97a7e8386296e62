/**
 * verify: a user's own GroupNorm outputs (candidates) against the float64 reference of the stored
 * inputs, streamed; and, for a candidate that fails, the convention under which it would pass.
 */
import { type Activation, ACTIVATIONS } from "../core/activation.js";
import { formatShape, type Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import type { TensorSource } from "../io/tensor.js";
import { Checker, type OutputReport } from "./check.js";
import { affects, alternatives, type Convention, givenConvention } from "./conventions.js";
import { GroupIndex } from "./grouping.js";
import { activate, activationSlope, SLOPE } from "../oracle/activation.js";
import { affineOf, type BackwardSums, backwardSums, groupAffineMax, type Moments, moments, preActivationChunk, type Stats, statsOf, stream, type Through, VERIFY_CHUNK } from "./reference.js";
import { allowed, defaultTolerance, lengthFactor, offsetFactor, type Tolerance } from "./tolerance.js";

export type ForwardCandidate = "Y" | "mean" | "rstd";
export type BackwardCandidate = "dX" | "dgamma" | "dbeta";

export interface VerifyInputs {
  mode: "forward" | "backward";
  x: TensorSource;
  dy?: TensorSource;
  groups: number;
  layout: Layout;
  eps: number;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  /** Backward: the forward's statistics, given (else recomputed). */
  stats?: { mean: Float64Array; rstd: Float64Array } | null;
  /** The candidates are of act(GroupNorm(X)) (forward) or its gradients (backward, with beta). */
  activation?: Activation | null;
  candidates: Partial<Record<ForwardCandidate | BackwardCandidate, TensorSource>>;
  /** Fixed tolerances instead of the defaults by dtype. */
  atol?: number;
  rtol?: number;
  /** Between chunks: lets the event loop run (signals, progress). */
  breathe: () => Promise<void>;
}

/** Positions tried by a diagnosis besides the failed ones: about this many, spread evenly. */
const SPREAD = 1 << 16;

const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1);
const sameAfterSqueeze = (a: readonly number[], b: readonly number[]) => {
  const x = squeeze(a), y = squeeze(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

const PRECISION: Record<Dtype, number> = { float16: 0, float32: 1, float64: 2 };

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

/** Sorted flat positions a diagnosis tries: the failed ones and an even spread. */
function samplePositions(size: number, failed: number[]): number[] {
  const step = Math.max(1, Math.floor(size / SPREAD));
  const set = new Set(failed);
  for (let i = 0; i < size; i += step) set.add(i);
  return [...set].sort((a, b) => a - b);
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

/** The activation of a convention's reference: its own, when it tries another, else the given one. */
const actOf = (c: Convention, i: VerifyInputs): Activation | null => (c.activation !== undefined ? c.activation : (i.activation ?? null));
/** Room for an activation in a scale: its largest slope. */
const slopeOf = (act: Activation | null) => (act ? SLOPE[act] : 1);

/** What backwardSums needs to go through the activation, when there is one. */
function through(i: VerifyInputs): Through | null {
  return i.activation ? { activation: (c) => actOf(c, i), beta: i.beta } : null;
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
  const given = givenConvention({ eps: i.eps, layout: i.layout, hasGamma: !!i.gamma, hasBeta: !!i.beta, otherLayout: false, statsGiven: !!i.stats });
  let alts = alternatives({
    eps: i.eps,
    layout: i.layout,
    hasGamma: !!i.gamma,
    hasBeta: !!i.beta,
    otherLayout: shape.length > 2 && GroupIndex.fits(shape, i.groups, otherLayout) && (i.gamma === null || new GroupIndex(shape, i.groups, otherLayout, "contiguous").C === i.gamma.length),
    statsGiven: !!i.stats,
  });
  // interleaved grouping is only another grouping when groups hold more than one channel and there are several
  const index0 = new GroupIndex(shape, i.groups, i.layout, "contiguous");
  if (index0.D <= 1 || i.groups <= 1) alts = alts.filter((c) => c.grouping === "contiguous");
  if (i.gamma && i.gamma.length < i.groups) alts = alts.filter((c) => c.affine !== "group");
  // through an activation: the others, and none (the given convention's activation is i.activation)
  if (i.activation) {
    const base = { ...given };
    for (const a of [...ACTIVATIONS.filter((a) => a !== i.activation), null]) {
      alts.push({ ...base, activation: a, label: a ? `${a} as the activation` : "no activation", instead: i.activation });
    }
  }
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

/** Reference values of a per-group output (mean or rstd) under a convention, and their scales. */
function groupOutput(name: "mean" | "rstd", s: Stats, c: Convention, g: number): { value: number; scale: number } {
  const f = lengthFactor(s.index.M);
  if (name === "mean") return { value: s.mean[g], scale: f * (Math.abs(s.mean[g]) + Math.sqrt(Math.max(0, s.variance[g]))) };
  const v = s.variance[g] + c.eps;
  const value = c.rstdAs === "std" ? Math.sqrt(v) : c.rstdAs === "variance" ? s.variance[g] : c.rstdAs === "varianceEps" ? v : s.rstd[g];
  return { value, scale: f * Math.abs(value) * offsetFactor(s.mean[g], s.rstd[g]) };
}

async function checkGroupOutput(name: "mean" | "rstd", cand: TensorSource, i: VerifyInputs, p: Prepared): Promise<OutputReport> {
  const s = p.stats.get(p.given)!;
  const ix = s.index;
  const refuse = checkForm(name, cand, i, [ix.N, ix.G], null, "(N, G)");
  if (refuse) return refuse;
  const checker = new Checker(name, cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
  await stream([cand], (start, [v]) => {
    for (let k = 0; k < v.length; k++) {
      const g = start + k, r = groupOutput(name, s, p.given, g);
      checker.add(g, v[k], r.value, r.scale, g, Math.floor((g % ix.G) * ix.D));
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
  for (let c = 0; c < ix.C; c++) {
    const g = ix.grouping === "interleaved" ? c % ix.G : Math.floor(c / ix.D);
    [w[c], b[c]] = affineOf(conv, i.gamma, i.beta, c, g);
  }
  const amax = groupAffineMax(ix, conv, i.gamma, i.beta), f = lengthFactor(ix.M), k = slopeOf(actOf(conv, i));
  const scale = new Float64Array(ix.groups);
  for (let gi = 0; gi < ix.groups; gi++) scale[gi] = k * yScale(s, gi, amax.wmax[gi % ix.G], amax.bmax[gi % ix.G], f);
  return { w, b, scale };
}

/** Y's reference over a chunk (a plain function of arrays: the hot loop, kept out of closures). */
function yChunk(len: number, x: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, b: Float64Array, ref: Float64Array): void {
  for (let k = 0; k < len; k++) {
    const g = gi[k], c = ch[k];
    ref[k] = (x[k] - mean[g]) * rstd[g] * w[c] + b[c];
  }
}

/** act of a chunk of references, in place. */
function activateChunk(len: number, ref: Float64Array, act: Activation): void {
  for (let k = 0; k < len; k++) ref[k] = activate(act, ref[k]);
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
  const r = s.rstd[gi], pre = (x - s.mean[gi]) * r * w + b, act = actOf(conv, i);
  return { value: act ? activate(act, pre) : pre, scale: slopeOf(act) * yScale(s, gi, amax.wmax[g], amax.bmax[g], lengthFactor(s.index.M)) };
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
    if (i.activation) activateChunk(vx.length, ref, i.activation);
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
 * Each alternative that changes an elementwise output, tried on the failed positions and an even
 * spread of others: the largest |value − reference| / tolerance under it.
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
  const fits = p.alts.filter((c) => affects(c, p.given, name)).map((c) => ({ c, worst: 0, index: p.indexes.get(keyOf(c))! }));
  const tol = toleranceFor(cand.dtype, i);
  const gi = new Int32Array(1), ch = new Int32Array(1);
  let at = 0;
  await stream(sources, (start, views) => {
    const end = start + views[0].length;
    for (; at < positions.length && positions[at] < end; at++) {
      const k = positions[at] - start;
      const values = views.map((v) => v[k]);
      const value = values[values.length - 1];
      for (const f of fits) {
        if (f.worst === Infinity) continue;
        f.index.walk(positions[at], 1, gi, ch);
        const r = reference(f.c, values, gi[0], ch[0]);
        f.worst = Math.max(f.worst, ratio(value, r.value, allowed(tol, r.value, r.scale)));
      }
    }
  }, i.breathe);
  return new Map(fits.map((f) => [f.c, f.worst]));
}

export async function verifyForward(i: VerifyInputs): Promise<Partial<Record<ForwardCandidate, OutputReport>>> {
  const p = await prepare(i);
  const out: Partial<Record<ForwardCandidate, OutputReport>> = {};
  if (i.candidates.Y) out.Y = await checkY(i.candidates.Y, i, p);
  if (i.candidates.mean) out.mean = await checkGroupOutput("mean", i.candidates.mean, i, p);
  if (i.candidates.rstd) out.rstd = await checkGroupOutput("rstd", i.candidates.rstd, i, p);
  return out;
}

/** dy, or through the convention's activation dy·act'(pre), at one value of group gi and channel c. */
function preActivationOf(conv: Convention, dy: number, x: number, gi: number, c: number, s: Stats, i: VerifyInputs): number {
  const act = actOf(conv, i);
  if (!act) return dy;
  const [w, b] = affineOf(conv, i.gamma, i.beta, c, gi % s.index.G);
  return dy * activationSlope(act, (x - s.mean[gi]) * s.rstd[gi] * w + b);
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
  // the alternatives' sums only when something fails (a second pass)
  const [sums] = await backwardSums(dy, i.x, [{ c: p.given, stats: s }], i.gamma, i.breathe, through(i));
  let altSums: Map<Convention, BackwardSums> | null = null;
  const sumsOfAlternatives = async () => {
    if (altSums) return altSums;
    const list = p.alts.filter((c) => wanted.some((n) => affects(c, p.given, n)));
    const alt = await p.alternatives();
    const all = await backwardSums(dy, i.x, list.map((c) => ({ c, stats: alt.get(c)! })), i.gamma, i.breathe, through(i));
    altSums = new Map(list.map((c, n) => [c, all[n]]));
    return altSums;
  };
  for (const name of ["dgamma", "dbeta"] as const) {
    const cand = i.candidates[name];
    if (!cand) continue;
    const refuse = checkForm(name, cand, i, [ix.C], null, "(C,)");
    if (refuse) {
      out[name] = refuse;
      continue;
    }
    const refOf = (bs: BackwardSums, c: number) => (name === "dgamma" ? { value: bs.dgamma[c], scale: bs.absDgamma[c] } : { value: bs.dbeta[c], scale: bs.absDbeta[c] });
    const checker = new Checker(name, cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.G, true);
    await stream([cand], (start, [v]) => {
      for (let k = 0; k < v.length; k++) {
        const c = start + k, r = refOf(sums, c);
        checker.add(c, v[k], r.value, r.scale, Math.floor(c / ix.D), c);
      }
    }, i.breathe);
    const report = checker.report();
    if (worthDiagnosing(report)) {
      const alts = await sumsOfAlternatives();
      const tol = toleranceFor(cand.dtype, i);
      const values = new Float64Array(cand.size);
      await cand.read(0, cand.size, values);
      const ratios = new Map([...alts].filter(([c]) => affects(c, p.given, name)).map(([c, bs]) => {
        let top = 0;
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
      const M = ix.M, { w, b } = forwardPlan(s, p.given, i);
      const A = sums.sgdy.map((v) => v / M), B = sums.sgdyx.map((v, g) => (s.rstd[g] * v) / M);
      const scale = new Float64Array(ix.groups).map((_, g) => dxRef(0, s.mean[g], g, 0, s, sums, p.given, i, wmax).scale);
      const { mean, rstd } = s;
      // through an activation, dx is GroupNorm's backward of dy·act'(pre)
      const dpre = i.activation ? new Float64Array(VERIFY_CHUNK) : null;
      await stream([dy, i.x, cand], (start, [vdy, vx, vc]) => {
        ix.walk(start, vx.length, gi, ch);
        if (dpre) preActivationChunk(vx.length, vdy, vx, gi, ch, mean, rstd, w, b, i.activation!, dpre);
        dxChunk(vx.length, dpre ?? vdy, vx, gi, ch, mean, rstd, w, A, B, ref);
        checker.addChunk(start, vx.length, vc, ref, scale, gi, ch);
      }, i.breathe);
      const report = checker.report();
      if (worthDiagnosing(report)) {
        const alts = await sumsOfAlternatives();
        const alt = await p.alternatives();
        const wmaxOf = new Map([...alt].map(([conv, sc]) => [conv, groupAffineMax(sc.index, conv, i.gamma, null).wmax]));
        const ratios = await diagnoseElementwise("dX", [dy, i.x, cand], checker.failed, i, p, (conv, values, gIdx, c) =>
          dxRef(preActivationOf(conv, values[0], values[1], gIdx, c, alt.get(conv)!, i), values[1], gIdx, c, alt.get(conv)!, alts.get(conv)!, conv, i, wmaxOf.get(conv)!));
        report.diagnosis = diagnosis("dX", report, ratios);
      }
      out.dX = report;
    }
  }
  // in the order the backward produces them
  return Object.fromEntries((["dX", "dgamma", "dbeta"] as const).filter((k) => out[k]).map((k) => [k, out[k]]));
}
