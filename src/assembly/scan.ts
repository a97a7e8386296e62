// info's statistics: one record of partials per block of values, in the file's own element type
// (float32, float64, or float16 / bfloat16 bits converted here). src/kernels/scan.ts shares the
// blocks of a slice among the threads and analysis/info.ts merges the records in block order, so
// the results do not depend on the thread count or on the slicing.
//
// A block's record, RECORD float64 values (its finite values are its length less [1] to [3]):
//   [0] m, the first pass's mean   [1] NaN   [2] +∞   [3] −∞   [4] min   [5] max
//   [6] mean − m   [7] M2 = Σ(x − mean)²                    (min, max, mean and M2 of the finite values)
// The block is in cache after its first pass, so the second pass sums around m (d = x − m, with
// the correction M2 = Σd² − (Σd)²/count): float64-accurate whatever the spread. The mean is kept
// as m plus a small part, so that merging blocks whose means are far from 0 (1e8 ± 1, say) loses
// nothing to the rounding of the means themselves.
// min and max keep the first value met among equal ones, as a scalar `if (x < min) min = x` in
// order would: only ±0 can tell, and a block whose lanes disagree on the sign of a zero extreme is
// scanned again in order.

import { hi2, hsum, lanesOf, lo2, loads, loadv } from "./common";

/** Element codes, as src/kernels/scan.ts passes them. */
export const F32: i32 = 0, F64: i32 = 1, F16: i32 = 2, BF16: i32 = 3;

/** Bytes of one record. */
const REC: usize = 64;

@inline function finite<T>(x: v128): v128 {
  if (sizeof<T>() == 8) return f64x2.lt(f64x2.abs(x), f64x2.splat(Infinity));
  return f32x4.lt(f32x4.abs(x), f32x4.splat(Infinity));
}

/** Lane-wise `b < a ? b : a` (pmin) or `a < b ? b : a` (pmax): the first of equal values stays. */
@inline function pminv<T>(a: v128, b: v128): v128 {
  return sizeof<T>() == 8 ? f64x2.pmin(a, b) : f32x4.pmin(a, b);
}
@inline function pmaxv<T>(a: v128, b: v128): v128 {
  return sizeof<T>() == 8 ? f64x2.pmax(a, b) : f32x4.pmax(a, b);
}

@inline function splatv<T>(v: f64): v128 {
  return sizeof<T>() == 8 ? f64x2.splat(v) : f32x4.splat(<f32>v);
}

/** Lane count of a finite mask added to a count vector (masks are −1 per lane). */
@inline function tally<T>(c: v128, m: v128): v128 {
  return sizeof<T>() == 8 ? i64x2.sub(c, m) : i32x4.sub(c, m);
}

@inline function htally<T>(c: v128): i32 {
  if (sizeof<T>() == 8) return <i32>(i64x2.extract_lane(c, 0) + i64x2.extract_lane(c, 1));
  return i32x4.extract_lane(c, 0) + i32x4.extract_lane(c, 1) + i32x4.extract_lane(c, 2) + i32x4.extract_lane(c, 3);
}

/** The least (max = false) or greatest of the lanes of v and t, by value (the sign of a zero extreme is settled apart). */
@inline function extreme<T>(v: v128, t: f64, max: bool): f64 {
  let r = t;
  if (sizeof<T>() == 8) {
    const a = f64x2.extract_lane(v, 0), b = f64x2.extract_lane(v, 1);
    r = max ? Math.max(Math.max(a, b), r) : Math.min(Math.min(a, b), r);
  } else {
    const a = <f64>f32x4.extract_lane(v, 0), b = <f64>f32x4.extract_lane(v, 1);
    const c = <f64>f32x4.extract_lane(v, 2), d = <f64>f32x4.extract_lane(v, 3);
    r = max ? Math.max(Math.max(Math.max(a, b), Math.max(c, d)), r) : Math.min(Math.min(Math.min(a, b), Math.min(c, d)), r);
  }
  return r;
}

/** Which zeros the lanes of u and v hold: bit 0 a +0, bit 1 a −0. */
@inline function zeroSigns<T>(u: v128, v: v128): i32 {
  const z = i64x2.splat(0);
  const nz = sizeof<T>() == 8 ? i64x2.splat(i64.MIN_VALUE) : i32x4.splat(i32.MIN_VALUE);
  const pos = sizeof<T>() == 8 ? v128.or(i64x2.eq(u, z), i64x2.eq(v, z)) : v128.or(i32x4.eq(u, z), i32x4.eq(v, z));
  const neg = sizeof<T>() == 8 ? v128.or(i64x2.eq(u, nz), i64x2.eq(v, nz)) : v128.or(i32x4.eq(u, nz), i32x4.eq(v, nz));
  return (v128.any_true(pos) ? 1 : 0) | (v128.any_true(neg) ? 2 : 0);
}

/** The first least (max = false) or greatest finite value met in order. */
@inline function inOrder<T>(p: usize, n: i32, max: bool): f64 {
  let r = max ? -Infinity : Infinity;
  for (let i = 0; i < n; i++) {
    const v = loads<T>(p, i);
    if (v - v != 0) continue;
    if (max ? v > r : v < r) r = v;
  }
  return r;
}

/**
 * Σd² and Σd, d = x − m, over the finite values of the block's vector part [0, nv) (`all`: all are
 * finite). Each lane sums 64 terms at a time before they join the block's sums: one huge term
 * (a spike) does not swallow the digits of the thousand small ones after it.
 */
@inline function spread<T>(p: usize, nv: i32, m: f64, all: bool, out: usize): void {
  const L = lanesOf<T>();
  const mv = f64x2.splat(m);
  let Q = f64x2.splat(0), E = Q;
  for (let c = 0; c < nv; c += 128 * L) {
    const end = min(nv, c + 128 * L);
    let q0 = f64x2.splat(0), q1 = q0, q2 = q0, q3 = q0;
    let e0 = q0, e1 = q0, e2 = q0, e3 = q0;
    for (let i = c; i < end; i += 2 * L) {
      const x = loadv<T>(p, i), y = loadv<T>(p, i + L);
      let d0: v128, d1: v128, d2 = f64x2.splat(0), d3 = f64x2.splat(0);
      if (sizeof<T>() == 8) {
        d0 = f64x2.sub(x, mv);
        d1 = f64x2.sub(y, mv);
        if (!all) {
          d0 = v128.and(d0, finite<T>(x));
          d1 = v128.and(d1, finite<T>(y));
        }
      } else {
        d0 = f64x2.sub(lo2(x), mv);
        d1 = f64x2.sub(hi2(x), mv);
        d2 = f64x2.sub(lo2(y), mv);
        d3 = f64x2.sub(hi2(y), mv);
        if (!all) {
          const fx = finite<T>(x), fy = finite<T>(y);
          d0 = v128.and(d0, i64x2.extend_low_i32x4_s(fx));
          d1 = v128.and(d1, i64x2.extend_high_i32x4_s(fx));
          d2 = v128.and(d2, i64x2.extend_low_i32x4_s(fy));
          d3 = v128.and(d3, i64x2.extend_high_i32x4_s(fy));
        }
      }
      q0 = f64x2.add(q0, f64x2.mul(d0, d0)); e0 = f64x2.add(e0, d0);
      q1 = f64x2.add(q1, f64x2.mul(d1, d1)); e1 = f64x2.add(e1, d1);
      if (sizeof<T>() != 8) {
        q2 = f64x2.add(q2, f64x2.mul(d2, d2)); e2 = f64x2.add(e2, d2);
        q3 = f64x2.add(q3, f64x2.mul(d3, d3)); e3 = f64x2.add(e3, d3);
      }
    }
    Q = f64x2.add(Q, f64x2.add(f64x2.add(q0, q1), f64x2.add(q2, q3)));
    E = f64x2.add(E, f64x2.add(f64x2.add(e0, e1), f64x2.add(e2, e3)));
  }
  store<f64>(out, hsum(Q));
  store<f64>(out, hsum(E), 8);
}

/**
 * The first pass over the vector part [0, nv) of a block: Σx, the least and greatest values and
 * which zeros the lanes' extremes are (zeroSigns) into out[0], [4], [5], [2], [3]; returns the
 * count of finite values. Unmasked, it assumes all are finite, and returns −1 (what it stored
 * then means nothing) when one is not: the masked pass takes the block.
 */
@inline function firstPass<T>(p: usize, nv: i32, masked: bool, out: usize): i32 {
  const L = lanesOf<T>();
  const inf = splatv<T>(Infinity), ninf = splatv<T>(-Infinity);
  let cnt = i64x2.splat(0), chk = splatv<T>(0);
  let mn0 = inf, mn1 = inf, mx0 = ninf, mx1 = ninf;
  let s0 = f64x2.splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (let i = 0; i < nv; i += 2 * L) {
    let x = loadv<T>(p, i), y = loadv<T>(p, i + L);
    let xl = x, yl = y, xh = x, yh = y;
    if (masked) {
      const fx = finite<T>(x), fy = finite<T>(y);
      cnt = tally<T>(tally<T>(cnt, fx), fy);
      xl = v128.bitselect(x, inf, fx);
      yl = v128.bitselect(y, inf, fy);
      xh = v128.bitselect(x, ninf, fx);
      yh = v128.bitselect(y, ninf, fy);
      x = v128.and(x, fx);
      y = v128.and(y, fy);
    } else {
      // x − x is 0 for a finite x, NaN for any other: one NaN lane sends the block to the masked pass
      chk = sizeof<T>() == 8 ? f64x2.add(chk, f64x2.add(f64x2.sub(x, x), f64x2.sub(y, y))) : f32x4.add(chk, f32x4.add(f32x4.sub(x, x), f32x4.sub(y, y)));
    }
    mn0 = pminv<T>(mn0, xl);
    mn1 = pminv<T>(mn1, yl);
    mx0 = pmaxv<T>(mx0, xh);
    mx1 = pmaxv<T>(mx1, yh);
    if (sizeof<T>() == 8) {
      s0 = f64x2.add(s0, x);
      s1 = f64x2.add(s1, y);
    } else {
      s0 = f64x2.add(s0, lo2(x));
      s1 = f64x2.add(s1, hi2(x));
      s2 = f64x2.add(s2, lo2(y));
      s3 = f64x2.add(s3, hi2(y));
    }
  }
  if (!masked && !v128.all_true<i32>(sizeof<T>() == 8 ? f64x2.eq(chk, chk) : f32x4.eq(chk, chk))) return -1;
  store<f64>(out, hsum(f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3))));
  store<f64>(out, <f64>zeroSigns<T>(mn0, mn1), 16);
  store<f64>(out, <f64>zeroSigns<T>(mx0, mx1), 24);
  store<f64>(out, extreme<T>(pminv<T>(mn0, mn1), Infinity, false), 32);
  store<f64>(out, extreme<T>(pmaxv<T>(mx0, mx1), -Infinity, true), 40);
  return masked ? htally<T>(cnt) : nv;
}

/** A zero extreme m of the block takes the sign of the first zero extreme in order (z: zeroSigns of the lanes). */
@inline function signed<T>(m: f64, z: i32, p: usize, n: i32, max: bool): f64 {
  if (m != 0) return m;
  return z == 3 ? inOrder<T>(p, n, max) : z == 2 ? -0.0 : 0.0;
}

/** Which zero t is: 1 for +0, 2 for −0, else 0 (as zeroSigns). */
@inline function zeroSign(t: f64): i32 {
  return t == 0 ? (reinterpret<u64>(t) >> 63 ? 2 : 1) : 0;
}

/**
 * The record of the n values of T at p into out. A function of its own per element type (not
 * inlined into scan_blocks): V8 compiles each on its first call and tiers it up to optimised code
 * after a few blocks, where one function scanning a whole slice would run its first slices in the
 * baseline code (measured: the first 8 MiB slice 18 ms against 43–67 ms, the scan of 128 MiB
 * float32 about 80 against 170 ms, 1.8 against 2.4 ms per warm slice).
 */
function scanBlock<T>(p: usize, n: i32, out: usize): void {
  const L = lanesOf<T>();
  const nv = n - n % (2 * L);
  let vc = firstPass<T>(p, nv, false, out);
  if (vc < 0) vc = firstPass<T>(p, nv, true, out);
  // the tail, in order: one more lane
  let tc = 0, tmin = Infinity, tmax = -Infinity, ts: f64 = 0;
  for (let i = nv; i < n; i++) {
    const v = loads<T>(p, i);
    if (v - v != 0) continue;
    tc++;
    if (v < tmin) tmin = v;
    if (v > tmax) tmax = v;
    ts += v;
  }
  const count = vc + tc;
  let nan = 0, pinf = 0, ninfs = 0;
  if (count < n) {
    for (let i = 0; i < n; i++) {
      const v = loads<T>(p, i);
      if (v != v) nan++;
      else if (v == Infinity) pinf++;
      else if (v == -Infinity) ninfs++;
    }
  }
  const sum = load<f64>(out) + ts;
  const min = Math.min(load<f64>(out, 32), tmin), max = Math.max(load<f64>(out, 40), tmax);
  const zmin = <i32>load<f64>(out, 16) | zeroSign(tmin), zmax = <i32>load<f64>(out, 24) | zeroSign(tmax);
  store<f64>(out, <f64>nan, 8);
  store<f64>(out, <f64>pinf, 16);
  store<f64>(out, <f64>ninfs, 24);
  store<f64>(out, signed<T>(min, zmin, p, n, false), 32);
  store<f64>(out, signed<T>(max, zmax, p, n, true), 40);
  if (count == 0) {
    store<f64>(out, 0);
    store<f64>(out, 0, 48);
    store<f64>(out, 0, 56);
    return;
  }
  const c = <f64>count;
  const m = sum / c;
  // second pass, from cache: the sums go through the record's mean and M2 slots
  if (vc == nv) spread<T>(p, nv, m, true, out + 48);
  else spread<T>(p, nv, m, false, out + 48);
  let q = load<f64>(out, 48), e = load<f64>(out, 56);
  for (let i = nv; i < n; i++) {
    const v = loads<T>(p, i);
    if (v - v != 0) continue;
    const d = v - m;
    q += d * d;
    e += d;
  }
  store<f64>(out, m);
  store<f64>(out, e / c, 48);
  store<f64>(out, Math.max(0, q - (e * e) / c), 56);
}

@inline function scanBlocks<T>(p: usize, n: i32, block: i32, out: usize): void {
  for (let k = 0, i = 0; i < n; k++, i += block) {
    scanBlock<T>(p + (<usize>i * sizeof<T>()), min(block, n - i), out + <usize>k * REC);
  }
}

/**
 * Records of the n values at p (element code `dtype`), one per `block` values (a multiple of 8;
 * the last block may be shorter), at out, REC bytes apart.
 */
export function scan_blocks(p: usize, n: i32, dtype: i32, block: i32, out: usize): void {
  if (dtype == F32) scanBlocks<f32>(p, n, block, out);
  else if (dtype == F64) scanBlocks<f64>(p, n, block, out);
  else if (dtype == F16) scanBlocks<u16>(p, n, block, out);
  else scanBlocks<i16>(p, n, block, out);
}
