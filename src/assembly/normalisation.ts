// Forward normalisation: y = (x − m)·a + b with the per-channel m, a, b that prep_norm_* write
// (coefficients.ts); NCHW runs, NHWC rows, and NHWC rows with D a multiple of 4 (normRowG, which
// the fused step in statistics.ts also uses). With an activation A (activation.ts), y = act(that),
// in the same loops (*_act exports, `act` the runtime code); with NoAct they are the plain loops.
// The same loops with the sink ToDy instead of ToY are the backward's dy ← dy·act'(pre) (dpre_*,
// used alone and inside the fused gradient kernels, gradients.ts).

import { emitOne, emitQuad, emitVec, emitWide, Gelu, GeluTanh, NoAct, Silu, ToDy, ToY } from "./activation";

// ---------------------------------------------------------------- normalisation
// One loop for both precisions, T = f32 or f64: v128.op<T> works on 4 float32 or 2 float64 lanes and
// alignof<T>() is log2 of the element size. Float32 callers pass the float32 high part of the mean as
// m and fold its low part into b (forward) or C0 (backward). Loops take four vectors per step by
// constant offsets, then single vectors, then single values; a splat used by two loops is computed
// once before them (V8 re-broadcasts a splat that only one loop uses in every iteration).

/** y = act((x − m)·a + b) over n values (E = ToDy: y ← y·act'(that)). */
@inline export function normRun<T, A, E>(x: usize, y: usize, n: i32, m: T, a: T, b: T): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  const vm = v128.splat<T>(m), va = v128.splat<T>(a), vb = v128.splat<T>(b);
  let i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    const px = x + (<usize>i << sh), py = y + (<usize>i << sh);
    const z0 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px), vm), va), vb);
    const z1 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px, 16), vm), va), vb);
    const z2 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px, 32), vm), va), vb);
    const z3 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(px, 48), vm), va), vb);
    emitQuad<T, A, E>(py, z0, z1, z2, z3);
  }
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << sh;
    emitVec<T, A, E>(y + o, v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(x + o), vm), va), vb));
  }
  for (; i < n; i++) {
    const o = <usize>i << sh;
    emitOne<T, A, E>(y + o, (load<T>(x + o) - m) * a + b);
  }
}

/**
 * NCHW: nch consecutive channel runs of len values; coef holds the per-channel m[], a[], b[]
 * `stride` entries apart, index 0 = the first of these channels.
 */
@inline function normChan<T, A, E>(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  const sh = alignof<T>(), sb = <usize>stride << sh;
  for (let k = 0; k < nch; k++) {
    const o = <usize>k * <usize>len << sh, co = <usize>k << sh;
    normRun<T, A, E>(x + o, y + o, len, load<T>(coef + co), load<T>(coef + sb + co), load<T>(coef + 2 * sb + co));
  }
}

/** NHWC: rows of C channels; coef holds the per-channel m[C], a[C], b[C]. */
@inline export function normRows<T, A, E>(x: usize, y: usize, rows: i32, C: i32, coef: usize): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  const cb = <usize>C << sh;
  const v4 = <usize>(C & ~(4 * lanes - 1)) << sh, v1 = <usize>(C & ~(lanes - 1)) << sh;
  let pv = x, po = y;
  for (let r = 0; r < rows; r++) {
    let o: usize = 0;
    for (; o < v4; o += 64) {
      const v = pv + o, m = coef + o, a = m + cb, b = a + cb;
      const z0 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v), v128.load(m)), v128.load(a)), v128.load(b));
      const z1 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v, 16), v128.load(m, 16)), v128.load(a, 16)), v128.load(b, 16));
      const z2 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v, 32), v128.load(m, 32)), v128.load(a, 32)), v128.load(b, 32));
      const z3 = v128.add<T>(v128.mul<T>(v128.sub<T>(v128.load(v, 48), v128.load(m, 48)), v128.load(a, 48)), v128.load(b, 48));
      emitQuad<T, A, E>(po + o, z0, z1, z2, z3);
    }
    for (; o < v1; o += 16) {
      const v = v128.sub<T>(v128.load(pv + o), v128.load(coef + o));
      emitVec<T, A, E>(po + o, v128.add<T>(v128.mul<T>(v, v128.load(coef + cb + o)), v128.load(coef + 2 * cb + o)));
    }
    for (; o < cb; o += sizeof<T>()) {
      emitOne<T, A, E>(po + o, (load<T>(pv + o) - load<T>(coef + o)) * load<T>(coef + cb + o) + load<T>(coef + 2 * cb + o));
    }
    pv += cb; po += cb;
  }
}

export function norm_chan_f32(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void { normChan<f32, NoAct, ToY>(x, y, len, nch, coef, stride); }
export function norm_chan_f64(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void { normChan<f64, NoAct, ToY>(x, y, len, nch, coef, stride); }
export function norm_rows_f32(x: usize, y: usize, rows: i32, C: i32, coef: usize): void { normRows<f32, NoAct, ToY>(x, y, rows, C, coef); }
export function norm_rows_f64(x: usize, y: usize, rows: i32, C: i32, coef: usize): void { normRows<f64, NoAct, ToY>(x, y, rows, C, coef); }

export function norm_chan_f32_act(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32, act: i32): void {
  if (act == 1) normChan<f32, Silu, ToY>(x, y, len, nch, coef, stride);
  else if (act == 2) normChan<f32, Gelu, ToY>(x, y, len, nch, coef, stride);
  else normChan<f32, GeluTanh, ToY>(x, y, len, nch, coef, stride);
}
export function norm_chan_f64_act(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32, act: i32): void {
  if (act == 1) normChan<f64, Silu, ToY>(x, y, len, nch, coef, stride);
  else if (act == 2) normChan<f64, Gelu, ToY>(x, y, len, nch, coef, stride);
  else normChan<f64, GeluTanh, ToY>(x, y, len, nch, coef, stride);
}
export function norm_rows_f32_act(x: usize, y: usize, rows: i32, C: i32, coef: usize, act: i32): void {
  if (act == 1) normRows<f32, Silu, ToY>(x, y, rows, C, coef);
  else if (act == 2) normRows<f32, Gelu, ToY>(x, y, rows, C, coef);
  else normRows<f32, GeluTanh, ToY>(x, y, rows, C, coef);
}
export function norm_rows_f64_act(x: usize, y: usize, rows: i32, C: i32, coef: usize, act: i32): void {
  if (act == 1) normRows<f64, Silu, ToY>(x, y, rows, C, coef);
  else if (act == 2) normRows<f64, Gelu, ToY>(x, y, rows, C, coef);
  else normRows<f64, GeluTanh, ToY>(x, y, rows, C, coef);
}

/**
 * One row of norm_rows_f32 for D a multiple of 4: m is constant over a group (loaded once per group),
 * a and b are read per channel; pointer walks with constant offsets. Same operations in the same
 * order as norm_rows_f32, so bitwise the same values.
 */
@inline export function normRowG<A>(v: usize, o: usize, C: i32, D: i32, coef: usize): void {
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
        const z0 = f32x4.add(f32x4.mul(d0, v128.load(pa)), v128.load(pa + cb));
        const z1 = f32x4.add(f32x4.mul(d1, v128.load(pa, 16)), v128.load(pa + cb, 16));
        const z2 = f32x4.add(f32x4.mul(d2, v128.load(pa, 32)), v128.load(pa + cb, 32));
        const z3 = f32x4.add(f32x4.mul(d3, v128.load(pa, 48)), v128.load(pa + cb, 48));
        emitQuad<f32, A, ToY>(po, z0, z1, z2, z3);
        pv += 64; po += 64; pa += 64;
      } while (pv < end);
    } else {
      do {
        emitVec<f32, A, ToY>(po, f32x4.add(f32x4.mul(f32x4.sub(v128.load(pv), m), v128.load(pa)), v128.load(pa + cb)));
        pv += 16; po += 16; pa += 16;
      } while (pv < end);
    }
  }
}

@inline function normRowsG<A>(x: usize, y: usize, rows: i32, C: i32, D: i32, coef: usize): void {
  const cb = <usize>C << 2;
  for (let r = 0; r < rows; r++) {
    const ro = <usize>r * cb;
    normRowG<A>(x + ro, y + ro, C, D, coef);
  }
}

/** norm_rows_f32 for D a multiple of 4 (see normRowG). */
export function norm_rows_g_f32(x: usize, y: usize, rows: i32, C: i32, D: i32, coef: usize): void {
  normRowsG<NoAct>(x, y, rows, C, D, coef);
}

export function norm_rows_g_f32_act(x: usize, y: usize, rows: i32, C: i32, D: i32, coef: usize, act: i32): void {
  if (act == 1) normRowsG<Silu>(x, y, rows, C, D, coef);
  else if (act == 2) normRowsG<Gelu>(x, y, rows, C, D, coef);
  else normRowsG<GeluTanh>(x, y, rows, C, D, coef);
}

// ---------------------------------------------------------------- float32 values, float64 arithmetic
// For groups whose values or coefficients are beyond what the float32 loops keep exact (values near
// the float32 range, spreads near its subnormals, eps = 0 on near-constant groups): y is computed in
// float64 from float64 coefficients (prep_norm_f64) and rounded once to float32. Scalar: such groups
// are rare, and the point is the exact result.

/** NCHW: as norm_chan_f32, with float64 m[], a[], b[] at coef, `stride` entries apart. */
@inline function normChanWide<A, E>(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  const sb = <usize>stride << 3;
  for (let k = 0; k < nch; k++) {
    const co = <usize>k << 3;
    const m = load<f64>(coef + co), a = load<f64>(coef + sb + co), b = load<f64>(coef + 2 * sb + co);
    const o = <usize>k * <usize>len << 2;
    for (let i = 0; i < len; i++) {
      const p = o + (<usize>i << 2);
      emitWide<A, E>(y + p, (<f64>load<f32>(x + p) - m) * a + b);
    }
  }
}

export function norm_chan_f32_wide(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32): void {
  normChanWide<NoAct, ToY>(x, y, len, nch, coef, stride);
}

export function norm_chan_f32_wide_act(x: usize, y: usize, len: i32, nch: i32, coef: usize, stride: i32, act: i32): void {
  if (act == 1) normChanWide<Silu, ToY>(x, y, len, nch, coef, stride);
  else if (act == 2) normChanWide<Gelu, ToY>(x, y, len, nch, coef, stride);
  else normChanWide<GeluTanh, ToY>(x, y, len, nch, coef, stride);
}

/**
 * NHWC: rows of C channels in G groups of D, coef holding float64 m[C], a[C], b[C]. The groups with
 * wide[g] ≠ 0 (float64 0/1) in float64 as norm_chan_f32_wide; the others hold float32 coefficients
 * (prep_norm_f32's, exactly) and run float32 operations in norm_rows_f32's order, so they get
 * bitwise the values the fast loops give them: one group needing float64 leaves its neighbours as
 * they are.
 */
@inline function normRowsMixed<A, E>(x: usize, y: usize, rows: i32, C: i32, G: i32, D: i32, coef: usize, wide: usize): void {
  const cb = <usize>C << 3;
  for (let r = 0; r < rows; r++) {
    const ro = (<usize>r * <usize>C) << 2;
    for (let g = 0; g < G; g++) {
      const w = load<f64>(wide + (<usize>g << 3)) != 0;
      for (let c = g * D; c < (g + 1) * D; c++) {
        const p = ro + (<usize>c << 2), co = <usize>c << 3;
        const m = load<f64>(coef + co), a = load<f64>(coef + cb + co), b = load<f64>(coef + 2 * cb + co);
        if (w) emitWide<A, E>(y + p, (<f64>load<f32>(x + p) - m) * a + b);
        else emitOne<f32, A, E>(y + p, (load<f32>(x + p) - <f32>m) * <f32>a + <f32>b);
      }
    }
  }
}

export function norm_rows_f32_mixed(x: usize, y: usize, rows: i32, C: i32, G: i32, D: i32, coef: usize, wide: usize): void {
  normRowsMixed<NoAct, ToY>(x, y, rows, C, G, D, coef, wide);
}

export function norm_rows_f32_mixed_act(x: usize, y: usize, rows: i32, C: i32, G: i32, D: i32, coef: usize, wide: usize, act: i32): void {
  if (act == 1) normRowsMixed<Silu, ToY>(x, y, rows, C, G, D, coef, wide);
  else if (act == 2) normRowsMixed<Gelu, ToY>(x, y, rows, C, G, D, coef, wide);
  else normRowsMixed<GeluTanh, ToY>(x, y, rows, C, G, D, coef, wide);
}

// ---------------------------------------------------------------- backward through an activation
// dy ← dy·act'(pre) alone, over a unit (the loops above with the ToDy sink: y is dy): for an item
// streamed in chunks, whose passes read dy afresh, and for units with float64 coefficients. The
// fused gradient kernels (gradients.ts: grad_*_act) apply the same loops block by block.

export function dpre_chan_f32(dy: usize, x: usize, len: i32, nch: i32, coef: usize, stride: i32, act: i32): void {
  if (act == 1) normChan<f32, Silu, ToDy>(x, dy, len, nch, coef, stride);
  else if (act == 2) normChan<f32, Gelu, ToDy>(x, dy, len, nch, coef, stride);
  else normChan<f32, GeluTanh, ToDy>(x, dy, len, nch, coef, stride);
}
export function dpre_chan_f64(dy: usize, x: usize, len: i32, nch: i32, coef: usize, stride: i32, act: i32): void {
  if (act == 1) normChan<f64, Silu, ToDy>(x, dy, len, nch, coef, stride);
  else if (act == 2) normChan<f64, Gelu, ToDy>(x, dy, len, nch, coef, stride);
  else normChan<f64, GeluTanh, ToDy>(x, dy, len, nch, coef, stride);
}
export function dpre_chan_f32_wide(dy: usize, x: usize, len: i32, nch: i32, coef: usize, stride: i32, act: i32): void {
  if (act == 1) normChanWide<Silu, ToDy>(x, dy, len, nch, coef, stride);
  else if (act == 2) normChanWide<Gelu, ToDy>(x, dy, len, nch, coef, stride);
  else normChanWide<GeluTanh, ToDy>(x, dy, len, nch, coef, stride);
}
export function dpre_rows_f32(dy: usize, x: usize, rows: i32, C: i32, coef: usize, act: i32): void {
  if (act == 1) normRows<f32, Silu, ToDy>(x, dy, rows, C, coef);
  else if (act == 2) normRows<f32, Gelu, ToDy>(x, dy, rows, C, coef);
  else normRows<f32, GeluTanh, ToDy>(x, dy, rows, C, coef);
}
export function dpre_rows_f64(dy: usize, x: usize, rows: i32, C: i32, coef: usize, act: i32): void {
  if (act == 1) normRows<f64, Silu, ToDy>(x, dy, rows, C, coef);
  else if (act == 2) normRows<f64, Gelu, ToDy>(x, dy, rows, C, coef);
  else normRows<f64, GeluTanh, ToDy>(x, dy, rows, C, coef);
}
export function dpre_rows_f32_mixed(dy: usize, x: usize, rows: i32, C: i32, G: i32, D: i32, coef: usize, wide: usize, act: i32): void {
  if (act == 1) normRowsMixed<Silu, ToDy>(x, dy, rows, C, G, D, coef, wide);
  else if (act == 2) normRowsMixed<Gelu, ToDy>(x, dy, rows, C, G, D, coef, wide);
  else normRowsMixed<GeluTanh, ToDy>(x, dy, rows, C, G, D, coef, wide);
}
