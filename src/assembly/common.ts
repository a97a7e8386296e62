// Shared @inline helpers and constants of the kernels (see index.ts for the files and vocabulary).

@inline export function hi2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
}
@inline export function lo2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
@inline export function hsum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}
@inline export function hsum32(v: v128): f64 {
  const w = f64x2.add(lo2(v), hi2(v));
  return f64x2.extract_lane(w, 0) + f64x2.extract_lane(w, 1);
}

/**
 * Zero `bytes` at p with vector stores, rounded up to 16 bytes (the per-thread scratch has room).
 * Much cheaper than memory.fill on a shared memory.
 */
@inline export function zero(p: usize, bytes: usize): void {
  const z = f32x4.splat(0);
  for (let i: usize = 0; i < bytes; i += 16) v128.store(p + i, z);
}

/**
 * Rows per NHWC strip: float32 sums run over at most STRIP terms per lane (error ≤ 32 ulp of Σ|term|,
 * typically ~6 ulp) before a float64 merge. 32 rows halve the merges of 16 for ~10% of NHWC time.
 */
export const STRIP = 32;
