/**
 * Writing .npy files: a little-endian, C-order file (NumPy's own header layout, padded to 64 bytes)
 * written sequentially into a temporary path that the caller renames on success.
 */
import { rename, stat, unlink, type FileHandle } from "../handle.js";
import { type Dtype, type FloatArray, HOST_LE, itemSizeOf } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { encodeF16 } from "../float16.js";
import { type ErrnoLike, ioError, openForWriting, swapInPlace, temporaryBeside, writeFully } from "../files.js";
import type { TensorSink } from "../tensor.js";
import { checkShape, encodeNpyHeader } from "./encode.js";
import { CHUNK_BYTES, shapeRepr } from "./format.js";

/**
 * Sequential writer into `tmpPath` (chosen by the caller, beside the target); the caller renames
 * on success. `displayPath` (optional) is the path named in error messages (e.g. the target).
 */
export class NpyWriter implements TensorSink {
  readonly tmpPath: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly size: number;
  readonly #display: string;
  #fh: FileHandle | undefined;
  #pos: number;
  #written = 0;
  #scratch: ArrayBuffer | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(fh: FileHandle, tmpPath: string, dtype: Dtype, shape: readonly number[], size: number, dataOffset: number, display: string, readonly temporary: boolean) {
    this.#fh = fh;
    this.tmpPath = tmpPath;
    this.dtype = dtype;
    this.shape = [...shape];
    this.size = size;
    this.#pos = dataOffset;
    this.#display = display;
  }

  /**
   * A writer into `path`. `temporary` (the default): a new file (never an existing one, not even
   * through a link) that abort() removes. Otherwise a device written through, in order.
   */
  static async create(path: string, dtype: Dtype, shape: readonly number[], o: { display?: string; temporary?: boolean } = {}): Promise<NpyWriter> {
    const size = checkShape(shape);
    const header = encodeNpyHeader(dtype, shape);
    const display = o.display ?? path;
    const temporary = o.temporary ?? true;
    let fh: FileHandle;
    try {
      fh = await openForWriting(path, temporary);
    } catch (e) {
      throw ioError(e, display, "create");
    }
    const w = new NpyWriter(fh, path, dtype, shape, size, header.length, display, temporary);
    try {
      await writeFully(fh, header, temporary ? 0 : null, display);
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
      await writeFully(fh, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), this.temporary ? this.#pos : null, this.#display);
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
        await writeFully(fh, bytes, this.temporary ? pos : null, this.#display);
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
    if (this.temporary) await unlink(this.tmpPath).catch(() => undefined);
  }
}

/** Whole-array write: temporary file beside `path`, then rename over it. */
export async function writeNpy(
  path: string,
  dtype: Dtype,
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
  const tmp = temporaryBeside(path, 6);
  const w = await NpyWriter.create(tmp, dtype, shape, { display: path });
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
