/** compareFiles and describeFile: the `compare` and `info` commands as functions. */
import { type CompareReport, compareSources } from "../analysis/compare.js";
import { type Summary, SummaryAccumulator } from "../analysis/info.js";
import { describeHeader } from "../io/npy/header.js";
import { forEachRawChunk, isNumeric } from "../io/npy/values.js";
import { closeAll, openIdentified, openTensors } from "../io/open.js";
import { checkMemory } from "../core/params.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";

export type { CompareReport } from "../analysis/compare.js";

export interface CompareOptions {
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Relative tolerance, times |b| (default 1e-5). */
  rtol?: number;
  /** Bytes a Fortran-order file's C-order copy may take when the other file is in C order (default 384 MiB). */
  memory?: number;
}

/** Are the values of `a` close to those of the reference `b`? NumPy's isclose, streamed. */
export async function compareFiles(a: string, b: string, o: CompareOptions = {}): Promise<CompareReport> {
  const src = await openTensors({ a, b });
  try {
    return await compareSources(src.a!, src.b!, o.atol ?? 1e-6, o.rtol ?? 1e-5, checkMemory(o.memory, DEFAULT_MEMORY));
  } finally {
    await closeAll(src);
  }
}

export interface InfoReport extends NullableSummary {
  command: "info";
  path: string;
  format: "npy";
  version: string;
  /** NumPy's name of the element type: float32, int64, bool, complex128, <U10, object, … */
  dtype: string;
  byte_order: "little" | "big" | "none";
  order: "C" | "F";
  shape: number[];
  size: number;
  /** Bytes of data (null for object arrays, whose elements have no fixed size). */
  bytes: number | null;
  file_bytes: number;
  /** Whether min, max, mean, std and the non-finite counts were computed, and if not why. */
  statistics: string;
}

type NullableSummary = { [K in keyof Summary]: Summary[K] | null };

/** A file's header facts and, for numeric dtypes, summary statistics (over the finite values), streamed. */
export async function describeFile(path: string): Promise<InfoReport> {
  const { fh, fileSize } = await openIdentified(path);
  try {
    const h = await describeHeader(fh, fileSize, path);
    let summary: NullableSummary = { min: null, max: null, mean: null, std: null, nan: null, posinf: null, neginf: null };
    let statistics = `not computed for ${h.element.kind === "c" ? "complex" : h.element.name} values`;
    if (isNumeric(h)) {
      const acc = new SummaryAccumulator();
      await forEachRawChunk(fh, h, (v) => acc.add(v));
      summary = acc.result();
      statistics = "computed";
    }
    return {
      command: "info",
      path,
      format: "npy",
      version: `${h.version[0]}.${h.version[1]}`,
      dtype: h.element.name,
      byte_order: h.element.byteOrder,
      order: h.fortranOrder ? "F" : "C",
      shape: h.shape,
      size: h.size,
      bytes: h.itemSize === null ? null : h.size * h.itemSize,
      file_bytes: h.fileSize,
      ...summary,
      statistics,
    };
  } finally {
    await fh.close().catch(() => undefined);
  }
}
