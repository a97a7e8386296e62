/**
 * The convention flags forward, backward and verify share (--group-size, --grouping, --affine,
 * --compat, with --groups, --eps and --layout), their help, and how a run line names them.
 */
import type { AffineKind, Compat, ConventionOptions, Grouping } from "../core/conventions.js";
import type { Layout } from "../core/dims.js";

export const CONVENTION_FLAGS = ["groupSize", "grouping", "affineKind", "compat"] as const;

export const conventionHelp = {
  groups: "number of groups; must divide C (or --group-size)",
  eps: "added to the variance, finite and >= 0",
  layout: "nchw: (N, C, *spatial); nhwc: (N, *spatial, C)",
  gamma: "scale, shape (C,), or (G,) with --affine per-group (default 1)",
  beta: "shift, shape (C,), or (G,) with --affine per-group (default 0)",
};

export const conventionDefaults = {
  eps: "1e-5, or --compat's",
  layout: "nchw, or --compat's",
  grouping: "contiguous, or --compat's",
  affineKind: "per-channel, or --compat's",
};

interface Flags {
  groups: number | undefined;
  groupSize: number | undefined;
  eps: number;
  layout: Layout;
  grouping: Grouping | undefined;
  affineKind: AffineKind | undefined;
  compat: Compat | undefined;
}

/** The API's convention options from the flags: eps and layout only when given, so that --compat's apply. */
export function conventionOptions(f: Flags, given: ReadonlySet<string>): ConventionOptions {
  return {
    groups: f.groups,
    groupSize: f.groupSize,
    eps: given.has("eps") ? f.eps : undefined,
    layout: given.has("layout") ? f.layout : undefined,
    grouping: f.grouping,
    affine: f.affineKind,
    compat: f.compat,
  };
}

/** What a run line adds for a convention other than PyTorch's: ", interleaved groups, affine per group (compat mlx)". */
export function conventionText(r: { grouping: Grouping; affine: AffineKind; compat: Compat | null }): string {
  const parts = [r.grouping === "interleaved" ? "interleaved groups" : "", r.affine === "per-group" ? "affine per group" : ""].filter(Boolean);
  return `${parts.length ? `, ${parts.join(", ")}` : ""}${r.compat ? ` (compat ${r.compat})` : ""}`;
}
