/** Opening a tensor file as a source (io/tensor.ts), whatever its format. */
import { NpyReader } from "./npy/index.js";
import type { TensorSource } from "./tensor.js";

/** Open `path` as a tensor source; its header is read and checked, none of its data. */
export async function openTensor(path: string): Promise<TensorSource> {
  return NpyReader.open(path);
}

/** Open each of `paths` (undefined stays undefined); on a failure, close those already open. */
export async function openTensors<K extends string>(paths: Partial<Record<K, string>>): Promise<Partial<Record<K, TensorSource>>> {
  const open: Partial<Record<K, TensorSource>> = {};
  try {
    for (const [k, p] of Object.entries(paths) as Array<[K, string | undefined]>) if (p !== undefined) open[k] = await openTensor(p);
    return open;
  } catch (e) {
    await closeAll(open);
    throw e;
  }
}

export async function closeAll(sources: Partial<Record<string, TensorSource>>): Promise<void> {
  for (const s of Object.values(sources)) await s?.close().catch(() => undefined);
}
