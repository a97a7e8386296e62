// compare: NumPy's isclose, |a − b| ≤ atol + rtol·|b| in float64, with b the reference; one record
// of partials per block of values (src/kernels/scan.ts shares the blocks among the threads,
// analysis/compare.ts merges the records in block order). Each side is in its file's own element
// type; float16 and bfloat16 blocks are first converted to float32 in the thread's scratch.
//
// A block's record, CMP_RECORD float64 values:
//   [0] mismatches   [1] max |a − b|   [2] max |a − b|/|b|
//   [3] the worst entry's index in the block (−1: none)   [4] its excess |a − b| − (atol + rtol·|b|)
//   [5] 1 when that excess is NaN (then it is the last such entry; else the first of the largest)
//   [6] its a   [7] its b
// These are exactly what a scalar loop in order computes (analysis/compare.ts's rules): blocks of
// finite values whose differences are finite take the vector loop, any other block the scalar one.

import { f16x4, lanesOf, loads, loadv } from "./common";
import { BF16, F16, F32 } from "./scan";

const REC: usize = 64;

/** float64x2 of values i, i + 1 of T (f32 or f64) at p. */
@inline function load2<T>(p: usize, i: i32): v128 {
  if (sizeof<T>() == 8) return v128.load(p + (<usize>i << 3));
  return f64x2.promote_low_f32x4(v128.load64_zero(p + (<usize>i << 2)));
}

/** n float16 (f16 = 1) or bfloat16 values at p as float32 at to. */
function widen(p: usize, n: i32, f16: i32, to: usize): void {
  const L = lanesOf<u16>();
  let i = 0;
  for (; i + L <= n; i += L) v128.store(to + (<usize>i << 2), f16 ? loadv<u16>(p, i) : loadv<i16>(p, i));
  for (; i < n; i++) store<f32>(to + (<usize>i << 2), <f32>(f16 ? loads<u16>(p, i) : loads<i16>(p, i)));
}

/** The record of values [0, n) of a (A) against b (B), in order, one entry at a time. */
@inline function exact<A, B>(pa: usize, pb: usize, n: i32, atol: f64, rtol: f64, out: usize): void {
  let mism = 0, maxAbs: f64 = 0, maxRel: f64 = 0, worst = -1, best = -Infinity, nan = false;
  for (let i = 0; i < n; i++) {
    const a = loads<A>(pa, i), b = loads<B>(pb, i);
    const an = a != a, bn = b != b;
    const tol = atol + rtol * Math.abs(b);
    const close = an || bn ? an && bn : a - a != 0 || b - b != 0 ? a == b : Math.abs(a - b) <= tol;
    let abs = Math.abs(a - b);
    if (abs != abs) abs = close ? 0 : Infinity;
    if (a - a != 0 && a == b) abs = 0;
    if (abs > maxAbs) maxAbs = abs;
    const rel = abs == 0 ? 0 : abs / Math.abs(b);
    if (rel > maxRel) maxRel = rel;
    if (close) continue;
    mism++;
    const excess = abs - tol;
    if (excess != excess) {
      nan = true;
      best = Infinity;
      worst = i;
    } else if (excess > best) {
      best = excess;
      worst = i;
    }
  }
  record<A, B>(pa, pb, mism, maxAbs, maxRel, worst, best, nan, out);
}

@inline function record<A, B>(pa: usize, pb: usize, mism: i32, maxAbs: f64, maxRel: f64, worst: i32, best: f64, nan: bool, out: usize): void {
  store<f64>(out, <f64>mism);
  store<f64>(out, maxAbs, 8);
  store<f64>(out, maxRel, 16);
  store<f64>(out, <f64>worst, 24);
  store<f64>(out, best, 32);
  store<f64>(out, nan ? 1 : 0, 40);
  store<f64>(out, worst < 0 ? 0 : loads<A>(pa, worst), 48);
  store<f64>(out, worst < 0 ? 0 : loads<B>(pb, worst), 56);
}

@inline function lane(v: v128, k: i32): f64 {
  return k == 0 ? f64x2.extract_lane(v, 0) : f64x2.extract_lane(v, 1);
}

/**
 * The vector loop over n values (a multiple of 4): false, writing nothing, when some a − b is not
 * finite (the scalar loop takes the block).
 */
@inline function fast<A, B>(pa: usize, pb: usize, n: i32, atol: f64, rtol: f64, out: usize): bool {
  const at = f64x2.splat(atol), rt = f64x2.splat(rtol);
  let closes = i64x2.splat(0), mxa = f64x2.splat(0), mxr = mxa, chk = mxa;
  for (let i = 0; i < n; i += 4) {
    const a0 = load2<A>(pa, i), b0 = load2<B>(pb, i), a1 = load2<A>(pa, i + 2), b1 = load2<B>(pb, i + 2);
    const d0 = f64x2.sub(a0, b0), d1 = f64x2.sub(a1, b1);
    const e0 = f64x2.abs(d0), e1 = f64x2.abs(d1), g0 = f64x2.abs(b0), g1 = f64x2.abs(b1);
    const c0 = f64x2.le(e0, f64x2.add(at, f64x2.mul(rt, g0))), c1 = f64x2.le(e1, f64x2.add(at, f64x2.mul(rt, g1)));
    closes = i64x2.add(closes, i64x2.add(c0, c1));
    mxa = f64x2.pmax(f64x2.pmax(mxa, e0), e1);
    // 0/0 is NaN, which pmax passes over: the scalar rule's rel = 0 when |a − b| = 0
    mxr = f64x2.pmax(f64x2.pmax(mxr, f64x2.div(e0, g0)), f64x2.div(e1, g1));
    chk = f64x2.add(chk, f64x2.add(f64x2.sub(d0, d0), f64x2.sub(d1, d1)));
  }
  if (lane(chk, 0) != 0 || lane(chk, 1) != 0) return false;
  const mism = n + <i32>(i64x2.extract_lane(closes, 0) + i64x2.extract_lane(closes, 1));
  const maxAbs = Math.max(lane(mxa, 0), lane(mxa, 1)), maxRel = Math.max(lane(mxr, 0), lane(mxr, 1));
  if (mism == 0) {
    record<A, B>(pa, pb, 0, maxAbs, maxRel, -1, -Infinity, false, out);
    return true;
  }
  // the worst mismatch: each lane keeps its first largest excess, then the lanes' first largest
  const step = f64x2.splat(4);
  let be0 = f64x2.splat(-Infinity), be1 = be0, bi0 = f64x2.splat(-1), bi1 = bi0;
  let i0 = f64x2.replace_lane(f64x2.splat(0), 1, 1), i1 = f64x2.add(i0, f64x2.splat(2));
  for (let i = 0; i < n; i += 4) {
    const a0 = load2<A>(pa, i), b0 = load2<B>(pb, i), a1 = load2<A>(pa, i + 2), b1 = load2<B>(pb, i + 2);
    const e0 = f64x2.abs(f64x2.sub(a0, b0)), e1 = f64x2.abs(f64x2.sub(a1, b1));
    const t0 = f64x2.add(at, f64x2.mul(rt, f64x2.abs(b0))), t1 = f64x2.add(at, f64x2.mul(rt, f64x2.abs(b1)));
    const x0 = f64x2.sub(e0, t0), x1 = f64x2.sub(e1, t1);
    const m0 = v128.andnot(f64x2.gt(x0, be0), f64x2.le(e0, t0)), m1 = v128.andnot(f64x2.gt(x1, be1), f64x2.le(e1, t1));
    be0 = v128.bitselect(x0, be0, m0);
    bi0 = v128.bitselect(i0, bi0, m0);
    be1 = v128.bitselect(x1, be1, m1);
    bi1 = v128.bitselect(i1, bi1, m1);
    i0 = f64x2.add(i0, step);
    i1 = f64x2.add(i1, step);
  }
  let best = -Infinity, worst: f64 = -1;
  for (let k = 0; k < 4; k++) {
    const x = lane(k < 2 ? be0 : be1, k & 1), w = lane(k < 2 ? bi0 : bi1, k & 1);
    if (w >= 0 && (x > best || (x == best && w < worst))) {
      best = x;
      worst = w;
    }
  }
  record<A, B>(pa, pb, mism, maxAbs, maxRel, <i32>worst, best, false, out);
  return true;
}

/** One block: a function of its own per pair of element types, for the reason scan.ts's scanBlock is. */
function compareBlock<A, B>(pa: usize, pb: usize, n: i32, atol: f64, rtol: f64, out: usize): void {
  if (n % 4 != 0 || !fast<A, B>(pa, pb, n, atol, rtol, out)) exact<A, B>(pa, pb, n, atol, rtol, out);
}

/**
 * Records of a (element code da) against b (db) over n values, one per `block` values (the last
 * block may be shorter), at out, REC bytes apart. `scratch`: 8·block bytes of this thread's own,
 * for the float32 copies of float16 and bfloat16 blocks.
 */
export function compare_blocks(a: usize, da: i32, b: usize, db: i32, n: i32, block: i32, atol: f64, rtol: f64, scratch: usize, out: usize): void {
  const sa = da == F32 ? 4 : da == F16 || da == BF16 ? 2 : 8, sb = db == F32 ? 4 : db == F16 || db == BF16 ? 2 : 8;
  for (let k = 0, i = 0; i < n; k++, i += block) {
    const len = min(block, n - i);
    let pa = a + <usize>i * sa, pb = b + <usize>i * sb, ta = da, tb = db;
    if (sa == 2) {
      widen(pa, len, da == F16 ? 1 : 0, scratch);
      pa = scratch;
      ta = F32;
    }
    if (sb == 2) {
      widen(pb, len, db == F16 ? 1 : 0, scratch + (<usize>block << 2));
      pb = scratch + (<usize>block << 2);
      tb = F32;
    }
    const rec = out + <usize>k * REC;
    if (ta == F32 && tb == F32) compareBlock<f32, f32>(pa, pb, len, atol, rtol, rec);
    else if (ta == F32) compareBlock<f32, f64>(pa, pb, len, atol, rtol, rec);
    else if (tb == F32) compareBlock<f64, f32>(pa, pb, len, atol, rtol, rec);
    else compareBlock<f64, f64>(pa, pb, len, atol, rtol, rec);
  }
}
