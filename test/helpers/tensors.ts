/** Reading named tensors back in tests: a tensor's values (any format, `file:key` too) and their bits. */
import { openTensor } from "../../src/io/open.js";
import { readAll } from "../../src/io/tensor.js";

/** The values of a tensor by its name, as float64. */
export async function values(name: string): Promise<Float64Array> {
  const s = await openTensor(name);
  try {
    return await readAll(s);
  } finally {
    await s.close();
  }
}

/** The bytes of float64 values, to compare bitwise (NaN payloads and signed zeros included). */
export const bitsOf = (v: Float64Array) => Buffer.from(Float64Array.from(v).buffer);
