/**
 * Exact IEEE 754 binary16 ("half", NumPy float16) <-> binary32/binary64 conversions.
 *
 * Decoding is exact (every half is representable in float32) and goes through a 65536-entry
 * table. Encoding rounds to nearest, ties to even, directly from the value given — a float64 is
 * rounded once to half, never first to float32 (which would double-round). Overflow gives ±inf,
 * NaN gives a quiet NaN (0x7e00, sign kept when it can be seen), ±0 keep their sign.
 */

/** 2^52: adding then subtracting it rounds a double in [0, 2^52) to an integer, ties to even. */
const RNE_MAGIC = 4503599627370496;
/** Smallest positive normal half, 2^-14. */
const MIN_NORMAL = 6.103515625e-5;
/** Halfway between the largest finite half (65504) and 2^16: this and above round to inf. */
const OVERFLOW = 65520;
/** 2^24: one unit in the last place of a subnormal half is 2^-24. */
const TWO_24 = 16777216;

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Index of the high 32-bit word of a float64 within a Uint32Array view. */
const HI = HOST_LE ? 1 : 0;

/** POW2[e + 14] = 2^(10 - e) for the normal half exponents e in [-14, 15]. */
const POW2: Float64Array = (() => {
  const t = new Float64Array(30);
  for (let e = -14; e <= 15; e++) t[e + 14] = Math.pow(2, 10 - e);
  return t;
})();

let table: Float32Array | undefined;

function buildTable(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const f = h & 0x3ff;
    let v: number;
    if (e === 0) v = sign * f * Math.pow(2, -24);
    else if (e === 31) v = f !== 0 ? NaN : sign * Infinity;
    else v = sign * (1024 + f) * Math.pow(2, e - 25);
    t[h] = v;
  }
  return t;
}

/** Value of the half with bit pattern `bits` (low 16 bits used). Exact. */
export function f16ToF32(bits: number): number {
  return (table ??= buildTable())[bits & 0xffff]!;
}

/**
 * Half bits for a non-negative, finite, non-NaN magnitude `a` < 65520 with float64 high word
 * `hi` (only its exponent field is used). Single rounding, ties to even.
 */
function encodeMagnitude(a: number, hi: number): number {
  if (a < MIN_NORMAL) {
    // Subnormal (or zero): count units of 2^-24. a * 2^24 < 1024 is exact; rounding it to an
    // integer may give 1024 = 0x400, the smallest normal, which is the right encoding.
    return a * TWO_24 + RNE_MAGIC - RNE_MAGIC;
  }
  const e = ((hi >>> 20) & 0x7ff) - 1023; // in [-14, 15]
  // q = a * 2^(10-e) in [1024, 2048), exact; round it to an integer in [1024, 2048].
  const q = a * POW2[e + 14]!;
  const r = q + RNE_MAGIC - RNE_MAGIC;
  // A carry out of the significand (r = 2048) correctly increments the exponent.
  return ((e + 15) << 10) + (r - 1024);
}

const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);

/** Half bits of `value`, rounded to nearest, ties to even, straight from the double. */
export function f32ToF16(value: number): number {
  scratchF64[0] = value;
  const hi = scratchU32[HI]!;
  const sign = (hi >>> 16) & 0x8000;
  if (value !== value) return sign | 0x7e00;
  const a = Math.abs(value);
  if (a >= OVERFLOW) return sign | 0x7c00;
  return sign | encodeMagnitude(a, hi);
}

/** Decode halves `src` into `out[outOffset ...]` (exact). */
export function decodeF16(src: Uint16Array, out: Float32Array | Float64Array, outOffset = 0): void {
  const n = src.length;
  if (outOffset < 0 || outOffset + n > out.length) {
    throw new RangeError(`decodeF16: ${n} values do not fit at offset ${outOffset} of ${out.length}`);
  }
  const t = (table ??= buildTable());
  for (let i = 0; i < n; i++) out[outOffset + i] = t[src[i]!]!;
}

/** Encode `src` into halves at `out[outOffset ...]`, rounding to nearest, ties to even. */
export function encodeF16(src: Float32Array | Float64Array, out: Uint16Array, outOffset = 0): void {
  const n = src.length;
  if (outOffset < 0 || outOffset + n > out.length) {
    throw new RangeError(`encodeF16: ${n} values do not fit at offset ${outOffset} of ${out.length}`);
  }
  if (src instanceof Float32Array) encodeFromF32(src, out, outOffset);
  else encodeFromF64(src, out, outOffset);
}

function encodeFromF32(src: Float32Array, out: Uint16Array, o: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const ax = x & 0x7fffffff;
    let h: number;
    if (ax >= 0x477ff000) {
      // >= 65520, inf or NaN.
      h = ax > 0x7f800000 ? 0x7e00 : 0x7c00;
    } else if (ax < 0x38800000) {
      // Below 2^-14: subnormal half or zero (exact arithmetic, see encodeMagnitude).
      h = Math.abs(src[i]!) * TWO_24 + RNE_MAGIC - RNE_MAGIC;
    } else {
      // Normal: rebias the exponent and round away 13 significand bits, ties to even.
      h = (ax - (112 << 23) + 0xfff + ((ax >>> 13) & 1)) >>> 13;
    }
    out[o + i] = sign | h;
  }
}

function encodeFromF64(src: Float64Array, out: Uint16Array, o: number): void {
  const words = new Uint32Array(src.buffer, src.byteOffset, src.length * 2);
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const v = src[i]!;
    const hi = words[2 * i + HI]!;
    const sign = (hi >>> 16) & 0x8000;
    let h: number;
    if (v !== v) h = 0x7e00;
    else {
      const a = Math.abs(v);
      h = a >= OVERFLOW ? 0x7c00 : encodeMagnitude(a, hi);
    }
    out[o + i] = sign | h;
  }
}

/** New Float32Array holding the (exact) values of the halves in `src`. */
export function f16ArrayToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  decodeF16(src, out);
  return out;
}

/** New Float64Array holding the (exact) values of the halves in `src`. */
export function f16ArrayToFloat64(src: Uint16Array): Float64Array {
  const out = new Float64Array(src.length);
  decodeF16(src, out);
  return out;
}

/** New Uint16Array of half bits for `src` (round to nearest, ties to even). */
export function floatArrayToF16(src: Float32Array | Float64Array): Uint16Array {
  const out = new Uint16Array(src.length);
  encodeF16(src, out);
  return out;
}
