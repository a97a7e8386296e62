/** forwardFiles: GroupNorm forward from a tensor file to output files (the `forward` command). */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { groupNormDims, type Layout } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { checkEps, checkLayout, checkMemory } from "../core/params.js";
import { streamForward } from "../pipeline/forward.js";
import { readChannelVector, statsDtypeOf } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { type Phases, toSeconds } from "../pipeline/stream.js";
import { type GroupNormEngine, withEngine } from "./engine.js";
import { withFiles } from "./files.js";

export interface ForwardFilesOptions {
  /** The input tensor file, (N, C, *spatial), or (N, *spatial, C) with layout "nhwc". */
  x: string;
  groups: number;
  /** Per-channel scale and shift files, shape (C,) (default 1 and 0). */
  gamma?: string;
  beta?: string;
  eps?: number;
  layout?: Layout;
  /** Folder for Y.npy, mean.npy, rstd.npy (default "."; created with parents). */
  outDir?: string;
  /** Output files named explicitly (each replaces its default in outDir). */
  y?: string;
  mean?: string;
  rstd?: string;
  /** Bytes of slices in flight (default 384 MiB). */
  memory?: number;
  threads?: number;
  engine?: GroupNormEngine;
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

export function forwardFiles(o: ForwardFilesOptions): Promise<ForwardReport> {
  const eps = checkEps(o.eps);
  const layout = checkLayout(o.layout);
  const memoryBudget = checkMemory(o.memory, DEFAULT_MEMORY);
  const outDir = o.outDir ?? ".";
  return withEngine(o, async (engine) => {
    const t0 = performance.now();
    return withFiles({ x: o.x, gamma: o.gamma, beta: o.beta }, async (src, outputs) => {
      const x = src.x!;
      const d = groupNormDims(x.shape, o.groups, layout, x.name);
      const gamma = src.gamma ? await readChannelVector(src.gamma, d.C, "gamma") : null;
      const beta = src.beta ? await readChannelVector(src.beta, d.C, "beta") : null;
      const statsDtype = statsDtypeOf(x.dtype);
      const paths = {
        y: o.y ?? join(outDir, "Y.npy"),
        mean: o.mean ?? join(outDir, "mean.npy"),
        rstd: o.rstd ?? join(outDir, "rstd.npy"),
      };
      await outputs.protect([o.x, o.gamma, o.beta]);
      if (!o.y || !o.mean || !o.rstd) await outputs.ensureDir(outDir);
      const sinks = {
        y: await outputs.create(paths.y, x.dtype, x.shape),
        mean: await outputs.create(paths.mean, statsDtype, [d.N, d.G]),
        rstd: await outputs.create(paths.rstd, statsDtype, [d.N, d.G]),
      };
      const run = await streamForward(engine, { x, dims: d, gamma, beta, eps, memoryBudget, sinks, onProgress: o.onProgress });
      const t = performance.now();
      await outputs.commit();
      run.phases.write += performance.now() - t;
      run.phases.total = performance.now() - t0;
      const itemSize = itemSizeOf(x.dtype);
      const statBytes = 2 * d.N * d.G * (statsDtype === "float64" ? 8 : 4);
      return {
        command: "forward",
        input: { x: o.x, gamma: o.gamma ?? null, beta: o.beta ?? null, dtype: x.dtype, shape: [...x.shape] },
        layout,
        groups: o.groups,
        eps,
        dims: { N: d.N, C: d.C, HxW: d.HxW, G: d.G, D: d.D },
        outputs: paths,
        dtypes: { y: x.dtype, mean: statsDtype, rstd: statsDtype },
        threads: engine.threads,
        slices: run.slices,
        bytes: { read: x.size * itemSize, written: x.size * itemSize + statBytes },
        seconds: toSeconds(run.phases),
      };
    });
  });
}
