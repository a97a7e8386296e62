/** forwardFiles: GroupNorm forward from a tensor file to output files (the `forward` command). */
import { type Activation, activationCode, checkActivation } from "../core/activation.js";
import { type AffineKind, type Compat, type ConventionOptions, conventionDims, type Grouping, resolveConvention } from "../core/conventions.js";
import type { Layout } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { checkMemory } from "../core/params.js";
import { now } from "../io/clock.js";
import type { TensorSink } from "../io/tensor.js";
import { planForward, streamForward } from "../pipeline/forward.js";
import { statsDtypeOf } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import { type Phases, toSeconds } from "../pipeline/stream.js";
import { affineSide } from "./conventions.js";
import { type GroupNormEngine, withEngine } from "./engine.js";
import { chooseOutputs, type OutputKind, withFiles } from "./files.js";

export type ForwardOutput = "y" | "mean" | "rstd" | "var";
export const FORWARD_OUTPUTS: readonly OutputKind<ForwardOutput>[] = [
  { key: "y", file: "Y", flag: "--y" },
  { key: "mean", file: "mean", flag: "--mean" },
  { key: "rstd", file: "rstd", flag: "--rstd" },
  { key: "var", file: "var", flag: "--var" },
];

export interface ForwardFilesOptions extends ConventionOptions {
  /** The input tensor file, (N, C, *spatial), or (N, *spatial, C) with layout "nhwc". */
  x: string;
  /** Scale and shift files, shape (C,), or (G,) with affine "per-group" (default 1 and 0). */
  gamma?: string;
  beta?: string;
  /** Y = act(GroupNorm(X)) in the same pass: "silu" (or "swish"), "gelu", "gelu-tanh" (default none). */
  activation?: Activation | "swish" | "none" | null;
  /** Folder for the outputs not named (default "."; created with parents). */
  outDir?: string;
  /** A container (`.npz`, `.safetensors`) for the outputs not named instead, keyed Y, mean, rstd (and var). */
  out?: string;
  /** Deflate .npz outputs (np.savez_compressed); default stored. */
  compress?: boolean;
  /** Output files named explicitly; naming any writes only the named ones unless `outputs` says more. */
  y?: string;
  mean?: string;
  rstd?: string;
  /** Each group's biased variance, (N, G), as the statistics kernel computed it (written only when named or in `outputs`). */
  var?: string;
  /** Outputs to write (default: the named ones, or y, mean and rstd when none is named). */
  outputs?: ForwardOutput[];
  /** Bytes of slices in flight (default 384 MiB). */
  memory?: number;
  threads?: number;
  engine?: GroupNormEngine;
  onProgress?: (done: number, total: number) => void;
}

/** The dimensions of a run, as its JSON reports them. */
export interface DimsReport {
  n: number;
  c: number;
  hxw: number;
  g: number;
  d: number;
}

export interface ForwardReport {
  command: "forward";
  input: { x: string; gamma: string | null; beta: string | null; dtype: Dtype; shape: number[] };
  layout: Layout;
  groups: number;
  eps: number;
  grouping: Grouping;
  affine: AffineKind;
  compat: Compat | null;
  /** The activation Y went through, or null. */
  activation: Activation | null;
  dims: DimsReport;
  /** Paths of the outputs written, by file name (`out.npz:Y` for a container's member). */
  outputs: { Y?: string; mean?: string; rstd?: string; var?: string };
  dtypes: { Y?: Dtype; mean?: Dtype; rstd?: Dtype; var?: Dtype };
  threads: number;
  slices: number;
  bytes: { read: number; written: number };
  seconds: Phases;
}

export function forwardFiles(o: ForwardFilesOptions): Promise<ForwardReport> {
  const conv = resolveConvention(o);
  const { eps, layout } = conv;
  const memoryBudget = checkMemory(o.memory, DEFAULT_MEMORY);
  const activation = checkActivation(o.activation);
  const chosen = chooseOutputs(FORWARD_OUTPUTS, { y: o.y, mean: o.mean, rstd: o.rstd, var: o.var }, o.outputs, ["y", "mean", "rstd"], o);
  return withEngine(o, async (engine) => {
    const t0 = now();
    engine.resetUse(); // the report gives the threads this call computed on
    return withFiles({ x: o.x, gamma: o.gamma, beta: o.beta }, async (src, outputs) => {
      const x = src.x!;
      const d = conventionDims(x.shape, conv, x.name);
      // every header checked and the run planned (or refused) before any data is read
      const gamma = src.gamma ? affineSide(src.gamma, d, conv.affine, "gamma") : null;
      const beta = src.beta ? affineSide(src.beta, d, conv.affine, "beta") : null;
      const input = { x, dims: d, gamma, beta, memoryBudget };
      const plan = planForward(engine.threads, { ...input, variance: chosen.some((c) => c.key === "var") });
      const statsDtype = statsDtypeOf(x.dtype);
      const dtypes: Record<ForwardOutput, Dtype> = { y: x.dtype, mean: statsDtype, rstd: statsDtype, var: statsDtype };
      const shapes: Record<ForwardOutput, readonly number[]> = { y: x.shape, mean: [d.N, d.G], rstd: [d.N, d.G], var: [d.N, d.G] };
      await outputs.protect([o.x, o.gamma, o.beta]);
      if (chosen.some((c) => !c.explicit)) await outputs.ensureDir(o.outDir ?? ".");
      const sinks: Partial<Record<ForwardOutput, TensorSink>> = {};
      const report: Pick<ForwardReport, "outputs" | "dtypes"> = { outputs: {}, dtypes: {} };
      let written = 0;
      for (const c of chosen) {
        sinks[c.key] = await outputs.create(c.path, dtypes[c.key], shapes[c.key], c);
        report.outputs[c.file as keyof ForwardReport["outputs"]] = c.path;
        report.dtypes[c.file as keyof ForwardReport["dtypes"]] = dtypes[c.key];
        written += shapes[c.key].reduce((a, b) => a * b, 1) * itemSizeOf(dtypes[c.key]);
      }
      const run = await streamForward(engine, { ...input, eps, act: activationCode(activation), sinks, onProgress: o.onProgress }, plan);
      const t = now();
      await outputs.commit();
      run.phases.write += now() - t;
      run.phases.total = now() - t0;
      return {
        command: "forward",
        input: { x: o.x, gamma: o.gamma ?? null, beta: o.beta ?? null, dtype: x.dtype, shape: [...x.shape] },
        layout,
        groups: d.G,
        eps,
        grouping: conv.grouping,
        affine: conv.affine,
        compat: conv.compat,
        activation,
        dims: { n: d.N, c: d.C, hxw: d.HxW, g: d.G, d: d.D },
        ...report,
        threads: engine.threadsUsed,
        slices: run.slices,
        bytes: { read: x.size * itemSizeOf(x.dtype), written },
        seconds: toSeconds(run.phases),
      };
    });
  });
}
