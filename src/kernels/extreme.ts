/**
 * When the float32 loops would not keep a group exact: its values near the ends of the float32
 * range (x − mean would overflow, or round coarsely among subnormals), or coefficients that float32
 * cannot hold (rstd·γ overflowing, or subnormal). Such groups run in float64 arithmetic on their
 * float32 values (the *_f32_wide kernels); ordinary data never comes near these bounds, so the fast
 * loops run everywhere else. The bounds leave a wide margin on both sides of float32's range.
 * Separately, tinyVariance and tinyGradient say when the fast float32 sums themselves cannot be
 * trusted (squares or products rounded among the subnormals), so that they are redone in float64.
 */

/** Coefficients and spreads beyond these are "extreme". float32 spans 2^-149 … 2^128. */
const BIG = 2 ** 100;
const SMALL = 2 ** -100;
/** |x| + |mean| must stay below this for x − mean to be safe in float32. */
const SAFE_SUM = 2 ** 126;

/**
 * Whether a group's x − mean is unsafe in float32: its spread σ (from var) is subnormal-small
 * without being zero, |rstd| is beyond BIG (eps = 0 or tiny on a near-constant group, or a given
 * rstd of ±∞), or its values may reach the float32 range (|x| ≤ |mean| + σ·√M).
 */
export function extremeGroup(mean: number, variance: number, rstd: number, M: number): boolean {
  if (!Number.isFinite(mean) || Number.isNaN(rstd)) return false; // NaN/Inf data: non-finite either way
  const sigma = Math.sqrt(Math.max(0, variance));
  return (sigma > 0 && sigma < SMALL) || Math.abs(rstd) > BIG || 2 * Math.abs(mean) + sigma * Math.sqrt(M) > SAFE_SUM;
}

/** Whether a float32 coefficient would overflow or lose digits to subnormal rounding. */
export function extremeCoefficient(v: number): boolean {
  const a = Math.abs(v);
  return a > BIG || (a !== 0 && a < SMALL);
}

/**
 * Below this variance (σ < 2^-50) the fast float32 statistics are redone in float64. Their squares of
 * deviations from a block's first value are float32 products: below 2^-126 (deviations below 2^-63)
 * they round to subnormals, up to 2^-150 off each, so the variance can be off by 2^-150 whatever the
 * number of values (eps = 0 then gives rstd off by 3x at σ ≈ 1e-25, 1% at 1e-22). At σ ≥ 2^-50 that
 * is at most 2^-50 of the variance; ordinary data (and so the fast path) never comes near.
 */
const TINY_VARIANCE = 2 ** -100;

/** The fast float32 statistics' variance is too small to trust (squares may have underflowed): redo them in float64. */
export function tinyVariance(variance: number): boolean {
  return variance < TINY_VARIANCE;
}

/** Per term: a channel's internal gradient below count · 2^-120 may have lost digits (see tinyGradient). */
const TINY_TERM = 2 ** -120;

/**
 * Whether a fast float32 internal gradient ds = Σ dy·(x − m) over `count` terms is too small to
 * trust: its products are float32, and those below 2^-126 (tiny dy times a tiny spread) round to
 * subnormals, up to 2^-150 off each. Below count · 2^-120 that error may exceed 2^-30 of ds, so it
 * is redone in float64 (a ds of exactly 0 whose terms are all exactly 0 is exact: see the caller).
 */
export function tinyGradient(ds: number, count: number): boolean {
  return Math.abs(ds) < count * TINY_TERM;
}
