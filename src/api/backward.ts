/** backwardFiles: GroupNorm backward from tensor files to output files (the `backward` command). */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { groupNormDims, type Layout } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { checkEps, checkLayout, checkMemory } from "../core/params.js";
import { InputError } from "../errors.js";
import { streamBackward } from "../pipeline/backward.js";
import { readChannelVector, readGroupStats, requireSameShape } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { type Phases, toSeconds } from "../pipeline/stream.js";
import { type GroupNormEngine, withEngine } from "./engine.js";
import { withFiles } from "./files.js";

export type BackwardOutput = "dx" | "dgamma" | "dbeta";

export interface BackwardFilesOptions {
  /** The upstream gradient, X's shape. */
  dy: string;
  /** The forward's input. */
  x: string;
  groups: number;
  /** The forward's per-channel scale (default 1). */
  gamma?: string;
  /** The forward's statistics, (N, G) each, given together (default: recomputed from X with eps). */
  mean?: string;
  rstd?: string;
  eps?: number;
  layout?: Layout;
  /** Outputs to write (default dx, and dgamma, dbeta with gamma). */
  outputs?: BackwardOutput[];
  /** Folder for dX.npy, dgamma.npy, dbeta.npy (default "."; created with parents). */
  outDir?: string;
  dxPath?: string;
  dgammaPath?: string;
  dbetaPath?: string;
  memory?: number;
  threads?: number;
  engine?: GroupNormEngine;
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

/** Outputs by default: dX, and dgamma/dbeta when gamma is given. */
export function defaultBackwardOutputs(hasGamma: boolean): BackwardOutput[] {
  return hasGamma ? ["dx", "dgamma", "dbeta"] : ["dx"];
}

export function backwardFiles(o: BackwardFilesOptions): Promise<BackwardReport> {
  const eps = checkEps(o.eps);
  const layout = checkLayout(o.layout);
  const memoryBudget = checkMemory(o.memory, DEFAULT_MEMORY);
  const outDir = o.outDir ?? ".";
  if ((o.mean === undefined) !== (o.rstd === undefined)) {
    return Promise.reject(new InputError("--mean and --rstd must be given together (or neither, to recompute them from X)"));
  }
  return withEngine(o, async (engine) => {
    const t0 = performance.now();
    return withFiles({ dy: o.dy, x: o.x, gamma: o.gamma, mean: o.mean, rstd: o.rstd }, async (src, outputs) => {
      const x = src.x!, dy = src.dy!;
      const d = groupNormDims(x.shape, o.groups, layout, x.name);
      requireSameShape(dy, x, "dY");
      const gamma = src.gamma ? await readChannelVector(src.gamma, d.C, "gamma") : null;
      const mean = src.mean ? await readGroupStats(src.mean, d.N, d.G, "mean") : null;
      const rstd = src.rstd ? await readGroupStats(src.rstd, d.N, d.G, "rstd") : null;
      const wanted = o.outputs ?? defaultBackwardOutputs(gamma !== null);
      const paths: Partial<Record<BackwardOutput, string>> = {};
      if (wanted.includes("dx")) paths.dx = o.dxPath ?? join(outDir, "dX.npy");
      if (wanted.includes("dgamma")) paths.dgamma = o.dgammaPath ?? join(outDir, "dgamma.npy");
      if (wanted.includes("dbeta")) paths.dbeta = o.dbetaPath ?? join(outDir, "dbeta.npy");
      await outputs.protect([o.dy, o.x, o.gamma, o.mean, o.rstd]);
      if ((paths.dx && !o.dxPath) || (paths.dgamma && !o.dgammaPath) || (paths.dbeta && !o.dbetaPath)) {
        await outputs.ensureDir(outDir);
      }
      const sinks = {
        dx: paths.dx ? await outputs.create(paths.dx, x.dtype, x.shape) : undefined,
        dgamma: paths.dgamma ? await outputs.create(paths.dgamma, x.dtype, [d.C]) : undefined,
        dbeta: paths.dbeta ? await outputs.create(paths.dbeta, x.dtype, [d.C]) : undefined,
      };
      const stats = mean && rstd ? { mean, rstd } : null;
      const run = await streamBackward(engine, { dy, x, dims: d, gamma, stats, eps, memoryBudget, sinks, onProgress: o.onProgress });
      const t = performance.now();
      await outputs.commit();
      run.phases.write += performance.now() - t;
      run.phases.total = performance.now() - t0;
      const bytes = x.size * itemSizeOf(x.dtype);
      return {
        command: "backward",
        input: { dy: o.dy, x: o.x, gamma: o.gamma ?? null, mean: o.mean ?? null, rstd: o.rstd ?? null, dtype: x.dtype, shape: [...x.shape] },
        layout,
        groups: o.groups,
        eps,
        dims: { N: d.N, C: d.C, HxW: d.HxW, G: d.G, D: d.D },
        statistics: stats ? "given" : "recomputed",
        outputs: paths,
        threads: engine.threads,
        slices: run.slices,
        bytes: {
          read: bytes + dy.size * itemSizeOf(dy.dtype),
          written: (sinks.dx ? bytes : 0) + ((sinks.dgamma ? 1 : 0) + (sinks.dbeta ? 1 : 0)) * d.C * itemSizeOf(x.dtype),
        },
        seconds: toSeconds(run.phases),
      };
    });
  });
}
