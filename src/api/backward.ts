/** backwardFiles: GroupNorm backward from tensor files to output files (the `backward` command). */
import { type Activation, activationCode, checkActivation } from "../core/activation.js";
import { type AffineKind, type Compat, type ConventionOptions, conventionDims, type Grouping, resolveConvention } from "../core/conventions.js";
import type { Layout } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { checkMemory } from "../core/params.js";
import { InputError } from "../errors.js";
import { now } from "../io/clock.js";
import type { TensorSink } from "../io/tensor.js";
import { planBackward, streamBackward } from "../pipeline/backward.js";
import { checkGroupStats, requireSameShape } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { type Phases, toSeconds } from "../pipeline/stream.js";
import { affineShape, affineSide, groupSumsHeld, GroupSumSink } from "./conventions.js";
import { type GroupNormEngine, withEngine } from "./engine.js";
import { chooseOutputs, type OutputKind, withFiles } from "./files.js";
import type { DimsReport } from "./forward.js";

export type BackwardOutput = "dx" | "dgamma" | "dbeta";
export const BACKWARD_OUTPUTS: readonly OutputKind<BackwardOutput>[] = [
  { key: "dx", file: "dX", flag: "--dx" },
  { key: "dgamma", file: "dgamma", flag: "--dgamma" },
  { key: "dbeta", file: "dbeta", flag: "--dbeta" },
];

export interface BackwardFilesOptions extends ConventionOptions {
  /** The upstream gradient, X's shape. */
  dy: string;
  /** The forward's input. */
  x: string;
  /** The forward's scale, shape (C,), or (G,) with affine "per-group" (default 1). */
  gamma?: string;
  /** Through an activation, dY is the gradient of act(GroupNorm(X)) (default none); with it, the forward's shift (default 0). */
  activation?: Activation | "swish" | "none" | null;
  beta?: string;
  /** The forward's statistics, (N, G) each, given together (default: recomputed from X with eps). */
  mean?: string;
  rstd?: string;
  /** Outputs to write (default: the named ones; when none is named, dx, and dgamma, dbeta with gamma). */
  outputs?: BackwardOutput[];
  /** Folder for the outputs not named (default "."; created with parents). */
  outDir?: string;
  /** A container (`.npz`, `.safetensors`) for the outputs not named instead, keyed dX, dgamma, dbeta. */
  out?: string;
  /** Deflate .npz outputs (np.savez_compressed); default stored. */
  compress?: boolean;
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
  input: { dy: string; x: string; gamma: string | null; beta: string | null; mean: string | null; rstd: string | null; dtype: Dtype; shape: number[] };
  layout: Layout;
  groups: number;
  eps: number;
  grouping: Grouping;
  affine: AffineKind;
  compat: Compat | null;
  /** The activation the gradients went through, or null. */
  activation: Activation | null;
  dims: DimsReport;
  statistics: "given" | "recomputed";
  /** Paths of the outputs written, by file name (`out.npz:dX` for a container's member). */
  outputs: { dX?: string; dgamma?: string; dbeta?: string };
  dtypes: { dX?: Dtype; dgamma?: Dtype; dbeta?: Dtype };
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
  const conv = resolveConvention(o);
  const { eps, layout } = conv;
  const memoryBudget = checkMemory(o.memory, DEFAULT_MEMORY);
  const activation = checkActivation(o.activation);
  // beta moves the gradients only through an activation: without one it is not read
  const betaPath = activation ? o.beta : undefined;
  if ((o.mean === undefined) !== (o.rstd === undefined)) {
    return Promise.reject(new InputError("--mean and --rstd must be given together (or neither, to recompute them from X)"));
  }
  const chosen = chooseOutputs(BACKWARD_OUTPUTS, { dx: o.dxPath, dgamma: o.dgammaPath, dbeta: o.dbetaPath }, o.outputs, defaultBackwardOutputs(o.gamma !== undefined), o);
  return withEngine(o, async (engine) => {
    const t0 = now();
      engine.resetUse(); // the report gives the threads this call computed on
    return withFiles({ dy: o.dy, x: o.x, gamma: o.gamma, beta: betaPath, mean: o.mean, rstd: o.rstd }, async (src, outputs) => {
      const x = src.x!, dy = src.dy!;
      const d = conventionDims(x.shape, conv, x.name);
      requireSameShape(dy, x, "dY");
      // every header checked and the run planned (or refused) before any data is read
      const gamma = src.gamma ? affineSide(src.gamma, d, conv.affine, "gamma") : null;
      const beta = src.beta ? affineSide(src.beta, d, conv.affine, "beta") : null;
      if (src.mean) checkGroupStats(src.mean, d.N, d.G, "mean");
      if (src.rstd) checkGroupStats(src.rstd, d.N, d.G, "rstd");
      const stats = src.mean && src.rstd ? { mean: src.mean, rstd: src.rstd } : null;
      const held = groupSumsHeld(d, conv, chosen.filter((c) => c.key !== "dx").map((c) => c.key), x.name);
      const input = { dy, x, dims: d, gamma, stats, act: activationCode(activation), beta, memoryBudget, held };
      const plan = planBackward(engine.threads, input);
      const shapes: Record<BackwardOutput, readonly number[]> = { dx: x.shape, dgamma: affineShape(d, conv), dbeta: affineShape(d, conv) };
      await outputs.protect([o.dy, o.x, o.gamma, betaPath, o.mean, o.rstd]);
      if (chosen.some((c) => !c.explicit)) await outputs.ensureDir(o.outDir ?? ".");
      const sinks: Partial<Record<BackwardOutput, TensorSink>> = {};
      const report: Pick<BackwardReport, "outputs" | "dtypes"> = { outputs: {}, dtypes: {} };
      let written = 0;
      for (const c of chosen) {
        sinks[c.key] = await outputs.create(c.path, x.dtype, shapes[c.key], c);
        // per group: the per-channel sums of each group's channels
        if (c.key !== "dx" && conv.affine === "per-group") sinks[c.key] = new GroupSumSink(sinks[c.key]!, d);
        report.outputs[c.file as keyof BackwardReport["outputs"]] = c.path;
        report.dtypes[c.file as keyof BackwardReport["dtypes"]] = x.dtype;
        written += shapes[c.key].reduce((a, b) => a * b, 1) * itemSizeOf(x.dtype);
      }
      const run = await streamBackward(engine, { ...input, eps, sinks, onProgress: o.onProgress }, plan);
      const t = now();
      await outputs.commit();
      run.phases.write += now() - t;
      run.phases.total = now() - t0;
      return {
        command: "backward",
        input: { dy: o.dy, x: o.x, gamma: o.gamma ?? null, beta: betaPath ?? null, mean: o.mean ?? null, rstd: o.rstd ?? null, dtype: x.dtype, shape: [...x.shape] },
        layout,
        groups: d.G,
        eps,
        grouping: conv.grouping,
        affine: conv.affine,
        compat: conv.compat,
        activation,
        dims: { n: d.N, c: d.C, hxw: d.HxW, g: d.G, d: d.D },
        statistics: stats ? "given" : "recomputed",
        ...report,
        threads: engine.threadsUsed,
        slices: run.slices,
        bytes: { read: x.size * itemSizeOf(x.dtype) + dy.size * itemSizeOf(dy.dtype), written },
        seconds: toSeconds(run.phases),
      };
    });
  });
}
