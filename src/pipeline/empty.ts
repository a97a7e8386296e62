/**
 * Tensors with no values (N, C or HxW zero) need no kernel, and no memory that grows with them: as
 * in PyTorch, an empty group has mean 0 and rstd NaN, and its gradients are 0 (dgamma: rstd·0 summed
 * over n). The results are written in fixed-size chunks.
 */
import { type Dims, groupOf } from "../core/dims.js";
import type { TensorSink } from "../io/tensor.js";

const CHUNK = 1 << 16;

/** `count` copies of `value` to `sink`, a chunk at a time. */
async function fill(sink: TensorSink | undefined, count: number, value: number): Promise<void> {
  if (!sink) return;
  const buf = new Float64Array(Math.min(CHUNK, count)).fill(value);
  for (let done = 0; done < count; done += buf.length) await sink.write(buf.subarray(0, Math.min(buf.length, count - done)));
}

export async function emptyForward(d: Dims, sinks: { mean?: TensorSink; rstd?: TensorSink; var?: TensorSink }): Promise<void> {
  await fill(sinks.mean, d.N * d.G, 0);
  await fill(sinks.rstd, d.N * d.G, NaN);
  await fill(sinks.var, d.N * d.G, NaN);
}

export async function emptyBackward(d: Dims, stats: { rstd: Float64Array } | null, sinks: { dgamma?: TensorSink; dbeta?: TensorSink }): Promise<void> {
  if (sinks.dgamma) {
    // dγ_c = Σ_n rstd(n, g)·ds(n, c) with ds = 0: 0, or NaN where an rstd is not finite (always, when recomputed)
    const out = new Float64Array(Math.min(CHUNK, d.C));
    for (let c0 = 0; c0 < d.C; c0 += out.length) {
      const m = Math.min(out.length, d.C - c0);
      for (let i = 0; i < m; i++) {
        const g = d.D === 0 ? 0 : groupOf(d, c0 + i);
        let s = 0;
        for (let n = 0; n < d.N; n++) s += (stats ? stats.rstd[n * d.G + g] : NaN) * 0;
        out[i] = s;
      }
      await sinks.dgamma.write(out.subarray(0, m));
    }
  }
  await fill(sinks.dbeta, d.C, 0);
}
