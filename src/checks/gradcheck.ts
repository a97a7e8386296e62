/**
 * gradcheck: the production backward (dX, dgamma, dbeta from the WebAssembly kernels, streamed as
 * the file commands stream them) against central finite differences of the float64 reference
 * forward, for the loss L = Σ dY·Y.
 *
 * Perturbing x_i changes only its own (n, g) group's outputs, and γ_c or β_c only channel c's
 * groups, so each difference re-evaluates the reference on just the affected groups: exact for L, and
 * cheap enough to check hundreds of entries of large tensors. Entries are sampled (reproducibly from
 * the seed) when there are more than `samples` of them. Memory is bounded: groups are read from the
 * inputs one at a time, each once, in order, for all the entries and channels it serves. γ_c and β_c
 * change only channel c's terms of the sum, so their differences add from channel c on, starting
 * from the unperturbed sum before it: the same additions in the same order as the whole sum. Every loop over a group's values runs in pieces that let the event loop run
 * (pace.ts), so a signal ends the check within milliseconds however large the groups are. Where the
 * loss is not finite at the point (a NaN or Inf in the group, or eps = 0 on a constant group) there
 * is no derivative to compare with: those entries are counted, not compared.
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
import { ACTIVATION_PIECE, type Pacer, PIECE } from "./pace.js";
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
  /** Largest errors over the entries finite on both sides (null when there is none: never Infinity). */
  max_abs_error: number | null;
  max_rel_error: number | null;
  passed: boolean;
  /** Entries sampled. */
  checked: number;
  of: number;
  /** Entries within the tolerance: finite on both sides, |analytic − numeric| ≤ atol + rtol·|numeric|. */
  within: number;
  /** Entries NaN or infinite in the kernel's gradient where the numeric one is finite: each fails the output. */
  nan_mismatches: number;
  /**
   * Entries where the numeric gradient is NaN or infinite: the loss is not finite at the point (a NaN
   * or Inf in the group, or eps = 0 on a constant group), so there is no derivative to compare with.
   * They are not compared; an output with entries but none compared fails.
   */
  not_compared: number;
  /** Coordinates of the worst entry in the output's own index order: a NaN mismatch first, else the largest error over tolerance (null when none was compared). */
  worst_index: number[] | null;
  /** In words: what passed or failed, and where NaN or infinite values were met (never an error of Infinity). */
  message: string;
}

export interface GradcheckResult {
  passed: boolean;
  outputs: { dX: OutputCheck; dgamma?: OutputCheck; dbeta?: OutputCheck };
}

/** Default tolerances by input dtype (analytic in that precision vs float64 differences). */
export function defaultTolerances(dtype: string): { atol: number; rtol: number } {
  if (dtype === "float64") return { atol: 1e-6, rtol: 1e-5 };
  if (dtype === "float16" || dtype === "bfloat16") return { atol: 5e-2, rtol: 5e-2 };
  return { atol: 1e-3, rtol: 1e-3 };
}

/** Values per reference evaluation budget: keeps a check to seconds on large tensors. */
const WORK_BUDGET = 1e8;

/** NHWC: positions read at once (each of C values), and the values one such read spans (through group g's D). */
function nhwcRows(d: Dims): { rows: number; span: number } {
  const rows = Math.max(1, Math.min(d.HxW, Math.floor((1 << 20) / Math.max(1, d.C))));
  return { rows, span: (rows - 1) * d.C + d.D };
}

/** The bytes gradcheck holds beyond the production pipeline: two groups of x and dy in float64 (it holds one of each, in arrays it reuses: the count has room), and the NHWC read buffer. */
export function groupBytes(d: Dims): number {
  return 2 * 2 * 8 * d.D * d.HxW + (d.layout === "nhwc" ? 8 * nhwcRows(d).span : 0);
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

/**
 * Group (n, g)'s values of a source into `out` (D·HxW values), channel-major (k·HxW + s), read in
 * bounded pieces; `rowsBuf` (NHWC files: nhwcRows' span) takes the rows it picks them from.
 */
async function readGroup(src: TensorSource, d: Dims, n: number, g: number, pacer: Pacer, out: Float64Array, rowsBuf: () => Float64Array): Promise<Float64Array> {
  const M = d.D * d.HxW;
  if (d.layout === "nchw") {
    const start = flatIndex(d, n, g * d.D, 0);
    for (let j = 0; j < M; j += 1 << 20) {
      await src.read(start + j, Math.min(1 << 20, M - j), out, j);
      await pacer.pace();
    }
    return out;
  }
  // NHWC: the D channels of each position, at stride C, from channel g·D; a block of positions at a time
  const { rows } = nhwcRows(d);
  const columns = src.readColumns;
  for (let s0 = 0; s0 < d.HxW; s0 += rows) {
    const r = Math.min(rows, d.HxW - s0);
    if (columns) columns(flatIndex(d, n, g * d.D, s0), r, d.C, d.D, out, s0, d.HxW);
    else {
      // a file: read the rows whole (one range), and pick the group's channels out
      const view = rowsBuf().subarray(0, (r - 1) * d.C + d.D);
      await src.read(flatIndex(d, n, g * d.D, s0), view.length, view);
      for (let s = 0; s < r; s++) for (let k = 0; k < d.D; k++) out[k * d.HxW + s0 + s] = view[s * d.C + k];
    }
    await pacer.pace();
  }
  return out;
}

/** Two-pass mean and the sum of squared deviations of a group, as the reference computes them. */
async function moments(x: Float64Array, pacer: Pacer): Promise<{ m: number; sq: number }> {
  const M = x.length;
  let sum = 0;
  for (let i0 = 0; i0 < M; i0 += PIECE) {
    for (let i = i0, end = Math.min(M, i0 + PIECE); i < end; i++) sum += x[i];
    await pacer.pace();
  }
  const m = sum / M;
  let sq = 0;
  for (let i0 = 0; i0 < M; i0 += PIECE) {
    for (let i = i0, end = Math.min(M, i0 + PIECE); i < end; i++) sq += (x[i] - m) * (x[i] - m);
    await pacer.pace();
  }
  return { m, sq };
}

/**
 * Σ dy·y over one group, by the float64 reference: two-pass mean and biased variance, then
 * y = (x − mean)·rstd·γ + β, the same operations in the same order as oracle/reference.ts (in
 * pieces, which changes no sum: each is still taken in index order).
 */
async function groupLoss(x: Float64Array, dy: Float64Array, HxW: number, gamma: Float64Array | null, beta: Float64Array | null, c0: number, eps: number, act: Activation | null, pacer: Pacer): Promise<number> {
  const { m, sq } = await moments(x, pacer);
  return terms(x, dy, HxW, gamma, beta, c0, m, 1 / Math.sqrt(sq / x.length + eps), act, 0, 0, pacer, null);
}

/**
 * The sum of groupLoss from channel k on (value k·HxW), continued from L: the same additions in the
 * same order as the whole sum, which takes them through L = the sum before channel k. `prefix`
 * (D + 1 values), when given, is filled with the sums before each channel (and the whole).
 */
async function terms(x: Float64Array, dy: Float64Array, HxW: number, gamma: Float64Array | null, beta: Float64Array | null, c0: number, m: number, r: number, act: Activation | null, k0: number, L: number, pacer: Pacer, prefix: Float64Array | null): Promise<number> {
  const M = x.length;
  const piece = act ? ACTIVATION_PIECE : PIECE;
  for (let i0 = k0 * HxW; i0 < M; i0 += piece) {
    const i1 = Math.min(M, i0 + piece);
    for (let i = i0; i < i1; ) {
      const k = Math.floor(i / HxW), end = Math.min(i1, (k + 1) * HxW);
      if (prefix && i === k * HxW) prefix[k] = L;
      const w = gamma ? gamma[c0 + k] : 1, b = beta ? beta[c0 + k] : 0;
      if (!act) for (; i < end; i++) L += dy[i] * ((x[i] - m) * r * w + b);
      else for (; i < end; i++) L += dy[i] * activate(act, (x[i] - m) * r * w + b);
    }
    await pacer.pace();
  }
  if (prefix) prefix[prefix.length - 1] = L;
  return L;
}

/** Central-difference step: 1e-4 of the scale the loss varies on (truncation ~1e-8 relative). */
function step(scale: number, v: number): number {
  return 1e-4 * (scale > 0 && Number.isFinite(scale) ? scale : Math.max(Math.abs(v), 1e-3));
}

/** A value as a report says it: NaN, +Inf, -Inf or the number. */
function valueText(v: number): string {
  return Number.isNaN(v) ? "NaN" : v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(Number(v.toPrecision(6)));
}

const coords = (v: number[]) => `(${v.join(", ")})`;

function check(analytic: (i: number) => number, numeric: Map<number, number>, shape: readonly number[], atol: number, rtol: number): OutputCheck {
  const of = shape.reduce((a, b) => a * b, 1);
  let maxAbs = 0, maxRel = 0, finite = 0, within = 0, nanMismatches = 0, notCompared = 0;
  let worst: number | null = null, worstExcess = -Infinity;
  // the lowest index of each kind, for the words
  let nan: { i: number; a: number; num: number } | null = null, skipped: { i: number; a: number; num: number } | null = null;
  for (const [i, num] of numeric) {
    const a = analytic(i);
    if (!Number.isFinite(num)) {
      notCompared++; // the loss is not finite here: nothing to compare the kernel's value with
      if (!skipped || i < skipped.i) skipped = { i, a, num };
      continue;
    }
    if (!Number.isFinite(a)) {
      nanMismatches++;
      if (!nan || i < nan.i) nan = { i, a, num };
      continue;
    }
    const err = Math.abs(a - num);
    const rel = err === 0 ? 0 : err / Math.max(Math.abs(num), Number.MIN_VALUE);
    finite++;
    maxAbs = Math.max(maxAbs, err);
    maxRel = Math.max(maxRel, rel);
    const excess = err - (atol + rtol * Math.abs(num));
    if (excess <= 0) within++;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  const checked = numeric.size;
  const compared = checked - notCompared;
  const passed = within === compared && !(notCompared > 0 && compared === 0);
  const words: string[] = [];
  if (compared === 0 && notCompared > 0) words.push(`no entry compared (${checked} checked)`);
  else words.push(`${within} of ${checked} entries within tolerance${finite > within ? `, ${finite - within} beyond it` : ""}`);
  if (nan) {
    const more = nanMismatches > 1 ? ` (${nanMismatches} entries are NaN or infinite in the analytic gradient only)` : "";
    words.push(`${valueText(nan.a)} in the analytic gradient at ${coords(unravel(nan.i, shape))}, where the numeric one is ${valueText(nan.num)}${more}`);
  }
  if (skipped) {
    const both = Number.isNaN(skipped.a) && Number.isNaN(skipped.num)
      ? `NaN in both the analytic and the numeric gradient at ${coords(unravel(skipped.i, shape))}`
      : `${valueText(skipped.num)} in the numeric gradient at ${coords(unravel(skipped.i, shape))} (the analytic one is ${valueText(skipped.a)})`;
    const more = notCompared > 1 ? ` (${notCompared} entries not compared)` : "";
    words.push(`${both}: the loss is not finite there (a NaN or Inf in the inputs, or eps = 0 on a constant group), so it has no derivative to compare with${more}`);
  }
  return {
    max_abs_error: finite ? maxAbs : null,
    max_rel_error: finite ? maxRel : null,
    passed,
    checked,
    of,
    within,
    nan_mismatches: nanMismatches,
    not_compared: notCompared,
    worst_index: nan ? unravel(nan.i, shape) : worst === null ? null : unravel(worst, shape),
    message: words.join("; "),
  };
}

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

/**
 * The groups n·G + g, in order, that either list names: `xKeys` (sorted groups), and the groups `gs`
 * (sorted) of every sample. Samples with neither are skipped, not visited (N may be large).
 */
function* groupsInOrder(d: Dims, xKeys: number[], gs: number[]): Generator<number> {
  let at = 0;
  for (let n = gs.length ? 0 : Math.floor((xKeys[0] ?? d.N * d.G) / d.G); n < d.N; ) {
    const mine: number[] = [];
    while (at < xKeys.length && xKeys[at] < (n + 1) * d.G) mine.push(xKeys[at++] - n * d.G);
    for (const g of [...new Set([...mine, ...gs])].sort((a, b) => a - b)) yield n * d.G + g;
    n = gs.length ? n + 1 : Math.floor((xKeys[at] ?? d.N * d.G) / d.G);
  }
}

/** The central difference of the loss in x_i, on its group (x and dy, channel-major) with the group's moments. */
async function entryDifference(d: Dims, x: Float64Array, dy: Float64Array, inp: GradcheckInputs, base: { m: number; sq: number }, i: number, pacer: Pacer): Promise<number> {
  const M = x.length;
  const rstd = 1 / Math.sqrt(base.sq / M + inp.eps);
  // eps = 0 on a constant group, or a NaN or Inf in it: the loss is not finite here, and has no derivative
  if (!Number.isFinite(rstd)) return NaN;
  const { c, s } = locate(d, i);
  const g = Math.floor(c / d.D);
  const k = (c - g * d.D) * d.HxW + s;
  const v = x[k];
  const h = step(Math.sqrt(base.sq / M), v); // on the group's spread
  x[k] = v + h;
  const up = await groupLoss(x, dy, d.HxW, inp.gamma, inp.beta, g * d.D, inp.eps, inp.activation ?? null, pacer);
  x[k] = v - h;
  const down = await groupLoss(x, dy, d.HxW, inp.gamma, inp.beta, g * d.D, inp.eps, inp.activation ?? null, pacer);
  x[k] = v;
  await pacer.pace();
  return (up - down) / (2 * h);
}

export async function gradcheck(engine: Engine, inp: GradcheckInputs, opts: { samples: number; seed: number; atol: number; rtol: number; pacer: Pacer }): Promise<GradcheckResult> {
  const { d } = inp;
  const { pacer } = opts;
  const M = d.D * d.HxW;
  const size = d.N * d.C * d.HxW;
  const xSamples = sampleIndices(size, Math.min(opts.samples, Math.max(1, Math.floor(WORK_BUDGET / (2 * Math.max(1, M))))), opts.seed);
  // the production backward, streamed: dX kept only at the sampled entries, statistics recomputed
  const compute = inp.precision === "f32" ? "float32" : "float64";
  const dxSink = new SampledSink(compute, inp.shape, xSamples);
  const dgSink = new VectorSink([d.C]), dbSink = new VectorSink([d.C]);
  const act = inp.activation ?? null;
  await streamBackward(engine, { dy: inp.dy, x: inp.x, dims: d, gamma: inp.gamma, stats: null, eps: inp.eps, act: activationCode(act), beta: inp.beta, memoryBudget: inp.memoryBudget, sinks: { dx: dxSink, dgamma: dgSink, dbeta: dbSink } });

  // dX: perturb x_i; only its group's outputs move. γ_c, β_c: channel c's group in every sample moves.
  const affine = inp.gamma && inp.beta ? { gamma: inp.gamma, beta: inp.beta } : null;
  const perChannel = 2 * 2 * d.N * Math.max(1, M);
  const channels = affine ? sampleIndices(d.C, Math.min(opts.samples, Math.max(1, Math.floor(WORK_BUDGET / perChannel))), opts.seed + 1) : [];
  const paramGroups = new Set(channels.map((c) => Math.floor(c / d.D)));
  // every group either needs, in order (n, then g), each read once: its sampled dX entries, and
  // its sampled channels' γ and β (summed over n in order)
  const entries = new Map<number, number[]>();
  for (const i of xSamples) {
    const key = groupOf(d, i);
    if (!entries.has(key)) entries.set(key, []);
    entries.get(key)!.push(i);
  }
  const numericX = new Map<number, number>();
  // one group of x and of dY at a time, in the same two arrays (and a file's NHWC rows in one more)
  const xs = new Float64Array(M), dys = new Float64Array(M);
  let rows: Float64Array | undefined;
  const rowsBuf = () => (rows ??= new Float64Array(nhwcRows(d).span));
  const steps = new Map(channels.map((c) => [c, { dgamma: step(Math.max(Math.abs(affine!.gamma[c]), 1), affine!.gamma[c]), dbeta: step(Math.max(Math.abs(affine!.beta[c]), 1), affine!.beta[c]) }]));
  const diffs = new Map(channels.map((c) => [c, { dgamma: 0, dbeta: 0 }]));
  for (const key of groupsInOrder(d, [...entries.keys()].sort((a, b) => a - b), [...paramGroups].sort((a, b) => a - b))) {
    const n = Math.floor(key / d.G), g = key % d.G;
    const x = await readGroup(inp.x, d, n, g, pacer, xs, rowsBuf), dy = await readGroup(inp.dy, d, n, g, pacer, dys, rowsBuf);
    const { m, sq } = await moments(x, pacer);
    for (const i of entries.get(key) ?? []) numericX.set(i, await entryDifference(d, x, dy, inp, { m, sq }, i, pacer));
    if (!affine || !paramGroups.has(g)) continue;
    // γ_c and β_c move channel c's terms only: the sums before channel c are the unperturbed group's
    const r = 1 / Math.sqrt(sq / M + inp.eps);
    const prefix = new Float64Array(d.D + 1);
    await terms(x, dy, d.HxW, affine.gamma, affine.beta, g * d.D, m, r, act, 0, 0, pacer, prefix);
    for (const c of channels) {
      if (Math.floor(c / d.D) !== g) continue;
      const k = c - g * d.D;
      for (const [which, param] of [["dgamma", affine.gamma], ["dbeta", affine.beta]] as const) {
        // perturbed in place and put back exactly
        const v = param[c], h = steps.get(c)![which];
        param[c] = v + h;
        const up = await terms(x, dy, d.HxW, affine.gamma, affine.beta, g * d.D, m, r, act, k, prefix[k], pacer, null);
        param[c] = v - h;
        const down = await terms(x, dy, d.HxW, affine.gamma, affine.beta, g * d.D, m, r, act, k, prefix[k], pacer, null);
        param[c] = v;
        diffs.get(c)![which] += up - down;
      }
    }
    await pacer.pace();
  }
  const outputs: GradcheckResult["outputs"] = { dX: check((i) => dxSink.values.get(i)!, numericX, inp.shape, opts.atol, opts.rtol) };
  if (affine) {
    const numeric = { dgamma: new Map<number, number>(), dbeta: new Map<number, number>() };
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
