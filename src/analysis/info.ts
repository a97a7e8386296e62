/** Summary statistics of a tensor's values, streamed in chunks (info). */
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

/** Welford's running mean and M2 in float64 (stable for any spread), with min, max and the non-finite counts. */
export class SummaryAccumulator {
  private count = 0;
  private nan = 0;
  private posinf = 0;
  private neginf = 0;
  private min = Infinity;
  private max = -Infinity;
  private mean = 0;
  private m2 = 0;

  add(v: ArrayLike<number>): void {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (Number.isNaN(x)) this.nan++;
      else if (x === Infinity) this.posinf++;
      else if (x === -Infinity) this.neginf++;
      else {
        this.count++;
        if (x < this.min) this.min = x;
        if (x > this.max) this.max = x;
        const d = x - this.mean;
        this.mean += d / this.count;
        this.m2 += d * (x - this.mean);
      }
    }
  }

  result(): Summary {
    const c = this.count;
    return {
      min: c ? this.min : null,
      max: c ? this.max : null,
      mean: c ? this.mean : null,
      std: c ? Math.sqrt(this.m2 / c) : null,
      nan: this.nan,
      posinf: this.posinf,
      neginf: this.neginf,
    };
  }
}

export async function summarize(source: TensorSource): Promise<Summary> {
  const acc = new SummaryAccumulator();
  await forEachChunk(source, (v) => acc.add(v));
  return acc.result();
}
