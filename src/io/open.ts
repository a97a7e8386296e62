/**
 * Opening a tensor by the name a user gives it, whatever its format: `file.npy`, `file.npz:key` (the
 * array saved as `key`), `file.safetensors:name`; a container holding exactly one tensor may be named
 * without the key. Headers are read and checked; no data.
 */
import { stat } from "./handle.js";
import type { FileHandle } from "./handle.js";
import { InputError, quoteName } from "../errors.js";
import { FileBytes } from "./bytes.js";
import { openForRead, readFully } from "./files.js";
import { NpyReader } from "./npy/index.js";
// the containers' readers (yauzl, zlib) load only when a container is opened
import type { NpzArchive, NpzMember } from "./npz/archive.js";
import { firstZipMember, type Format, formatOf, notATensorFile, SNIFF_BYTES } from "./sniff.js";
import type { TensorSource } from "./tensor.js";

/** A tensor's file and, in a container, its key (null: not given). */
export interface TensorName {
  path: string;
  key: string | null;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Split `name` into a file and a key: the whole name when it is a file, else at the first ':' whose
 * left part is a file (so keys may hold ':'), else at a ':' after a container's extension (for the
 * message about a missing file), else the whole name.
 */
export async function locateTensor(name: string): Promise<TensorName> {
  if (name === "-" || !name.includes(":") || (await isFile(name))) return { path: name, key: null };
  for (let i = name.indexOf(":"); i > 0; i = name.indexOf(":", i + 1)) {
    if (await isFile(name.slice(0, i))) return { path: name.slice(0, i), key: name.slice(i + 1) };
  }
  const m = /^(.*?\.(?:npz|safetensors)):(.*)$/i.exec(name);
  return m ? { path: m[1]!, key: m[2]! } : { path: name, key: null };
}

/** An input file opened and identified: its handle, size and format (none groupnorm reads is refused). */
export interface OpenedFile {
  fh: FileHandle;
  fileSize: number;
  format: Format;
}

/** Open `path` and find its format from its first bytes; anything that is no tensor file is refused with what it is. */
export async function openIdentified(path: string): Promise<OpenedFile> {
  const { fh, fileSize } = await openForRead(path);
  try {
    if (fileSize === 0) throw new InputError("empty file (0 bytes), not a tensor file", path);
    const head = new Uint8Array(Math.min(fileSize, SNIFF_BYTES));
    await readFully(fh, head, 0, head.length, 0, path);
    const format = formatOf(head, fileSize);
    if (format === "npz" && /(^|\/)data\.pkl$/.test(firstZipMember(head) ?? "")) throw new InputError(notATensorFile(head), path);
    if (format === null) throw new InputError(notATensorFile(head), path);
    return { fh, fileSize, format };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** `a, b, c` — at most `most` of them, then how many in all. */
export function listNames(names: readonly string[], most = 20): string {
  const shown = names.slice(0, most).map((n) => JSON.stringify(n)).join(", ");
  return names.length > most ? `${shown}, … (${names.length} in all)` : shown;
}

/** The one key to read: the given one, which must be there, or the only one there is. */
export function pickKey(keys: readonly string[], key: string | null, path: string, what: "array" | "tensor"): string {
  if (key === "") throw new InputError(`names no ${what} after ':' (name one: ${quoteName(path)}:KEY)`, path);
  if (key !== null) {
    if (keys.includes(key)) return key;
    throw new InputError(`has no ${what} ${JSON.stringify(key)}; ${keys.length ? `it holds ${listNames(keys)}` : `it holds no ${what}s`}`, path);
  }
  if (keys.length === 1) return keys[0]!;
  if (keys.length === 0) throw new InputError(`holds no ${what}s`, path);
  throw new InputError(`holds ${keys.length} ${what}s (${listNames(keys)}): name one as ${quoteName(path)}:KEY`, path);
}

/** The .npy member named by `key` in an archive (a member's full name, `x.npy`, names it too). */
export function npzMember(archive: NpzArchive, key: string | null): NpzMember {
  const arrays = archive.arrays;
  if (key !== null && !arrays.some((m) => m.key === key)) {
    const other = archive.members.find((m) => m.fileName === key || m.key === key);
    if (other?.isNpy) return other;
    if (other) throw new InputError(`the member ${JSON.stringify(other.fileName)} is not a .npy file (members that are not .npy are listed by info, not read)`, `${archive.path}:${key}`);
  }
  const k = pickKey(arrays.map((m) => m.key), key, archive.path, "array");
  return arrays.find((m) => m.key === k)!;
}

/** Open the tensor `name` names as a source; its header (and its container's) is read and checked, none of its data. */
export async function openTensor(name: string): Promise<TensorSource> {
  const { path, key } = await locateTensor(name);
  const { fh, fileSize, format } = await openIdentified(path);
  try {
    if (format === "npy") {
      if (key !== null) throw new InputError(`is a .npy file, which holds one array: name it without ':${key}'`, path);
      return await NpyReader.fromHandle(fh, fileSize, path);
    }
    if (format === "safetensors") {
      const [{ readSafetensorsHeader }, { SafetensorsSource }] = await Promise.all([import("./safetensors/header.js"), import("./safetensors/reader.js")]);
      const bytes = new FileBytes(fh, fileSize, path);
      const header = await readSafetensorsHeader(bytes);
      const k = pickKey(header.tensors.map((t) => t.name), key, path, "tensor");
      return new SafetensorsSource(bytes, header, header.tensors.find((t) => t.name === k)!);
    }
    const { NpzArchive } = await import("./npz/archive.js");
    const archive = await NpzArchive.open(fh, fileSize, path);
    try {
      return await NpyReader.fromBytes(await archive.member(npzMember(archive, key), true));
    } finally {
      archive.close();
    }
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Open each of `names` (undefined stays undefined); on a failure, close those already open. */
export async function openTensors<K extends string>(names: Partial<Record<K, string>>): Promise<Partial<Record<K, TensorSource>>> {
  const open: Partial<Record<K, TensorSource>> = {};
  try {
    for (const [k, p] of Object.entries(names) as Array<[K, string | undefined]>) if (p !== undefined) open[k] = await openTensor(p);
    return open;
  } catch (e) {
    await closeAll(open);
    throw e;
  }
}

export async function closeAll(sources: Partial<Record<string, TensorSource>>): Promise<void> {
  for (const s of Object.values(sources)) await s?.close().catch(() => undefined);
}
