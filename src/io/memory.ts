/**
 * In-memory tensors behind the source and sink interfaces (io/tensor.ts): the library's typed-array
 * functions run the same pipeline as the file commands, so their results are bitwise the files'.
 * float16 and bfloat16 values travel as their bit patterns in a Uint16Array.
 */
import { type Dtype, type FloatArray, isHalf } from "../core/dtype.js";
import { bf16ToF32, decodeBF16, encodeBF16 } from "./bfloat16.js";
import { decodeF16, encodeF16, f16ToF32 } from "./float16.js";
import type { TensorSink, TensorSource } from "./tensor.js";

/** The array type that holds a dtype's values: Float32Array, Float64Array, or Uint16Array of float16 or bfloat16 bits. */
export type StoredArray = Float32Array | Float64Array | Uint16Array;

export function allocateStored(dtype: Dtype, size: number): StoredArray {
  if (isHalf(dtype)) return new Uint16Array(size);
  return dtype === "float32" ? new Float32Array(size) : new Float64Array(size);
}

export class MemorySource implements TensorSource {
  readonly size: number;
  constructor(
    readonly name: string,
    readonly data: StoredArray,
    readonly dtype: Dtype,
    readonly shape: readonly number[],
  ) {
    this.size = data.length;
  }

  async read(start: number, count: number, out: FloatArray, outOffset = 0): Promise<void> {
    const part = this.data.subarray(start, start + count);
    if (isHalf(this.dtype)) (this.dtype === "float16" ? decodeF16 : decodeBF16)(part as Uint16Array, out, outOffset);
    else out.set(part, outOffset);
  }

  readonly readColumns = (start: number, rows: number, stride: number, width: number, out: Float64Array, outOffset: number, outStride: number): void => {
    const { data } = this;
    const decode = this.dtype === "float16" ? f16ToF32 : this.dtype === "bfloat16" ? bf16ToF32 : null;
    for (let r = 0; r < rows; r++) {
      const at = start + r * stride, o = outOffset + r;
      if (decode) for (let k = 0; k < width; k++) out[o + k * outStride] = decode(data[at + k]);
      else for (let k = 0; k < width; k++) out[o + k * outStride] = data[at + k];
    }
  };

  async close(): Promise<void> {}
}

export class MemorySink implements TensorSink {
  readonly data: StoredArray;
  private written = 0;
  constructor(
    readonly dtype: Dtype,
    readonly shape: readonly number[],
  ) {
    this.data = allocateStored(dtype, shape.reduce((a, b) => a * b, 1));
  }

  async write(values: FloatArray): Promise<void> {
    if (this.written + values.length > this.data.length) {
      throw new RangeError(`MemorySink.write: ${this.written + values.length} values exceed ${this.data.length}`);
    }
    if (isHalf(this.dtype)) (this.dtype === "float16" ? encodeF16 : encodeBF16)(values, this.data as Uint16Array, this.written);
    else (this.data as Float32Array | Float64Array).set(values, this.written);
    this.written += values.length;
  }
}
