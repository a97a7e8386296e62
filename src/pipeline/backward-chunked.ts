/**
 * Backward of items larger than the memory budget: per item, its chunks are read for the statistics
 * (unless given), for the internal gradients, and once more for dX; each pass is redone with the
 * float64-accumulating step when float32 sums overflowed.
 */
import { ChunkedItem } from "../kernels/chunked.js";
import type { Engine } from "../kernels/engine.js";
import { gammaBetaBackward } from "../kernels/gamma-beta.js";
import type { BackwardRun, BackwardState } from "./backward.js";
import { type ChunkPlan, elementBytes, readShifts, viewOf } from "./slices.js";
import { type Phases, phaseTimer } from "./stream.js";

type Step = "stats" | "statsWide" | "grad" | "gradWide" | "dx";

export async function backwardChunked(engine: Engine, r: BackwardRun, plan: ChunkPlan, state: BackwardState): Promise<Phases> {
  const { precision, gamma, beta, stats: given } = state;
  const act = r.act ?? 0;
  const eb = elementBytes(precision);
  const dxSink = r.sinks.dx;
  const { timed, finish } = phaseTimer();
  const bdy = engine.arena.alloc(plan.cap * eb), bx = engine.arena.alloc(plan.cap * eb);
  for (let i = 0; i < plan.items; i++) {
    const item = plan.item(i);
    const NG = item.geo.G, cs = item.c0, ce = item.c0 + item.geo.C;
    const stats = given ? { mean: given.mean.subarray(item.stats0, item.stats0 + NG), rstd: given.rstd.subarray(item.stats0, item.stats0 + NG) } : null;
    const shifts = stats ? new Float64Array(NG) : await readShifts(r.x, item);
    const ci = new ChunkedItem(engine, item.geo, r.eps, gamma?.subarray(cs, ce) ?? null, act ? (beta?.subarray(cs, ce) ?? null) : null, stats, shifts, false, act);
    try {
      const pass = async (step: Step) => {
        for (let j = 0; j < plan.chunksPerItem; j++) {
          const c = plan.chunk(j);
          const n = c.to - c.from;
          await timed("read", async () => {
            if (step !== "stats" && step !== "statsWide") await r.dy.read(item.start + c.from, n, viewOf(engine, precision, bdy, n));
            await r.x.read(item.start + c.from, n, viewOf(engine, precision, bx, n));
          });
          await timed("compute", () => ci.step(step, { x: bx, dy: bdy }, c.u0, c.u1));
          if (step === "dx") await timed("write", () => dxSink!.write(viewOf(engine, precision, bdy, n)));
        }
      };
      if (!stats) {
        await pass("stats");
        if (!ci.finalizeStats()) {
          await pass("statsWide");
          ci.finalizeStats(true);
        }
      }
      if (act) ci.prepareAct();
      await pass("grad");
      if (!ci.finalizeGrad()) {
        await pass("gradWide");
        ci.finalizeGrad(true);
      }
      if (dxSink) {
        ci.prepareDx();
        await pass("dx");
      }
      const res = ci.results();
      // gamma/beta backward: running sums over n, in item (so n) order
      gammaBetaBackward(item.geo, res.ds, res.db, res.rstd, state.dgamma.subarray(cs, ce), state.dbeta.subarray(cs, ce));
    } finally {
      ci.release();
    }
    r.onProgress?.(i + 1, plan.items);
  }
  return finish();
}
