/** Opening a tensor file as a source (io/tensor.ts), whatever its format. */
import { InputError } from "../errors.js";
import { openForRead, readFully } from "./files.js";
import { NpyReader } from "./npy/index.js";
import type { FileHandle } from "node:fs/promises";
import { type Format, formatOf, notATensorFile, SNIFF_BYTES } from "./sniff.js";
import type { TensorSource } from "./tensor.js";

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
    if (format === "zip") throw new InputError(`${notZipTensor(head)}`, path);
    if (format === "safetensors") throw new InputError("is a safetensors file: save the tensor with numpy.save instead", path);
    if (format === null) throw new InputError(notATensorFile(head), path);
    return { fh, fileSize, format };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Open `path` as a tensor source; its header is read and checked, none of its data. */
export async function openTensor(path: string): Promise<TensorSource> {
  const { fh, fileSize } = await openIdentified(path);
  return NpyReader.fromHandle(fh, fileSize, path);
}

function notZipTensor(head: Uint8Array): string {
  const why = notATensorFile(head);
  return why.startsWith("is a PyTorch") ? why : "is a zip archive (such as NumPy's .npz): save each array with numpy.save";
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
