/**
 * The per-item steps between the streaming passes: an item's unit partials combined in one fixed
 * order into its statistics and internal gradients, and the per-channel coefficients of its
 * normalisation and input backward. Float32 items whose values or coefficients float32 cannot keep
 * exact (kernels/extreme.ts) get float64 coefficients and run the *_f32_wide loops (NHWC: the
 * *_rows_f32_mixed loops, float64 for just those groups of a sample).
 */
import { extremeCoefficient, extremeGroup, tinyGradient, tinyVariance } from "./extreme.js";
import { JobView } from "./job-view.js";
import { ItemFlag, type Job } from "./plan.js";

export abstract class Combiner extends JobView {
  abstract statsUnit(j: Job, item: number, u: number, wide?: boolean): void;
  abstract gradUnit(j: Job, item: number, u: number, wide?: boolean): void;

  /**
   * Combine an item's partials into mean/rstd, in a fixed order (NCHW: unit; NHWC: unit, then the
   * group's channels). A float32 group whose fast-path sums overflowed (non-finite), or whose
   * variance is so small that float32 squares may have lost digits (extreme.ts: tinyVariance), is
   * redone with the float64-accumulating kernels; data that really holds NaN/Inf stays non-finite.
   * Only those groups take the redone sums: the fast pass marks them (mean NaN) and the wide pass
   * (`wide`) writes just the marked ones, so an NHWC sample's other groups keep their results
   * whatever their neighbours hold. Returns false when the caller must redo the chunks of a
   * streamed item with the wide step and call again with `wide` (it cannot rerun units whose data
   * it no longer has).
   */
  finalizeStats(j: Job, item: number, wide = false): boolean {
    const w = j.work;
    this.views();
    const f = this.f64;
    const M = j.D * j.HxW;
    const f32 = j.precision === "f32";
    const { n, g0, g1 } = this.groupsOf(j, item);
    const perGroup = w.groupStats && !wide;
    let sums = 0;
    if (w.samples) sums = this.itemSums(j, item);
    // the wide pass adds its groups to the flag the fast pass set for the groups it kept
    let extreme = wide && this.flag(j, item, ItemFlag.Extreme);
    let redo = false;
    for (let g = g0; g < g1; g++) {
      const at = n * j.G + g;
      if (wide && !Number.isNaN(f[(j.mean >>> 3) + at])) continue; // kept from the fast pass
      let s1 = 0, s2 = 0;
      if (!w.samples) {
        const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles;
        for (let u = 0; u < w.unitsPerItem; u++) {
          s1 += f[base + w.partialDoubles * u];
          s2 += f[base + w.partialDoubles * u + 1];
        }
      } else if (perGroup) {
        s1 = f[sums + g];
        s2 = f[sums + j.G + g];
      } else {
        const { c0, step } = this.channelsOf(j, g);
        for (let k = 0, c = c0; k < j.D; k++, c += step) {
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
      if (!wide && f32 && (!(Number.isFinite(s1) && Number.isFinite(s2)) || tinyVariance(variance))) {
        f[(j.mean >>> 3) + at] = NaN; // for the wide pass
        redo = true;
        continue;
      }
      const ex = f32 && extremeGroup(mean, variance, rstd, M);
      if (w.samples) f[(this.groupFlags(j, n, "extreme") >>> 3) + g] = ex ? 1 : 0;
      extreme ||= ex;
      f[(j.mean >>> 3) + at] = mean;
      f[(j.rstd >>> 3) + at] = rstd;
      if (j.variance) f[(j.variance >>> 3) + at] = variance;
    }
    this.setFlag(j, item, ItemFlag.Extreme, extreme);
    if (!redo) return true;
    if (j.shiftSource) return false;
    for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, item, u, true);
    return this.finalizeStats(j, item, true);
  }

  /**
   * Whether float32 x − mean is unsafe for group g of sample n: from finalizeStats (NCHW: the item's
   * flag; NHWC: the sample's per-group flags), or, for statistics given to the backward, from them
   * (the variance as 1/rstd² − eps).
   */
  protected groupExtreme(j: Job, n: number, g: number): boolean {
    if (j.precision !== "f32") return false;
    if (j.statsGiven) {
      const rstd = this.rstdOf(j, n, g);
      return extremeGroup(this.meanOf(j, n, g), 1 / (rstd * rstd) - j.eps, rstd, j.D * j.HxW);
    }
    if (!j.work.samples) return this.flag(j, n * j.G + g, ItemFlag.Extreme);
    this.views();
    return this.f64[(this.groupFlags(j, n, "extreme") >>> 3) + g] === 1;
  }

  /** Whether float32 x − mean is unsafe for any group of the item. */
  protected extremeItem(j: Job, item: number): boolean {
    const { n, g0, g1 } = this.groupsOf(j, item);
    for (let g = g0; g < g1; g++) if (this.groupExtreme(j, n, g)) return true;
    return false;
  }

  /**
   * NHWC: the groups of sample n the mixed kernels run in float64 (the sample's `wide` flags): its
   * extreme groups and those `coefficients(g)` says float32 cannot hold. Returns whether there is one.
   */
  private wideGroups(j: Job, n: number, coefficients: (g: number) => boolean, flags = this.groupFlags(j, n, "wide")): boolean {
    this.views();
    const at = flags >>> 3;
    let any = false;
    for (let g = 0; g < j.G; g++) {
      const wide = this.groupExtreme(j, n, g) || coefficients(g);
      this.f64[at + g] = wide ? 1 : 0;
      any ||= wide;
    }
    if (any && j.interleaved) {
      // each channel's flag, for the kernels that read one per channel
      const wc = this.channelPart(j, n, "wideC") >>> 3;
      for (let c = 0; c < j.C; c++) this.f64[wc + c] = this.f64[at + (c % j.G)];
    }
    return any;
  }

  /**
   * NHWC, mixed: into the float64 coefficient arrays at ptr (`arrays` of C), the float32 ones at
   * f32ptr (the same layout) for the groups of sample n not flagged wide, so that the mixed kernels
   * give them the fast loops' values.
   */
  private keepFloat32(j: Job, n: number, ptr: number, f32ptr: number, arrays: number, flags = this.groupFlags(j, n, "wide")): void {
    this.views();
    const wide = flags >>> 3;
    const d = ptr >>> 3, s = f32ptr >>> 2;
    for (let g = 0; g < j.G; g++) {
      if (this.f64[wide + g] === 1) continue;
      const { c0, step } = this.channelsOf(j, g);
      for (let k = 0; k < arrays; k++) {
        for (let i = 0, c = c0; i < j.D; i++, c += step) this.f64[d + k * j.C + c] = this.f32[s + k * j.C + c];
      }
    }
  }

  /** Whether any float64 coefficient of group g's channels in the `arrays` arrays of C at ptr is beyond float32. */
  private extremeGroupCoefficients(j: Job, ptr: number, g: number, arrays: number): boolean {
    const { c0, step } = this.channelsOf(j, g);
    const base = ptr >>> 3;
    for (let k = 0; k < arrays; k++) {
      for (let i = 0, c = c0; i < j.D; i++, c += step) if (extremeCoefficient(this.f64[base + k * j.C + c])) return true;
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
   * that float32 cannot keep exact keeps the float64 coefficients (flag NormWide); in NHWC only its
   * groups that need them do (the `wide` flags), the others get their float32 coefficients held in
   * the float64 arrays, for norm_rows_f32_mixed.
   */
  prepareNorm(j: Job, item: number): void {
    const wide = this.forwardCoefficients(j, item, this.coefFrame(j, item).ptr, this.groupFlags(j, item, "wide"));
    if (j.precision === "f32") this.setFlag(j, item, ItemFlag.NormWide, wide);
  }

  /**
   * Backward through an activation: the forward's coefficients of an item, as prepareNorm makes them,
   * in its own frame (JobView.actFrame), where they stay for every pass that needs dy·act'(pre).
   * Interleaved groups keep float64 coefficients for every channel (one float64 "group" of all C for
   * the NHWC mixed kernel): dy·act'(pre) then runs in its own pass before the plain sums.
   */
  prepareAct(j: Job, item: number): void {
    const f = this.actFrame(j, item);
    let wide: boolean;
    if (j.interleaved) {
      const { count } = this.coefFrame(j, item);
      this.k.prep_norm_f64_i(f.ptr, count, j.G, j.D, j.mean + item * j.G * 8, j.rstd + item * j.G * 8, j.gamma, j.beta);
      this.views();
      this.f64[f.groups >>> 3] = 1;
      wide = true;
    } else wide = this.forwardCoefficients(j, item, f.ptr, f.groups);
    this.views();
    this.f64[f.flag >>> 3] = wide ? 1 : 0;
  }

  /** prepareNorm's coefficients at ptr (NHWC: per-group wide flags at `flags`); whether they are float64. */
  private forwardCoefficients(j: Job, item: number, ptr: number, flags: number): boolean {
    const { count } = this.coefFrame(j, item);
    // NCHW: the item's one group; a sample item: all G groups of sample `item`
    const one = !j.work.samples;
    const g0 = one ? item : item * j.G, G = one ? 1 : j.G, c0 = one ? (item % j.G) * j.D : 0;
    const args = [count, G, j.D, j.mean + g0 * 8, j.rstd + g0 * 8, j.gamma + c0 * 8, j.beta + c0 * 8] as const;
    const [f64, f32] = j.interleaved ? [this.k.prep_norm_f64_i, this.k.prep_norm_f32_i] : [this.k.prep_norm_f64, this.k.prep_norm_f32];
    f64(ptr, ...args);
    if (j.precision !== "f32") return false;
    this.views();
    // a = rstd·γ is the one coefficient float32 may not hold (m and b are the values' own scale)
    const a = ptr + count * 8;
    const wide = one ? this.extremeItem(j, item) || this.extremeCoefficients(a, count, 1) : this.wideGroups(j, item, (g) => this.extremeGroupCoefficients(j, a, g, 1), flags);
    if (!wide) f32(ptr, ...args);
    else if (j.layout === "nchw" && !one) f32(this.channelPart(j, item, "coef32"), ...args); // the fast groups' own, beside the float64 ones
    else if (!one) {
      f32(this.tmp(j), ...args);
      this.keepFloat32(j, item, ptr, this.tmp(j), 3, flags);
    }
    return wide;
  }

  /**
   * Combine an item's gradient partials into ds/db per (n, c) (unit order): ds = T − mlo·db. A
   * float32 group with a channel whose fast-path sums overflowed, or whose ds is so small that
   * float32 products may have lost digits (extreme.ts: tinyGradient), is redone with the
   * float64-accumulating kernels; as in finalizeStats, only those groups take the redone sums (NHWC:
   * the fast pass marks them in the sample's `wide` flags, which prepareDx sets afterwards, and the
   * `redo` pass writes just the marked ones). Returns false when the caller must rerun a streamed
   * item's chunks with the wide step and call again with `redo`.
   */
  finalizeGrad(j: Job, item: number, redo = false): boolean {
    const w = j.work;
    const f32 = j.precision === "f32";
    const samples = w.samples; // NHWC, or NCHW with interleaved groups: all C channels of the sample
    // an extreme NCHW item's units ran the float64-accumulating step already (NHWC: its extreme groups are redone)
    const check = f32 && !redo && (samples || !this.extremeItem(j, item));
    this.views();
    const f = this.f64;
    const { n, g0, g1 } = this.groupsOf(j, item);
    // sample items: all C channels of sample `item`, from the sums of its unit partials
    const sums = samples ? this.itemSums(j, item) : 0;
    const marks = samples ? this.groupFlags(j, n, "wide") >>> 3 : 0;
    const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles;
    const ds = (j.ds >>> 3) + n * j.C, db = (j.db >>> 3) + n * j.C;
    let again = false;
    for (let g = g0; g < g1; g++) {
      if (redo && samples && f[marks + g] !== 1) continue; // kept from the fast pass
      const { c0, step } = this.channelsOf(j, g);
      const mean = this.meanOf(j, n, g);
      const lo = f32 ? mean - Math.fround(mean) : 0;
      let bad = check && samples && this.groupExtreme(j, n, g);
      for (let i = 0, c = c0; i < j.D; i++, c += step) {
        let t = 0, b = 0;
        if (samples) {
          t = f[sums + c];
          b = f[sums + j.C + c];
        } else if (w.blocks === 1) {
          const d = c - c0, at = base + Math.floor(d / w.cpu) * w.partialDoubles + 2 * (d % w.cpu);
          t = f[at];
          b = f[at + 1];
        } else {
          const d = c - c0;
          for (let k = 0; k < w.blocks; k++) {
            t += f[base + 2 * (d * w.blocks + k)];
            b += f[base + 2 * (d * w.blocks + k) + 1];
          }
        }
        const s = lo === 0 ? t : t - lo * b;
        if (check && !bad) bad = !(Number.isFinite(t) && Number.isFinite(b)) || (tinyGradient(s, j.HxW) && !(t === 0 && this.zeroTerms(j, n, c, mean)));
        f[ds + c] = s;
        f[db + c] = b;
      }
      if (samples) f[marks + g] = bad ? 1 : 0;
      again ||= bad;
      const rstd = this.rstdOf(j, n, g);
      if (!bad && (rstd === Infinity || rstd === -Infinity)) this.infiniteRstd(j, n, g, mean);
    }
    if (!again) return true;
    if (j.shiftSource) return false; // streamed in chunks: the caller reruns them with the wide step
    for (let u = 0; u < w.unitsPerItem; u++) this.gradUnit(j, item, u, true);
    return this.finalizeGrad(j, item, true);
  }

  /**
   * Whether every term dy·(x − mhi) of channel c of sample n is exactly 0 (dy = 0 or x = mhi, as in
   * a constant group or a channel without gradient), so that a fast ds of 0 is exact. Unknown for
   * an item streamed in chunks (its data are gone): false.
   */
  private zeroTerms(j: Job, n: number, c: number, mean: number): boolean {
    if (j.shiftSource) return false;
    const m = Math.fround(mean), v = this.f32;
    const { first, step } = this.channelRun(j, n, c);
    const px = (j.x >>> 2) + first, pg = (j.dy >>> 2) + first;
    for (let s = 0; s < j.HxW; s++) if (v[pg + s * step] !== 0 && v[px + s * step] !== m) return false;
    return true;
  }

  /** Element index (from the job's tensors) of channel c of sample n at position 0, and its stride. */
  private channelRun(j: Job, n: number, c: number): { first: number; step: number } {
    return j.layout === "nchw" ? { first: (n * j.C + c) * j.HxW, step: 1 } : { first: n * j.HxW * j.C + c, step: j.C };
  }

  /**
   * rstd = ±∞ (given, or eps = 0 on a constant group): the float64 formula's x̂ = (x − mean)·rstd
   * is ±∞ or NaN, and its sums Σ dy·x̂ are ±∞ when all their terms have one sign, else NaN. So that
   * dgamma (Σ_n rstd·ds) and dx (prepDx) come out as they do, ds of each channel becomes ±∞ with the
   * sign its terms dy·(x − mean) share, or NaN when they do not share one (or one is 0). NaN for
   * an item streamed in chunks (its data are gone).
   */
  private infiniteRstd(j: Job, n: number, g: number, mean: number): void {
    const f32 = j.precision === "f32";
    const v = f32 ? this.f32 : this.f64, sh = f32 ? 2 : 3;
    const { c0, step } = this.channelsOf(j, g);
    for (let i = 0, c = c0; i < j.D; i++, c += step) {
      let sign = 0;
      if (!j.shiftSource) {
        const { first, step } = this.channelRun(j, n, c);
        const px = (j.x >>> sh) + first, pg = (j.dy >>> sh) + first;
        for (let s = 0; s < j.HxW; s++) {
          const t = Math.sign(v[pg + s * step]) * Math.sign(v[px + s * step] - mean);
          if (s === 0) sign = t;
          if (t !== sign || !(t !== 0)) {
            sign = 0;
            break;
          }
        }
      }
      this.f64[(j.ds >>> 3) + n * j.C + c] = sign === 0 ? NaN : sign * Infinity;
    }
  }

  /**
   * Per-channel input-backward coefficients of an item in its scratch: dx = A·dy + B·(x − m) + C0
   * with A = rstd·γ_c, B = −rstd³·Σγ·ds / M, C0 = −rstd·Σγ·db / M (sums over the group; float32
   * folds the mean's low part into C0). A float32 item that float32 cannot keep exact keeps the
   * float64 coefficients (flag DxWide); in NHWC only its groups that need them, as in prepareNorm.
   */
  prepareDx(j: Job, item: number): void {
    const { ptr, count } = this.coefFrame(j, item);
    const nchw = !j.work.samples; // one group per item
    const n = nchw ? Math.floor(item / j.G) : item;
    const g0 = nchw ? item : item * j.G, G = nchw ? 1 : j.G, c0 = nchw ? (item % j.G) * j.D : 0;
    const cn = (n * j.C + c0) * 8;
    const kernel = j.interleaved ? this.k.prep_dx_i : this.k.prep_dx;
    const prep = (at: number, f32out: number) => kernel(at, count, G, j.D, j.mean + g0 * 8, j.rstd + g0 * 8, j.D * j.HxW, j.gamma + c0 * 8, j.ds + cn, j.db + cn, f32out);
    prep(ptr, 0);
    if (j.precision !== "f32") return;
    this.views();
    const wide = nchw ? this.extremeItem(j, item) || this.extremeCoefficients(ptr, count, 3) : this.wideGroups(j, item, (g) => this.extremeGroupCoefficients(j, ptr, g, 3));
    this.setFlag(j, item, ItemFlag.DxWide, wide);
    if (!wide) prep(ptr, 1);
    else if (nchw) return;
    else if (j.layout === "nchw") prep(this.channelPart(j, item, "coef32"), 1); // interleaved: the fast groups' own, beside the float64 ones
    else {
      prep(this.tmp(j), 1);
      this.keepFloat32(j, item, ptr, this.tmp(j), 4);
    }
  }
}
