/**
 * Shape checks, kept apart from the kernels (as PyTorch's group_norm.cpp is kept apart from
 * cpu/group_norm_kernel.cpp): everything a kernel needs is reduced here to flat integers.
 *
 *   N    batch size
 *   C    channels
 *   HxW  product of the spatial dimensions (1 when there are none)
 *   G    groups
 *   D    channels per group, C / G
 *
 * Channel c is in group ⌊c / D⌋, or, with interleaved groups (core/conventions.ts), in group c mod G.
 */
import { InputError } from "../errors.js";

export type Layout = "nchw" | "nhwc";

export interface Dims {
  readonly N: number;
  readonly C: number;
  readonly HxW: number;
  readonly G: number;
  readonly D: number;
  readonly layout: Layout;
  /** Channel c in group c mod G (set only when that differs from ⌊c / D⌋: G > 1 and D > 1). */
  readonly interleaved?: boolean;
}

export function parseLayout(value: string): Layout {
  const v = value.toLowerCase();
  if (v === "nchw" || v === "nhwc") return v;
  throw new InputError(`unknown layout '${value}' (expected nchw or nhwc)`);
}

/** Number of elements of a Dims'd tensor. */
export function numel(d: Dims): number {
  return d.N * d.C * d.HxW;
}

/**
 * A shape given as N, C, spatial (the `--shape` flags) in the layout's memory order: NHWC moves C
 * last, as a channels-last file stores it.
 */
export function memoryOrder(shape: readonly number[], layout: Layout): number[] {
  return layout === "nhwc" && shape.length > 2 ? [shape[0], ...shape.slice(2), shape[1]] : [...shape];
}

/** Channel axis of a file shape for the layout. */
export function channelAxis(shape: readonly number[], layout: Layout): number {
  return layout === "nchw" ? 1 : shape.length - 1;
}

/**
 * Validate X's shape against the layout and group count and flatten it. `file` names the tensor in
 * messages.
 */
export function groupNormDims(shape: readonly number[], groups: number, layout: Layout, file?: string): Dims {
  if (shape.length < 2) {
    throw new InputError(
      `expected at least 2 dimensions (N, C, ...) but got shape ${formatShape(shape)}`,
      file,
    );
  }
  if (!Number.isSafeInteger(groups) || groups <= 0) {
    throw new InputError(`--groups must be a positive integer, got ${groups}`);
  }
  const N = shape[0];
  const C = shape[channelAxis(shape, layout)];
  let HxW = 1;
  const spatial = layout === "nchw" ? shape.slice(2) : shape.slice(1, -1);
  for (const s of spatial) HxW *= s;
  // Zero-size dimensions are accepted as PyTorch accepts them: N = 0 gives empty outputs; an empty
  // group (HxW = 0 or C = 0) has mean 0 and rstd NaN.
  if (C % groups !== 0) {
    throw new InputError(
      `C = ${C} (shape ${formatShape(shape)}, layout ${layout}) is not divisible by --groups ${groups}`,
      file,
    );
  }
  return { N, C, HxW, G: groups, D: C / groups, layout };
}

export function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Index of element (n, c, s) in the flat C-order buffer of a tensor with these dims. Used by the
 * oracle and tests; kernels compute offsets themselves.
 */
export function flatIndex(d: Dims, n: number, c: number, s: number): number {
  return d.layout === "nchw" ? (n * d.C + c) * d.HxW + s : (n * d.HxW + s) * d.C + c;
}

/** The group of channel c: ⌊c / D⌋, or c mod G with interleaved groups. */
export function groupOf(d: Pick<Dims, "G" | "D" | "interleaved">, c: number): number {
  return d.interleaved ? c % d.G : Math.floor(c / d.D);
}

/** The channels of group g, in order: g·D … g·D + D − 1, or g, g + G, … with interleaved groups. */
export function channelsOfGroup(d: Pick<Dims, "G" | "D" | "interleaved">, g: number): number[] {
  return Array.from({ length: d.D }, (_, k) => (d.interleaved ? g + k * d.G : g * d.D + k));
}
