/**
 * Roofline measurements on the engine's own threads and WebAssembly: STREAM-style probes for the
 * attainable bandwidth, a multiply-add probe for the compute ceiling, GroupNorm forward and backward
 * on warm buffers, a copy sweep over working-set sizes, each at one or several thread counts.
 *
 * Everything here returns raw run times (seconds); report.ts turns them into figures with their
 * spread, so the logic is tested on fixed timings and only the timing itself lives here.
 */
import { performance } from "node:perf_hooks";
import type { Dims } from "../core/dims.js";
import type { Engine } from "../kernels/engine.js";
import type { Geometry, Precision } from "../kernels/plan.js";
import { Probe } from "../kernels/probes.js";

/** Called once per timed run, with what is being timed (progress). */
export type Tick = (phase: string) => void;
const noTick: Tick = () => undefined;

/** Run times of the STREAM probes over three float64 arrays of `array_bytes` each. */
export interface ProbeSamples {
  threads: number;
  array_bytes: number;
  copy: number[];
  add: number[];
  /** Only at the full thread count. */
  triad?: number[];
  read?: number[];
}

export interface KernelSamples {
  name: "forward" | "backward";
  threads: number;
  seconds: number[];
  bytes: number;
  flops: number;
}

export interface ComputeSamples {
  seconds: number[];
  /** FLOPs per run. */
  flops: number;
}

export interface SweepSamples {
  /** Working set: both arrays of the copy, all threads together. */
  bytes: number;
  /** Passes over the arrays per timed run. */
  reps: number;
  seconds: number[];
}

/** FLOPs per element, by the operations the kernels perform (see docs/cli.md, roofline). */
export const FLOPS_PER_ELEMENT = { forward: 7, backward: 9 } as const;

async function timeRuns(runs: number, f: () => Promise<void>, tick: Tick, phase: string): Promise<number[]> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
    tick(phase);
    // a turn of the event loop between runs (untimed): on one thread every probe runs inline and
    // resolves at once, and a signal's handler would otherwise wait for the whole measurement
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return t;
}

const threadsText = (t: number) => `${t} thread${t === 1 ? "" : "s"}`;

/**
 * STREAM copy/add (and at the full thread count triad/read) with three float64 arrays of
 * `arrayBytes` each, `runs` timed runs after a warm-up, at each of `counts` threads (largest first:
 * the full pool's figures are the roofs).
 */
export async function measureBandwidth(engine: Engine, arrayBytes: number, runs: number, counts: number[] = [engine.threads], tick: Tick = noTick): Promise<ProbeSamples[]> {
  const n = Math.max(8, Math.floor(arrayBytes / 64) * 8);
  const mark = engine.arena.used;
  const out: ProbeSamples[] = [];
  try {
    const a = engine.arena.alloc(n * 8), b = engine.arena.alloc(n * 8), c = engine.arena.alloc(n * 8);
    engine.arena.f64(a, n).fill(1);
    engine.arena.f64(b, n).fill(2);
    engine.arena.f64(c, n).fill(0);
    for (const threads of [...counts].sort((x, y) => y - x)) {
      engine.useThreads(threads);
      const time = async (probe: Probe, name: string) => {
        await engine.probe({ probe, a, b, c, n }); // warm
        return timeRuns(runs, () => engine.probe({ probe, a, b, c, n }), tick, `${name} probe, ${threadsText(threads)}`);
      };
      const s: ProbeSamples = { threads, array_bytes: n * 8, copy: await time(Probe.Copy, "copy"), add: await time(Probe.Add, "add") };
      if (threads === engine.threads) {
        s.triad = await time(Probe.Triad, "triad");
        s.read = await time(Probe.Read, "read");
      }
      out.push(s);
    }
    return out.sort((x, y) => x.threads - y.threads);
  } finally {
    engine.useThreads(engine.threads);
    engine.arena.release(mark);
  }
}

/**
 * Multiply-add rate of the pool in the kernels' precision: 12 independent chains, float32x4 (4
 * lanes) or float64x2 (2 lanes), 2 FLOPs per lane per round.
 */
export async function measureCompute(engine: Engine, precision: Precision, runs: number, tick: Tick = noTick, rounds = 5_000_000): Promise<ComputeSamples> {
  const probe = precision === "f32" ? Probe.Flops32 : Probe.Flops;
  const lanes = precision === "f32" ? 4 : 2;
  await engine.probe({ probe, a: 0, b: 0, c: 0, n: 1000 });
  const seconds = await timeRuns(runs, () => engine.probe({ probe, a: 0, b: 0, c: 0, n: rounds }), tick, "compute probe");
  return { seconds, flops: rounds * 12 * lanes * 2 * engine.threads };
}

/** Fill with a cheap deterministic pseudo-random sequence in [-1, 1). */
function fill(v: Float32Array<ArrayBufferLike> | Float64Array<ArrayBufferLike>, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < v.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    v[i] = (s >>> 0) / 2147483648 - 1;
  }
}

/** Compulsory bytes of forward (X in, Y out; gamma, beta in; mean, rstd out) and backward (dY, X in, dX out; gamma, mean, rstd in; dgamma, dbeta out). */
export function kernelBytes(d: Dims, precision: Precision): { forward: number; backward: number } {
  const numel = d.N * d.C * d.HxW, eb = precision === "f32" ? 4 : 8, NG = d.N * d.G;
  return { forward: 2 * numel * eb + 2 * d.C * eb + 2 * NG * eb, backward: 3 * numel * eb + 3 * d.C * eb + 2 * NG * eb };
}

/**
 * Forward and backward (statistics given, as PyTorch's native_group_norm_backward) on warm buffers,
 * run as the file pipeline runs them: Y written over X and dX over dY, in place. `runs` timed runs
 * after warm-ups, at each of `counts` threads, on the same buffers.
 */
export async function measureKernels(engine: Engine, d: Dims, precision: Precision, runs: number, counts: number[] = [engine.threads], tick: Tick = noTick): Promise<KernelSamples[]> {
  const numel = d.N * d.C * d.HxW;
  const eb = precision === "f32" ? 4 : 8;
  const geo: Geometry = { ...d, precision };
  const bytes = kernelBytes(d, precision);
  const mark = engine.arena.used;
  const out: KernelSamples[] = [];
  try {
    const x = engine.arena.alloc(numel * eb), y = x;
    const dy = engine.arena.alloc(numel * eb), dx = dy;
    const view = (p: number) => (precision === "f32" ? engine.arena.f32(p, numel) : engine.arena.f64(p, numel));
    fill(view(x), 12345);
    fill(view(dy), 678);
    const gamma = new Float64Array(d.C).fill(1.25), beta = new Float64Array(d.C).fill(-0.5);
    let stats = await engine.forward(geo, 1e-5, x, y, gamma, beta);
    const fwd = async () => {
      stats = await engine.forward(geo, 1e-5, x, y, gamma, beta);
    };
    const bwd = async () => {
      await engine.backward(geo, 1e-5, { dy, x, dx }, gamma, stats);
    };
    for (const threads of [...counts].sort((a, b) => b - a)) {
      engine.useThreads(threads);
      await fwd();
      const tf = await timeRuns(runs, fwd, tick, `forward, ${threadsText(threads)}`);
      await bwd();
      const tb = await timeRuns(runs, bwd, tick, `backward, ${threadsText(threads)}`);
      out.push({ name: "forward", threads, seconds: tf, bytes: bytes.forward, flops: FLOPS_PER_ELEMENT.forward * numel });
      out.push({ name: "backward", threads, seconds: tb, bytes: bytes.backward, flops: FLOPS_PER_ELEMENT.backward * numel });
    }
    return out.sort((a, b) => a.threads - b.threads);
  } finally {
    engine.useThreads(engine.threads);
    engine.arena.release(mark);
  }
}

/** The least time one timed sweep dispatch should take, so the dispatch cost stays small beside it. */
const SWEEP_DISPATCH_SECONDS = 0.004;

/**
 * Copy bandwidth against working-set size, from L1 to DRAM, on all the pool's threads: each size is
 * copied `reps` times within one dispatch (reps calibrated so a dispatch takes a few milliseconds),
 * `runs` timed runs.
 */
export async function measureSweep(engine: Engine, sizes: number[], runs: number, tick: Tick = noTick): Promise<SweepSamples[]> {
  const points: SweepSamples[] = [];
  const maxBytes = Math.max(...sizes);
  const mark = engine.arena.used;
  try {
    const nMax = Math.ceil(maxBytes / 16 / 8) * 8;
    const a = engine.arena.alloc(nMax * 8), c = engine.arena.alloc(nMax * 8);
    engine.arena.f64(a, nMax).fill(1);
    engine.arena.f64(c, nMax).fill(0);
    for (const bytes of sizes) {
      const n = Math.max(8 * engine.threads, Math.floor(bytes / 16 / 8) * 8);
      const moved = 2 * n * 8;
      let reps = Math.max(1, Math.ceil((16 << 20) / moved));
      const t0 = performance.now();
      await engine.probe({ probe: Probe.Copy, a, b: 0, c, n, reps }); // warm, and calibrate
      const once = (performance.now() - t0) / 1000;
      if (once < SWEEP_DISPATCH_SECONDS) reps = Math.min(1 << 20, Math.ceil((reps * SWEEP_DISPATCH_SECONDS) / Math.max(once, 1e-6)));
      const seconds = await timeRuns(runs, () => engine.probe({ probe: Probe.Copy, a, b: 0, c, n, reps }), tick, `sweep, ${sizeLabel(moved)}`);
      points.push({ bytes: moved, reps, seconds });
    }
    return points;
  } finally {
    engine.arena.release(mark);
  }
}

function sizeLabel(b: number): string {
  return b >= 1 << 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : b >= 1 << 20 ? `${(b / 2 ** 20).toFixed(0)} MiB` : `${(b / 1024).toFixed(0)} KiB`;
}
