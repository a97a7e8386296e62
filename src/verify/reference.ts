/**
 * The float64 reference of verify, streamed: the same formulas as oracle/reference.ts (two-pass
 * mean and biased variance; dx = rstd·(γ·dy − Σγ·dy/M − x̂·Σγ·dy·x̂/M)), computed over chunks of
 * the files with compensated sums, for the given convention and its alternatives at once. Memory is
 * a few float64 vectors per (n, g) group and per channel (and, for the backward, per (n, c)),
 * whatever the file sizes. Through an activation, the backward's are of dy·act'(pre).
 */
import type { Activation } from "../core/activation.js";
import type { TensorSource } from "../io/tensor.js";
import { activationSlope, SLOPE } from "../oracle/activation.js";
import type { Convention } from "./conventions.js";
import { GroupIndex, Sums } from "./grouping.js";
import { offsetFactor } from "./tolerance.js";

/** Values per chunk read from each source. */
export const VERIFY_CHUNK = 1 << 18;

/** Stream sources of one size together: f(start, values of each source) for consecutive chunks. */
export async function stream(sources: TensorSource[], f: (start: number, values: Float64Array[]) => void, onChunk?: () => Promise<void>): Promise<void> {
  const size = sources[0].size;
  const bufs = sources.map(() => new Float64Array(Math.min(VERIFY_CHUNK, Math.max(1, size))));
  for (let start = 0; start < size; start += VERIFY_CHUNK) {
    const n = Math.min(VERIFY_CHUNK, size - start);
    const views = bufs.map((b) => (n === b.length ? b : b.subarray(0, n)));
    for (const [i, s] of sources.entries()) await s.read(start, n, views[i]);
    f(start, views);
    await onChunk?.();
  }
}

/** Per (n, g) group of an index: mean, Σ(x − mean)², and the largest |x − mean|. */
export interface Moments {
  index: GroupIndex;
  mean: Float64Array;
  m2: Float64Array;
  maxdev: Float64Array;
}

/** Two passes over x for every index at once; each run of one group is summed, with compensation, in locals. */
export async function moments(x: TensorSource, indexes: GroupIndex[], breathe: () => Promise<void>): Promise<Moments[]> {
  const ends = new Int32Array(VERIFY_CHUNK), groups = new Int32Array(VERIFY_CHUNK);
  const sums = indexes.map((ix) => new Sums(ix.groups));
  await stream([x], (start, [v]) => {
    for (const [k, ix] of indexes.entries()) sumRuns(ix.runs(start, v.length, ends, groups), v, ends, groups, sums[k]);
  }, breathe);
  const means = indexes.map((ix, k) => sums[k].totals().map((t) => (ix.M > 0 ? t / ix.M : 0)));
  const m2 = indexes.map((ix) => new Sums(ix.groups));
  const maxdev = indexes.map((ix) => new Float64Array(ix.groups));
  await stream([x], (start, [v]) => {
    for (const [k, ix] of indexes.entries()) deviationRuns(ix.runs(start, v.length, ends, groups), v, ends, groups, means[k], maxdev[k], m2[k]);
  }, breathe);
  return indexes.map((index, k) => ({ index, mean: means[k], m2: m2[k].totals(), maxdev: maxdev[k] }));
}

/** Σx of each run (see GroupIndex.runs) into its group's slot of out (a plain function: the hot loop). */
function sumRuns(count: number, v: Float64Array, ends: Int32Array, groups: Int32Array, out: Sums): void {
  for (let r = 0, from = 0; r < count; r++) {
    const to = ends[r];
    let s = 0, c = 0;
    for (let i = from; i < to; i++) {
      const t = v[i], u = s + t;
      c += Math.abs(s) >= Math.abs(t) ? s - u + t : t - u + s;
      s = u;
    }
    out.add(groups[r], s + c);
    from = to;
  }
}

/** Σ(x − mean)² of each run into its group's slot of out, and the group's largest |x − mean| into maxdev. */
function deviationRuns(count: number, v: Float64Array, ends: Int32Array, groups: Int32Array, mean: Float64Array, maxdev: Float64Array, out: Sums): void {
  for (let r = 0, from = 0; r < count; r++) {
    const to = ends[r], g = groups[r], mu = mean[g];
    let s = 0, c = 0, top = maxdev[g];
    for (let i = from; i < to; i++) {
      const d = v[i] - mu, t = d * d, u = s + t;
      c += s >= t ? s - u + t : t - u + s;
      s = u;
      const a = Math.abs(d);
      if (a > top || a !== a) top = a;
    }
    maxdev[g] = top;
    out.add(g, s + c);
    from = to;
  }
}

/** A group's statistics under a convention: its variance, rstd and mean. */
export function groupStats(m: Moments, g: number, c: Convention): { mean: number; variance: number; rstd: number } {
  const M = m.index.M;
  const variance = M > 0 ? m.m2[g] / (c.unbiased ? M - 1 : M) : NaN;
  return { mean: M > 0 ? m.mean[g] : 0, variance, rstd: M > 0 ? 1 / Math.sqrt(variance + c.eps) : NaN };
}

/** The scale and shift a value of channel c in group g gets under a convention's affine. */
export function affineOf(c: Convention, gamma: Float64Array | null, beta: Float64Array | null, ch: number, g: number): [number, number] {
  const at = c.affine === "group" ? g : ch;
  const w = gamma ? gamma[at] : 1, b = beta ? beta[at] : 0;
  if (c.affine === "none") return [1, 0];
  if (c.affine === "swapped") return [beta ? beta[ch] : 0, gamma ? gamma[ch] : 1];
  return [w, b];
}

/** Statistics of a convention for every group: means, rstds (given ones, or from the moments). */
export interface Stats {
  index: GroupIndex;
  mean: Float64Array;
  rstd: Float64Array;
  variance: Float64Array;
  maxdev: Float64Array;
}

export function statsOf(m: Moments, c: Convention): Stats {
  const n = m.index.groups;
  const s: Stats = { index: m.index, mean: new Float64Array(n), rstd: new Float64Array(n), variance: new Float64Array(n), maxdev: m.maxdev };
  for (let g = 0; g < n; g++) {
    const t = groupStats(m, g, c);
    s.mean[g] = t.mean;
    s.rstd[g] = t.rstd;
    s.variance[g] = t.variance;
  }
  return s;
}

/** The backward's group and channel sums for one convention: Σγ·dy, Σγ·dy·x̂, max|dy| per group; dγ, dβ and their absolute sums per channel. */
export interface BackwardSums {
  sgdy: Float64Array;
  sgdyx: Float64Array;
  dymax: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  absDgamma: Float64Array;
  absDbeta: Float64Array;
}

/**
 * Through an activation, the GroupNorm's own upstream gradient is dy·act'(pre), pre = (x − mean)·
 * rstd·w + b per group and channel: what it depends on besides the index and the mean.
 */
export interface PreActivation {
  act: Activation;
  rstd: Float64Array;
  w: Float64Array;
  b: Float64Array;
}

/** What a set of channel sums is taken about: an index, one mean per group, and (through an activation) the pre-activation. */
export interface SumsBase {
  index: GroupIndex;
  mean: Float64Array;
  pre: PreActivation | null;
}

/**
 * What every convention's backward sums are linear in, per (n, c) of an index (slot n·C + c), about
 * one mean per group: Σdy, Σdy·(x − mean), Σ|dy|, Σ|dy|·|x − mean| (compensated) and max|dy|.
 * Conventions that share the index and the mean (another eps, the unbiased variance, another affine:
 * they differ only in rstd and the channels' weights) share these, and their sums follow in O(N·C).
 * Through an activation, the signed sums are of dy·act'(pre) (the absolute ones stay of dy: they
 * bound an honest result's rounding with act's largest slope), so only conventions that also share
 * pre share them.
 */
export interface ChannelSums extends SumsBase {
  dy: Float64Array;
  dyDev: Float64Array;
  absDy: Float64Array;
  absDyDev: Float64Array;
  dymax: Float64Array;
}

/** Float64 values per (n, c) that channelSums holds for each (index, mean) while it sums, and once done. */
export const CHANNEL_SUMS_FLOATS = 9;
export const CHANNEL_SUMS_KEPT = 5;

interface ChannelAcc {
  s1: Sums;
  s2: Sums;
  s3: Sums;
  s4: Sums;
  dymax: Float64Array;
}

/** One pass over dY and X for every base at once. */
export async function channelSums(dy: TensorSource, x: TensorSource, bases: SumsBase[], breathe: () => Promise<void>): Promise<ChannelSums[]> {
  const acc: ChannelAcc[] = bases.map(({ index }) => {
    const n = index.N * index.C;
    return { s1: new Sums(n), s2: new Sums(n), s3: new Sums(n), s4: new Sums(n), dymax: new Float64Array(n) };
  });
  const through = bases.some((b) => b.pre);
  const gi = through ? new Int32Array(VERIFY_CHUNK) : null, ch = through ? new Int32Array(VERIFY_CHUNK) : null;
  const dpre = through ? new Float64Array(VERIFY_CHUNK) : null;
  await stream([dy, x], (start, [vdy, vx]) => {
    for (const [k, { index, mean, pre }] of bases.entries()) {
      let vd = vdy;
      if (pre) {
        index.walk(start, vx.length, gi!, ch!);
        preActivationChunk(vx.length, vdy, vx, gi!, ch!, mean, pre.rstd, pre.w, pre.b, pre.act, dpre!);
        vd = dpre!;
      }
      (index.layout === "nchw" ? nchwChunk : nhwcChunk)(start, vx.length, vd, vdy, vx, index, mean, acc[k]);
    }
  }, breathe);
  return bases.map(({ index, mean, pre }, k) => {
    const a = acc[k];
    return { index, mean, pre, dy: a.s1.settle(), dyDev: a.s2.settle(), absDy: a.s3.settle(), absDyDev: a.s4.settle(), dymax: a.dymax };
  });
}

/** dy·act'(pre) over a chunk, pre = (x − mean)·rstd·w + b per group gi and channel ch: the GroupNorm's upstream gradient inside act. */
export function preActivationChunk(
  len: number, vdy: Float64Array, vx: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, b: Float64Array,
  act: Activation, out: Float64Array,
): void {
  for (let i = 0; i < len; i++) {
    const g = gi[i], c = ch[i];
    out[i] = vdy[i] * activationSlope(act, (vx[i] - mean[g]) * rstd[g] * w[c] + b[c]);
  }
}

/**
 * One chunk of channelSums in NCHW: each channel's run of HxW values summed, with compensation, in
 * locals (a plain function: the hot loop). The signed sums are of vdy, the absolute ones of vabs
 * (the same array without an activation).
 */
function nchwChunk(start: number, len: number, vdy: Float64Array, vabs: Float64Array, vx: Float64Array, ix: GroupIndex, mean: Float64Array, a: ChannelAcc): void {
  const { C, HxW, G } = ix, sample = C * HxW, groupOf = ix.groupOf;
  let at = 0;
  while (at < len) {
    const i = start + at, n = Math.floor(i / sample), r = i - n * sample, c = Math.floor(r / HxW);
    const to = Math.min(len, at + (c + 1) * HxW - r);
    const mu = mean[n * G + groupOf[c]];
    let s1 = 0, c1 = 0, s2 = 0, c2 = 0, s3 = 0, c3 = 0, s4 = 0, c4 = 0, top = 0;
    for (let k = at; k < to; k++) {
      const d = vdy[k], dev = vx[k] - mu, ad = Math.abs(vabs[k]), p = d * dev, ap = ad * Math.abs(dev);
      let u = s1 + d;
      c1 += Math.abs(s1) >= Math.abs(d) ? s1 - u + d : d - u + s1;
      s1 = u;
      u = s2 + p;
      c2 += Math.abs(s2) >= Math.abs(p) ? s2 - u + p : p - u + s2;
      s2 = u;
      // (the absolute sums' terms are never negative)
      u = s3 + ad;
      c3 += s3 >= ad ? s3 - u + ad : ad - u + s3;
      s3 = u;
      u = s4 + ap;
      c4 += s4 >= ap ? s4 - u + ap : ap - u + s4;
      s4 = u;
      if (ad > top || ad !== ad) top = ad;
    }
    const nc = n * C + c;
    a.s1.add(nc, s1 + c1);
    a.s2.add(nc, s2 + c2);
    a.s3.add(nc, s3 + c3);
    a.s4.add(nc, s4 + c4);
    if (top > a.dymax[nc] || top !== top) a.dymax[nc] = top;
    at = to;
  }
}

/** One chunk of channelSums in NHWC: consecutive values are consecutive channels, each its own slot (compensated in place); vdy and vabs as in nchwChunk. */
function nhwcChunk(start: number, len: number, vdy: Float64Array, vabs: Float64Array, vx: Float64Array, ix: GroupIndex, mean: Float64Array, a: ChannelAcc): void {
  const { C, HxW, G } = ix, groupOf = ix.groupOf, dymax = a.dymax;
  if (len === 0 || C === 0 || HxW === 0) return;
  const t1 = a.s1.sum, k1 = a.s1.comp, t2 = a.s2.sum, k2 = a.s2.comp, t3 = a.s3.sum, k3 = a.s3.comp, t4 = a.s4.sum, k4 = a.s4.comp;
  const sample = C * HxW, n = Math.floor(start / sample), r = start - n * sample;
  let c = r % C, s = (r - c) / C, nc = n * C, gb = n * G;
  for (let k = 0; k < len; k++) {
    const d = vdy[k], dev = vx[k] - mean[gb + groupOf[c]], ad = Math.abs(vabs[k]), p = d * dev, ap = ad * Math.abs(dev), at = nc + c;
    let v = t1[at], u = v + d;
    k1[at] += Math.abs(v) >= Math.abs(d) ? v - u + d : d - u + v;
    t1[at] = u;
    v = t2[at];
    u = v + p;
    k2[at] += Math.abs(v) >= Math.abs(p) ? v - u + p : p - u + v;
    t2[at] = u;
    v = t3[at];
    u = v + ad;
    k3[at] += v >= ad ? v - u + ad : ad - u + v;
    t3[at] = u;
    v = t4[at];
    u = v + ap;
    k4[at] += v >= ap ? v - u + ap : ap - u + v;
    t4[at] = u;
    if (ad > dymax[at] || ad !== ad) dymax[at] = ad;
    if (++c === C) {
      c = 0;
      if (++s === HxW) {
        s = 0;
        nc += C;
        gb += G;
      }
    }
  }
}

/** Each channel's scale γ and shift β under a convention (γ: the weight of its dy in the backward; β: in pre, through an activation). */
function channelAffine(conv: Convention, ix: GroupIndex, gamma: Float64Array | null, beta: Float64Array | null): { w: Float64Array; b: Float64Array } {
  const w = new Float64Array(ix.C), b = new Float64Array(ix.C);
  for (let c = 0; c < ix.C; c++) [w[c], b[c]] = affineOf(conv, gamma, beta, c, ix.groupOf[c]);
  return { w, b };
}

/**
 * A convention's backward sums from the channel sums of its index and mean, in O(N·C): with w the
 * channel's weight, r and q = offsetFactor(mean, r) its group's, over the group's channels Σγ·dy =
 * Σ w·Σdy and Σγ·dy·x̂ = r·Σ w·Σdy·(x − mean); over n, dγ = Σ r·Σdy·(x − mean), dβ = Σ Σdy,
 * Σ|dy|·(|x̂|·q + q − 1) = Σ (r·q·Σ|dy|·|x − mean| + (q − 1)·Σ|dy|) and Σ|dy|. Through an activation,
 * the absolute sums and max|dy| are times its largest slope (an honest dy·act'(pre) carries pre's
 * rounding through act', up to that slope).
 */
export function deriveSums(b: ChannelSums, conv: Convention, stats: Stats, gamma: Float64Array | null, beta: Float64Array | null = null): BackwardSums {
  const ix = b.index, { N, C, G } = ix, groupOf = ix.groupOf, groups = ix.groups;
  const { w } = channelAffine(conv, ix, gamma, beta), { rstd, mean } = stats;
  const k = b.pre ? SLOPE[b.pre.act] : 1;
  const sgdy = new Sums(groups), sgdyx = new Sums(groups), dymax = new Float64Array(groups);
  const dgamma = new Sums(C), dbeta = new Sums(C), absDgamma = new Sums(C), absDbeta = new Sums(C);
  // no values (HxW = 0): every sum is 0, whatever the (undefined) rstd
  if (ix.M > 0) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const nc = n * C + c, gi = n * G + groupOf[c], r = rstd[gi], q = offsetFactor(mean[gi], r);
        const s1 = b.dy[nc], s2 = b.dyDev[nc], s3 = k * b.absDy[nc], top = k * b.dymax[nc];
        sgdy.add(gi, w[c] * s1);
        sgdyx.add(gi, w[c] * s2);
        if (top > dymax[gi] || top !== top) dymax[gi] = top;
        dgamma.add(c, r * s2);
        dbeta.add(c, s1);
        absDgamma.add(c, r * q * k * b.absDyDev[nc] + (q - 1) * s3);
        absDbeta.add(c, s3);
      }
    }
  }
  const sx = sgdyx.settle();
  for (let gi = 0; gi < groups; gi++) sx[gi] = ix.M > 0 ? rstd[gi] * sx[gi] : 0;
  return { sgdy: sgdy.settle(), sgdyx: sx, dymax, dgamma: dgamma.settle(), dbeta: dbeta.settle(), absDgamma: absDgamma.settle(), absDbeta: absDbeta.settle() };
}

const sameIndex = (a: GroupIndex, b: GroupIndex) => a.layout === b.layout && a.grouping === b.grouping && a.N === b.N && a.C === b.C && a.HxW === b.HxW && a.G === b.G;
const sameValues = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((v, k) => v === b[k] || (v !== v && b[k] !== b[k]));
const samePre = (a: PreActivation | null, b: PreActivation | null) =>
  a === b || (a !== null && b !== null && a.act === b.act && sameValues(a.rstd, b.rstd) && sameValues(a.w, b.w) && sameValues(a.b, b.b));
const sameBase = (a: SumsBase, b: SumsBase) => sameIndex(a.index, b.index) && sameValues(a.mean, b.mean) && samePre(a.pre, b.pre);

/** Through an activation: the activation each convention's reference uses, and the forward's beta. */
export interface Through {
  activation: (c: Convention) => Activation | null;
  beta: Float64Array | null;
}

/** Channel sums summed in one pass over dY and X at most (main's alternatives need at most this many: verify's --memory counts them). */
export const BASES_PER_PASS = 3;

/**
 * The backward sums of each convention, derived from the channel sums of its base (index, mean and,
 * through an activation, pre): those of `known`, and the rest summed in passes over dY and X of at
 * most BASES_PER_PASS bases each. The bases are returned, to be known next time, when one pass was
 * enough; after more (each convention through an activation has its own pre), each pass's bases are
 * dropped once its conventions' sums are derived, so memory holds no more than one pass's.
 */
export async function backwardSums(
  dy: TensorSource, x: TensorSource, conventions: Array<{ c: Convention; stats: Stats }>, gamma: Float64Array | null, breathe: () => Promise<void>,
  known: ChannelSums[] = [], through: Through | null = null,
): Promise<{ sums: BackwardSums[]; bases: ChannelSums[] }> {
  const beta = through?.beta ?? null;
  const baseOf = ({ c, stats }: { c: Convention; stats: Stats }): SumsBase => {
    const act = through?.activation(c) ?? null;
    if (!act) return { index: stats.index, mean: stats.mean, pre: null };
    return { index: stats.index, mean: stats.mean, pre: { act, rstd: stats.rstd, ...channelAffine(c, stats.index, gamma, beta) } };
  };
  const wanted = conventions.map(baseOf);
  const missing: SumsBase[] = [];
  for (const b of wanted) if (!known.some((k) => sameBase(k, b)) && !missing.some((m) => sameBase(m, b))) missing.push(b);
  const sums = new Array<BackwardSums>(conventions.length);
  const derive = (bases: ChannelSums[]) =>
    conventions.forEach(({ c, stats }, n) => {
      const b = bases.find((v) => sameBase(v, wanted[n]));
      if (b && !sums[n]) sums[n] = deriveSums(b, c, stats, gamma, beta);
    });
  derive(known);
  if (missing.length <= BASES_PER_PASS) {
    const bases = missing.length ? [...known, ...(await channelSums(dy, x, missing, breathe))] : known;
    derive(bases);
    return { sums, bases };
  }
  for (let at = 0; at < missing.length; at += BASES_PER_PASS) derive(await channelSums(dy, x, missing.slice(at, at + BASES_PER_PASS), breathe));
  return { sums, bases: known };
}

/** The largest |γ| and |β| of each group's channels (for the scale of Y and dX). */
export function groupAffineMax(index: GroupIndex, c: Convention, gamma: Float64Array | null, beta: Float64Array | null): { wmax: Float64Array; bmax: Float64Array } {
  const wmax = new Float64Array(index.G), bmax = new Float64Array(index.G);
  for (let chn = 0; chn < index.C; chn++) {
    const g = index.groupOf[chn];
    const [w, b] = affineOf(c, gamma, beta, chn, g);
    wmax[g] = Math.max(wmax[g], Math.abs(w));
    bmax[g] = Math.max(bmax[g], Math.abs(b));
  }
  return { wmax, bmax };
}
