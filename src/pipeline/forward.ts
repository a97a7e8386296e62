/**
 * Forward, streamed: X flows from its source through the arena in slices along N (whole samples,
 * or whole groups of one NCHW sample), each slice normalised by the engine with Y written over X,
 * and appended to the sinks. Items too large for the budget go through forward-chunked.ts.
 */
import { type Dims, numel } from "../core/dims.js";
import type { TensorSink, TensorSource } from "../io/tensor.js";
import type { Engine } from "../kernels/engine.js";
import { type HostPart, jobValues, type Plan, planRun } from "./budget.js";
import { emptyForward } from "./empty.js";
import { forwardChunked } from "./forward-chunked.js";
import { channelVectors, loadSide, precisionOf, residentCopies, type Side } from "./inputs.js";
import { elementBytes, viewOf } from "./slices.js";
import { type Phases, phaseTimer, pipeline } from "./stream.js";

export interface ForwardRun {
  x: TensorSource;
  /** X's dimensions, validated against the layout and group count (core/dims.ts). */
  dims: Dims;
  /** Per-channel scale and shift, C values each (shapes checked), read once the plan fits. */
  gamma: Side;
  beta: Side;
  eps: number;
  /** The activation after the GroupNorm, as the kernels' code (core/activation.ts: activationCode; default 0, none). */
  act?: number;
  memoryBudget: number;
  /** Where each result goes; an absent sink is not written (`var`: each group's biased variance). */
  sinks: { y?: TensorSink; mean?: TensorSink; rstd?: TensorSink; var?: TensorSink };
  onProgress?: (done: number, total: number) => void;
}

export interface StreamedRun {
  phases: Phases;
  /** Slices (or chunks) the tensor went through. */
  slices: number;
}

/**
 * The plan of a forward run, from the headers alone: the slices, or a refusal naming what needs the
 * memory. Nothing is read; an empty tensor reads no side vector, so they cost it nothing. `variance`:
 * the var output is wanted (each slice keeps it too).
 */
export function planForward(threads: number, r: Pick<ForwardRun, "x" | "dims" | "gamma" | "beta" | "memoryBudget"> & { variance?: boolean }): Plan {
  const d = r.dims;
  const host: HostPart[] = [];
  if (numel(d) > 0) {
    const named = [r.gamma && "gamma", r.beta && "beta"].filter((v) => v) as string[];
    if (named.length) host.push(channelVectors(d.C, named, [r.gamma, r.beta], r.x.name));
    const copy = residentCopies([{ source: r.x, as: "X" }]);
    if (copy) host.push(copy);
  }
  return planRun({ dims: d, precision: precisionOf(r.x.dtype), kind: "forward", budget: r.memoryBudget, threads, host, file: r.x.name, variance: r.variance });
}

export async function streamForward(engine: Engine, r: ForwardRun, plan: Plan = planForward(engine.threads, { ...r, variance: !!r.sinks.var })): Promise<StreamedRun> {
  const d = r.dims;
  const precision = precisionOf(r.x.dtype);
  const { y, mean, rstd, var: variance } = r.sinks;
  if (plan.kind === "empty") {
    const { timed, finish } = phaseTimer();
    await timed("write", () => emptyForward(d, r.sinks));
    return { phases: finish(), slices: 0 };
  }
  // the pool's threads (when the run is large enough to gain from them) start while X is read
  engine.expect(numel(d) * elementBytes(precision), jobValues(plan) * elementBytes(precision));
  const gamma = await loadSide(r.gamma), beta = await loadSide(r.beta);
  // Y is written over X in the arena (the kernels read each value before writing it): one tensor
  // buffer per slice in flight, and no write-allocate traffic for a separate output.
  const eb = elementBytes(precision);
  const mark = engine.arena.used;
  try {
    if (plan.kind === "chunks") {
      // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks, twice
      const c = plan.chunks;
      const phases = await forwardChunked(engine, r.x, c, { gamma, beta, eps: r.eps, precision, act: r.act ?? 0 }, r.sinks, r.onProgress);
      return { phases, slices: c.items * c.chunksPerItem };
    }
    const slices = plan.slices;
    const cap = slices.cap;
    const buffers = Array.from({ length: Math.min(3, slices.count) }, () => ({
      x: engine.arena.alloc(cap * eb),
      mean: new Float64Array(0) as Float64Array<ArrayBufferLike>,
      rstd: new Float64Array(0) as Float64Array<ArrayBufferLike>,
      var: new Float64Array(0) as Float64Array<ArrayBufferLike>,
    }));
    const phases = await pipeline(
      slices,
      buffers,
      {
        read: (s, b) => r.x.read(s.start, s.count, viewOf(engine, precision, b.x, s.count)),
        compute: async (s, b) => {
          const C = s.geo.C;
          const res = await engine.forward(s.geo, r.eps, b.x, b.x, gamma?.subarray(s.c0, s.c0 + C) ?? null, beta?.subarray(s.c0, s.c0 + C) ?? null, { variance: !!variance, act: r.act ?? 0 });
          b.mean = res.mean;
          b.rstd = res.rstd;
          if (res.variance) b.var = res.variance;
        },
        write: async (s, b) => {
          if (y) await y.write(viewOf(engine, precision, b.x, s.count));
          if (mean) await mean.write(b.mean);
          if (rstd) await rstd.write(b.rstd);
          if (variance) await variance.write(b.var);
        },
      },
      (s) => r.onProgress?.(s.index + 1, slices.count),
    );
    return { phases, slices: slices.count };
  } finally {
    engine.arena.release(mark);
  }
}
