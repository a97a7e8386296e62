/** Constants of the .npy format (numpy/lib/format.py, NEP 1) shared by its reader and writer. */
import type { Dtype } from "../../core/dtype.js";

export const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** Headers longer than this are refused before being read (NumPy's own default limit is 10000). */
export const MAX_HEADER_LEN = 1 << 20;
/** NumPy's limit on the number of dimensions (NPY_MAXDIMS in NumPy 2). */
export const MAX_NDIM = 64;
/** NumPy's header alignment. */
export const ARRAY_ALIGN = 64;
/** numpy.lib.format.GROWTH_AXIS_MAX_DIGITS: spare header space NumPy leaves for growing. */
export const GROWTH_AXIS_MAX_DIGITS = 21;
/** Conversion chunk size (bytes; a multiple of 8). */
export const CHUNK_BYTES = 4 << 20;

/** The dtypes a .npy file holds (NumPy has no bfloat16). */
export type NpyDtype = Exclude<Dtype, "bfloat16">;

export const DESCR_LE: Record<NpyDtype, string> = { float16: "<f2", float32: "<f4", float64: "<f8" };

/** NumPy-style repr of a shape tuple: `()`, `(3,)`, `(2, 3)`. */
export function shapeRepr(shape: readonly (number | bigint)[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}
