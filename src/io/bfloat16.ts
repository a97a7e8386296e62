/**
 * bfloat16 ("brain float": the top half of an IEEE float32, 8 exponent bits and 7 significand
 * bits) <-> float32/float64. Decoding is exact (bits << 16). Encoding rounds to nearest, ties to
 * even, once, straight from the value given: a float64 is never first rounded to float32 (which
 * would double-round). Overflow gives ±inf, NaN a quiet NaN (0x7fc0, sign kept), ±0 keep their sign,
 * and values below the smallest normal round among the subnormals as float32's do.
 */

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Index of the high 32-bit word of a float64 within a Uint32Array view. */
const HI = HOST_LE ? 1 : 0;
/** 2^52: adding then subtracting it rounds a double in [0, 2^52) to an integer, ties to even. */
const RNE_MAGIC = 4503599627370496;
/** Smallest positive normal bfloat16 (and float32), 2^-126. */
const MIN_NORMAL = 2 ** -126;
/** Halfway between the largest finite bfloat16 ((2 − 2^-7)·2^127) and 2^128: this and above round to inf. */
const OVERFLOW = (2 - 2 ** -8) * 2 ** 127;
/** One unit in the last place of a subnormal bfloat16 is 2^-133. */
const TWO_133 = 2 ** 133;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Value of the bfloat16 with bit pattern `bits` (low 16 bits used). Exact. */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** Decode bfloat16 bits `src` into `out[outOffset ...]` (exact). */
export function decodeBF16(src: Uint16Array, out: Float32Array | Float64Array, outOffset = 0): void {
  const n = src.length;
  if (outOffset < 0 || outOffset + n > out.length) throw new RangeError(`decodeBF16: ${n} values do not fit at offset ${outOffset} of ${out.length}`);
  if (out instanceof Float32Array) {
    // widen in place through the float32 bit patterns
    const bits = new Uint32Array(out.buffer, out.byteOffset + 4 * outOffset, n);
    for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
    return;
  }
  for (let i = 0; i < n; i++) {
    u32[0] = src[i]! << 16;
    out[outOffset + i] = f32[0]!;
  }
}

const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);

/** bfloat16 bits of a float64 `value`, rounded to nearest, ties to even, straight from the double. */
export function f64ToBF16(value: number): number {
  scratchF64[0] = value;
  const hi = scratchU32[HI]!;
  const sign = (hi >>> 16) & 0x8000;
  if (value !== value) return sign | 0x7fc0;
  const a = Math.abs(value);
  if (a >= OVERFLOW) return sign | 0x7f80;
  if (a < MIN_NORMAL) {
    // subnormal (or zero): units of 2^-133, a·2^133 < 128 exact; 128 = 0x80 is the smallest normal
    return sign | (a * TWO_133 + RNE_MAGIC - RNE_MAGIC);
  }
  const e = ((hi >>> 20) & 0x7ff) - 1023; // in [-126, 127]
  // q = a·2^(7−e) in [128, 256), exact; rounding it may carry to 256, which increments the exponent
  const q = a * 2 ** (7 - e);
  const r = q + RNE_MAGIC - RNE_MAGIC;
  return sign | (((e + 127) << 7) + (r - 128));
}

/** Encode `src` into bfloat16 bits at `out[outOffset ...]`, rounding to nearest, ties to even. */
export function encodeBF16(src: Float32Array | Float64Array, out: Uint16Array, outOffset = 0): void {
  const n = src.length;
  if (outOffset < 0 || outOffset + n > out.length) throw new RangeError(`encodeBF16: ${n} values do not fit at offset ${outOffset} of ${out.length}`);
  if (src instanceof Float64Array) {
    for (let i = 0; i < n; i++) out[outOffset + i] = f64ToBF16(src[i]!);
    return;
  }
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = bits[i]!;
    // NaN stays a quiet NaN; else round away the low 16 bits, ties to even (a carry into the
    // exponent is right, up to inf)
    out[outOffset + i] = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) & 0x8000) | 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

/** New Float32Array holding the (exact) values of the bfloat16 bits in `src`. */
export function bf16ArrayToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  decodeBF16(src, out);
  return out;
}

/** New Uint16Array of bfloat16 bits for `src` (round to nearest, ties to even). */
export function floatArrayToBF16(src: Float32Array | Float64Array): Uint16Array {
  const out = new Uint16Array(src.length);
  encodeBF16(src, out);
  return out;
}
