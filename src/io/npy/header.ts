/**
 * Reading and validating a .npy header. The dictionary is parsed twice — by a strict parser for the
 * Python dict literal (literal.ts), and by npyjs (npyjs.ts) — and the two must agree. Every size a
 * header claims is checked against the file size before anything is allocated.
 */
import type { FileHandle } from "node:fs/promises";
import { type Dtype, HOST_LE, itemSizeOf } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { openForRead, readFully } from "../files.js";
import { MAGIC, MAX_HEADER_LEN, MAX_NDIM, shapeRepr } from "./format.js";
import { HeaderSyntaxError, LiteralParser, type PyNode } from "./literal.js";
import { crossCheckWithNpyjs } from "./npyjs.js";

export interface NpyHeader {
  /** The path as given by the caller. */
  path: string;
  /** Format version, [1, 0], [2, 0] or [3, 0]. */
  version: [number, number];
  dtype: Dtype;
  /** Byte order of the data in the file. */
  littleEndian: boolean;
  fortranOrder: boolean;
  /** Dimensions; [] for a scalar. */
  shape: number[];
  /** Element count (product of the shape; 1 for a scalar). May exceed 2^32. */
  size: number;
  itemSize: 2 | 4 | 8;
  /** Byte offset of the first data byte. */
  dataOffset: number;
  /** Size of the whole file in bytes. */
  fileSize: number;
}

const SUPPORTED = "use float16, float32 or float64";

/** Classify a descr string; returns the dtype and byte order or throws a message. */
function classifyDescr(descr: string, path: string): { dtype: Dtype; littleEndian: boolean } {
  const q = `'${descr.length > 40 ? descr.slice(0, 40) + "..." : descr}'`;
  const m = /^([<>=|]?)([A-Za-z?])([0-9]*)(.*)$/s.exec(descr);
  if (!m) throw new InputError(`unrecognized dtype ${q}; ${SUPPORTED}`, path);
  const [, order, kind, digits, rest] = m as unknown as [string, string, string, string, string];
  switch (kind) {
    case "f": {
      if (rest !== "" || digits === "") break;
      if (digits !== "2" && digits !== "4" && digits !== "8") {
        throw new InputError(`float dtype ${q} (${Number(digits) * 8}-bit) is not supported; ${SUPPORTED}`, path);
      }
      if (order === "|") {
        throw new InputError(`byte order '|' is not valid for the float dtype ${q}`, path);
      }
      const dtype: Dtype = digits === "2" ? "float16" : digits === "4" ? "float32" : "float64";
      const littleEndian = order === "<" ? true : order === ">" ? false : HOST_LE;
      return { dtype, littleEndian };
    }
    case "O":
      throw new InputError(`object arrays (${q}) are not supported (never unpickled)`, path);
    case "c":
      throw new InputError(`complex dtype ${q} is not supported; ${SUPPORTED}`, path);
    case "i":
    case "u":
      throw new InputError(`integer dtype ${q} is not supported; ${SUPPORTED}`, path);
    case "b":
    case "?":
      throw new InputError(`boolean dtype ${q} is not supported; ${SUPPORTED}`, path);
    case "U":
    case "S":
    case "a":
      throw new InputError(`string dtype ${q} is not supported; ${SUPPORTED}`, path);
    case "V":
      throw new InputError(`void (raw bytes) dtype ${q} is not supported; ${SUPPORTED}`, path);
    case "M":
    case "m":
      throw new InputError(`datetime/timedelta dtype ${q} is not supported; ${SUPPORTED}`, path);
  }
  throw new InputError(`unrecognized dtype ${q}; ${SUPPORTED}`, path);
}

export interface ParsedDict {
  dtype: Dtype;
  littleEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** End of the dict literal within the header text. */
  dictEnd: number;
  /** Span of the descr string literal within the header text. */
  descrSpan: [number, number];
}

/** Strictly parse and validate the header text (including its final '\n'). */
function parseHeaderText(text: string, path: string): ParsedDict {
  if (!text.endsWith("\n")) {
    throw new InputError("malformed header: not terminated by '\\n'", path);
  }
  const body = text.slice(0, -1);
  const p = new LiteralParser(body);
  let node: PyNode;
  let dictEnd: number;
  try {
    p.ws();
    if (body[p.pos] !== "{") p.fail("expected a dict literal '{'");
    node = p.value(0);
    dictEnd = p.pos;
    p.ws();
    if (p.pos !== body.length) {
      p.fail(`unexpected ${JSON.stringify(body[p.pos])} after the dict (only spaces may pad it)`);
    }
  } catch (e) {
    if (e instanceof HeaderSyntaxError) throw new InputError(`malformed header: ${e.message}`, path);
    throw e;
  }
  if (node.k !== "dict") throw new InputError("malformed header: not a dict", path);

  const fields = new Map<string, PyNode>();
  for (const [key, val] of node.entries) {
    if (key.k !== "str") throw new InputError("malformed header: dict keys must be strings", path);
    if (fields.has(key.v)) throw new InputError(`malformed header: duplicate key '${key.v}'`, path);
    fields.set(key.v, val);
  }
  for (const key of fields.keys()) {
    if (key !== "descr" && key !== "fortran_order" && key !== "shape") {
      throw new InputError(
        `malformed header: unexpected key '${key.slice(0, 40)}' (expected exactly 'descr', 'fortran_order', 'shape')`,
        path,
      );
    }
  }
  for (const key of ["descr", "fortran_order", "shape"]) {
    if (!fields.has(key)) throw new InputError(`malformed header: missing key '${key}'`, path);
  }

  const descr = fields.get("descr")!;
  if (descr.k === "list") {
    throw new InputError(`structured dtype (descr is a list of fields) is not supported; ${SUPPORTED}`, path);
  }
  if (descr.k !== "str") throw new InputError("malformed header: 'descr' must be a string", path);
  const { dtype, littleEndian } = classifyDescr(descr.v, path);

  const fo = fields.get("fortran_order")!;
  if (fo.k !== "bool") throw new InputError("malformed header: 'fortran_order' must be True or False", path);

  const sh = fields.get("shape")!;
  const shText = body.slice(sh.s, sh.e).slice(0, 200);
  if (sh.k !== "tuple") {
    throw new InputError(`malformed header: 'shape' must be a tuple of integers, got ${shText}`, path);
  }
  if (sh.items.length > MAX_NDIM) {
    throw new InputError(`shape has ${sh.items.length} dimensions; at most ${MAX_NDIM} are supported`, path);
  }
  const shape: number[] = [];
  for (const it of sh.items) {
    if (it.k === "float") throw new InputError(`shape ${shText} has a non-integer dimension`, path);
    if (it.k !== "int") throw new InputError(`shape ${shText} must contain only integers`, path);
    if (it.v < 0n) throw new InputError(`shape ${shText} has a negative dimension`, path);
    if (it.v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new InputError(`shape ${shText} has an absurdly large dimension ${it.v}`, path);
    }
    shape.push(Number(it.v));
  }
  return { dtype, littleEndian, fortranOrder: fo.v, shape, dictEnd, descrSpan: [descr.s, descr.e] };
}

/** Read and validate the header of an open file. Allocates nothing the header merely claims. */
export async function parseHeader(fh: FileHandle, fileSize: number, path: string): Promise<NpyHeader> {
  if (fileSize === 0) throw new InputError("empty file (0 bytes), not a .npy file", path);
  if (fileSize < MAGIC.length) {
    throw new InputError(`file is too short (${fileSize} bytes) to be a .npy file`, path);
  }
  const pre = new Uint8Array(Math.min(fileSize, 12));
  await readFully(fh, pre, 0, pre.length, 0, path);
  for (let i = 0; i < MAGIC.length; i++) {
    if (pre[i] !== MAGIC[i]) throw new InputError("not a .npy file (bad magic)", path);
  }
  if (fileSize < 8) {
    throw new InputError(`file is too short (${fileSize} bytes) to hold a .npy header`, path);
  }
  const major = pre[6]!;
  const minor = pre[7]!;
  if ((major !== 1 && major !== 2 && major !== 3) || minor !== 0) {
    throw new InputError(`unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`, path);
  }
  const headerStart = major === 1 ? 10 : 12;
  if (fileSize < headerStart) {
    throw new InputError(`file is too short (${fileSize} bytes) to hold a .npy header`, path);
  }
  const dv = new DataView(pre.buffer, pre.byteOffset, pre.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (headerStart + hlen > fileSize) {
    throw new InputError(
      `header length ${hlen} runs past the end of the file (${fileSize} bytes)`,
      path,
    );
  }
  if (hlen > MAX_HEADER_LEN) {
    throw new InputError(`header length ${hlen} is implausibly large (limit ${MAX_HEADER_LEN})`, path);
  }
  const hbytes = new Uint8Array(hlen);
  await readFully(fh, hbytes, 0, hlen, headerStart, path);
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(hbytes);
    } catch {
      throw new InputError("malformed header: not valid UTF-8", path);
    }
  } else {
    text = Buffer.from(hbytes.buffer, hbytes.byteOffset, hbytes.byteLength).toString("latin1");
  }

  const d = parseHeaderText(text, path);
  crossCheckWithNpyjs(major, text.slice(0, -1), d, path);

  const itemSize = itemSizeOf(d.dtype);
  const dataOffset = headerStart + hlen;
  const dataBytes = fileSize - dataOffset;
  let sizeBig = 1n;
  for (const dim of d.shape) sizeBig *= BigInt(dim);
  const needBig = sizeBig * BigInt(itemSize);
  if (needBig !== BigInt(dataBytes)) {
    throw new InputError(
      `data is ${dataBytes} bytes but shape ${shapeRepr(d.shape)} of ${d.dtype} needs ${needBig} bytes`,
      path,
    );
  }
  return {
    path,
    version: [major, minor],
    dtype: d.dtype,
    littleEndian: d.littleEndian,
    fortranOrder: d.fortranOrder,
    shape: d.shape,
    size: Number(sizeBig),
    itemSize,
    dataOffset,
    fileSize,
  };
}

/** Read and validate the header of `path` (the data length is checked against the shape). */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  const { fh, fileSize } = await openForRead(path);
  try {
    return await parseHeader(fh, fileSize, path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
