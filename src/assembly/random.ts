// gradcheck's random inputs, stored as float32, float16 or bfloat16: the seeded normal stream of
// src/checks/random.ts (mulberry32 uniforms, Box–Muller's r·cos) four values at a time.
//
// The stream's values are defined by JavaScript's Math.log and Math.cos, which WebAssembly does
// not have. Here the uniforms are exact (the same integer steps), log and cos are polynomials
// within 2^-47 of the exact functions (as Math.log and Math.cos are, within an ulp), and each value
// v is computed with a bound E on how far it can be from the JavaScript double; it is stored only
// when v − E and v + E round to the same stored value (rounding is monotonic, so the JavaScript
// double rounds to it too). The others (about one in 5000 for float32, the values next to a
// rounding boundary) are left as a NaN the caller looks for, and recomputes with Math.*.

/** mulberry32's increment. */
const MULBERRY: u32 = 0x6d2b79f5;
export const KIND_F32 = 0, KIND_F16 = 1, KIND_BF16 = 2;
/** What a value left for the caller holds: NaN patterns the stream never gives. */
export const PENDING_F32: u32 = 0x7fc00001, PENDING_F16: u32 = 0x7e01, PENDING_BF16: u32 = 0x7fc1;

const TWO_PI: f64 = 6.283185307179586;
const LN2: f64 = 0.6931471805599453;
/** The bound's scale: 2^-40 of |r·scale| + |v|, some 64 times what the polynomials and roundings can differ by. */
const MARGIN: f64 = 9.094947017729282e-13;

/** Halfway between the largest finite bfloat16, (2 − 2^-7)·2^127, and 2^128. */
const BF16_OVERFLOW: f64 = reinterpret<f64>(0x47eff00000000000);

/**
 * The loop's vector constants, kept in memory at `tab` (16 bytes each, written at the start of each
 * call): V8 builds a vector constant from immediates in three instructions, and spills most of them
 * in a loop this long, where a load is one instruction.
 */
const enum K { ManMask, Sqrt2Man, Bias, One, Two, Q5, Q4, Q3, Q2, Q1, Q0, Ln2, Half29, Low30, Angle, C4, C3, C2, C1, C0, MinusHalf,
  S4, S3, S2, S1, S0, I1, I2, I61, Sign, Tiny, Scale, Offset, Margin, MinusTwo, Inv32, Step, Next, PendingF32, Count }
/** Scratch bytes before the pending list: the constants (16 · K.Count = 624) and room to grow (src/kernels/normals.ts reserves as much). */
const TABLE_ROOM: usize = 1024;

@inline function kv(tab: usize, i: K): v128 {
  return v128.load(tab + (<usize>i << 4));
}

@inline function put(tab: usize, i: K, v: v128): void {
  v128.store(tab + (<usize>i << 4), v);
}

function table(tab: usize, scale: f64, offset: f64): void {
  put(tab, K.ManMask, i64x2.splat(0x000fffffffffffff)); put(tab, K.Sqrt2Man, i64x2.splat(0x6a09e667f3bcd)); put(tab, K.Bias, i64x2.splat(1023)); put(tab, K.One, f64x2.splat(1)); put(tab, K.Two, f64x2.splat(2));
  put(tab, K.Q5, f64x2.splat(0.08310909196015825)); put(tab, K.Q4, f64x2.splat(0.09070096860425454)); put(tab, K.Q3, f64x2.splat(0.11111431140992394)); put(tab, K.Q2, f64x2.splat(0.1428571206915346));
  put(tab, K.Q1, f64x2.splat(0.2000000000560328)); put(tab, K.Q0, f64x2.splat(0.3333333333333104)); put(tab, K.Ln2, f64x2.splat(LN2));
  put(tab, K.Half29, i32x4.splat(1 << 29)); put(tab, K.Low30, i32x4.splat(0x3fffffff)); put(tab, K.Angle, f64x2.splat(TWO_PI / 4294967296));
  put(tab, K.C4, f64x2.splat(2.0700600316137956e-9)); put(tab, K.C3, f64x2.splat(-2.755636969376691e-7)); put(tab, K.C2, f64x2.splat(2.4801585210984546e-5)); put(tab, K.C1, f64x2.splat(-0.0013888888887277338));
  put(tab, K.C0, f64x2.splat(0.04166666666666468)); put(tab, K.MinusHalf, f64x2.splat(-0.5));
  put(tab, K.S4, f64x2.splat(2.4805636007901087e-8)); put(tab, K.S3, f64x2.splat(-2.7555990927039767e-6)); put(tab, K.S2, f64x2.splat(0.00019841266916977617)); put(tab, K.S1, f64x2.splat(-0.008333333331079214));
  put(tab, K.S0, f64x2.splat(0.16666666666663885));
  put(tab, K.I1, i32x4.splat(1)); put(tab, K.I2, i32x4.splat(2)); put(tab, K.I61, i32x4.splat(61)); put(tab, K.Sign, i64x2.splat(0x8000000000000000)); put(tab, K.Tiny, f64x2.splat(1e-300));
  put(tab, K.Scale, f64x2.splat(scale)); put(tab, K.Offset, f64x2.splat(offset)); put(tab, K.Margin, f64x2.splat(MARGIN)); put(tab, K.MinusTwo, f64x2.splat(-2)); put(tab, K.Inv32, f64x2.splat(2.3283064365386963e-10));
  put(tab, K.Step, i32x4.splat(MULBERRY * 8)); put(tab, K.Next, i32x4.splat(MULBERRY)); put(tab, K.PendingF32, i32x4.splat(PENDING_F32));
}

/** One step of Horner's scheme: p·z + the constant c. */
@inline function hs(tab: usize, z: v128, p: v128, c: K): v128 {
  return f64x2.add(kv(tab, c), f64x2.mul(z, p));
}

/** mulberry32's output words for four states. */
@inline function mix4(a: v128, tab: usize): v128 {
  let t = i32x4.mul(v128.xor(a, i32x4.shr_u(a, 15)), v128.or(a, kv(tab, K.I1)));
  t = v128.xor(t, i32x4.add(t, i32x4.mul(v128.xor(t, i32x4.shr_u(t, 7)), v128.or(t, kv(tab, K.I61)))));
  return v128.xor(t, i32x4.shr_u(t, 14));
}

/** Lanes 0 and 1 (or 2 and 3, `high`) of unsigned words as uniforms in [0, 1): word / 2^32, exact. */
@inline function uniforms(w: v128, high: bool, tab: usize): v128 {
  const v = high ? v128.shuffle<i32>(w, w, 2, 3, 2, 3) : w;
  return f64x2.mul(f64x2.convert_low_i32x4_u(v), kv(tab, K.Inv32));
}

/**
 * ln u for u in (0, 1]: u = 2^k·m with m in [√½, √2), ln m = 2·atanh(s) = 2s + 2s·z·Q(z), s = (m − 1)/(m + 1),
 * z = s² ≤ 0.0295, Q a Chebyshev fit of degree 5 (error below 2^-45, so ln m's below 2^-50 relative).
 */
@inline function log2x(u: v128, tab: usize): v128 {
  const big = i64x2.gt_s(v128.and(u, kv(tab, K.ManMask)), kv(tab, K.Sqrt2Man)); // mantissa over √2: halve it
  const m = v128.or(v128.and(u, kv(tab, K.ManMask)), i64x2.shl(i64x2.add(kv(tab, K.Bias), big), 52));
  const k = i64x2.sub(i64x2.sub(i64x2.shr_u(u, 52), kv(tab, K.Bias)), big);
  const kd = f64x2.convert_low_i32x4_s(v128.shuffle<i32>(k, k, 0, 2, 0, 2));
  const f = f64x2.sub(m, kv(tab, K.One));
  const s = f64x2.div(f, f64x2.add(kv(tab, K.Two), f));
  const z = f64x2.mul(s, s);
  const q = hs(tab, z, hs(tab, z, hs(tab, z, hs(tab, z, hs(tab, z, kv(tab, K.Q5), K.Q4), K.Q3), K.Q2), K.Q1), K.Q0);
  const s2 = f64x2.add(s, s);
  return f64x2.add(f64x2.mul(kd, kv(tab, K.Ln2)), f64x2.add(s2, f64x2.mul(f64x2.mul(s2, z), q)));
}

/**
 * cos(2π·w/2^32) for two of the uniform words w (lanes 0 and 1 of `w`, or 2 and 3): the quadrant
 * q and the rest r of w·4/2^32 are exact in integers, then ±cos or ±sin of y = 2π·r/2^32, |y| ≤ π/4:
 * cos y = 1 − z/2 + z²·C(z), sin y = y − y·z·S(z), z = y², C and S Chebyshev fits of degree 4 (error
 * below 2^-48). Math.cos takes the angle rounded to a double (2π·u): the two differ by below 2^-51.
 */
@inline function cos2x(w: v128, high: bool, tab: usize): v128 {
  const t = i32x4.add(w, kv(tab, K.Half29));
  const q = i32x4.shr_u(t, 30);
  const r = i32x4.sub(v128.and(t, kv(tab, K.Low30)), kv(tab, K.Half29));
  const y = f64x2.mul(f64x2.convert_low_i32x4_s(high ? v128.shuffle<i32>(r, r, 2, 3, 2, 3) : r), kv(tab, K.Angle));
  const z = f64x2.mul(y, y);
  const c = hs(tab, z, hs(tab, z, hs(tab, z, hs(tab, z, hs(tab, z, hs(tab, z, kv(tab, K.C4), K.C3), K.C2), K.C1), K.C0), K.MinusHalf), K.One);
  const sz = hs(tab, z, hs(tab, z, hs(tab, z, hs(tab, z, kv(tab, K.S4), K.S3), K.S2), K.S1), K.S0);
  const s = f64x2.sub(y, f64x2.mul(f64x2.mul(y, z), sz));
  // quadrant q: cos, −sin, −cos, sin
  const odd = i32x4.ne(v128.and(q, kv(tab, K.I1)), i32x4.splat(0));
  const neg = i32x4.ne(v128.and(i32x4.add(q, kv(tab, K.I1)), kv(tab, K.I2)), i32x4.splat(0));
  const odd2 = high ? i64x2.extend_high_i32x4_s(odd) : i64x2.extend_low_i32x4_s(odd);
  const neg2 = high ? i64x2.extend_high_i32x4_s(neg) : i64x2.extend_low_i32x4_s(neg);
  return v128.xor(v128.bitselect(s, c, odd2), v128.and(neg2, kv(tab, K.Sign)));
}

/** Two values of the stream and their bounds, from `pair` (globals: nothing here allocates). */
let pv: v128 = f64x2.splat(0), pe: v128 = f64x2.splat(0);

/** Two values of the stream from their uniforms u and words w (lanes 0 and 1, or 2 and 3: `high`) into pv, and their bounds E into pe. */
@inline function pair(u: v128, w: v128, high: bool, tab: usize): void {
  const u1 = v128.bitselect(kv(tab, K.Tiny), u, f64x2.eq(u, f64x2.splat(0))); // Math.max(u, 1e-300)
  const S = f64x2.mul(kv(tab, K.Scale), f64x2.sqrt(f64x2.mul(kv(tab, K.MinusTwo), log2x(u1, tab))));
  pv = f64x2.add(kv(tab, K.Offset), f64x2.mul(S, cos2x(w, high, tab)));
  pe = f64x2.mul(kv(tab, K.Margin), f64x2.add(f64x2.abs(S), f64x2.abs(pv)));
}

/** Half (kind F16) or bfloat16 bits of v, rounded to nearest, ties to even, straight from the double (as src/io/float16.ts and bfloat16.ts). */
@inline function narrow(v: f64, half: bool): u32 {
  const sign = <u32>(reinterpret<u64>(v) >>> 48) & 0x8000;
  const a = abs(v);
  const frac = half ? 10 : 7, bias = half ? 15 : 127;
  if (a >= (half ? 65520.0 : BF16_OVERFLOW)) return sign | (half ? 0x7c00 : 0x7f80);
  const e = <i32>(reinterpret<u64>(a) >>> 52) - 1023;
  if (e < 1 - bias) return sign | <u32>nearest(a * reinterpret<f64>(<u64>(1023 + frac + bias - 1) << 52)); // subnormal: units of the last place
  const r = nearest(a * reinterpret<f64>(<u64>(1023 + frac - e) << 52)); // in [2^frac, 2^(frac+1)]: a carry increments the exponent
  return sign | ((<u32>(e + bias) << frac) + <u32>r - (<u32>1 << frac));
}

/** The pending values' indices: where they go, how many fit, how many there are (globals of this call). */
let listAt: usize = 0, listCap: i32 = 0, pending: i32 = 0;

/** Value `i` is pending: count it, and note its index while the list has room. */
@inline function defer(i: i32): void {
  if (pending < listCap) store<u32>(listAt + (<usize>pending << 2), i);
  pending++;
}

/** Stores v (within E of the JavaScript double) as half or bfloat16 at p, or the pending NaN (value i). */
@inline function store16(p: usize, v: f64, E: f64, half: bool, i: i32): void {
  const lo = narrow(v - E, half);
  if (lo == narrow(v + E, half)) store<u16>(p, lo);
  else {
    store<u16>(p, half ? PENDING_F16 : PENDING_BF16);
    defer(i);
  }
}

/**
 * Values [0, n) of the stream whose state is `state` before value 0 (value i uses the states
 * state + (2i+1)·MULBERRY and state + (2i+2)·MULBERRY), as `kind` stores them at `out`, each
 * offset + scale·r·cos. Returns how many were left pending (see above); `scratch` holds the
 * constants (TABLE_ROOM bytes), then the indices (u32) of the first `cap` pending values.
 */
export function normals(out: usize, n: i32, state: u32, scale: f64, offset: f64, kind: i32, scratch: usize, cap: i32): i32 {
  listAt = scratch + TABLE_ROOM;
  listCap = cap;
  pending = 0;
  const tab = scratch;
  table(tab, scale, offset);
  let a = i32x4.add(i32x4.splat(<i32>state), i32x4.mul(i32x4.splat(MULBERRY), i32x4(1, 3, 5, 7)));
  for (let i = 0; i < n; i += 4) {
    const wa = mix4(a, tab), wb = mix4(i32x4.add(a, kv(tab, K.Next)), tab);
    a = i32x4.add(a, kv(tab, K.Step));
    pair(uniforms(wa, false, tab), wb, false, tab);
    const lv = pv, le = pe;
    pair(uniforms(wa, true, tab), wb, true, tab);
    const hv = pv, he = pe;
    const left = n - i;
    if (kind == KIND_F32) {
      const v = v128.shuffle<i32>(f32x4.demote_f64x2_zero(lv), f32x4.demote_f64x2_zero(hv), 0, 1, 4, 5);
      const vl = v128.shuffle<i32>(f32x4.demote_f64x2_zero(f64x2.sub(lv, le)), f32x4.demote_f64x2_zero(f64x2.sub(hv, he)), 0, 1, 4, 5);
      const vh = v128.shuffle<i32>(f32x4.demote_f64x2_zero(f64x2.add(lv, le)), f32x4.demote_f64x2_zero(f64x2.add(hv, he)), 0, 1, 4, 5);
      const ok = i32x4.eq(vl, vh);
      const w = v128.bitselect(v, kv(tab, K.PendingF32), ok);
      const p = out + (<usize>i << 2);
      if (left >= 4) v128.store(p, w);
      else {
        // the last, short block: its lanes one by one
        store<u32>(p, i32x4.extract_lane(w, 0));
        if (left > 1) store<u32>(p, i32x4.extract_lane(w, 1), 4);
        if (left > 2) store<u32>(p, i32x4.extract_lane(w, 2), 8);
      }
      const bad = ~i32x4.bitmask(ok) & ((1 << min(left, 4)) - 1);
      if (bad) for (let l = 0; l < 4; l++) if ((bad >> l) & 1) defer(i + l);
    } else {
      const half = kind == KIND_F16;
      const p = out + (<usize>i << 1);
      store16(p, f64x2.extract_lane(lv, 0), f64x2.extract_lane(le, 0), half, i);
      if (left > 1) store16(p + 2, f64x2.extract_lane(lv, 1), f64x2.extract_lane(le, 1), half, i + 1);
      if (left > 2) store16(p + 4, f64x2.extract_lane(hv, 0), f64x2.extract_lane(he, 0), half, i + 2);
      if (left > 3) store16(p + 6, f64x2.extract_lane(hv, 1), f64x2.extract_lane(he, 1), half, i + 3);
    }
  }
  return pending;
}
