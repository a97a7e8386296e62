/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, …, "__metadata__": {str: str}}`,
 * padded with spaces), then the tensors' little-endian C-order data, with offsets relative to the end
 * of the header. The header is checked whole before any data is read: its length (at most 100 MB,
 * as the reference implementation allows), every entry's dtype, shape and size, and the offsets,
 * which must tile the data exactly (no gap, no overlap, nothing after the last tensor).
 */
import type { Dtype } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import type { ByteSource } from "../bytes.js";
import type { Element } from "../npy/header.js";
import { shapeRepr } from "../npy/format.js";
import { type Json, JsonSyntaxError, parseStrictJson } from "./json.js";

/** The reference implementation's limit on the header (MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;
const MAX_NDIM = 64;

const SUPPORTED = "use F16, BF16, F32 or F64";

interface StType {
  name: string;
  bits: number;
  kind: string;
  dtype: Dtype | null;
}

/** The dtypes of the format, by their names in the header. */
const TYPES: Record<string, StType> = {
  BOOL: { name: "bool", bits: 8, kind: "b", dtype: null },
  U8: { name: "uint8", bits: 8, kind: "u", dtype: null },
  I8: { name: "int8", bits: 8, kind: "i", dtype: null },
  U16: { name: "uint16", bits: 16, kind: "u", dtype: null },
  I16: { name: "int16", bits: 16, kind: "i", dtype: null },
  U32: { name: "uint32", bits: 32, kind: "u", dtype: null },
  I32: { name: "int32", bits: 32, kind: "i", dtype: null },
  U64: { name: "uint64", bits: 64, kind: "u", dtype: null },
  I64: { name: "int64", bits: 64, kind: "i", dtype: null },
  F16: { name: "float16", bits: 16, kind: "f", dtype: "float16" },
  BF16: { name: "bfloat16", bits: 16, kind: "f", dtype: "bfloat16" },
  F32: { name: "float32", bits: 32, kind: "f", dtype: "float32" },
  F64: { name: "float64", bits: 64, kind: "f", dtype: "float64" },
  C64: { name: "complex64", bits: 64, kind: "c", dtype: null },
  F8_E4M3: { name: "float8_e4m3fn", bits: 8, kind: "f", dtype: null },
  F8_E5M2: { name: "float8_e5m2", bits: 8, kind: "f", dtype: null },
  F8_E8M0: { name: "float8_e8m0fnu", bits: 8, kind: "f", dtype: null },
  F6_E2M3: { name: "float6_e2m3fn", bits: 6, kind: "f", dtype: null },
  F6_E3M2: { name: "float6_e3m2fn", bits: 6, kind: "f", dtype: null },
  F4: { name: "float4_e2m1fn", bits: 4, kind: "f", dtype: null },
};

/** The safetensors name of a dtype groupnorm writes. */
export const ST_NAME: Record<Dtype, string> = { float16: "F16", bfloat16: "BF16", float32: "F32", float64: "F64" };

export interface SafetensorsTensor {
  name: string;
  /** The header's dtype name (F32, BF16, I64, …). */
  stDtype: string;
  element: Element;
  shape: number[];
  size: number;
  /** Byte offsets within the data (relative to its start, the end of the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  /** N, the JSON header's length. */
  headerBytes: number;
  /** Where the data starts in the file: 8 + N. */
  dataStart: number;
  /** Tensors in the order of their data. */
  tensors: SafetensorsTensor[];
  metadata: Record<string, string> | null;
  fileSize: number;
}

const quoted = (s: string) => JSON.stringify(s.length > 60 ? s.slice(0, 60) + "…" : s);

function elementOf(st: string, t: StType): Element {
  const refusal = t.dtype ? null : `dtype ${st} (${t.name}) is not supported; ${SUPPORTED}`;
  return { name: t.name, bytes: t.bits % 8 === 0 ? t.bits / 8 : null, littleEndian: true, byteOrder: t.bits > 8 ? "little" : "none", kind: t.kind, dtype: t.dtype, refusal };
}

function entryOf(name: string, v: Json, path: string): SafetensorsTensor {
  const what = `tensor ${quoted(name)}`;
  if (!(v instanceof Map)) throw new InputError(`malformed header: ${what} is not an object`, path);
  for (const k of v.keys()) {
    if (k !== "dtype" && k !== "shape" && k !== "data_offsets") throw new InputError(`malformed header: ${what} has an unexpected key ${quoted(k)} (expected dtype, shape, data_offsets)`, path);
  }
  const dtype = v.get("dtype"), shape = v.get("shape"), offsets = v.get("data_offsets");
  if (typeof dtype !== "string") throw new InputError(`malformed header: ${what} has no dtype string`, path);
  const type = TYPES[dtype];
  if (!type) throw new InputError(`${what} has an unknown dtype ${quoted(dtype)}`, path);
  if (!Array.isArray(shape)) throw new InputError(`malformed header: ${what} has no shape list`, path);
  if (shape.length > MAX_NDIM) throw new InputError(`${what} has ${shape.length} dimensions; at most ${MAX_NDIM} are supported`, path);
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) throw new InputError(`malformed header: ${what} has shape ${JSON.stringify(shape).slice(0, 120)}: dimensions must be integers >= 0`, path);
  }
  const dims = shape as number[];
  if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => typeof o !== "number" || !Number.isSafeInteger(o) || o < 0)) {
    throw new InputError(`malformed header: ${what} has data_offsets ${JSON.stringify(offsets ?? null).slice(0, 120)}: they must be two integers [begin, end] >= 0`, path);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new InputError(`${what} has data_offsets [${begin}, ${end}]: the end is before the beginning`, path);
  let sizeBig = 1n;
  for (const d of dims) sizeBig *= BigInt(d);
  const bits = sizeBig * BigInt(type.bits);
  if (bits !== BigInt(end - begin) * 8n) {
    const need = bits % 8n === 0n ? `${bits / 8n} bytes` : `${bits} bits (not a whole number of bytes)`;
    throw new InputError(`${what} has ${end - begin} bytes (data_offsets [${begin}, ${end}]) but ${dtype} × shape ${shapeRepr(dims)} needs ${need}`, path);
  }
  return { name, stDtype: dtype, element: elementOf(dtype, type), shape: dims, size: Number(sizeBig), begin, end };
}

/** Read and check the header of a safetensors file; no tensor data is read. */
export async function readSafetensorsHeader(bytes: ByteSource): Promise<SafetensorsHeader> {
  const { name: path, size: fileSize } = bytes;
  if (fileSize < 8) throw new InputError(`file is too short (${fileSize} bytes) to be a safetensors file`, path);
  const pre = new Uint8Array(8);
  await bytes.read(pre, 0, 8, 0);
  const n = new DataView(pre.buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new InputError(`header length ${n} is over the ${MAX_HEADER_BYTES} bytes (100 MB) safetensors allows`, path);
  const headerBytes = Number(n);
  if (8 + headerBytes > fileSize) throw new InputError(`header length ${headerBytes} runs past the end of the file (${fileSize} bytes)`, path);
  if (headerBytes < 2) throw new InputError(`header length ${headerBytes} is too short for a JSON object`, path);
  const raw = new Uint8Array(headerBytes);
  await bytes.read(raw, 0, headerBytes, 8);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new InputError("malformed header: not valid UTF-8", path);
  }
  if (text[0] !== "{") throw new InputError("malformed header: it does not start with '{'", path);
  let json: Json;
  try {
    json = parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new InputError(`malformed header: ${e.message}`, path);
    throw e;
  }
  if (!(json instanceof Map)) throw new InputError("malformed header: not a JSON object", path);
  let metadata: Record<string, string> | null = null;
  const tensors: SafetensorsTensor[] = [];
  for (const [k, v] of json) {
    if (k === "__metadata__") {
      if (!(v instanceof Map)) throw new InputError("malformed header: __metadata__ is not an object", path);
      metadata = {};
      for (const [mk, mv] of v) {
        if (typeof mv !== "string") throw new InputError(`malformed header: __metadata__ ${quoted(mk)} is not a string`, path);
        metadata[mk] = mv;
      }
    } else tensors.push(entryOf(k, v, path));
  }
  // the offsets must tile the data: sorted, each tensor starts where the previous one ends
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + headerBytes;
  const dataBytes = fileSize - dataStart;
  let at = 0;
  let previous: SafetensorsTensor | null = null;
  for (const t of tensors) {
    if (t.begin < at) throw new InputError(`tensor ${quoted(t.name)} (data_offsets [${t.begin}, ${t.end}]) overlaps tensor ${quoted(previous!.name)} (ending at ${at})`, path);
    if (t.begin > at) throw new InputError(`the data is not contiguous: ${t.begin - at} bytes before tensor ${quoted(t.name)} (data_offsets [${t.begin}, ${t.end}]) belong to no tensor`, path);
    at = t.end;
    previous = t;
  }
  if (at > dataBytes) throw new InputError(`the tensors need ${at} bytes of data but the file holds ${dataBytes} after its header (truncated?)`, path);
  if (at < dataBytes) throw new InputError(`the file holds ${dataBytes} bytes of data after its header but the tensors cover ${at}: ${dataBytes - at} bytes belong to no tensor`, path);
  return { path, headerBytes, dataStart, tensors, metadata, fileSize };
}
