/** Streaming a tensor source through a fixed-size float64 buffer, in C order; index arithmetic. */
import type { TensorSource } from "../io/tensor.js";

export const CHUNK = 1 << 20; // values per chunk (8 MiB of float64)

/** Calls `f(values, start)` for consecutive chunks of the source's values, converted to float64. */
export async function forEachChunk(source: TensorSource, f: (values: Float64Array, start: number) => void, chunk = CHUNK): Promise<void> {
  const size = source.size;
  const buf = new Float64Array(Math.min(chunk, Math.max(1, size)));
  for (let start = 0; start < size; start += buf.length) {
    const n = Math.min(buf.length, size - start);
    const view = n === buf.length ? buf : buf.subarray(0, n);
    await source.read(start, n, view);
    f(view, start);
  }
}

/** Flat Fortran-order index (first axis fastest) → multi-index. */
export function unravelFortran(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = 0; d < shape.length; d++) {
    out[d] = shape[d] === 0 ? 0 : index % shape[d];
    index = shape[d] === 0 ? 0 : Math.floor(index / shape[d]);
  }
  return out;
}

/** Flat C-order index → multi-index. */
export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = shape[d] === 0 ? 0 : index % shape[d];
    index = shape[d] === 0 ? 0 : Math.floor(index / shape[d]);
  }
  return out;
}
