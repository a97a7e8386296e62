/** A named tensor's values (x.npy, f.npz:key, m.safetensors:name) as float64, through groupnorm's own readers. */
import { openTensor } from "../../src/io/open.js";
import { readAll } from "../../src/io/tensor.js";

export async function values(name: string): Promise<Float64Array> {
  const s = await openTensor(name);
  try {
    return await readAll(s);
  } finally {
    await s.close();
  }
}
