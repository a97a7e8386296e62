/**
 * verifyFiles: check a user's own GroupNorm outputs (forward: Y, mean, rstd; backward: dX, dgamma,
 * dbeta) against the float64 reference of the stored inputs (the `verify` command).
 */
import { type Activation, checkActivation } from "../core/activation.js";
import { type AffineKind, type Compat, type ConventionOptions, conventionDims, type Grouping, resolveConvention } from "../core/conventions.js";
import type { Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { checkMemory } from "../core/params.js";
import { sizeText } from "../core/units.js";
import { InputError } from "../errors.js";
import { closeAll, openTensors } from "../io/open.js";
import { readGroupStats, requireSameShape, residentCopies } from "../pipeline/inputs.js";
import { DEFAULT_MEMORY } from "../pipeline/slices.js";
import type { OutputReport } from "../verify/check.js";
import { CHANNEL_SUMS_FLOATS, CHANNEL_SUMS_KEPT } from "../verify/reference.js";
import { verifyBackward, verifyForward } from "../verify/run.js";
import { readAffine } from "./conventions.js";

export type { OutputReport } from "../verify/check.js";

/** The convention options (groups or groupSize, eps, layout, grouping, affine, compat) say which GroupNorm the candidates should be. */
export interface VerifyOptions extends ConventionOptions {
  mode: "forward" | "backward";
  /** The inputs the candidates were computed from. */
  x: string;
  /** Backward: the upstream gradient. */
  dy?: string;
  /** The scale and shift the candidates used: (C,), or (G,) with affine "per-group". */
  gamma?: string;
  /** Forward: the shift. Backward: only with `activation` (the pre-activation needs it). */
  beta?: string;
  /** The candidates are of act(GroupNorm(X)) (forward) or its gradients (backward): "silu" (or "swish"), "gelu", "gelu-tanh" (default none). */
  activation?: Activation | "swish" | "none" | null;
  /** Forward: candidate mean and rstd. Backward: the forward's statistics, given (else recomputed). */
  mean?: string;
  rstd?: string;
  /** Candidates: forward `y` (and `mean`, `rstd`, `var`: each group's biased variance); backward `dx`, `dgamma`, `dbeta`. */
  y?: string;
  var?: string;
  dx?: string;
  dgamma?: string;
  dbeta?: string;
  /** Fixed tolerances instead of the defaults by the candidate's dtype. */
  atol?: number;
  rtol?: number;
  /** Bytes the reference's per-group and per-channel vectors may take (default 384 MiB). */
  memory?: number;
}

export interface VerifyReport {
  command: "verify";
  mode: "forward" | "backward";
  passed: boolean;
  input: { x: string; dy: string | null; gamma: string | null; beta: string | null; mean: string | null; rstd: string | null; dtype: Dtype; shape: number[] };
  layout: Layout;
  groups: number;
  eps: number;
  grouping: Grouping;
  affine: AffineKind;
  compat: Compat | null;
  /** The activation the candidates went through, or null. */
  activation: Activation | null;
  outputs: Partial<Record<"Y" | "mean" | "rstd" | "var" | "dX" | "dgamma" | "dbeta", OutputReport>>;
}

const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function verifyFiles(o: VerifyOptions): Promise<VerifyReport> {
  const conv = resolveConvention(o);
  const { eps, layout } = conv;
  const budget = checkMemory(o.memory, DEFAULT_MEMORY);
  if (o.mode !== "forward" && o.mode !== "backward") throw new InputError(`mode must be "forward" or "backward", got ${JSON.stringify(o.mode)}`);
  for (const [flag, v] of [["--atol", o.atol], ["--rtol", o.rtol]] as const) {
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0)) throw new InputError(`${flag} must be a finite number >= 0, got ${v}`);
  }
  const forward = o.mode === "forward";
  const activation = checkActivation(o.activation);
  // beta: the forward's, and the backward's through an activation
  const withBeta = forward || activation !== null;
  // a candidate of the other mode would be silently left out: say so
  const other = forward ? { dx: o.dx, dgamma: o.dgamma, dbeta: o.dbeta, dy: o.dy } : { y: o.y, var: o.var, ...(withBeta ? {} : { beta: o.beta }) };
  const stray = Object.entries(other).find(([, v]) => v !== undefined);
  if (stray) throw new InputError(`${stray[0]} is not an input of verify ${o.mode}`);
  const names = forward ? { Y: o.y, mean: o.mean, rstd: o.rstd, var: o.var } : { dX: o.dx, dgamma: o.dgamma, dbeta: o.dbeta };
  if (Object.values(names).every((v) => v === undefined)) {
    throw new InputError(forward ? "name at least one candidate to check: --y, --mean, --rstd or --var" : "name at least one candidate to check: --dx, --dgamma or --dbeta");
  }
  if (!forward && (o.mean === undefined) !== (o.rstd === undefined)) throw new InputError("--mean and --rstd must be given together (or neither, to recompute them from X)");
  if (!forward && o.dy === undefined) throw new InputError("verify backward needs dY");
  const src = await openTensors({
    x: o.x, dy: forward ? undefined : o.dy, gamma: o.gamma, beta: withBeta ? o.beta : undefined,
    smean: forward ? undefined : o.mean, srstd: forward ? undefined : o.rstd,
    Y: forward ? o.y : undefined, mean: forward ? o.mean : undefined, rstd: forward ? o.rstd : undefined, var: forward ? o.var : undefined,
    dX: forward ? undefined : o.dx, dgamma: forward ? undefined : o.dgamma, dbeta: forward ? undefined : o.dbeta,
  });
  try {
    const x = src.x!;
    const d = conventionDims(x.shape, conv, x.name);
    if (src.dy) requireSameShape(src.dy, x, "dY");
    if (d.N * d.G > 0x7fffffff) throw new InputError(`${x.name}: N·G = ${d.N * d.G} groups is more than verify indexes (2^31 − 1)`);
    // the reference's vectors for the given convention and a dozen alternatives: about 120 float64
    // per (n, g) group and 100 per channel, and the chunk buffers; for the backward also its channel
    // sums per (n, c), in the given layout or the other one (whose channel axis may be longer): the
    // given convention's kept while those of up to three other readings (the other layout, interleaved
    // groups, the mean recomputed where the statistics are given) are summed
    const pairs = forward ? 0 : d.N * Math.max(d.C, x.shape.length > 2 ? x.shape[layout === "nchw" ? x.shape.length - 1 : 1] : 0);
    const need = 8 * (120 * d.N * d.G + 100 * d.C + (CHANNEL_SUMS_KEPT + 3 * CHANNEL_SUMS_FLOATS) * pairs) + (16 << 20);
    if (need > budget) {
      const what = forward ? `N·G = ${d.N * d.G} groups and C = ${d.C} channels` : `N·G = ${d.N * d.G} groups, C = ${d.C} channels and ${pairs} (sample, channel) pairs`;
      throw new InputError(`the reference needs ${sizeText(need)} for ${what}, over --memory ${sizeText(budget)}; raise --memory to ${sizeText(need)}`, x.name);
    }
    // a Fortran-order file read in parts keeps a C-order copy of itself (see NpyReader.residentBytes)
    const copies = residentCopies(Object.entries(src).map(([as, source]) => ({ source: source!, as })));
    if (copies && need + copies.bytes > budget) {
      throw new InputError(`the memory budget ${sizeText(budget)} is too small for ${copies.what} (${sizeText(copies.bytes)}), and the reference (${sizeText(need)}): raise --memory to ${sizeText(need + copies.bytes)} or more, or ${copies.instead}`, copies.file);
    }
    const gamma = src.gamma ? await readAffine(src.gamma, d, conv.affine, "gamma") : null;
    const beta = src.beta ? await readAffine(src.beta, d, conv.affine, "beta") : null;
    const stats = src.smean && src.srstd ? { mean: await readGroupStats(src.smean, d.N, d.G, "mean"), rstd: await readGroupStats(src.srstd, d.N, d.G, "rstd") } : null;
    const inputs = { mode: o.mode, x, dy: src.dy, groups: d.G, layout, eps, grouping: conv.grouping, affinePerGroup: conv.affine === "per-group", gamma, beta, stats, activation, atol: o.atol, rtol: o.rtol, breathe };
    const outputs = forward
      ? await verifyForward({ ...inputs, candidates: { Y: src.Y, mean: src.mean, rstd: src.rstd, var: src.var } })
      : await verifyBackward({ ...inputs, candidates: { dX: src.dX, dgamma: src.dgamma, dbeta: src.dbeta } });
    return {
      command: "verify",
      mode: o.mode,
      passed: Object.values(outputs).every((r) => r!.passed),
      input: { x: o.x, dy: o.dy ?? null, gamma: o.gamma ?? null, beta: withBeta ? (o.beta ?? null) : null, mean: forward ? null : (o.mean ?? null), rstd: forward ? null : (o.rstd ?? null), dtype: x.dtype, shape: [...x.shape] },
      layout,
      groups: d.G,
      eps,
      grouping: conv.grouping,
      affine: conv.affine,
      compat: conv.compat,
      activation,
      outputs,
    };
  } finally {
    await closeAll(src);
  }
}
