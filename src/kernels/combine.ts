/**
 * The per-item steps between the streaming passes: an item's unit partials combined in one fixed
 * order into its statistics and internal gradients, and the per-channel coefficients of its
 * normalisation and input backward. Float32 items whose values or coefficients float32 cannot keep
 * exact (kernels/extreme.ts) get float64 coefficients and run the *_f32_wide loops.
 */
import { extremeCoefficient, extremeGroup, tinyVariance } from "./extreme.js";
import { JobView } from "./job-view.js";
import { ItemFlag, type Job } from "./plan.js";

export abstract class Combiner extends JobView {
  abstract statsUnit(j: Job, item: number, u: number, wide?: boolean): void;
  abstract gradUnit(j: Job, item: number, u: number, wide?: boolean): void;

  /**
   * Combine an item's partials into mean/rstd, in a fixed order (NCHW: unit; NHWC: unit, then the
   * group's channels). A float32 fast-path overflow (non-finite sums), or a variance so small that
   * float32 squares may have underflowed, is redone with the float64-accumulating kernels; data
   * that really holds NaN/Inf stays non-finite. Returns false when the caller must redo the chunks
   * of a streamed item with the wide step (it cannot rerun units whose data it no longer has).
   */
  finalizeStats(j: Job, item: number, wide = false): boolean {
    const w = j.work;
    this.views();
    const f = this.f64;
    const M = j.D * j.HxW;
    const { n, g0, g1 } = this.groupsOf(j, item);
    const perGroup = w.groupStats && !wide;
    let sums = 0;
    if (j.layout === "nhwc") sums = this.sumUnits(j, item, 2 * j.C);
    let extreme = false;
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
      // an empty group (HxW = 0 or C = 0): mean 0 and rstd NaN, as PyTorch
      let mean = 0, rstd = NaN, variance = NaN;
      if (M > 0) {
        const m1 = s1 / M;
        variance = Math.max(0, s2 / M - m1 * m1);
        mean = this.shift(j, n, g) + m1;
        rstd = 1 / Math.sqrt(variance + j.eps);
      }
      if (!wide && j.precision === "f32" && (!(Number.isFinite(s1) && Number.isFinite(s2)) || tinyVariance(variance))) {
        if (j.shiftSource) return false;
        for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item, u, true);
        return this.finalizeStats(j, item, true);
      }
      extreme ||= j.precision === "f32" && extremeGroup(mean, variance, rstd, M);
      f[(j.mean >>> 3) + n * j.G + g] = mean;
      f[(j.rstd >>> 3) + n * j.G + g] = rstd;
    }
    this.setFlag(j, item, ItemFlag.Extreme, extreme);
    return true;
  }

  /**
   * Whether float32 x − mean is unsafe for the item: from finalizeStats, or, for statistics given
   * to the backward, from them (the variance as 1/rstd² − eps).
   */
  protected extremeItem(j: Job, item: number): boolean {
    if (j.precision !== "f32") return false;
    if (!j.statsGiven) return this.flag(j, item, ItemFlag.Extreme);
    const { n, g0, g1 } = this.groupsOf(j, item);
    for (let g = g0; g < g1; g++) {
      const rstd = this.rstdOf(j, n, g);
      if (extremeGroup(this.meanOf(j, n, g), 1 / (rstd * rstd) - j.eps, rstd, j.D * j.HxW)) return true;
    }
    return false;
  }

  /** Whether any of `count` float64 coefficients at ptr (arrays `count` apart) is beyond float32. */
  private extremeCoefficients(ptr: number, count: number, arrays: number): boolean {
    const base = ptr >>> 3;
    for (let i = 0; i < arrays * count; i++) if (extremeCoefficient(this.f64[base + i])) return true;
    return false;
  }

  /**
   * Per-channel forward coefficients of an item in its scratch: y = (x − m)·a + b with a = rstd·γ;
   * for float32, m is the mean's float32 high part and its low part is folded into b. A float32 item
   * that float32 cannot keep exact keeps the float64 coefficients (flag NormWide).
   */
  prepareNorm(j: Job, item: number): void {
    const { ptr, count } = this.coefFrame(j, item);
    // NCHW: the item's one group; NHWC: all G groups of sample `item`
    const nchw = j.layout === "nchw";
    const g0 = nchw ? item : item * j.G, G = nchw ? 1 : j.G, c0 = nchw ? (item % j.G) * j.D : 0;
    const args = [ptr, count, G, j.D, j.mean + g0 * 8, j.rstd + g0 * 8, j.gamma + c0 * 8, j.beta + c0 * 8] as const;
    this.k.prep_norm_f64(...args);
    if (j.precision !== "f32") return;
    this.views();
    // a = rstd·γ is the one coefficient float32 may not hold (m and b are the values' own scale)
    const wide = this.extremeItem(j, item) || this.extremeCoefficients(ptr + count * 8, count, 1);
    this.setFlag(j, item, ItemFlag.NormWide, wide);
    if (!wide) this.k.prep_norm_f32(...args);
  }

  /** Combine an item's gradient partials into ds/db per (n, c) (unit order): ds = T − mlo·db. */
  finalizeGrad(j: Job, item: number, wide = false): boolean {
    const w = j.work;
    const f32 = j.precision === "f32";
    wide ||= this.extremeItem(j, item); // its units ran the float64-accumulating step already
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
      const d = c - c0;
      if (w.blocks === 1) {
        const at = base + Math.floor(d / w.cpu) * w.partialDoubles + 2 * (d % w.cpu);
        t = f[at];
        b = f[at + 1];
      } else {
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
   * folds the mean's low part into C0). A float32 item that float32 cannot keep exact keeps the
   * float64 coefficients (flag DxWide).
   */
  prepareDx(j: Job, item: number): void {
    const { ptr, count } = this.coefFrame(j, item);
    const nchw = j.layout === "nchw";
    const n = nchw ? Math.floor(item / j.G) : item;
    const g0 = nchw ? item : item * j.G, G = nchw ? 1 : j.G, c0 = nchw ? (item % j.G) * j.D : 0;
    const cn = (n * j.C + c0) * 8;
    const prep = (f32out: number) => this.k.prep_dx(ptr, count, G, j.D, j.mean + g0 * 8, j.rstd + g0 * 8, j.D * j.HxW, j.gamma + c0 * 8, j.ds + cn, j.db + cn, f32out);
    prep(0);
    if (j.precision !== "f32") return;
    this.views();
    const wide = this.extremeItem(j, item) || this.extremeCoefficients(ptr, count, 3);
    this.setFlag(j, item, ItemFlag.DxWide, wide);
    if (!wide) prep(1);
  }
}
