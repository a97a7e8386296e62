/**
 * The one interface every tensor format sits behind (and in-memory arrays too): a source has a
 * dtype and a shape in C order and reads any range of its values, converted to float32 or float64;
 * a sink takes values in order and stores them in its own dtype. The pipeline streams slices
 * between them through a bounded arena, so the size of a tensor never sets memory use.
 */
import type { Dtype, FloatArray } from "../core/dtype.js";

export interface TensorSource {
  /** How messages name the tensor: a path, `path:key`, or the argument's name. */
  readonly name: string;
  readonly dtype: Dtype;
  /** Dimensions in C (row-major) order; [] for a scalar. */
  readonly shape: readonly number[];
  /** Number of values (product of the shape). */
  readonly size: number;
  /** Bytes the source keeps in memory to serve reads of parts (a Fortran-order file's C-order copy), if any. */
  readonly residentBytes?: number;
  /**
   * Values [start, start + count) in C order into out[outOffset ...], converted to out's type
   * (exactly, for float16 into float32 or float64).
   */
  read(start: number, count: number, out: FloatArray, outOffset?: number): Promise<void>;
  /**
   * For a source stored in Fortran order (first axis fastest): values [start, start + count) in that
   * stored order, read without any copy of the whole. Absent when the source is in C order.
   */
  readonly readStored?: (start: number, count: number, out: FloatArray, outOffset?: number) => Promise<void>;
  /**
   * For a source held in memory, where values are read one by one at no cost: `width` columns of
   * `rows` rows `stride` values apart from `start` (value start + r·stride + k), column by column:
   * into out[outOffset + k·outStride + r]. Absent for files, which read ranges.
   */
  readonly readColumns?: (start: number, rows: number, stride: number, width: number, out: Float64Array, outOffset: number, outStride: number) => void;
  /**
   * Values [start, start + count) in stored order (as readStored, or C order when that is absent) as
   * raw bytes of `dtype` in the host's byte order, into out (count · item size bytes): the file's own
   * values, for kernels that convert them. Absent where a source has no such bytes.
   */
  readonly readStoredRaw?: (start: number, count: number, out: Uint8Array) => Promise<void>;
  close(): Promise<void>;
}

export interface TensorSink {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Append values (rounded to nearest even into the sink's dtype). */
  write(values: FloatArray): Promise<void>;
}

/** A source's whole contents as float64 (for the small vectors: gamma, beta, mean, rstd). */
export async function readAll(source: TensorSource): Promise<Float64Array> {
  const data = new Float64Array(source.size);
  await source.read(0, source.size, data);
  return data;
}
