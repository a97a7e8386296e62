/**
 * Which (n, g) group and channel each value of a file belongs to, under a layout and a grouping, for
 * a chunk of values at a time: the index arithmetic of the streamed reference.
 */
import { formatShape } from "../core/dims.js";
import type { Layout } from "../core/dims.js";
import type { Grouping } from "./conventions.js";

export class GroupIndex {
  readonly N: number;
  readonly C: number;
  readonly HxW: number;
  readonly G: number;
  readonly D: number;
  /** Values per group. */
  readonly M: number;
  /** The group (of G) of each channel. */
  readonly groupOf: Int32Array;

  constructor(
    shape: readonly number[],
    G: number,
    readonly layout: Layout,
    readonly grouping: Grouping,
  ) {
    this.N = shape[0];
    this.C = layout === "nchw" ? shape[1] : shape[shape.length - 1];
    const spatial = layout === "nchw" ? shape.slice(2) : shape.slice(1, -1);
    this.HxW = spatial.reduce((a, b) => a * b, 1);
    this.G = G;
    this.D = this.C / G;
    this.M = this.D * this.HxW;
    this.groupOf = Int32Array.from({ length: this.C }, (_, c) => (grouping === "interleaved" ? c % G : Math.floor(c / this.D)));
  }

  /** Whether the shape can be read this way: two or more dimensions, and G dividing C. */
  static fits(shape: readonly number[], G: number, layout: Layout): boolean {
    if (shape.length < 2) return false;
    const C = layout === "nchw" ? shape[1] : shape[shape.length - 1];
    return C % G === 0;
  }

  get groups(): number {
    return this.N * this.G;
  }

  describe(): string {
    return `${this.layout}, N = ${this.N}, C = ${this.C}, HxW = ${this.HxW}, shape ${formatShape([this.N, this.C, this.HxW])}`;
  }

  /**
   * Runs of values [start, start + len) (C order) that belong to one group, in order: run r ends at
   * offset ends[r] into the chunk (starting where run r − 1 ends) and is of group groups[r] = n·G + g;
   * returns the number of runs. NCHW runs are whole groups (contiguous grouping) or channels
   * (interleaved); NHWC runs are a group's D channels of a position (interleaved: single values).
   */
  runs(start: number, len: number, ends: Int32Array, groups: Int32Array): number {
    const { C, HxW, G } = this;
    if (len === 0 || C === 0 || HxW === 0) return 0;
    const sample = C * HxW;
    let at = 0, count = 0;
    if (this.layout === "nchw") {
      const run = this.grouping === "contiguous" ? this.D * HxW : HxW; // a group, or a channel
      while (at < len) {
        const i = start + at, n = Math.floor(i / sample), r = i - n * sample, k = Math.floor(r / run);
        const to = Math.min(len, at + (k + 1) * run - r);
        ends[count] = to;
        groups[count++] = n * G + (this.grouping === "contiguous" ? k : k % G);
        at = to;
      }
      return count;
    }
    const contiguous = this.grouping === "contiguous", D = this.D, groupOf = this.groupOf;
    const n = Math.floor(start / sample), r = start - n * sample;
    let c = r % C, s = (r - c) / C, base = n * G;
    while (at < len) {
      const g = groupOf[c], to = Math.min(len, contiguous ? at + (g + 1) * D - c : at + 1);
      ends[count] = to;
      groups[count++] = base + g;
      c += to - at;
      at = to;
      if (c === C) {
        c = 0;
        if (++s === HxW) {
          s = 0;
          base += G;
        }
      }
    }
    return count;
  }

  /** For values [start, start + len) (C order): gi[k] = n·G + g and ch[k] = c. */
  walk(start: number, len: number, gi: Int32Array, ch: Int32Array): void {
    const { C, HxW, G } = this;
    if (len === 0 || C === 0 || HxW === 0) return;
    const sample = C * HxW;
    let n = Math.floor(start / sample);
    const r = start - n * sample;
    if (this.layout === "nchw") {
      let c = Math.floor(r / HxW), s = r - c * HxW, base = n * G;
      for (let k = 0; k < len; k++) {
        gi[k] = base + this.groupOf[c];
        ch[k] = c;
        if (++s === HxW) {
          s = 0;
          if (++c === C) {
            c = 0;
            n++;
            base += G;
          }
        }
      }
    } else {
      let c = r % C, s = (r - c) / C, base = n * G;
      for (let k = 0; k < len; k++) {
        gi[k] = base + this.groupOf[c];
        ch[k] = c;
        if (++c === C) {
          c = 0;
          if (++s === HxW) {
            s = 0;
            n++;
            base += G;
          }
        }
      }
    }
  }
}

/** Sums in float64 with Neumaier's compensation, one per slot. */
export class Sums {
  readonly sum: Float64Array;
  /** The compensation of each slot (for loops that add in place). */
  readonly comp: Float64Array;
  constructor(n: number) {
    this.sum = new Float64Array(n);
    this.comp = new Float64Array(n);
  }
  add(i: number, v: number): void {
    const s = this.sum[i], t = s + v;
    this.comp[i] += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
    this.sum[i] = t;
  }
  /** The compensated totals. */
  totals(): Float64Array {
    const out = new Float64Array(this.sum.length);
    for (let i = 0; i < out.length; i++) out[i] = this.sum[i] + this.comp[i];
    return out;
  }
  /** The compensated totals, in place of the running sums (no copy: the Sums is done with). */
  settle(): Float64Array {
    for (let i = 0; i < this.sum.length; i++) this.sum[i] += this.comp[i];
    return this.sum;
  }
}
