/**
 * verify's diagnosis: for a candidate that fails (or passes close to its tolerance), the
 * alternative conventions under which it would pass, tried on the failed positions and evenly
 * spread blocks of others (elementwise outputs) or on every entry (per-group and per-channel ones).
 */
import type { TensorSource } from "../io/tensor.js";
import type { OutputReport } from "./check.js";
import { affects, type Convention } from "./conventions.js";
import { keyOf, type Prepared, toleranceFor, type VerifyInputs } from "./prepare.js";
import { VERIFY_CHUNK } from "./reference.js";
import { allowed } from "./tolerance.js";

/**
 * Positions tried by a diagnosis besides the failed ones: BLOCKS runs of BLOCK consecutive entries,
 * spread evenly from the first entry to the last (every entry of a smaller file).
 */
const BLOCKS = 256, BLOCK = 256;

/** Positions this close are read in one range (reading the gap costs less than another read). */
const GAP = 1024;

/** Sorted flat positions a diagnosis tries: the failed ones and evenly spread blocks. */
function samplePositions(size: number, failed: number[]): number[] {
  const set = new Set(failed);
  if (size <= BLOCKS * BLOCK) for (let i = 0; i < size; i++) set.add(i);
  else {
    for (let b = 0; b < BLOCKS; b++) {
      const from = Math.floor((b * (size - BLOCK)) / (BLOCKS - 1));
      for (let i = from; i < from + BLOCK; i++) set.add(i);
    }
  }
  return [...set].sort((a, b) => a - b);
}

/** Sorted positions as ranges to read, [from, to) of the file and [first, end) of the positions: nearby ones together, none over VERIFY_CHUNK. */
function rangesOf(positions: number[]): Array<{ from: number; to: number; first: number; end: number }> {
  const out: Array<{ from: number; to: number; first: number; end: number }> = [];
  for (let k = 0; k < positions.length; k++) {
    const p = positions[k], last = out[out.length - 1];
    if (last && p - last.to < GAP && p + 1 - last.from <= VERIFY_CHUNK) {
      last.to = p + 1;
      last.end = k + 1;
    } else out.push({ from: p, to: p + 1, first: k, end: k + 1 });
  }
  return out;
}

/**
 * A candidate passing with at least this share of its tolerance used is also tried against the
 * alternatives (honest float32 and float64 results use 1–8%; float16 ones more, from storage).
 */
const SUSPECT = 0.1;

/** Alternatives that fit within this factor of the best are named with it: not told apart. */
const TIED = 2;

/** …and an alternative it fits this many times more closely is named. */
const CLOSER = 4;

/**
 * The diagnosis of an output from the largest |value − reference| / tolerance under each alternative
 * (on the values tried): for a failed output, the alternatives under which every value passes — "Y
 * matches GroupNorm with eps = 1e-6 (Flax, diffusers), not 1e-5"; for one that passed close to its
 * tolerance, an alternative it fits CLOSER times more closely (a convention difference too small for
 * this data to fail, but systematic).
 */
export function diagnosis(name: string, report: OutputReport, ratios: Map<Convention, number>): string | null {
  const used = report.tolerance_used ?? 0;
  // those that fit; the best and those tied with it (within TIED of it), in the list's order
  const fits = [...ratios].filter(([, r]) => (report.passed ? r * CLOSER <= used : r <= 1));
  if (fits.length === 0) return null;
  const least = Math.min(...fits.map(([, r]) => r));
  const tied = fits.filter(([, r]) => r <= Math.max(least * TIED, report.passed ? 0 : 1e-3));
  const best = tied[0][1];
  const [c, ...also] = tied.map(([conv]) => conv);
  const alsoText = also.length ? ` (also with ${also.map((a) => a.label).join("; with ")}: not told apart by these values)` : "";
  if (report.passed) {
    const pct = (v: number) => `${(100 * v).toFixed(v < 0.1 ? 2 : 1)}%`;
    return `${name} is within tolerance, but fits GroupNorm with ${c.label} more closely${c.instead ? ` than with ${c.instead}` : ""}: ${pct(best)} of the tolerance used, against ${pct(used)}${alsoText}`;
  }
  return `${name} matches GroupNorm with ${c.label}${c.instead ? `, not ${c.instead}` : ""}${alsoText}`;
}

/** Whether a diagnosis is worth computing for this report. */
export const worthDiagnosing = (r: OutputReport) => !r.passed ? r.reason === "values" || r.reason === "nan" : (r.tolerance_used ?? 0) >= SUSPECT;

/** |value − reference| / tolerance: 0 for the same NaN or infinity (or any where the reference is NaN, undefined), Infinity for NaN or infinity on one side only. */
export function ratio(value: number, reference: number, tol: number): number {
  if (Number.isNaN(value) || Number.isNaN(reference)) return Number.isNaN(reference) && !Number.isFinite(value) ? 0 : Infinity;
  if (!Number.isFinite(value) || !Number.isFinite(reference)) return value === reference ? 0 : Infinity;
  const err = Math.abs(value - reference);
  return tol > 0 ? err / tol : err > 0 ? Infinity : 0;
}

/**
 * Each alternative that changes an elementwise output, tried on the failed positions and evenly
 * spread blocks of others (read as ranges: the cost is that of the positions, not of the file): the
 * largest |value − reference| / tolerance under it.
 */
export async function diagnoseElementwise(
  name: string,
  sources: TensorSource[],
  failed: number[],
  i: VerifyInputs,
  p: Prepared,
  reference: (c: Convention, values: number[], gi: number, ch: number) => { value: number; scale: number },
): Promise<Map<Convention, number>> {
  const cand = sources[sources.length - 1];
  const positions = samplePositions(cand.size, failed);
  const ranges = rangesOf(positions);
  const fits = p.alts.filter((c) => affects(c, p.given, name, !!i.activation)).map((c) => ({ c, worst: 0, index: p.indexes.get(keyOf(c))! }));
  const tol = toleranceFor(cand.dtype, i);
  const gi = new Int32Array(1), ch = new Int32Array(1);
  const longest = ranges.reduce((a, r) => Math.max(a, r.to - r.from), 0);
  const bufs = sources.map(() => new Float64Array(longest));
  let read = 0;
  for (const { from, to, first, end } of ranges) {
    const views = bufs.map((b) => b.subarray(0, to - from));
    for (const [k, s] of sources.entries()) await s.read(from, to - from, views[k]);
    for (let at = first; at < end; at++) {
      const pos = positions[at], values = views.map((v) => v[pos - from]);
      const value = values[values.length - 1];
      for (const f of fits) {
        if (f.worst === Infinity) continue;
        f.index.walk(pos, 1, gi, ch);
        const r = reference(f.c, values, gi[0], ch[0]);
        f.worst = Math.max(f.worst, ratio(value, r.value, allowed(tol, r.value, r.scale)));
      }
    }
    // as often as a stream would (about a chunk of values read)
    if ((read += to - from + GAP) >= VERIFY_CHUNK) {
      read = 0;
      await i.breathe();
    }
  }
  return new Map(fits.map((f) => [f.c, f.worst]));
}
