// GroupNorm hot loops in WebAssembly SIMD (AssemblyScript).
//
// Every function takes byte offsets into the one shared memory and plain numbers; nothing here
// allocates. The orchestration (which run, which shift, how partial sums combine) lives in
// src/kernels/plan.ts; these loops only stream.
//
// Vocabulary, as in PyTorch's cpu/group_norm_kernel.cpp:
//   NCHW "run": the HxW contiguous values of one (n, c), or a fixed-size block of it.
//   NHWC "rows": `rows` consecutive spatial positions of one sample, each holding C channels.
//   stats:      shifted sums S1 = Σ(x − K), S2 = Σ(x − K)² in float64, K a value of the group.
//   internal gradients: ds = Σ dy·(x − mean), db = Σ dy, in float64.
//   input backward: dx = A·dy + B·(x − mean) + C0 with per-channel A and per-group B, C0.
//
// f32 normalisation subtracts the float64 mean as two floats (mhi + mlo): x − mhi is exact for
// values near the mean (Sterbenz), so ill-conditioned groups keep all their digits.

// ---------------------------------------------------------------- helpers

@inline function hi2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
}
@inline function lo2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
@inline function hsum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/**
 * Zero `bytes` at p with vector stores, rounded up to 16 bytes (the per-thread scratch has room).
 * Much cheaper than memory.fill on a shared memory.
 */
@inline function zero(p: usize, bytes: usize): void {
  const z = f32x4.splat(0);
  for (let i: usize = 0; i < bytes; i += 16) v128.store(p + i, z);
}

/**
 * Rows per NHWC strip: float32 sums run over at most STRIP terms per lane (error ≤ 32 ulp of Σ|term|,
 * typically ~6 ulp) before a float64 merge. 32 rows halve the merges of 16 for ~10% of NHWC time.
 */
const STRIP = 32;

// ---------------------------------------------------------------- NCHW forward

/** out[0] = Σ(x−K), out[1] = Σ(x−K)² over n float32 values at p. */
export function stats_run_f32_wide(p: usize, n: i32, K: f64, out: usize): void {
  const k = f64x2.splat(K);
  let a1 = f64x2.splat(0), b1 = f64x2.splat(0), c1 = f64x2.splat(0), d1 = f64x2.splat(0);
  let a2 = f64x2.splat(0), b2 = f64x2.splat(0), c2 = f64x2.splat(0), d2 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const q = p + (<usize>i << 2);
    const v = v128.load(q);
    const w = v128.load(q, 16);
    const va = f64x2.sub(lo2(v), k);
    const vb = f64x2.sub(hi2(v), k);
    const wa = f64x2.sub(lo2(w), k);
    const wb = f64x2.sub(hi2(w), k);
    a1 = f64x2.add(a1, va); b1 = f64x2.add(b1, vb);
    c1 = f64x2.add(c1, wa); d1 = f64x2.add(d1, wb);
    a2 = f64x2.add(a2, f64x2.mul(va, va)); b2 = f64x2.add(b2, f64x2.mul(vb, vb));
    c2 = f64x2.add(c2, f64x2.mul(wa, wa)); d2 = f64x2.add(d2, f64x2.mul(wb, wb));
  }
  let s1 = hsum(f64x2.add(f64x2.add(a1, b1), f64x2.add(c1, d1)));
  let s2 = hsum(f64x2.add(f64x2.add(a2, b2), f64x2.add(c2, d2)));
  for (; i < n; i++) {
    const d = <f64>load<f32>(p + (<usize>i << 2)) - K;
    s1 += d; s2 += d * d;
  }
  store<f64>(out, s1);
  store<f64>(out, s2, 8);
}

export function stats_run_f64(p: usize, n: i32, K: f64, out: usize): void {
  const k = f64x2.splat(K);
  let a1 = f64x2.splat(0), b1 = f64x2.splat(0), c1 = f64x2.splat(0), d1 = f64x2.splat(0);
  let a2 = f64x2.splat(0), b2 = f64x2.splat(0), c2 = f64x2.splat(0), d2 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const q = p + (<usize>i << 3);
    const va = f64x2.sub(v128.load(q), k);
    const vb = f64x2.sub(v128.load(q, 16), k);
    const wa = f64x2.sub(v128.load(q, 32), k);
    const wb = f64x2.sub(v128.load(q, 48), k);
    a1 = f64x2.add(a1, va); b1 = f64x2.add(b1, vb);
    c1 = f64x2.add(c1, wa); d1 = f64x2.add(d1, wb);
    a2 = f64x2.add(a2, f64x2.mul(va, va)); b2 = f64x2.add(b2, f64x2.mul(vb, vb));
    c2 = f64x2.add(c2, f64x2.mul(wa, wa)); d2 = f64x2.add(d2, f64x2.mul(wb, wb));
  }
  let s1 = hsum(f64x2.add(f64x2.add(a1, b1), f64x2.add(c1, d1)));
  let s2 = hsum(f64x2.add(f64x2.add(a2, b2), f64x2.add(c2, d2)));
  for (; i < n; i++) {
    const d = load<f64>(p + (<usize>i << 3)) - K;
    s1 += d; s2 += d * d;
  }
  store<f64>(out, s1);
  store<f64>(out, s2, 8);
}

// ---------------------------------------------------------------- normalisation and input backward
// One loop for both precisions, T = f32 or f64: v128.op<T> works on 4 float32 or 2 float64 lanes and
// alignof<T>() is log2 of the element size. Float32 callers pass the float32 high part of the mean as
// m and fold its low part into b (forward) or C0 (backward). Loops take four vectors per step by
// constant offsets, then single vectors, then single values; a splat used by two loops is computed
// once before them (V8 re-broadcasts a splat that only one loop uses in every iteration).

/** y = (x − m)·a + b over n values. */
@inline function normRun<T>(x: usize, y: usize, n: i32, m: T, a: T, b: T): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  const vm = v128.splat<T>(m), va = v128.splat<T>(a), vb = v128.splat<T>(b);
  let i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    const px = x + (<usize>i << sh), py = y + (<usize>i << sh);
    v128.store(py, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px), vm), va), vb));
    v128.store(py, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px, 16), vm), va), vb), 16);
    v128.store(py, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px, 32), vm), va), vb), 32);
    v128.store(py, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px, 48), vm), va), vb), 48);
  }
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << sh;
    v128.store(y + o, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(x + o), vm), va), vb));
  }
  for (; i < n; i++) {
    const o = <usize>i << sh;
    store<T>(y + o, (load<T>(x + o) - m) * a + b);
  }
}

/** dx = (dy·A + (x − m)·B) + C0 over n values. */
@inline function dxRun<T>(dy: usize, x: usize, dx: usize, n: i32, A: T, B: T, C0: T, m: T): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  const va = v128.splat<T>(A), vb = v128.splat<T>(B), vc = v128.splat<T>(C0), vm = v128.splat<T>(m);
  let i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    const o = <usize>i << sh;
    const pg = dy + o, pv = x + o, po = dx + o;
    v128.store(po, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(pg), va), v128.mul<T>(v128.sub<T>(v128.load(pv), vm), vb)), vc));
    v128.store(po, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(pg, 16), va), v128.mul<T>(v128.sub<T>(v128.load(pv, 16), vm), vb)), vc), 16);
    v128.store(po, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(pg, 32), va), v128.mul<T>(v128.sub<T>(v128.load(pv, 32), vm), vb)), vc), 32);
    v128.store(po, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(pg, 48), va), v128.mul<T>(v128.sub<T>(v128.load(pv, 48), vm), vb)), vc), 48);
  }
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << sh;
    v128.store(dx + o, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(dy + o), va), v128.mul<T>(v128.sub<T>(v128.load(x + o), vm), vb)), vc));
  }
  for (; i < n; i++) {
    const o = <usize>i << sh;
    store<T>(dx + o, (load<T>(dy + o) * A + (load<T>(x + o) - m) * B) + C0);
  }
}

/**
 * NCHW: nch consecutive channel runs of len values; coef holds the per-channel m[], a[], b[]
 * `stride` entries apart, index 0 = the first of these channels.
 */
@inline function normChan<T>(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  const sh = alignof<T>(), sb = <usize>stride << sh;
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << sh, co = <usize>k << sh;
    normRun<T>(x + o, y + o, len, load<T>(coef + co), load<T>(coef + sb + co), load<T>(coef + 2 * sb + co));
  }
}

/** NCHW, as normChan: coef holds A[], B[], C0[], m[]. */
@inline function dxChan<T>(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  const sh = alignof<T>(), sb = <usize>stride << sh;
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << sh, co = <usize>k << sh;
    dxRun<T>(dy + o, x + o, dx + o, len, load<T>(coef + co), load<T>(coef + sb + co), load<T>(coef + 2 * sb + co), load<T>(coef + 3 * sb + co));
  }
}

/** NHWC: rows of C channels; coef holds the per-channel m[C], a[C], b[C]. */
@inline function normRows<T>(x: usize, y: usize, rows: i32, C: i32, coef: usize): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  const cb = <usize>C << sh;
  const v4 = <usize>(C & ~(4 * lanes - 1)) << sh, v1 = <usize>(C & ~(lanes - 1)) << sh;
  let pv = x, po = y;
  for (let r = 0; r < rows; r++) {
    let o: usize = 0;
    for (; o < v4; o += 64) {
      const v = pv + o, q = po + o, m = coef + o, a = m + cb, b = a + cb;
      v128.store(q, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v), v128.load(m)), v128.load(a)), v128.load(b)));
      v128.store(q, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v, 16), v128.load(m, 16)), v128.load(a, 16)), v128.load(b, 16)), 16);
      v128.store(q, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v, 32), v128.load(m, 32)), v128.load(a, 32)), v128.load(b, 32)), 32);
      v128.store(q, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v, 48), v128.load(m, 48)), v128.load(a, 48)), v128.load(b, 48)), 48);
    }
    for (; o < v1; o += 16) {
      const v = v128.sub<T>(v128.load(pv + o), v128.load(coef + o));
      v128.store(po + o, v128.add<T>(v128.mul<T>(v, v128.load(coef + cb + o)), v128.load(coef + 2 * cb + o)));
    }
    for (; o < cb; o += sizeof<T>()) {
      store<T>(po + o, (load<T>(pv + o) - load<T>(coef + o)) * load<T>(coef + cb + o) + load<T>(coef + 2 * cb + o));
    }
    pv += cb; po += cb;
  }
}

/** NHWC: rows of C channels; coef holds the per-channel A[C], B[C], C0[C], m[C]. */
@inline function dxRows<T>(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  const cb = <usize>C << sh;
  const v4 = <usize>(C & ~(4 * lanes - 1)) << sh, v1 = <usize>(C & ~(lanes - 1)) << sh;
  const pB = coef + cb, pC = pB + cb, pM = pC + cb;
  let pg = dy, pv = x, po = dx;
  for (let r = 0; r < rows; r++) {
    let o: usize = 0;
    for (; o < v4; o += 64) {
      const g = pg + o, v = pv + o, q = po + o, a = coef + o, b = pB + o, c = pC + o, m = pM + o;
      v128.store(q, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(g), v128.load(a)), v128.mul<T>(v128.sub<T>(v128.load(v), v128.load(m)), v128.load(b))), v128.load(c)));
      v128.store(q, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(g, 16), v128.load(a, 16)), v128.mul<T>(v128.sub<T>(v128.load(v, 16), v128.load(m, 16)), v128.load(b, 16))), v128.load(c, 16)), 16);
      v128.store(q, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(g, 32), v128.load(a, 32)), v128.mul<T>(v128.sub<T>(v128.load(v, 32), v128.load(m, 32)), v128.load(b, 32))), v128.load(c, 32)), 32);
      v128.store(q, v128.add<T>(v128.add<T>(v128.mul<T>(v128.load(g, 48), v128.load(a, 48)), v128.mul<T>(v128.sub<T>(v128.load(v, 48), v128.load(m, 48)), v128.load(b, 48))), v128.load(c, 48)), 48);
    }
    for (; o < v1; o += 16) {
      const d = v128.sub<T>(v128.load(pv + o), v128.load(pM + o));
      const t = v128.add<T>(v128.mul<T>(v128.load(pg + o), v128.load(coef + o)), v128.mul<T>(d, v128.load(pB + o)));
      v128.store(po + o, v128.add<T>(t, v128.load(pC + o)));
    }
    for (; o < cb; o += sizeof<T>()) {
      const d = load<T>(pv + o) - load<T>(pM + o);
      store<T>(po + o, (load<T>(pg + o) * load<T>(coef + o) + d * load<T>(pB + o)) + load<T>(pC + o));
    }
    pg += cb; pv += cb; po += cb;
  }
}

export function norm_chan_f32(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void { normChan<f32>(x, y, len, nch, coef, stride); }
export function norm_chan_f64(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void { normChan<f64>(x, y, len, nch, coef, stride); }
export function dx_chan_f32(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void { dxChan<f32>(dy, x, dx, len, nch, coef, stride); }
export function dx_chan_f64(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void { dxChan<f64>(dy, x, dx, len, nch, coef, stride); }
export function norm_rows_f32(x: usize, y: usize, rows: i32, C: i32, coef: usize): void { normRows<f32>(x, y, rows, C, coef); }
export function norm_rows_f64(x: usize, y: usize, rows: i32, C: i32, coef: usize): void { normRows<f64>(x, y, rows, C, coef); }
export function dx_rows_f32(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void { dxRows<f32>(dy, x, dx, rows, C, coef); }
export function dx_rows_f64(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void { dxRows<f64>(dy, x, dx, rows, C, coef); }

// ---------------------------------------------------------------- NCHW backward

/** out[0] = Σ dy·(x − mean), out[1] = Σ dy over n float32 values. */
export function grad_run_f32_wide(dy: usize, x: usize, n: i32, mean: f64, out: usize): void {
  const m = f64x2.splat(mean);
  let a1 = f64x2.splat(0), b1 = f64x2.splat(0), a2 = f64x2.splat(0), b2 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(dy + o);
    const v = v128.load(x + o);
    const gl = lo2(g), gh = hi2(g);
    a1 = f64x2.add(a1, f64x2.mul(gl, f64x2.sub(lo2(v), m)));
    b1 = f64x2.add(b1, f64x2.mul(gh, f64x2.sub(hi2(v), m)));
    a2 = f64x2.add(a2, gl);
    b2 = f64x2.add(b2, gh);
  }
  let ds = hsum(f64x2.add(a1, b1));
  let db = hsum(f64x2.add(a2, b2));
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = <f64>load<f32>(dy + o);
    ds += g * (<f64>load<f32>(x + o) - mean);
    db += g;
  }
  store<f64>(out, ds);
  store<f64>(out, db, 8);
}

export function grad_run_f64(dy: usize, x: usize, n: i32, mean: f64, out: usize): void {
  const m = f64x2.splat(mean);
  let a1 = f64x2.splat(0), b1 = f64x2.splat(0), a2 = f64x2.splat(0), b2 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 3;
    const g0 = v128.load(dy + o), g1 = v128.load(dy + o, 16);
    a1 = f64x2.add(a1, f64x2.mul(g0, f64x2.sub(v128.load(x + o), m)));
    b1 = f64x2.add(b1, f64x2.mul(g1, f64x2.sub(v128.load(x + o, 16), m)));
    a2 = f64x2.add(a2, g0);
    b2 = f64x2.add(b2, g1);
  }
  let ds = hsum(f64x2.add(a1, b1));
  let db = hsum(f64x2.add(a2, b2));
  for (; i < n; i++) {
    const o = <usize>i << 3;
    const g = load<f64>(dy + o);
    ds += g * (load<f64>(x + o) - mean);
    db += g;
  }
  store<f64>(out, ds);
  store<f64>(out, db, 8);
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

/**
 * One row of norm_rows_f32 for D a multiple of 4: m is constant over a group (loaded once per group),
 * a and b are read per channel; pointer walks with constant offsets. Same operations in the same
 * order as norm_rows_f32, so bitwise the same values.
 */
@inline function normRowG(v: usize, o: usize, C: i32, D: i32, coef: usize): void {
  const cb = <usize>C << 2;
  const gb = <usize>D << 2;
  const pA = coef + cb;
  let pv = v, po = o, pa = pA;
  for (let c0: usize = 0; c0 < cb; c0 += gb) {
    const m = v128.load32_splat(coef + c0);
    const end = pv + gb;
    if ((D & 15) == 0) {
      do {
        const d0 = f32x4.sub(v128.load(pv), m), d1 = f32x4.sub(v128.load(pv, 16), m);
        const d2 = f32x4.sub(v128.load(pv, 32), m), d3 = f32x4.sub(v128.load(pv, 48), m);
        v128.store(po, f32x4.add(f32x4.mul(d0, v128.load(pa)), v128.load(pa + cb)));
        v128.store(po, f32x4.add(f32x4.mul(d1, v128.load(pa, 16)), v128.load(pa + cb, 16)), 16);
        v128.store(po, f32x4.add(f32x4.mul(d2, v128.load(pa, 32)), v128.load(pa + cb, 32)), 32);
        v128.store(po, f32x4.add(f32x4.mul(d3, v128.load(pa, 48)), v128.load(pa + cb, 48)), 48);
        pv += 64; po += 64; pa += 64;
      } while (pv < end);
    } else {
      do {
        v128.store(po, f32x4.add(f32x4.mul(f32x4.sub(v128.load(pv), m), v128.load(pa)), v128.load(pa + cb)));
        pv += 16; po += 16; pa += 16;
      } while (pv < end);
    }
  }
}

/** norm_rows_f32 for D a multiple of 4 (see normRowG). */
export function norm_rows_g_f32(x: usize, y: usize, rows: i32, C: i32, D: i32, coef: usize): void {
  const cb = <usize>C << 2;
  for (let r = 0; r < rows; r++) {
    const ro = <usize>r * cb;
    normRowG(x + ro, y + ro, C, D, coef);
  }
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

export function grad_rows_f64(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize): void {
  // one row at a time, in memory order (see stats_rows_f64)
  const rowBytes = <usize>C << 3;
  const db = acc + (<usize>C << 3);
  const v4 = <usize>(C & ~7) << 3, v1 = <usize>(C & ~1) << 3;
  let pg = dy, pv = x;
  for (let r = 0; r < rows; r++) {
    let o = gradRow<f64>(pg, pv, meanc, acc, db, v4, v1);
    for (; o < rowBytes; o += 8) {
      const g = load<f64>(pg + o);
      store<f64>(acc + o, load<f64>(acc + o) + g * (load<f64>(pv + o) - load<f64>(meanc + o)));
      store<f64>(db + o, load<f64>(db + o) + g);
    }
    pg += rowBytes; pv += rowBytes;
  }
}

/**
 * dx_rows_f32 for D a multiple of 4, with the same coefficient arrays: B, C0 and m are constant over
 * a group, so each group's are loaded once per row (splat) and only A is read per channel. Bitwise
 * the same results as dx_rows_f32 (same operations on the same values, in the same order).
 */
export function dx_rows_g_f32(dy: usize, x: usize, dx: usize, rows: i32, C: i32, D: i32, coef: usize): void {
  const cb = <usize>C << 2;
  const gb = <usize>D << 2;
  const pB = coef + cb, pC = pB + cb, pM = pC + cb;
  let pg = dy, pv = x, po = dx;
  for (let r = 0; r < rows; r++) {
    let pa = coef;
    for (let c0: usize = 0; c0 < cb; c0 += gb) {
      const Bv = v128.load32_splat(pB + c0), Cv = v128.load32_splat(pC + c0), Mv = v128.load32_splat(pM + c0);
      const end = pg + gb;
      if ((D & 15) == 0) {
        // four vectors at a time, addressed by constant offsets
        do {
          const d0 = f32x4.sub(v128.load(pv), Mv), d1 = f32x4.sub(v128.load(pv, 16), Mv);
          v128.store(po, f32x4.add(f32x4.add(f32x4.mul(v128.load(pg), v128.load(pa)), f32x4.mul(d0, Bv)), Cv));
          v128.store(po, f32x4.add(f32x4.add(f32x4.mul(v128.load(pg, 16), v128.load(pa, 16)), f32x4.mul(d1, Bv)), Cv), 16);
          const d2 = f32x4.sub(v128.load(pv, 32), Mv), d3 = f32x4.sub(v128.load(pv, 48), Mv);
          v128.store(po, f32x4.add(f32x4.add(f32x4.mul(v128.load(pg, 32), v128.load(pa, 32)), f32x4.mul(d2, Bv)), Cv), 32);
          v128.store(po, f32x4.add(f32x4.add(f32x4.mul(v128.load(pg, 48), v128.load(pa, 48)), f32x4.mul(d3, Bv)), Cv), 48);
          pg += 64; pv += 64; po += 64; pa += 64;
        } while (pg < end);
      } else {
        do {
          const d = f32x4.sub(v128.load(pv), Mv);
          v128.store(po, f32x4.add(f32x4.add(f32x4.mul(v128.load(pg), v128.load(pa)), f32x4.mul(d, Bv)), Cv));
          pg += 16; pv += 16; po += 16; pa += 16;
        } while (pg < end);
      }
    }
  }
}

// ---------------------------------------------------------------- float32 fast paths
//
// The float32 statistics and internal gradients accumulate in float32 only inside short blocks
// (at most 32 terms per accumulator lane: 256 values of a run over two accumulators, or STRIP = 32
// rows of a channel) and merge every block into float64. Each statistics block is shifted by its
// own first value, so every float32 term is a deviation of neighbouring values, and the float64
// merge re-centres it on the group's shift K:
//   S1 += s1 + L·δ,  S2 += s2 + 2δ·s1 + L·δ²,  δ = K_block − K.
// Gradient blocks are centred on the float32 high part of the group mean (x − mhi is exact near
// the mean); the low part is applied once at the end by the caller: ds = T − mlo·db.
// A float32 overflow (|x| > ~1.8e19) shows as a non-finite sum; the caller then reruns the group
// with the *_wide kernels above, which accumulate every term in float64.

@inline function hsum32(v: v128): f64 {
  const w = f64x2.add(lo2(v), hi2(v));
  return f64x2.extract_lane(w, 0) + f64x2.extract_lane(w, 1);
}

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
export function grad_run_f32(dy: usize, x: usize, n: i32, mhi: f32, out: usize): void {
  const m = f32x4.splat(mhi);
  GT = 0; GB = 0;
  let i = 0;
  for (let L = n >= 256 ? 256 : n & ~15; L > 0; L = n - i >= 256 ? 256 : (n - i) & ~15) {
    const o = <usize>i << 2;
    gradBlock(dy + o, x + o, L, m);
    i += L;
  }
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
export function grad_rows_f32(dy: usize, x: usize, rows: i32, C: i32, mh: usize, acc: usize, tmp: usize): void {
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
      gradRow<f32>(dy + off + <usize>r * rowBytes, x + off + <usize>r * rowBytes, mh, tmp, t2, end16, end4);
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

// ---------------------------------------------------------------- STREAM-style probes (roofline)
// float64 arrays as in STREAM; n a multiple of 8 (the caller splits ranges on 64-byte boundaries).

export function stream_copy(a: usize, c: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const o = <usize>i << 3;
    v128.store(c + o, v128.load(a + o));
    v128.store(c + o, v128.load(a + o, 16), 16);
    v128.store(c + o, v128.load(a + o, 32), 32);
    v128.store(c + o, v128.load(a + o, 48), 48);
  }
}

export function stream_add(a: usize, b: usize, c: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const o = <usize>i << 3;
    v128.store(c + o, f64x2.add(v128.load(a + o), v128.load(b + o)));
    v128.store(c + o, f64x2.add(v128.load(a + o, 16), v128.load(b + o, 16)), 16);
    v128.store(c + o, f64x2.add(v128.load(a + o, 32), v128.load(b + o, 32)), 32);
    v128.store(c + o, f64x2.add(v128.load(a + o, 48), v128.load(b + o, 48)), 48);
  }
}

export function stream_triad(a: usize, b: usize, c: usize, s: f64, n: i32): void {
  const k = f64x2.splat(s);
  for (let i = 0; i < n; i += 8) {
    const o = <usize>i << 3;
    v128.store(a + o, f64x2.add(v128.load(b + o), f64x2.mul(k, v128.load(c + o))));
    v128.store(a + o, f64x2.add(v128.load(b + o, 16), f64x2.mul(k, v128.load(c + o, 16))), 16);
    v128.store(a + o, f64x2.add(v128.load(b + o, 32), f64x2.mul(k, v128.load(c + o, 32))), 32);
    v128.store(a + o, f64x2.add(v128.load(b + o, 48), f64x2.mul(k, v128.load(c + o, 48))), 48);
  }
}

export function stream_read(a: usize, n: i32): f64 {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  for (let i = 0; i < n; i += 8) {
    const o = <usize>i << 3;
    s0 = f64x2.add(s0, v128.load(a + o));
    s1 = f64x2.add(s1, v128.load(a + o, 16));
    s2 = f64x2.add(s2, v128.load(a + o, 32));
    s3 = f64x2.add(s3, v128.load(a + o, 48));
  }
  return hsum(f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3)));
}

/**
 * Multiply-add throughput probe: `iters` rounds of 12 independent multiply-then-add chains on
 * float32x4 (f32 = 1) or float64x2 vectors, no memory traffic. FLOPs per round: 12 × lanes × 2.
 */
export function flops_probe(iters: i32, seed: f64, f32: i32): f64 {
  return f32 ? hsum32(flopsChains<f32>(iters, seed)) : hsum(flopsChains<f64>(iters, seed));
}

/** The 12 chains of flops_probe on T lanes, summed into one vector. */
@inline function flopsChains<T>(iters: i32, seed: f64): v128 {
  const m = v128.splat<T>(<T>0.999999), d = v128.splat<T>(<T>1e-7);
  let a0 = v128.splat<T>(<T>seed), a1 = v128.splat<T>(<T>seed + 1), a2 = v128.splat<T>(<T>seed + 2), a3 = v128.splat<T>(<T>seed + 3);
  let a4 = v128.splat<T>(<T>seed + 4), a5 = v128.splat<T>(<T>seed + 5), a6 = v128.splat<T>(<T>seed + 6), a7 = v128.splat<T>(<T>seed + 7);
  let a8 = v128.splat<T>(<T>seed + 8), a9 = v128.splat<T>(<T>seed + 9), aa = v128.splat<T>(<T>seed + 10), ab = v128.splat<T>(<T>seed + 11);
  for (let i = 0; i < iters; i++) {
    a0 = v128.add<T>(v128.mul<T>(a0, m), d); a1 = v128.add<T>(v128.mul<T>(a1, m), d); a2 = v128.add<T>(v128.mul<T>(a2, m), d);
    a3 = v128.add<T>(v128.mul<T>(a3, m), d); a4 = v128.add<T>(v128.mul<T>(a4, m), d); a5 = v128.add<T>(v128.mul<T>(a5, m), d);
    a6 = v128.add<T>(v128.mul<T>(a6, m), d); a7 = v128.add<T>(v128.mul<T>(a7, m), d); a8 = v128.add<T>(v128.mul<T>(a8, m), d);
    a9 = v128.add<T>(v128.mul<T>(a9, m), d); aa = v128.add<T>(v128.mul<T>(aa, m), d); ab = v128.add<T>(v128.mul<T>(ab, m), d);
  }
  return v128.add<T>(v128.add<T>(v128.add<T>(v128.add<T>(a0, a1), v128.add<T>(a2, a3)), v128.add<T>(v128.add<T>(a4, a5), v128.add<T>(a6, a7))),
    v128.add<T>(v128.add<T>(a8, a9), v128.add<T>(aa, ab)));
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

// ---------------------------------------------------------------- per-channel coefficients
// For `count` channels of one group (mean, rstd): arrays `stride` entries apart at coef.

/** Forward, float32: m = f32(mean), a = f32(rstd·γ), b = f32(β − (mean − m)·a). */
@inline function prepNormF32(coef: usize, stride: i32, count: i32, mean: f64, rstd: f64, gamma: usize, beta: usize): void {
  const sb = <usize>stride << 2;
  const hi = <f32>mean;
  const lo = mean - <f64>hi;
  for (let i = 0; i < count; i++) {
    const o = <usize>i << 2;
    const a = <f32>(rstd * load<f64>(gamma + (<usize>i << 3)));
    const b = load<f64>(beta + (<usize>i << 3));
    store<f32>(coef + o, hi);
    store<f32>(coef + sb + o, a);
    store<f32>(coef + 2 * sb + o, <f32>(lo == 0 ? b : b - lo * <f64>a));
  }
}

/** Forward, float64: m = mean, a = rstd·γ, b = β. */
@inline function prepNormF64(coef: usize, stride: i32, count: i32, mean: f64, rstd: f64, gamma: usize, beta: usize): void {
  const sb = <usize>stride << 3;
  for (let i = 0; i < count; i++) {
    const o = <usize>i << 3;
    store<f64>(coef + o, mean);
    store<f64>(coef + sb + o, rstd * load<f64>(gamma + o));
    store<f64>(coef + 2 * sb + o, load<f64>(beta + o));
  }
}

/**
 * Input backward for one group: with s1 = Σ γ·ds and s2 = Σ γ·db over its channels and M values,
 * A = rstd·γ, B = −rstd³·s1/M, C0 = −rstd·s2/M; float32 folds the mean's low part into C0.
 */
@inline function prepDx(coef: usize, stride: i32, count: i32, mean: f64, rstd: f64, M: f64, gamma: usize, ds: usize, db: usize, f32out: i32): void {
  let s1: f64 = 0, s2: f64 = 0;
  for (let i = 0; i < count; i++) {
    const o = <usize>i << 3;
    const g = load<f64>(gamma + o);
    s1 += g * load<f64>(ds + o);
    s2 += g * load<f64>(db + o);
  }
  const B = (-rstd * rstd * rstd * s1) / M;
  const C0 = (-rstd * s2) / M;
  if (f32out) {
    const sb = <usize>stride << 2;
    const hi = <f32>mean;
    const lo = mean - <f64>hi;
    const Bf = <f32>B;
    const Cf = <f32>(lo == 0 ? C0 : C0 - lo * <f64>Bf);
    for (let i = 0; i < count; i++) {
      const o = <usize>i << 2;
      store<f32>(coef + o, <f32>(rstd * load<f64>(gamma + (<usize>i << 3))));
      store<f32>(coef + sb + o, Bf);
      store<f32>(coef + 2 * sb + o, Cf);
      store<f32>(coef + 3 * sb + o, hi);
    }
  } else {
    const sb = <usize>stride << 3;
    for (let i = 0; i < count; i++) {
      const o = <usize>i << 3;
      store<f64>(coef + o, rstd * load<f64>(gamma + o));
      store<f64>(coef + sb + o, B);
      store<f64>(coef + 2 * sb + o, C0);
      store<f64>(coef + 3 * sb + o, mean);
    }
  }
}

// One call per item for its G consecutive groups of D channels (NCHW: G = 1): the per-channel arrays
// are `stride` entries apart at coef; mean and rstd point at the groups' float64 statistics;
// gamma, beta, ds and db at the groups' first channel.

export function prep_norm_f32(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, gamma: usize, beta: usize): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>(g * D), go = <usize>g << 3;
    prepNormF32(coef + (c << 2), stride, D, load<f64>(mean + go), load<f64>(rstd + go), gamma + (c << 3), beta + (c << 3));
  }
}

export function prep_norm_f64(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, gamma: usize, beta: usize): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>(g * D), go = <usize>g << 3;
    prepNormF64(coef + (c << 3), stride, D, load<f64>(mean + go), load<f64>(rstd + go), gamma + (c << 3), beta + (c << 3));
  }
}

export function prep_dx(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, M: f64, gamma: usize, ds: usize, db: usize, f32out: i32): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>(g * D), go = <usize>g << 3;
    prepDx(coef + (f32out ? c << 2 : c << 3), stride, D, load<f64>(mean + go), load<f64>(rstd + go), M, gamma + (c << 3), ds + (c << 3), db + (c << 3), f32out);
  }
}

/**
 * NHWC internal gradients of one sample from its summed unit partials (T[C] at sums, Σdy[C] at
 * sums + 8·C): ds = T − mlo·db with mlo the float64 mean's part below its float32 rounding (float32
 * kernels centre on that rounding; 0 for float64), db = Σdy; mean: the sample's G float64 means.
 * With `check`, returns 0 before writing anything if a sum is not finite (a float32 overflow).
 */
export function finish_grad_rows(sums: usize, C: i32, D: i32, mean: usize, f32: i32, check: i32, ds: usize, db: usize): i32 {
  if (check) {
    for (let c = 0; c < 2 * C; c++) if (!isFinite<f64>(load<f64>(sums + (<usize>c << 3)))) return 0;
  }
  const G = D > 0 ? C / D : 0;
  const cb = <usize>C << 3;
  for (let g = 0; g < G; g++) {
    const m = load<f64>(mean + (<usize>g << 3));
    const lo = f32 ? m - <f64><f32>m : 0;
    for (let c = g * D; c < (g + 1) * D; c++) {
      const o = <usize>c << 3;
      const t = load<f64>(sums + o), b = load<f64>(sums + cb + o);
      store<f64>(ds + o, lo == 0 ? t : t - lo * b);
      store<f64>(db + o, b);
    }
  }
  return 1;
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
  groupStrips<i32>(p, rows, C, D, kg, acc, tmp, 0, 0, 0);
}

/**
 * The strips of stats_rows_g_f32 over the rows at xn. Instantiated with FUSE = v128, row r of x is
 * also normalised into y (normRowG with coef) right after row r of xn is summed: the fused step, with
 * the same sums in the same order. (FUSE is a compile-time switch; FUSE = i32 has no normalisation.)
 */
@inline function groupStrips<FUSE>(xn: usize, rows: i32, C: i32, D: i32, kg: usize, acc: usize, tmp: usize, x: usize, y: usize, coef: usize): void {
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
        normRowG(x + xo, y + xo, C, D, coef);
      }
    }
    mergeGroupStrip(base, G, gb, <f64>L * <f64>D, tmp, t2, kg, acc, s2);
  }
}

/** out[c] = Σ_u p[u·stride + c] for c < count, u = 0, 1, … in order (float64; two c per vector). */
export function sum_units(p: usize, units: i32, stride: i32, count: i32, out: usize): void {
  const sb = <usize>stride << 3;
  let c = 0;
  for (; c + 2 <= count; c += 2) {
    const co = <usize>c << 3;
    let s = f64x2.splat(0);
    for (let u = 0; u < units; u++) s = f64x2.add(s, v128.load(p + <usize>u * sb + co));
    v128.store(out + co, s);
  }
  for (; c < count; c++) {
    const co = <usize>c << 3;
    let s: f64 = 0;
    for (let u = 0; u < units; u++) s += load<f64>(p + <usize>u * sb + co);
    store<f64>(out + co, s);
  }
}

/**
 * NHWC forward, software-pipelined: row r of sample n is normalised (norm_rows_g_f32, in place or
 * not) right after row r of sample n+1 is read for its statistics (stats_rows_g_f32's sums, in the
 * same order, so results match the unfused steps bit for bit).
 */
export function fused_rows_g_f32(x: usize, y: usize, xn: usize, rows: i32, C: i32, D: i32, coef: usize, kg: usize, acc: usize, tmp: usize): void {
  groupStrips<v128>(xn, rows, C, D, kg, acc, tmp, x, y, coef);
}
