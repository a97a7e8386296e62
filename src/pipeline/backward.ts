/**
 * Backward, streamed: dY and X flow from their sources through the arena in slices along N; dX is
 * written over dY and appended per slice; dgamma/dbeta accumulate over n in order and are written at
 * the end. Items too large for the budget go through backward-chunked.ts.
 */
import type { Dims } from "../core/dims.js";
import type { TensorSink, TensorSource } from "../io/tensor.js";
import type { Engine } from "../kernels/engine.js";
import { gammaBetaBackward } from "../kernels/gamma-beta.js";
import { backwardChunked } from "./backward-chunked.js";
import { planRun } from "./budget.js";
import { emptyBackward } from "./empty.js";
import type { StreamedRun } from "./forward.js";
import { checkResident, precisionOf } from "./inputs.js";
import { elementBytes, maxCount, type Slice, viewOf } from "./slices.js";
import { type Phases, phaseTimer, pipeline } from "./stream.js";

export interface BackwardRun {
  dy: TensorSource;
  x: TensorSource;
  /** X's dimensions, validated against the layout and group count (core/dims.ts). */
  dims: Dims;
  gamma: Float64Array | null;
  /** The forward's statistics, (N, G) each; null: recomputed from X with eps. */
  stats: { mean: Float64Array; rstd: Float64Array } | null;
  eps: number;
  /** Through an activation, Y = act(GroupNorm(X)): its kernels' code (default 0, none), and the forward's beta. */
  act?: number;
  beta?: Float64Array | null;
  memoryBudget: number;
  /** Where each result goes; an absent sink is not computed (dX) or not written. */
  sinks: { dx?: TensorSink; dgamma?: TensorSink; dbeta?: TensorSink };
  onProgress?: (done: number, total: number) => void;
}

/** What a slice or item of the backward works with, and the running dgamma/dbeta sums. */
export interface BackwardState {
  precision: ReturnType<typeof precisionOf>;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

export async function streamBackward(engine: Engine, r: BackwardRun): Promise<StreamedRun> {
  const d = r.dims;
  const precision = precisionOf(r.x.dtype, r.dy.dtype);
  // the dgamma/dbeta accumulators, the given statistics and the inputs' own copies stay for the run
  const hostBytes = 8 * (2 * d.C + (r.gamma?.length ?? 0) + (r.act ? (r.beta?.length ?? 0) : 0) + (r.stats ? 2 * d.N * d.G : 0)) + (r.x.residentBytes ?? 0) + (r.dy.residentBytes ?? 0);
  checkResident(r.x, r.memoryBudget);
  checkResident(r.dy, r.memoryBudget);
  const plan = planRun({ dims: d, precision, kind: "backward", budget: r.memoryBudget, threads: engine.threads, hostBytes, act: !!r.act });
  if (plan.kind === "empty") {
    const { timed, finish } = phaseTimer();
    await timed("write", () => emptyBackward(d, r.stats, r.sinks));
    return { phases: finish(), slices: 0 };
  }
  const state: BackwardState = { precision, dgamma: new Float64Array(d.C), dbeta: new Float64Array(d.C) };
  // dX is written over dY in the arena (each dy is read before its dx is written).
  const mark = engine.arena.used;
  let phases: Phases;
  let count: number;
  try {
    if (plan.kind === "chunks") {
      // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks
      count = plan.items.length * plan.items[0].chunks.length;
      phases = await backwardChunked(engine, r, plan.items, plan.cap, state);
    } else {
      count = plan.slices.length;
      phases = await backwardSlices(engine, r, plan.slices, state);
    }
  } finally {
    engine.arena.release(mark);
  }
  const t = performance.now();
  if (r.sinks.dgamma) await r.sinks.dgamma.write(state.dgamma);
  if (r.sinks.dbeta) await r.sinks.dbeta.write(state.dbeta);
  phases.write += performance.now() - t;
  return { phases, slices: count };
}

async function backwardSlices(engine: Engine, r: BackwardRun, slices: Slice[], state: BackwardState): Promise<Phases> {
  const { precision } = state;
  const eb = elementBytes(precision);
  const dx = r.sinks.dx;
  const cap = maxCount(slices);
  const buffers = Array.from({ length: Math.min(3, slices.length) }, () => ({
    dy: engine.arena.alloc(cap * eb),
    x: engine.arena.alloc(cap * eb),
  }));
  return pipeline(
    slices,
    buffers,
    {
      read: async (s, b) => {
        await r.dy.read(s.start, s.count, viewOf(engine, precision, b.dy, s.count));
        await r.x.read(s.start, s.count, viewOf(engine, precision, b.x, s.count));
      },
      compute: async (s, b) => {
        const NG = s.geo.N * s.geo.G;
        const stats = r.stats ? { mean: r.stats.mean.subarray(s.stats0, s.stats0 + NG), rstd: r.stats.rstd.subarray(s.stats0, s.stats0 + NG) } : null;
        const cs = s.c0, ce = s.c0 + s.geo.C;
        const through = r.act ? { act: r.act, beta: r.beta?.subarray(cs, ce) ?? null } : null;
        const res = await engine.backward(s.geo, r.eps, { dy: b.dy, x: b.x, dx: dx ? b.dy : 0 }, r.gamma?.subarray(cs, ce) ?? null, stats, through);
        // gamma/beta backward: running sums over n, in slice (so n) order
        gammaBetaBackward(s.geo, res.ds, res.db, res.rstd, state.dgamma.subarray(cs, ce), state.dbeta.subarray(cs, ce));
      },
      write: async (s, b) => {
        if (dx) await dx.write(viewOf(engine, precision, b.dy, s.count));
      },
    },
    (s) => r.onProgress?.(s.index + 1, slices.length),
  );
}
