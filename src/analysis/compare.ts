/**
 * `compare`: NumPy's isclose semantics, |a − b| ≤ atol + rtol·|b| (b the reference), NaN equal to
 * NaN, equal infinities equal; both files streamed through the arena in their own dtypes, any pair
 * of float dtypes, compared by the WebAssembly kernel on the engine's threads. Two
 * Fortran-order files are compared in their stored order; a Fortran-order file against a C-order one
 * needs the former's C-order copy, which must fit the memory budget.
 */
import { formatShape, sameShape } from "../core/dims.js";
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { sizeText } from "../core/units.js";
import { InputError } from "../errors.js";
import type { TensorSource } from "../io/tensor.js";
import type { Engine } from "../kernels/engine.js";
import { RECORD, SCAN_BLOCK, ScanDtype, scanDtypeOf, ScanOp } from "../kernels/scan.js";
import { type ScanInput, streamScan } from "../pipeline/scan.js";
import { unravel, unravelFortran } from "./chunks.js";

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

/**
 * |a − b| as compare reports it: 0 for NaN against NaN and for equal infinities, ∞ for NaN against
 * a number (`close`: whether the pair is close).
 */
function absError(a: number, b: number, close: boolean): number {
  let abs = Math.abs(a - b);
  if (Number.isNaN(abs)) abs = close ? 0 : Infinity; // NaN vs NaN, or NaN vs number
  if (!Number.isFinite(a) && a === b) abs = 0;
  return abs;
}

/**
 * The kernel's block records (assembly/compare.ts) merged in order, as one loop in order over the
 * values would have kept them: counts added, the largest errors, and the worst mismatch — the first
 * of the largest excess over the tolerance, except that an excess that is NaN (NaN against a
 * number) takes the place whenever it comes.
 */
class CompareMerge {
  mismatches = 0;
  maxAbs = 0;
  maxRel = 0;
  private excess = -Infinity;
  worst: { at: number; a: number; b: number } | null = null;

  add(r: Float64Array, blocks: number, start: number): void {
    for (let k = 0; k < blocks; k++) {
      const o = k * RECORD;
      this.mismatches += r[o];
      if (r[o + 1] > this.maxAbs) this.maxAbs = r[o + 1];
      if (r[o + 2] > this.maxRel) this.maxRel = r[o + 2];
      const i = r[o + 3], nan = r[o + 5] === 1;
      if (i < 0 || !(nan || r[o + 4] > this.excess)) continue;
      this.excess = nan ? Infinity : r[o + 4];
      this.worst = { at: start + k * SCAN_BLOCK + i, a: r[o + 6], b: r[o + 7] };
    }
  }
}

/**
 * How a side goes into the arena: its file's own bytes when they are in the order compared (both
 * files in C order, or both in Fortran order), else through its reader (a Fortran-order file's
 * C-order copy) as float32 or float64.
 */
function sideInput(engine: Engine, src: TensorSource, stored: boolean): ScanInput {
  if (src.readStoredRaw && (src.readStored !== undefined) === stored) {
    const size = itemSizeOf(src.dtype), raw = src.readStoredRaw;
    return { dtype: scanDtypeOf(src.dtype), read: (start, count, ptr) => raw(start, count, new Uint8Array(engine.memory.buffer, ptr, count * size)) };
  }
  const read = stored ? src.readStored! : src.read.bind(src);
  if (src.dtype === "float64") return { dtype: ScanDtype.F64, read: (start, count, ptr) => read(start, count, engine.arena.f64(ptr, count)) };
  return { dtype: ScanDtype.F32, read: (start, count, ptr) => read(start, count, engine.arena.f32(ptr, count)) };
}

/**
 * Compare two sources value by value (a the values, b the reference) on the engine's threads,
 * streamed in slices within `budget` bytes (which a Fortran-order file's C-order copy must fit).
 */
export async function compareSources(engine: Engine, ra: TensorSource, rb: TensorSource, atol: number, rtol: number, budget = Infinity): Promise<CompareReport> {
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
  const stored = ra.readStored !== undefined && rb.readStored !== undefined;
  const where = stored ? unravelFortran : unravel;
  const resident = stored ? 0 : (ra.residentBytes ?? 0) + (rb.residentBytes ?? 0);
  if (resident > budget) {
    const f = (ra.residentBytes ?? 0) > 0 ? ra : rb, other = f === ra ? rb : ra;
    throw new InputError(
      `is in Fortran order and ${other.name} in C order: comparing them needs a C-order copy of ${sizeText(f.residentBytes!)} in memory, over --memory ${sizeText(budget)}; raise --memory to ${sizeText(resident)} or save it in C order (numpy.ascontiguousarray)`,
      f.name,
    );
  }
  const acc = new CompareMerge();
  const inputs = [sideInput(engine, ra, stored), sideInput(engine, rb, stored)] as const;
  await streamScan(engine, { op: ScanOp.Compare, inputs, size: n, budget: budget - resident, atol, rtol, merge: (r, blocks, start) => acc.add(r, blocks, start) });
  const { mismatches, maxAbs, maxRel } = acc;
  const w = acc.worst;
  const worst: CompareReport["worst"] = w && { index: where(w.at, ha.shape), a: w.a, b: w.b, abs_error: absError(w.a, w.b, false) };
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
