/** Parsers for option values shared by the commands; each refuses bad values with InputError. */
import { availableParallelism } from "node:os";
import { InputError } from "../errors.js";
import { parseLayout, type Layout } from "../core/dims.js";
import type { BackwardOutput } from "../pipeline/backward.js";

export function parseGroups(value: string | undefined): number {
  if (value === undefined) throw new InputError("--groups G is required");
  if (!/^\s*\+?\d+\s*$/.test(value)) throw new InputError(`--groups must be a positive integer, got '${value}'`);
  const g = Number(value);
  if (!Number.isSafeInteger(g) || g <= 0) throw new InputError(`--groups must be a positive integer, got '${value}'`);
  return g;
}

export function parseEps(value: string | undefined): number {
  if (value === undefined) return 1e-5;
  const s = value.trim();
  const e = s === "" ? NaN : Number(s);
  if (!Number.isFinite(e) || e < 0) throw new InputError(`--eps must be a finite number >= 0, got '${value}'`);
  return e;
}

export function parseLayoutOption(value: string | undefined): Layout {
  return value === undefined ? "nchw" : parseLayout(value);
}

export function parseThreads(value: string | undefined): number {
  if (value === undefined) return availableParallelism();
  if (!/^\s*\+?\d+\s*$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new InputError(`--threads must be an integer from 1 to 256, got '${value}'`);
  }
  return Number(value);
}

export function parseNonNegative(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const v = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(v) || v < 0) throw new InputError(`${flag} must be a finite number >= 0, got '${value}'`);
  return v;
}

const UNITS: Record<string, number> = { "": 1, b: 1, k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30 };

/** A size like 512M, 1G, 1.5GiB, 65536. */
export function parseSize(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InputError(`${flag} must be a size like 512M or 2G, got '${value}'`);
  return Math.floor(Number(m[1]) * unit);
}

export function parseShape(value: string): number[] {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.length < 2 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new InputError(`--shape must be positive integers separated by commas, like 16,512,64,64; got '${value}'`);
  }
  return parts.map(Number);
}


export function parseOutputs(list: string): BackwardOutput[] {
  const names = list.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (names.length === 0) throw new InputError("--outputs names no output (expected some of dx,dgamma,dbeta)");
  const out: BackwardOutput[] = [];
  for (const n of names) {
    if (n !== "dx" && n !== "dgamma" && n !== "dbeta") {
      throw new InputError(`--outputs: unknown output '${n}' (expected dx, dgamma or dbeta)`);
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}
