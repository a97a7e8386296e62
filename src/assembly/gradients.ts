// Internal gradients: ds = Σ dy·(x − mean), db = Σ dy of NCHW runs and NHWC rows, in float64
// (*_f64, *_f32_wide) or in float32 blocks merged into float64 (the float32 fast paths). Through an
// activation, Y = act(GroupNorm(X)), the *_act kernels (at the end) sum dy·act'(pre) instead.

import { Gelu, GeluTanh, isAct, NoAct, Silu, ToDy } from "./activation";
import { hi2, lo2, hsum, hsum32, zero, STRIP } from "./common";
import { normRows, normRun } from "./normalisation";

// ---------------------------------------------------------------- NCHW backward

/**
 * out[0] = Σ dy·(x − mean), out[1] = Σ dy over n values of T, every term in float64 (T = f32:
 * promoted with lo2/hi2), four values per step over two f64x2 accumulators per sum.
 */
@inline function gradRun<T, A>(dy: usize, x: usize, n: i32, mean: f64, out: usize, am: T, aa: T, ab: T): void {
  const sh = alignof<T>();
  const m = f64x2.splat(mean);
  let a1 = f64x2.splat(0), b1 = f64x2.splat(0), a2 = f64x2.splat(0), b2 = f64x2.splat(0);
  let i = 0;
  // through an activation, each chunk of dy is replaced by dy·act'(pre) just before it is summed
  const chunk = isAct<A>() ? ACT_CHUNK : n;
  for (let c = 0; c < n; c += chunk) {
    const end = n - c < chunk ? n : c + chunk;
    if (isAct<A>()) dpreRun<T, A>(dy + (<usize>c << sh), x + (<usize>c << sh), end - c, am, aa, ab);
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << sh;
      let gl: v128, gh: v128, vl: v128, vh: v128;
      if (sizeof<T>() == 4) {
        const g = v128.load(dy + o);
        const v = v128.load(x + o);
        gl = lo2(g); gh = hi2(g);
        vl = lo2(v); vh = hi2(v);
      } else {
        gl = v128.load(dy + o); gh = v128.load(dy + o, 16);
        vl = v128.load(x + o); vh = v128.load(x + o, 16);
      }
      a1 = f64x2.add(a1, f64x2.mul(gl, f64x2.sub(vl, m)));
      b1 = f64x2.add(b1, f64x2.mul(gh, f64x2.sub(vh, m)));
      a2 = f64x2.add(a2, gl);
      b2 = f64x2.add(b2, gh);
    }
  }
  let ds = hsum(f64x2.add(a1, b1));
  let db = hsum(f64x2.add(a2, b2));
  for (; i < n; i++) {
    const o = <usize>i << sh;
    const g = <f64>load<T>(dy + o);
    ds += g * (<f64>load<T>(x + o) - mean);
    db += g;
  }
  store<f64>(out, ds);
  store<f64>(out, db, 8);
}

/** gradRun over n float32 values. */
export function grad_run_f32_wide(dy: usize, x: usize, n: i32, mean: f64, out: usize): void {
  gradRun<f32, NoAct>(dy, x, n, mean, out, 0, 0, 0);
}

/** gradRun over n float64 values. */
export function grad_run_f64(dy: usize, x: usize, n: i32, mean: f64, out: usize): void {
  gradRun<f64, NoAct>(dy, x, n, mean, out, 0, 0, 0);
}

// ---------------------------------------------------------------- NHWC backward
//
// acc: ds per channel at acc, db per channel at acc + 8·C; meanc: float64 mean of each channel's group.

export function grad_rows_f32_wide(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize): void {
  const rowBytes = <usize>C << 2;
  const db = acc + (<usize>C << 3);
  const C4 = C & ~3;
  let r = 0;
  for (; r + 2 <= rows; r += 2) {
    const xb = x + <usize>r * rowBytes, gb = dy + <usize>r * rowBytes;
    for (let c = 0; c < C4; c += 4) {
      const co = <usize>c << 2, ao = <usize>c << 3;
      const ml = v128.load(meanc + ao), mh = v128.load(meanc + ao, 16);
      let sl = v128.load(acc + ao), sh = v128.load(acc + ao, 16);
      let bl = v128.load(db + ao), bh = v128.load(db + ao, 16);
      let g = v128.load(gb + co), v = v128.load(xb + co);
      let gl = lo2(g), gh = hi2(g);
      sl = f64x2.add(sl, f64x2.mul(gl, f64x2.sub(lo2(v), ml)));
      sh = f64x2.add(sh, f64x2.mul(gh, f64x2.sub(hi2(v), mh)));
      bl = f64x2.add(bl, gl); bh = f64x2.add(bh, gh);
      g = v128.load(gb + rowBytes + co); v = v128.load(xb + rowBytes + co);
      gl = lo2(g); gh = hi2(g);
      sl = f64x2.add(sl, f64x2.mul(gl, f64x2.sub(lo2(v), ml)));
      sh = f64x2.add(sh, f64x2.mul(gh, f64x2.sub(hi2(v), mh)));
      bl = f64x2.add(bl, gl); bh = f64x2.add(bh, gh);
      v128.store(acc + ao, sl); v128.store(acc + ao, sh, 16);
      v128.store(db + ao, bl); v128.store(db + ao, bh, 16);
    }
    for (let c = C4; c < C; c++) {
      const ao = <usize>c << 3, co = <usize>c << 2;
      const m = load<f64>(meanc + ao);
      let s = load<f64>(acc + ao), b = load<f64>(db + ao);
      for (let j = 0; j < 2; j++) {
        const g = <f64>load<f32>(gb + <usize>j * rowBytes + co);
        s += g * (<f64>load<f32>(xb + <usize>j * rowBytes + co) - m);
        b += g;
      }
      store<f64>(acc + ao, s); store<f64>(db + ao, b);
    }
  }
  for (; r < rows; r++) {
    const xb = x + <usize>r * rowBytes, gb = dy + <usize>r * rowBytes;
    for (let c = 0; c < C; c++) {
      const ao = <usize>c << 3, co = <usize>c << 2;
      const g = <f64>load<f32>(gb + co);
      store<f64>(acc + ao, load<f64>(acc + ao) + g * (<f64>load<f32>(xb + co) - load<f64>(meanc + ao)));
      store<f64>(db + ao, load<f64>(db + ao) + g);
    }
  }
}

/**
 * One NHWC row into per-channel accumulators of T (float32 strips or float64 sums): t[c] += dy·(x − m[c]),
 * b[c] += dy, for the bytes below v1 (whole vectors; v4: four vectors at a time by constant offsets).
 * Returns v1, where the caller's single-value tail starts.
 */
@inline function gradRow<T>(g: usize, v: usize, m: usize, t: usize, b: usize, v4: usize, v1: usize): usize {
  let o: usize = 0;
  for (; o < v4; o += 64) {
    const pg = g + o, pv = v + o, pm = m + o, pt = t + o, pb = b + o;
    const g0 = v128.load(pg), g1 = v128.load(pg, 16), g2 = v128.load(pg, 32), g3 = v128.load(pg, 48);
    v128.store(pt, v128.add<T>(v128.load(pt), v128.mul<T>(g0, v128.sub<T>(v128.load(pv), v128.load(pm)))));
    v128.store(pt, v128.add<T>(v128.load(pt, 16), v128.mul<T>(g1, v128.sub<T>(v128.load(pv, 16), v128.load(pm, 16)))), 16);
    v128.store(pt, v128.add<T>(v128.load(pt, 32), v128.mul<T>(g2, v128.sub<T>(v128.load(pv, 32), v128.load(pm, 32)))), 32);
    v128.store(pt, v128.add<T>(v128.load(pt, 48), v128.mul<T>(g3, v128.sub<T>(v128.load(pv, 48), v128.load(pm, 48)))), 48);
    v128.store(pb, v128.add<T>(v128.load(pb), g0)); v128.store(pb, v128.add<T>(v128.load(pb, 16), g1), 16);
    v128.store(pb, v128.add<T>(v128.load(pb, 32), g2), 32); v128.store(pb, v128.add<T>(v128.load(pb, 48), g3), 48);
  }
  for (; o < v1; o += 16) {
    const g0 = v128.load(g + o);
    v128.store(t + o, v128.add<T>(v128.load(t + o), v128.mul<T>(g0, v128.sub<T>(v128.load(v + o), v128.load(m + o)))));
    v128.store(b + o, v128.add<T>(v128.load(b + o), g0));
  }
  return v1;
}

@inline function gradRowsF64<A>(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize, coef: usize): void {
  // one row at a time, in memory order (see stats_rows_f64 in statistics.ts)
  const rowBytes = <usize>C << 3;
  const db = acc + (<usize>C << 3);
  const v4 = <usize>(C & ~7) << 3, v1 = <usize>(C & ~1) << 3;
  let pg = dy, pv = x;
  for (let r = 0; r < rows; r++) {
    if (isAct<A>()) dpreRows<f64, A>(pg, pv, 1, C, coef);
    let o = gradRow<f64>(pg, pv, meanc, acc, db, v4, v1);
    for (; o < rowBytes; o += 8) {
      const g = load<f64>(pg + o);
      store<f64>(acc + o, load<f64>(acc + o) + g * (load<f64>(pv + o) - load<f64>(meanc + o)));
      store<f64>(db + o, load<f64>(db + o) + g);
    }
    pg += rowBytes; pv += rowBytes;
  }
}

export function grad_rows_f64(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize): void {
  gradRowsF64<NoAct>(dy, x, rows, C, meanc, acc, 0);
}

// ---------------------------------------------------------------- float32 fast paths
//
// The float32 internal gradients accumulate in float32 only inside short blocks (at most 32 terms
// per accumulator lane: 256 values of a run over two accumulators, or STRIP = 32 rows of a channel)
// and merge every block into float64. Gradient blocks are centred on the float32 high part of the
// group mean (x − mhi is exact near the mean); the low part is applied once at the end by the
// caller: ds = T − mlo·db.
// A float32 overflow (|x| > ~1.8e19) shows as a non-finite sum; the caller then reruns the group
// with the *_wide kernels above, which accumulate every term in float64.

// Running float64 internal-gradient sums (per instance, so per thread).
let GT: f64 = 0, GB: f64 = 0;

/**
 * One float32 block of L values (a multiple of 16) of dy at gq and x at xq: T = Σ dy·(x − m) and
 * Σ dy, merged into GT/GB. Two accumulators per sum: nothing spills (x64 has 16 vector registers).
 */
@inline function gradBlock(gq: usize, xq: usize, L: i32, m: v128): void {
  let a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let a2 = f32x4.splat(0), b2 = f32x4.splat(0);
  for (let j = 0; j < L; j += 16) {
    const jo = <usize>j << 2;
    const xo = xq + jo, go = gq + jo;
    const g0 = v128.load(go), g1 = v128.load(go, 16), g2 = v128.load(go, 32), g3 = v128.load(go, 48);
    a1 = f32x4.add(a1, f32x4.mul(g0, f32x4.sub(v128.load(xo), m)));
    b1 = f32x4.add(b1, f32x4.mul(g1, f32x4.sub(v128.load(xo, 16), m)));
    a2 = f32x4.add(a2, g0); b2 = f32x4.add(b2, g1);
    a1 = f32x4.add(a1, f32x4.mul(g2, f32x4.sub(v128.load(xo, 32), m)));
    b1 = f32x4.add(b1, f32x4.mul(g3, f32x4.sub(v128.load(xo, 48), m)));
    a2 = f32x4.add(a2, g2); b2 = f32x4.add(b2, g3);
  }
  GT += hsum32(f32x4.add(a1, b1));
  GB += hsum32(f32x4.add(a2, b2));
}

/** out[0] = T = Σ dy·(x − mhi), out[1] = Σ dy over n float32 values (blocks of 256). */
@inline function gradRunF32<A>(dy: usize, x: usize, n: i32, mhi: f32, out: usize, am: f32, aa: f32, ab: f32): void {
  const m = f32x4.splat(mhi);
  GT = 0; GB = 0;
  let i = 0;
  for (let L = n >= 256 ? 256 : n & ~15; L > 0; L = n - i >= 256 ? 256 : (n - i) & ~15) {
    const o = <usize>i << 2;
    if (isAct<A>()) dpreRun<f32, A>(dy + o, x + o, L, am, aa, ab);
    gradBlock(dy + o, x + o, L, m);
    i += L;
  }
  if (isAct<A>()) dpreRun<f32, A>(dy + (<usize>i << 2), x + (<usize>i << 2), n - i, am, aa, ab);
  const mh = <f64>mhi;
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = <f64>load<f32>(dy + o);
    GT += g * (<f64>load<f32>(x + o) - mh);
    GB += g;
  }
  store<f64>(out, GT);
  store<f64>(out, GB, 8);
}

export function grad_run_f32(dy: usize, x: usize, n: i32, mhi: f32, out: usize): void {
  gradRunF32<NoAct>(dy, x, n, mhi, out, 0, 0, 0);
}

@inline function mergeGrad4(t: v128, b: v128, a: usize, q: usize): void {
  v128.store(a, f64x2.add(v128.load(a), lo2(t)));
  v128.store(a, f64x2.add(v128.load(a, 16), hi2(t)), 16);
  v128.store(q, f64x2.add(v128.load(q), lo2(b)));
  v128.store(q, f64x2.add(v128.load(q, 16), hi2(b)), 16);
}

/**
 * NHWC internal gradients, float32 fast path: acc T[C] = Σ dy·(x − mhi_c) at acc, db[C] at
 * acc + 8·C (float64, accumulated into); mh: float32 per-channel high part of the group mean;
 * tmp: 2·C float32 of the calling thread's scratch. Rows in order, one at a time, strips of STRIP.
 */
@inline function gradRowsF32<A>(dy: usize, x: usize, rows: i32, C: i32, mh: usize, acc: usize, tmp: usize, coef: usize): void {
  const rowBytes = <usize>C << 2;
  const dbp = acc + (<usize>C << 3);
  const t2 = tmp + rowBytes;
  const end16 = <usize>(C & ~15) << 2, end4 = <usize>(C & ~3) << 2;
  const C4 = C & ~3;
  for (let r0 = 0; r0 < rows; r0 += STRIP) {
    const L = rows - r0 < STRIP ? rows - r0 : STRIP;
    const off = <usize>r0 * rowBytes;
    zero(tmp, rowBytes << 1);
    // one row at a time, in memory order: a single sequential stream per input
    for (let r = 0; r < L; r++) {
      const ro = off + <usize>r * rowBytes;
      if (isAct<A>()) dpreRows<f32, A>(dy + ro, x + ro, 1, C, coef);
      gradRow<f32>(dy + ro, x + ro, mh, tmp, t2, end16, end4);
    }
    for (let c = 0; c < C4; c += 4) {
      const co = <usize>c << 2, ao = <usize>c << 3;
      mergeGrad4(v128.load(tmp + co), v128.load(t2 + co), acc + ao, dbp + ao);
    }
    for (let c = C4; c < C; c++) {
      const ao = <usize>c << 3, co = <usize>c << 2;
      const m = <f64>load<f32>(mh + co);
      let t = load<f64>(acc + ao), b = load<f64>(dbp + ao);
      for (let j = 0; j < L; j++) {
        const o = off + <usize>j * rowBytes + co;
        const gg = <f64>load<f32>(dy + o);
        t += gg * (<f64>load<f32>(x + o) - m);
        b += gg;
      }
      store<f64>(acc + ao, t); store<f64>(dbp + ao, b);
    }
  }
}

export function grad_rows_f32(dy: usize, x: usize, rows: i32, C: i32, mh: usize, acc: usize, tmp: usize): void {
  gradRowsF32<NoAct>(dy, x, rows, C, mh, acc, tmp, 0);
}

// ---------------------------------------------------------------- NCHW multi-channel units
// A unit of nch consecutive channel runs of len values each (len = HxW), or one block of one
// channel (nch = 1). coef holds per-channel arrays `stride` entries apart, index 0 = first channel.

/** Per channel k: out[2k] = Σ dy·(x − m), out[2k+1] = Σ dy (m the float32 high part of the mean). */
export function grad_chan_f32(dy: usize, x: usize, len: i32, nch: i32, m: f32, out: usize): void {
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 2;
    grad_run_f32(dy + o, x + o, len, m, out + (<usize>k << 4));
  }
}

export function grad_chan_f32_wide(dy: usize, x: usize, len: i32, nch: i32, m: f64, out: usize): void {
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 2;
    grad_run_f32_wide(dy + o, x + o, len, m, out + (<usize>k << 4));
  }
}

export function grad_chan_f64(dy: usize, x: usize, len: i32, nch: i32, m: f64, out: usize): void {
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 3;
    grad_run_f64(dy + o, x + o, len, m, out + (<usize>k << 4));
  }
}

// ---------------------------------------------------------------- NCHW, item = sample (interleaved groups)
// As grad_chan_*, with each run's own group mean: mc holds one per run (float32 high parts for
// grad_chans_f32, float64 for the others).

export function grad_chans_f32(dy: usize, x: usize, len: i32, nch: i32, mc: usize, out: usize): void {
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 2;
    grad_run_f32(dy + o, x + o, len, load<f32>(mc + (<usize>k << 2)), out + (<usize>k << 4));
  }
}

export function grad_chans_f32_wide(dy: usize, x: usize, len: i32, nch: i32, mc: usize, out: usize): void {
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 2;
    grad_run_f32_wide(dy + o, x + o, len, load<f64>(mc + (<usize>k << 3)), out + (<usize>k << 4));
  }
}

export function grad_chans_f64(dy: usize, x: usize, len: i32, nch: i32, mc: usize, out: usize): void {
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 3;
    grad_run_f64(dy + o, x + o, len, load<f64>(mc + (<usize>k << 3)), out + (<usize>k << 4));
  }
}

// ---------------------------------------------------------------- through an activation
// The *_act kernels sum dy·act'(pre) instead of dy: each block of dy is replaced by it (the
// normalisation loops with the ToDy sink, normalisation.ts) just before the block is summed, so dy
// and x make one trip through memory. The forward's per-channel coefficients m, a, b (prep_norm_*)
// are at coef, laid out as for norm_*. The values are those of dpre_* followed by the plain kernel.

/** Values of an NCHW float64 run transformed ahead of its sums (gradRun): a few KiB, in L1. */
const ACT_CHUNK = 1024;

/** dy ← dy·act'((x − m)·a + b) over n values. */
@inline function dpreRun<T, A>(dy: usize, x: usize, n: i32, m: T, a: T, b: T): void {
  normRun<T, A, ToDy>(x, dy, n, m, a, b);
}

/** dy ← dy·act'(pre) over NHWC rows, coef the forward's m[C], a[C], b[C]. */
@inline function dpreRows<T, A>(dy: usize, x: usize, rows: i32, C: i32, coef: usize): void {
  normRows<T, A, ToDy>(x, dy, rows, C, coef);
}

/** grad_chan_f32 on dy·act'(pre): coef holds the forward's float32 m[], a[], b[] `stride` apart. */
@inline function gradChanF32Act<A>(dy: usize, x: usize, len: i32, nch: i32, m: f32, out: usize, coef: usize, stride: i32): void {
  const sb = <usize>stride << 2;
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 2, co = <usize>k << 2;
    gradRunF32<A>(dy + o, x + o, len, m, out + (<usize>k << 4), load<f32>(coef + co), load<f32>(coef + sb + co), load<f32>(coef + 2 * sb + co));
  }
}

/** grad_chan_f64 on dy·act'(pre): coef holds the forward's float64 m[], a[], b[] `stride` apart. */
@inline function gradChanF64Act<A>(dy: usize, x: usize, len: i32, nch: i32, m: f64, out: usize, coef: usize, stride: i32): void {
  const sb = <usize>stride << 3;
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << 3, co = <usize>k << 3;
    gradRun<f64, A>(dy + o, x + o, len, m, out + (<usize>k << 4), load<f64>(coef + co), load<f64>(coef + sb + co), load<f64>(coef + 2 * sb + co));
  }
}

export function grad_chan_f32_act(dy: usize, x: usize, len: i32, nch: i32, m: f32, out: usize, coef: usize, stride: i32, act: i32): void {
  if (act == 1) gradChanF32Act<Silu>(dy, x, len, nch, m, out, coef, stride);
  else if (act == 2) gradChanF32Act<Gelu>(dy, x, len, nch, m, out, coef, stride);
  else gradChanF32Act<GeluTanh>(dy, x, len, nch, m, out, coef, stride);
}
export function grad_chan_f64_act(dy: usize, x: usize, len: i32, nch: i32, m: f64, out: usize, coef: usize, stride: i32, act: i32): void {
  if (act == 1) gradChanF64Act<Silu>(dy, x, len, nch, m, out, coef, stride);
  else if (act == 2) gradChanF64Act<Gelu>(dy, x, len, nch, m, out, coef, stride);
  else gradChanF64Act<GeluTanh>(dy, x, len, nch, m, out, coef, stride);
}
/** grad_rows_f32 on dy·act'(pre), each row transformed just before it is summed; coef: m[C], a[C], b[C] (float32). */
export function grad_rows_f32_act(dy: usize, x: usize, rows: i32, C: i32, mh: usize, acc: usize, tmp: usize, coef: usize, act: i32): void {
  if (act == 1) gradRowsF32<Silu>(dy, x, rows, C, mh, acc, tmp, coef);
  else if (act == 2) gradRowsF32<Gelu>(dy, x, rows, C, mh, acc, tmp, coef);
  else gradRowsF32<GeluTanh>(dy, x, rows, C, mh, acc, tmp, coef);
}
/** grad_rows_f64 on dy·act'(pre); coef: m[C], a[C], b[C] (float64). */
export function grad_rows_f64_act(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize, coef: usize, act: i32): void {
  if (act == 1) gradRowsF64<Silu>(dy, x, rows, C, meanc, acc, coef);
  else if (act == 2) gradRowsF64<Gelu>(dy, x, rows, C, meanc, acc, coef);
  else gradRowsF64<GeluTanh>(dy, x, rows, C, meanc, acc, coef);
}
