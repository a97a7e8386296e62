/** The GroupNorm parameters every entry point takes, checked the same way for the CLI and the API. */
import { InputError } from "../errors.js";
import { type Layout, parseLayout } from "./dims.js";

export const DEFAULT_EPS = 1e-5;

/** eps: finite and ≥ 0 (default 1e-5). `what` names it in the message (`--eps` or `eps`). */
export function checkEps(eps: number | undefined, what = "eps"): number {
  if (eps === undefined) return DEFAULT_EPS;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new InputError(`${what} must be a finite number >= 0, got ${eps}`);
  return eps;
}

export function checkLayout(layout: string | undefined): Layout {
  return layout === undefined ? "nchw" : parseLayout(layout);
}

/** A memory budget in bytes (default `fallback`). */
export function checkMemory(bytes: number | undefined, fallback: number, what = "memory"): number {
  if (bytes === undefined) return fallback;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InputError(`${what} must be a positive number of bytes, got ${bytes}`);
  return bytes;
}
