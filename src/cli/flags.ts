/**
 * Every command-line flag, declared once: its syntax, help, how its text becomes a typed value (or
 * an InputError naming the flag), and its value when absent. Commands list the flags they take
 * (cli/command.ts); the values they receive are typed by this table (after npm-check-updates'
 * cliOptions and vitest's cli-config).
 */
import { type Activation, checkActivation } from "../core/activation.js";
import { type AffineKind, checkAffine, checkCompat, checkGrouping, type Compat, type Grouping } from "../core/conventions.js";
import type { Layout } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { checkLayout, DEFAULT_EPS } from "../core/params.js";
import { InputError } from "../errors.js";
import { MAX_THREADS } from "../core/threads.js";

export interface Flag<T> {
  /** Commander syntax: "--groups <G>" (a value), "--json" (a switch), "--no-affine" (negated switch). */
  readonly syntax: string;
  readonly help: string;
  /** Text → value; throws InputError naming the flag. Switches have none. */
  readonly parse?: (raw: string) => T;
  /** The value when the flag is absent. */
  readonly fallback: T;
  /** Shown in help as "(default: …)". */
  readonly shown?: string;
}

const value = <T>(syntax: string, help: string, parse: (raw: string) => T, fallback: T, shown?: string): Flag<T> => ({ syntax, help, parse, fallback, shown });
const path = (syntax: string, help: string): Flag<string | undefined> => value(syntax, help, (s) => s, undefined);
const toggle = (syntax: string, help: string): Flag<boolean> => ({ syntax, help, fallback: syntax.startsWith("--no-") });

// ------------------------------------------------------------------ parsers

const INTEGER = /^\s*\+?\d+\s*$/;
/** Decimal or scientific notation only (no hex, binary, octal or Infinity). */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

export function parseInteger(raw: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(raw);
  if (!INTEGER.test(raw) || !Number.isSafeInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? "a positive integer" : `an integer >= ${min}`) : `an integer from ${min} to ${max}`;
    throw new InputError(`${flag} must be ${range}, got '${raw}'`);
  }
  return v;
}

export function parseNumber(raw: string, flag: string, positive = false): number {
  const v = DECIMAL.test(raw) ? Number(raw) : NaN;
  const want = positive ? "a finite number > 0" : "a finite number >= 0";
  if (!Number.isFinite(v) || v < 0 || (positive && v === 0)) throw new InputError(`${flag} must be ${want}, got '${raw}'`);
  // a value written nonzero that float64 cannot hold (1e-400) is not silently 0
  if (v === 0 && /[1-9]/.test(raw.replace(/[eE].*$/, ""))) throw new InputError(`${flag} ${raw.trim()} is below the smallest float64 (about 5e-324): write 0 if you mean 0`);
  return v;
}

/** K, M, G, T are powers of 1024, spelt with or without "i" and "B" (K, Ki, KB, KiB); a bare B is bytes. */
const UNIT_POWERS: Record<string, number> = { "": 0, k: 1, m: 2, g: 3, t: 4 };

/** A size like 512M, 1G, 1.5GiB, 2Ti, 65536. */
export function parseSize(raw: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt]?)(i?)(b?))\s*$/i.exec(raw);
  const bad = () => new InputError(`${flag} must be a size like 512M, 2G or 1.5GiB (K, M, G, T: powers of 1024), got '${raw}'`);
  if (!m) throw bad();
  const [, num, unit, i] = m;
  if (unit === "" && i !== "") throw bad(); // "5i"
  const bytes = Math.floor(Number(num) * 1024 ** UNIT_POWERS[unit.toLowerCase()]);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw bad();
  return bytes;
}

export function parseShape(raw: string): number[] {
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.length < 2 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new InputError(`--shape must be positive integers separated by commas, like 16,512,64,64; got '${raw}'`);
  }
  return parts.map(Number);
}

export function parseDtype(raw: string): Dtype {
  const d = raw.toLowerCase();
  if (d === "f16" || d === "float16") return "float16";
  if (d === "bf16" || d === "bfloat16") return "bfloat16";
  if (d === "f32" || d === "float32") return "float32";
  if (d === "f64" || d === "float64") return "float64";
  throw new InputError(`--dtype must be f16, bf16, f32 or f64, got '${raw}'`);
}

/** A comma-separated list of output names (checked against the command's outputs by the API). */
export function parseOutputs(raw: string): string[] {
  const names = [...new Set(raw.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean))];
  if (names.length === 0) throw new InputError(`--outputs names no output, got '${raw}'`);
  return names;
}

// ------------------------------------------------------------------ the table

export const FLAGS = {
  groups: value<number | undefined>("--groups <G>", "number of groups; must divide C (required)", (s) => parseInteger(s, "--groups", 1), undefined),
  eps: value("--eps <eps>", "added to the variance, finite and >= 0", (s) => parseNumber(s, "--eps"), DEFAULT_EPS, "1e-5"),
  layout: value<Layout>("--layout <layout>", "nchw: (N, C, *spatial); nhwc: (N, *spatial, C)", (s) => checkLayout(s), "nchw", "nchw"),
  gamma: path("--gamma <file>", "per-channel scale, shape (C,) (default 1)"),
  beta: path("--beta <file>", "per-channel shift, shape (C,) (default 0)"),
  activation: value<Activation | null>("--activation <name>", "Y = act(GroupNorm(X)) in the same pass: silu (alias swish), gelu (erf form), gelu-tanh, or none", (s) => checkActivation(s, "--activation"), null, "none"),
  outDir: value("--out-dir <dir>", "folder for the outputs, created with parents if missing", (s) => s, ".", "the current folder"),
  out: path("--out <file>", "write the outputs not named into one container, FILE.npz or FILE.safetensors, keyed by their names"),
  compress: toggle("--compress", "deflate .npz outputs (as np.savez_compressed); default stored (np.savez)"),
  y: path("--y <file>", "write Y here instead of DIR/Y.npy"),
  mean: path("--mean <file>", "mean, shape (N, G)"),
  rstd: path("--rstd <file>", "rstd, shape (N, G)"),
  outputs: value<string[] | undefined>("--outputs <list>", "which outputs to write, comma-separated", parseOutputs, undefined),
  dx: path("--dx <file>", "write dX here instead of DIR/dX.npy"),
  dgamma: path("--dgamma <file>", "write dgamma here instead of DIR/dgamma.npy"),
  dbeta: path("--dbeta <file>", "write dbeta here instead of DIR/dbeta.npy"),
  threads: value<number | undefined>("--threads <K>", "worker threads (default: available cores)", (s) => parseInteger(s, "--threads", 1, MAX_THREADS), undefined),
  memory: value<number | undefined>("--memory <size>", "budget for the slices in flight, e.g. 256M or 2G (default 384M)", (s) => parseSize(s, "--memory"), undefined),
  shape: value<number[] | undefined>("--shape <N,C,...>", "tensor shape, N, C, spatial in this order for either layout", parseShape, undefined),
  seed: value("--seed <S>", "seed for random inputs and for sampling", (s) => parseInteger(s, "--seed", 0), 0, "0"),
  dtype: value<Dtype | undefined>("--dtype <dtype>", "dtype of random inputs: f16, bf16, f32 or f64", parseDtype, undefined),
  x: path("--x <file>", "input X from a file (instead of --shape)"),
  dy: path("--dy <file>", "upstream gradient dY (default: random from the seed)"),
  affine: toggle("--no-affine", "no gamma/beta: check dX only"),
  samples: value("--samples <K>", "entries of each output checked at most (sampled from the seed)", (s) => parseInteger(s, "--samples", 1, 1_000_000), 256, "256"),
  atol: value<number | undefined>("--atol <atol>", "absolute tolerance", (s) => parseNumber(s, "--atol"), undefined),
  rtol: value<number | undefined>("--rtol <rtol>", "relative tolerance, times |reference|", (s) => parseNumber(s, "--rtol"), undefined),
  peakGbps: value<number | undefined>("--peak-gbps <X>", "theoretical peak bandwidth in GB/s (otherwise DMI or ACPI HMAT if the host exposes them)", (s) => parsePositive(s, "--peak-gbps"), undefined),
  runs: value("--runs <R>", "timed runs per measurement (best, median, 90th percentile and coefficient of variation reported)", (s) => parseInteger(s, "--runs", 1, 1000), 10, "10"),
  svg: path("--svg <file>", "also draw the roofline, the bandwidth-against-working-set sweep (and the thread scaling) as SVG"),
  sweep: toggle("--sweep", "measure bandwidth against working-set size (implied by --svg)"),
  scaling: toggle("--scaling", "also measure at 1, 2, 4, … threads up to --threads: where the memory saturates"),
  baseline: path("--baseline <file>", "an earlier 'roofline --json' document: its figures side by side with this run's"),
  json: toggle("--json", "print one JSON report on stdout"),
  quiet: toggle("--quiet", "print nothing on success"),
  color: toggle("--no-color", "no colours in output (also NO_COLOR=1)"),
  // conventions (issue #17): what GroupNorm means in each framework
  groupSize: value<number | undefined>("--group-size <K>", "channels per group, instead of --groups (G = C / K; K must divide C)", (s) => parseInteger(s, "--group-size", 1), undefined),
  grouping: value<Grouping | undefined>("--grouping <kind>", "contiguous: channel c in group c / D (PyTorch); interleaved: c mod G (MLX)", (s) => checkGrouping(s, "--grouping"), undefined, "contiguous"),
  affineKind: value<AffineKind | undefined>("--affine <kind>", "per-channel: gamma, beta of shape (C,); per-group: (G,), as ONNX opset 18", (s) => checkAffine(s, "--affine"), undefined, "per-channel"),
  compat: value<Compat | undefined>("--compat <system>", "that system's defaults for eps, layout, grouping and affine: torch, onnx18, onnx21, keras, flax or mlx (explicit flags win)", (s) => checkCompat(s, "--compat"), undefined),
  var: path("--var <file>", "each group's biased variance, shape (N, G)"),
} as const;

function parsePositive(raw: string, flag: string): number {
  return parseNumber(raw, flag, true);
}

export type FlagName = keyof typeof FLAGS;
export type FlagValue<K extends FlagName> = (typeof FLAGS)[K] extends Flag<infer T> ? T : never;
export type FlagValues<K extends FlagName> = { [P in K]: FlagValue<P> };
