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

// ---------------------------------------------------------------- NCHW forward

/** out[0] = Σ(x−K), out[1] = Σ(x−K)² over n float32 values at p. */
export function stats_run_f32(p: usize, n: i32, K: f64, out: usize): void {
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

/** y = ((x − mhi) − mlo)·a + b over n float32 values. */
export function norm_run_f32(x: usize, y: usize, n: i32, mhi: f32, mlo: f32, a: f32, b: f32): void {
  const vh = f32x4.splat(mhi), vl = f32x4.splat(mlo), va = f32x4.splat(a), vb = f32x4.splat(b);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    const u = v128.load(x + o);
    const w = v128.load(x + o, 16);
    v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.sub(u, vh), vl), va), vb));
    v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.sub(w, vh), vl), va), vb), 16);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, ((load<f32>(x + o) - mhi) - mlo) * a + b);
  }
}

/** y = (x − mean)·a + b over n float64 values. */
export function norm_run_f64(x: usize, y: usize, n: i32, mean: f64, a: f64, b: f64): void {
  const vm = f64x2.splat(mean), va = f64x2.splat(a), vb = f64x2.splat(b);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 3;
    v128.store(y + o, f64x2.add(f64x2.mul(f64x2.sub(v128.load(x + o), vm), va), vb));
    v128.store(y + o, f64x2.add(f64x2.mul(f64x2.sub(v128.load(x + o, 16), vm), va), vb), 16);
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(y + o, (load<f64>(x + o) - mean) * a + b);
  }
}

// ---------------------------------------------------------------- NCHW backward

/** out[0] = Σ dy·(x − mean), out[1] = Σ dy over n float32 values. */
export function grad_run_f32(dy: usize, x: usize, n: i32, mean: f64, out: usize): void {
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

/** dx = dy·A + ((x − mhi) − mlo)·B + C0 over n float32 values. */
export function dx_run_f32(dy: usize, x: usize, dx: usize, n: i32, A: f32, B: f32, C0: f32, mhi: f32, mlo: f32): void {
  const va = f32x4.splat(A), vb = f32x4.splat(B), vc = f32x4.splat(C0);
  const vh = f32x4.splat(mhi), vl = f32x4.splat(mlo);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const d = f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl);
    v128.store(dx + o, f32x4.add(f32x4.add(f32x4.mul(v128.load(dy + o), va), f32x4.mul(d, vb)), vc));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const d = (load<f32>(x + o) - mhi) - mlo;
    store<f32>(dx + o, (load<f32>(dy + o) * A + d * B) + C0);
  }
}

export function dx_run_f64(dy: usize, x: usize, dx: usize, n: i32, A: f64, B: f64, C0: f64, mean: f64): void {
  const va = f64x2.splat(A), vb = f64x2.splat(B), vc = f64x2.splat(C0), vm = f64x2.splat(mean);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    const d = f64x2.sub(v128.load(x + o), vm);
    v128.store(dx + o, f64x2.add(f64x2.add(f64x2.mul(v128.load(dy + o), va), f64x2.mul(d, vb)), vc));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(dx + o, (load<f64>(dy + o) * A + (load<f64>(x + o) - mean) * B) + C0);
  }
}

// ---------------------------------------------------------------- NHWC forward
//
// acc holds 2·C float64: S1 per channel at acc, S2 per channel at acc + 8·C. Each channel's sum
// is accumulated in row order, whichever loop below does it, so results do not depend on how rows
// are blocked. Rows are visited in strips of 4 so the accumulators stay in registers across rows.

export function stats_rows_f32(p: usize, rows: i32, C: i32, kc: usize, acc: usize): void {
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

export function stats_rows_f64(p: usize, rows: i32, C: i32, kc: usize, acc: usize): void {
  const rowBytes = <usize>C << 3;
  const s2 = acc + (<usize>C << 3);
  const C2 = C & ~1;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const base = p + <usize>r * rowBytes;
    for (let c = 0; c < C2; c += 2) {
      const ao = <usize>c << 3;
      const k = v128.load(kc + ao);
      let s = v128.load(acc + ao), q = v128.load(s2 + ao);
      let d = f64x2.sub(v128.load(base + ao), k);
      s = f64x2.add(s, d); q = f64x2.add(q, f64x2.mul(d, d));
      d = f64x2.sub(v128.load(base + rowBytes + ao), k);
      s = f64x2.add(s, d); q = f64x2.add(q, f64x2.mul(d, d));
      d = f64x2.sub(v128.load(base + 2 * rowBytes + ao), k);
      s = f64x2.add(s, d); q = f64x2.add(q, f64x2.mul(d, d));
      d = f64x2.sub(v128.load(base + 3 * rowBytes + ao), k);
      s = f64x2.add(s, d); q = f64x2.add(q, f64x2.mul(d, d));
      v128.store(acc + ao, s); v128.store(s2 + ao, q);
    }
    for (let c = C2; c < C; c++) {
      const ao = <usize>c << 3;
      const k = load<f64>(kc + ao);
      let a = load<f64>(acc + ao), q = load<f64>(s2 + ao);
      for (let j = 0; j < 4; j++) {
        const d = load<f64>(base + <usize>j * rowBytes + ao) - k;
        a += d; q += d * d;
      }
      store<f64>(acc + ao, a); store<f64>(s2 + ao, q);
    }
  }
  for (; r < rows; r++) {
    const base = p + <usize>r * rowBytes;
    for (let c = 0; c < C; c++) {
      const ao = <usize>c << 3;
      const d = load<f64>(base + ao) - load<f64>(kc + ao);
      store<f64>(acc + ao, load<f64>(acc + ao) + d);
      store<f64>(s2 + ao, load<f64>(s2 + ao) + d * d);
    }
  }
}

/** coef: float32 mhi[C], mlo[C], a[C], b[C]. y = ((x − mhi) − mlo)·a + b per channel. */
export function norm_rows_f32(x: usize, y: usize, rows: i32, C: i32, coef: usize): void {
  const cb = <usize>C << 2;
  const C4 = C & ~3;
  for (let r = 0; r < rows; r++) {
    const xo = x + <usize>r * cb, yo = y + <usize>r * cb;
    let c = 0;
    for (; c < C4; c += 4) {
      const o = <usize>c << 2;
      const v = f32x4.sub(f32x4.sub(v128.load(xo + o), v128.load(coef + o)), v128.load(coef + cb + o));
      v128.store(yo + o, f32x4.add(f32x4.mul(v, v128.load(coef + 2 * cb + o)), v128.load(coef + 3 * cb + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const v = (load<f32>(xo + o) - load<f32>(coef + o)) - load<f32>(coef + cb + o);
      store<f32>(yo + o, v * load<f32>(coef + 2 * cb + o) + load<f32>(coef + 3 * cb + o));
    }
  }
}

/** coef: float64 mean[C], a[C], b[C]. */
export function norm_rows_f64(x: usize, y: usize, rows: i32, C: i32, coef: usize): void {
  const cb = <usize>C << 3;
  const C2 = C & ~1;
  for (let r = 0; r < rows; r++) {
    const xo = x + <usize>r * cb, yo = y + <usize>r * cb;
    let c = 0;
    for (; c < C2; c += 2) {
      const o = <usize>c << 3;
      const v = f64x2.sub(v128.load(xo + o), v128.load(coef + o));
      v128.store(yo + o, f64x2.add(f64x2.mul(v, v128.load(coef + cb + o)), v128.load(coef + 2 * cb + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 3;
      store<f64>(yo + o, (load<f64>(xo + o) - load<f64>(coef + o)) * load<f64>(coef + cb + o) + load<f64>(coef + 2 * cb + o));
    }
  }
}

// ---------------------------------------------------------------- NHWC backward
//
// acc: ds per channel at acc, db per channel at acc + 8·C; meanc: float64 mean of each channel's group.

export function grad_rows_f32(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize): void {
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

export function grad_rows_f64(dy: usize, x: usize, rows: i32, C: i32, meanc: usize, acc: usize): void {
  const rowBytes = <usize>C << 3;
  const db = acc + (<usize>C << 3);
  const C2 = C & ~1;
  let r = 0;
  for (; r + 2 <= rows; r += 2) {
    const xb = x + <usize>r * rowBytes, gb = dy + <usize>r * rowBytes;
    for (let c = 0; c < C2; c += 2) {
      const ao = <usize>c << 3;
      const m = v128.load(meanc + ao);
      let s = v128.load(acc + ao), b = v128.load(db + ao);
      let g = v128.load(gb + ao);
      s = f64x2.add(s, f64x2.mul(g, f64x2.sub(v128.load(xb + ao), m)));
      b = f64x2.add(b, g);
      g = v128.load(gb + rowBytes + ao);
      s = f64x2.add(s, f64x2.mul(g, f64x2.sub(v128.load(xb + rowBytes + ao), m)));
      b = f64x2.add(b, g);
      v128.store(acc + ao, s); v128.store(db + ao, b);
    }
    for (let c = C2; c < C; c++) {
      const ao = <usize>c << 3;
      const m = load<f64>(meanc + ao);
      let s = load<f64>(acc + ao), b = load<f64>(db + ao);
      for (let j = 0; j < 2; j++) {
        const g = load<f64>(gb + <usize>j * rowBytes + ao);
        s += g * (load<f64>(xb + <usize>j * rowBytes + ao) - m);
        b += g;
      }
      store<f64>(acc + ao, s); store<f64>(db + ao, b);
    }
  }
  for (; r < rows; r++) {
    const xb = x + <usize>r * rowBytes, gb = dy + <usize>r * rowBytes;
    for (let c = 0; c < C; c++) {
      const ao = <usize>c << 3;
      const g = load<f64>(gb + ao);
      store<f64>(acc + ao, load<f64>(acc + ao) + g * (load<f64>(xb + ao) - load<f64>(meanc + ao)));
      store<f64>(db + ao, load<f64>(db + ao) + g);
    }
  }
}

/** coef: float32 A[C], B[C], C0[C], mhi[C], mlo[C]. */
export function dx_rows_f32(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void {
  const cb = <usize>C << 2;
  const C4 = C & ~3;
  for (let r = 0; r < rows; r++) {
    const ro = <usize>r * cb;
    let c = 0;
    for (; c < C4; c += 4) {
      const o = <usize>c << 2;
      const d = f32x4.sub(f32x4.sub(v128.load(x + ro + o), v128.load(coef + 3 * cb + o)), v128.load(coef + 4 * cb + o));
      const t = f32x4.add(f32x4.mul(v128.load(dy + ro + o), v128.load(coef + o)), f32x4.mul(d, v128.load(coef + cb + o)));
      v128.store(dx + ro + o, f32x4.add(t, v128.load(coef + 2 * cb + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const d = (load<f32>(x + ro + o) - load<f32>(coef + 3 * cb + o)) - load<f32>(coef + 4 * cb + o);
      store<f32>(dx + ro + o, (load<f32>(dy + ro + o) * load<f32>(coef + o) + d * load<f32>(coef + cb + o)) + load<f32>(coef + 2 * cb + o));
    }
  }
}

/** coef: float64 A[C], B[C], C0[C], mean[C]. */
export function dx_rows_f64(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void {
  const cb = <usize>C << 3;
  const C2 = C & ~1;
  for (let r = 0; r < rows; r++) {
    const ro = <usize>r * cb;
    let c = 0;
    for (; c < C2; c += 2) {
      const o = <usize>c << 3;
      const d = f64x2.sub(v128.load(x + ro + o), v128.load(coef + 3 * cb + o));
      const t = f64x2.add(f64x2.mul(v128.load(dy + ro + o), v128.load(coef + o)), f64x2.mul(d, v128.load(coef + cb + o)));
      v128.store(dx + ro + o, f64x2.add(t, v128.load(coef + 2 * cb + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 3;
      const d = load<f64>(x + ro + o) - load<f64>(coef + 3 * cb + o);
      store<f64>(dx + ro + o, (load<f64>(dy + ro + o) * load<f64>(coef + o) + d * load<f64>(coef + cb + o)) + load<f64>(coef + 2 * cb + o));
    }
  }
}
