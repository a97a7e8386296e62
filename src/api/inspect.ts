/** compareFiles and describeFile: the `compare` and `info` commands as functions. */
import type { Dtype } from "../core/dtype.js";
import { type CompareReport, compareSources } from "../analysis/compare.js";
import { type Summary, summarize } from "../analysis/info.js";
import { NpyReader } from "../io/npy/index.js";
import { closeAll, openTensors } from "../io/open.js";

export type { CompareReport } from "../analysis/compare.js";

export interface CompareOptions {
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Relative tolerance, times |b| (default 1e-5). */
  rtol?: number;
}

/** Are the values of `a` close to those of the reference `b`? NumPy's isclose, streamed. */
export async function compareFiles(a: string, b: string, o: CompareOptions = {}): Promise<CompareReport> {
  const src = await openTensors({ a, b });
  try {
    return await compareSources(src.a!, src.b!, o.atol ?? 1e-6, o.rtol ?? 1e-5);
  } finally {
    await closeAll(src);
  }
}

export interface InfoReport extends Summary {
  command: "info";
  path: string;
  version: string;
  dtype: Dtype;
  byte_order: "little" | "big";
  order: "C" | "F";
  shape: number[];
  size: number;
  bytes: number;
  file_bytes: number;
}

/** A file's header facts and summary statistics (over the finite values), streamed. */
export async function describeFile(path: string): Promise<InfoReport> {
  const reader = await NpyReader.open(path);
  try {
    const h = reader.header;
    const summary = await summarize(reader);
    return {
      command: "info",
      path,
      version: `${h.version[0]}.${h.version[1]}`,
      dtype: h.dtype,
      byte_order: h.littleEndian ? "little" : "big",
      order: h.fortranOrder ? "F" : "C",
      shape: h.shape,
      size: h.size,
      bytes: h.size * h.itemSize,
      file_bytes: h.fileSize,
      ...summary,
    };
  } finally {
    await reader.close();
  }
}
