/**
 * Forward of items larger than the memory budget: per item, its chunks are read once for the
 * statistics (again with the float64-accumulating step if float32 sums overflowed) and once more to
 * be normalised and written.
 */
import type { TensorSink, TensorSource } from "../io/tensor.js";
import { ChunkedItem } from "../kernels/chunked.js";
import type { Engine } from "../kernels/engine.js";
import type { Precision } from "../kernels/plan.js";
import { type ChunkPlan, elementBytes, readShifts, viewOf } from "./slices.js";
import { type Phases, phaseTimer } from "./stream.js";

export async function forwardChunked(
  engine: Engine,
  x: TensorSource,
  plan: ChunkPlan,
  p: { gamma: Float64Array | null; beta: Float64Array | null; eps: number; precision: Precision; act?: number },
  sinks: { y?: TensorSink; mean?: TensorSink; rstd?: TensorSink; var?: TensorSink },
  onProgress?: (done: number, total: number) => void,
): Promise<Phases> {
  const { timed, finish } = phaseTimer();
  const buf = engine.arena.alloc(plan.cap * elementBytes(p.precision));
  for (let i = 0; i < plan.items; i++) {
    const item = plan.item(i);
    const C = item.geo.C;
    const ci = new ChunkedItem(engine, item.geo, p.eps, p.gamma?.subarray(item.c0, item.c0 + C) ?? null, p.beta?.subarray(item.c0, item.c0 + C) ?? null, null, await readShifts(x, item), !!sinks.var, p.act ?? 0);
    try {
      const pass = async (step: "stats" | "statsWide" | "norm") => {
        for (let j = 0; j < plan.chunksPerItem; j++) {
          const c = plan.chunk(j);
          const view = viewOf(engine, p.precision, buf, c.to - c.from);
          await timed("read", () => x.read(item.start + c.from, c.to - c.from, view));
          await timed("compute", () => ci.step(step, { x: buf }, c.u0, c.u1));
          if (step === "norm" && sinks.y) await timed("write", () => sinks.y!.write(view));
        }
      };
      await pass("stats");
      if (!ci.finalizeStats()) {
        await pass("statsWide");
        ci.finalizeStats(true);
      }
      if (sinks.y) {
        ci.prepareNorm();
        await pass("norm");
      }
      const r = ci.results();
      await timed("write", async () => {
        await sinks.mean?.write(r.mean);
        await sinks.rstd?.write(r.rstd);
        if (r.variance) await sinks.var?.write(r.variance);
      });
    } finally {
      ci.release();
    }
    onProgress?.(i + 1, plan.items);
  }
  return finish();
}
