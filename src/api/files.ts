/** What the file functions share: their inputs opened (headers checked), outputs made whole or not at all. */
import { closeAll, openTensors } from "../io/open.js";
import { OutputSet } from "../io/outputs.js";
import type { TensorSource } from "../io/tensor.js";

/**
 * Open the named inputs, run `f` with them and a fresh OutputSet, and close the inputs whatever
 * happens; on any failure the outputs' temporaries (and folders the run made) are removed.
 */
export async function withFiles<K extends string, T>(
  paths: Partial<Record<K, string>>,
  f: (inputs: Partial<Record<K, TensorSource>>, outputs: OutputSet) => Promise<T>,
): Promise<T> {
  const inputs = await openTensors(paths);
  const outputs = new OutputSet();
  try {
    return await f(inputs, outputs);
  } catch (e) {
    await outputs.abort();
    throw e;
  } finally {
    await closeAll(inputs);
  }
}
