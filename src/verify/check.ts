/**
 * One candidate's check: every value against its reference within the tolerance, with what a porter
 * needs to find the fault — the error sizes, the worst entry with its group and channel, the worst
 * (n, g) groups, and the entries that failed (kept, a bounded number, for the diagnosis).
 */
import { unravel } from "../analysis/chunks.js";
import type { Dtype } from "../core/dtype.js";
import { allowed, type Tolerance, ulp } from "./tolerance.js";

export type Reason = "values" | "nan" | "shape" | "dtype";

export interface WorstEntry {
  index: number[];
  /** [n, g] for Y, mean, rstd and dX; [g] for dgamma and dbeta (sums over n). */
  group: number[];
  channel: number;
  value: number;
  reference: number;
}

export interface WorstGroup {
  group: number[];
  mismatches: number;
  max_abs_error: number;
  /** The group's largest error / tolerance (what ranks the groups). */
  tolerance_used: number;
}

export interface OutputReport {
  passed: boolean;
  /** Why it failed: values beyond the tolerance, NaN where the reference is finite (or the reverse), the shape, the dtype. */
  reason: Reason | null;
  /** What the reason means here, in words. */
  message: string;
  file: string;
  dtype: string;
  shape: number[];
  checked: number;
  mismatches: number;
  mismatch_percent: number;
  /** Entries NaN or infinite on one side only. */
  nan_mismatches: number;
  max_abs_error: number | null;
  mean_abs_error: number | null;
  max_rel_error: number | null;
  max_ulp_error: number | null;
  worst: WorstEntry | null;
  /** The largest |value − reference| / tolerance over the entries: at most 1 for a pass, how close it came. */
  tolerance_used: number | null;
  worst_groups: WorstGroup[];
  diagnosis: string | null;
  /** The largest absolute tolerance applied (it scales with each entry's group or channel), and the relative one. */
  atol: number;
  rtol: number;
}

/** How many failed entries are kept for the diagnosis (a reservoir sample beyond that). */
const KEPT = 4096;
const WORST_GROUPS = 5;

export class Checker {
  private checked = 0;
  private mismatches = 0;
  private nanMismatches = 0;
  private sumAbs = 0;
  private finite = 0;
  private maxAbs = 0;
  private maxRel = 0;
  private maxUlp = 0;
  private maxAtol = 0;
  private worstRatio = -Infinity;
  private worst: { i: number; g: number; c: number; value: number; reference: number } | null = null;
  /** Per group: mismatches, the largest error, and the largest error / tolerance (what ranks them). */
  private readonly groupMismatches: Float64Array;
  private readonly groupMax: Float64Array;
  private readonly groupRatio: Float64Array;
  /** Flat indices of failed entries (a reservoir sample of them). */
  readonly failed: number[] = [];
  private seed = 0x2545f491;
  /** The reservoir's next mismatch to keep, and its weight (see keep). */
  private nextKept = 0;
  private weight = 0;
  /** 2^(mantissa + 1) of the dtype: err/|r| times this bounds err/ulp(r) from above. */
  private readonly ulpBound: number;

  constructor(
    readonly name: string,
    readonly file: string,
    readonly dtype: Dtype,
    readonly shape: readonly number[],
    readonly tol: Tolerance,
    private readonly G: number,
    groups: number,
    /** Entries are per channel (dgamma, dbeta): groups are named [g], not [n, g]. */
    private readonly perChannel = false,
  ) {
    this.groupMismatches = new Float64Array(groups);
    this.groupMax = new Float64Array(groups);
    this.groupRatio = new Float64Array(groups);
    this.ulpBound = 2 / ulp(1, dtype);
  }

  /** Entry i (flat), of group gi = n·G + g and channel c, with the reference and the entry's scale. */
  add(i: number, value: number, reference: number, scale: number, gi: number, c: number): void {
    this.checked++;
    const tol = allowed(this.tol, reference, scale);
    const atol = this.tol.atol ?? this.tol.scaled * scale;
    if (atol > this.maxAtol && Number.isFinite(atol)) this.maxAtol = atol;
    let ratio: number;
    // the same NaN or infinity on both sides matches, and so does any NaN or infinity where the
    // reference is NaN: undefined there (0·∞, as in a constant group with eps = 0)
    const bothNaN = Number.isNaN(reference) && !Number.isFinite(value);
    if (Number.isFinite(value) && Number.isFinite(reference)) {
      const err = Math.abs(value - reference);
      this.sumAbs += err;
      this.finite++;
      if (err > this.maxAbs) this.maxAbs = err;
      const rel = reference !== 0 ? err / Math.abs(reference) : 0;
      if (rel > this.maxRel) this.maxRel = rel;
      // units in the last place: ulp(r) ≥ |r|·2^−(mantissa+1), so most entries cannot beat the maximum
      if (err > 0 && (reference === 0 || rel * this.ulpBound > this.maxUlp)) {
        const u = err / ulp(reference, this.dtype);
        if (u > this.maxUlp) this.maxUlp = u;
      }
      if (err > this.groupMax[gi]) this.groupMax[gi] = err;
      ratio = tol > 0 ? err / tol : err > 0 ? Infinity : 0;
    } else if (bothNaN || value === reference) {
      ratio = 0;
    } else {
      this.nanMismatches++;
      this.groupMax[gi] = Infinity;
      ratio = Infinity;
    }
    if (ratio > this.groupRatio[gi]) this.groupRatio[gi] = ratio;
    if (ratio > 1) {
      this.mismatches++;
      this.groupMismatches[gi]++;
      this.keep(i);
    }
    if (ratio > this.worstRatio) {
      this.worstRatio = ratio;
      this.worst = { i, g: gi, c, value, reference };
    }
  }

  /**
   * A chunk of entries at once (the fast path): entry k is flat index start + k, its value, reference
   * its group gi[k] (whose entries' scale is groupScale[gi[k]]) and channel ch[k]. Finite pairs with a
   * tolerance above 0 are taken here, within it or not, every statistic updated as add() would; the
   * rest (NaN, infinities, a zero tolerance) go through add().
   */
  addChunk(start: number, len: number, value: Float64Array, reference: Float64Array, groupScale: Float64Array, gi: Int32Array, ch: Int32Array): void {
    const t = this.tol, fixed = t.atol, rtol = t.rtol, scaled = t.scaled, groupMax = this.groupMax, groupRatio = this.groupRatio, ulpBound = this.ulpBound;
    const groupMismatches = this.groupMismatches;
    let sumAbs = 0, n = 0, maxAbs = this.maxAbs, maxAtol = this.maxAtol, maxRel = this.maxRel, worstRatio = this.worstRatio, worstK = -1;
    for (let k = 0; k < len; k++) {
      const a = value[k], b = reference[k], err = Math.abs(a - b), g = gi[k];
      const atol = fixed ?? scaled * groupScale[g];
      const tol = rtol * Math.abs(b) + atol;
      // NaN, infinities and an error against a zero tolerance go through add() (NaN comparisons are false)
      if (!(err < Infinity) || (!(err <= tol) && !(tol > 0))) {
        this.maxAbs = maxAbs; this.maxAtol = maxAtol; this.maxRel = maxRel;
        if (worstK >= 0) this.setWorst(start + worstK, worstRatio, value[worstK], reference[worstK], gi[worstK], ch[worstK]);
        worstK = -1;
        this.add(start + k, a, b, groupScale[g], g, ch[k]);
        maxAbs = this.maxAbs; maxAtol = this.maxAtol; maxRel = this.maxRel; worstRatio = this.worstRatio;
        continue;
      }
      sumAbs += err;
      n++;
      if (atol > maxAtol && atol !== Infinity) maxAtol = atol;
      if (err === 0) {
        if (worstRatio < 0) { worstRatio = 0; worstK = k; }
        continue;
      }
      if (err > maxAbs) maxAbs = err;
      if (err > groupMax[g]) groupMax[g] = err;
      const rel = b !== 0 ? err / Math.abs(b) : 0;
      if (rel > maxRel) maxRel = rel;
      if (b === 0 || rel * ulpBound > this.maxUlp) {
        const u = err / ulp(b, this.dtype);
        if (u > this.maxUlp) this.maxUlp = u;
      }
      const ratio = err / tol;
      if (ratio > groupRatio[g]) groupRatio[g] = ratio;
      if (ratio > 1) {
        this.mismatches++;
        groupMismatches[g]++;
        this.keep(start + k);
      }
      if (ratio > worstRatio) { worstRatio = ratio; worstK = k; }
    }
    this.maxAbs = maxAbs; this.maxAtol = maxAtol; this.maxRel = maxRel;
    if (worstK >= 0) this.setWorst(start + worstK, worstRatio, value[worstK], reference[worstK], gi[worstK], ch[worstK]);
    this.checked += n;
    this.sumAbs += sumAbs;
    this.finite += n;
  }

  private setWorst(i: number, ratio: number, value: number, reference: number, g: number, c: number): void {
    this.worstRatio = ratio;
    this.worst = { i, g, c, value, reference };
  }

  /**
   * Mismatch number this.mismatches, at flat index i: kept while fewer than KEPT are, then a uniform
   * sample of all of them (reservoir sampling by skips, Li's algorithm L: a random number per entry
   * kept, not per mismatch).
   */
  private keep(i: number): void {
    const m = this.mismatches;
    if (m < this.nextKept) return;
    if (this.failed.length < KEPT) {
      this.failed.push(i);
      if (this.failed.length < KEPT) return;
      this.weight = Math.exp(Math.log(this.random()) / KEPT);
    } else {
      this.failed[Math.floor((1 - this.random()) * KEPT)] = i;
      this.weight *= Math.exp(Math.log(this.random()) / KEPT);
    }
    this.nextKept = m + Math.floor(Math.log(this.random()) / Math.log1p(-this.weight)) + 1;
  }

  /** Uniform in (0, 1] (mulberry32: the same sample on every run). */
  private random(): number {
    let t = (this.seed = (this.seed + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return 1 - ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A failure found before any value is read (a shape or a dtype). */
  static refused(file: string, dtype: string, shape: readonly number[], reason: Reason, message: string, tol: Tolerance): OutputReport {
    return {
      passed: false, reason, message, file, dtype, shape: [...shape], checked: 0, mismatches: 0, mismatch_percent: 0, nan_mismatches: 0,
      max_abs_error: null, mean_abs_error: null, max_rel_error: null, max_ulp_error: null, worst: null, tolerance_used: null, worst_groups: [], diagnosis: null,
      atol: tol.atol ?? 0, rtol: tol.rtol,
    };
  }

  private groupName(g: number): number[] {
    return this.perChannel ? [g] : [Math.floor(g / this.G), g % this.G];
  }

  report(): OutputReport {
    const passed = this.mismatches === 0;
    const reason: Reason | null = passed ? null : this.nanMismatches > 0 ? "nan" : "values";
    // the groups with mismatches, worst first by error / tolerance (so the worst entry's group leads)
    const ranked: Array<{ g: number; ratio: number }> = [];
    for (let g = 0; g < this.groupMismatches.length; g++) {
      if (this.groupMismatches[g] === 0) continue;
      ranked.push({ g, ratio: this.groupRatio[g] });
      ranked.sort((a, b) => b.ratio - a.ratio || this.groupMismatches[b.g] - this.groupMismatches[a.g]);
      if (ranked.length > WORST_GROUPS) ranked.pop();
    }
    const worstGroups: WorstGroup[] = ranked.map(({ g }) => ({ group: this.groupName(g), mismatches: this.groupMismatches[g], max_abs_error: this.groupMax[g], tolerance_used: this.groupRatio[g] }));
    const w = this.worst;
    const message = passed
      ? `${this.checked} values within tolerance`
      : reason === "nan"
        ? `${this.nanMismatches} values are NaN or infinite where the reference is not (or the reverse)`
        : `${this.mismatches} of ${this.checked} values differ beyond the tolerance`;
    return {
      passed,
      reason,
      message,
      file: this.file,
      dtype: this.dtype,
      shape: [...this.shape],
      checked: this.checked,
      mismatches: this.mismatches,
      mismatch_percent: this.checked ? (100 * this.mismatches) / this.checked : 0,
      nan_mismatches: this.nanMismatches,
      max_abs_error: this.finite ? this.maxAbs : null,
      mean_abs_error: this.finite ? this.sumAbs / this.finite : null,
      max_rel_error: this.finite ? this.maxRel : null,
      max_ulp_error: this.finite ? this.maxUlp : null,
      worst: w ? { index: unravel(w.i, this.shape), group: this.groupName(w.g), channel: w.c, value: w.value, reference: w.reference } : null,
      tolerance_used: w ? this.worstRatio : null,
      worst_groups: worstGroups,
      diagnosis: null,
      atol: this.tol.atol ?? this.maxAtol,
      rtol: this.tol.rtol,
    };
  }
}
