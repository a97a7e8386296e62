/**
 * `forward` from files to files: X is streamed through the arena in slices along N (whole samples),
 * each slice normalised by the engine and appended to the outputs. Outputs are committed together
 * at the end or not at all.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { NpyReader } from "../io/npy/index.js";
import { OutputSet } from "../io/outputs.js";
import type { Engine } from "../kernels/engine.js";
import { dimsOf, precisionOf, readChannelVector } from "./inputs.js";
import { type ChunkedItemPlan, elementBytes, maxCount, type Phases, phaseTimer, pipeline, planChunks, planSlices, readShifts, viewOf } from "./slices.js";
import { ChunkedItem } from "../kernels/engine.js";
import type { NpyWriter } from "../io/npy/index.js";
import type { Precision } from "../kernels/plan.js";

export interface ForwardOptions {
  x: string;
  groups: number;
  gamma?: string;
  beta?: string;
  eps: number;
  layout: Layout;
  outDir: string;
  y?: string;
  mean?: string;
  rstd?: string;
  memoryBudget: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ForwardReport {
  command: "forward";
  input: { x: string; gamma: string | null; beta: string | null; dtype: Dtype; shape: number[] };
  layout: Layout;
  groups: number;
  eps: number;
  dims: { N: number; C: number; HxW: number; G: number; D: number };
  outputs: { y: string; mean: string; rstd: string };
  dtypes: { y: Dtype; mean: Dtype; rstd: Dtype };
  threads: number;
  slices: number;
  bytes: { read: number; written: number };
  seconds: Phases;
}

export async function runForward(engine: Engine, o: ForwardOptions): Promise<ForwardReport> {
  const t0 = performance.now();
  const reader = await NpyReader.open(o.x);
  const outputs = new OutputSet();
  try {
    const h = reader.header;
    const d = dimsOf(reader, o.groups, o.layout);
    const gamma = o.gamma ? await readChannelVector(o.gamma, d.C, "gamma") : null;
    const beta = o.beta ? await readChannelVector(o.beta, d.C, "beta") : null;
    const precision = precisionOf(h.dtype);
    const statsDtype: Dtype = h.dtype === "float64" ? "float64" : "float32";
    const paths = {
      y: o.y ?? join(o.outDir, "Y.npy"),
      mean: o.mean ?? join(o.outDir, "mean.npy"),
      rstd: o.rstd ?? join(o.outDir, "rstd.npy"),
    };
    await outputs.protect([o.x, o.gamma, o.beta]);
    if (!o.y || !o.mean || !o.rstd) await outputs.ensureDir(o.outDir);
    const yw = await outputs.create(paths.y, h.dtype, h.shape);
    const mw = await outputs.create(paths.mean, statsDtype, [d.N, d.G]);
    const rw = await outputs.create(paths.rstd, statsDtype, [d.N, d.G]);

    // Y is written over X in the arena (the kernels read each value before writing it): one
    // tensor buffer per slice in flight, and no write-allocate traffic for a separate output.
    const slices = planSlices(d, precision, 1, o.memoryBudget);
    const eb = elementBytes(precision);
    const mark = engine.arena.used;
    let phases: Phases;
    let sliceCount = slices.length;
    try {
      if (slices.length === 0) {
        // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks, twice
        const items = planChunks(d, precision, 1, o.memoryBudget);
        sliceCount = items.length * items[0].chunks.length;
        phases = await forwardChunked(engine, reader, items, { gamma, beta, eps: o.eps, precision, eb }, { y: yw, mean: mw, rstd: rw }, o.onProgress);
      } else {
        const cap = maxCount(slices);
        const buffers = Array.from({ length: Math.min(3, slices.length) }, () => ({
          x: engine.arena.alloc(cap * eb),
          mean: new Float64Array(0) as Float64Array<ArrayBufferLike>,
          rstd: new Float64Array(0) as Float64Array<ArrayBufferLike>,
        }));
        phases = await pipeline(
          slices,
          buffers,
          {
            read: (s, b) => reader.read(s.start, s.count, viewOf(engine, precision, b.x, s.count)),
            compute: async (s, b) => {
              const r = await engine.forward(s.geo, o.eps, b.x, b.x, gamma?.subarray(s.c0, s.c0 + s.geo.C) ?? null, beta?.subarray(s.c0, s.c0 + s.geo.C) ?? null);
              b.mean = r.mean;
              b.rstd = r.rstd;
            },
            write: async (s, b) => {
              await yw.write(viewOf(engine, precision, b.x, s.count));
              await mw.write(b.mean);
              await rw.write(b.rstd);
            },
          },
          (s) => o.onProgress?.(s.index + 1, slices.length),
        );
      }
    } finally {
      engine.arena.release(mark);
    }
    const t = performance.now();
    await outputs.commit();
    phases.write += performance.now() - t;
    phases.total = performance.now() - t0;
    const statBytes = 2 * d.N * d.G * (statsDtype === "float64" ? 8 : 4);
    return {
      command: "forward",
      input: { x: o.x, gamma: o.gamma ?? null, beta: o.beta ?? null, dtype: h.dtype, shape: h.shape },
      layout: o.layout,
      groups: o.groups,
      eps: o.eps,
      dims: { N: d.N, C: d.C, HxW: d.HxW, G: d.G, D: d.D },
      outputs: paths,
      dtypes: { y: h.dtype, mean: statsDtype, rstd: statsDtype },
      threads: engine.runner.threads,
      slices: sliceCount,
      bytes: { read: h.size * h.itemSize, written: h.size * h.itemSize + statBytes },
      seconds: toSeconds(phases),
    };
  } catch (e) {
    await outputs.abort();
    throw e;
  } finally {
    await reader.close();
  }
}

export function toSeconds(p: Phases): Phases {
  return { read: p.read / 1000, compute: p.compute / 1000, write: p.write / 1000, total: p.total / 1000 };
}

/**
 * Forward of items larger than the budget: per item, its chunks are read once for the statistics
 * (again with the float64-accumulating step if float32 sums overflowed) and once more to be
 * normalised and written.
 */
async function forwardChunked(
  engine: Engine,
  reader: NpyReader,
  items: ChunkedItemPlan[],
  p: { gamma: Float64Array | null; beta: Float64Array | null; eps: number; precision: Precision; eb: number },
  w: { y: NpyWriter; mean: NpyWriter; rstd: NpyWriter },
  onProgress?: (done: number, total: number) => void,
): Promise<Phases> {
  const { timed, finish } = phaseTimer();
  const cap = Math.max(...items[0].chunks.map((c) => c.to - c.from));
  const buf = engine.arena.alloc(cap * p.eb);
  for (const [i, item] of items.entries()) {
    const C = item.geo.C;
    const ci = new ChunkedItem(engine, item.geo, p.eps, p.gamma?.subarray(item.c0, item.c0 + C) ?? null, p.beta?.subarray(item.c0, item.c0 + C) ?? null, null, await readShifts(reader, item));
    try {
      const pass = async (step: "stats" | "statsWide" | "norm") => {
        for (const c of item.chunks) {
          const view = viewOf(engine, p.precision, buf, c.to - c.from);
          await timed("read", () => reader.read(item.start + c.from, c.to - c.from, view));
          await timed("compute", () => ci.step(step, { x: buf }, c.u0, c.u1));
          if (step === "norm") await timed("write", () => w.y.write(view));
        }
      };
      await pass("stats");
      if (!ci.finalizeStats()) {
        await pass("statsWide");
        ci.finalizeStats(true);
      }
      ci.prepareNorm();
      await pass("norm");
      const r = ci.results();
      await timed("write", async () => {
        await w.mean.write(r.mean);
        await w.rstd.write(r.rstd);
      });
    } finally {
      ci.release();
    }
    onProgress?.(i + 1, items.length);
  }
  return finish();
}
