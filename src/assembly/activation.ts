// Activations applied in the kernels' own passes (forward: Y = act(pre); backward: dPre = dY·act'(pre)),
// vectorised: SiLU z·σ(z), GELU z·Φ(z) (erf form) and GELU's tanh form z·σ(2√(2/π)(z + 0.044715z³)),
// and their derivatives, for T = f32 (4 lanes) or f64 (2 lanes). No Math calls: exp and Φ are
// polynomials (coefficients from scripts/fit-activations.py; measured accuracy in docs/activations.md).
//
//   exp(−a):  n = round(−a·log2 e), r = a + n·ln2 (|r| ≤ ln2/2, two-part ln2), exp(−a) = 2ⁿ·(1 − r·q(r)),
//             q of degree 4 (f32) or 10 (f64); 2ⁿ from the integer bits of a magic-number sum. a is
//             clamped to where 2ⁿ is a normal number: beyond it SiLU and tanh-GELU keep the clamped
//             value (the result is then z within float precision, or below 1e-36 in size), GELU flushes to 0.
//   Φ(z):     Q = Φ(−|z|) = u·exp(−z²/2)·P(u − c), u = 1/(1 + p·|z|), P of degree 9 (f32) or 21 (f64);
//             Φ = Q for z < 0, else 1 − Q; φ(z) = exp(−z²/2)/√(2π).
//
// Activations are compile-time tags (AssemblyScript has no value generics): the tag type's size
// picks the function, so a kernel instantiated with NoAct is the plain kernel, operation for
// operation. Runtime codes (the kernels' `act` argument, kernels/plan.ts: ActCode) are 1 silu,
// 2 gelu, 3 gelu-tanh.
//
// The quad functions work on four vectors at once, stage by stage (each stage's four chains are
// independent): V8 emits the operations in source order, and interleaving them like this runs 1.8×
// faster than four vectors one after the other (the out-of-order window cannot overlap 30-operation
// chains). The quads store intermediate exponentials in their output slots and reload them.

export type NoAct = u32;
export type Silu = u8;
export type Gelu = u16;
export type GeluTanh = u64;

@inline export function isAct<A>(): bool { return sizeof<A>() != 4; }
@inline function isSilu<A>(): bool { return sizeof<A>() == 1; }
@inline function isGelu<A>(): bool { return sizeof<A>() == 2; }

@inline function k<T>(c: f64): v128 { return v128.splat<T>(<T>c); }
@inline function add<T>(a: v128, b: v128): v128 { return v128.add<T>(a, b); }
@inline function sub<T>(a: v128, b: v128): v128 { return v128.sub<T>(a, b); }
@inline function mul<T>(a: v128, b: v128): v128 { return v128.mul<T>(a, b); }
/** a·b + c (two roundings: WebAssembly SIMD has no fused multiply-add). */
@inline function mad<T>(a: v128, b: v128, c: v128): v128 { return v128.add<T>(v128.mul<T>(a, b), c); }

// ---------------------------------------------------------------- exp(−a)
// float32: −a ∈ [−87.33, 88] keeps n ∈ [−126, 127]; float64: −a ∈ [−708.39, 709] keeps n ∈ [−1022, 1023].
@inline function expLo<T>(): f64 { return sizeof<T>() == 4 ? -88.0 : -709.0; }
@inline function expHi<T>(): f64 { return sizeof<T>() == 4 ? 87.33654 : 708.39; }
// 1.5·2^23 + 127 and 1.5·2^52 + 1023: adding one rounds a·(−log2 e) to an integer n whose biased
// exponent (n + bias) lands in the sum's low bits
@inline function magic<T>(): f64 { return sizeof<T>() == 4 ? 12583039.0 : 6755399441056767.0; }
// ln2 in two parts: n·LN2_HI is exact for |n| < 2^8 (f32) or 2^11 (f64)
@inline function ln2Hi<T>(): f64 { return sizeof<T>() == 4 ? 0.693145751953125 : 0.6931471803691238; }
@inline function ln2Lo<T>(): f64 { return sizeof<T>() == 4 ? 1.428606765330187e-6 : 1.9082149292705877e-10; }

/** Stage 1: the argument, clamped (pmin/pmax keep a NaN, which is their first operand). */
@inline function expArg<T>(a: v128): v128 {
  return v128.pmin<T>(v128.pmax<T>(a, k<T>(expLo<T>())), k<T>(expHi<T>()));
}
/** Stage 2: a·(−log2 e) + magic, whose low bits are n + bias. */
@inline function expN<T>(a: v128): v128 {
  return mad<T>(a, k<T>(-1.4426950408889634), k<T>(magic<T>()));
}
/** Stage 3: r = a + n·ln2. */
@inline function expR<T>(a: v128, nm: v128): v128 {
  const n = sub<T>(nm, k<T>(magic<T>()));
  return mad<T>(n, k<T>(ln2Lo<T>()), mad<T>(n, k<T>(ln2Hi<T>()), a));
}
/** Stage 4: q(r) ≈ (1 − e^−r)/r. */
@inline function expQ<T>(r: v128): v128 {
  if (sizeof<T>() == 4) {
    let q = mad<T>(k<T>(0.008290316), r, k<T>(-0.041897934));
    q = mad<T>(q, r, k<T>(0.16667636));
    q = mad<T>(q, r, k<T>(-0.4999915));
    return mad<T>(q, r, k<T>(0.9999997));
  }
  let q = mad<T>(k<T>(2.510520637395701e-08), r, k<T>(-2.7626357241447223e-07));
  q = mad<T>(q, r, k<T>(2.7557255425746435e-06));
  q = mad<T>(q, r, k<T>(-2.4801504346997686e-05));
  q = mad<T>(q, r, k<T>(0.00019841269874800493));
  q = mad<T>(q, r, k<T>(-0.0013888888932488599));
  q = mad<T>(q, r, k<T>(0.008333333333326141));
  q = mad<T>(q, r, k<T>(-0.04166666666657314));
  q = mad<T>(q, r, k<T>(0.1666666666666667));
  q = mad<T>(q, r, k<T>(-0.5000000000000006));
  return mad<T>(q, r, k<T>(1.0));
}
/** Stage 5: 2ⁿ·(1 − r·q). */
@inline function expFin<T>(r: v128, q: v128, nm: v128): v128 {
  const s = sizeof<T>() == 4 ? v128.shl<i32>(nm, 23) : v128.shl<i64>(nm, 52);
  return sub<T>(s, mul<T>(mul<T>(r, s), q));
}
/** exp(−a) of one vector. */
@inline function expNeg<T>(a: v128): v128 {
  const x = expArg<T>(a), nm = expN<T>(x), r = expR<T>(x, nm);
  return expFin<T>(r, expQ<T>(r), nm);
}
/** exp(−a_i) of four vectors, stored at p, p + 16, p + 32, p + 48 (a_i clamped by the caller). */
@inline function expNeg4<T>(p: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const n0 = expN<T>(x0), n1 = expN<T>(x1), n2 = expN<T>(x2), n3 = expN<T>(x3);
  const r0 = expR<T>(x0, n0), r1 = expR<T>(x1, n1), r2 = expR<T>(x2, n2), r3 = expR<T>(x3, n3);
  const q0 = expQ<T>(r0), q1 = expQ<T>(r1), q2 = expQ<T>(r2), q3 = expQ<T>(r3);
  v128.store(p, expFin<T>(r0, q0, n0));
  v128.store(p, expFin<T>(r1, q1, n1), 16);
  v128.store(p, expFin<T>(r2, q2, n2), 32);
  v128.store(p, expFin<T>(r3, q3, n3), 48);
}

// ---------------------------------------------------------------- the activations' arguments
// Each activation is f(z, e) of the pre-activation z and e = exp(−a(z)): SiLU a = z; tanh-GELU
// a = w = z·(K1 + K2·z²) = 2√(2/π)(z + 0.044715z³); GELU a = z²/2 (flushed to 0 beyond the range).

const K1: f64 = 1.5957691216057308; // 2·√(2/π)
const K2: f64 = 0.07135481627260025; // 2·√(2/π)·0.044715
/** √(2/π)·0.044715·3·2 = 3·K2, the slope's z² coefficient. */
const K3: f64 = 0.21406444881780073;
const INV_SQRT_2PI: f64 = 0.3989422804014327;
/** Bound on |z| in the tanh-GELU slope (beyond it the slope is 0 or 1 to the precision of T). */
@inline function slopeBound<T>(): f64 { return sizeof<T>() == 4 ? 10.0 : 30.0; }

/** The exponent's argument a(z), clamped. */
@inline function argOf<T, A>(z: v128): v128 {
  if (isSilu<A>()) return expArg<T>(z);
  if (isGelu<A>()) return expArg<T>(mul<T>(mul<T>(z, z), k<T>(0.5)));
  return expArg<T>(mul<T>(z, mad<T>(mul<T>(z, z), k<T>(K2), k<T>(K1))));
}

/** GELU: the flush of exp(−z²/2) where z²/2 is beyond the range (clamped by argOf). */
@inline function geluE<T>(z: v128, e: v128): v128 {
  return v128.andnot(e, v128.gt<T>(mul<T>(mul<T>(z, z), k<T>(0.5)), k<T>(expHi<T>())));
}

/** GELU: Φ(z) from z and E = exp(−z²/2): Q = Φ(−|z|) = u·E·P(u − c), u = 1/(1 + p·|z|). */
@inline function phiOf<T>(z: v128, E: v128): v128 {
  const za = v128.abs<T>(z);
  let Q: v128;
  if (sizeof<T>() == 4) {
    const u = v128.div<T>(k<T>(1), mad<T>(za, k<T>(0.25), k<T>(1)));
    const v = sub<T>(u, k<T>(0.61560696));
    let P = mad<T>(k<T>(0.016088286), v, k<T>(0.029101405));
    P = mad<T>(P, v, k<T>(-0.031240828));
    P = mad<T>(P, v, k<T>(-0.09037947));
    P = mad<T>(P, v, k<T>(0.00846612));
    P = mad<T>(P, v, k<T>(0.26261908));
    P = mad<T>(P, v, k<T>(0.4907894));
    P = mad<T>(P, v, k<T>(0.5366512));
    P = mad<T>(P, v, k<T>(0.40995628));
    P = mad<T>(P, v, k<T>(0.22975454));
    Q = mul<T>(mul<T>(u, E), P);
  } else {
    const u = v128.div<T>(k<T>(1), mad<T>(za, k<T>(0.1875), k<T>(1)));
    const v = sub<T>(u, k<T>(0.5619674670797831));
    let P = mad<T>(k<T>(0.0004589861889261327), v, k<T>(0.0010590084017949612));
    P = mad<T>(P, v, k<T>(-0.001353209241928681));
    P = mad<T>(P, v, k<T>(-0.0028766201340764907));
    P = mad<T>(P, v, k<T>(0.0025790901375202483));
    P = mad<T>(P, v, k<T>(0.005757847695035573));
    P = mad<T>(P, v, k<T>(-0.003909422056248658));
    P = mad<T>(P, v, k<T>(-0.011946471708610086));
    P = mad<T>(P, v, k<T>(0.003177995602306935));
    P = mad<T>(P, v, k<T>(0.026080640704279942));
    P = mad<T>(P, v, k<T>(0.011240301146623756));
    P = mad<T>(P, v, k<T>(-0.04894836482821792));
    P = mad<T>(P, v, k<T>(-0.08283615693693946));
    P = mad<T>(P, v, k<T>(0.006766502838390431));
    P = mad<T>(P, v, k<T>(0.2431332480919022));
    P = mad<T>(P, v, k<T>(0.5382588558263589));
    P = mad<T>(P, v, k<T>(0.7554357324530101));
    P = mad<T>(P, v, k<T>(0.8065327996580706));
    P = mad<T>(P, v, k<T>(0.6983020024587648));
    P = mad<T>(P, v, k<T>(0.5051743138006636));
    P = mad<T>(P, v, k<T>(0.3099349735568705));
    P = mad<T>(P, v, k<T>(0.1622404778358764));
    Q = mul<T>(mul<T>(u, E), P);
  }
  return v128.bitselect(Q, sub<T>(k<T>(1), Q), v128.lt<T>(z, k<T>(0)));
}

/** act(z) from z and e = exp(−a(z)) (the clamped a as computed for e). */
@inline function valueOf<T, A>(z: v128, e: v128): v128 {
  if (isGelu<A>()) return mul<T>(z, phiOf<T>(z, geluE<T>(z, e)));
  return v128.div<T>(z, add<T>(e, k<T>(1))); // z·σ(a) = z/(1 + e^−a)
}

/** act'(z) from z, e = exp(−a(z)) and the clamped a. */
@inline function slopeOf<T, A>(z: v128, e: v128): v128 {
  if (isGelu<A>()) {
    const E = geluE<T>(z, e);
    return mad<T>(mul<T>(z, E), k<T>(INV_SQRT_2PI), phiOf<T>(z, E)); // Φ + z·φ
  }
  const s = v128.div<T>(k<T>(1), add<T>(e, k<T>(1))); // σ
  const es2 = mul<T>(mul<T>(e, s), s); // σ(1 − σ) = e·σ², without 1 − σ's cancellation
  if (isSilu<A>()) return mad<T>(expArg<T>(z), es2, s); // σ + z·σ(1 − σ), z clamped where es2 ≈ 0
  // tanh form: σ(w) + z·σ(w)(1 − σ(w))·w', w' = K1 + 3·K2·z², z bounded where es2·w' ≈ 0
  const b = k<T>(slopeBound<T>());
  const zb = v128.pmin<T>(v128.pmax<T>(z, v128.neg<T>(b)), b);
  return mad<T>(mul<T>(zb, es2), mad<T>(mul<T>(zb, zb), k<T>(K3), k<T>(K1)), s);
}

// ---------------------------------------------------------------- what the kernels call

/** act of one vector. */
@inline export function actVec<T, A>(z: v128): v128 {
  if (!isAct<A>()) return z;
  return valueOf<T, A>(z, expNeg<T>(argOf<T, A>(z)));
}

/** act of one value (lane 0 of actVec: the same operations as the vector loops). */
@inline export function actOne<T, A>(z: T): T {
  if (!isAct<A>()) return z;
  return v128.extract_lane<T>(actVec<T, A>(v128.splat<T>(z)), 0);
}

/** act'(z) of one vector. */
@inline export function slopeVec<T, A>(z: v128): v128 {
  return slopeOf<T, A>(z, expNeg<T>(argOf<T, A>(z)));
}

/** act'(z) of one value. */
@inline export function slopeOne<T, A>(z: T): T {
  return v128.extract_lane<T>(slopeVec<T, A>(v128.splat<T>(z)), 0);
}

/** act(z_i) of four vectors, stored at p + 16·i: the same values as actVec, interleaved. */
@inline export function actQuad<T, A>(p: usize, z0: v128, z1: v128, z2: v128, z3: v128): void {
  if (!isAct<A>()) {
    v128.store(p, z0); v128.store(p, z1, 16); v128.store(p, z2, 32); v128.store(p, z3, 48);
    return;
  }
  expNeg4<T>(p, argOf<T, A>(z0), argOf<T, A>(z1), argOf<T, A>(z2), argOf<T, A>(z3));
  const e0 = v128.load(p), e1 = v128.load(p, 16), e2 = v128.load(p, 32), e3 = v128.load(p, 48);
  v128.store(p, valueOf<T, A>(z0, e0));
  v128.store(p, valueOf<T, A>(z1, e1), 16);
  v128.store(p, valueOf<T, A>(z2, e2), 32);
  v128.store(p, valueOf<T, A>(z3, e3), 48);
}

/** dy_i·act'(z_i) of four vectors, the dy at g + 16·i replaced: the same values as dy·slopeVec. */
@inline export function slopeQuad<T, A>(g: usize, z0: v128, z1: v128, z2: v128, z3: v128): void {
  const d0 = v128.load(g), d1 = v128.load(g, 16), d2 = v128.load(g, 32), d3 = v128.load(g, 48);
  expNeg4<T>(g, argOf<T, A>(z0), argOf<T, A>(z1), argOf<T, A>(z2), argOf<T, A>(z3));
  const e0 = v128.load(g), e1 = v128.load(g, 16), e2 = v128.load(g, 32), e3 = v128.load(g, 48);
  v128.store(g, mul<T>(d0, slopeOf<T, A>(z0, e0)));
  v128.store(g, mul<T>(d1, slopeOf<T, A>(z1, e1)), 16);
  v128.store(g, mul<T>(d2, slopeOf<T, A>(z2, e2)), 32);
  v128.store(g, mul<T>(d3, slopeOf<T, A>(z3, e3)), 48);
}

// ---------------------------------------------------------------- where the loops put it
// The normalisation loops (normalisation.ts) compute pre = (x − m)·a + b and hand it to one of two
// sinks, a compile-time tag E: ToY stores act(pre) at the output (the forward); ToDy replaces the
// upstream gradient there by dy·act'(pre) (the backward through the activation, dpre_*).

export type ToY = u8;
export type ToDy = u16;
@inline function toY<E>(): bool { return sizeof<E>() == 1; }

@inline export function emitQuad<T, A, E>(p: usize, z0: v128, z1: v128, z2: v128, z3: v128): void {
  if (toY<E>()) actQuad<T, A>(p, z0, z1, z2, z3);
  else slopeQuad<T, A>(p, z0, z1, z2, z3);
}

@inline export function emitVec<T, A, E>(p: usize, z: v128): void {
  if (toY<E>()) v128.store(p, actVec<T, A>(z));
  else v128.store(p, v128.mul<T>(v128.load(p), slopeVec<T, A>(z)));
}

@inline export function emitOne<T, A, E>(p: usize, z: T): void {
  if (toY<E>()) store<T>(p, actOne<T, A>(z));
  else store<T>(p, load<T>(p) * slopeOne<T, A>(z));
}

/** A float32 value from a float64 pre-activation (the *_wide and *_mixed loops): computed in float64, rounded once. */
@inline export function emitWide<A, E>(p: usize, z: f64): void {
  if (toY<E>()) store<f32>(p, <f32>actOne<f64, A>(z));
  else store<f32>(p, <f32>(<f64>load<f32>(p) * slopeOne<f64, A>(z)));
}

// ---------------------------------------------------------------- over arrays (tests, accuracy)

@inline function actArray<T, A>(p: usize, n: i32): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  let i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    const q = p + (<usize>i << sh);
    actQuad<T, A>(q, v128.load(q), v128.load(q, 16), v128.load(q, 32), v128.load(q, 48));
  }
  for (; i + lanes <= n; i += lanes) v128.store(p + (<usize>i << sh), actVec<T, A>(v128.load(p + (<usize>i << sh))));
  for (; i < n; i++) store<T>(p + (<usize>i << sh), actOne<T, A>(load<T>(p + (<usize>i << sh))));
}

@inline function slopeArray<T, A>(p: usize, n: i32): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  let i = 0;
  for (; i + lanes <= n; i += lanes) v128.store(p + (<usize>i << sh), slopeVec<T, A>(v128.load(p + (<usize>i << sh))));
  for (; i < n; i++) store<T>(p + (<usize>i << sh), slopeOne<T, A>(load<T>(p + (<usize>i << sh))));
}

/** The primitives over an array, for their accuracy: 4 exp(−z), 5 Φ(z). */
@inline function primitiveArray<T>(p: usize, n: i32, which: i32): void {
  const lanes = <i32>(16 / sizeof<T>()), sh = alignof<T>();
  for (let i = 0; i + lanes <= n; i += lanes) {
    const q = p + (<usize>i << sh), z = v128.load(q);
    if (which == 4) v128.store(q, expNeg<T>(z));
    else v128.store(q, phiOf<T>(z, geluE<T>(z, expNeg<T>(argOf<T, Gelu>(z)))));
  }
}

@inline function overArray<T>(p: usize, n: i32, act: i32, slope: i32): void {
  if (act >= 4) primitiveArray<T>(p, n, act);
  else if (slope) {
    if (act == 1) slopeArray<T, Silu>(p, n);
    else if (act == 2) slopeArray<T, Gelu>(p, n);
    else slopeArray<T, GeluTanh>(p, n);
  } else if (act == 1) actArray<T, Silu>(p, n);
  else if (act == 2) actArray<T, Gelu>(p, n);
  else actArray<T, GeluTanh>(p, n);
}

/**
 * p[i] = act(p[i]), or act'(p[i]) with `slope`, over n float32 (or, with f64, float64) values; act:
 * 1 silu, 2 gelu, 3 gelu-tanh; and for measuring the primitives, 4 exp(−z), 5 Φ(z) (n a multiple
 * of the lanes; exp's z within its clamp).
 */
export function act_array(p: usize, n: i32, act: i32, f64: i32, slope: i32): void {
  if (f64) overArray<f64>(p, n, act, slope);
  else overArray<f32>(p, n, act, slope);
}
