/** compareFiles and describeFile: the `compare` and `info` commands as functions. */
import { type CompareReport, compareSources } from "../analysis/compare.js";
import { type Summary, summarize, valuesInput } from "../analysis/info.js";
import { type ContainerFormat, inspectTensorFile, type ListedTensor } from "../io/inspect.js";
import { isNumeric } from "../io/npy/values.js";
import { closeAll, openTensors } from "../io/open.js";
import { checkMemory } from "../core/params.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { type GroupNormEngine, withEngine } from "./engine.js";

export type { CompareReport } from "../analysis/compare.js";

export interface CompareOptions {
  /** Absolute tolerance (default 1e-6; 1e-5 when either file is bfloat16). */
  atol?: number;
  /** Relative tolerance, times |b| (default 1e-5; 1.6e-2 when either file is bfloat16). */
  rtol?: number;
  /**
   * Bytes of the slices in flight, and of a Fortran-order file's C-order copy when the other file is
   * in C order (default 384 MiB).
   */
  memory?: number;
  threads?: number;
  engine?: GroupNormEngine;
}

/** Are the values of `a` close to those of the reference `b`? NumPy's isclose, streamed. */
export function compareFiles(a: string, b: string, o: CompareOptions = {}): Promise<CompareReport> {
  const budget = checkMemory(o.memory, DEFAULT_MEMORY);
  return withEngine(o, async (engine) => {
    const src = await openTensors({ a, b });
    try {
      // bfloat16 holds 8 significant bits: PyTorch's assert_close defaults for it
      const bf16 = src.a!.dtype === "bfloat16" || src.b!.dtype === "bfloat16";
      return await compareSources(engine, src.a!, src.b!, o.atol ?? (bf16 ? 1e-5 : 1e-6), o.rtol ?? (bf16 ? 1.6e-2 : 1e-5), budget);
    } finally {
      await closeAll(src);
    }
  });
}

export interface DescribeOptions {
  /** Bytes of the slices in flight while the statistics are computed (default 384 MiB). */
  memory?: number;
  threads?: number;
  engine?: GroupNormEngine;
}

export interface InfoReport extends NullableSummary {
  command: "info";
  /** The name as given (`x.npy`, `a.npz:key`, `m.safetensors:name`). */
  path: string;
  /** The file, and the tensor's key in a container (null for a .npy file). */
  file: string;
  key: string | null;
  format: "npy" | "npz" | "safetensors";
  /** The .npy format version (of the file or the .npz member); null for safetensors. */
  version: string | null;
  /** NumPy's name of the element type: float32, bfloat16, int64, bool, complex128, <U10, object, … */
  dtype: string;
  byte_order: "little" | "big" | "none";
  order: "C" | "F";
  shape: number[];
  size: number;
  /** Bytes of data (null for object arrays, whose elements have no fixed size). */
  bytes: number | null;
  file_bytes: number;
  /** In an .npz: "stored" or "deflated", and the member's bytes in the archive; else null. */
  storage: string | null;
  stored_bytes: number | null;
  /** Whether min, max, mean, std and the non-finite counts were computed, and if not why. */
  statistics: string;
}

/** info on a container named without a key: what it holds. */
export interface ContainerInfoReport {
  command: "info";
  path: string;
  format: ContainerFormat;
  file_bytes: number;
  /** Its tensors (an .npz's .npy members), in the file's order. */
  tensors: ListedTensor[];
  /** An .npz's members that are not .npy: reported, not read. */
  others: ListedTensor[];
  /** safetensors' __metadata__ (null when absent, and for .npz). */
  metadata: Record<string, string> | null;
}

type NullableSummary = { [K in keyof Summary]: Summary[K] | null };

/**
 * A tensor's header facts and, for numeric dtypes, summary statistics (over the finite values),
 * streamed; for a container named without a key (`a.npz`, `m.safetensors`), the list of its tensors.
 */
export async function describeFile(name: string, o: DescribeOptions = {}): Promise<InfoReport | ContainerInfoReport> {
  const budget = checkMemory(o.memory, DEFAULT_MEMORY);
  const found = await inspectTensorFile(name);
  if (found.kind === "container") {
    const l = found.listing;
    return { command: "info", path: name, format: l.format, file_bytes: l.fileBytes, tensors: l.tensors, others: l.others, metadata: l.metadata };
  }
  const h = found.facts;
  try {
    let summary: NullableSummary = { min: null, max: null, mean: null, std: null, nan: null, posinf: null, neginf: null };
    let statistics = `not computed for ${h.element.kind === "c" ? "complex" : h.element.name} values`;
    if (isNumeric(h)) {
      summary = await withEngine(o, (engine) => summarize(engine, valuesInput(engine, h.source, h.values), h.size, budget));
      statistics = "computed";
    }
    return {
      command: "info",
      path: name,
      file: h.path,
      key: h.key,
      format: h.format,
      version: h.version,
      dtype: h.element.name,
      byte_order: h.element.byteOrder,
      order: h.order,
      shape: h.shape,
      size: h.size,
      bytes: h.bytes,
      file_bytes: h.fileBytes,
      storage: h.storage,
      stored_bytes: h.storedBytes,
      ...summary,
      statistics,
    };
  } finally {
    await found.close().catch(() => undefined);
  }
}
