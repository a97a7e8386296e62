/**
 * The activations a GroupNorm can be fused with (`--activation`): Y = act(GroupNorm(X)), as
 * diffusion UNets and VAEs put SiLU after their GroupNorms. Names and the kernels' codes; the
 * float64 functions are oracle/activation.ts, the vectorised ones src/assembly/activation.ts.
 */
import { InputError } from "../errors.js";

export type Activation = "silu" | "gelu" | "gelu-tanh";

export const ACTIVATIONS: readonly Activation[] = ["silu", "gelu", "gelu-tanh"];

/** What each name means, for help and messages. */
export const ACTIVATION_TEXT: Record<Activation, string> = {
  silu: "z·sigmoid(z) (alias swish)",
  gelu: "z·Φ(z), the erf form (PyTorch's approximate='none')",
  "gelu-tanh": "0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))) (PyTorch's approximate='tanh')",
};

/** An activation name (or "none", or the alias "swish"), checked; null for none. */
export function checkActivation(v: unknown, what = "activation"): Activation | null {
  if (v === undefined || v === null) return null;
  const name = typeof v === "string" ? v.trim().toLowerCase() : v;
  if (name === "none") return null;
  if (name === "swish") return "silu";
  if (typeof name === "string" && (ACTIVATIONS as readonly string[]).includes(name)) return name as Activation;
  throw new InputError(`${what} must be silu (or swish), gelu, gelu-tanh or none, got ${JSON.stringify(v)}`);
}

/** The kernels' code of an activation: 0 none, 1 silu, 2 gelu, 3 gelu-tanh (src/assembly/activation.ts). */
export function activationCode(a: Activation | null): number {
  return a === null ? 0 : ACTIVATIONS.indexOf(a) + 1;
}
