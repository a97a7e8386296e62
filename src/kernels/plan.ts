/**
 * How a GroupNorm job is cut into work and how partial results are combined. The same code runs on
 * the main thread (single-thread path) and in every pool worker; each calls the WebAssembly loops
 * on its own instance over the one shared memory.
 *
 * Work is split into *items* and *units*:
 *   NCHW  item = (n, g); unit = one block of at most BLOCK values of one channel's HxW run.
 *   NHWC  item = n;      unit = ROWS consecutive spatial rows (all C channels) of sample n.
 * Every unit writes its own partial sums; an item's statistics combine its partials in one fixed
 * order. Nothing about that order depends on which thread did a unit, so results are bitwise the
 * same for any thread count and any split.
 */
import type { Layout } from "../core/dims.js";
import type { KernelExports } from "./wasm.js";

export type Precision = "f32" | "f64";

/** Values per NCHW unit (one block of a channel run). */
export const BLOCK = 16384;
/** Values per NHWC unit, rounded to whole rows. */
export const NHWC_BLOCK = 65536;

export interface Geometry {
  readonly precision: Precision;
  readonly layout: Layout;
  readonly N: number;
  readonly C: number;
  readonly HxW: number;
  readonly G: number;
  readonly D: number;
}

/** Pointers (byte offsets in the shared memory) a job works on. f64 arrays unless stated. */
export interface JobPointers {
  readonly x: number; // input, precision dtype
  readonly y: number; // forward output (or 0)
  readonly dy: number; // backward upstream gradient (or 0)
  readonly dx: number; // backward output (or 0)
  readonly gamma: number; // C
  readonly beta: number; // C
  readonly mean: number; // N·G
  readonly rstd: number; // N·G
  readonly partials: number; // unitsPerItem · items · partialDoubles
  readonly ds: number; // N·C: Σ dy·(x − mean) per (n, c)
  readonly db: number; // N·C: Σ dy per (n, c)
  readonly perItem: number; // items · perItemBytes: shifts and coefficients (NHWC)
}

export interface Job extends Geometry, JobPointers {
  readonly eps: number;
  /** Backward: mean/rstd were supplied and must not be recomputed. */
  readonly statsGiven: boolean;
  /** Backward: compute dx (false when only dgamma/dbeta are wanted). */
  readonly wantDx: boolean;
}

export interface Layout2 {
  items: number;
  unitsPerItem: number;
  /** NCHW: blocks per channel; NHWC: rows per unit. */
  blocks: number;
  rows: number;
  partialDoubles: number;
  perItemBytes: number;
}

export function itemsOf(g: Geometry): number {
  return g.layout === "nchw" ? g.N * g.G : g.N;
}

export function workLayout(g: Geometry): Layout2 {
  if (g.layout === "nchw") {
    const blocks = Math.max(1, Math.ceil(g.HxW / BLOCK));
    return { items: g.N * g.G, unitsPerItem: g.D * blocks, blocks, rows: 0, partialDoubles: 2, perItemBytes: 0 };
  }
  const rows = Math.max(1, Math.floor(NHWC_BLOCK / g.C));
  const units = Math.max(1, Math.ceil(g.HxW / rows));
  // per item: shift/mean per channel (C f64) + coefficients (5·C f64 at most)
  return { items: g.N, unitsPerItem: units, blocks: 0, rows, partialDoubles: 2 * g.C, perItemBytes: 6 * 8 * g.C };
}

/** Scratch sizes a job needs, in bytes. */
export function scratchBytes(g: Geometry): { partials: number; perItem: number } {
  const w = workLayout(g);
  return { partials: w.items * w.unitsPerItem * w.partialDoubles * 8, perItem: w.items * w.perItemBytes };
}

function splitF32(v: number): [number, number] {
  const hi = Math.fround(v);
  return [hi, Math.fround(v - hi)];
}

/** The per-thread executor: wraps one WebAssembly instance. */
export class Executor {
  private f64: Float64Array<ArrayBufferLike> = new Float64Array(0);
  private f32: Float32Array<ArrayBufferLike> = new Float32Array(0);

  constructor(
    readonly k: KernelExports,
    readonly memory: WebAssembly.Memory,
  ) {}

  private views(): void {
    const buf = this.memory.buffer;
    if (this.f64.buffer !== buf || this.f64.length * 8 !== buf.byteLength) {
      this.f64 = new Float64Array(buf);
      this.f32 = new Float32Array(buf);
    }
  }

  // ------------------------------------------------------------------ shared steps

  /** Value of element (n, c = g·D, s = 0), the shift K of group (n, g). */
  private shift(j: Job, n: number, g: number): number {
    const c = g * j.D;
    const idx = j.layout === "nchw" ? (n * j.C + c) * j.HxW : n * j.HxW * j.C + c;
    return j.precision === "f32" ? this.f32[(j.x >>> 2) + idx] : this.f64[(j.x >>> 3) + idx];
  }

  private elemBytes(j: Job): number {
    return j.precision === "f32" ? 4 : 8;
  }

  /** Statistics partial of one unit. */
  statsUnit(j: Job, w: Layout2, item: number, u: number): void {
    this.views();
    const out = j.partials + (item * w.unitsPerItem + u) * w.partialDoubles * 8;
    const eb = this.elemBytes(j);
    if (j.layout === "nchw") {
      const n = Math.floor(item / j.G), g = item % j.G;
      const c = g * j.D + Math.floor(u / w.blocks), b = u % w.blocks;
      const start = b * BLOCK, len = Math.min(BLOCK, j.HxW - start);
      const p = j.x + ((n * j.C + c) * j.HxW + start) * eb;
      const K = this.shift(j, n, g);
      if (j.precision === "f32") this.k.stats_run_f32(p, len, K, out);
      else this.k.stats_run_f64(p, len, K, out);
    } else {
      const n = item;
      const kc = this.nhwcShifts(j, n);
      const r0 = u * w.rows, rows = Math.min(w.rows, j.HxW - r0);
      this.f64.fill(0, out >>> 3, (out >>> 3) + 2 * j.C);
      const p = j.x + (n * j.HxW + r0) * j.C * eb;
      if (j.precision === "f32") this.k.stats_rows_f32(p, rows, j.C, kc, out);
      else this.k.stats_rows_f64(p, rows, j.C, kc, out);
    }
  }

  /** NHWC: per-channel shift array of sample n (its group's K), in the item's scratch. */
  private nhwcShifts(j: Job, n: number): number {
    const w = workLayout(j);
    const ptr = j.perItem + n * w.perItemBytes;
    const base = ptr >>> 3;
    for (let g = 0; g < j.G; g++) {
      const K = this.shift(j, n, g);
      this.f64.fill(K, base + g * j.D, base + (g + 1) * j.D);
    }
    return ptr;
  }

  /** Combine an item's partials into mean/rstd (fixed order: channel, then block / row unit). */
  finalizeStats(j: Job, w: Layout2, item: number): void {
    this.views();
    const f = this.f64;
    const M = j.D * j.HxW;
    const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles;
    const groups = j.layout === "nchw" ? [item % j.G] : Array.from({ length: j.G }, (_, g) => g);
    const n = j.layout === "nchw" ? Math.floor(item / j.G) : item;
    for (const g of groups) {
      let s1 = 0, s2 = 0;
      if (j.layout === "nchw") {
        for (let u = 0; u < w.unitsPerItem; u++) {
          s1 += f[base + 2 * u];
          s2 += f[base + 2 * u + 1];
        }
      } else {
        for (let c = g * j.D; c < (g + 1) * j.D; c++) {
          let c1 = 0, c2 = 0;
          for (let u = 0; u < w.unitsPerItem; u++) {
            c1 += f[base + u * 2 * j.C + c];
            c2 += f[base + u * 2 * j.C + j.C + c];
          }
          s1 += c1;
          s2 += c2;
        }
      }
      const K = this.shift(j, n, g);
      let mean: number, rstd: number;
      if (M === 0) {
        mean = NaN;
        rstd = NaN;
      } else {
        const m1 = s1 / M;
        mean = K + m1;
        const variance = Math.max(0, s2 / M - m1 * m1);
        rstd = 1 / Math.sqrt(variance + j.eps);
      }
      f[(j.mean >>> 3) + n * j.G + g] = mean;
      f[(j.rstd >>> 3) + n * j.G + g] = rstd;
    }
  }

  // ------------------------------------------------------------------ forward

  /** NHWC: per-channel coefficients of sample n for the forward normalisation. */
  prepareNormNHWC(j: Job, n: number): void {
    this.views();
    const w = workLayout(j);
    const ptr = j.perItem + n * w.perItemBytes;
    const C = j.C;
    for (let c = 0; c < C; c++) {
      const g = Math.floor(c / j.D);
      const mean = this.f64[(j.mean >>> 3) + n * j.G + g];
      const rstd = this.f64[(j.rstd >>> 3) + n * j.G + g];
      const a = rstd * this.f64[(j.gamma >>> 3) + c];
      const b = this.f64[(j.beta >>> 3) + c];
      if (j.precision === "f32") {
        const q = ptr >>> 2;
        const [hi, lo] = splitF32(mean);
        this.f32[q + c] = hi;
        this.f32[q + C + c] = lo;
        this.f32[q + 2 * C + c] = a;
        this.f32[q + 3 * C + c] = b;
      } else {
        const q = ptr >>> 3;
        this.f64[q + c] = mean;
        this.f64[q + C + c] = a;
        this.f64[q + 2 * C + c] = b;
      }
    }
  }

  normUnit(j: Job, w: Layout2, item: number, u: number): void {
    this.views();
    const eb = this.elemBytes(j);
    if (j.layout === "nchw") {
      const n = Math.floor(item / j.G), g = item % j.G;
      const c = g * j.D + Math.floor(u / w.blocks), b = u % w.blocks;
      const start = b * BLOCK, len = Math.min(BLOCK, j.HxW - start);
      const off = ((n * j.C + c) * j.HxW + start) * eb;
      const mean = this.f64[(j.mean >>> 3) + item];
      const rstd = this.f64[(j.rstd >>> 3) + item];
      const a = rstd * this.f64[(j.gamma >>> 3) + c];
      const beta = this.f64[(j.beta >>> 3) + c];
      if (j.precision === "f32") {
        const [hi, lo] = splitF32(mean);
        this.k.norm_run_f32(j.x + off, j.y + off, len, hi, lo, a, beta);
      } else {
        this.k.norm_run_f64(j.x + off, j.y + off, len, mean, a, beta);
      }
    } else {
      const r0 = u * w.rows, rows = Math.min(w.rows, j.HxW - r0);
      const off = (item * j.HxW + r0) * j.C * eb;
      const coef = j.perItem + item * w.perItemBytes;
      if (j.precision === "f32") this.k.norm_rows_f32(j.x + off, j.y + off, rows, j.C, coef);
      else this.k.norm_rows_f64(j.x + off, j.y + off, rows, j.C, coef);
    }
  }

  /** Items [i0, i1) from start to end: each item's data makes one trip through memory. */
  forwardItems(j: Job, i0: number, i1: number): void {
    const w = workLayout(j);
    for (let item = i0; item < i1; item++) {
      for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, w, item, u);
      this.finalizeStats(j, w, item);
      if (j.layout === "nhwc") this.prepareNormNHWC(j, item);
      for (let u = 0; u < w.unitsPerItem; u++) this.normUnit(j, w, item, u);
    }
  }

  // ------------------------------------------------------------------ backward

  /** Internal gradients of one unit: Σ dy·(x − mean), Σ dy. */
  gradUnit(j: Job, w: Layout2, item: number, u: number): void {
    this.views();
    const out = j.partials + (item * w.unitsPerItem + u) * w.partialDoubles * 8;
    const eb = this.elemBytes(j);
    if (j.layout === "nchw") {
      const n = Math.floor(item / j.G), g = item % j.G;
      const c = g * j.D + Math.floor(u / w.blocks), b = u % w.blocks;
      const start = b * BLOCK, len = Math.min(BLOCK, j.HxW - start);
      const off = ((n * j.C + c) * j.HxW + start) * eb;
      const mean = this.f64[(j.mean >>> 3) + n * j.G + g];
      if (j.precision === "f32") this.k.grad_run_f32(j.dy + off, j.x + off, len, mean, out);
      else this.k.grad_run_f64(j.dy + off, j.x + off, len, mean, out);
    } else {
      const n = item;
      const r0 = u * w.rows, rows = Math.min(w.rows, j.HxW - r0);
      const off = (n * j.HxW + r0) * j.C * eb;
      const meanc = this.nhwcMeans(j, n);
      this.f64.fill(0, out >>> 3, (out >>> 3) + 2 * j.C);
      if (j.precision === "f32") this.k.grad_rows_f32(j.dy + off, j.x + off, rows, j.C, meanc, out);
      else this.k.grad_rows_f64(j.dy + off, j.x + off, rows, j.C, meanc, out);
    }
  }

  /** NHWC: per-channel copy of the group means of sample n, in the item's scratch. */
  private nhwcMeans(j: Job, n: number): number {
    const w = workLayout(j);
    const ptr = j.perItem + n * w.perItemBytes;
    const base = ptr >>> 3;
    for (let g = 0; g < j.G; g++) {
      this.f64.fill(this.f64[(j.mean >>> 3) + n * j.G + g], base + g * j.D, base + (g + 1) * j.D);
    }
    return ptr;
  }

  /** Combine an item's gradient partials into ds/db per (n, c) (fixed order). */
  finalizeGrad(j: Job, w: Layout2, item: number): void {
    this.views();
    const f = this.f64;
    const base = (j.partials >>> 3) + item * w.unitsPerItem * w.partialDoubles;
    if (j.layout === "nchw") {
      const n = Math.floor(item / j.G), g = item % j.G;
      for (let d = 0; d < j.D; d++) {
        let s = 0, t = 0;
        for (let b = 0; b < w.blocks; b++) {
          s += f[base + 2 * (d * w.blocks + b)];
          t += f[base + 2 * (d * w.blocks + b) + 1];
        }
        const c = g * j.D + d;
        f[(j.ds >>> 3) + n * j.C + c] = s;
        f[(j.db >>> 3) + n * j.C + c] = t;
      }
    } else {
      const n = item;
      for (let c = 0; c < j.C; c++) {
        let s = 0, t = 0;
        for (let u = 0; u < w.unitsPerItem; u++) {
          s += f[base + u * 2 * j.C + c];
          t += f[base + u * 2 * j.C + j.C + c];
        }
        f[(j.ds >>> 3) + n * j.C + c] = s;
        f[(j.db >>> 3) + n * j.C + c] = t;
      }
    }
  }

  /**
   * Input-backward coefficients of group (n, g): dx = A_c·dy + B·(x − mean) + C0 with
   *   A_c = rstd·γ_c,  B = −rstd³·Σγ·ds / M,  C0 = −rstd·Σγ·db / M.
   */
  private dxCoefficients(j: Job, n: number, g: number): { B: number; C0: number; mean: number; rstd: number } {
    const f = this.f64;
    const M = j.D * j.HxW;
    let s1 = 0, s2 = 0;
    for (let c = g * j.D; c < (g + 1) * j.D; c++) {
      const gam = f[(j.gamma >>> 3) + c];
      s1 += gam * f[(j.ds >>> 3) + n * j.C + c];
      s2 += gam * f[(j.db >>> 3) + n * j.C + c];
    }
    const mean = f[(j.mean >>> 3) + n * j.G + g];
    const rstd = f[(j.rstd >>> 3) + n * j.G + g];
    return { B: (-rstd * rstd * rstd * s1) / M, C0: (-rstd * s2) / M, mean, rstd };
  }

  prepareDxNHWC(j: Job, n: number): void {
    this.views();
    const w = workLayout(j);
    const ptr = j.perItem + n * w.perItemBytes;
    const C = j.C;
    for (let g = 0; g < j.G; g++) {
      const { B, C0, mean, rstd } = this.dxCoefficients(j, n, g);
      const [hi, lo] = splitF32(mean);
      for (let c = g * j.D; c < (g + 1) * j.D; c++) {
        const A = rstd * this.f64[(j.gamma >>> 3) + c];
        if (j.precision === "f32") {
          const q = ptr >>> 2;
          this.f32[q + c] = A;
          this.f32[q + C + c] = B;
          this.f32[q + 2 * C + c] = C0;
          this.f32[q + 3 * C + c] = hi;
          this.f32[q + 4 * C + c] = lo;
        } else {
          const q = ptr >>> 3;
          this.f64[q + c] = A;
          this.f64[q + C + c] = B;
          this.f64[q + 2 * C + c] = C0;
          this.f64[q + 3 * C + c] = mean;
        }
      }
    }
  }

  dxUnit(j: Job, w: Layout2, item: number, u: number): void {
    this.views();
    const eb = this.elemBytes(j);
    if (j.layout === "nchw") {
      const n = Math.floor(item / j.G), g = item % j.G;
      const c = g * j.D + Math.floor(u / w.blocks), b = u % w.blocks;
      const start = b * BLOCK, len = Math.min(BLOCK, j.HxW - start);
      const off = ((n * j.C + c) * j.HxW + start) * eb;
      const { B, C0, mean, rstd } = this.dxCoefficients(j, n, g);
      const A = rstd * this.f64[(j.gamma >>> 3) + c];
      if (j.precision === "f32") {
        const [hi, lo] = splitF32(mean);
        this.k.dx_run_f32(j.dy + off, j.x + off, j.dx + off, len, A, B, C0, hi, lo);
      } else {
        this.k.dx_run_f64(j.dy + off, j.x + off, j.dx + off, len, A, B, C0, mean);
      }
    } else {
      const r0 = u * w.rows, rows = Math.min(w.rows, j.HxW - r0);
      const off = (item * j.HxW + r0) * j.C * eb;
      const coef = j.perItem + item * w.perItemBytes;
      if (j.precision === "f32") this.k.dx_rows_f32(j.dy + off, j.x + off, j.dx + off, rows, j.C, coef);
      else this.k.dx_rows_f64(j.dy + off, j.x + off, j.dx + off, rows, j.C, coef);
    }
  }

  backwardItems(j: Job, i0: number, i1: number): void {
    const w = workLayout(j);
    for (let item = i0; item < i1; item++) {
      if (!j.statsGiven) {
        for (let u = 0; u < w.unitsPerItem; u++) this.statsUnit(j, w, item, u);
        this.finalizeStats(j, w, item);
      }
      for (let u = 0; u < w.unitsPerItem; u++) this.gradUnit(j, w, item, u);
      this.finalizeGrad(j, w, item);
      if (!j.wantDx) continue;
      if (j.layout === "nhwc") this.prepareDxNHWC(j, item);
      for (let u = 0; u < w.unitsPerItem; u++) this.dxUnit(j, w, item, u);
    }
  }
}

/**
 * Gamma/beta backward: dγ_c = Σ_n rstd(n, g)·ds(n, c), dβ_c = Σ_n db(n, c), summed over n in order
 * (callers streaming slices along N continue the same running sums, so the order never changes).
 */
export function gammaBetaBackward(
  j: Geometry,
  ds: Float64Array,
  db: Float64Array,
  rstd: Float64Array,
  dgamma: Float64Array,
  dbeta: Float64Array,
): void {
  for (let n = 0; n < j.N; n++) {
    for (let c = 0; c < j.C; c++) {
      const g = Math.floor(c / j.D);
      dgamma[c] += rstd[n * j.G + g] * ds[n * j.C + c];
      dbeta[c] += db[n * j.C + c];
    }
  }
}
