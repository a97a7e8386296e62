// Statistics: shifted sums S1 = Σ(x − K), S2 = Σ(x − K)² of NCHW runs and NHWC rows, in float64
// (*_f64, *_f32_wide) or in float32 blocks merged into float64 (the float32 fast paths); and the
// NHWC per-group strip loop, alone (stats_rows_g_f32) or fused with normalisation (fused_rows_g_f32).

import { hi2, lo2, hsum, hsum32, zero, STRIP } from "./common";
import { Gelu, GeluTanh, NoAct, Silu } from "./activation";
import { normRowG } from "./normalisation";

// ---------------------------------------------------------------- NCHW forward

/**
 * out[0] = Σ(x−K), out[1] = Σ(x−K)² over n values of T at p, every term in float64 (T = f32:
 * promoted with lo2/hi2), eight values per step over four f64x2 accumulators per sum.
 */
@inline function statsRun<T>(p: usize, n: i32, K: f64, out: usize): void {
  const sh = alignof<T>();
  const k = f64x2.splat(K);
  let a1 = f64x2.splat(0), b1 = f64x2.splat(0), c1 = f64x2.splat(0), d1 = f64x2.splat(0);
  let a2 = f64x2.splat(0), b2 = f64x2.splat(0), c2 = f64x2.splat(0), d2 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const q = p + (<usize>i << sh);
    let va: v128, vb: v128, wa: v128, wb: v128;
    if (sizeof<T>() == 4) {
      const v = v128.load(q);
      const w = v128.load(q, 16);
      va = f64x2.sub(lo2(v), k);
      vb = f64x2.sub(hi2(v), k);
      wa = f64x2.sub(lo2(w), k);
      wb = f64x2.sub(hi2(w), k);
    } else {
      va = f64x2.sub(v128.load(q), k);
      vb = f64x2.sub(v128.load(q, 16), k);
      wa = f64x2.sub(v128.load(q, 32), k);
      wb = f64x2.sub(v128.load(q, 48), k);
    }
    a1 = f64x2.add(a1, va); b1 = f64x2.add(b1, vb);
    c1 = f64x2.add(c1, wa); d1 = f64x2.add(d1, wb);
    a2 = f64x2.add(a2, f64x2.mul(va, va)); b2 = f64x2.add(b2, f64x2.mul(vb, vb));
    c2 = f64x2.add(c2, f64x2.mul(wa, wa)); d2 = f64x2.add(d2, f64x2.mul(wb, wb));
  }
  let s1 = hsum(f64x2.add(f64x2.add(a1, b1), f64x2.add(c1, d1)));
  let s2 = hsum(f64x2.add(f64x2.add(a2, b2), f64x2.add(c2, d2)));
  for (; i < n; i++) {
    const d = <f64>load<T>(p + (<usize>i << sh)) - K;
    s1 += d; s2 += d * d;
  }
  store<f64>(out, s1);
  store<f64>(out, s2, 8);
}

/** statsRun over n float32 values at p. */
export function stats_run_f32_wide(p: usize, n: i32, K: f64, out: usize): void {
  statsRun<f32>(p, n, K, out);
}

/** statsRun over n float64 values at p. */
export function stats_run_f64(p: usize, n: i32, K: f64, out: usize): void {
  statsRun<f64>(p, n, K, out);
}

// ---------------------------------------------------------------- NHWC forward
//
// acc holds 2·C float64: S1 per channel at acc, S2 per channel at acc + 8·C. Each channel's sum
// is accumulated in row order, whichever loop below does it, so results do not depend on how rows
// are blocked. Rows are visited in strips of 4 so the accumulators stay in registers across rows.

export function stats_rows_f32_wide(p: usize, rows: i32, C: i32, kc: usize, acc: usize): void {
  const rowBytes = <usize>C << 2;
  const s2 = acc + (<usize>C << 3);
  const C4 = C & ~3;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const base = p + <usize>r * rowBytes;
    for (let c = 0; c < C4; c += 4) {
      const co = <usize>c << 2, ao = <usize>c << 3;
      const kl = v128.load(kc + ao), kh = v128.load(kc + ao, 16);
      let sl = v128.load(acc + ao), sh = v128.load(acc + ao, 16);
      let ql = v128.load(s2 + ao), qh = v128.load(s2 + ao, 16);
      let v = v128.load(base + co);
      let l = f64x2.sub(lo2(v), kl), h = f64x2.sub(hi2(v), kh);
      sl = f64x2.add(sl, l); sh = f64x2.add(sh, h); ql = f64x2.add(ql, f64x2.mul(l, l)); qh = f64x2.add(qh, f64x2.mul(h, h));
      v = v128.load(base + rowBytes + co);
      l = f64x2.sub(lo2(v), kl); h = f64x2.sub(hi2(v), kh);
      sl = f64x2.add(sl, l); sh = f64x2.add(sh, h); ql = f64x2.add(ql, f64x2.mul(l, l)); qh = f64x2.add(qh, f64x2.mul(h, h));
      v = v128.load(base + 2 * rowBytes + co);
      l = f64x2.sub(lo2(v), kl); h = f64x2.sub(hi2(v), kh);
      sl = f64x2.add(sl, l); sh = f64x2.add(sh, h); ql = f64x2.add(ql, f64x2.mul(l, l)); qh = f64x2.add(qh, f64x2.mul(h, h));
      v = v128.load(base + 3 * rowBytes + co);
      l = f64x2.sub(lo2(v), kl); h = f64x2.sub(hi2(v), kh);
      sl = f64x2.add(sl, l); sh = f64x2.add(sh, h); ql = f64x2.add(ql, f64x2.mul(l, l)); qh = f64x2.add(qh, f64x2.mul(h, h));
      v128.store(acc + ao, sl); v128.store(acc + ao, sh, 16);
      v128.store(s2 + ao, ql); v128.store(s2 + ao, qh, 16);
    }
    for (let c = C4; c < C; c++) {
      const k = load<f64>(kc + (<usize>c << 3));
      let a = load<f64>(acc + (<usize>c << 3)), q = load<f64>(s2 + (<usize>c << 3));
      for (let j = 0; j < 4; j++) {
        const d = <f64>load<f32>(base + <usize>j * rowBytes + (<usize>c << 2)) - k;
        a += d; q += d * d;
      }
      store<f64>(acc + (<usize>c << 3), a); store<f64>(s2 + (<usize>c << 3), q);
    }
  }
  for (; r < rows; r++) {
    const base = p + <usize>r * rowBytes;
    for (let c = 0; c < C; c++) {
      const d = <f64>load<f32>(base + (<usize>c << 2)) - load<f64>(kc + (<usize>c << 3));
      store<f64>(acc + (<usize>c << 3), load<f64>(acc + (<usize>c << 3)) + d);
      store<f64>(s2 + (<usize>c << 3), load<f64>(s2 + (<usize>c << 3)) + d * d);
    }
  }
}

/**
 * One NHWC row into per-channel accumulators of T (float32 strips or float64 sums), shifted by k[c]:
 * s1[c] += x − k[c], s2[c] += (x − k[c])², for the bytes below v1 (whole vectors; v4: four vectors at
 * a time by constant offsets). Returns v1, where the caller's single-value tail starts.
 */
@inline function statsRow<T>(x: usize, k: usize, s1: usize, s2: usize, v4: usize, v1: usize): usize {
  let o: usize = 0;
  for (; o < v4; o += 64) {
    const px = x + o, pk = k + o, pa = s1 + o, pq = s2 + o;
    const d0 = v128.sub<T>(v128.load(px), v128.load(pk)), d1 = v128.sub<T>(v128.load(px, 16), v128.load(pk, 16));
    const d2 = v128.sub<T>(v128.load(px, 32), v128.load(pk, 32)), d3 = v128.sub<T>(v128.load(px, 48), v128.load(pk, 48));
    v128.store(pa, v128.add<T>(v128.load(pa), d0)); v128.store(pa, v128.add<T>(v128.load(pa, 16), d1), 16);
    v128.store(pa, v128.add<T>(v128.load(pa, 32), d2), 32); v128.store(pa, v128.add<T>(v128.load(pa, 48), d3), 48);
    v128.store(pq, v128.add<T>(v128.load(pq), v128.mul<T>(d0, d0))); v128.store(pq, v128.add<T>(v128.load(pq, 16), v128.mul<T>(d1, d1)), 16);
    v128.store(pq, v128.add<T>(v128.load(pq, 32), v128.mul<T>(d2, d2)), 32); v128.store(pq, v128.add<T>(v128.load(pq, 48), v128.mul<T>(d3, d3)), 48);
  }
  for (; o < v1; o += 16) {
    const d = v128.sub<T>(v128.load(x + o), v128.load(k + o));
    v128.store(s1 + o, v128.add<T>(v128.load(s1 + o), d));
    v128.store(s2 + o, v128.add<T>(v128.load(s2 + o), v128.mul<T>(d, d)));
  }
  return v1;
}

export function stats_rows_f64(p: usize, rows: i32, C: i32, kc: usize, acc: usize): void {
  // one row at a time, in memory order (one sequential stream; several rows at once run slower from
  // DRAM), the same sums in the same order as rows taken together
  const rowBytes = <usize>C << 3;
  const s2 = acc + (<usize>C << 3);
  const v4 = <usize>(C & ~7) << 3, v1 = <usize>(C & ~1) << 3;
  let pr = p;
  for (let r = 0; r < rows; r++) {
    let o = statsRow<f64>(pr, kc, acc, s2, v4, v1);
    for (; o < rowBytes; o += 8) {
      const d = load<f64>(pr + o) - load<f64>(kc + o);
      store<f64>(acc + o, load<f64>(acc + o) + d);
      store<f64>(s2 + o, load<f64>(s2 + o) + d * d);
    }
    pr += rowBytes;
  }
}

// ---------------------------------------------------------------- float32 fast paths
//
// The float32 statistics accumulate in float32 only inside short blocks (at most 32 terms per
// accumulator lane: 256 values of a run over two accumulators, or STRIP = 32 rows of a channel)
// and merge every block into float64. Each statistics block is shifted by its own first value, so
// every float32 term is a deviation of neighbouring values, and the float64 merge re-centres it on
// the group's shift K:
//   S1 += s1 + L·δ,  S2 += s2 + 2δ·s1 + L·δ²,  δ = K_block − K.
// A float32 overflow (|x| > ~1.8e19) shows as a non-finite sum; the caller then reruns the group
// with the *_wide kernels above, which accumulate every term in float64.

/** Merge a float32 strip (s1, s2 over L rows, shifted by kb) into float64 S1/S2 at a, q for 4 channels. */
@inline function mergeStats4(kb: v128, s1: v128, s2: v128, L: f64, kc: usize, a: usize, q: usize): void {
  const nL = f64x2.splat(L), two = f64x2.splat(2);
  const dl = f64x2.sub(lo2(kb), v128.load(kc)), dh = f64x2.sub(hi2(kb), v128.load(kc, 16));
  const s1l = lo2(s1), s1h = hi2(s1);
  v128.store(a, f64x2.add(v128.load(a), f64x2.add(s1l, f64x2.mul(nL, dl))));
  v128.store(a, f64x2.add(v128.load(a, 16), f64x2.add(s1h, f64x2.mul(nL, dh))), 16);
  const tl = f64x2.add(lo2(s2), f64x2.mul(dl, f64x2.add(f64x2.mul(two, s1l), f64x2.mul(nL, dl))));
  const th = f64x2.add(hi2(s2), f64x2.mul(dh, f64x2.add(f64x2.mul(two, s1h), f64x2.mul(nL, dh))));
  v128.store(q, f64x2.add(v128.load(q), tl));
  v128.store(q, f64x2.add(v128.load(q, 16), th), 16);
}

/**
 * NHWC statistics, float32 fast path: acc S1[C] at acc, S2[C] at acc + 8·C (float64, accumulated
 * into); kc: float64 per-channel group shift; tmp: 2·C float32 of the calling thread's scratch.
 * Rows are read in order, one at a time, in strips of up to STRIP rows; each strip is shifted by its
 * first row and its float32 sums are merged into float64 at the strip's end.
 */
export function stats_rows_f32(p: usize, rows: i32, C: i32, kc: usize, acc: usize, tmp: usize): void {
  const rowBytes = <usize>C << 2;
  const s2 = acc + (<usize>C << 3);
  const t2 = tmp + rowBytes;
  const C4 = C & ~3;
  const end16 = <usize>(C & ~15) << 2, end4 = <usize>C4 << 2;
  for (let r0 = 0; r0 < rows; r0 += STRIP) {
    const L = rows - r0 < STRIP ? rows - r0 : STRIP;
    const base = p + <usize>r0 * rowBytes;
    zero(tmp, rowBytes << 1);
    let r = 1;
    for (; r < L; r++) {
      statsRow<f32>(base + <usize>r * rowBytes, base, tmp, t2, end16, end4);
    }
    const nL = <f64>L;
    for (let c = 0; c < C4; c += 4) {
      const co = <usize>c << 2, ao = <usize>c << 3;
      mergeStats4(v128.load(base + co), v128.load(tmp + co), v128.load(t2 + co), nL, kc + ao, acc + ao, s2 + ao);
    }
    for (let c = C4; c < C; c++) {
      const ao = <usize>c << 3;
      const k = load<f64>(kc + ao);
      let a = load<f64>(acc + ao), q = load<f64>(s2 + ao);
      for (let j = 0; j < L; j++) {
        const d = <f64>load<f32>(base + <usize>j * rowBytes + (<usize>c << 2)) - k;
        a += d; q += d * d;
      }
      store<f64>(acc + ao, a); store<f64>(s2 + ao, q);
    }
  }
}

// ---------------------------------------------------------------- float32 statistics in blocks

// Running float64 sums of the block-shifted statistics (per instance, so per thread).
let S1: f64 = 0, S2: f64 = 0;

/** One float32 block of L values (a multiple of 16) at q, shifted by its first value, merged into S1/S2 around K. */
@inline function statsBlock(q: usize, L: i32, K: f64): void {
  const kb = load<f32>(q);
  // a splat from memory: V8 keeps it in a register (a splat of a scalar it re-broadcasts per iteration)
  const kv = v128.load32_splat(q);
  // two accumulators per sum: few enough registers that nothing spills (x64 has 16)
  let a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let a2 = f32x4.splat(0), b2 = f32x4.splat(0);
  for (let j = 0; j < L; j += 16) {
    const r = q + (<usize>j << 2);
    const v0 = f32x4.sub(v128.load(r), kv), v1 = f32x4.sub(v128.load(r, 16), kv);
    const v2 = f32x4.sub(v128.load(r, 32), kv), v3 = f32x4.sub(v128.load(r, 48), kv);
    a1 = f32x4.add(a1, v0); b1 = f32x4.add(b1, v1);
    a2 = f32x4.add(a2, f32x4.mul(v0, v0)); b2 = f32x4.add(b2, f32x4.mul(v1, v1));
    a1 = f32x4.add(a1, v2); b1 = f32x4.add(b1, v3);
    a2 = f32x4.add(a2, f32x4.mul(v2, v2)); b2 = f32x4.add(b2, f32x4.mul(v3, v3));
  }
  const s1 = hsum32(f32x4.add(a1, b1));
  const s2 = hsum32(f32x4.add(a2, b2));
  const delta = <f64>kb - K;
  S1 += s1 + <f64>L * delta;
  S2 += s2 + 2 * delta * s1 + <f64>L * delta * delta;
}

/** Block-shifted statistics of nch runs of len values (blocks restart at each run), into out. */
export function stats_chan_f32(p: usize, len: i32, nch: i32, K: f64, out: usize): void {
  S1 = 0; S2 = 0;
  for (let k = 0; k < nch; k++) {
    const q0 = p + (<usize>k * <usize>len << 2);
    let i = 0;
    for (let L = len >= 256 ? 256 : len & ~15; L > 0; L = len - i >= 256 ? 256 : (len - i) & ~15) {
      statsBlock(q0 + (<usize>i << 2), L, K);
      i += L;
    }
    for (; i < len; i++) {
      const d = <f64>load<f32>(q0 + (<usize>i << 2)) - K;
      S1 += d; S2 += d * d;
    }
  }
  store<f64>(out, S1);
  store<f64>(out, S2, 8);
}

// ---------------------------------------------------------------- NCHW, item = sample (interleaved groups)
// A unit of nch consecutive channel runs of len values whose channels belong to different groups:
// each run shifted by its own group's K (kc[k], float64), its sums into its own pair out[2k], out[2k+1].

/** stats_chan_f32 of each run k alone, shifted by kc[k]. */
export function stats_chans_f32(p: usize, len: i32, nch: i32, kc: usize, out: usize): void {
  for (let k = 0; k < nch; k++) stats_chan_f32(p + ((<usize>k * <usize>len) << 2), len, 1, load<f64>(kc + (<usize>k << 3)), out + (<usize>k << 4));
}

/** statsRun of each float32 run k alone, shifted by kc[k]. */
export function stats_chans_f32_wide(p: usize, len: i32, nch: i32, kc: usize, out: usize): void {
  for (let k = 0; k < nch; k++) statsRun<f32>(p + ((<usize>k * <usize>len) << 2), len, load<f64>(kc + (<usize>k << 3)), out + (<usize>k << 4));
}

/** statsRun of each float64 run k alone, shifted by kc[k]. */
export function stats_chans_f64(p: usize, len: i32, nch: i32, kc: usize, out: usize): void {
  for (let k = 0; k < nch; k++) statsRun<f64>(p + ((<usize>k * <usize>len) << 3), len, load<f64>(kc + (<usize>k << 3)), out + (<usize>k << 4));
}

/**
 * One NHWC row (at ro) of every group, shifted by the strip's first row (at base), into tmp/t2.
 * D a multiple of 16: four vectors at a time, summed pairwise, by constant offsets.
 */
@inline function groupRowStats(ro: usize, base: usize, G: i32, gb: usize, tmp: usize, t2: usize): void {
  let p = ro, pk = base, pt = tmp;
  const pend = ro + <usize>G * gb;
  if ((gb & 63) == 0) {
    do {
      const k = v128.load32_splat(pk);
      const end = p + gb;
      let a = f32x4.splat(0), q = f32x4.splat(0);
      do {
        const v0 = f32x4.sub(v128.load(p), k), v1 = f32x4.sub(v128.load(p, 16), k);
        const v2 = f32x4.sub(v128.load(p, 32), k), v3 = f32x4.sub(v128.load(p, 48), k);
        a = f32x4.add(a, f32x4.add(f32x4.add(v0, v1), f32x4.add(v2, v3)));
        q = f32x4.add(q, f32x4.add(f32x4.add(f32x4.mul(v0, v0), f32x4.mul(v1, v1)), f32x4.add(f32x4.mul(v2, v2), f32x4.mul(v3, v3))));
        p += 64;
      } while (p < end);
      v128.store(pt, f32x4.add(v128.load(pt), a));
      v128.store(pt + (t2 - tmp), f32x4.add(v128.load(pt + (t2 - tmp)), q));
      pk += gb; pt += 16;
    } while (p < pend);
    return;
  }
  for (let g = 0; g < G; g++) {
    const go = <usize>g * gb;
    const k = f32x4.splat(load<f32>(base + go));
    let a = f32x4.splat(0), q = f32x4.splat(0);
    for (let j: usize = 0; j < gb; j += 16) {
      const v = f32x4.sub(v128.load(ro + go + j), k);
      a = f32x4.add(a, v);
      q = f32x4.add(q, f32x4.mul(v, v));
    }
    const to = <usize>g << 4;
    v128.store(tmp + to, f32x4.add(v128.load(tmp + to), a));
    v128.store(t2 + to, f32x4.add(v128.load(t2 + to), q));
  }
}

/** Merge a strip's float32 group sums (n values each, shifted by row base) into float64 around kg. */
@inline function mergeGroupStrip(base: usize, G: i32, gb: usize, n: f64, tmp: usize, t2: usize, kg: usize, acc: usize, s2: usize): void {
  for (let g = 0; g < G; g++) {
    const to = <usize>g << 4, ao = <usize>g << 3;
    const kb = <f64>load<f32>(base + <usize>g * gb);
    const s1 = hsum32(v128.load(tmp + to));
    const q = hsum32(v128.load(t2 + to));
    const delta = kb - load<f64>(kg + ao);
    store<f64>(acc + ao, load<f64>(acc + ao) + (s1 + n * delta));
    store<f64>(s2 + ao, load<f64>(s2 + ao) + (q + 2 * delta * s1 + n * delta * delta));
  }
}

/**
 * NHWC statistics per group, float32, for D a multiple of 4: acc S1[G] at acc, S2[G] at acc + 8·G
 * (float64, accumulated into); kg: float64 shift of each group; tmp: 2·G float32x4 of scratch.
 * Rows in order, strips of up to STRIP rows, each strip shifted by its first row's first value of the
 * group; float32 lane sums over a strip, merged into float64 at the strip's end.
 */
export function stats_rows_g_f32(p: usize, rows: i32, C: i32, D: i32, kg: usize, acc: usize, tmp: usize): void {
  groupStrips<i32, NoAct>(p, rows, C, D, kg, acc, tmp, 0, 0, 0);
}

/**
 * The strips of stats_rows_g_f32 over the rows at xn. Instantiated with FUSE = v128, row r of x is
 * also normalised into y (normRowG with coef) right after row r of xn is summed: the fused step, with
 * the same sums in the same order. (FUSE is a compile-time switch; FUSE = i32 has no normalisation.
 * A: the activation of the normalised rows, activation.ts.)
 */
@inline function groupStrips<FUSE, A>(xn: usize, rows: i32, C: i32, D: i32, kg: usize, acc: usize, tmp: usize, x: usize, y: usize, coef: usize): void {
  const rowBytes = <usize>C << 2;
  const G = C / D;
  const gb = <usize>D << 2;
  const t2 = tmp + (<usize>G << 4);
  const s2 = acc + (<usize>G << 3);
  for (let r0 = 0; r0 < rows; r0 += STRIP) {
    const L = rows - r0 < STRIP ? rows - r0 : STRIP;
    const base = xn + <usize>r0 * rowBytes;
    zero(tmp, <usize>G << 5);
    for (let r = 0; r < L; r++) {
      groupRowStats(base + <usize>r * rowBytes, base, G, gb, tmp, t2);
      if (sizeof<FUSE>() == 16) {
        const xo = <usize>(r0 + r) * rowBytes;
        normRowG<A>(x + xo, y + xo, C, D, coef);
      }
    }
    mergeGroupStrip(base, G, gb, <f64>L * <f64>D, tmp, t2, kg, acc, s2);
  }
}

/**
 * NHWC forward, software-pipelined: row r of sample n is normalised (norm_rows_g_f32, in place or
 * not) right after row r of sample n+1 is read for its statistics (stats_rows_g_f32's sums, in the
 * same order, so results match the unfused steps bit for bit).
 */
export function fused_rows_g_f32(x: usize, y: usize, xn: usize, rows: i32, C: i32, D: i32, coef: usize, kg: usize, acc: usize, tmp: usize): void {
  groupStrips<v128, NoAct>(xn, rows, C, D, kg, acc, tmp, x, y, coef);
}

/** fused_rows_g_f32 with the activation `act` applied to the normalised rows. */
export function fused_rows_g_f32_act(x: usize, y: usize, xn: usize, rows: i32, C: i32, D: i32, coef: usize, kg: usize, acc: usize, tmp: usize, act: i32): void {
  if (act == 1) groupStrips<v128, Silu>(xn, rows, C, D, kg, acc, tmp, x, y, coef);
  else if (act == 2) groupStrips<v128, Gelu>(xn, rows, C, D, kg, acc, tmp, x, y, coef);
  else groupStrips<v128, GeluTanh>(xn, rows, C, D, kg, acc, tmp, x, y, coef);
}
