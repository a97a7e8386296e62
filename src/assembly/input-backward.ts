// Input backward: dx = A·dy + B·(x − mean) + C0 with the per-channel A, B, C0, m that prep_dx
// writes (coefficients.ts); NCHW runs, NHWC rows, and NHWC rows with D a multiple of 4.

// ---------------------------------------------------------------- input backward
// One loop for both precisions, T = f32 or f64: v128.op<T> works on 4 float32 or 2 float64 lanes and
// alignof<T>() is log2 of the element size. Float32 callers pass the float32 high part of the mean as
// m and fold its low part into b (forward) or C0 (backward). Loops take four vectors per step by
// constant offsets, then single vectors, then single values; a splat used by two loops is computed
// once before them (V8 re-broadcasts a splat that only one loop uses in every iteration).

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

/** NCHW, as normChan: coef holds A[], B[], C0[], m[]. */
@inline function dxChan<T>(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  const sh = alignof<T>(), sb = <usize>stride << sh;
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << sh, co = <usize>k << sh;
    dxRun<T>(dy + o, x + o, dx + o, len, load<T>(coef + co), load<T>(coef + sb + co), load<T>(coef + 2 * sb + co), load<T>(coef + 3 * sb + co));
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

export function dx_chan_f32(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void { dxChan<f32>(dy, x, dx, len, nch, coef, stride); }
export function dx_chan_f64(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void { dxChan<f64>(dy, x, dx, len, nch, coef, stride); }
export function dx_rows_f32(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void { dxRows<f32>(dy, x, dx, rows, C, coef); }
export function dx_rows_f64(dy: usize, x: usize, dx: usize, rows: i32, C: i32, coef: usize): void { dxRows<f64>(dy, x, dx, rows, C, coef); }

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

// ---------------------------------------------------------------- float32 values, float64 arithmetic
// As the forward's *_f32_wide (normalisation.ts): dx in float64 from float64 A, B, C0, m (prep_dx
// with f32out = 0), the same operations in the same order as dxRun, rounded once to float32.

/** NCHW: as dx_chan_f32, with float64 A[], B[], C0[], m[] at coef, `stride` entries apart. */
export function dx_chan_f32_wide(dy: usize, x: usize, dx: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  const sb = <usize>stride << 3;
  for (let k = 0; k < nch; k++) {
    const co = <usize>k << 3;
    const A = load<f64>(coef + co), B = load<f64>(coef + sb + co), C0 = load<f64>(coef + 2 * sb + co), m = load<f64>(coef + 3 * sb + co);
    const o = <usize>k * <usize>len << 2;
    for (let i = 0; i < len; i++) {
      const p = o + (<usize>i << 2);
      store<f32>(dx + p, <f32>((<f64>load<f32>(dy + p) * A + (<f64>load<f32>(x + p) - m) * B) + C0));
    }
  }
}

/**
 * NHWC: rows of C channels in G groups of D, coef holding float64 A[C], B[C], C0[C], m[C]. The
 * groups with wide[g] ≠ 0 (float64 0/1) in float64 as dx_chan_f32_wide; the others hold float32
 * coefficients (prep_dx's with f32out, exactly) and run float32 operations in dx_rows_f32's order,
 * so they get bitwise the values the fast loops give them.
 */
export function dx_rows_f32_mixed(dy: usize, x: usize, dx: usize, rows: i32, C: i32, G: i32, D: i32, coef: usize, wide: usize): void {
  const cb = <usize>C << 3;
  for (let r = 0; r < rows; r++) {
    const ro = (<usize>r * <usize>C) << 2;
    for (let g = 0; g < G; g++) {
      const w = load<f64>(wide + (<usize>g << 3)) != 0;
      for (let c = g * D; c < (g + 1) * D; c++) {
        const p = ro + (<usize>c << 2), co = <usize>c << 3;
        const A = load<f64>(coef + co), B = load<f64>(coef + cb + co), C0 = load<f64>(coef + 2 * cb + co), m = load<f64>(coef + 3 * cb + co);
        if (w) store<f32>(dx + p, <f32>((<f64>load<f32>(dy + p) * A + (<f64>load<f32>(x + p) - m) * B) + C0));
        else store<f32>(dx + p, (load<f32>(dy + p) * <f32>A + (load<f32>(x + p) - <f32>m) * <f32>B) + <f32>C0);
      }
    }
  }
}
