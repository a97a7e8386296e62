/**
 * `forward` from files to files: X is streamed through the arena in slices along N (whole samples),
 * each slice normalised by the engine and appended to the outputs. Outputs are committed together
 * at the end or not at all.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Layout } from "../core/dims.js";
import { type NpyDtype, NpyReader } from "../io/npy.js";
import { OutputSet } from "../io/outputs.js";
import type { Engine } from "../kernels/engine.js";
import { dimsOf, precisionOf, readChannelVector } from "./inputs.js";
import { planSlices, type Phases, elementBytes, viewOf } from "./slices.js";

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
  input: { x: string; gamma: string | null; beta: string | null; dtype: NpyDtype; shape: number[] };
  layout: Layout;
  groups: number;
  eps: number;
  dims: { N: number; C: number; HxW: number; G: number; D: number };
  outputs: { y: string; mean: string; rstd: string };
  dtypes: { y: NpyDtype; mean: NpyDtype; rstd: NpyDtype };
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
    const statsDtype: NpyDtype = h.dtype === "float64" ? "float64" : "float32";
    const paths = {
      y: o.y ?? join(o.outDir, "Y.npy"),
      mean: o.mean ?? join(o.outDir, "mean.npy"),
      rstd: o.rstd ?? join(o.outDir, "rstd.npy"),
    };
    if (!o.y || !o.mean || !o.rstd) await OutputSet.ensureDir(o.outDir);
    const yw = await outputs.create(paths.y, h.dtype, h.shape);
    const mw = await outputs.create(paths.mean, statsDtype, [d.N, d.G]);
    const rw = await outputs.create(paths.rstd, statsDtype, [d.N, d.G]);

    const eb = elementBytes(precision);
    const sample = d.C * d.HxW;
    // Y is written over X in the arena (the kernels read each value before writing it): half the
    // memory, and no write-allocate traffic for a separate output buffer.
    const slices = planSlices(d.N, sample * eb, o.memoryBudget);
    const phases: Phases = { read: 0, compute: 0, write: 0, total: 0 };
    const mark = engine.arena.used;
    const xp = engine.arena.alloc(slices.size * sample * eb);
    const yp = xp;
    try {
      for (let n0 = 0; n0 < d.N; n0 += slices.size) {
        const ns = Math.min(slices.size, d.N - n0);
        const count = ns * sample;
        let t = performance.now();
        await reader.read(n0 * sample, count, viewOf(engine, precision, xp, count));
        phases.read += performance.now() - t;
        t = performance.now();
        const r = await engine.forward({ ...d, N: ns, precision }, o.eps, xp, yp, gamma, beta);
        phases.compute += performance.now() - t;
        t = performance.now();
        await yw.write(viewOf(engine, precision, yp, count));
        await mw.write(r.mean);
        await rw.write(r.rstd);
        phases.write += performance.now() - t;
        o.onProgress?.(n0 + ns, d.N);
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
      slices: Math.ceil(d.N / slices.size) || 0,
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
