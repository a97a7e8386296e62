/**
 * Reading a raw array of float values (a .npy's data, a safetensors tensor) by element range from
 * a byte source, converted to float32 or float64: straight into the caller's array when the
 * representation matches, else through a bounded scratch buffer (float16 and bfloat16 exactly).
 */
import { type Dtype, type FloatArray, HOST_LE, itemSizeOf } from "../core/dtype.js";
import { decodeBF16 } from "./bfloat16.js";
import type { ByteSource } from "./bytes.js";
import { alignedBuffer, swapInPlace } from "./files.js";
import { decodeF16 } from "./float16.js";

/** Conversion chunk size (bytes; a multiple of 8). */
export const CHUNK_BYTES = 4 << 20;

/** Decode `n` raw elements at the start of `raw` (swapped in place if needed) into out[o ...]. */
export function decodeRaw(raw: Buffer, n: number, dtype: Dtype, swap: boolean, out: FloatArray, o: number): void {
  const itemSize = itemSizeOf(dtype);
  if (swap) swapInPlace(raw.subarray(0, n * itemSize), itemSize);
  switch (dtype) {
    case "float16":
      decodeF16(new Uint16Array(raw.buffer, raw.byteOffset, n), out, o);
      break;
    case "bfloat16":
      decodeBF16(new Uint16Array(raw.buffer, raw.byteOffset, n), out, o);
      break;
    case "float32":
      out.set(new Float32Array(raw.buffer, raw.byteOffset, n), o);
      break;
    case "float64":
      out.set(new Float64Array(raw.buffer, raw.byteOffset, n), o);
      break;
  }
}

/** `size` values of `dtype` stored at byte `dataOffset` of `bytes`, in the given byte order. */
export class RawArray {
  #scratch: Buffer | undefined;
  readonly itemSize: 2 | 4 | 8;

  constructor(
    readonly bytes: ByteSource,
    readonly dataOffset: number,
    readonly dtype: Dtype,
    readonly littleEndian: boolean,
    readonly size: number,
  ) {
    this.itemSize = itemSizeOf(dtype);
  }

  /** Elements [start, start+count) in stored order into out[outOffset ...]. */
  async read(start: number, count: number, out: FloatArray, outOffset: number): Promise<void> {
    const { dtype, itemSize } = this;
    const swap = this.littleEndian !== HOST_LE;
    let pos = this.dataOffset + start * itemSize;
    if (!swap && ((dtype === "float32" && out instanceof Float32Array) || (dtype === "float64" && out instanceof Float64Array))) {
      // same representation: read straight into the caller's array
      await this.bytes.read(new Uint8Array(out.buffer, out.byteOffset + outOffset * itemSize, count * itemSize), 0, count * itemSize, pos);
      return;
    }
    this.#scratch ??= alignedBuffer(Math.max(8, Math.min(CHUNK_BYTES, Math.ceil((this.size * itemSize) / 8) * 8)));
    const scratch = this.#scratch;
    const chunk = Math.floor(scratch.length / itemSize);
    for (let done = 0; done < count; ) {
      const n = Math.min(chunk, count - done);
      await this.bytes.read(scratch, 0, n * itemSize, pos);
      decodeRaw(scratch, n, dtype, swap, out, outOffset + done);
      pos += n * itemSize;
      done += n;
    }
  }

  /**
   * Elements [start, start+count) in stored order as raw bytes in the host's byte order into out
   * (count · itemSize bytes), for kernels that convert the file's own dtype themselves.
   */
  async readRaw(start: number, count: number, out: Uint8Array): Promise<void> {
    const bytes = count * this.itemSize;
    await this.bytes.read(out, 0, bytes, this.dataOffset + start * this.itemSize);
    if (this.littleEndian !== HOST_LE) swapInPlace(Buffer.from(out.buffer, out.byteOffset, bytes), this.itemSize);
  }

  release(): void {
    this.#scratch = undefined;
  }
}
