/** Encoding a .npy header for a little-endian C-order array, byte-identical to NumPy's. */
import type { Dtype } from "../../core/dtype.js";
import { ARRAY_ALIGN, DESCR_LE, GROWTH_AXIS_MAX_DIGITS, MAGIC, shapeRepr } from "./format.js";

export function checkShape(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`invalid shape ${shapeRepr(shape)}: dimensions must be non-negative integers`);
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) throw new RangeError(`shape ${shapeRepr(shape)} has too many elements`);
  return size;
}

/**
 * Header bytes (magic through the final '\n') for a little-endian C-order array, byte-identical to
 * what NumPy writes: keys sorted, NumPy's spare "growth" spaces, padded with spaces and a '\n' so
 * the data starts at a multiple of 64 bytes; version 1.0 unless the header needs 2.0.
 */
export function encodeNpyHeader(dtype: Dtype, shape: readonly number[]): Uint8Array {
  checkShape(shape);
  if (dtype === "bfloat16") throw new RangeError("encodeNpyHeader: NumPy's .npy has no bfloat16");
  let dict = `{'descr': '${DESCR_LE[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const hlen = dict.length + 1; // + '\n'
  let prefix = 10;
  let padlen = ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
  if (hlen + padlen > 0xffff) {
    prefix = 12;
    padlen = ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
  }
  const total = prefix + hlen + padlen;
  const out = new Uint8Array(total);
  out.set(MAGIC);
  out[6] = prefix === 10 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (prefix === 10) dv.setUint16(8, hlen + padlen, true);
  else dv.setUint32(8, hlen + padlen, true);
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  out.fill(0x20, prefix + dict.length, total - 1);
  out[total - 1] = 0x0a;
  return out;
}
