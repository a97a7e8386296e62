/**
 * Reading and validating a .npy header. The dictionary is parsed twice — by a strict parser for the
 * Python dict literal (literal.ts), and by npyjs (npyjs.ts) — and the two must agree. Every size a
 * header claims is checked against the file size before anything is allocated.
 */
import { type Dtype, HOST_LE, itemSizeOf } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { type ByteSource, FileBytes } from "../bytes.js";
import { openForRead } from "../files.js";
import { MAGIC, MAX_HEADER_LEN, MAX_NDIM, shapeRepr } from "./format.js";
import { HeaderSyntaxError, LiteralParser, type PyNode } from "./literal.js";
import { crossCheckWithNpyjs } from "./npyjs.js";

export interface NpyHeader {
  /** The path as given by the caller (`file.npz:key` for a member of an .npz). */
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
  /** Size of the whole file (or .npz member) in bytes. */
  fileSize: number;
}

const SUPPORTED = "use float16, float32 or float64";

/** A .npy element type as the header's descr gives it, whatever it is (info describes any). */
export interface Element {
  /** NumPy's name: float32, int64, bool, complex128, <U10, object, structured, … */
  name: string;
  /** Bytes per element, when the data is raw values of a fixed size (not object or structured arrays). */
  bytes: number | null;
  littleEndian: boolean;
  /** Byte order as NumPy means it: none for one-byte values, bytes, raw void and structured records. */
  byteOrder: "little" | "big" | "none";
  /** Its NumPy kind character (f, i, u, b, c, U, S, V, O, M, m), "structured" for a list descr. */
  kind: string;
  /** The dtype groupnorm computes with, or null with the reason it cannot. */
  dtype: Dtype | null;
  refusal: string | null;
}

const KIND_NAMES: Record<string, string> = { f: "float", i: "int", u: "uint", c: "complex" };

/** What a descr string describes; throws only for strings that are no NumPy dtype at all. */
function classifyDescr(descr: string, path: string): Element {
  const q = `'${descr.length > 40 ? descr.slice(0, 40) + "..." : descr}'`;
  const m = /^([<>=|]?)([A-Za-z?])([0-9]*)(.*)$/s.exec(descr);
  if (!m) throw new InputError(`unrecognized dtype ${q}; ${SUPPORTED}`, path);
  const [, order, kind, digits, rest] = m as unknown as [string, string, string, string, string];
  const n = digits === "" ? null : Number(digits);
  const littleEndian = order === "<" ? true : order === ">" ? false : HOST_LE;
  const orderOf = (bytes: number | null, k: string): Element["byteOrder"] =>
    order === "|" || bytes === null || bytes === 1 || k === "S" || k === "a" || k === "V" || k === "b" || k === "?" || k === "O" ? "none" : littleEndian ? "little" : "big";
  const el = (name: string, bytes: number | null, refusal: string, k = kind): Element => ({ name, bytes, littleEndian, byteOrder: orderOf(bytes, k), kind: k, dtype: null, refusal });
  switch (kind) {
    case "f": {
      if (rest !== "" || n === null) break;
      if (order === "|") throw new InputError(`byte order '|' is not valid for the float dtype ${q}`, path);
      if (n !== 2 && n !== 4 && n !== 8) return el(`float${n * 8}`, n, `float dtype ${q} (${n * 8}-bit) is not supported; ${SUPPORTED}`);
      const dtype: Dtype = n === 2 ? "float16" : n === 4 ? "float32" : "float64";
      return { name: dtype, bytes: n, littleEndian, byteOrder: orderOf(n, kind), kind, dtype, refusal: null };
    }
    case "i":
    case "u":
    case "c":
      if (rest !== "" || n === null || ![1, 2, 4, 8, 16, 32].includes(n) || (kind !== "c" && n > 8) || (kind === "c" && n < 8)) break;
      return el(`${KIND_NAMES[kind]}${n * 8}`, n, `${kind === "c" ? "complex" : "integer"} dtype ${q} is not supported; ${SUPPORTED}`);
    case "b":
    case "?":
      if (rest !== "" || (n !== null && n !== 1)) break;
      return el("bool", 1, `boolean dtype ${q} is not supported; ${SUPPORTED}`, "b");
    case "O":
      return el("object", null, `object arrays (${q}) are not supported (never unpickled)`);
    case "U":
    case "S":
    case "a":
      if (n === null || rest !== "") break;
      return el(descr, kind === "U" ? 4 * n : n, `string dtype ${q} is not supported; ${SUPPORTED}`, kind === "a" ? "S" : kind);
    case "V":
      if (n === null || rest !== "") break;
      return el(descr, n, `void (raw bytes) dtype ${q} is not supported; ${SUPPORTED}`);
    case "M":
    case "m":
      return el(`${kind === "M" ? "datetime64" : "timedelta64"}${rest}`, n ?? 8, `datetime/timedelta dtype ${q} is not supported; ${SUPPORTED}`);
  }
  throw new InputError(`unrecognized dtype ${q}; ${SUPPORTED}`, path);
}

/**
 * Bytes per record of a structured descr, a list of (name, descr[, shape]) fields — NumPy writes any
 * padding as fields of its own, so the size is the sum of the fields' — or null where a field has no
 * fixed size (an object field) or the list is not one NumPy writes.
 */
function recordBytes(node: PyNode, path: string, depth = 0): number | null {
  if (node.k !== "list" || depth > 8) return null;
  let total = 0;
  for (const field of node.items) {
    if (field.k !== "tuple" || field.items.length < 2 || field.items.length > 3) return null;
    const [, type, shape] = field.items;
    let bytes = type.k === "str" ? classifyDescr(type.v, path).bytes : type.k === "list" ? recordBytes(type, path, depth + 1) : null;
    if (bytes === null) return null;
    if (shape) {
      const dims = shape.k === "int" ? [shape] : shape.k === "tuple" ? shape.items : null;
      if (!dims) return null;
      for (const d of dims) {
        if (d.k !== "int" || d.v < 0n) return null;
        bytes *= Number(d.v);
      }
    }
    total += bytes;
  }
  return Number.isSafeInteger(total) ? total : null;
}

export interface ParsedDict {
  element: Element;
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
  let element: Element;
  if (descr.k === "list") {
    element = {
      name: "structured", bytes: recordBytes(descr, path), littleEndian: HOST_LE, byteOrder: "none", kind: "structured", dtype: null,
      refusal: `structured dtype (descr is a list of fields) is not supported; ${SUPPORTED}`,
    };
  } else if (descr.k !== "str") throw new InputError("malformed header: 'descr' must be a string", path);
  else element = classifyDescr(descr.v, path);

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
  return { element, fortranOrder: fo.v, shape, dictEnd, descrSpan: [descr.s, descr.e] };
}

/** A header of any dtype, as info describes it; `itemSize` is null where the data is not raw values. */
export interface NpyDescription extends Omit<NpyHeader, "dtype" | "itemSize" | "littleEndian"> {
  element: Element;
  itemSize: number | null;
}

/** Read and validate the header of a .npy file or member, for computing: float dtypes only. */
export async function parseHeader(bytes: ByteSource): Promise<NpyHeader> {
  const d = await describeHeader(bytes, true);
  const e = d.element;
  return { ...d, dtype: e.dtype!, littleEndian: e.littleEndian, itemSize: itemSizeOf(e.dtype!) };
}

/** Read and validate the header of a .npy file or member, of any dtype. Allocates nothing the header merely claims. */
export async function describeHeader(bytes: ByteSource, requireFloat = false): Promise<NpyDescription> {
  const { name: path, size: fileSize } = bytes;
  if (fileSize === 0) throw new InputError("empty file (0 bytes), not a .npy file", path);
  if (fileSize < MAGIC.length) {
    throw new InputError(`file is too short (${fileSize} bytes) to be a .npy file`, path);
  }
  const pre = new Uint8Array(Math.min(fileSize, 12));
  await bytes.read(pre, 0, pre.length, 0);
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
  await bytes.read(hbytes, 0, hlen, headerStart);
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

  if (requireFloat && !d.element.dtype) throw new InputError(d.element.refusal!, path);
  const itemSize = d.element.bytes;
  const dataOffset = headerStart + hlen;
  const dataBytes = fileSize - dataOffset;
  let sizeBig = 1n;
  for (const dim of d.shape) sizeBig *= BigInt(dim);
  if (itemSize !== null) {
    const needBig = sizeBig * BigInt(itemSize);
    if (needBig !== BigInt(dataBytes)) {
      throw new InputError(`data is ${dataBytes} bytes but shape ${shapeRepr(d.shape)} of ${d.element.name} needs ${needBig} bytes`, path);
    }
  }
  return {
    path,
    version: [major, minor],
    element: d.element,
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
  const bytes = new FileBytes(fh, fileSize, path);
  try {
    return await parseHeader(bytes);
  } finally {
    await bytes.close().catch(() => undefined);
  }
}
