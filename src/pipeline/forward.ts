/**
 * Forward, streamed: X flows from its source through the arena in slices along N (whole samples,
 * or whole groups of one NCHW sample), each slice normalised by the engine with Y written over X,
 * and appended to the sinks. Items too large for the budget go through forward-chunked.ts.
 */
import type { Dims } from "../core/dims.js";
import type { TensorSink, TensorSource } from "../io/tensor.js";
import type { Engine } from "../kernels/engine.js";
import { planRun } from "./budget.js";
import { emptyForward } from "./empty.js";
import { forwardChunked } from "./forward-chunked.js";
import { checkResident, precisionOf } from "./inputs.js";
import { elementBytes, maxCount, viewOf } from "./slices.js";
import { type Phases, phaseTimer, pipeline } from "./stream.js";

export interface ForwardRun {
  x: TensorSource;
  /** X's dimensions, validated against the layout and group count (core/dims.ts). */
  dims: Dims;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  eps: number;
  /** The activation after the GroupNorm, as the kernels' code (core/activation.ts: activationCode; default 0, none). */
  act?: number;
  memoryBudget: number;
  /** Where each result goes; an absent sink is not written. */
  sinks: { y?: TensorSink; mean?: TensorSink; rstd?: TensorSink };
  onProgress?: (done: number, total: number) => void;
}

export interface StreamedRun {
  phases: Phases;
  /** Slices (or chunks) the tensor went through. */
  slices: number;
}

export async function streamForward(engine: Engine, r: ForwardRun): Promise<StreamedRun> {
  const d = r.dims;
  const precision = precisionOf(r.x.dtype);
  const { y, mean, rstd } = r.sinks;
  const hostBytes = 8 * ((r.gamma?.length ?? 0) + (r.beta?.length ?? 0)) + (r.x.residentBytes ?? 0);
  checkResident(r.x, r.memoryBudget);
  const plan = planRun({ dims: d, precision, kind: "forward", budget: r.memoryBudget, threads: engine.threads, hostBytes, act: !!r.act });
  if (plan.kind === "empty") {
    const { timed, finish } = phaseTimer();
    await timed("write", () => emptyForward(d, r.sinks));
    return { phases: finish(), slices: 0 };
  }
  // Y is written over X in the arena (the kernels read each value before writing it): one tensor
  // buffer per slice in flight, and no write-allocate traffic for a separate output.
  const eb = elementBytes(precision);
  const mark = engine.arena.used;
  try {
    if (plan.kind === "chunks") {
      // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks, twice
      const phases = await forwardChunked(engine, r.x, plan.items, plan.cap, { gamma: r.gamma, beta: r.beta, eps: r.eps, precision, act: r.act ?? 0 }, r.sinks, r.onProgress);
      return { phases, slices: plan.items.length * plan.items[0].chunks.length };
    }
    const slices = plan.slices;
    const cap = maxCount(slices);
    const buffers = Array.from({ length: Math.min(3, slices.length) }, () => ({
      x: engine.arena.alloc(cap * eb),
      mean: new Float64Array(0) as Float64Array<ArrayBufferLike>,
      rstd: new Float64Array(0) as Float64Array<ArrayBufferLike>,
    }));
    const phases = await pipeline(
      slices,
      buffers,
      {
        read: (s, b) => r.x.read(s.start, s.count, viewOf(engine, precision, b.x, s.count)),
        compute: async (s, b) => {
          const C = s.geo.C;
          const res = await engine.forward(s.geo, r.eps, b.x, b.x, r.gamma?.subarray(s.c0, s.c0 + C) ?? null, r.beta?.subarray(s.c0, s.c0 + C) ?? null, r.act ?? 0);
          b.mean = res.mean;
          b.rstd = res.rstd;
        },
        write: async (s, b) => {
          if (y) await y.write(viewOf(engine, precision, b.x, s.count));
          if (mean) await mean.write(b.mean);
          if (rstd) await rstd.write(b.rstd);
        },
      },
      (s) => r.onProgress?.(s.index + 1, slices.length),
    );
    return { phases, slices: slices.length };
  } finally {
    engine.arena.release(mark);
  }
}
