/**
 * Backward, streamed: dY and X flow from their sources through the arena in slices along N; dX is
 * written over dY and appended per slice; dgamma/dbeta accumulate over n in order and are written at
 * the end. Items too large for the budget go through backward-chunked.ts.
 */
import { type Dims, numel } from "../core/dims.js";
import { now } from "../io/clock.js";
import type { TensorSink, TensorSource } from "../io/tensor.js";
import type { Engine } from "../kernels/engine.js";
import { gammaBetaBackward } from "../kernels/gamma-beta.js";
import { backwardChunked } from "./backward-chunked.js";
import { type HostPart, jobValues, type Plan, planRun } from "./budget.js";
import { emptyBackward } from "./empty.js";
import type { StreamedRun } from "./forward.js";
import { channelVectors, groupStatistics, loadSide, precisionOf, residentCopies, type Side } from "./inputs.js";
import { elementBytes, type SlicePlan, viewOf } from "./slices.js";
import { type Phases, phaseTimer, pipeline } from "./stream.js";

export interface BackwardRun {
  dy: TensorSource;
  x: TensorSource;
  /** X's dimensions, validated against the layout and group count (core/dims.ts). */
  dims: Dims;
  /** The forward's scale, C values (shape checked), read once the plan fits. */
  gamma: Side;
  /** The forward's statistics, (N, G) each (shapes checked), read once the plan fits; null: recomputed from X with eps. */
  stats: { mean: Side; rstd: Side } | null;
  eps: number;
  /**
   * Through an activation, Y = act(GroupNorm(X)): its kernels' code (default 0, none), and the
   * forward's shift, C values (shape checked), read once the plan fits; beta is used only with act.
   */
  act?: number;
  beta?: Side;
  memoryBudget: number;
  /** Where each result goes; an absent sink is not computed (dX) or not written. */
  sinks: { dx?: TensorSink; dgamma?: TensorSink; dbeta?: TensorSink };
  /** What the sinks hold for the run besides (a per-group affine's sums), counted by the plan. */
  held?: HostPart[];
  onProgress?: (done: number, total: number) => void;
}

/** What a slice or item of the backward works with (the side vectors read), and the running dgamma/dbeta sums. */
export interface BackwardState {
  precision: ReturnType<typeof precisionOf>;
  gamma: Float64Array | null;
  /** The forward's shift, through an activation only. */
  beta: Float64Array | null;
  stats: { mean: Float64Array; rstd: Float64Array } | null;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/**
 * The plan of a backward run, from the headers alone: the slices, or a refusal naming what needs the
 * memory. Nothing is read. An empty tensor reads only the given rstd (dgamma is NaN where it is not
 * finite), and holds no per-channel vector.
 */
export function planBackward(threads: number, r: Pick<BackwardRun, "dy" | "x" | "dims" | "gamma" | "stats" | "act" | "beta" | "memoryBudget" | "held">): Plan {
  const d = r.dims;
  const host: HostPart[] = [];
  if (numel(d) > 0) {
    // the dgamma/dbeta sums, gamma (and beta, through an activation), the given statistics and the inputs' own copies stay for the run
    const beta = r.act ? (r.beta ?? null) : null;
    host.push(channelVectors(d.C, [...(r.gamma ? ["gamma"] : []), ...(beta ? ["beta"] : []), "the dgamma sums", "the dbeta sums"], [r.gamma, beta], r.x.name));
    if (r.stats) host.push(groupStatistics(d.N, d.G, ["mean", "rstd"], r.stats.mean, r.x.name));
    const copies = residentCopies([{ source: r.dy, as: "dY" }, { source: r.x, as: "X" }]);
    if (copies) host.push(copies);
  } else if (r.stats) host.push(groupStatistics(d.N, d.G, ["rstd"], r.stats.rstd, r.x.name));
  host.push(...(r.held ?? []));
  return planRun({ dims: d, precision: precisionOf(r.x.dtype, r.dy.dtype), kind: "backward", budget: r.memoryBudget, threads, host, file: r.x.name, act: !!r.act });
}

export async function streamBackward(engine: Engine, r: BackwardRun, plan: Plan = planBackward(engine.threads, r)): Promise<StreamedRun> {
  const d = r.dims;
  const precision = precisionOf(r.x.dtype, r.dy.dtype);
  if (plan.kind === "empty") {
    const { timed, finish } = phaseTimer();
    const rstd = r.stats ? await loadSide(r.stats.rstd) : null;
    await timed("write", () => emptyBackward(d, rstd, r.sinks));
    return { phases: finish(), slices: 0 };
  }
  // the pool's threads (when the run is large enough to gain from them) start while dY and X are read
  engine.expect(2 * numel(d) * elementBytes(precision), 2 * jobValues(plan) * elementBytes(precision));
  const gamma = await loadSide(r.gamma), beta = r.act ? await loadSide(r.beta ?? null) : null;
  const mean = r.stats ? await loadSide(r.stats.mean) : null, rstd = r.stats ? await loadSide(r.stats.rstd) : null;
  const state: BackwardState = { precision, gamma, beta, stats: mean && rstd ? { mean, rstd } : null, dgamma: new Float64Array(d.C), dbeta: new Float64Array(d.C) };
  // dX is written over dY in the arena (each dy is read before its dx is written).
  const mark = engine.arena.used;
  let phases: Phases;
  let count: number;
  try {
    if (plan.kind === "chunks") {
      // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks
      count = plan.chunks.items * plan.chunks.chunksPerItem;
      phases = await backwardChunked(engine, r, plan.chunks, state);
    } else {
      count = plan.slices.count;
      phases = await backwardSlices(engine, r, plan.slices, state);
    }
  } finally {
    engine.arena.release(mark);
  }
  const t = now();
  if (r.sinks.dgamma) await r.sinks.dgamma.write(state.dgamma);
  if (r.sinks.dbeta) await r.sinks.dbeta.write(state.dbeta);
  phases.write += now() - t;
  return { phases, slices: count };
}

async function backwardSlices(engine: Engine, r: BackwardRun, slices: SlicePlan, state: BackwardState): Promise<Phases> {
  const { precision, gamma, beta, stats: given } = state;
  const eb = elementBytes(precision);
  const dx = r.sinks.dx;
  const cap = slices.cap;
  const buffers = Array.from({ length: Math.min(3, slices.count) }, () => ({
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
        const stats = given ? { mean: given.mean.subarray(s.stats0, s.stats0 + NG), rstd: given.rstd.subarray(s.stats0, s.stats0 + NG) } : null;
        const cs = s.c0, ce = s.c0 + s.geo.C;
        const through = r.act ? { act: r.act, beta: beta?.subarray(cs, ce) ?? null } : null;
        const res = await engine.backward(s.geo, r.eps, { dy: b.dy, x: b.x, dx: dx ? b.dy : 0 }, gamma?.subarray(cs, ce) ?? null, stats, through);
        // gamma/beta backward: running sums over n, in slice (so n) order
        gammaBetaBackward(s.geo, res.ds, res.db, res.rstd, state.dgamma.subarray(cs, ce), state.dbeta.subarray(cs, ce));
      },
      write: async (s, b) => {
        if (dx) await dx.write(viewOf(engine, precision, b.dy, s.count));
      },
    },
    (s) => r.onProgress?.(s.index + 1, slices.count),
  );
}
