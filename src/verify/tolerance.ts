/**
 * What verify accepts by default, by the candidate's dtype, and the units in the last place it
 * reports errors in.
 *
 * An honest implementation stores its result in the candidate's dtype (rounding it once: at most
 * half a unit in the last place) and computes it with some accumulation precision (float32 for
 * float16 and float32 storage, float64 for float64), whose rounding grows with the size of what it
 * sums. So an entry passes when
 *
 *     |candidate − reference| ≤ rtol·|reference| + atol,   atol = ACCUMULATION·scale,
 *
 * with rtol two units of the storage dtype and `scale` the size of what produced the entry: for Y the
 * group's largest |y| (|x̂|max·|γ|max + |β|max), for mean |mean| + σ, for rstd rstd, for dX a bound of
 * the group's largest |dx| — each times lengthFactor(M), since they rest on the group's sums of M
 * values, whose rounding grows as √M when they are summed one after another — and for dgamma and
 * dbeta the sum of the absolute terms they add up (Σ|dy·x̂| and Σ|dy| over N·HxW values), which grows
 * with the sum's length as its rounding does. ACCUMULATION is 64 units of the accumulation precision. Measured against PyTorch 1.13's own
 * float32 and float16 results on random data (docs/cli.md), the largest errors use 1–5% of these
 * tolerances, while a wrong convention (another eps, the unbiased variance) or a wrong group misses
 * them by orders of magnitude.
 */
import type { Dtype } from "../core/dtype.js";

export interface Tolerance {
  /** Relative part, times |reference|. */
  rtol: number;
  /** Absolute part per unit of the entry's scale. */
  scaled: number;
  /** A fixed absolute part instead of the scaled one (--atol). */
  atol: number | null;
}

/** Units in the last place of each storage dtype, and of the precision its implementations accumulate in. */
const STORAGE_ULP: Record<Dtype, number> = { float16: 2 ** -10, float32: 2 ** -23, float64: 2 ** -52 };
const ACCUMULATION: Record<Dtype, number> = { float16: 64 * 2 ** -24, float32: 64 * 2 ** -24, float64: 64 * 2 ** -53 };

export function defaultTolerance(dtype: Dtype): Tolerance {
  return { rtol: 2 * STORAGE_ULP[dtype], scaled: ACCUMULATION[dtype], atol: null };
}

/** Room for sums of M values: 1 up to M = 256, then √M / 16 (a sequential float32 sum's rounding grows as √M). */
export function lengthFactor(M: number): number {
  return Math.max(1, Math.sqrt(M) / 16);
}

/** The tolerance of an entry of this scale. */
export function allowed(t: Tolerance, reference: number, scale: number): number {
  return t.rtol * Math.abs(reference) + (t.atol ?? t.scaled * scale);
}

const MANTISSA: Record<Dtype, number> = { float16: 10, float32: 23, float64: 52 };
const MIN_EXPONENT: Record<Dtype, number> = { float16: -14, float32: -126, float64: -1022 };

/** One unit in the last place of `v` in `dtype` (its spacing there, subnormals included). */
export function ulp(v: number, dtype: Dtype): number {
  const a = Math.abs(v);
  const e = a === 0 || !Number.isFinite(a) ? MIN_EXPONENT[dtype] : Math.max(MIN_EXPONENT[dtype], Math.floor(Math.log2(a)));
  return 2 ** (e - MANTISSA[dtype]);
}
