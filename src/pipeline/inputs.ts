/**
 * Opening and checking a run's input files: X (and dY) headers, per-channel vectors and saved
 * statistics. Everything here raises InputError naming the file.
 */
import { InputError } from "../errors.js";
import { type Dims, formatShape, groupNormDims, type Layout, sameShape } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { NpyReader, readNpy } from "../io/npy/index.js";
import type { Precision } from "../kernels/plan.js";


export function precisionOf(...dtypes: Dtype[]): Precision {
  return dtypes.includes("float64") ? "f64" : "f32";
}

export function dimsOf(reader: NpyReader, groups: number, layout: Layout): Dims {
  return groupNormDims(reader.header.shape, groups, layout, reader.header.path);
}

/** A per-channel vector of length C (gamma or beta), as float64. */
export async function readChannelVector(path: string, C: number, what: string): Promise<Float64Array> {
  const { header, data } = await readNpy(path, "float64");
  if (header.shape.length !== 1 || header.shape[0] !== C) {
    throw new InputError(`${what} must have shape (${C},) to match C = ${C}, but has shape ${formatShape(header.shape)}`, path);
  }
  return data as Float64Array;
}

/** Saved mean or rstd of shape (N, G), as float64. */
export async function readGroupStats(path: string, N: number, G: number, what: string): Promise<Float64Array> {
  const { header, data } = await readNpy(path, "float64");
  if (!sameShape(header.shape, [N, G])) {
    throw new InputError(`${what} must have shape (${N}, ${G}) (N, G), but has shape ${formatShape(header.shape)}`, path);
  }
  return data as Float64Array;
}

export function requireSameShape(a: NpyReader, b: NpyReader, what: string): void {
  if (!sameShape(a.header.shape, b.header.shape)) {
    throw new InputError(
      `${what} shape ${formatShape(a.header.shape)} differs from X's shape ${formatShape(b.header.shape)}`,
      a.header.path,
    );
  }
}
