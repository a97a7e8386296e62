/** What the file functions share: their inputs opened (headers checked), outputs chosen, made whole or not at all. */
import { join } from "node:path";
import { InputError, quoteName } from "../errors.js";
import { closeAll, openTensors } from "../io/open.js";
import { OutputSet, outputFile } from "../io/outputs.js";
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
  /** A .npy path, or a container member (`out.npz:Y`, `out.safetensors:mean`). */
  path: string;
  /** Named by its flag, or by --out (an input may be replaced only by an explicit output). */
  explicit: boolean;
  /** Deflate .npz members. */
  compress: boolean;
}

/** Where the outputs not named go: .npy files in a folder, or one container. */
export interface OutputHome {
  /** Folder for FILE.npy (default "."). */
  outDir?: string;
  /** A container (.npz or .safetensors) holding them instead, keyed by their names. */
  out?: string;
  /** Deflate the members of .npz outputs (np.savez_compressed); default stored (np.savez). */
  compress?: boolean;
}

/**
 * Which outputs a run writes, and where. Outputs named by their flags are written; `requested`
 * (--outputs) adds more; with neither, the command's defaults. Unnamed outputs go to outDir as
 * FILE.npy, or into the container `out` as its members FILE. Outputs named `X.npz[:KEY]` or
 * `X.safetensors[:KEY]` are members of that container (keyed by their names unless KEY is given).
 */
export function chooseOutputs<K extends string>(
  kinds: readonly OutputKind<K>[],
  named: Partial<Record<K, string>>,
  requested: readonly K[] | undefined,
  defaults: readonly K[],
  home: OutputHome | string,
): ChosenOutput<K>[] {
  const { outDir = ".", out, compress = false } = typeof home === "string" ? { outDir: home } : home;
  if (out !== undefined) {
    if (typeof home !== "string" && home.outDir !== undefined) throw new InputError("--out and --out-dir: give one (--out writes the outputs into one container, --out-dir as .npy files in a folder)");
    if (!/\.(npz|safetensors)$/i.test(out)) throw new InputError(`--out names a container, FILE.npz or FILE.safetensors (for .npy files, use --out-dir): got ${quoteName(out)}`);
  }
  /** A named output as its path: a container named without a key gets the output's name as key. */
  const pathOf = (name: string, file: string) => {
    const dest = outputFile(name, file);
    return dest.format !== "npy" && dest.path === name ? `${name}:${file}` : name;
  };
  for (const r of requested ?? []) {
    if (!kinds.some((k) => k.key === r)) throw new InputError(`--outputs: unknown output '${r}' (expected ${kinds.map((k) => k.key).join(", ").replace(/, ([^,]*)$/, " or $1")})`);
  }
  const anyNamed = kinds.some((k) => named[k.key] !== undefined);
  const wanted = new Set<K>([...kinds.filter((k) => named[k.key] !== undefined).map((k) => k.key), ...(requested ?? (anyNamed ? [] : defaults))]);
  return kinds
    .filter((k) => wanted.has(k.key))
    .map((k) => ({ ...k, path: named[k.key] !== undefined ? pathOf(named[k.key]!, k.file) : out !== undefined ? `${out}:${k.file}` : join(outDir, `${k.file}.npy`), explicit: named[k.key] !== undefined || out !== undefined, compress }));
}
