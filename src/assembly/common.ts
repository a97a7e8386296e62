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

// ---------------------------------------------------------------- 16-bit floats to float32
// Exact, as io/float16.ts and io/bfloat16.ts decode them: float16 bits shifted into a float32's
// place and scaled by 2^112 (normal and subnormal values alike), infinities and NaN given the
// float32 exponent; bfloat16 is a float32's upper half.

/** float32x4 of the float16 bit patterns in the four (zero-extended) 32-bit lanes of h. */
@inline export function f16x4(h: v128): v128 {
  const em = v128.and(h, i32x4.splat(0x7fff));
  const bits = i32x4.shl(em, 13);
  const scaled = f32x4.mul(bits, f32x4.splat(5.192296858534828e33));
  const special = i32x4.gt_s(em, i32x4.splat(0x7bff));
  const v = v128.bitselect(v128.or(bits, i32x4.splat(0x7f800000)), scaled, special);
  return v128.or(v, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** One float16 bit pattern as float32. */
@inline export function f16s(h: u32): f32 {
  const em = h & 0x7fff;
  const f = em > 0x7bff ? reinterpret<f32>((em << 13) | 0x7f800000) : reinterpret<f32>(em << 13) * <f32>5.192296858534828e33;
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/**
 * Values of element type T as vectors: T is f32, f64, or the storage markers u16 (float16 bits)
 * and i16 (bfloat16 bits), whose values come as float32. `lanesOf<T>()` values per vector.
 */
@inline export function lanesOf<T>(): i32 {
  return sizeof<T>() == 8 ? 2 : 4;
}

/** The vector of values i … i + lanesOf<T>() − 1 at p (float32x4, or float64x2 for f64). */
@inline export function loadv<T>(p: usize, i: i32): v128 {
  if (sizeof<T>() == 8) return v128.load(p + (<usize>i << 3));
  if (sizeof<T>() == 4) return v128.load(p + (<usize>i << 2));
  const h = i32x4.extend_low_i16x8_u(v128.load64_zero(p + (<usize>i << 1)));
  if (isSigned<T>()) return i32x4.shl(h, 16);
  return f16x4(h);
}

/** Value i at p as float64. */
@inline export function loads<T>(p: usize, i: i32): f64 {
  if (sizeof<T>() == 8) return load<f64>(p + (<usize>i << 3));
  if (sizeof<T>() == 4) return <f64>load<f32>(p + (<usize>i << 2));
  const h = <u32>load<u16>(p + (<usize>i << 1));
  if (isSigned<T>()) return <f64>reinterpret<f32>(h << 16);
  return <f64>f16s(h);
}
