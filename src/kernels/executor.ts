/**
 * The per-thread executor of a job's work layout (plan.ts): statistics, normalisation, internal
 * gradients and input backward per unit, and the fixed-order combination of an item's partials.
 * The same code runs on the main thread (single-thread path) and in every pool worker; each calls
 * the WebAssembly loops on its own instance over the one shared memory.
 */
import { BLOCK, DX_CHUNK, type Job, scratchParts, type UnitStep } from "./plan.js";
import type { KernelExports } from "./wasm.js";

/** The per-thread executor: wraps one WebAssembly instance. */
export class Executor {
  private f64: Float64Array<ArrayBufferLike> = new Float64Array(0);
  private f32: Float32Array<ArrayBufferLike> = new Float32Array(0);

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

  private tmp(j: Job): number {
    return j.threadScratch + this.ith * j.threadScratchBytes;
  }

  private views(): void {
    const buf = this.memory.buffer;
    if (this.f64.buffer !== buf || this.f64.length * 8 !== buf.byteLength) {
      this.f64 = new Float64Array(buf);
      this.f32 = new Float32Array(buf);
    }
  }

  private elemBytes(j: Job): number {
    return j.precision === "f32" ? 4 : 8;
  }

  /** Value of element (n, c = g·D, s = 0), the shift K of group (n, g). */
  private shift(j: Job, n: number, g: number): number {
    if (j.shiftSource) return this.f64[(j.shiftSource >>> 3) + n * j.G + g];
    const c = g * j.D;
    const idx = j.layout === "nchw" ? (n * j.C + c) * j.HxW : n * j.HxW * j.C + c;
    return j.precision === "f32" ? this.f32[(j.x >>> 2) + idx] : this.f64[(j.x >>> 3) + idx];
  }

  private meanOf(j: Job, n: number, g: number): number {
    return this.f64[(j.mean >>> 3) + n * j.G + g];
  }

  private partialPtr(j: Job, item: number, u: number): number {
    const w = j.work;
    return j.partials + (item * w.unitsPerItem + u) * w.partialDoubles * 8;
  }

  /** NCHW: unit u of item (n, g): its first channel, channel count, byte offset, values per channel. */
  private run(j: Job, item: number, u: number): { c0: number; nch: number; off: number; len: number } {
    const w = j.work;
    const n = Math.floor(item / j.G), g = item % j.G;
    const eb = this.elemBytes(j);
    if (w.blocks === 1) {
      const c0 = g * j.D + u * w.cpu;
      return { c0, nch: Math.min(w.cpu, (g + 1) * j.D - c0), off: (n * j.C + c0) * j.HxW * eb, len: j.HxW };
    }
    const c0 = g * j.D + Math.floor(u / w.blocks), start = (u % w.blocks) * BLOCK;
    return { c0, nch: 1, off: ((n * j.C + c0) * j.HxW + start) * eb, len: Math.min(BLOCK, j.HxW - start) };
  }

  /** Channels whose coefficients an item's scratch holds: NCHW its group's D, NHWC all C. */
  private coefFrame(j: Job, item: number): { ptr: number; first: number; count: number } {
    const w = j.work;
    const base = j.perItem + item * w.perItemBytes;
    return j.layout === "nchw"
      ? { ptr: base, first: (item % j.G) * j.D, count: j.D }
      : { ptr: base + scratchParts(j.C).coef, first: 0, count: j.C };
  }

  /** NHWC: the rows of unit u of sample n. */
  private rows(j: Job, n: number, u: number): { off: number; rows: number } {
    const w = j.work;
    const r0 = u * w.rows;
    return { off: (n * j.HxW + r0) * j.C * this.elemBytes(j), rows: Math.min(w.rows, j.HxW - r0) };
  }

  // ------------------------------------------------------------------ statistics

  /** Statistics partial of one unit: Σ(x − K), Σ(x − K)² (per channel for NHWC). */
  statsUnit(j: Job, item: number, u: number, wide = false): void {
    const w = j.work;
    this.views();
    const out = this.partialPtr(j, item, u);
    const f32 = j.precision === "f32";
    if (j.layout === "nchw") {
      const { off, len, nch } = this.run(j, item, u);
      const K = this.shift(j, Math.floor(item / j.G), item % j.G);
      if (!f32) this.k.stats_run_f64(j.x + off, len * nch, K, out);
      else if (wide) this.k.stats_run_f32_wide(j.x + off, len * nch, K, out);
      else this.k.stats_chan_f32(j.x + off, len, nch, K, out);
    } else {
      const { off, rows } = this.rows(j, item, u);
      this.f64.fill(0, out >>> 3, (out >>> 3) + 2 * j.C);
      if (w.groupStats && !wide) {
        this.k.stats_rows_g_f32(j.x + off, rows, j.C, j.D, this.nhwcShifts(j, item, true), out, this.tmp(j));
        return;
      }
      const kc = this.nhwcShifts(j, item, false);
      if (!f32) this.k.stats_rows_f64(j.x + off, rows, j.C, kc, out);
      else if (wide) this.k.stats_rows_f32_wide(j.x + off, rows, j.C, kc, out);
      else this.k.stats_rows_f32(j.x + off, rows, j.C, kc, out, this.tmp(j));
    }
  }

  /** NHWC: shift array of sample n (each group's K, per channel or per group), in the item's scratch. */
  private nhwcShifts(j: Job, n: number, perGroup: boolean): number {
    const w = j.work;
    const ptr = j.perItem + n * w.perItemBytes + scratchParts(j.C).shifts;
    const filled = this.filledFor(j), key = `${n}:${perGroup}`;
    if (filled.shifts === key) return ptr;
    filled.shifts = key;
    const base = ptr >>> 3;
    for (let g = 0; g < j.G; g++) {
      if (perGroup) this.f64[base + g] = this.shift(j, n, g);
      else this.f64.fill(this.shift(j, n, g), base + g * j.D, base + (g + 1) * j.D);
    }
    return ptr;
  }

  /**
   * NHWC: Σ over an item's units of each partial entry (count of them), in unit order, into this
   * thread's scratch; returns its float64 index.
   */
  private sumUnits(j: Job, item: number, count: number): number {
    const w = j.work;
    const base = j.partials + item * w.unitsPerItem * w.partialDoubles * 8;
    const out = this.tmp(j);
    this.k.sum_units(base, w.unitsPerItem, w.partialDoubles, count, out);
    return out >>> 3;
  }

  /**
   * Combine an item's partials into mean/rstd, in a fixed order (NCHW: unit; NHWC: unit, then the
   * group's channels). A float32 fast-path overflow (non-finite sums) is redone with the
   * float64-accumulating kernels; data that really holds NaN/Inf stays non-finite.
   */
  finalizeStats(j: Job, item: number, wide = false): boolean {
    const w = j.work;
    this.views();
    const f = this.f64;
    const M = j.D * j.HxW;
    const n = j.layout === "nchw" ? Math.floor(item / j.G) : item;
    const g0 = j.layout === "nchw" ? item % j.G : 0, g1 = j.layout === "nchw" ? g0 + 1 : j.G;
    const perGroup = w.groupStats && !wide;
    let sums = 0;
    if (j.layout === "nhwc") sums = this.sumUnits(j, item, 2 * j.C);
    for (let g = g0; g < g1; g++) {
      let s1 = 0, s2 = 0;
      if (j.layout === "nchw") {
        const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles;
        for (let u = 0; u < w.unitsPerItem; u++) {
          s1 += f[base + w.partialDoubles * u];
          s2 += f[base + w.partialDoubles * u + 1];
        }
      } else if (perGroup) {
        s1 = f[sums + g];
        s2 = f[sums + j.G + g];
      } else {
        for (let c = g * j.D; c < (g + 1) * j.D; c++) {
          s1 += f[sums + c];
          s2 += f[sums + j.C + c];
        }
      }
      if (!wide && j.precision === "f32" && !(Number.isFinite(s1) && Number.isFinite(s2))) {
        if (j.shiftSource) return false; // streamed in chunks: the caller reruns them with the wide step
        for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item, u, true);
        return this.finalizeStats(j, item, true);
      }
      // an empty group (HxW = 0 or C = 0): mean 0 and rstd NaN, as PyTorch
      let mean = 0, rstd = NaN;
      if (M > 0) {
        const m1 = s1 / M;
        mean = this.shift(j, n, g) + m1;
        rstd = 1 / Math.sqrt(Math.max(0, s2 / M - m1 * m1) + j.eps);
      }
      f[(j.mean >>> 3) + n * j.G + g] = mean;
      f[(j.rstd >>> 3) + n * j.G + g] = rstd;
    }
    return true;
  }

  // ------------------------------------------------------------------ forward

  /**
   * Per-channel forward coefficients of an item in its scratch: y = (x − m)·a + b with a = rstd·γ;
   * for float32, m is the mean's float32 high part and its low part is folded into b.
   */
  prepareNorm(j: Job, item: number): void {
    const { ptr, count } = this.coefFrame(j, item);
    // NCHW: the item's one group; NHWC: all G groups of sample `item`
    const nchw = j.layout === "nchw";
    const g0 = nchw ? item : item * j.G, G = nchw ? 1 : j.G, c0 = nchw ? (item % j.G) * j.D : 0;
    const args = [ptr, count, G, j.D, j.mean + g0 * 8, j.rstd + g0 * 8, j.gamma + c0 * 8, j.beta + c0 * 8] as const;
    if (j.precision === "f32") this.k.prep_norm_f32(...args);
    else this.k.prep_norm_f64(...args);
  }

  normUnit(j: Job, item: number, u: number): void {
    const w = j.work;
    this.views();
    const { ptr, first, count } = this.coefFrame(j, item);
    if (j.layout === "nchw") {
      const { c0, nch, off, len } = this.run(j, item, u);
      const eb = this.elemBytes(j);
      if (j.precision === "f32") this.k.norm_chan_f32(j.x + off, j.y + off, len, nch, ptr + (c0 - first) * eb, count);
      else this.k.norm_chan_f64(j.x + off, j.y + off, len, nch, ptr + (c0 - first) * eb, count);
    } else {
      const { off, rows } = this.rows(j, item, u);
      if (j.precision === "f32" && w.groupStats) this.k.norm_rows_g_f32(j.x + off, j.y + off, rows, j.C, j.D, ptr);
      else if (j.precision === "f32") this.k.norm_rows_f32(j.x + off, j.y + off, rows, j.C, ptr);
      else this.k.norm_rows_f64(j.x + off, j.y + off, rows, j.C, ptr);
    }
  }

  /**
   * NHWC float32, D a multiple of 4: normalise the rows of unit u of sample `item` while the same rows
   * of sample item + 1 stream in for its statistics (the same sums as statsUnit's, so results do not
   * depend on the pairing). NCHW is not fused: a group's statistics read it from memory and its
   * normalisation from L2, which is faster than the two in one loop since the normalisation loop
   * keeps its constants in registers (see docs/performance.md).
   */
  private fusedUnit(j: Job, item: number, u: number): void {
    this.views();
    const { off, rows } = this.rows(j, item, u);
    const next = this.rows(j, item + 1, u);
    const out = this.partialPtr(j, item + 1, u);
    this.f64.fill(0, out >>> 3, (out >>> 3) + 2 * j.C);
    const kg = this.nhwcShifts(j, item + 1, true);
    const { ptr } = this.coefFrame(j, item);
    this.k.fused_rows_g_f32(j.x + off, j.y + off, j.x + next.off, rows, j.C, j.D, ptr, kg, out, this.tmp(j));
  }

  /** Items [i0, i1) from start to end: each item's data makes one trip through memory. */
  forwardItems(j: Job, i0: number, i1: number): void {
    const w = j.work;
    const fuse = j.precision === "f32" && j.layout === "nhwc" && w.groupStats;
    if (fuse && i0 < i1) for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, i0, u);
    for (let item = i0; item < i1; item++) {
      if (!fuse) for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item, u);
      this.finalizeStats(j, item);
      this.prepareNorm(j, item);
      if (fuse && item + 1 < i1) for (let u = 0; u < w.unitsPerItem; u++) this.fusedUnit(j, item, u);
      else for (let u = 0; u < w.unitsPerItem; u++) this.normUnit(j, item, u);
    }
  }

  // ------------------------------------------------------------------ backward

  /**
   * Internal gradients of one unit: T = Σ dy·(x − m), Σ dy, where m is the float32 high part of
   * the group mean (float32) or the mean itself (float64); finalizeGrad removes the low part.
   */
  gradUnit(j: Job, item: number, u: number, wide = false): void {
    this.views();
    const out = this.partialPtr(j, item, u);
    const f32 = j.precision === "f32";
    if (j.layout === "nchw") {
      const { off, len, nch } = this.run(j, item, u);
      const mean = this.meanOf(j, Math.floor(item / j.G), item % j.G);
      if (!f32) this.k.grad_chan_f64(j.dy + off, j.x + off, len, nch, mean, out);
      else if (wide) this.k.grad_chan_f32_wide(j.dy + off, j.x + off, len, nch, Math.fround(mean), out);
      else this.k.grad_chan_f32(j.dy + off, j.x + off, len, nch, Math.fround(mean), out);
    } else {
      const { off, rows } = this.rows(j, item, u);
      const means = this.nhwcMeans(j, item, f32 && !wide);
      this.f64.fill(0, out >>> 3, (out >>> 3) + 2 * j.C);
      if (!f32) this.k.grad_rows_f64(j.dy + off, j.x + off, rows, j.C, means, out);
      else if (wide) this.k.grad_rows_f32_wide(j.dy + off, j.x + off, rows, j.C, means, out);
      else this.k.grad_rows_f32(j.dy + off, j.x + off, rows, j.C, means, out, this.tmp(j));
    }
  }

  /** NHWC: per-channel group means of sample n (float32 high parts when `asF32`). */
  private nhwcMeans(j: Job, n: number, asF32: boolean): number {
    const w = j.work;
    const ptr = j.perItem + n * w.perItemBytes + scratchParts(j.C).means;
    const filled = this.filledFor(j), key = `${n}:${asF32}`;
    if (filled.means === key) return ptr;
    filled.means = key;
    for (let g = 0; g < j.G; g++) {
      const mean = this.meanOf(j, n, g);
      if (asF32) this.f32.fill(mean, (ptr >>> 2) + g * j.D, (ptr >>> 2) + (g + 1) * j.D);
      else this.f64.fill(j.precision === "f32" ? Math.fround(mean) : mean, (ptr >>> 3) + g * j.D, (ptr >>> 3) + (g + 1) * j.D);
    }
    return ptr;
  }

  /** Combine an item's gradient partials into ds/db per (n, c) (unit order): ds = T − mlo·db. */
  finalizeGrad(j: Job, item: number, wide = false): boolean {
    const w = j.work;
    const f32 = j.precision === "f32";
    if (j.layout === "nhwc") {
      // all C channels of sample `item`, from the sums of its unit partials
      const sums = this.sumUnits(j, item, 2 * j.C) * 8;
      const cn = item * j.C * 8;
      if (this.k.finish_grad_rows(sums, j.C, j.D, j.mean + item * j.G * 8, f32 ? 1 : 0, !wide && f32 ? 1 : 0, j.ds + cn, j.db + cn)) return true;
      if (j.shiftSource) return false; // streamed in chunks: the caller reruns them with the wide step
      for (let u = 0; u < w.unitsPerItem; u++) this.gradUnit(j, item, u, true);
      return this.finalizeGrad(j, item, true);
    }
    // NCHW: the D channels of group item % G of sample n
    this.views();
    const f = this.f64;
    const n = Math.floor(item / j.G);
    const c0 = (item % j.G) * j.D, c1 = c0 + j.D;
    const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles;
    let lo = 0;
    for (let c = c0; c < c1; c++) {
      let t = 0, b = 0;
      if (w.blocks === 1) {
        const d = c - c0;
        const at = base + Math.floor(d / w.cpu) * w.partialDoubles + 2 * (d % w.cpu);
        t = f[at];
        b = f[at + 1];
      } else {
        const d = c - c0;
        for (let k = 0; k < w.blocks; k++) {
          t += f[base + 2 * (d * w.blocks + k)];
          b += f[base + 2 * (d * w.blocks + k) + 1];
        }
      }
      if (!wide && f32 && !(Number.isFinite(t) && Number.isFinite(b))) {
        if (j.shiftSource) return false; // streamed in chunks: the caller reruns them with the wide step
        for (let u = 0; u < w.unitsPerItem; u++) this.gradUnit(j, item, u, true);
        return this.finalizeGrad(j, item, true);
      }
      if (c === c0) {
        const mean = this.meanOf(j, n, Math.floor(c / j.D));
        lo = f32 ? mean - Math.fround(mean) : 0;
      }
      f[(j.ds >>> 3) + n * j.C + c] = lo === 0 ? t : t - lo * b;
      f[(j.db >>> 3) + n * j.C + c] = b;
    }
    return true;
  }

  /**
   * Per-channel input-backward coefficients of an item in its scratch: dx = A·dy + B·(x − m) + C0
   * with A = rstd·γ_c, B = −rstd³·Σγ·ds / M, C0 = −rstd·Σγ·db / M (sums over the group; float32
   * folds the mean's low part into C0).
   */
  prepareDx(j: Job, item: number): void {
    const { ptr, count } = this.coefFrame(j, item);
    const nchw = j.layout === "nchw";
    const n = nchw ? Math.floor(item / j.G) : item;
    const g0 = nchw ? item : item * j.G, G = nchw ? 1 : j.G, c0 = nchw ? (item % j.G) * j.D : 0;
    const cn = (n * j.C + c0) * 8;
    this.k.prep_dx(ptr, count, G, j.D, j.mean + g0 * 8, j.rstd + g0 * 8, j.D * j.HxW, j.gamma + c0 * 8, j.ds + cn, j.db + cn, j.precision === "f32" ? 1 : 0);
  }

  /**
   * Input backward of unit u. `reversed` (NHWC): its rows in chunks from last to first, so that the
   * rows the internal-gradient pass read last, still in cache, are read first (measured: ~5% less
   * time for a 16 MiB sample; dx has no sums, so the order does not change any value).
   */
  dxUnit(j: Job, item: number, u: number, reversed = false): void {
    const w = j.work;
    this.views();
    const { ptr, first, count } = this.coefFrame(j, item);
    if (j.layout === "nchw") {
      const { c0, nch, off, len } = this.run(j, item, u);
      const eb = this.elemBytes(j);
      if (j.precision === "f32") this.k.dx_chan_f32(j.dy + off, j.x + off, j.dx + off, len, nch, ptr + (c0 - first) * eb, count);
      else this.k.dx_chan_f64(j.dy + off, j.x + off, j.dx + off, len, nch, ptr + (c0 - first) * eb, count);
    } else {
      const { off, rows } = this.rows(j, item, u);
      const step = reversed ? Math.max(1, Math.floor(DX_CHUNK / Math.max(1, j.C))) : rows;
      const rowBytes = j.C * this.elemBytes(j);
      for (let k = Math.ceil(rows / step) - 1; k >= 0; k--) {
        const o = off + k * step * rowBytes, n = Math.min(step, rows - k * step);
        if (j.precision === "f32" && w.groupStats) this.k.dx_rows_g_f32(j.dy + o, j.x + o, j.dx + o, n, j.C, j.D, ptr);
        else if (j.precision === "f32") this.k.dx_rows_f32(j.dy + o, j.x + o, j.dx + o, n, j.C, ptr);
        else this.k.dx_rows_f64(j.dy + o, j.x + o, j.dx + o, n, j.C, ptr);
      }
    }
  }

  backwardItems(j: Job, i0: number, i1: number): void {
    const w = j.work;
    for (let item = i0; item < i1; item++) {
      if (!j.statsGiven) {
        for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item, u);
        this.finalizeStats(j, item);
      }
      for (let u = 0; u < w.unitsPerItem; u++) this.gradUnit(j, item, u);
      this.finalizeGrad(j, item);
      if (!j.wantDx) continue;
      this.prepareDx(j, item);
      for (let u = w.unitsPerItem - 1; u >= 0; u--) this.dxUnit(j, item, u, true);
    }
  }
}

/** One step over units [u0, u1) of item 0 (a chunked item's range, or this thread's share of it). */
export function runUnits(exec: Executor, j: Job, step: UnitStep, u0: number, u1: number): void {
  for (let u = u0; u < u1; u++) {
    if (step === "stats" || step === "statsWide") exec.statsUnit(j, 0, u, step === "statsWide");
    else if (step === "norm") exec.normUnit(j, 0, u);
    else if (step === "grad" || step === "gradWide") exec.gradUnit(j, 0, u, step === "gradWide");
    else exec.dxUnit(j, 0, u);
  }
}
