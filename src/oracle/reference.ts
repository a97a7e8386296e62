/**
 * Float64 reference implementation of GroupNorm forward and backward: simple, obviously right, and
 * slow. Used only by tests and by gradcheck, never by the production path.
 *
 * Tensors are flat Float64Arrays in the file's C order; `flatIndex` maps (n, c, s) for the layout.
 * Channel c is in group groupOf(d, c): ⌊c / D⌋, or c mod G when `d.interleaved`.
 */
import type { Activation } from "../core/activation.js";
import { channelsOfGroup, type Dims, flatIndex, groupOf } from "../core/dims.js";
import { activate, activationSlope } from "./activation.js";

export interface ReferenceForward {
  y: Float64Array;
  mean: Float64Array; // (N, G)
  rstd: Float64Array; // (N, G)
  variance: Float64Array; // (N, G), biased
}

export interface ReferenceBackward {
  dx: Float64Array;
  dgamma: Float64Array; // (C,)
  dbeta: Float64Array; // (C,)
}

/** Indices of the elements of group (n, g), in channel-major then spatial order. */
function groupIndices(d: Dims, n: number, g: number): number[] {
  const idx: number[] = [];
  for (const c of channelsOfGroup(d, g)) {
    for (let s = 0; s < d.HxW; s++) idx.push(flatIndex(d, n, c, s));
  }
  return idx;
}

/** Two-pass mean and biased variance. */
export function referenceStats(x: ArrayLike<number>, d: Dims, eps: number): { mean: Float64Array; rstd: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(d.N * d.G);
  const rstd = new Float64Array(d.N * d.G);
  const vars = new Float64Array(d.N * d.G);
  for (let n = 0; n < d.N; n++) {
    for (let g = 0; g < d.G; g++) {
      const idx = groupIndices(d, n, g);
      let sum = 0;
      for (const i of idx) sum += x[i];
      const m = sum / idx.length;
      let sq = 0;
      for (const i of idx) sq += (x[i] - m) * (x[i] - m);
      const variance = sq / idx.length;
      mean[n * d.G + g] = m;
      rstd[n * d.G + g] = 1 / Math.sqrt(variance + eps);
      vars[n * d.G + g] = variance;
    }
  }
  return { mean, rstd, variance: vars };
}

/** Y = GroupNorm(X), or act(GroupNorm(X)) with an activation. */
export function referenceForward(
  x: ArrayLike<number>,
  d: Dims,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  eps: number,
  activation: Activation | null = null,
): ReferenceForward {
  const { mean, rstd, variance } = referenceStats(x, d, eps);
  const y = new Float64Array(x.length);
  for (let n = 0; n < d.N; n++) {
    for (let c = 0; c < d.C; c++) {
      const g = groupOf(d, c);
      const m = mean[n * d.G + g];
      const r = rstd[n * d.G + g];
      const w = gamma ? gamma[c] : 1;
      const b = beta ? beta[c] : 0;
      for (let s = 0; s < d.HxW; s++) {
        const i = flatIndex(d, n, c, s);
        const pre = (x[i] - m) * r * w + b;
        y[i] = activation ? activate(activation, pre) : pre;
      }
    }
  }
  return { y, mean, rstd, variance };
}

/**
 * Backward from the textbook formula: with x̂ = (x − mean)·rstd and M = D·HxW,
 *   dx = rstd/M · (M·γ·dy − Σ γ·dy − x̂ · Σ γ·dy·x̂)   (sums over the group)
 *   dγ[c] = Σ_{n,s} dy·x̂,  dβ[c] = Σ_{n,s} dy.
 * mean/rstd are those of the forward pass (recomputed from x when not given). Through an
 * activation, Y = act(x̂·γ + β), dy is first replaced by dy·act'(x̂·γ + β).
 */
export function referenceBackward(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  d: Dims,
  gamma: ArrayLike<number> | null,
  stats: { mean: ArrayLike<number>; rstd: ArrayLike<number> },
  through?: { activation: Activation; beta: ArrayLike<number> | null },
): ReferenceBackward {
  if (through) dy = preActivationGradient(dy, x, d, gamma, through.beta, stats, through.activation);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(d.C);
  const dbeta = new Float64Array(d.C);
  const M = d.D * d.HxW;
  for (let n = 0; n < d.N; n++) {
    for (let g = 0; g < d.G; g++) {
      const m = stats.mean[n * d.G + g];
      const r = stats.rstd[n * d.G + g];
      let sumGdy = 0;
      let sumGdyXhat = 0;
      for (const c of channelsOfGroup(d, g)) {
        const w = gamma ? gamma[c] : 1;
        for (let s = 0; s < d.HxW; s++) {
          const i = flatIndex(d, n, c, s);
          const xhat = (x[i] - m) * r;
          sumGdy += w * dy[i];
          sumGdyXhat += w * dy[i] * xhat;
          dgamma[c] += dy[i] * xhat;
          dbeta[c] += dy[i];
        }
      }
      for (const c of channelsOfGroup(d, g)) {
        const w = gamma ? gamma[c] : 1;
        for (let s = 0; s < d.HxW; s++) {
          const i = flatIndex(d, n, c, s);
          const xhat = (x[i] - m) * r;
          dx[i] = (r / M) * (M * w * dy[i] - sumGdy - xhat * sumGdyXhat);
        }
      }
    }
  }
  return { dx, dgamma, dbeta };
}

/** dy·act'(pre) with pre = (x − mean)·rstd·γ + β: the upstream gradient of the GroupNorm inside act. */
export function preActivationGradient(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  d: Dims,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  stats: { mean: ArrayLike<number>; rstd: ArrayLike<number> },
  activation: Activation,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let n = 0; n < d.N; n++) {
    for (let c = 0; c < d.C; c++) {
      const g = n * d.G + groupOf(d, c);
      const w = gamma ? gamma[c] : 1, b = beta ? beta[c] : 0;
      for (let s = 0; s < d.HxW; s++) {
        const i = flatIndex(d, n, c, s);
        out[i] = dy[i] * activationSlope(activation, (x[i] - stats.mean[g]) * stats.rstd[g] * w + b);
      }
    }
  }
  return out;
}
