/**
 * gradcheck: the production backward (dX, dgamma, dbeta from the WebAssembly kernels) against
 * central finite differences of the float64 reference forward, for the loss L = Σ dY·Y.
 *
 * Perturbing x_i changes only its own (n, g) group's outputs, and γ_c or β_c only channel c's
 * groups, so each difference re-runs the reference forward on just the affected groups (each as a
 * one-group tensor of D channels): exact for L, and cheap enough to check hundreds of entries of
 * large tensors. Entries are sampled (reproducibly from the seed) when there are more than
 * `samples` of them.
 */
import { type Dims, flatIndex } from "../core/dims.js";
import type { Engine } from "../kernels/engine.js";
import { gammaBetaBackward } from "../kernels/gamma-beta.js";
import type { Precision } from "../kernels/plan.js";
import { referenceForward, referenceStats } from "../oracle/reference.js";
import { unravel } from "../analysis/chunks.js";
import { sampleIndices } from "./random.js";

export interface GradcheckInputs {
  d: Dims;
  /** X's shape as stored (for coordinates in the report). */
  shape: readonly number[];
  /** Values as stored (already rounded to the input dtype). */
  x: Float64Array;
  dy: Float64Array;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  eps: number;
  precision: Precision;
}

export interface OutputCheck {
  max_abs_error: number;
  max_rel_error: number;
  passed: boolean;
  checked: number;
  of: number;
  /** Coordinates of the worst entry in the output's own index order (null when none was checked). */
  worst_index: number[] | null;
}

export interface GradcheckResult {
  passed: boolean;
  outputs: { dX: OutputCheck; dgamma?: OutputCheck; dbeta?: OutputCheck };
}

/** Default tolerances by input dtype (analytic in that precision vs float64 differences). */
export function defaultTolerances(dtype: string): { atol: number; rtol: number } {
  if (dtype === "float64") return { atol: 1e-6, rtol: 1e-5 };
  if (dtype === "float16") return { atol: 5e-2, rtol: 5e-2 };
  return { atol: 1e-3, rtol: 1e-3 };
}

/** The production backward with statistics recomputed: dX, dgamma, dbeta as float64 arrays. */
async function production(engine: Engine, inp: GradcheckInputs): Promise<{ dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array }> {
  const { d, precision } = inp;
  const n = inp.x.length;
  const eb = precision === "f32" ? 4 : 8;
  const mark = engine.arena.used;
  try {
    const px = engine.arena.alloc(n * eb), pdy = engine.arena.alloc(n * eb), pdx = engine.arena.alloc(n * eb);
    const view = (p: number) => (precision === "f32" ? engine.arena.f32(p, n) : engine.arena.f64(p, n));
    view(px).set(inp.x);
    view(pdy).set(inp.dy);
    const geo = { ...d, precision };
    const r = await engine.backward(geo, inp.eps, { dy: pdy, x: px, dx: pdx }, inp.gamma, null);
    const dgamma = new Float64Array(d.C), dbeta = new Float64Array(d.C);
    gammaBetaBackward(geo, r.ds, r.db, r.rstd, dgamma, dbeta);
    return { dx: Float64Array.from(view(pdx)), dgamma, dbeta };
  } finally {
    engine.arena.release(mark);
  }
}

/** One group's values and upstream gradients, as a one-group NCHW tensor of D channels. */
interface GroupData {
  x: Float64Array;
  dy: Float64Array;
}

/** Values per reference evaluation budget: keeps a check to seconds on large tensors. */
const WORK_BUDGET = 1e8;

class Groups {
  private cache = new Map<number, GroupData>();
  readonly sub: Dims;
  constructor(private readonly inp: GradcheckInputs) {
    const d = inp.d;
    this.sub = { N: 1, C: d.D, HxW: d.HxW, G: 1, D: d.D, layout: "nchw" };
  }

  data(n: number, g: number): GroupData {
    const key = n * this.inp.d.G + g;
    let v = this.cache.get(key);
    if (!v) {
      const d = this.inp.d;
      const M = d.D * d.HxW;
      v = { x: new Float64Array(M), dy: new Float64Array(M) };
      for (let k = 0; k < d.D; k++) {
        for (let s = 0; s < d.HxW; s++) {
          const i = flatIndex(d, n, g * d.D + k, s);
          v.x[k * d.HxW + s] = this.inp.x[i];
          v.dy[k * d.HxW + s] = this.inp.dy[i];
        }
      }
      if (this.cache.size > 64) this.cache.clear();
      this.cache.set(key, v);
    }
    return v;
  }

  /** Σ dy·y over group g's values x, by the reference forward on that group alone. */
  loss(g: number, x: Float64Array, dy: Float64Array, gamma: Float64Array | null, beta: Float64Array | null): number {
    const D = this.inp.d.D;
    const f = referenceForward(x, this.sub, gamma ? gamma.subarray(g * D, (g + 1) * D) : null, beta ? beta.subarray(g * D, (g + 1) * D) : null, this.inp.eps);
    let L = 0;
    for (let i = 0; i < x.length; i++) L += dy[i] * f.y[i];
    return L;
  }
}

/** Central-difference step: 1e-4 of the scale the loss varies on (truncation ~1e-8 relative). */
function step(scale: number, v: number): number {
  return 1e-4 * (scale > 0 && Number.isFinite(scale) ? scale : Math.max(Math.abs(v), 1e-3));
}

function check(analytic: Float64Array, numeric: Map<number, number>, shape: readonly number[], atol: number, rtol: number): OutputCheck {
  const of = shape.reduce((a, b) => a * b, 1);
  let maxAbs = 0, maxRel = 0, passed = true;
  let worst: number | null = null, worstExcess = -Infinity;
  for (const [i, num] of numeric) {
    const a = analytic[i];
    const abs = Math.abs(a - num);
    const err = Number.isNaN(abs) ? Infinity : abs;
    const rel = err === 0 ? 0 : err / Math.max(Math.abs(num), Number.MIN_VALUE);
    maxAbs = Math.max(maxAbs, err);
    maxRel = Math.max(maxRel, rel);
    const excess = err - (atol + rtol * Math.abs(num));
    if (!(excess <= 0)) passed = false;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  return { max_abs_error: maxAbs, max_rel_error: maxRel, passed, checked: numeric.size, of, worst_index: worst === null ? null : unravel(worst, shape) };
}

export async function gradcheck(engine: Engine, inp: GradcheckInputs, opts: { samples: number; seed: number; atol: number; rtol: number }): Promise<GradcheckResult> {
  const { d } = inp;
  const prod = await production(engine, inp);
  const groups = new Groups(inp);
  const stats = referenceStats(inp.x, d, inp.eps);
  const M = d.D * d.HxW;

  // dX: perturb x_i; only its group's outputs move. Step on the group's spread.
  const numericX = new Map<number, number>();
  const xSamples = sampleIndices(inp.x.length, Math.min(opts.samples, Math.max(1, Math.floor(WORK_BUDGET / (2 * Math.max(1, M))))), opts.seed);
  for (const i of xSamples) {
    const { n, c, s } = locate(d, i);
    const g = Math.floor(c / d.D);
    const sigma = Math.sqrt(1 / stats.rstd[n * d.G + g] ** 2 - inp.eps);
    const data = groups.data(n, g);
    const k = (c - g * d.D) * d.HxW + s;
    const v = data.x[k];
    const h = step(sigma, v);
    const xs = Float64Array.from(data.x);
    xs[k] = v + h;
    const up = groups.loss(g, xs, data.dy, inp.gamma, inp.beta);
    xs[k] = v - h;
    const down = groups.loss(g, xs, data.dy, inp.gamma, inp.beta);
    numericX.set(i, (up - down) / (2 * h));
  }
  const outputs: GradcheckResult["outputs"] = { dX: check(prod.dx, numericX, inp.shape, opts.atol, opts.rtol) };

  if (inp.gamma && inp.beta) {
    // γ_c, β_c: channel c's group in every sample moves
    const perChannel = 2 * 2 * d.N * Math.max(1, M);
    const channels = sampleIndices(d.C, Math.min(opts.samples, Math.max(1, Math.floor(WORK_BUDGET / perChannel))), opts.seed + 1);
    for (const which of ["dgamma", "dbeta"] as const) {
      const param = Float64Array.from(which === "dgamma" ? inp.gamma : inp.beta);
      const numeric = new Map<number, number>();
      for (const c of channels) {
        const g = Math.floor(c / d.D);
        const v = param[c];
        const h = step(Math.max(Math.abs(v), 1), v);
        const loss = () => {
          let L = 0;
          for (let n = 0; n < d.N; n++) {
            const data = groups.data(n, g);
            L += which === "dgamma" ? groups.loss(g, data.x, data.dy, param, inp.beta) : groups.loss(g, data.x, data.dy, inp.gamma, param);
          }
          return L;
        };
        param[c] = v + h;
        const up = loss();
        param[c] = v - h;
        const down = loss();
        param[c] = v;
        numeric.set(c, (up - down) / (2 * h));
      }
      outputs[which] = check(which === "dgamma" ? prod.dgamma : prod.dbeta, numeric, [d.C], opts.atol, opts.rtol);
    }
  }
  const passed = Object.values(outputs).every((o) => o!.passed);
  return { passed, outputs };
}

/** (n, c, s) of flat index i. */
function locate(d: Dims, i: number): { n: number; c: number; s: number } {
  const n = Math.floor(i / (d.C * d.HxW));
  const r = i - n * d.C * d.HxW;
  return d.layout === "nchw" ? { n, c: Math.floor(r / d.HxW), s: r % d.HxW } : { n, c: r % d.C, s: Math.floor(r / d.C) };
}
