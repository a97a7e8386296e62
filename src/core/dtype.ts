/** The element types the tool computes with, and facts about them shared by every format. */

export type Dtype = "float16" | "bfloat16" | "float32" | "float64";

/** The dtypes stored in 16 bits (values travel as their bit patterns in a Uint16Array). */
export function isHalf(dtype: Dtype): dtype is "float16" | "bfloat16" {
  return dtype === "float16" || dtype === "bfloat16";
}

/** The arrays the kernels and the formats exchange values in. */
export type FloatArray = Float32Array | Float64Array;

export function itemSizeOf(dtype: Dtype): 2 | 4 | 8 {
  switch (dtype) {
    case "float16":
    case "bfloat16":
      return 2;
    case "float32":
      return 4;
    case "float64":
      return 8;
  }
}

/** True on a little-endian host (every platform Node runs on today, but never assumed). */
export const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
