/**
 * The single adapter between .npy files and the tool.
 *
 * Reading: the header is read with our own file handle (npyjs's `load` uses `fetch`, and its
 * `parse` ignores byteOffset, misreads big-endian data, does not apply Fortran order and never
 * checks the data length). The header dictionary is parsed twice — by a small strict parser for
 * the Python dict literal, and by npyjs's `parse` on a header-only buffer — and the two must agree.
 * Every size a header claims is checked against the file size before anything is allocated. Data
 * is then streamed in chunks, so files larger than any single buffer can be read in slices.
 *
 * Writing: a little-endian, C-order file (NumPy's own header layout, padded to 64 bytes) is
 * written sequentially into a temporary path that the caller renames on success.
 *
 * Format reference: numpy/lib/format.py (NEP 1).
 */
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { parse as npyjsParse } from "npyjs";
import { InputError } from "../errors.js";
import { decodeF16, encodeF16 } from "./float16.js";

export type NpyDtype = "float16" | "float32" | "float64";

export interface NpyHeader {
  /** The path as given by the caller. */
  path: string;
  /** Format version, [1, 0], [2, 0] or [3, 0]. */
  version: [number, number];
  dtype: NpyDtype;
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

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** Headers longer than this are refused before being read (NumPy's own default limit is 10000). */
const MAX_HEADER_LEN = 1 << 20;
/** NumPy's limit on the number of dimensions (NPY_MAXDIMS in NumPy 2). */
const MAX_NDIM = 64;
/** Conversion chunk size (bytes; a multiple of 8). */
const CHUNK_BYTES = 4 << 20;
/** Largest single read/write request handed to the OS. */
const MAX_IO = 1 << 30;
/** NumPy's header alignment. */
const ARRAY_ALIGN = 64;
/** numpy.lib.format.GROWTH_AXIS_MAX_DIGITS: spare header space NumPy leaves for growing. */
const GROWTH_AXIS_MAX_DIGITS = 21;

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const DESCR_LE: Record<NpyDtype, string> = { float16: "<f2", float32: "<f4", float64: "<f8" };

export function itemSizeOf(dtype: NpyDtype): 2 | 4 | 8 {
  switch (dtype) {
    case "float16":
      return 2;
    case "float32":
      return 4;
    case "float64":
      return 8;
  }
}

/** NumPy-style repr of a shape tuple: `()`, `(3,)`, `(2, 3)`. */
function shapeRepr(shape: readonly (number | bigint)[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

// ---------------------------------------------------------------------------------------------
// File access helpers

interface ErrnoLike {
  code?: string;
  message?: string;
}

/** Turn a Node fs error into a one-line InputError about `path`. */
function ioError(e: unknown, path: string, op: "open" | "read" | "create" | "write" | "rename"): InputError {
  if (e instanceof InputError) return e;
  const err = (e ?? {}) as ErrnoLike;
  switch (err.code) {
    case "ENOENT":
      return new InputError(op === "open" ? "no such file" : `cannot ${op}: no such file or directory`, path);
    case "EISDIR":
      return new InputError("is a directory, not a file", path);
    case "ENOTDIR":
      return new InputError(`cannot ${op}: a component of the path is not a directory`, path);
    case "EACCES":
    case "EPERM":
      return new InputError(`cannot ${op}: permission denied`, path);
    case "ELOOP":
      return new InputError(`cannot ${op}: too many levels of symbolic links`, path);
    case "ENOSPC":
      return new InputError(`cannot ${op}: no space left on device`, path);
    case "EROFS":
      return new InputError(`cannot ${op}: read-only file system`, path);
    case "EMFILE":
    case "ENFILE":
      return new InputError(`cannot ${op}: too many open files`, path);
    default: {
      const msg = String(err.message ?? e).replace(/\r?\n/g, " ");
      return new InputError(`cannot ${op}: ${msg}`, path);
    }
  }
}

async function openForRead(path: string): Promise<{ fh: FileHandle; fileSize: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw ioError(e, path, "open");
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new InputError("is a directory, not a file", path);
    if (!st.isFile()) throw new InputError("is not a regular file", path);
    return { fh, fileSize: st.size };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw ioError(e, path, "open");
  }
}

/** Read exactly `length` bytes at file `position` into `buf[offset ...]`. */
async function readFully(
  fh: FileHandle,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
  path: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const want = Math.min(length - done, MAX_IO);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, offset + done, want, position + done));
    } catch (e) {
      throw ioError(e, path, "read");
    }
    if (bytesRead === 0) {
      throw new InputError(
        `unexpected end of file at byte ${position + done} (was the file truncated while being read?)`,
        path,
      );
    }
    done += bytesRead;
  }
}

/** Write all of `buf` at file `position`. */
async function writeFully(fh: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const want = Math.min(buf.length - done, MAX_IO);
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await fh.write(buf, done, want, position + done));
    } catch (e) {
      throw ioError(e, path, "write");
    }
    if (bytesWritten === 0) throw new InputError("cannot write: no progress (device full?)", path);
    done += bytesWritten;
  }
}

/** A Buffer over a fresh ArrayBuffer: byteOffset 0, so any typed-array view over it is aligned. */
function alignedBuffer(bytes: number): Buffer {
  return Buffer.from(new ArrayBuffer(bytes), 0, bytes);
}

function swapInPlace(b: Buffer, itemSize: 2 | 4 | 8): void {
  if (itemSize === 2) b.swap16();
  else if (itemSize === 4) b.swap32();
  else b.swap64();
}

// ---------------------------------------------------------------------------------------------
// Strict parser for the header's Python dict literal

type PyNode =
  | { k: "str"; v: string; s: number; e: number }
  | { k: "int"; v: bigint; s: number; e: number }
  | { k: "float"; s: number; e: number }
  | { k: "bool"; v: boolean; s: number; e: number }
  | { k: "none"; s: number; e: number }
  | { k: "tuple" | "list"; items: PyNode[]; s: number; e: number }
  | { k: "dict"; entries: [PyNode, PyNode][]; s: number; e: number };

class HeaderSyntaxError extends Error {}

const MAX_NESTING = 16;

/**
 * Parses the subset of Python literal syntax that can appear in a .npy header: dicts, tuples,
 * lists, single- or double-quoted strings (escapes \\ \' \" only), decimal integers, floats
 * (recognized only to be refused), True/False/None. Whitespace is spaces and tabs.
 */
class LiteralParser {
  pos = 0;
  constructor(readonly t: string) {}

  fail(what: string): never {
    throw new HeaderSyntaxError(`${what} at offset ${this.pos}`);
  }

  ws(): void {
    const t = this.t;
    while (this.pos < t.length && (t[this.pos] === " " || t[this.pos] === "\t")) this.pos++;
  }

  value(depth: number): PyNode {
    if (depth > MAX_NESTING) this.fail("nesting too deep");
    this.ws();
    const c = this.t[this.pos];
    if (c === undefined) this.fail("unexpected end of header");
    if (c === "{") return this.dict(depth);
    if (c === "(") return this.tuple(depth);
    if (c === "[") return this.list(depth);
    if (c === "'" || c === '"') return this.str();
    if (c === "-" || (c >= "0" && c <= "9")) return this.num();
    if (/[A-Za-z_]/.test(c)) return this.name();
    this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  /** Items up to `close`, allowing a trailing comma. */
  seq(close: string, depth: number): { items: PyNode[]; trailingComma: boolean } {
    const items: PyNode[] = [];
    this.ws();
    if (this.t[this.pos] === close) {
      this.pos++;
      return { items, trailingComma: false };
    }
    for (;;) {
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.t[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
        if (this.t[this.pos] === close) {
          this.pos++;
          return { items, trailingComma: true };
        }
      } else if (c === close) {
        this.pos++;
        return { items, trailingComma: false };
      } else {
        this.fail(`expected ',' or '${close}'`);
      }
    }
  }

  tuple(depth: number): PyNode {
    const s = this.pos++;
    const { items, trailingComma } = this.seq(")", depth);
    // `(x)` is just x; `(x,)` and `()` are tuples.
    if (items.length === 1 && !trailingComma) return items[0]!;
    return { k: "tuple", items, s, e: this.pos };
  }

  list(depth: number): PyNode {
    const s = this.pos++;
    const { items } = this.seq("]", depth);
    return { k: "list", items, s, e: this.pos };
  }

  dict(depth: number): PyNode {
    const s = this.pos++;
    const entries: [PyNode, PyNode][] = [];
    this.ws();
    if (this.t[this.pos] === "}") {
      this.pos++;
      return { k: "dict", entries, s, e: this.pos };
    }
    for (;;) {
      const key = this.value(depth + 1);
      this.ws();
      if (this.t[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      const val = this.value(depth + 1);
      entries.push([key, val]);
      this.ws();
      const c = this.t[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
        if (this.t[this.pos] === "}") {
          this.pos++;
          break;
        }
      } else if (c === "}") {
        this.pos++;
        break;
      } else {
        this.fail("expected ',' or '}'");
      }
    }
    return { k: "dict", entries, s, e: this.pos };
  }

  str(): PyNode {
    const s = this.pos;
    const q = this.t[this.pos++];
    let v = "";
    for (;;) {
      const c = this.t[this.pos];
      if (c === undefined || c === "\n" || c === "\r") this.fail("unterminated string");
      if (c === q) break;
      if (c === "\\") {
        const d = this.t[this.pos + 1];
        if (d !== "\\" && d !== "'" && d !== '"') this.fail("unsupported escape in string");
        v += d;
        this.pos += 2;
        continue;
      }
      v += c;
      this.pos++;
    }
    this.pos++;
    return { k: "str", v, s, e: this.pos };
  }

  num(): PyNode {
    const s = this.pos;
    const re = /-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.t);
    if (!m) this.fail("malformed number");
    this.pos = re.lastIndex;
    const text = m[0];
    if (m[1] !== undefined || m[2] !== undefined) return { k: "float", s, e: this.pos };
    if (/^-?0[0-9]/.test(text)) {
      this.pos = s;
      this.fail("integer with leading zeros");
    }
    return { k: "int", v: BigInt(text), s, e: this.pos };
  }

  name(): PyNode {
    const s = this.pos;
    const re = /[A-Za-z_][A-Za-z0-9_]*/y;
    re.lastIndex = this.pos;
    const word = re.exec(this.t)![0];
    if (word === "True" || word === "False") {
      this.pos = re.lastIndex;
      return { k: "bool", v: word === "True", s, e: this.pos };
    }
    if (word === "None") {
      this.pos = re.lastIndex;
      return { k: "none", s, e: this.pos };
    }
    this.fail(`unexpected name '${word.slice(0, 40)}'`);
  }
}

// ---------------------------------------------------------------------------------------------
// Header validation

const SUPPORTED = "use float16, float32 or float64";

/** Classify a descr string; returns the dtype and byte order or throws a message. */
function classifyDescr(descr: string, path: string): { dtype: NpyDtype; littleEndian: boolean } {
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
      const dtype: NpyDtype = digits === "2" ? "float16" : digits === "4" ? "float32" : "float64";
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

interface ParsedDict {
  dtype: NpyDtype;
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

/**
 * Parse the same dictionary with npyjs and require agreement. npyjs is given a header-only buffer
 * holding our dict text with the descr rewritten little-endian (npyjs rejects '>' and '='; byte
 * order was already established by the strict parser) and re-padded to 64 bytes (npyjs builds a
 * typed array at the data offset, which must be aligned).
 */
function crossCheckWithNpyjs(major: number, body: string, d: ParsedDict, path: string): void {
  const [ds, de] = d.descrSpan;
  const descr = DESCR_LE[d.dtype];
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

/** Read and validate the header of an open file. Allocates nothing the header merely claims. */
async function parseHeader(fh: FileHandle, fileSize: number, path: string): Promise<NpyHeader> {
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

// ---------------------------------------------------------------------------------------------
// Reading

type FloatArray = Float32Array | Float64Array;

/** Decode `n` raw elements at the start of `raw` (swapped in place if needed) into out[o ...]. */
function decodeRaw(raw: Buffer, n: number, dtype: NpyDtype, swap: boolean, out: FloatArray, o: number): void {
  const itemSize = itemSizeOf(dtype);
  if (swap) swapInPlace(raw.subarray(0, n * itemSize), itemSize);
  switch (dtype) {
    case "float16":
      decodeF16(new Uint16Array(raw.buffer, raw.byteOffset, n), out, o);
      break;
    case "float32":
      out.set(new Float32Array(raw.buffer, raw.byteOffset, n), o);
      break;
    case "float64":
      out.set(new Float64Array(raw.buffer, raw.byteOffset, n), o);
      break;
  }
}

/** True when Fortran order differs from C order for this shape (two or more axes longer than 1). */
function needsTranspose(h: NpyHeader): boolean {
  return h.fortranOrder && h.shape.filter((d) => d > 1).length >= 2;
}

function checkRange(size: number, start: number, count: number, out: FloatArray, outOffset: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > size) {
    throw new RangeError(`NpyReader.read: range [${start}, ${start}+${count}) is outside [0, ${size})`);
  }
  if (!Number.isSafeInteger(outOffset) || outOffset < 0 || outOffset + count > out.length) {
    throw new RangeError(`NpyReader.read: ${count} values do not fit at offset ${outOffset} of an array of ${out.length}`);
  }
}

/** Random-access reader in logical C order, converting to the requested float type. */
export class NpyReader {
  readonly header: NpyHeader;
  #fh: FileHandle | undefined;
  #scratch: Buffer | undefined;
  /** C-order copy of a Fortran-order array, built on the first partial read. */
  #cOrder: FloatArray | undefined;
  /** Serializes reads (they share the scratch buffer and the lazily built C-order copy). */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(fh: FileHandle, header: NpyHeader) {
    this.#fh = fh;
    this.header = header;
  }

  static async open(path: string): Promise<NpyReader> {
    const { fh, fileSize } = await openForRead(path);
    try {
      return new NpyReader(fh, await parseHeader(fh, fileSize, path));
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Read elements [start, start+count) in C (row-major) order into out[outOffset ...], converting
   * from the file's dtype and byte order (float16 values are exact). For a Fortran-order file a
   * whole-array read is reordered directly into `out`; a partial read first builds a C-order copy
   * of the whole array (float32 for float16/float32 files, float64 otherwise) and serves from it.
   */
  read(start: number, count: number, out: FloatArray, outOffset = 0): Promise<void> {
    try {
      checkRange(this.header.size, start, count, out, outOffset);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.#queue.then(() => this.#readNow(start, count, out, outOffset));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#queue;
    const fh = this.#fh;
    this.#fh = undefined;
    this.#scratch = undefined;
    this.#cOrder = undefined;
    if (fh) await fh.close();
  }

  async #readNow(start: number, count: number, out: FloatArray, outOffset: number): Promise<void> {
    if (!this.#fh) throw new Error("NpyReader.read: reader is closed");
    if (count === 0) return;
    const h = this.header;
    if (!needsTranspose(h)) {
      await this.#readFileOrder(start, count, out, outOffset);
      return;
    }
    if (!this.#cOrder && start === 0 && count === h.size) {
      await this.#transposeInto(out, outOffset);
      return;
    }
    if (!this.#cOrder) {
      let c: FloatArray;
      try {
        c = h.dtype === "float64" ? new Float64Array(h.size) : new Float32Array(h.size);
      } catch {
        throw new InputError(
          `Fortran-order array of ${h.size} elements is too large to reorder in memory; save it in C order`,
          h.path,
        );
      }
      await this.#transposeInto(c, 0);
      this.#cOrder = c;
    }
    out.set(this.#cOrder.subarray(start, start + count), outOffset);
  }

  #getScratch(): Buffer {
    if (!this.#scratch) {
      const need = this.header.size * this.header.itemSize;
      this.#scratch = alignedBuffer(Math.max(8, Math.min(CHUNK_BYTES, Math.ceil(need / 8) * 8)));
    }
    return this.#scratch;
  }

  /** Elements [start, start+count) in the file's own order into out[outOffset ...]. */
  async #readFileOrder(start: number, count: number, out: FloatArray, outOffset: number): Promise<void> {
    const fh = this.#fh!;
    const { dtype, itemSize, littleEndian, dataOffset, path } = this.header;
    const swap = littleEndian !== HOST_LE;
    let pos = dataOffset + start * itemSize;
    if (
      !swap &&
      ((dtype === "float32" && out instanceof Float32Array) || (dtype === "float64" && out instanceof Float64Array))
    ) {
      // Same representation: read straight into the caller's array.
      const bytes = new Uint8Array(out.buffer, out.byteOffset + outOffset * itemSize, count * itemSize);
      await readFully(fh, bytes, 0, bytes.length, pos, path);
      return;
    }
    const scratch = this.#getScratch();
    const chunk = Math.floor(scratch.length / itemSize);
    for (let done = 0; done < count; ) {
      const n = Math.min(chunk, count - done);
      await readFully(fh, scratch, 0, n * itemSize, pos, path);
      decodeRaw(scratch, n, dtype, swap, out, outOffset + done);
      pos += n * itemSize;
      done += n;
    }
  }

  /** Stream the whole Fortran-order array and scatter it in C order into dst[dstOffset ...]. */
  async #transposeInto(dst: FloatArray, dstOffset: number): Promise<void> {
    const { shape, size, dtype, itemSize } = this.header;
    const nd = shape.length;
    // C-order strides; the file is in Fortran order (axis 0 varies fastest).
    const cs = new Array<number>(nd);
    cs[nd - 1] = 1;
    for (let k = nd - 2; k >= 0; k--) cs[k] = cs[k + 1]! * shape[k + 1]!;
    const idx = new Array<number>(nd).fill(0);
    const n0 = shape[0]!;
    const s0 = cs[0]!;
    let cOff = dstOffset;
    const chunk = Math.max(1, Math.min(size, Math.floor(CHUNK_BYTES / itemSize)));
    const tmp: FloatArray = dtype === "float64" ? new Float64Array(chunk) : new Float32Array(chunk);
    for (let done = 0; done < size; ) {
      const n = Math.min(chunk, size - done);
      await this.#readFileOrder(done, n, tmp, 0);
      let i = 0;
      while (i < n) {
        const run = Math.min(n0 - idx[0]!, n - i);
        let c = cOff;
        for (let j = 0; j < run; j++, c += s0) dst[c] = tmp[i + j]!;
        i += run;
        cOff = c;
        idx[0]! += run;
        if (idx[0] === n0) {
          cOff -= n0 * s0;
          idx[0] = 0;
          for (let k = 1; k < nd; k++) {
            idx[k]!++;
            cOff += cs[k]!;
            if (idx[k]! < shape[k]!) break;
            cOff -= shape[k]! * cs[k]!;
            idx[k] = 0;
          }
        }
      }
      done += n;
    }
  }
}

/** Whole file in C order, as float64 (default) or float32. */
export async function readNpy(
  path: string,
  as: "float32" | "float64" = "float64",
): Promise<{ header: NpyHeader; data: Float32Array | Float64Array }> {
  const reader = await NpyReader.open(path);
  try {
    const { size } = reader.header;
    let data: FloatArray;
    try {
      data = as === "float32" ? new Float32Array(size) : new Float64Array(size);
    } catch {
      throw new InputError(`array of ${size} elements is too large to load into memory`, path);
    }
    await reader.read(0, size, data, 0);
    return { header: reader.header, data };
  } finally {
    await reader.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

function checkShape(shape: readonly number[]): number {
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
export function encodeNpyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  checkShape(shape);
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

/**
 * Sequential writer into `tmpPath` (chosen by the caller, beside the target); the caller renames
 * on success. `displayPath` (optional) is the path named in error messages (e.g. the target).
 */
export class NpyWriter {
  readonly tmpPath: string;
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly size: number;
  readonly #display: string;
  #fh: FileHandle | undefined;
  #pos: number;
  #written = 0;
  #scratch: ArrayBuffer | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(fh: FileHandle, tmpPath: string, dtype: NpyDtype, shape: readonly number[], size: number, dataOffset: number, display: string) {
    this.#fh = fh;
    this.tmpPath = tmpPath;
    this.dtype = dtype;
    this.shape = [...shape];
    this.size = size;
    this.#pos = dataOffset;
    this.#display = display;
  }

  static async create(tmpPath: string, dtype: NpyDtype, shape: readonly number[], displayPath?: string): Promise<NpyWriter> {
    const size = checkShape(shape);
    const header = encodeNpyHeader(dtype, shape);
    const display = displayPath ?? tmpPath;
    let fh: FileHandle;
    try {
      fh = await open(tmpPath, "w");
    } catch (e) {
      throw ioError(e, display, "create");
    }
    const w = new NpyWriter(fh, tmpPath, dtype, shape, size, header.length, display);
    try {
      await writeFully(fh, header, 0, display);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w;
  }

  /** Number of elements written so far. */
  get written(): number {
    return this.#written;
  }

  /** Append `values` (converted to the file dtype, little-endian). */
  write(values: Float32Array | Float64Array): Promise<void> {
    const run = this.#queue.then(() => this.#writeNow(values));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #writeNow(values: FloatArray): Promise<void> {
    const fh = this.#fh;
    if (!fh) throw new Error("NpyWriter.write: writer is finished or aborted");
    const n = values.length;
    if (this.#written + n > this.size) {
      throw new RangeError(
        `NpyWriter.write: ${this.#written + n} elements exceed the ${this.size} of shape ${shapeRepr(this.shape)}`,
      );
    }
    const itemSize = itemSizeOf(this.dtype);
    if (
      HOST_LE &&
      ((this.dtype === "float32" && values instanceof Float32Array) ||
        (this.dtype === "float64" && values instanceof Float64Array))
    ) {
      await writeFully(fh, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), this.#pos, this.#display);
    } else {
      this.#scratch ??= new ArrayBuffer(Math.max(8, Math.min(CHUNK_BYTES, Math.ceil((this.size * itemSize) / 8) * 8)));
      const scratch = this.#scratch;
      const chunk = Math.floor(scratch.byteLength / itemSize);
      let pos = this.#pos;
      for (let i = 0; i < n; ) {
        const m = Math.min(chunk, n - i);
        const src = values.subarray(i, i + m);
        if (this.dtype === "float16") encodeF16(src, new Uint16Array(scratch, 0, m));
        else if (this.dtype === "float32") new Float32Array(scratch, 0, m).set(src);
        else new Float64Array(scratch, 0, m).set(src);
        const bytes = Buffer.from(scratch, 0, m * itemSize);
        if (!HOST_LE) swapInPlace(bytes, itemSize);
        await writeFully(fh, bytes, pos, this.#display);
        pos += m * itemSize;
        i += m;
      }
    }
    this.#pos += n * itemSize;
    this.#written += n;
  }

  /**
   * Check that exactly `size` elements were written and close. (No fsync: the rename that follows
   * makes the output appear whole; forcing it to disk would cost more than the whole computation.)
   */
  async finish(): Promise<void> {
    await this.#queue;
    const fh = this.#fh;
    if (!fh) throw new Error("NpyWriter.finish: writer is finished or aborted");
    if (this.#written !== this.size) {
      throw new Error(
        `NpyWriter.finish: ${this.#written} elements written but shape ${shapeRepr(this.shape)} has ${this.size}`,
      );
    }
    this.#fh = undefined;
    try {
      await fh.close();
    } catch (e) {
      throw ioError(e, this.#display, "write");
    }
  }

  /** Close (if open) and unlink the temporary file. Safe to call more than once. */
  async abort(): Promise<void> {
    await this.#queue.catch(() => undefined);
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) await fh.close().catch(() => undefined);
    await unlink(this.tmpPath).catch(() => undefined);
  }
}

/** Whole-array write: temporary file beside `path`, then rename over it. */
export async function writeNpy(
  path: string,
  dtype: NpyDtype,
  shape: readonly number[],
  values: Float32Array | Float64Array,
): Promise<void> {
  const size = checkShape(shape);
  if (values.length !== size) {
    throw new RangeError(`writeNpy: ${values.length} values for shape ${shapeRepr(shape)} (${size} elements)`);
  }
  try {
    if ((await stat(path)).isDirectory()) throw new InputError("is a directory, not a file", path);
  } catch (e) {
    if (e instanceof InputError) throw e;
    if ((e as ErrnoLike).code !== "ENOENT") throw ioError(e, path, "create");
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const w = await NpyWriter.create(tmp, dtype, shape, path);
  try {
    await w.write(values);
    await w.finish();
    try {
      await rename(tmp, path);
    } catch (e) {
      throw ioError(e, path, "rename");
    }
  } catch (e) {
    await w.abort();
    throw e;
  }
}
