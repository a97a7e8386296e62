/**
 * `backward` from files to files: dY and X stream through the arena in slices along N; dX is
 * appended per slice, dgamma/dbeta accumulate over n in order and are written at the end.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { InputError } from "../errors.js";
import type { Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { NpyReader } from "../io/npy/index.js";
import { OutputSet } from "../io/outputs.js";
import { ChunkedItem, type Engine, gammaBetaBackward } from "../kernels/engine.js";
import { dimsOf, precisionOf, readChannelVector, readGroupStats, requireSameShape } from "./inputs.js";
import { toSeconds } from "./forward.js";
import { elementBytes, maxCount, type Phases, phaseTimer, pipeline, planChunks, planSlices, readShifts, viewOf } from "./slices.js";

export type BackwardOutput = "dx" | "dgamma" | "dbeta";

export interface BackwardOptions {
  dy: string;
  x: string;
  groups: number;
  gamma?: string;
  mean?: string;
  rstd?: string;
  eps: number;
  layout: Layout;
  /** Requested outputs; undefined means dx, plus dgamma and dbeta when gamma is given. */
  outputs?: BackwardOutput[];
  outDir: string;
  dxPath?: string;
  dgammaPath?: string;
  dbetaPath?: string;
  memoryBudget: number;
  onProgress?: (done: number, total: number) => void;
}

export interface BackwardReport {
  command: "backward";
  input: { dy: string; x: string; gamma: string | null; mean: string | null; rstd: string | null; dtype: Dtype; shape: number[] };
  layout: Layout;
  groups: number;
  eps: number;
  dims: { N: number; C: number; HxW: number; G: number; D: number };
  statistics: "given" | "recomputed";
  outputs: Partial<Record<BackwardOutput, string>>;
  threads: number;
  slices: number;
  bytes: { read: number; written: number };
  seconds: Phases;
}


export async function runBackward(engine: Engine, o: BackwardOptions): Promise<BackwardReport> {
  const t0 = performance.now();
  if ((o.mean === undefined) !== (o.rstd === undefined)) {
    throw new InputError("--mean and --rstd must be given together (or neither, to recompute them from X)");
  }
  const dyReader = await NpyReader.open(o.dy);
  const outputs = new OutputSet();
  let xReader: NpyReader | undefined;
  try {
    xReader = await NpyReader.open(o.x);
    const h = xReader.header;
    const d = dimsOf(xReader, o.groups, o.layout);
    requireSameShape(dyReader, xReader, "dY");
    const gamma = o.gamma ? await readChannelVector(o.gamma, d.C, "gamma") : null;
    const mean = o.mean ? await readGroupStats(o.mean, d.N, d.G, "mean") : null;
    const rstd = o.rstd ? await readGroupStats(o.rstd, d.N, d.G, "rstd") : null;
    const wanted = o.outputs ?? (gamma ? ["dx", "dgamma", "dbeta"] : ["dx"]);
    const precision = precisionOf(h.dtype, dyReader.header.dtype);
    const paths: Partial<Record<BackwardOutput, string>> = {};
    if (wanted.includes("dx")) paths.dx = o.dxPath ?? join(o.outDir, "dX.npy");
    if (wanted.includes("dgamma")) paths.dgamma = o.dgammaPath ?? join(o.outDir, "dgamma.npy");
    if (wanted.includes("dbeta")) paths.dbeta = o.dbetaPath ?? join(o.outDir, "dbeta.npy");
    await outputs.protect([o.dy, o.x, o.gamma, o.mean, o.rstd]);
    if ((paths.dx && !o.dxPath) || (paths.dgamma && !o.dgammaPath) || (paths.dbeta && !o.dbetaPath)) {
      await outputs.ensureDir(o.outDir);
    }
    const dxw = paths.dx ? await outputs.create(paths.dx, h.dtype, h.shape) : null;
    const dgw = paths.dgamma ? await outputs.create(paths.dgamma, h.dtype, [d.C]) : null;
    const dbw = paths.dbeta ? await outputs.create(paths.dbeta, h.dtype, [d.C]) : null;

    // dX is written over dY in the arena (each dy is read before its dx is written).
    const slices = planSlices(d, precision, 2, o.memoryBudget);
    const eb = elementBytes(precision);
    const dgamma = new Float64Array(d.C);
    const dbeta = new Float64Array(d.C);
    const mark = engine.arena.used;
    let phases: Phases;
    let sliceCount = slices.length;
    try {
      if (slices.length === 0) {
        // one sample (NHWC) or one group (NCHW) is over the budget: stream each in chunks
        const items = planChunks(d, precision, 2, o.memoryBudget);
        sliceCount = items.length * items[0].chunks.length;
        const { timed, finish } = phaseTimer();
        const cap = Math.max(...items[0].chunks.map((c) => c.to - c.from));
        const bdy = engine.arena.alloc(cap * eb), bx = engine.arena.alloc(cap * eb);
        for (const [i, item] of items.entries()) {
          const NG = item.geo.G, cs = item.c0, ce = item.c0 + item.geo.C;
          const stats = mean && rstd ? { mean: mean.subarray(item.stats0, item.stats0 + NG), rstd: rstd.subarray(item.stats0, item.stats0 + NG) } : null;
          const shifts = stats ? new Float64Array(NG) : await readShifts(xReader, item);
          const ci = new ChunkedItem(engine, item.geo, o.eps, gamma?.subarray(cs, ce) ?? null, null, stats, shifts);
          try {
            const pass = async (step: "stats" | "statsWide" | "grad" | "gradWide" | "dx") => {
              for (const c of item.chunks) {
                const n = c.to - c.from;
                await timed("read", async () => {
                  if (step !== "stats" && step !== "statsWide") await dyReader.read(item.start + c.from, n, viewOf(engine, precision, bdy, n));
                  await xReader!.read(item.start + c.from, n, viewOf(engine, precision, bx, n));
                });
                await timed("compute", () => ci.step(step, { x: bx, dy: bdy }, c.u0, c.u1));
                if (step === "dx") await timed("write", () => dxw!.write(viewOf(engine, precision, bdy, n)));
              }
            };
            if (!stats) {
              await pass("stats");
              if (!ci.finalizeStats()) {
                await pass("statsWide");
                ci.finalizeStats(true);
              }
            }
            await pass("grad");
            if (!ci.finalizeGrad()) {
              await pass("gradWide");
              ci.finalizeGrad(true);
            }
            if (dxw) {
              ci.prepareDx();
              await pass("dx");
            }
            const r = ci.results();
            // gamma/beta backward: running sums over n, in item (so n) order
            gammaBetaBackward(item.geo, r.ds, r.db, r.rstd, dgamma.subarray(cs, ce), dbeta.subarray(cs, ce));
          } finally {
            ci.release();
          }
          o.onProgress?.(i + 1, items.length);
        }
        phases = finish();
      } else {
        const cap = maxCount(slices);
        const buffers = Array.from({ length: Math.min(3, slices.length) }, () => ({
          dy: engine.arena.alloc(cap * eb),
          x: engine.arena.alloc(cap * eb),
        }));
        phases = await pipeline(
          slices,
          buffers,
          {
            read: async (s, b) => {
              await dyReader.read(s.start, s.count, viewOf(engine, precision, b.dy, s.count));
              await xReader!.read(s.start, s.count, viewOf(engine, precision, b.x, s.count));
            },
            compute: async (s, b) => {
              const NG = s.geo.N * s.geo.G;
              const stats = mean && rstd ? { mean: mean.subarray(s.stats0, s.stats0 + NG), rstd: rstd.subarray(s.stats0, s.stats0 + NG) } : null;
              const cs = s.c0, ce = s.c0 + s.geo.C;
              const r = await engine.backward(s.geo, o.eps, { dy: b.dy, x: b.x, dx: dxw ? b.dy : 0 }, gamma?.subarray(cs, ce) ?? null, stats);
              // gamma/beta backward: running sums over n, in slice (so n) order
              gammaBetaBackward(s.geo, r.ds, r.db, r.rstd, dgamma.subarray(cs, ce), dbeta.subarray(cs, ce));
            },
            write: async (s, b) => {
              if (dxw) await dxw.write(viewOf(engine, precision, b.dy, s.count));
            },
          },
          (s) => o.onProgress?.(s.index + 1, slices.length),
        );
      }
    } finally {
      engine.arena.release(mark);
    }
    const t = performance.now();
    if (dgw) await dgw.write(dgamma);
    if (dbw) await dbw.write(dbeta);
    await outputs.commit();
    phases.write += performance.now() - t;
    phases.total = performance.now() - t0;
    const bytes = h.size * h.itemSize;
    return {
      command: "backward",
      input: { dy: o.dy, x: o.x, gamma: o.gamma ?? null, mean: o.mean ?? null, rstd: o.rstd ?? null, dtype: h.dtype, shape: h.shape },
      layout: o.layout,
      groups: o.groups,
      eps: o.eps,
      dims: { N: d.N, C: d.C, HxW: d.HxW, G: d.G, D: d.D },
      statistics: mean ? "given" : "recomputed",
      outputs: paths,
      threads: engine.runner.threads,
      slices: sliceCount,
      bytes: {
        read: bytes + dyReader.header.size * dyReader.header.itemSize,
        written: (dxw ? bytes : 0) + ((dgw ? 1 : 0) + (dbw ? 1 : 0)) * d.C * h.itemSize,
      },
      seconds: toSeconds(phases),
    };
  } catch (e) {
    await outputs.abort();
    throw e;
  } finally {
    await dyReader.close();
    await xReader?.close();
  }
}
