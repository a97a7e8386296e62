/** What the file functions share: their inputs opened (headers checked), outputs chosen, made whole or not at all. */
import { join } from "node:path";
import { InputError } from "../errors.js";
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

/** One output a command can write: its --outputs name, its file name (and JSON key), its flag. */
export interface OutputKind<K extends string> {
  key: K;
  file: string;
  flag: string;
}

export interface ChosenOutput<K extends string> extends OutputKind<K> {
  path: string;
  /** Named by its flag (an input may be replaced only by an explicit output). */
  explicit: boolean;
}

/**
 * Which outputs a run writes, and where. Outputs named by their flags are written; `requested`
 * (--outputs) adds more; with neither, the command's defaults. Unnamed outputs go to outDir as
 * FILE.npy.
 */
export function chooseOutputs<K extends string>(
  kinds: readonly OutputKind<K>[],
  named: Partial<Record<K, string>>,
  requested: readonly K[] | undefined,
  defaults: readonly K[],
  outDir: string,
): ChosenOutput<K>[] {
  for (const r of requested ?? []) {
    if (!kinds.some((k) => k.key === r)) throw new InputError(`--outputs: unknown output '${r}' (expected ${kinds.map((k) => k.key).join(", ").replace(/, ([^,]*)$/, " or $1")})`);
  }
  const anyNamed = kinds.some((k) => named[k.key] !== undefined);
  const wanted = new Set<K>([...kinds.filter((k) => named[k.key] !== undefined).map((k) => k.key), ...(requested ?? (anyNamed ? [] : defaults))]);
  return kinds
    .filter((k) => wanted.has(k.key))
    .map((k) => ({ ...k, path: named[k.key] ?? join(outDir, `${k.file}.npy`), explicit: named[k.key] !== undefined }));
}
