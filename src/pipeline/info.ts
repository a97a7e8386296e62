/** `info`: a file's header facts and summary statistics, streamed in chunks. */
import type { Dtype } from "../core/dtype.js";
import { NpyReader } from "../io/npy/index.js";
import { forEachChunk } from "./chunks.js";

export interface InfoReport {
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
  /** Over the finite values (null when there are none). */
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  posinf: number;
  neginf: number;
}

export async function runInfo(path: string): Promise<InfoReport> {
  const reader = await NpyReader.open(path);
  try {
    const h = reader.header;
    let count = 0, nan = 0, posinf = 0, neginf = 0;
    let min = Infinity, max = -Infinity;
    // Welford's running mean and M2 in float64 (stable for any spread)
    let mean = 0, m2 = 0;
    await forEachChunk(reader, (v) => {
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (Number.isNaN(x)) nan++;
        else if (x === Infinity) posinf++;
        else if (x === -Infinity) neginf++;
        else {
          count++;
          if (x < min) min = x;
          if (x > max) max = x;
          const d = x - mean;
          mean += d / count;
          m2 += d * (x - mean);
        }
      }
    });
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
      min: count ? min : null,
      max: count ? max : null,
      mean: count ? mean : null,
      std: count ? Math.sqrt(m2 / count) : null,
      nan,
      posinf,
      neginf,
    };
  } finally {
    await reader.close();
  }
}
