/**
 * gradcheck: the production backward (dX, dgamma, dbeta from the WebAssembly kernels, streamed as
 * the file commands stream them) against central finite differences of the float64 reference
 * forward, for the loss L = Σ dY·Y.
 *
 * Perturbing x_i changes only its own (n, g) group's outputs, and γ_c or β_c only channel c's
 * groups, so each difference re-evaluates the reference on just the affected groups: exact for L, and
 * cheap enough to check hundreds of entries of large tensors. Entries are sampled (reproducibly from
 * the seed) when there are more than `samples` of them. Memory is bounded: groups are read from the
 * inputs one at a time, and the work yields to the event loop between entries, so a signal ends it.
 */
import { unravel } from "../analysis/chunks.js";
import { type Activation, activationCode } from "../core/activation.js";
import { type Dims, flatIndex } from "../core/dims.js";
import type { FloatArray } from "../core/dtype.js";
import type { TensorSink, TensorSource } from "../io/tensor.js";
import type { Engine } from "../kernels/engine.js";
import type { Precision } from "../kernels/plan.js";
import { activate } from "../oracle/activation.js";
import { streamBackward } from "../pipeline/backward.js";
import { sampleIndices } from "./random.js";

export interface GradcheckInputs {
  d: Dims;
  /** X's shape as stored (for coordinates in the report). */
  shape: readonly number[];
  /** Values as stored, in their dtype. */
  x: TensorSource;
  dy: TensorSource;
  gamma: Float64Array | null;
  beta: Float64Array | null;
  eps: number;
  /** The loss is Σ dY·act(GroupNorm(X)) (default: no activation). */
  activation?: Activation | null;
  precision: Precision;
  /** Bytes the production backward may stream through. */
  memoryBudget: number;
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

/** Values per reference evaluation budget: keeps a check to seconds on large tensors. */
const WORK_BUDGET = 1e8;

/** The bytes gradcheck holds beyond the production pipeline: two groups of x and dy in float64. */
export function groupBytes(d: Dims): number {
  return 2 * 2 * 8 * d.D * d.HxW;
}

/** A sink that keeps only the values at `wanted` flat indices (the sampled dX entries). */
class SampledSink implements TensorSink {
  readonly values = new Map<number, number>();
  private at = 0;
  private next = 0;
  constructor(
    readonly dtype: TensorSink["dtype"],
    readonly shape: readonly number[],
    private readonly wanted: number[],
  ) {}
  async write(v: FloatArray): Promise<void> {
    const end = this.at + v.length;
    while (this.next < this.wanted.length && this.wanted[this.next] < end) {
      const i = this.wanted[this.next++];
      this.values.set(i, v[i - this.at]);
    }
    this.at = end;
  }
}

class VectorSink implements TensorSink {
  readonly values: Float64Array;
  private at = 0;
  constructor(readonly shape: readonly number[]) {
    this.values = new Float64Array(shape[0]);
  }
  readonly dtype = "float64" as const;
  async write(v: FloatArray): Promise<void> {
    this.values.set(v, this.at);
    this.at += v.length;
  }
}

/** Group (n, g)'s values of a source, channel-major (k·HxW + s), read in bounded pieces. */
async function readGroup(src: TensorSource, d: Dims, n: number, g: number): Promise<Float64Array> {
  const M = d.D * d.HxW;
  const out = new Float64Array(M);
  if (d.layout === "nchw") {
    await src.read(flatIndex(d, n, g * d.D, 0), M, out);
    return out;
  }
  // NHWC: D channels of each position, at stride C; read a block of positions at a time
  const rows = Math.max(1, Math.floor((1 << 20) / Math.max(1, d.C)));
  const buf = new Float64Array(Math.min(rows, d.HxW) * d.C);
  for (let s0 = 0; s0 < d.HxW; s0 += rows) {
    const r = Math.min(rows, d.HxW - s0);
    const view = buf.subarray(0, r * d.C);
    await src.read(flatIndex(d, n, 0, s0), r * d.C, view);
    for (let s = 0; s < r; s++) for (let k = 0; k < d.D; k++) out[k * d.HxW + s0 + s] = view[s * d.C + g * d.D + k];
  }
  return out;
}

/**
 * Σ dy·y over one group, by the float64 reference: two-pass mean and biased variance, then
 * y = (x − mean)·rstd·γ + β (through the activation, act of that), the same operations in the same
 * order as oracle/reference.ts.
 */
function groupLoss(x: Float64Array, dy: Float64Array, D: number, HxW: number, gamma: Float64Array | null, beta: Float64Array | null, c0: number, eps: number, act: Activation | null): number {
  const M = x.length;
  let sum = 0;
  for (let i = 0; i < M; i++) sum += x[i];
  const m = sum / M;
  let sq = 0;
  for (let i = 0; i < M; i++) sq += (x[i] - m) * (x[i] - m);
  const r = 1 / Math.sqrt(sq / M + eps);
  let L = 0;
  for (let k = 0; k < D; k++) {
    const w = gamma ? gamma[c0 + k] : 1, b = beta ? beta[c0 + k] : 0;
    for (let s = 0, i = k * HxW; s < HxW; s++, i++) {
      const pre = (x[i] - m) * r * w + b;
      L += dy[i] * (act ? activate(act, pre) : pre);
    }
  }
  return L;
}

/** Central-difference step: 1e-4 of the scale the loss varies on (truncation ~1e-8 relative). */
function step(scale: number, v: number): number {
  return 1e-4 * (scale > 0 && Number.isFinite(scale) ? scale : Math.max(Math.abs(v), 1e-3));
}

function check(analytic: (i: number) => number, numeric: Map<number, number>, shape: readonly number[], atol: number, rtol: number): OutputCheck {
  const of = shape.reduce((a, b) => a * b, 1);
  let maxAbs = 0, maxRel = 0, passed = true;
  let worst: number | null = null, worstExcess = -Infinity;
  for (const [i, num] of numeric) {
    const a = analytic(i);
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

/** Let the event loop run (a signal handler, say) between pieces of synchronous work. */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The (n, g) group of flat index i, as n·G + g. */
function groupOf(d: Dims, i: number): number {
  const { n, c } = locate(d, i);
  return n * d.G + Math.floor(c / d.D);
}

/** (n, c, s) of flat index i. */
function locate(d: Dims, i: number): { n: number; c: number; s: number } {
  const n = Math.floor(i / (d.C * d.HxW));
  const r = i - n * d.C * d.HxW;
  return d.layout === "nchw" ? { n, c: Math.floor(r / d.HxW), s: r % d.HxW } : { n, c: r % d.C, s: Math.floor(r / d.C) };
}

export async function gradcheck(engine: Engine, inp: GradcheckInputs, opts: { samples: number; seed: number; atol: number; rtol: number }): Promise<GradcheckResult> {
  const { d } = inp;
  const M = d.D * d.HxW;
  const size = d.N * d.C * d.HxW;
  const xSamples = sampleIndices(size, Math.min(opts.samples, Math.max(1, Math.floor(WORK_BUDGET / (2 * Math.max(1, M))))), opts.seed);
  // the production backward, streamed: dX kept only at the sampled entries, statistics recomputed
  const compute = inp.precision === "f32" ? "float32" : "float64";
  const dxSink = new SampledSink(compute, inp.shape, xSamples);
  const dgSink = new VectorSink([d.C]), dbSink = new VectorSink([d.C]);
  const act = inp.activation ?? null;
  await streamBackward(engine, { dy: inp.dy, x: inp.x, dims: d, gamma: inp.gamma, stats: null, eps: inp.eps, act: activationCode(act), beta: inp.beta, memoryBudget: inp.memoryBudget, sinks: { dx: dxSink, dgamma: dgSink, dbeta: dbSink } });

  // dX: perturb x_i; only its group's outputs move. Step on the group's spread.
  const numericX = new Map<number, number>();
  let cached: { key: number; x: Float64Array; dy: Float64Array } = { key: -1, x: new Float64Array(0), dy: new Float64Array(0) };
  const group = async (n: number, g: number) => {
    const key = n * d.G + g;
    if (cached.key !== key) cached = { key, x: await readGroup(inp.x, d, n, g), dy: await readGroup(inp.dy, d, n, g) };
    return cached;
  };
  // by group, so each group is read once
  const byGroup = [...xSamples].sort((a, b) => groupOf(d, a) - groupOf(d, b) || a - b);
  for (const i of byGroup) {
    const { n, c, s } = locate(d, i);
    const g = Math.floor(c / d.D);
    const data = await group(n, g);
    const k = (c - g * d.D) * d.HxW + s;
    let mean = 0;
    for (let j = 0; j < M; j++) mean += data.x[j];
    mean /= M;
    let sq = 0;
    for (let j = 0; j < M; j++) sq += (data.x[j] - mean) * (data.x[j] - mean);
    const v = data.x[k];
    const h = step(Math.sqrt(sq / M), v);
    data.x[k] = v + h;
    const up = groupLoss(data.x, data.dy, d.D, d.HxW, inp.gamma, inp.beta, g * d.D, inp.eps, act);
    data.x[k] = v - h;
    const down = groupLoss(data.x, data.dy, d.D, d.HxW, inp.gamma, inp.beta, g * d.D, inp.eps, act);
    data.x[k] = v;
    numericX.set(i, (up - down) / (2 * h));
    await breathe();
  }
  const outputs: GradcheckResult["outputs"] = { dX: check((i) => dxSink.values.get(i)!, numericX, inp.shape, opts.atol, opts.rtol) };

  if (inp.gamma && inp.beta) {
    // γ_c, β_c: channel c's group in every sample moves
    const perChannel = 2 * 2 * d.N * Math.max(1, M);
    const channels = sampleIndices(d.C, Math.min(opts.samples, Math.max(1, Math.floor(WORK_BUDGET / perChannel))), opts.seed + 1);
    const numeric = { dgamma: new Map<number, number>(), dbeta: new Map<number, number>() };
    const gamma = Float64Array.from(inp.gamma), beta = Float64Array.from(inp.beta);
    const steps = new Map(channels.map((c) => [c, { dgamma: step(Math.max(Math.abs(gamma[c]), 1), gamma[c]), dbeta: step(Math.max(Math.abs(beta[c]), 1), beta[c]) }]));
    const diffs = new Map(channels.map((c) => [c, { dgamma: 0, dbeta: 0 }]));
    // by group: each (n, g) group is read once for all of its sampled channels
    const groups = [...new Set(channels.map((c) => Math.floor(c / d.D)))];
    for (const g of groups) {
      const mine = channels.filter((c) => Math.floor(c / d.D) === g);
      for (let n = 0; n < d.N; n++) {
        const data = await group(n, g);
        const L = () => groupLoss(data.x, data.dy, d.D, d.HxW, gamma, beta, g * d.D, inp.eps, act);
        for (const c of mine) {
          for (const [which, param] of [["dgamma", gamma], ["dbeta", beta]] as const) {
            const v = param[c], h = steps.get(c)![which];
            param[c] = v + h;
            const up = L();
            param[c] = v - h;
            const down = L();
            param[c] = v;
            diffs.get(c)![which] += up - down;
          }
        }
        await breathe();
      }
    }
    for (const c of channels) {
      numeric.dgamma.set(c, diffs.get(c)!.dgamma / (2 * steps.get(c)!.dgamma));
      numeric.dbeta.set(c, diffs.get(c)!.dbeta / (2 * steps.get(c)!.dbeta));
    }
    outputs.dgamma = check((c) => dgSink.values[c], numeric.dgamma, [d.C], opts.atol, opts.rtol);
    outputs.dbeta = check((c) => dbSink.values[c], numeric.dbeta, [d.C], opts.atol, opts.rtol);
  }
  const passed = Object.values(outputs).every((o) => o!.passed);
  return { passed, outputs };
}
