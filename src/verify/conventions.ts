/**
 * The conventions behind most "why doesn't my GroupNorm match" reports, each a way of computing it
 * that verify can try when a candidate fails: another eps, the unbiased variance, the other layout,
 * interleaved grouping, per-group affine, gamma/beta left out or swapped, rstd written as something
 * else. The given convention is the first; it may itself be another system's (verify --compat,
 * --grouping, --affine), and the alternatives are then named relative to it.
 */
import type { Activation } from "../core/activation.js";
import type { Layout } from "../core/dims.js";

export type Grouping = "contiguous" | "interleaved";
export type Affine = "channel" | "group" | "none" | "swapped";
export type RstdAs = "rstd" | "std" | "variance" | "varianceEps";

export interface Convention {
  /** How a diagnosis names it: "eps = 1e-6 (Flax, diffusers)". */
  label: string;
  /** What the given convention says instead (for "…, not 1e-5"). */
  instead: string;
  eps: number;
  unbiased: boolean;
  layout: Layout;
  grouping: Grouping;
  affine: Affine;
  /** How the rstd candidate was written. */
  rstdAs: RstdAs;
  /** Another activation than the given one (null: none), when verify checks through one; absent: the given one. */
  activation?: Activation | null;
}

export interface Given {
  eps: number;
  layout: Layout;
  hasGamma: boolean;
  hasBeta: boolean;
  /** Whether the file's shape can be read in the other layout with the same G. */
  otherLayout: boolean;
  /** Statistics given to a backward: eps and the variance are then not the candidate's choice. */
  statsGiven: boolean;
  /** How the candidates should group channels (default contiguous). */
  grouping?: Grouping;
  /** gamma and beta given per group (G values, expanded to their channels): no per-group alternative. */
  affinePerGroup?: boolean;
}

/** eps as people write it: 1e-5, 1e-6, 0.001, 0. */
export function epsText(eps: number): string {
  return eps !== 0 && eps < 1e-3 ? eps.toExponential().replace(/\.?0*e/, "e") : String(eps);
}

export function givenConvention(g: Given): Convention {
  return { label: "the given convention", instead: "", eps: g.eps, unbiased: false, layout: g.layout, grouping: g.grouping ?? "contiguous", affine: "channel", rstdAs: "rstd" };
}

const EPS: Array<[number, string]> = [
  [1e-5, " (PyTorch, ONNX)"],
  [1e-3, " (Keras)"],
  [1e-6, " (Flax, diffusers)"],
  [1e-12, ""],
  [0, ""],
];

/** The alternatives tried, in the order a diagnosis names the first that fits. */
export function alternatives(g: Given): Convention[] {
  const base = givenConvention(g);
  const out: Convention[] = [];
  if (!g.statsGiven) {
    for (const [eps, who] of EPS) if (eps !== g.eps) out.push({ ...base, eps, label: `eps = ${epsText(eps)}${who}`, instead: epsText(g.eps) });
    out.push({ ...base, unbiased: true, label: "the unbiased variance (divided by M − 1)", instead: "the biased one (divided by M)" });
  }
  if (g.otherLayout) {
    const other = g.layout === "nchw" ? "nhwc" : "nchw";
    out.push({ ...base, layout: other, label: `the file read as ${other}`, instead: g.layout });
  }
  if (base.grouping === "contiguous") out.push({ ...base, grouping: "interleaved", label: "channels grouped interleaved (channel c in group c mod G, as MLX by default)", instead: "contiguous groups" });
  else out.push({ ...base, grouping: "contiguous", label: "channels grouped contiguously (channel c in group c / D, as PyTorch)", instead: "interleaved groups (c mod G)" });
  if (g.hasGamma || g.hasBeta) {
    if (!g.affinePerGroup) out.push({ ...base, affine: "group", label: "gamma and beta applied per group (gamma[g] for group g, as ONNX opset 18)", instead: "per channel" });
    out.push({ ...base, affine: "none", label: "gamma and beta not applied", instead: "" });
  }
  if (g.hasGamma && g.hasBeta) out.push({ ...base, affine: "swapped", label: "gamma and beta swapped", instead: "in their places" });
  out.push({ ...base, rstdAs: "std", label: "rstd written as the standard deviation sqrt(var + eps)", instead: "1/sqrt(var + eps)" });
  out.push({ ...base, rstdAs: "variance", label: "rstd written as the variance", instead: "1/sqrt(var + eps)" });
  out.push({ ...base, rstdAs: "varianceEps", label: "rstd written as var + eps", instead: "1/sqrt(var + eps)" });
  return out;
}

/**
 * Whether an alternative changes an output at all (only those are tried on it). `through`: the
 * outputs are of act(GroupNorm(X)), whose pre-activation x̂·γ + β moves with the affine, eps and the
 * variance, and with it dY·act'(pre), so every gradient.
 */
export function affects(c: Convention, given: Convention, output: string, through = false): boolean {
  if (c.activation !== given.activation) return output !== "mean" && output !== "rstd";
  if (c.rstdAs !== given.rstdAs) return output === "rstd";
  const gradient = output === "dgamma" || output === "dbeta";
  if (c.affine !== given.affine) return output === "Y" || output === "dX" || (through && gradient);
  if (c.layout !== given.layout || c.grouping !== given.grouping) return true;
  if (output === "var") return c.unbiased !== given.unbiased; // eps does not change it (nor the activation's pre)
  return output !== "mean" && (output !== "dbeta" || through); // eps and the variance change neither (but pre)
}
