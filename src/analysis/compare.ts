/**
 * `compare`: NumPy's isclose semantics, |a − b| ≤ atol + rtol·|b| (b the reference), NaN equal to
 * NaN, equal infinities equal; both files streamed in chunks, any pair of float dtypes. Two
 * Fortran-order files are compared in their stored order; a Fortran-order file against a C-order one
 * needs the former's C-order copy, which must fit the memory budget.
 */
import { formatShape, sameShape } from "../core/dims.js";
import type { Dtype } from "../core/dtype.js";
import { sizeText } from "../core/units.js";
import { InputError } from "../errors.js";
import type { TensorSource } from "../io/tensor.js";
import { CHUNK, unravel, unravelFortran } from "./chunks.js";

export interface CompareReport {
  command: "compare";
  a: { path: string; dtype: Dtype; shape: number[] };
  b: { path: string; dtype: Dtype; shape: number[] };
  atol: number;
  rtol: number;
  close: boolean;
  /** Why not close: "shape", "size" (the numbers of values differ) or "values" (null when close). */
  reason: "shape" | "size" | "values" | null;
  /** Values compared (0 when the shapes differ: nothing is compared). */
  size: number;
  /** Values beyond the tolerance (null when the shapes differ). */
  mismatches: number | null;
  max_abs_error: number | null;
  max_rel_error: number | null;
  worst: { index: number[]; a: number; b: number; abs_error: number } | null;
  message: string;
}

export function isClose(a: number, b: number, atol: number, rtol: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= atol + rtol * Math.abs(b);
}

/** Compare two sources value by value (a the values, b the reference), streamed in chunks, within `budget` bytes. */
export async function compareSources(ra: TensorSource, rb: TensorSource, atol: number, rtol: number, budget = Infinity): Promise<CompareReport> {
  const ha = ra, hb = rb;
  const base = {
    command: "compare" as const,
    a: { path: ra.name, dtype: ha.dtype, shape: [...ha.shape] },
    b: { path: rb.name, dtype: hb.dtype, shape: [...hb.shape] },
    atol,
    rtol,
  };
  if (!sameShape(ha.shape, hb.shape)) {
    const reason = ha.size !== hb.size ? "size" : "shape";
    return {
      ...base,
      close: false,
      reason,
      size: 0,
      mismatches: null,
      max_abs_error: null,
      max_rel_error: null,
      worst: null,
      message:
        reason === "size"
          ? `sizes differ: ${ha.size} values ${formatShape(ha.shape)} vs ${hb.size} values ${formatShape(hb.shape)}`
          : `shapes differ: ${formatShape(ha.shape)} vs ${formatShape(hb.shape)} (the same ${ha.size} values)`,
    };
  }
  const n = ha.size;
  // both in Fortran order: compare in that order, no copies; else a Fortran-order one is read through its C-order copy
  const stored = ra.readStored && rb.readStored;
  const readA = stored ? ra.readStored! : ra.read.bind(ra), readB = stored ? rb.readStored! : rb.read.bind(rb);
  const where = stored ? unravelFortran : unravel;
  if (!stored) {
    const resident = (ra.residentBytes ?? 0) + (rb.residentBytes ?? 0);
    if (resident > budget) {
      const f = (ra.residentBytes ?? 0) > 0 ? ra : rb, other = f === ra ? rb : ra;
      throw new InputError(
        `is in Fortran order and ${other.name} in C order: comparing them needs a C-order copy of ${sizeText(f.residentBytes!)} in memory, over --memory ${sizeText(budget)}; raise --memory to ${sizeText(resident)} or save it in C order (numpy.ascontiguousarray)`,
        f.name,
      );
    }
  }
  const bufA = new Float64Array(Math.min(CHUNK, Math.max(1, n)));
  const bufB = new Float64Array(bufA.length);
  let mismatches = 0, maxAbs = 0, maxRel = 0;
  let worst: CompareReport["worst"] = null;
  let worstExcess = -Infinity;
  for (let start = 0; start < n; start += bufA.length) {
    const m = Math.min(bufA.length, n - start);
    const va = bufA.subarray(0, m), vb = bufB.subarray(0, m);
    await readA(start, m, va);
    await readB(start, m, vb);
    for (let i = 0; i < m; i++) {
      const a = va[i], b = vb[i];
      const close = isClose(a, b, atol, rtol);
      let abs = Math.abs(a - b);
      if (Number.isNaN(abs)) abs = close ? 0 : Infinity; // NaN vs NaN, or NaN vs number
      if (!Number.isFinite(a) && a === b) abs = 0;
      if (abs > maxAbs) maxAbs = abs;
      const rel = abs === 0 ? 0 : abs / Math.abs(b);
      if (rel > maxRel) maxRel = rel;
      if (!close) {
        mismatches++;
        const excess = abs - (atol + rtol * Math.abs(b));
        if (excess > worstExcess || Number.isNaN(excess)) {
          worstExcess = Number.isNaN(excess) ? Infinity : excess;
          worst = { index: where(start + i, ha.shape), a, b, abs_error: abs };
        }
      }
    }
  }
  const close = mismatches === 0;
  return {
    ...base,
    close,
    reason: close ? null : "values",
    size: n,
    mismatches,
    max_abs_error: maxAbs,
    max_rel_error: maxRel,
    worst,
    message: close
      ? `${n} values within atol ${atol} + rtol ${rtol}·|b| (max abs error ${maxAbs.toExponential(3)}, max rel error ${maxRel.toExponential(3)})`
      : `${mismatches} of ${n} values differ beyond atol ${atol} + rtol ${rtol}·|b|; worst at (${worst!.index.join(", ")}): a = ${worst!.a}, b = ${worst!.b} (${Number.isNaN(worst!.a) !== Number.isNaN(worst!.b) ? `${Number.isNaN(worst!.a) ? "a" : "b"} is NaN` : `|a − b| = ${worst!.abs_error.toExponential(3)}`})`,
  };
}
