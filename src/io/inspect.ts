/**
 * What info reports, from headers only: a tensor's facts (a .npy file, an .npz member, a
 * safetensors tensor), or, for a container named without a key, the list of what it holds.
 */
import { InputError } from "../errors.js";
import { type ByteSource, FileBytes } from "./bytes.js";
import { describeHeader, type Element } from "./npy/header.js";
import type { RawDescription } from "./npy/values.js";
import { NpzArchive, type NpzMember } from "./npz/archive.js";
import { locateTensor, npzMember, openIdentified, pickKey } from "./open.js";
import { readSafetensorsHeader, type SafetensorsHeader, type SafetensorsTensor } from "./safetensors/header.js";

export type ContainerFormat = "npz" | "safetensors";

export interface TensorFacts {
  format: "npy" | ContainerFormat;
  /** The file, and the tensor's key in a container (null for a .npy file). */
  path: string;
  key: string | null;
  /** The .npy format version (of the file, or of the .npz member); null for safetensors. */
  version: string | null;
  element: Element;
  order: "C" | "F";
  shape: number[];
  size: number;
  /** Bytes of data (null where elements have no fixed size). */
  bytes: number | null;
  fileBytes: number;
  /** In an .npz: stored or deflated, and the member's bytes in the archive. */
  storage: string | null;
  storedBytes: number | null;
  /** Where its values are, for statistics. */
  source: ByteSource;
  values: RawDescription;
}

export interface ListedTensor {
  name: string;
  /** NumPy's name of its dtype (float32, bfloat16, int64, …), null where unknown. */
  dtype: string | null;
  shape: number[] | null;
  bytes: number | null;
  /** .npz: "stored" or "deflated"; safetensors: "raw". */
  storage: string;
  /** Bytes it takes in the file. */
  stored_bytes: number;
  order: "C" | "F" | null;
  /** Why groupnorm does not read it, or what is wrong with it (null when it can be read). */
  note: string | null;
}

export interface ContainerListing {
  format: ContainerFormat;
  path: string;
  fileBytes: number;
  tensors: ListedTensor[];
  /** .npz: members that are not .npy, reported and not read. */
  others: ListedTensor[];
  /** safetensors' __metadata__. */
  metadata: Record<string, string> | null;
}

export type Inspected = { kind: "tensor"; facts: TensorFacts; close(): Promise<void> } | { kind: "container"; listing: ContainerListing };

const message = (e: unknown) => (e instanceof InputError ? e.message : String((e as Error)?.message ?? e));

async function npzListing(archive: NpzArchive): Promise<ContainerListing> {
  const tensors: ListedTensor[] = [];
  const others: ListedTensor[] = [];
  for (const m of archive.members) {
    const base = { name: m.isNpy ? m.key : m.fileName, storage: archive.storage(m), stored_bytes: m.compressedSize };
    if (!m.isNpy) {
      others.push({ ...base, dtype: null, shape: null, bytes: m.uncompressedSize, order: null, note: "not a .npy member: not read" });
      continue;
    }
    let listed: ListedTensor = { ...base, dtype: null, shape: null, bytes: null, order: null, note: null };
    let bytes: ByteSource | undefined;
    try {
      bytes = await archive.member(m, false);
      const h = await describeHeader(bytes);
      listed = { ...listed, dtype: h.element.name, shape: h.shape, bytes: h.itemSize === null ? null : h.size * h.itemSize, order: h.fortranOrder ? "F" : "C", note: h.element.refusal };
    } catch (e) {
      listed.note = message(e);
    } finally {
      await bytes?.close(); // its inflaters (the file stays open: it is the archive's)
    }
    tensors.push(listed);
  }
  return { format: "npz", path: archive.path, fileBytes: archive.fileSize, tensors, others, metadata: null };
}

function safetensorsListing(h: SafetensorsHeader): ContainerListing {
  const tensors = h.tensors.map((t) => ({ name: t.name, dtype: t.element.name, shape: t.shape, bytes: t.end - t.begin, storage: "raw", stored_bytes: t.end - t.begin, order: "C" as const, note: t.element.refusal }));
  return { format: "safetensors", path: h.path, fileBytes: h.fileSize, tensors, others: [], metadata: h.metadata };
}

async function npzMemberFacts(archive: NpzArchive, m: NpzMember): Promise<TensorFacts> {
  const bytes = await archive.member(m, true);
  const h = await describeHeader(bytes);
  return {
    format: "npz", path: archive.path, key: m.key, version: `${h.version[0]}.${h.version[1]}`, element: h.element, order: h.fortranOrder ? "F" : "C",
    shape: h.shape, size: h.size, bytes: h.itemSize === null ? null : h.size * h.itemSize, fileBytes: archive.fileSize,
    storage: archive.storage(m), storedBytes: m.compressedSize, source: bytes, values: h,
  };
}

function safetensorsFacts(bytes: ByteSource, h: SafetensorsHeader, t: SafetensorsTensor): TensorFacts {
  return {
    format: "safetensors", path: h.path, key: t.name, version: null, element: t.element, order: "C", shape: t.shape, size: t.size, bytes: t.end - t.begin,
    fileBytes: h.fileSize, storage: null, storedBytes: null, source: bytes, values: { element: t.element, size: t.size, dataOffset: h.dataStart + t.begin },
  };
}

/** Read the headers of the file `name` names: one tensor's facts (its source left open for statistics), or a container's listing. */
export async function inspectTensorFile(name: string): Promise<Inspected> {
  const { path, key } = await locateTensor(name);
  const { fh, fileSize, format } = await openIdentified(path);
  const bytes = new FileBytes(fh, fileSize, path);
  const tensor = (facts: TensorFacts): Inspected => ({ kind: "tensor", facts, close: () => facts.source.close() });
  try {
    if (format === "npy") {
      if (key !== null) throw new InputError(`is a .npy file, which holds one array: name it without ':${key}'`, path);
      const h = await describeHeader(bytes);
      return tensor({
        format: "npy", path, key: null, version: `${h.version[0]}.${h.version[1]}`, element: h.element, order: h.fortranOrder ? "F" : "C", shape: h.shape,
        size: h.size, bytes: h.itemSize === null ? null : h.size * h.itemSize, fileBytes: fileSize, storage: null, storedBytes: null, source: bytes, values: h,
      });
    }
    if (format === "safetensors") {
      const h = await readSafetensorsHeader(bytes);
      if (key === null) {
        await bytes.close();
        return { kind: "container", listing: safetensorsListing(h) };
      }
      const k = pickKey(h.tensors.map((t) => t.name), key, path, "tensor");
      return tensor(safetensorsFacts(bytes, h, h.tensors.find((t) => t.name === k)!));
    }
    const archive = await NpzArchive.open(fh, fileSize, path);
    try {
      if (key === null) {
        const listing = await npzListing(archive);
        await bytes.close();
        return { kind: "container", listing };
      }
      return tensor(await npzMemberFacts(archive, npzMember(archive, key)));
    } finally {
      archive.close();
    }
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}
