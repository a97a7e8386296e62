/** Summary statistics of a tensor, streamed in chunks (info). */
import type { TensorSource } from "../io/tensor.js";
import { forEachChunk } from "./chunks.js";

export interface Summary {
  /** Over the finite values (null when there are none). */
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  posinf: number;
  neginf: number;
}

export async function summarize(source: TensorSource): Promise<Summary> {
  let count = 0, nan = 0, posinf = 0, neginf = 0;
  let min = Infinity, max = -Infinity;
  // Welford's running mean and M2 in float64 (stable for any spread)
  let mean = 0, m2 = 0;
  await forEachChunk(source, (v) => {
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
    min: count ? min : null,
    max: count ? max : null,
    mean: count ? mean : null,
    std: count ? Math.sqrt(m2 / count) : null,
    nan,
    posinf,
    neginf,
  };
}
