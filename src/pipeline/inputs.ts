/**
 * Checking a run's inputs: each side tensor's shape against what it must be before any of its data
 * is read, and the precision the kernels run in. Everything here raises InputError naming the tensor.
 */
import { sizeText } from "../core/units.js";
import type { Dtype } from "../core/dtype.js";
import { formatShape, sameShape } from "../core/dims.js";
import { InputError } from "../errors.js";
import { readAll, type TensorSource } from "../io/tensor.js";
import type { Precision } from "../kernels/plan.js";

/** float64 when any input is float64, else float32 (float16 inputs compute in float32). */
export function precisionOf(...dtypes: Dtype[]): Precision {
  return dtypes.includes("float64") ? "f64" : "f32";
}

/** The statistics' dtype for an input dtype: float64 for float64, else float32. */
export function statsDtypeOf(dtype: Dtype): Dtype {
  return dtype === "float64" ? "float64" : "float32";
}

/** A per-channel vector of length C (gamma or beta), as float64; its shape is checked first. */
export async function readChannelVector(source: TensorSource, C: number, what: string): Promise<Float64Array> {
  if (source.shape.length !== 1 || source.shape[0] !== C) {
    throw new InputError(`${what} must have shape (${C},) to match C = ${C}, but has shape ${formatShape(source.shape)}`, source.name);
  }
  return readAll(source);
}

/** Saved mean or rstd of shape (N, G), as float64; its shape is checked first. */
export async function readGroupStats(source: TensorSource, N: number, G: number, what: string): Promise<Float64Array> {
  if (!sameShape(source.shape, [N, G])) {
    throw new InputError(`${what} must have shape (${N}, ${G}) (N, G), but has shape ${formatShape(source.shape)}`, source.name);
  }
  return readAll(source);
}

export function requireSameShape(a: TensorSource, b: TensorSource, what: string): void {
  if (!sameShape(a.shape, b.shape)) {
    throw new InputError(`${what} shape ${formatShape(a.shape)} differs from X's shape ${formatShape(b.shape)}`, a.name);
  }
}

/** A source that would keep a copy of itself in memory (a Fortran-order file read in parts) must fit half the budget. */
export function checkResident(source: TensorSource, budget: number): void {
  const bytes = source.residentBytes ?? 0;
  if (bytes > budget / 2) {
        throw new InputError(
      `is a Fortran-order array: reading it in parts needs a C-order copy of ${sizeText(bytes)} in memory, over half of --memory ${sizeText(budget)}; save it in C order (numpy.ascontiguousarray) or raise --memory to ${sizeText(2 * bytes)}`,
      source.name,
    );
  }
}
