/**
 * Checking a run's inputs: each side tensor's shape against what it must be before any of its data
 * is read, and the precision the kernels run in. Everything here raises InputError naming the tensor.
 */
import { sizeText } from "../core/units.js";
import type { Dtype } from "../core/dtype.js";
import { formatShape, sameShape } from "../core/dims.js";
import { InputError, quoteName } from "../errors.js";
import { readAll, type TensorSource } from "../io/tensor.js";
import type { Precision } from "../kernels/plan.js";
import type { HostPart } from "./budget.js";

/** float64 when any input is float64, else float32 (float16 inputs compute in float32). */
export function precisionOf(...dtypes: Dtype[]): Precision {
  return dtypes.includes("float64") ? "f64" : "f32";
}

/** The statistics' dtype for an input dtype: float64 for float64, else float32. */
export function statsDtypeOf(dtype: Dtype): Dtype {
  return dtype === "float64" ? "float64" : "float32";
}

/** gamma or beta must have shape (C,): checked from its header, nothing read. */
export function checkChannelVector(source: TensorSource, C: number, what: string): void {
  if (source.shape.length !== 1 || source.shape[0] !== C) {
    throw new InputError(`${what} must have shape (${C},) to match C = ${C}, but has shape ${formatShape(source.shape)}`, source.name);
  }
}

/** Saved mean or rstd must have shape (N, G): checked from its header, nothing read. */
export function checkGroupStats(source: TensorSource, N: number, G: number, what: string): void {
  if (!sameShape(source.shape, [N, G])) {
    throw new InputError(`${what} must have shape (${N}, ${G}) (N, G), but has shape ${formatShape(source.shape)}`, source.name);
  }
}

/** A per-channel vector of length C (gamma or beta), as float64; its shape is checked first. */
export async function readChannelVector(source: TensorSource, C: number, what: string): Promise<Float64Array> {
  checkChannelVector(source, C, what);
  return readAll(source);
}

/** Saved mean or rstd of shape (N, G), as float64; its shape is checked first. */
export async function readGroupStats(source: TensorSource, N: number, G: number, what: string): Promise<Float64Array> {
  checkGroupStats(source, N, G, what);
  return readAll(source);
}

/**
 * A side vector of a streamed run (gamma, beta, mean, rstd): values already in memory, or a source
 * whose shape is checked and whose data is read only once the run's plan fits the budget.
 */
export type Side = Float64Array | TensorSource | null;

/** The side's values as float64 (read whole from a source). */
export async function loadSide(s: Side): Promise<Float64Array | null> {
  return !s || s instanceof Float64Array ? s : readAll(s);
}

const fileOf = (s: Side | undefined, fallback: string) => (s && !(s instanceof Float64Array) ? s.name : fallback);

/** "a", "a and b", "a, b and c". */
const listed = (names: string[]) => (names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : names[0]);

/**
 * The per-channel float64 vectors a run holds (`names`: which, `sides` their sources, if any), blamed
 * on the first side read from a file, else on X's file.
 */
export function channelVectors(C: number, names: string[], sides: Side[], x: string): HostPart {
  const each = names.length > 1 ? " each" : "";
  return { what: `${listed(names)}, C = ${C} float64 values${each}`, file: fileOf(sides.find((v) => v && !(v instanceof Float64Array)), x), bytes: 8 * C * names.length };
}

/** Given statistics of (N, G) held as float64 (`names`: mean and rstd, or rstd alone), blamed on the first one's file. */
export function groupStatistics(N: number, G: number, names: string[], first: Side, x: string): HostPart {
  const each = names.length > 1 ? " each" : "";
  return { what: `the given ${listed(names)}, N·G = ${N * G} float64 values${each}`, file: fileOf(first, x), bytes: 8 * N * G * names.length };
}

/**
 * The C-order copies Fortran-order inputs read in parts keep (see NpyReader.residentBytes), which
 * must fit half the budget; none: null.
 */
export function residentCopies(sources: Array<{ source: TensorSource; as: string }>): HostPart | null {
  const held = sources.filter((s) => (s.source.residentBytes ?? 0) > 0);
  if (held.length === 0) return null;
  const bytes = held.reduce((t, s) => t + s.source.residentBytes!, 0);
  const copies = held.length > 1 ? "copies" : "copy";
  const names = [...new Set(held.map((s) => s.source.name))];
  const files = names.length > 1;
  // one file given twice (dY and X) is read, and copied, twice
  const twice = held.length > names.length ? ` (given as ${listed(held.map((s) => s.as))})` : "";
  const others = names.slice(1).map(quoteName);
  return {
    what: `the C-order ${copies} of the Fortran-order ${files ? "files" : "file"} ${listed(names.map(quoteName))}${twice}`,
    file: names[0],
    bytes,
    instead: `save ${files ? "them" : "it"} in C order (numpy.ascontiguousarray)`,
    half: (budget, need) =>
      `is a Fortran-order array${files ? `, and so is ${listed(others)}` : twice}: reading ${files ? "them" : "it"} in parts needs ${held.length > 1 ? "C-order copies" : "a C-order copy"} of ${sizeText(bytes)} in memory, over half of --memory ${sizeText(budget)}; save ${files ? "them" : "it"} in C order (numpy.ascontiguousarray) or raise --memory to ${sizeText(need)}`,
  };
}

export function requireSameShape(a: TensorSource, b: TensorSource, what: string): void {
  if (!sameShape(a.shape, b.shape)) {
    throw new InputError(`${what} shape ${formatShape(a.shape)} differs from X's shape ${formatShape(b.shape)}`, a.name);
  }
}

/** A Fortran-order input is read through a C-order copy of itself, which must fit half of `budget`. */
export function checkResident(source: TensorSource, budget: number): void {
  const bytes = source.residentBytes ?? 0;
  if (bytes > budget / 2) {
    throw new InputError(
      `is a Fortran-order array: reading it in parts needs a C-order copy of ${sizeText(bytes)} in memory, over half of --memory ${sizeText(budget)}; save it in C order (numpy.ascontiguousarray) or raise --memory to ${sizeText(2 * bytes)}`,
      source.name,
    );
  }
}
