// Roofline probes: STREAM-style memory bandwidth and multiply-add throughput.

import { hsum, hsum32 } from "./common";

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
