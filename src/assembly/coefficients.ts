// Between the streaming passes: per-channel coefficients from a group's statistics (prep_norm_*,
// prep_dx) and the sum of an item's unit partials (sum_units).

// ---------------------------------------------------------------- per-channel coefficients
// For `count` channels of one group (mean, rstd), `step` entries apart (1: consecutive channels; G:
// interleaved groups, whose channels are g, g + G, …): arrays `stride` entries apart at coef.

/** Forward, float32: m = f32(mean), a = f32(rstd·γ), b = f32(β − (mean − m)·a). */
@inline function prepNormF32(coef: usize, stride: i32, count: i32, step: i32, mean: f64, rstd: f64, gamma: usize, beta: usize): void {
  const sb = <usize>stride << 2;
  const hi = <f32>mean;
  const lo = mean - <f64>hi;
  for (let i = 0; i < count; i++) {
    const o = <usize>(i * step) << 2;
    const a = <f32>(rstd * load<f64>(gamma + (<usize>(i * step) << 3)));
    const b = load<f64>(beta + (<usize>(i * step) << 3));
    store<f32>(coef + o, hi);
    store<f32>(coef + sb + o, a);
    store<f32>(coef + 2 * sb + o, <f32>(lo == 0 ? b : b - lo * <f64>a));
  }
}

/** Forward, float64: m = mean, a = rstd·γ, b = β. */
@inline function prepNormF64(coef: usize, stride: i32, count: i32, step: i32, mean: f64, rstd: f64, gamma: usize, beta: usize): void {
  const sb = <usize>stride << 3;
  for (let i = 0; i < count; i++) {
    const o = <usize>(i * step) << 3;
    store<f64>(coef + o, mean);
    store<f64>(coef + sb + o, rstd * load<f64>(gamma + o));
    store<f64>(coef + 2 * sb + o, load<f64>(beta + o));
  }
}

/**
 * Input backward for one group: with s1 = Σ γ·ds and s2 = Σ γ·db over its channels and M values,
 * A = rstd·γ, B = −rstd³·s1/M, C0 = −rstd·s2/M; float32 folds the mean's low part into C0.
 * rstd = ±∞ (given, or eps = 0 on a constant group) takes A = C0 = 0: the float64 formula's dx is
 * then −sign(S)·sign(x − mean)·∞ where S = Σ γ·dy·x̂ is ±∞, NaN where S is NaN, and with ds as
 * finalizeGrad sets it (±∞ or NaN), B·(x − mean) is just that.
 */
@inline function prepDx(coef: usize, stride: i32, count: i32, step: i32, mean: f64, rstd: f64, M: f64, gamma: usize, ds: usize, db: usize, f32out: i32): void {
  let s1: f64 = 0, s2: f64 = 0;
  for (let i = 0; i < count; i++) {
    const o = <usize>(i * step) << 3;
    const g = load<f64>(gamma + o);
    s1 += g * load<f64>(ds + o);
    s2 += g * load<f64>(db + o);
  }
  const inf = rstd == Infinity || rstd == -Infinity;
  const B = (-rstd * rstd * rstd * s1) / M;
  const C0 = inf ? 0 : (-rstd * s2) / M;
  const r = inf ? 0 : rstd;
  if (f32out) {
    const sb = <usize>stride << 2;
    const hi = <f32>mean;
    const lo = mean - <f64>hi;
    const Bf = <f32>B;
    const Cf = <f32>(lo == 0 ? C0 : C0 - lo * <f64>Bf);
    for (let i = 0; i < count; i++) {
      const o = <usize>(i * step) << 2;
      store<f32>(coef + o, <f32>(r * load<f64>(gamma + (<usize>(i * step) << 3))));
      store<f32>(coef + sb + o, Bf);
      store<f32>(coef + 2 * sb + o, Cf);
      store<f32>(coef + 3 * sb + o, hi);
    }
  } else {
    const sb = <usize>stride << 3;
    for (let i = 0; i < count; i++) {
      const o = <usize>(i * step) << 3;
      store<f64>(coef + o, r * load<f64>(gamma + o));
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
    prepNormF32(coef + (c << 2), stride, D, 1, load<f64>(mean + go), load<f64>(rstd + go), gamma + (c << 3), beta + (c << 3));
  }
}

export function prep_norm_f64(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, gamma: usize, beta: usize): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>(g * D), go = <usize>g << 3;
    prepNormF64(coef + (c << 3), stride, D, 1, load<f64>(mean + go), load<f64>(rstd + go), gamma + (c << 3), beta + (c << 3));
  }
}

export function prep_dx(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, M: f64, gamma: usize, ds: usize, db: usize, f32out: i32): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>(g * D), go = <usize>g << 3;
    prepDx(coef + (f32out ? c << 2 : c << 3), stride, D, 1, load<f64>(mean + go), load<f64>(rstd + go), M, gamma + (c << 3), ds + (c << 3), db + (c << 3), f32out);
  }
}

// Interleaved groups (channel c in group c mod G): one call per sample for its G groups, group g's D
// channels g, g + G, …; mean and rstd point at the sample's G statistics, gamma, beta, ds and db at
// its channel 0, the coefficient arrays (C = G·D entries, `stride` apart) are in channel order.

export function prep_norm_f32_i(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, gamma: usize, beta: usize): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>g, go = <usize>g << 3;
    prepNormF32(coef + (c << 2), stride, D, G, load<f64>(mean + go), load<f64>(rstd + go), gamma + (c << 3), beta + (c << 3));
  }
}

export function prep_norm_f64_i(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, gamma: usize, beta: usize): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>g, go = <usize>g << 3;
    prepNormF64(coef + (c << 3), stride, D, G, load<f64>(mean + go), load<f64>(rstd + go), gamma + (c << 3), beta + (c << 3));
  }
}

export function prep_dx_i(coef: usize, stride: i32, G: i32, D: i32, mean: usize, rstd: usize, M: f64, gamma: usize, ds: usize, db: usize, f32out: i32): void {
  for (let g = 0; g < G; g++) {
    const c = <usize>g, go = <usize>g << 3;
    prepDx(coef + (f32out ? c << 2 : c << 3), stride, D, G, load<f64>(mean + go), load<f64>(rstd + go), M, gamma + (c << 3), ds + (c << 3), db + (c << 3), f32out);
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
