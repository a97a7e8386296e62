/**
 * The per-thread executor of a job's work layout (plan.ts): statistics, normalisation, internal
 * gradients and input backward per unit, over whole items or units shared out by the schedule; the
 * per-item combination between the passes is combine.ts. The same code runs on the main thread
 * (single-thread path) and in every pool worker; each calls the WebAssembly loops on its own
 * instance over the one shared memory.
 */
import { Combiner } from "./combine.js";
import { DX_CHUNK, ItemFlag, type Job, type UnitStep } from "./plan.js";

/** The per-thread executor: wraps one WebAssembly instance. */
export class Executor extends Combiner {
  // ------------------------------------------------------------------ statistics

  /** Statistics partial of one unit: Σ(x − K), Σ(x − K)² (per channel for NHWC). */
  statsUnit(j: Job, item: number, u: number, wide = false): void {
    const w = j.work;
    this.views();
    const out = this.partialPtr(j, item, u);
    const f32 = j.precision === "f32";
    if (j.layout === "nchw" && w.samples) {
      // interleaved groups: each run shifted by its own group's K, its sums its own
      const { c0, off, len, nch } = this.run(j, item, u);
      const kc = this.nhwcShifts(j, item, false) + c0 * 8;
      if (!f32) this.k.stats_chans_f64(j.x + off, len, nch, kc, out);
      else if (wide) this.k.stats_chans_f32_wide(j.x + off, len, nch, kc, out);
      else this.k.stats_chans_f32(j.x + off, len, nch, kc, out);
    } else if (j.layout === "nchw") {
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

  // ------------------------------------------------------------------ forward

  /** Normalisation of unit u: y = (x − m)·a + b, or act of it (j.act) through the same kernels' *_act forms. */
  normUnit(j: Job, item: number, u: number): void {
    const w = j.work, act = j.act, k = this.k;
    this.views();
    const { ptr, first, count } = this.coefFrame(j, item);
    const wide = j.precision === "f32" && this.flag(j, item, ItemFlag.NormWide);
    const chan = (kern: "norm_chan_f32" | "norm_chan_f32_wide" | "norm_chan_f64", o: number, len: number, nch: number, at: number) =>
      act ? k[`${kern}_act`](j.x + o, j.y + o, len, nch, at, count, act) : k[kern](j.x + o, j.y + o, len, nch, at, count);
    if (j.layout === "nchw" && wide && w.samples) this.eachChannel(j, item, u, (o, c, len, fast) => {
      if (fast) chan("norm_chan_f32", o, len, 1, this.channelPart(j, item, "coef32") + c * 4);
      else chan("norm_chan_f32_wide", o, len, 1, ptr + c * 8);
    });
    else if (j.layout === "nchw") {
      const { c0, nch, off, len } = this.run(j, item, u);
      const at = ptr + (c0 - first) * (wide ? 8 : this.elemBytes(j)); // the coefficients' element size
      chan(wide ? "norm_chan_f32_wide" : j.precision === "f32" ? "norm_chan_f32" : "norm_chan_f64", off, len, nch, at);
    } else {
      const { off, rows } = this.rows(j, item, u);
      const x = j.x + off, y = j.y + off;
      const mixed = (G: number, D: number, flags: number) =>
        act ? k.norm_rows_f32_mixed_act(x, y, rows, j.C, G, D, ptr, flags, act) : k.norm_rows_f32_mixed(x, y, rows, j.C, G, D, ptr, flags);
      if (wide && j.interleaved) mixed(j.C, 1, this.channelPart(j, item, "wideC"));
      else if (wide) mixed(j.G, j.D, this.groupFlags(j, item, "wide"));
      else if (j.precision === "f32" && w.groupStats) act ? k.norm_rows_g_f32_act(x, y, rows, j.C, j.D, ptr, act) : k.norm_rows_g_f32(x, y, rows, j.C, j.D, ptr);
      else if (j.precision === "f32") act ? k.norm_rows_f32_act(x, y, rows, j.C, ptr, act) : k.norm_rows_f32(x, y, rows, j.C, ptr);
      else act ? k.norm_rows_f64_act(x, y, rows, j.C, ptr, act) : k.norm_rows_f64(x, y, rows, j.C, ptr);
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
    if (j.act) this.k.fused_rows_g_f32_act(j.x + off, j.y + off, j.x + next.off, rows, j.C, j.D, ptr, kg, out, this.tmp(j), j.act);
    else this.k.fused_rows_g_f32(j.x + off, j.y + off, j.x + next.off, rows, j.C, j.D, ptr, kg, out, this.tmp(j));
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
      if (fuse && item + 1 < i1 && !this.flag(j, item, ItemFlag.NormWide)) for (let u = 0; u < w.unitsPerItem; u++) this.fusedUnit(j, item, u);
      else {
        // the next item's statistics alone (the same sums the fused step would make), then this one's wide normalisation
        if (fuse && item + 1 < i1) for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item + 1, u);
        for (let u = 0; u < w.unitsPerItem; u++) this.normUnit(j, item, u);
      }
    }
  }

  // ------------------------------------------------------------------ backward

  /**
   * Internal gradients of one unit: T = Σ dy·(x − m), Σ dy, where m is the float32 high part of
   * the group mean (float32) or the mean itself (float64); finalizeGrad removes the low part. An
   * extreme float32 NCHW item (one group) accumulates in float64 from the start; an NHWC sample's
   * extreme groups are redone by finalizeGrad, so that its other groups keep the fast sums.
   */
  gradUnit(j: Job, item: number, u: number, wide = false): void {
    // through an activation, dy becomes dy·act'(pre) in this pass: a redo (wide) finds it so, unless
    // the item is streamed in chunks, whose every pass reads dy afresh
    const act = j.act && !(wide && !j.shiftSource) ? j.act : 0;
    if (!j.work.samples) wide ||= this.extremeItem(j, item);
    this.views();
    const out = this.partialPtr(j, item, u);
    const f32 = j.precision === "f32";
    if (j.layout === "nchw" && j.work.samples) {
      // interleaved groups: each run with its own group's mean (float32 high parts for the fast loop);
      // through an activation, dy·act'(pre) first (float64 coefficients, see prepareAct)
      if (act) this.preActivation(j, item, u);
      const { c0, off, len, nch } = this.run(j, item, u);
      const fast = f32 && !wide;
      const mc = this.nhwcMeans(j, item, fast) + c0 * (fast ? 4 : 8);
      if (!f32) this.k.grad_chans_f64(j.dy + off, j.x + off, len, nch, mc, out);
      else if (wide) this.k.grad_chans_f32_wide(j.dy + off, j.x + off, len, nch, mc, out);
      else this.k.grad_chans_f32(j.dy + off, j.x + off, len, nch, mc, out);
    } else if (j.layout === "nchw") {
      const { off, len, nch } = this.run(j, item, u);
      const mean = this.meanOf(j, Math.floor(item / j.G), item % j.G);
      // the fused kernels where the coefficients are the fast loops' own, else dy·act'(pre) first
      const fused = act !== 0 && !(f32 && (wide || this.actWide(j, item)));
      if (act && !fused) this.preActivation(j, item, u);
      const at = fused ? this.actCoefAt(j, item, u) : 0, stride = j.D;
      if (!f32) fused ? this.k.grad_chan_f64_act(j.dy + off, j.x + off, len, nch, mean, out, at, stride, act) : this.k.grad_chan_f64(j.dy + off, j.x + off, len, nch, mean, out);
      else if (wide) this.k.grad_chan_f32_wide(j.dy + off, j.x + off, len, nch, Math.fround(mean), out);
      else if (fused) this.k.grad_chan_f32_act(j.dy + off, j.x + off, len, nch, Math.fround(mean), out, at, stride, act);
      else this.k.grad_chan_f32(j.dy + off, j.x + off, len, nch, Math.fround(mean), out);
    } else {
      const { off, rows } = this.rows(j, item, u);
      const means = this.nhwcMeans(j, item, f32 && !wide);
      this.f64.fill(0, out >>> 3, (out >>> 3) + 2 * j.C);
      const fused = act !== 0 && !(f32 && (wide || this.actWide(j, item)));
      if (act && !fused) this.preActivation(j, item, u);
      const at = this.actFrame(j, item).ptr;
      if (!f32) fused ? this.k.grad_rows_f64_act(j.dy + off, j.x + off, rows, j.C, means, out, at, act) : this.k.grad_rows_f64(j.dy + off, j.x + off, rows, j.C, means, out);
      else if (wide) this.k.grad_rows_f32_wide(j.dy + off, j.x + off, rows, j.C, means, out);
      else if (fused) this.k.grad_rows_f32_act(j.dy + off, j.x + off, rows, j.C, means, out, this.tmp(j), at, act);
      else this.k.grad_rows_f32(j.dy + off, j.x + off, rows, j.C, means, out, this.tmp(j));
    }
  }

  /** NCHW: where unit u's first channel's forward coefficients lie in the item's activation frame. */
  private actCoefAt(j: Job, item: number, u: number): number {
    const { ptr } = this.actFrame(j, item);
    const c0 = this.run(j, item, u).c0 - (j.work.samples ? 0 : (item % j.G) * j.D);
    return ptr + c0 * (j.precision === "f32" && !this.actWide(j, item) ? 4 : 8);
  }

  /**
   * dy ← dy·act'(pre) over unit u alone (backward through the activation j.act): for units whose
   * coefficients are float64 (an extreme item or group), and for the passes of an item streamed in
   * chunks after its first. The fused kernels give the same values.
   */
  preActivation(j: Job, item: number, u: number): void {
    const f = this.actFrame(j, item), act = j.act;
    const wide = j.precision === "f32" && this.actWide(j, item);
    if (j.layout === "nchw") {
      const { nch, off, len } = this.run(j, item, u);
      const at = this.actCoefAt(j, item, u);
      if (wide) this.k.dpre_chan_f32_wide(j.dy + off, j.x + off, len, nch, at, f.count, act);
      else if (j.precision === "f32") this.k.dpre_chan_f32(j.dy + off, j.x + off, len, nch, at, f.count, act);
      else this.k.dpre_chan_f64(j.dy + off, j.x + off, len, nch, at, f.count, act);
    } else {
      const { off, rows } = this.rows(j, item, u);
      // interleaved groups: one float64 "group" of all C channels (prepareAct)
      if (wide && j.interleaved) this.k.dpre_rows_f32_mixed(j.dy + off, j.x + off, rows, j.C, 1, j.C, f.ptr, f.groups, act);
      else if (wide) this.k.dpre_rows_f32_mixed(j.dy + off, j.x + off, rows, j.C, j.G, j.D, f.ptr, f.groups, act);
      else if (j.precision === "f32") this.k.dpre_rows_f32(j.dy + off, j.x + off, rows, j.C, f.ptr, act);
      else this.k.dpre_rows_f64(j.dy + off, j.x + off, rows, j.C, f.ptr, act);
    }
  }

  /**
   * Input backward of unit u. `reversed` (NHWC): its rows in chunks from last to first, so that the
   * rows the internal-gradient pass read last, still in cache, are read first (measured: ~5% less
   * time for a 16 MiB sample; dx has no sums, so the order does not change any value).
   */
  dxUnit(j: Job, item: number, u: number, reversed = false): void {
    const w = j.work;
    // an item streamed in chunks reads dy afresh: dy·act'(pre) again (in memory, the grad pass left it there)
    if (j.act && j.shiftSource) this.preActivation(j, item, u);
    this.views();
    const { ptr, first, count } = this.coefFrame(j, item);
    const wide = j.precision === "f32" && this.flag(j, item, ItemFlag.DxWide);
    if (j.layout === "nchw" && wide && w.samples) this.eachChannel(j, item, u, (o, c, len, fast) => {
      if (fast) this.k.dx_chan_f32(j.dy + o, j.x + o, j.dx + o, len, 1, this.channelPart(j, item, "coef32") + c * 4, count);
      else this.k.dx_chan_f32_wide(j.dy + o, j.x + o, j.dx + o, len, 1, ptr + c * 8, count);
    });
    else if (j.layout === "nchw") {
      const { c0, nch, off, len } = this.run(j, item, u);
      const cb = wide ? 8 : this.elemBytes(j); // the coefficients' element size
      if (wide) this.k.dx_chan_f32_wide(j.dy + off, j.x + off, j.dx + off, len, nch, ptr + (c0 - first) * cb, count);
      else if (j.precision === "f32") this.k.dx_chan_f32(j.dy + off, j.x + off, j.dx + off, len, nch, ptr + (c0 - first) * cb, count);
      else this.k.dx_chan_f64(j.dy + off, j.x + off, j.dx + off, len, nch, ptr + (c0 - first) * cb, count);
    } else {
      const { off, rows } = this.rows(j, item, u);
      const step = reversed ? Math.max(1, Math.floor(DX_CHUNK / Math.max(1, j.C))) : rows;
      const rowBytes = j.C * this.elemBytes(j);
      for (let k = Math.ceil(rows / step) - 1; k >= 0; k--) {
        const o = off + k * step * rowBytes, n = Math.min(step, rows - k * step);
        if (wide && j.interleaved) this.k.dx_rows_f32_mixed(j.dy + o, j.x + o, j.dx + o, n, j.C, j.C, 1, ptr, this.channelPart(j, item, "wideC"));
        else if (wide) this.k.dx_rows_f32_mixed(j.dy + o, j.x + o, j.dx + o, n, j.C, j.G, j.D, ptr, this.groupFlags(j, item, "wide"));
        else if (j.precision === "f32" && w.groupStats) this.k.dx_rows_g_f32(j.dy + o, j.x + o, j.dx + o, n, j.C, j.D, ptr);
        else if (j.precision === "f32") this.k.dx_rows_f32(j.dy + o, j.x + o, j.dx + o, n, j.C, ptr);
        else this.k.dx_rows_f64(j.dy + o, j.x + o, j.dx + o, n, j.C, ptr);
      }
    }
  }

  /**
   * NCHW with interleaved groups, a sample some of whose groups run in float64: f(byte offset, channel,
   * values, fast) for each channel run of unit u, fast when its group keeps the float32 loops.
   */
  private eachChannel(j: Job, item: number, u: number, f: (off: number, c: number, len: number, fast: boolean) => void): void {
    const { c0, nch, off, len } = this.run(j, item, u);
    const flags = this.channelPart(j, item, "wideC") >>> 3, eb = this.elemBytes(j);
    for (let k = 0; k < nch; k++) f(off + k * len * eb, c0 + k, len, this.f64[flags + c0 + k] !== 1);
  }

  backwardItems(j: Job, i0: number, i1: number): void {
    const w = j.work;
    for (let item = i0; item < i1; item++) {
      if (!j.statsGiven) {
        for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item, u);
        this.finalizeStats(j, item);
      }
      if (j.act) this.prepareAct(j, item);
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
