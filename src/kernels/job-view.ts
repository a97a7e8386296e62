/**
 * A thread's view of a job in the shared memory: typed-array views, where each unit's data,
 * partials, coefficients and flags lie, and the per-item shift and mean arrays the NHWC loops read.
 * The base of the per-thread executor (combine.ts, executor.ts); it computes nothing itself.
 */
import { actItemBytes, BLOCK, FLAG_BYTES, type ItemFlag, type Job, scratchParts } from "./plan.js";
import type { KernelExports } from "./wasm.js";

export abstract class JobView {
  protected f64: Float64Array<ArrayBufferLike> = new Float64Array(0);
  protected f32: Float32Array<ArrayBufferLike> = new Float32Array(0);

  /** `ith`: this thread's index, which picks its part of the job's per-thread scratch. */
  constructor(
    readonly k: KernelExports,
    readonly memory: WebAssembly.Memory,
    readonly ith = 0,
  ) {}

  /**
   * What this thread last wrote into an item's shift and mean arrays: they are the same for all of
   * an item's units, so a thread writes them once per item, not once per unit. Safe because an
   * item's means and shifts do not change while its units read them (each dispatch decodes a new
   * Job object), and the one rewrite in the other form (per-channel shifts for the float64
   * fallback) happens after every unit of the item has read its per-group shifts.
   */
  private filled = { job: null as Job | null, shifts: "", means: "" };

  private filledFor(j: Job): { shifts: string; means: string } {
    if (this.filled.job !== j) this.filled = { job: j, shifts: "", means: "" };
    return this.filled;
  }

  protected tmp(j: Job): number {
    return j.threadScratch + this.ith * j.threadScratchBytes;
  }

  protected views(): void {
    const buf = this.memory.buffer;
    if (this.f64.buffer !== buf || this.f64.length * 8 !== buf.byteLength) {
      this.f64 = new Float64Array(buf);
      this.f32 = new Float32Array(buf);
    }
  }

  protected elemBytes(j: Job): number {
    return j.precision === "f32" ? 4 : 8;
  }

  /** Value of element (n, c, s = 0) for the group's first channel c (g·D, or g when interleaved), the shift K of group (n, g). */
  protected shift(j: Job, n: number, g: number): number {
    if (j.shiftSource) return this.f64[(j.shiftSource >>> 3) + n * j.G + g];
    const c = j.interleaved ? g : g * j.D;
    const idx = j.layout === "nchw" ? (n * j.C + c) * j.HxW : n * j.HxW * j.C + c;
    return j.precision === "f32" ? this.f32[(j.x >>> 2) + idx] : this.f64[(j.x >>> 3) + idx];
  }

  protected meanOf(j: Job, n: number, g: number): number {
    return this.f64[(j.mean >>> 3) + n * j.G + g];
  }

  protected rstdOf(j: Job, n: number, g: number): number {
    return this.f64[(j.rstd >>> 3) + n * j.G + g];
  }

  protected partialPtr(j: Job, item: number, u: number): number {
    const w = j.work;
    return j.partials + (item * w.unitsPerItem + u) * w.partialDoubles * 8;
  }

  /** The float64 index of an item's flag (after its scratch). */
  private flagAt(j: Job, item: number, flag: ItemFlag): number {
    return ((j.perItem + (item + 1) * j.work.perItemBytes - FLAG_BYTES) >>> 3) + flag;
  }

  protected flag(j: Job, item: number, flag: ItemFlag): boolean {
    this.views();
    return this.f64[this.flagAt(j, item, flag)] === 1;
  }

  protected setFlag(j: Job, item: number, flag: ItemFlag, on: boolean): void {
    this.views();
    this.f64[this.flagAt(j, item, flag)] = on ? 1 : 0;
  }

  /**
   * NCHW: unit u of item (n, g), or of sample n when items are samples (interleaved groups): its first
   * channel, channel count, byte offset, values per channel.
   */
  protected run(j: Job, item: number, u: number): { c0: number; nch: number; off: number; len: number } {
    const w = j.work;
    const n = w.samples ? item : Math.floor(item / j.G);
    const first = w.samples ? 0 : (item % j.G) * j.D, end = w.samples ? j.C : first + j.D;
    const eb = this.elemBytes(j);
    if (w.blocks === 1) {
      const c0 = first + u * w.cpu;
      return { c0, nch: Math.min(w.cpu, end - c0), off: (n * j.C + c0) * j.HxW * eb, len: j.HxW };
    }
    const c0 = first + Math.floor(u / w.blocks), start = (u % w.blocks) * BLOCK;
    return { c0, nch: 1, off: ((n * j.C + c0) * j.HxW + start) * eb, len: Math.min(BLOCK, j.HxW - start) };
  }

  /** Channels whose coefficients an item's scratch holds: NCHW its group's D, a sample item all C. */
  protected coefFrame(j: Job, item: number): { ptr: number; first: number; count: number } {
    const w = j.work;
    const base = j.perItem + item * w.perItemBytes;
    return !w.samples
      ? { ptr: base, first: (item % j.G) * j.D, count: j.D }
      : { ptr: base + scratchParts(j.C, j.G).coef, first: 0, count: j.C };
  }

  /**
   * Backward through an activation: where an item's forward coefficients lie (prepareAct; arrays
   * `count` entries apart), their per-group float64 0/1 flags (NHWC: the groups whose coefficients
   * are float64) and the item's flag (float64 1 when its coefficients are float64), as byte offsets.
   */
  protected actFrame(j: Job, item: number): { ptr: number; count: number; groups: number; flag: number } {
    const ptr = j.actCoef + item * actItemBytes(j);
    // an NCHW group item: its D channels; a sample item (NHWC, interleaved groups): all C, then G flags
    const one = !j.work.samples;
    const count = one ? j.D : j.C;
    const groups = ptr + 24 * count;
    return { ptr, count, groups, flag: groups + (one ? 0 : 8 * j.G) };
  }

  /** Backward through an activation: whether the item's forward coefficients are float64. */
  protected actWide(j: Job, item: number): boolean {
    this.views();
    return this.f64[this.actFrame(j, item).flag >>> 3] === 1;
  }

  /** NHWC: byte offset of sample n's per-group flag array (`extreme` or `wide`, G float64 0/1). */
  protected groupFlags(j: Job, n: number, which: "extreme" | "wide"): number {
    return j.perItem + n * j.work.perItemBytes + scratchParts(j.C, j.G)[which];
  }

  /** Interleaved groups: byte offset of a part of sample n's per-channel scratch (`wideC` flags, `coef32` coefficients). */
  protected channelPart(j: Job, n: number, which: "wideC" | "coef32"): number {
    return j.perItem + n * j.work.perItemBytes + scratchParts(j.C, j.G)[which];
  }

  /** The item's groups: NCHW its one group (n, g), a sample item all G groups of sample `item`. */
  protected groupsOf(j: Job, item: number): { n: number; g0: number; g1: number } {
    return !j.work.samples ? { n: Math.floor(item / j.G), g0: item % j.G, g1: (item % j.G) + 1 } : { n: item, g0: 0, g1: j.G };
  }

  /** Group g's channels: the first and the step to the next (D of them; interleaved: g, g + G, …). */
  protected channelsOf(j: Job, g: number): { c0: number; step: number } {
    return j.interleaved ? { c0: g, step: j.G } : { c0: g * j.D, step: 1 };
  }

  /** NHWC: the rows of unit u of sample n. */
  protected rows(j: Job, n: number, u: number): { off: number; rows: number } {
    const w = j.work;
    const r0 = u * w.rows;
    return { off: (n * j.HxW + r0) * j.C * this.elemBytes(j), rows: Math.min(w.rows, j.HxW - r0) };
  }

  /** Sample items: shift array of sample n (each group's K, per channel or per group), in the item's scratch. */
  protected nhwcShifts(j: Job, n: number, perGroup: boolean): number {
    const ptr = j.perItem + n * j.work.perItemBytes + scratchParts(j.C, j.G).shifts;
    const filled = this.filledFor(j), key = `${n}:${perGroup}`;
    if (filled.shifts === key) return ptr;
    filled.shifts = key;
    const base = ptr >>> 3;
    for (let g = 0; g < j.G; g++) {
      if (perGroup) this.f64[base + g] = this.shift(j, n, g);
      else if (j.interleaved) for (let c = g, K = this.shift(j, n, g); c < j.C; c += j.G) this.f64[base + c] = K;
      else this.f64.fill(this.shift(j, n, g), base + g * j.D, base + (g + 1) * j.D);
    }
    return ptr;
  }

  /** Sample items: per-channel group means of sample n (float32 high parts when `asF32`). */
  protected nhwcMeans(j: Job, n: number, asF32: boolean): number {
    const ptr = j.perItem + n * j.work.perItemBytes + scratchParts(j.C, j.G).means;
    const filled = this.filledFor(j), key = `${n}:${asF32}`;
    if (filled.means === key) return ptr;
    filled.means = key;
    for (let g = 0; g < j.G; g++) {
      const mean = this.meanOf(j, n, g);
      if (j.interleaved) {
        const v = asF32 ? this.f32 : this.f64, at = asF32 ? ptr >>> 2 : ptr >>> 3, m = asF32 || j.precision !== "f32" ? mean : Math.fround(mean);
        for (let c = g; c < j.C; c += j.G) v[at + c] = m;
      } else if (asF32) this.f32.fill(mean, (ptr >>> 2) + g * j.D, (ptr >>> 2) + (g + 1) * j.D);
      else this.f64.fill(j.precision === "f32" ? Math.fround(mean) : mean, (ptr >>> 3) + g * j.D, (ptr >>> 3) + (g + 1) * j.D);
    }
    return ptr;
  }

  /**
   * A sample item's per-channel sums (statistics S1, S2 or gradients T, db), C of each, into this
   * thread's scratch; returns its float64 index. NHWC: every unit holds all C channels (sumUnits);
   * NCHW with interleaved groups: a channel's pair is in its unit, or summed over its blocks in order.
   */
  protected itemSums(j: Job, item: number): number {
    if (j.layout === "nhwc") return this.sumUnits(j, item, 2 * j.C);
    const w = j.work, f = this.f64;
    const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles, out = this.tmp(j) >>> 3;
    for (let c = 0; c < j.C; c++) {
      let s1 = 0, s2 = 0;
      if (w.blocks === 1) {
        const at = base + Math.floor(c / w.cpu) * w.partialDoubles + 2 * (c % w.cpu);
        s1 = f[at];
        s2 = f[at + 1];
      } else {
        for (let k = 0; k < w.blocks; k++) {
          s1 += f[base + 2 * (c * w.blocks + k)];
          s2 += f[base + 2 * (c * w.blocks + k) + 1];
        }
      }
      f[out + c] = s1;
      f[out + j.C + c] = s2;
    }
    return out;
  }

  /**
   * NHWC: Σ over an item's units of each partial entry (count of them), in unit order, into this
   * thread's scratch; returns its float64 index.
   */
  protected sumUnits(j: Job, item: number, count: number): number {
    const w = j.work;
    const base = j.partials + item * w.unitsPerItem * w.partialDoubles * 8;
    const out = this.tmp(j);
    this.k.sum_units(base, w.unitsPerItem, w.partialDoubles, count, out);
    return out >>> 3;
  }
}
