/**
 * Tensors with no values (N, C or HxW zero) need no kernel, and no memory that grows with them: as
 * in PyTorch, an empty group has mean 0 and rstd NaN, and its gradients are 0 (dgamma: rstd·0 summed
 * over n). The results are written in fixed-size chunks.
 */
import type { Dims } from "../core/dims.js";
import type { TensorSink } from "../io/tensor.js";

const CHUNK = 1 << 16;

/** `count` copies of `value` to `sink`, a chunk at a time. */
async function fill(sink: TensorSink | undefined, count: number, value: number): Promise<void> {
  if (!sink) return;
  const buf = new Float64Array(Math.min(CHUNK, count)).fill(value);
  for (let done = 0; done < count; done += buf.length) await sink.write(buf.subarray(0, Math.min(buf.length, count - done)));
}

export async function emptyForward(d: Dims, sinks: { mean?: TensorSink; rstd?: TensorSink }): Promise<void> {
  await fill(sinks.mean, d.N * d.G, 0);
  await fill(sinks.rstd, d.N * d.G, NaN);
}

/**
 * dγ_c = Σ_n rstd(n, g)·0 with ds = 0: 0, or NaN where an rstd of its group is not finite (always,
 * when recomputed and N > 0). Each group's rstd column is looked at once, with a turn of the event
 * loop every so many values (N·G may be large), so a signal acts at once.
 */
export async function emptyBackward(d: Dims, rstd: Float64Array | null, sinks: { dgamma?: TensorSink; dbeta?: TensorSink }): Promise<void> {
  if (sinks.dgamma) {
    const out = new Float64Array(Math.min(CHUNK, d.C));
    let looked = 0;
    const groupValue = async (g: number): Promise<number> => {
      if (d.N === 0) return 0;
      if (!rstd) return NaN;
      for (let n = 0; n < d.N; n++) {
        if (!Number.isFinite(rstd[n * d.G + g])) return NaN;
        if (++looked % CHUNK === 0) await breathe();
      }
      return 0;
    };
    let g = -1, value = 0;
    for (let c0 = 0; c0 < d.C; c0 += out.length) {
      const m = Math.min(out.length, d.C - c0);
      for (let i = 0; i < m; i++) {
        const gi = d.D === 0 ? 0 : Math.floor((c0 + i) / d.D);
        if (gi !== g) value = await groupValue((g = gi));
        out[i] = value;
      }
      await sinks.dgamma.write(out.subarray(0, m));
    }
  }
  await fill(sinks.dbeta, d.C, 0);
}

const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));
