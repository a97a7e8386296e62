/**
 * verify's inputs and what every check of them starts from: the tolerance and form a candidate
 * must have, the conventions tried (the given one and its alternatives, through an activation the
 * others too) and their statistics, from the moments of X.
 */
import { type Activation, ACTIVATIONS } from "../core/activation.js";
import { formatShape, type Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import type { TensorSource } from "../io/tensor.js";
import { SLOPE } from "../oracle/activation.js";
import { Checker, type OutputReport } from "./check.js";
import { alternatives, type Convention, givenConvention, type Grouping } from "./conventions.js";
import { GroupIndex } from "./grouping.js";
import { type Moments, moments, type Stats, statsOf, type Through } from "./reference.js";
import { defaultTolerance, type Tolerance } from "./tolerance.js";

export type ForwardCandidate = "Y" | "mean" | "rstd" | "var";

export type BackwardCandidate = "dX" | "dgamma" | "dbeta";

export interface VerifyInputs {
  mode: "forward" | "backward";
  x: TensorSource;
  dy?: TensorSource;
  groups: number;
  layout: Layout;
  eps: number;
  /** How the candidates group channels (default contiguous). */
  grouping?: Grouping;
  /** gamma and beta were given per group (expanded here to their channels); dgamma and dbeta are then (G,). */
  affinePerGroup?: boolean;
  /** Per channel (C values), whatever the affine kind. */
  gamma: Float64Array | null;
  /** The forward's shift; the backward's references use it (in pre, and as the scale of "gamma and beta swapped") only through an activation, else it is null there. */
  beta: Float64Array | null;
  /** Backward: the forward's statistics, given (else recomputed). */
  stats?: { mean: Float64Array; rstd: Float64Array } | null;
  /** The candidates are of act(GroupNorm(X)) (forward) or its gradients (backward, with beta). */
  activation?: Activation | null;
  candidates: Partial<Record<ForwardCandidate | BackwardCandidate, TensorSource>>;
  /** Fixed tolerances instead of the defaults by dtype. */
  atol?: number;
  rtol?: number;
  /** Between chunks: lets the event loop run (signals, progress). */
  breathe: () => Promise<void>;
}

const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1);

const sameAfterSqueeze = (a: readonly number[], b: readonly number[]) => {
  const x = squeeze(a), y = squeeze(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

const PRECISION: Record<Dtype, number> = { bfloat16: -1, float16: 0, float32: 1, float64: 2 };

/**
 * The tolerance of a candidate: by the coarser of its dtype and X's (a float32 mean stored as
 * float64 is still a float32 result); --rtol and --atol each replace their own part only.
 */
export function toleranceFor(dtype: Dtype, i: VerifyInputs): Tolerance {
  const t = defaultTolerance(PRECISION[dtype] < PRECISION[i.x.dtype] ? dtype : i.x.dtype);
  return { rtol: i.rtol ?? t.rtol, scaled: t.scaled, atol: i.atol ?? null };
}

/** The shape and dtype a candidate must have, or the report refusing it. */
export function checkForm(name: string, cand: TensorSource, i: VerifyInputs, shape: readonly number[], dtype: Dtype | null, what: string): OutputReport | null {
  const tol = toleranceFor(cand.dtype, i);
  const exact = name === "Y" || name === "dX";
  if (exact ? !(cand.shape.length === shape.length && cand.shape.every((v, k) => v === shape[k])) : !sameAfterSqueeze(cand.shape, shape)) {
    return Checker.refused(cand.name, cand.dtype, cand.shape, "shape", `has shape ${formatShape(cand.shape)}, but ${name} must have shape ${formatShape(shape)} (${what})`, tol);
  }
  if (dtype && cand.dtype !== dtype) return Checker.refused(cand.name, cand.dtype, cand.shape, "dtype", `is ${cand.dtype}, but ${name} must have X's dtype, ${dtype}`, tol);
  return null;
}

/** The indexes the given convention and the alternatives read the file with (one per layout and grouping). */
function indexesFor(shape: readonly number[], G: number, conventions: Convention[]): Map<string, GroupIndex> {
  const out = new Map<string, GroupIndex>();
  for (const c of conventions) {
    const key = `${c.layout}/${c.grouping}`;
    if (!out.has(key)) out.set(key, new GroupIndex(shape, G, c.layout, c.grouping));
  }
  return out;
}

export const keyOf = (c: Convention) => `${c.layout}/${c.grouping}`;

/** The activation of a convention's reference: its own, when it tries another, else the given one. */
export const actOf = (c: Convention, i: VerifyInputs): Activation | null => (c.activation !== undefined ? c.activation : (i.activation ?? null));

/** Room for an activation in a scale: its largest slope. */
export const slopeOf = (act: Activation | null) => (act ? SLOPE[act] : 1);

/** What backwardSums needs to go through the activation, when there is one. */
export function through(i: VerifyInputs): Through | null {
  return i.activation ? { activation: (c) => actOf(c, i), beta: i.beta } : null;
}

export interface Prepared {
  given: Convention;
  alts: Convention[];
  indexes: Map<string, GroupIndex>;
  /** The given convention's statistics, and (computed when first asked: a diagnosis) the alternatives'. */
  stats: Map<Convention, Stats>;
  alternatives(): Promise<Map<Convention, Stats>>;
}

export async function prepare(i: VerifyInputs): Promise<Prepared> {
  const shape = i.x.shape;
  const otherLayout = i.layout === "nchw" ? "nhwc" : "nchw";
  const given = givenConvention({ eps: i.eps, layout: i.layout, hasGamma: !!i.gamma, hasBeta: !!i.beta, otherLayout: false, statsGiven: !!i.stats, grouping: i.grouping });
  let alts = alternatives({
    eps: i.eps,
    layout: i.layout,
    hasGamma: !!i.gamma,
    hasBeta: !!i.beta,
    otherLayout: shape.length > 2 && GroupIndex.fits(shape, i.groups, otherLayout) && (i.gamma === null || new GroupIndex(shape, i.groups, otherLayout, "contiguous").C === i.gamma.length),
    statsGiven: !!i.stats,
    grouping: i.grouping,
    affinePerGroup: i.affinePerGroup,
  });
  // the other grouping is only another grouping when groups hold more than one channel and there are several
  const index0 = new GroupIndex(shape, i.groups, i.layout, "contiguous");
  if (index0.D <= 1 || i.groups <= 1) alts = alts.filter((c) => c.grouping === given.grouping);
  if (i.gamma && i.gamma.length < i.groups) alts = alts.filter((c) => c.affine !== "group");
  // through an activation: the others, and none (the given convention's activation is i.activation)
  if (i.activation) {
    const base = { ...given };
    for (const a of [...ACTIVATIONS.filter((a) => a !== i.activation), null]) {
      alts.push({ ...base, activation: a, label: a ? `${a} as the activation` : "no activation", instead: i.activation });
    }
  }
  const indexes = indexesFor(shape, i.groups, [given, ...alts]);
  const byKey = new Map<string, Moments>();
  const [first] = await moments(i.x, [indexes.get(keyOf(given))!], i.breathe);
  byKey.set(keyOf(given), first);
  const stats = new Map<Convention, Stats>([[given, statsOf(first, given)]]);
  let altStats: Map<Convention, Stats> | null = null;
  const alternativesOf = async () => {
    if (altStats) return altStats;
    const missing = [...indexes.keys()].filter((k) => !byKey.has(k));
    const ms = await moments(i.x, missing.map((k) => indexes.get(k)!), i.breathe);
    missing.forEach((k, n) => byKey.set(k, ms[n]));
    altStats = new Map(alts.map((c) => [c, statsOf(byKey.get(keyOf(c))!, c)]));
    return altStats;
  };
  if (i.stats) {
    // the forward's statistics, given: the reference uses them (the variance as 1/rstd² − eps)
    const s = stats.get(given)!;
    s.mean.set(i.stats.mean);
    s.rstd.set(i.stats.rstd);
    for (let g = 0; g < s.rstd.length; g++) s.variance[g] = 1 / (s.rstd[g] * s.rstd[g]) - i.eps;
  }
  return { given, alts, indexes, stats, alternatives: alternativesOf };
}
