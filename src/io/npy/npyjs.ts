/**
 * The one place npyjs is used. Its \`load(path)\` calls fetch and its \`parse\` ignores byteOffset,
 * byte order and Fortran order and never checks the data length, so the tool reads files itself and
 * uses npyjs only as a second, independent reading of the header dictionary.
 */
import { parse as npyjsParse } from "npyjs";
import { InputError } from "../../errors.js";
import { ARRAY_ALIGN, DESCR_LE, MAGIC, type NpyDtype, shapeRepr } from "./format.js";
import type { ParsedDict } from "./header.js";


/**
 * Parse the same dictionary with npyjs and require agreement. npyjs is given a header-only buffer
 * holding our dict text with the descr rewritten little-endian (npyjs rejects '>' and '='; byte
 * order was already established by the strict parser) and re-padded to 64 bytes (npyjs builds a
 * typed array at the data offset, which must be aligned).
 */
export function crossCheckWithNpyjs(major: number, body: string, d: ParsedDict, path: string): void {
  const [ds, de] = d.descrSpan;
  // the byte order and dtype are the strict parser's; npyjs checks the shape and order (any descr it knows will do)
  const descr = DESCR_LE[(d.element.dtype ?? "float64") as NpyDtype];
  const dict = body.slice(0, ds) + `'${descr}'` + body.slice(de, d.dictEnd);
  const prefix = major === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / ARRAY_ALIGN) * ARRAY_ALIGN;
  const hlen = total - prefix;
  const buf = new ArrayBuffer(total);
  const u8 = new Uint8Array(buf);
  u8.set(MAGIC);
  u8[6] = major;
  u8[7] = 0;
  const dv = new DataView(buf);
  if (major === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  u8.fill(0x20, prefix, total - 1);
  for (let i = 0; i < dict.length; i++) u8[prefix + i] = dict.charCodeAt(i) & 0xff;
  u8[total - 1] = 0x0a;

  let r: { dtype: string; shape: number[]; fortranOrder: boolean };
  try {
    r = npyjsParse(buf, { convertFloat16: false });
  } catch (e) {
    const msg = String((e as Error)?.message ?? e).replace(/\r?\n/g, " ");
    throw new InputError(`malformed header: rejected by the npyjs parser (${msg})`, path);
  }
  const agree =
    r.dtype === descr.slice(1) &&
    r.fortranOrder === d.fortranOrder &&
    Array.isArray(r.shape) &&
    r.shape.length === d.shape.length &&
    r.shape.every((v, i) => v === d.shape[i]);
  if (!agree) {
    throw new InputError(
      `malformed header: ambiguous dict (npyjs reads descr '${r.dtype}', shape ${shapeRepr(r.shape ?? [])}, ` +
        `fortran_order ${r.fortranOrder}; the strict parser reads '${descr.slice(1)}', ${shapeRepr(d.shape)}, ` +
        `${d.fortranOrder})`,
      path,
    );
  }
}
