/**
 * Roofline measurements on the engine's own threads and WebAssembly: STREAM-style probes for the
 * attainable bandwidth, a multiply-add probe for the compute ceiling, and GroupNorm forward and
 * backward timings on warm buffers with their compulsory bytes and FLOPs.
 */
import { performance } from "node:perf_hooks";
import type { Dims } from "../core/dims.js";
import type { Engine } from "../kernels/engine.js";
import type { Geometry, Precision } from "../kernels/plan.js";
import { Probe } from "../kernels/probes.js";

export interface Attainable {
  copy_gbps: number;
  add_gbps: number;
  triad_gbps: number;
  read_gbps: number;
  /** bytes per array (float64 arrays, STREAM counting). */
  array_bytes: number;
}

export interface KernelTiming {
  name: "forward" | "backward";
  seconds: number;
  median_seconds: number;
  runs: number;
  bytes: number;
  flops: number;
}

/** FLOPs per element, by the operations the kernels perform (see docs/cli.md, roofline). */
export const FLOPS_PER_ELEMENT = { forward: 7, backward: 9 } as const;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timeRuns(runs: number, f: () => Promise<void>): Promise<number[]> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    t.push((performance.now() - t0) / 1000);
  }
  return t;
}

/** STREAM copy/add/triad/read with three float64 arrays of `arrayBytes` each; best of `runs`. */
export async function measureBandwidth(engine: Engine, arrayBytes: number, runs = 10, onStep?: () => void): Promise<Attainable> {
  const n = Math.max(8, Math.floor(arrayBytes / 64) * 8);
  const mark = engine.arena.used;
  try {
    const a = engine.arena.alloc(n * 8), b = engine.arena.alloc(n * 8), c = engine.arena.alloc(n * 8);
    engine.arena.f64(a, n).fill(1);
    engine.arena.f64(b, n).fill(2);
    engine.arena.f64(c, n).fill(0);
    const bytes = n * 8;
    const best = async (probe: Probe) => {
      await engine.runner.probe({ probe, a, b, c, n }); // warm
      const t = Math.min(...(await timeRuns(runs, () => engine.runner.probe({ probe, a, b, c, n }))));
      onStep?.();
      return t;
    };
    const copy = await best(Probe.Copy);
    const add = await best(Probe.Add);
    const triad = await best(Probe.Triad);
    const read = await best(Probe.Read);
    return {
      copy_gbps: (2 * bytes) / copy / 1e9,
      add_gbps: (3 * bytes) / add / 1e9,
      triad_gbps: (3 * bytes) / triad / 1e9,
      read_gbps: bytes / read / 1e9,
      array_bytes: bytes,
    };
  } finally {
    engine.arena.release(mark);
  }
}

/**
 * Peak multiply-add rate of the pool in the kernels' precision (GFLOP/s): 12 independent chains,
 * float32x4 (4 lanes) or float64x2 (2 lanes), 2 FLOPs per lane per round.
 */
export async function measureCompute(engine: Engine, precision: Precision, rounds = 5_000_000): Promise<number> {
  const probe = precision === "f32" ? Probe.Flops32 : Probe.Flops;
  const lanes = precision === "f32" ? 4 : 2;
  await engine.runner.probe({ probe, a: 0, b: 0, c: 0, n: 1000 });
  const t = Math.min(...(await timeRuns(3, () => engine.runner.probe({ probe, a: 0, b: 0, c: 0, n: rounds }))));
  return (rounds * 12 * lanes * 2 * engine.runner.threads) / t / 1e9;
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

/**
 * Forward and backward (statistics given, as PyTorch's native_group_norm_backward) on warm buffers,
 * run as the file pipeline runs them: Y written over X and dX over dY, in place. `runs` timed runs
 * after warm-ups; best and median seconds.
 */
export async function measureKernels(engine: Engine, d: Dims, precision: Precision, runs = 10, onStep?: () => void): Promise<KernelTiming[]> {
  const numel = d.N * d.C * d.HxW;
  const eb = precision === "f32" ? 4 : 8;
  const statBytes = precision === "f32" ? 4 : 8;
  const geo: Geometry = { ...d, precision };
  const mark = engine.arena.used;
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
    await fwd();
    const tf = await timeRuns(runs, fwd);
    onStep?.();
    await bwd();
    await bwd();
    const tb = await timeRuns(runs, bwd);
    onStep?.();
    const NG = d.N * d.G;
    const timing = (name: KernelTiming["name"], t: number[], bytes: number): KernelTiming => ({
      name,
      seconds: Math.min(...t),
      median_seconds: median(t),
      runs,
      bytes,
      flops: FLOPS_PER_ELEMENT[name] * numel,
    });
    return [
      // X in, Y out; gamma and beta in; mean and rstd out
      timing("forward", tf, 2 * numel * eb + 2 * d.C * eb + 2 * NG * statBytes),
      // dY and X in, dX out; gamma, mean, rstd in; dgamma and dbeta out
      timing("backward", tb, 3 * numel * eb + 3 * d.C * eb + 2 * NG * statBytes),
    ];
  } finally {
    engine.arena.release(mark);
  }
}

export interface SweepPoint {
  /** Bytes touched per pass (both arrays of the copy). */
  bytes: number;
  gbps: number;
}

/** LLC assumed when the host does not say. */
const UNKNOWN_LLC = 32 << 20;
/** Smallest array of the bandwidth probes. */
const MIN_PROBE_BYTES = 64 << 20;

/** The most one probe array may take: three of them share one WebAssembly memory (4 GiB). */
const MAX_PROBE_BYTES = 1.25 * 2 ** 30;

/** Bytes per array for a DRAM measurement: 4× the last-level cache (STREAM's rule), at least 64 MiB, at most MAX_PROBE_BYTES. */
export function dramWorkingSet(llcBytes: number): number {
  return Math.min(MAX_PROBE_BYTES, Math.max(4 * (llcBytes || UNKNOWN_LLC), MIN_PROBE_BYTES));
}

/** Working-set sizes for the sweep: powers of two from 16 KiB to dramWorkingSet(LLC). */
export function sweepSizes(llcBytes: number): number[] {
  const top = dramWorkingSet(llcBytes);
  const sizes: number[] = [];
  for (let s = 16 << 10; s <= top; s *= 2) sizes.push(s);
  return sizes;
}

/**
 * Copy bandwidth against working-set size, from L1 to DRAM: each size is copied repeatedly within
 * one dispatch (at least ~64 MiB moved), best of three.
 */
export async function measureSweep(engine: Engine, sizes: number[], onStep?: (done: number, total: number) => void): Promise<SweepPoint[]> {
  const points: SweepPoint[] = [];
  const maxBytes = Math.max(...sizes);
  const mark = engine.arena.used;
  try {
    const nMax = Math.ceil(maxBytes / 16 / 8) * 8;
    const a = engine.arena.alloc(nMax * 8), c = engine.arena.alloc(nMax * 8);
    engine.arena.f64(a, nMax).fill(1);
    engine.arena.f64(c, nMax).fill(0);
    for (const [i, bytes] of sizes.entries()) {
      const n = Math.max(8 * engine.runner.threads, Math.floor(bytes / 16 / 8) * 8);
      const moved = 2 * n * 8;
      const reps = Math.max(1, Math.ceil((64 << 20) / moved));
      await engine.runner.probe({ probe: Probe.Copy, a, b: 0, c, n, reps: Math.min(reps, 4) });
      const t = Math.min(...(await timeRuns(3, () => engine.runner.probe({ probe: Probe.Copy, a, b: 0, c, n, reps }))));
      points.push({ bytes: moved, gbps: (moved * reps) / t / 1e9 });
      onStep?.(i + 1, sizes.length);
    }
    return points;
  } finally {
    engine.arena.release(mark);
  }
}
