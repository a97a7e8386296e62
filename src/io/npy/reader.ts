/**
 * Reading .npy data: a random-access reader in logical C order that converts from the file's dtype
 * and byte order to float32 or float64 (float16 exactly), straight into the caller's array when the
 * representation matches, else through a bounded scratch buffer.
 */
import type { FileHandle } from "node:fs/promises";
import { type Dtype, type FloatArray, HOST_LE, itemSizeOf } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { decodeF16 } from "../float16.js";
import { alignedBuffer, openForRead, readFully, swapInPlace } from "../files.js";
import { CHUNK_BYTES } from "./format.js";
import { transposeFortran } from "./fortran.js";
import type { TensorSource } from "../tensor.js";
import { type NpyHeader, parseHeader } from "./header.js";

/** Decode `n` raw elements at the start of `raw` (swapped in place if needed) into out[o ...]. */
function decodeRaw(raw: Buffer, n: number, dtype: Dtype, swap: boolean, out: FloatArray, o: number): void {
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
export class NpyReader implements TensorSource {
  readonly header: NpyHeader;

  get name(): string {
    return this.header.path;
  }
  get dtype(): Dtype {
    return this.header.dtype;
  }
  get shape(): readonly number[] {
    return this.header.shape;
  }
  get size(): number {
    return this.header.size;
  }
  /** A Fortran-order array (with two or more axes longer than 1) is reordered into a C-order copy on its first partial read. */
  get residentBytes(): number {
    return needsTranspose(this.header) ? this.header.size * (this.header.dtype === "float64" ? 8 : 4) : 0;
  }
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
    return NpyReader.fromHandle(fh, fileSize, path);
  }

  /** A reader over an open file (closed here if its header is refused). */
  static async fromHandle(fh: FileHandle, fileSize: number, path: string): Promise<NpyReader> {
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

  /** Elements in the file's own (Fortran) order, for order-free work; only where that order is not C's. */
  get readStored(): ((start: number, count: number, out: FloatArray, outOffset?: number) => Promise<void>) | undefined {
    if (!needsTranspose(this.header)) return undefined;
    return (start, count, out, outOffset = 0) => {
      try {
        checkRange(this.header.size, start, count, out, outOffset);
      } catch (e) {
        return Promise.reject(e);
      }
      const run = this.#queue.then(async () => {
        if (!this.#fh) throw new Error("NpyReader.readStored: reader is closed");
        if (count > 0) await this.#readFileOrder(start, count, out, outOffset);
      });
      this.#queue = run.catch(() => undefined);
      return run;
    };
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
      await transposeFortran(this.header, (s, n, tmp) => this.#readFileOrder(s, n, tmp, 0), out, outOffset);
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
      await transposeFortran(this.header, (s, n, tmp) => this.#readFileOrder(s, n, tmp, 0), c, 0);
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
