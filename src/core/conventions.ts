/**
 * What GroupNorm means in each framework: the group count or size, how channels fall into groups,
 * whether gamma and beta are per channel or per group, and the defaults each system sets (--compat).
 * Everything here is checked the same way for the command line and the API, and reduced to Dims (with
 * its `interleaved` flag) and per-channel gamma/beta before the pipeline sees it.
 */
import { InputError } from "../errors.js";
import { type Dims, formatShape, groupNormDims, groupOf, type Layout } from "./dims.js";
import { checkEps, checkLayout } from "./params.js";

/** contiguous: channel c in group ⌊c / D⌋ (PyTorch, ONNX, Keras, Flax); interleaved: c mod G (MLX). */
export type Grouping = "contiguous" | "interleaved";
/** per-channel: gamma and beta of shape (C,); per-group: of shape (G,), gamma[g] for every channel of group g (ONNX opset 18). */
export type AffineKind = "per-channel" | "per-group";
export type Compat = "torch" | "onnx18" | "onnx21" | "keras" | "flax" | "mlx";

export interface CompatDefaults {
  /** How messages and docs name the system. */
  name: string;
  eps: number;
  layout: Layout;
  grouping: Grouping;
  affine: AffineKind;
  /** Where the defaults are stated. */
  source: string;
}

/** Each system's defaults, as its documentation states them (docs/cli.md has the table). */
export const COMPAT: Record<Compat, CompatDefaults> = {
  torch: { name: "PyTorch torch.nn.GroupNorm", eps: 1e-5, layout: "nchw", grouping: "contiguous", affine: "per-channel", source: "https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html" },
  onnx18: { name: "ONNX GroupNormalization-18", eps: 1e-5, layout: "nchw", grouping: "contiguous", affine: "per-group", source: "https://onnx.ai/onnx/operators/onnx__GroupNormalization.html#groupnormalization-18" },
  onnx21: { name: "ONNX GroupNormalization-21", eps: 1e-5, layout: "nchw", grouping: "contiguous", affine: "per-channel", source: "https://onnx.ai/onnx/operators/onnx__GroupNormalization.html#groupnormalization-21" },
  keras: { name: "Keras keras.layers.GroupNormalization", eps: 1e-3, layout: "nhwc", grouping: "contiguous", affine: "per-channel", source: "https://keras.io/api/layers/normalization_layers/group_normalization/" },
  flax: { name: "Flax flax.linen.GroupNorm", eps: 1e-6, layout: "nhwc", grouping: "contiguous", affine: "per-channel", source: "https://flax.readthedocs.io/en/latest/api_reference/flax.linen/layers.html#flax.linen.GroupNorm" },
  mlx: { name: "MLX mlx.nn.GroupNorm", eps: 1e-5, layout: "nhwc", grouping: "interleaved", affine: "per-channel", source: "https://ml-explore.github.io/mlx/build/html/python/nn/_autosummary/mlx.nn.GroupNorm.html" },
};

const COMPATS = Object.keys(COMPAT) as Compat[];

/** `what` names the setting in messages: the flag (`--grouping`) or the option (`grouping`). */
export function checkGrouping(v: string | undefined, what = "grouping"): Grouping | undefined {
  if (v === undefined) return undefined;
  if (v === "contiguous" || v === "interleaved") return v;
  throw new InputError(`${what} must be contiguous or interleaved, got '${v}'`);
}

export function checkAffine(v: string | undefined, what = "affine"): AffineKind | undefined {
  if (v === undefined) return undefined;
  if (v === "per-channel" || v === "per-group") return v;
  throw new InputError(`${what} must be per-channel or per-group, got '${v}'`);
}

export function checkCompat(v: string | undefined, what = "compat"): Compat | undefined {
  if (v === undefined) return undefined;
  if ((COMPATS as string[]).includes(v)) return v as Compat;
  throw new InputError(`${what} must be one of ${COMPATS.join(", ")}, got '${v}'`);
}

/** The options every GroupNorm entry point takes about the convention (CLI flags and API options alike). */
export interface ConventionOptions {
  /** The number of groups; or `groupSize`, channels per group (exactly one of the two). */
  groups?: number;
  groupSize?: number;
  eps?: number;
  layout?: Layout;
  grouping?: Grouping;
  affine?: AffineKind;
  /** A system whose defaults fill in eps, layout, grouping and affine (explicit ones win). */
  compat?: Compat;
}

/** A convention with every default filled in; the group count is known once X's shape is. */
export interface Convention {
  eps: number;
  layout: Layout;
  grouping: Grouping;
  affine: AffineKind;
  compat: Compat | null;
  groups: { groups: number } | { groupSize: number };
}

const positiveInteger = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/** Check the options and fill in the defaults: the given value, else --compat's, else PyTorch's. */
export function resolveConvention(o: ConventionOptions): Convention {
  const compat = checkCompat(o.compat);
  const base = COMPAT[compat ?? "torch"];
  if (o.groups !== undefined && o.groupSize !== undefined) throw new InputError("give --groups or --group-size, not both");
  if (o.groups === undefined && o.groupSize === undefined) throw new InputError("--groups G or --group-size K is required");
  if (o.groups !== undefined && !positiveInteger(o.groups)) throw new InputError(`--groups must be a positive integer, got ${o.groups}`);
  if (o.groupSize !== undefined && !positiveInteger(o.groupSize)) throw new InputError(`--group-size must be a positive integer, got ${o.groupSize}`);
  return {
    eps: o.eps === undefined ? base.eps : checkEps(o.eps),
    layout: o.layout === undefined ? base.layout : checkLayout(o.layout),
    grouping: checkGrouping(o.grouping) ?? base.grouping,
    affine: checkAffine(o.affine) ?? base.affine,
    compat: compat ?? null,
    groups: o.groupSize !== undefined ? { groupSize: o.groupSize } : { groups: o.groups! },
  };
}

/** X's dims under a convention: G from --groups, or C / K from --group-size (K must divide C). */
export function conventionDims(shape: readonly number[], c: Convention, file?: string): Dims {
  let G: number;
  if ("groups" in c.groups) G = c.groups.groups;
  else {
    const K = c.groups.groupSize;
    const C = groupNormDims(shape, 1, c.layout, file).C;
    if (C === 0) throw new InputError(`C = 0 (shape ${formatShape(shape)}, layout ${c.layout}): no channels to group by --group-size ${K}; give --groups`, file);
    if (C % K !== 0) {
      throw new InputError(`C = ${C} (shape ${formatShape(shape)}, layout ${c.layout}) is not divisible by --group-size ${K}`, file);
    }
    G = C / K;
  }
  const d = groupNormDims(shape, G, c.layout, file);
  return c.grouping === "interleaved" && d.G > 1 && d.D > 1 ? { ...d, interleaved: true } : d;
}

/**
 * Check the shape of gamma or beta against the affine kind: (C,) per channel, (G,) per group. A
 * (G,)-shaped vector under per-channel affine is refused with the setting that means it (`option`:
 * named as the API option, else as the flag); when G = C the two are the same. `what` names it.
 */
export function checkAffineShape(shape: readonly number[], d: Dims, kind: AffineKind, what: string, file?: string, option = false): void {
  const want = kind === "per-group" ? d.G : d.C;
  if (shape.length === 1 && shape[0] === want) return;
  const got = formatShape(shape);
  const use = (k: AffineKind) => (option ? `affine: "${k}"` : `--affine ${k}`);
  if (kind === "per-channel" && shape.length === 1 && shape[0] === d.G) {
    throw new InputError(`${what} has shape ${got}, one value per group (G = ${d.G}), but per-channel affine needs (${d.C},) (C = ${d.C}): pass ${use("per-group")} (as ONNX opset 18) to apply it per group`, file);
  }
  if (kind === "per-group" && shape.length === 1 && shape[0] === d.C) {
    throw new InputError(`${what} has shape ${got}, one value per channel (C = ${d.C}), but ${use("per-group")} needs (${d.G},) (G = ${d.G}): use ${use("per-channel")} for per-channel values`, file);
  }
  throw new InputError(`${what} must have shape (${want},) to match ${kind === "per-group" ? `G = ${d.G} (${use("per-group")})` : `C = ${d.C}`}, but has shape ${got}`, file);
}

/** gamma or beta (its shape checked first) as the C per-channel values the kernels take: per group, each value repeated over its group's channels. */
export function affineVector(values: ArrayLike<number>, d: Dims, kind: AffineKind, what: string, file?: string, shape: readonly number[] = [values.length], option = false): Float64Array {
  checkAffineShape(shape, d, kind, what, file, option);
  if (kind === "per-channel") return Float64Array.from(values);
  const out = new Float64Array(d.C);
  for (let c = 0; c < d.C; c++) out[c] = values[groupOf(d, c)];
  return out;
}

/** dgamma or dbeta per group: the per-channel sums of each group's channels, in channel order. */
export function perGroupSums(perChannel: ArrayLike<number>, d: Dims): Float64Array {
  const out = new Float64Array(d.G);
  for (let c = 0; c < d.C; c++) out[groupOf(d, c)] += perChannel[c];
  return out;
}
