/**
 * The float64 reference of verify, streamed: the same formulas as oracle/reference.ts (two-pass
 * mean and biased variance; dx = rstd·(γ·dy − Σγ·dy/M − x̂·Σγ·dy·x̂/M)), computed over chunks of
 * the files with compensated sums, for the given convention and its alternatives at once. Memory is
 * a few float64 vectors per (n, g) group and per channel, whatever the file sizes.
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
  const sums = indexes.map((ix) => new Sums(ix.groups));
  await stream([x], (start, [v]) => {
    for (const [k, ix] of indexes.entries()) {
      const out = sums[k];
      ix.eachRun(start, v.length, (from, to, g) => {
        let s = 0, c = 0;
        for (let i = from; i < to; i++) {
          const t = v[i], u = s + t;
          c += Math.abs(s) >= Math.abs(t) ? s - u + t : t - u + s;
          s = u;
        }
        out.add(g, s + c);
      });
    }
  }, breathe);
  const means = indexes.map((ix, k) => sums[k].totals().map((t) => (ix.M > 0 ? t / ix.M : 0)));
  const m2 = indexes.map((ix) => new Sums(ix.groups));
  const maxdev = indexes.map((ix) => new Float64Array(ix.groups));
  await stream([x], (start, [v]) => {
    for (const [k, ix] of indexes.entries()) {
      const mean = means[k], md = maxdev[k], out = m2[k];
      ix.eachRun(start, v.length, (from, to, g) => {
        const mu = mean[g];
        let s = 0, c = 0, top = md[g];
        for (let i = from; i < to; i++) {
          const d = v[i] - mu, t = d * d, u = s + t;
          c += s >= t ? s - u + t : t - u + s;
          s = u;
          const a = Math.abs(d);
          if (a > top || a !== a) top = a;
        }
        md[g] = top;
        out.add(g, s + c);
      });
    }
  }, breathe);
  return indexes.map((index, k) => ({ index, mean: means[k], m2: m2[k].totals(), maxdev: maxdev[k] }));
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

/** Through an activation: the activation each convention's reference uses, and the forward's beta. */
export interface Through {
  activation: (c: Convention) => Activation | null;
  beta: Float64Array | null;
}

/**
 * One pass over dY and X for every convention at once. Through an activation, the sums are of
 * dy·act'(pre), and the sizes they are checked against of |dy|·max|act'| (an honest dy·act'(pre)
 * carries pre's rounding through act', up to its largest slope).
 */
export async function backwardSums(dy: TensorSource, x: TensorSource, conventions: Array<{ c: Convention; stats: Stats }>, gamma: Float64Array | null, breathe: () => Promise<void>, through: Through | null = null): Promise<BackwardSums[]> {
  const gi = new Int32Array(VERIFY_CHUNK), ch = new Int32Array(VERIFY_CHUNK);
  const acc = conventions.map(({ stats }) => ({
    sgdy: new Sums(stats.index.groups),
    sgdyx: new Sums(stats.index.groups),
    dymax: new Float64Array(stats.index.groups),
    dgamma: new Sums(stats.index.C),
    dbeta: new Sums(stats.index.C),
    absDgamma: new Sums(stats.index.C),
    absDbeta: new Sums(stats.index.C),
  }));
  // per convention: each channel's scale, each group's offset factor (the room dgamma needs for the mean's rounding)
  const plans = conventions.map(({ c, stats }) => {
    const ix = stats.index, w = new Float64Array(ix.C), b = new Float64Array(ix.C), q = new Float64Array(ix.groups);
    for (let chn = 0; chn < ix.C; chn++) [w[chn], b[chn]] = affineOf(c, gamma, through?.beta ?? null, chn, ix.grouping === "interleaved" ? chn % ix.G : Math.floor(chn / ix.D));
    for (let g = 0; g < ix.groups; g++) q[g] = offsetFactor(stats.mean[g], stats.rstd[g]);
    return { w, b, q, act: through?.activation(c) ?? null };
  });
  const dpre = through ? new Float64Array(VERIFY_CHUNK) : null;
  await stream([dy, x], (start, [vdy, vx]) => {
    for (const [k, { stats }] of conventions.entries()) {
      const { w, b, q, act } = plans[k];
      stats.index.walk(start, vx.length, gi, ch);
      if (!act) backwardChunk(vx.length, vdy, vx, gi, ch, stats.mean, stats.rstd, w, q, acc[k], vdy, 1);
      else {
        preActivationChunk(vx.length, vdy, vx, gi, ch, stats.mean, stats.rstd, w, b, act, dpre!);
        backwardChunk(vx.length, dpre!, vx, gi, ch, stats.mean, stats.rstd, w, q, acc[k], vdy, SLOPE[act]);
      }
    }
  }, breathe);
  return acc.map((a) => ({
    sgdy: a.sgdy.totals(),
    sgdyx: a.sgdyx.totals(),
    dymax: a.dymax,
    dgamma: a.dgamma.totals(),
    dbeta: a.dbeta.totals(),
    absDgamma: a.absDgamma.totals(),
    absDbeta: a.absDbeta.totals(),
  }));
}

/**
 * One chunk of backwardSums for one convention (a plain function: the hot loop): the sums of vdy,
 * against sizes |size|·slope (the upstream gradient and the activation's largest slope; without
 * one, vdy itself and 1).
 */
function backwardChunk(
  len: number, vdy: Float64Array, vx: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, q: Float64Array,
  a: { sgdy: Sums; sgdyx: Sums; dymax: Float64Array; dgamma: Sums; dbeta: Sums; absDgamma: Sums; absDbeta: Sums },
  size: Float64Array, slope: number,
): void {
  for (let i = 0; i < len; i++) {
    const g = gi[i], chn = ch[i], d = vdy[i];
    const xhat = (vx[i] - mean[g]) * rstd[g], wd = w[chn] * d, ad = Math.abs(size[i]) * slope;
    a.sgdy.add(g, wd);
    a.sgdyx.add(g, wd * xhat);
    if (ad > a.dymax[g] || Number.isNaN(ad)) a.dymax[g] = ad;
    a.dgamma.add(chn, d * xhat);
    a.dbeta.add(chn, d);
    // the size of dy·x̂ with room for x̂'s error from the mean's rounding (see offsetFactor)
    a.absDgamma.add(chn, ad * (Math.abs(xhat) * q[g] + q[g] - 1));
    a.absDbeta.add(chn, ad);
  }
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

/** The largest |γ| and |β| of each group's channels (for the scale of Y and dX). */
export function groupAffineMax(index: GroupIndex, c: Convention, gamma: Float64Array | null, beta: Float64Array | null): { wmax: Float64Array; bmax: Float64Array } {
  const wmax = new Float64Array(index.G), bmax = new Float64Array(index.G);
  for (let chn = 0; chn < index.C; chn++) {
    const g = index.grouping === "interleaved" ? chn % index.G : Math.floor(chn / index.D);
    const [w, b] = affineOf(c, gamma, beta, chn, g);
    wmax[g] = Math.max(wmax[g], Math.abs(w));
    bmax[g] = Math.max(bmax[g], Math.abs(b));
  }
  return { wmax, bmax };
}
