/**
 * When the float32 loops would not keep a group exact: its values near the ends of the float32
 * range (x − mean would overflow, or round coarsely among subnormals), or coefficients that float32
 * cannot hold (rstd·γ overflowing, or subnormal). Such groups run in float64 arithmetic on their
 * float32 values (the *_f32_wide kernels); ordinary data never comes near these bounds, so the fast
 * loops run everywhere else. The bounds leave a wide margin on both sides of float32's range.
 */

/** Coefficients and spreads beyond these are "extreme". float32 spans 2^-149 … 2^128. */
const BIG = 2 ** 100;
const SMALL = 2 ** -100;
/** |x| + |mean| must stay below this for x − mean to be safe in float32. */
const SAFE_SUM = 2 ** 126;

/**
 * Whether a group's x − mean is unsafe in float32: its spread σ (from var) is subnormal-small
 * without being zero, rstd is beyond BIG (eps = 0 or tiny on a near-constant group), or its values
 * may reach the float32 range (|x| ≤ |mean| + σ·√M).
 */
export function extremeGroup(mean: number, variance: number, rstd: number, M: number): boolean {
  if (!Number.isFinite(mean) || Number.isNaN(rstd)) return false; // NaN/Inf data: non-finite either way
  const sigma = Math.sqrt(Math.max(0, variance));
  return (sigma > 0 && sigma < SMALL) || rstd > BIG || 2 * Math.abs(mean) + sigma * Math.sqrt(M) > SAFE_SUM;
}

/** Whether a float32 coefficient would overflow or lose digits to subnormal rounding. */
export function extremeCoefficient(v: number): boolean {
  const a = Math.abs(v);
  return a > BIG || (a !== 0 && a < SMALL);
}

/** The fast float32 statistics' variance is too small to trust (squares may have underflowed): redo them in float64. */
export function tinyVariance(variance: number): boolean {
  return variance < SMALL * SMALL;
}
