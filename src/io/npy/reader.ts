/**
 * Reading .npy data: a random-access reader in logical C order that converts from the file's dtype
 * and byte order to float32 or float64 (float16 exactly), straight into the caller's array when the
 * representation matches, else through a bounded scratch buffer. It reads through a byte source,
 * so a .npy file and a .npy member of an .npz are read alike.
 */
import type { FileHandle } from "../handle.js";
import type { Dtype, FloatArray } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { type ByteSource, FileBytes } from "../bytes.js";
import { openForRead } from "../files.js";
import { RawArray } from "../values.js";
import { transposeFortran } from "./fortran.js";
import type { TensorSource } from "../tensor.js";
import { type NpyHeader, parseHeader } from "./header.js";

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
  #bytes: ByteSource | undefined;
  #raw: RawArray;
  /** C-order copy of a Fortran-order array, built on the first partial read. */
  #cOrder: FloatArray | undefined;
  /** Serializes reads (they share the scratch buffer and the lazily built C-order copy). */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(bytes: ByteSource, header: NpyHeader) {
    this.#bytes = bytes;
    this.header = header;
    this.#raw = new RawArray(bytes, header.dataOffset, header.dtype, header.littleEndian, header.size);
  }

  static async open(path: string): Promise<NpyReader> {
    const { fh, fileSize } = await openForRead(path);
    return NpyReader.fromHandle(fh, fileSize, path);
  }

  /** A reader over an open file (closed here if its header is refused). */
  static fromHandle(fh: FileHandle, fileSize: number, path: string): Promise<NpyReader> {
    return NpyReader.fromBytes(new FileBytes(fh, fileSize, path));
  }

  /** A reader over a .npy file or member (closed here if its header is refused). */
  static async fromBytes(bytes: ByteSource): Promise<NpyReader> {
    try {
      return new NpyReader(bytes, await parseHeader(bytes));
    } catch (e) {
      await bytes.close().catch(() => undefined);
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
    return this.#serial(() => this.#readNow(start, count, out, outOffset));
  }

  /** Run `f` after the reads queued before it (they share the scratch buffer and the C-order copy). */
  #serial(f: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(f);
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
      return this.#serial(async () => {
        if (!this.#bytes) throw new Error("NpyReader.readStored: reader is closed");
        if (count > 0) await this.#readFileOrder(start, count, out, outOffset);
      });
    };
  }

  /** Elements in the file's own order as raw bytes in the host's byte order (TensorSource.readStoredRaw). */
  readonly readStoredRaw = (start: number, count: number, out: Uint8Array): Promise<void> => {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > this.header.size || out.length < count * this.header.itemSize) {
      return Promise.reject(new RangeError(`NpyReader.readStoredRaw: range [${start}, ${start}+${count}) is outside [0, ${this.header.size}) or its bytes do not fit ${out.length}`));
    }
    return this.#serial(async () => {
      if (!this.#bytes) throw new Error("NpyReader.readStoredRaw: reader is closed");
      if (count > 0) await this.#raw.readRaw(start, count, out);
    });
  };

  async close(): Promise<void> {
    await this.#queue;
    const bytes = this.#bytes;
    this.#bytes = undefined;
    this.#raw.release();
    this.#cOrder = undefined;
    if (bytes) await bytes.close();
  }

  async #readNow(start: number, count: number, out: FloatArray, outOffset: number): Promise<void> {
    if (!this.#bytes) throw new Error("NpyReader.read: reader is closed");
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

  /** Elements [start, start+count) in the file's own order into out[outOffset ...]. */
  #readFileOrder(start: number, count: number, out: FloatArray, outOffset: number): Promise<void> {
    return this.#raw.read(start, count, out, outOffset);
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
