/**
 * The production GroupNorm path on one shared WebAssembly memory: tensors are placed in the arena
 * by the caller (the pipeline reads straight into it), the engine adds its scratch, runs the kernels
 * and hands back the small per-group and per-channel results.
 *
 * Each job runs on the calling thread or on the pool of worker threads, whichever finishes it
 * sooner (results are bitwise the same either way): the pool is started only for work large enough
 * to pay for starting it, and takes only the jobs large enough to gain from a second thread. The
 * crossovers are measured (docs/performance.md, "One thread or the pool").
 */
import { Arena } from "./arena.js";
import { Executor } from "./executor.js";
import { buildJob, type Geometry, type Job, type JobMemory, unitOffset, type UnitStep } from "./plan.js";
import type { PoolRunner } from "./pool/pool.js";
import type { ProbeParams } from "./probes.js";
import { InlineRunner, type Runner } from "./runner.js";
import type { NormalsParams } from "./normals.js";
import type { ScanParams } from "./scan.js";
import type { Kind } from "./schedule.js";
import { createSharedMemory } from "./wasm.js";

export interface ForwardResult {
  mean: Float64Array; // N·G
  rstd: Float64Array; // N·G
  /** N·G: the biased variance finalizeStats computed (forward with `variance`). */
  variance?: Float64Array;
}

export interface BackwardResult extends ForwardResult {
  /** Per-(n, c) internal gradients, for gamma/beta backward across slices. */
  ds: Float64Array;
  db: Float64Array;
}

/**
 * "auto": the pool for the work large enough to gain from it (POOL_START_BYTES, POOL_JOB_BYTES);
 * "always": every job on the pool, started with the engine (the roofline's thread counts, the tests
 * of the pool itself, fault injection).
 */
export type PoolUse = "auto" | "always";

export interface EngineOptions {
  /**
   * The most compute threads a job uses: 1 computes on the calling thread; more keep a pool of that
   * many worker threads for the jobs large enough to gain from them (started at the first such work).
   */
  threads?: number;
  /** Which jobs run on the pool (default "auto"). */
  pool?: PoolUse;
  /** Last-level cache size, for the split schedule's waves (default 8 MiB). */
  cacheBytes?: number;
  /** Let the process exit while the pool is idle (its workers are unreferenced between jobs). */
  unref?: boolean;
  /** Test-only: make pool thread 0 fail ("trap" or "exit"); implies pool "always". */
  fault?: "trap" | "exit";
}

/** Cache size the split schedule assumes when the host's is not given. */
const DEFAULT_CACHE_BYTES = 8 << 20;

/**
 * The crossovers, measured by scripts/crossover.js (docs/performance.md, "One thread or the pool").
 * Work here is tensor bytes through the kernels: X for a forward, dY and X for a backward.
 *
 * POOL_START_BYTES: the work that pays for starting the pool's threads. File to file, 1 thread
 * against 2 with the pool's start included, no run up to 256 MiB forward or 512 MiB backward (of
 * input) was faster on the pool; it starts from 1 GiB (one call, a streamed run announced by
 * expect(), or the jobs of POOL_JOB_BYTES and more that an engine ran on the calling thread).
 *
 * POOL_JOB_BYTES: the least a job takes to the pool once it runs. No job up to 64 MiB was faster on
 * a warm pool than on the calling thread on this 2-core machine under the load it had (a load
 * average of 5 to 11); unloaded, a 128 MiB in-memory forward runs about 1.5–2× faster on 2
 * threads (docs/performance.md: one thread's 0.23–0.26 ns per value against the roofline's runs D
 * and F). The pool takes whole slices (8 MiB, the streamed runs' slice), no less.
 */
export const POOL_START_BYTES = 1 << 30;
export const POOL_JOB_BYTES = 8 << 20;

/**
 * gradcheck's random values are compute-bound, not memory-bound: one thread makes about 60 million
 * a second (16.7 ns a value from the calling thread, measured by the engine's normals on 16M float32
 * values; docs/performance.md, "One thread or the pool"), and a 2-thread pool made them 1.35× as
 * fast on this 2-vCPU VM. A chunk of 1M values pays for a dispatch; the pool's start (tens of
 * milliseconds) pays once some 16M values (a quarter of a second on one thread) are to be made.
 */
export const NORMALS_JOB_VALUES = 1 << 20;
export const NORMALS_START_VALUES = 1 << 24;

export class Engine implements JobMemory {
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  /** The most threads a job uses (the pool's size when it runs). */
  readonly threads: number;
  readonly pool: PoolUse;
  private readonly inline: InlineRunner;
  private readonly options: EngineOptions;
  /** The pool once its start has begun. */
  private poolRunner: PoolRunner | null = null;
  private starting: Promise<void> | null = null;
  /** Why the pool failed to start (a worker that could not start), once its start has settled so. */
  private startFailure: unknown = null;
  private closed = false;
  /** Threads taking part in pool jobs (useThreads). */
  private active: number;
  /** Bytes of the jobs of POOL_JOB_BYTES and more run on this thread while there was no pool. */
  private sizable = 0;
  /** Random values made on this thread in chunks of NORMALS_JOB_VALUES and more while there was no pool. */
  private sizableValues = 0;
  /** The most threads a job used since resetUse(). */
  private widest = 1;

  constructor(options: EngineOptions = {}) {
    this.memory = createSharedMemory();
    this.arena = new Arena(this.memory);
    this.threads = options.threads ?? 1;
    this.active = this.threads;
    this.options = options;
    this.pool = options.fault ? "always" : (options.pool ?? "auto");
    this.inline = new InlineRunner(this.memory);
    if (this.threads > 1 && this.pool === "always") void this.startPool();
  }

  /** Whether the pool's threads have been started (they may still be starting). */
  get poolStarted(): boolean {
    return this.starting !== null;
  }

  /** The pool, once its start has begun (null before). */
  get workerPool(): PoolRunner | null {
    return this.poolRunner;
  }

  /** The most threads any job used since resetUse() (1 when all ran on the calling thread). */
  get threadsUsed(): number {
    return this.widest;
  }

  resetUse(): void {
    this.widest = 1;
  }

  /** Start the pool (once); resolves when its threads are up, rejects if one failed to start. */
  private startPool(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        const { PoolRunner } = await import("./pool/pool.js"); // worker_threads and the pool load only when it starts
        if (this.closed) throw new Error("the engine is closed");
        const o = this.options;
        this.poolRunner = new PoolRunner(this.memory, this.threads, o.cacheBytes ?? DEFAULT_CACHE_BYTES, { fault: o.fault, unref: o.unref });
        await this.poolRunner.ready;
      })();
      // seen by the job that needs the pool; kept for the scans and random values, which do not wait for it
      this.starting.catch((e: unknown) => {
        this.startFailure = e;
      });
    }
    return this.starting;
  }

  /**
   * Announce work of `bytes` tensor bytes about to come in jobs of at most `jobBytes` (a streamed
   * run's slices): when that much pays for the pool and its jobs are large enough to go to it, its
   * threads start now, while the first slice is read.
   */
  expect(bytes: number, jobBytes: number): void {
    if (this.threads > 1 && this.pool === "auto" && bytes >= POOL_START_BYTES && jobBytes >= POOL_JOB_BYTES) void this.startPool();
  }

  /**
   * The runner for a job of `bytes` tensor bytes. "auto": this thread for a job too small to gain
   * from a second one. A larger job starts the pool once such jobs add up to POOL_START_BYTES, as
   * much as pays for the start (a single job that large, a run announced by expect(), or many calls
   * on one engine: what ran here before is never more than the start would have cost). Once the
   * pool is started a larger job waits for its threads if they are still starting: a long job on
   * this thread would also hold up its event loop (a signal's handler, among others).
   */
  private async runnerFor(bytes: number): Promise<Runner> {
    if (this.threads === 1) return this.inline;
    if (this.pool === "auto" && !this.gains(bytes, POOL_JOB_BYTES, POOL_START_BYTES, "sizable")) return this.inline;
    return this.started();
  }

  /**
   * Under "auto", whether a job of `size` goes to the pool: from `least` up, once the pool was
   * started or such jobs run here (summed in `counter`) add up to `start`.
   */
  private gains(size: number, least: number, start: number, counter: "sizable" | "sizableValues"): boolean {
    if (size < least) return false;
    if (this.starting === null) {
      this[counter] += size;
      if (this[counter] < start) return false;
    }
    return true;
  }

  /** The running pool, set to the threads taking part. */
  private onPool(): PoolRunner {
    const pool = this.poolRunner!;
    pool.useThreads(this.active);
    this.widest = Math.max(this.widest, this.active);
    return pool;
  }

  /**
   * Run the following jobs and probes on the first `k` of the pool's threads (the roofline's thread
   * scaling); `useThreads(this.threads)` restores the whole pool. The scratch stays sized for all.
   */
  useThreads(k: number): void {
    if (!Number.isInteger(k) || k < 1 || k > this.threads) {
      throw new RangeError(this.threads === 1 ? `a single-thread engine runs on 1 thread, not ${k}` : `threads taking part must be 1 to ${this.threads}, got ${k}`);
    }
    this.active = k;
  }

  /** An executor on this thread, for the serial steps of chunked items. */
  executor(): Executor {
    return this.inline.exec;
  }

  /** Resolves when the pool's threads are up, if it was started ("always" starts it with the engine). */
  async ready(): Promise<void> {
    if (this.starting) await this.starting;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.starting?.catch(() => undefined);
    await this.poolRunner?.close();
  }

  /** Run a whole job (in `run`) on the runner its size calls for. */
  async run(kind: Kind, job: Job): Promise<void> {
    const values = job.N * job.C * job.HxW;
    const bytes = values * (job.precision === "f32" ? 4 : 8) * (kind === "backward" ? 2 : 1);
    await (await this.runnerFor(bytes)).run(kind, job);
  }

  /** One step over units [u0, u1) of item 0 of `job` (chunked items), shared out as its size calls for. */
  async units(step: UnitStep, job: Job, u0: number, u1: number): Promise<void> {
    const tensors = step === "grad" || step === "gradWide" || step === "dx" ? 2 : 1;
    await (await this.runnerFor((unitOffset(job, u1) - unitOffset(job, u0)) * tensors)).units(step, job, u0, u1);
  }

  /** A probe (the roofline's bandwidth and compute measurements): on the pool whenever there is one. */
  async probe(p: ProbeParams): Promise<void> {
    if (this.threads === 1) return this.inline.probe(p);
    await (await this.started()).probe(p);
  }

  /**
   * A scan of info or compare (scan.ts): on the pool for a slice that gains from it (the rule of
   * runnerFor: POOL_JOB_BYTES of values read, the pool started by POOL_START_BYTES of them or by
   * expect()), otherwise on this thread, and under "auto" on this thread too while the pool's
   * threads are still starting (a slice scans in milliseconds). A block's record is the same
   * whichever thread scans it.
   */
  async scan(p: ScanParams, bytes: number): Promise<void> {
    await (await this.quick(bytes, POOL_JOB_BYTES, POOL_START_BYTES, "sizable")).scan(p);
  }

  /**
   * A chunk of gradcheck's random values (normals.ts): the same rule as scan's, but compute-bound
   * (a logarithm, a square root and a cosine for each pair), so the pool takes chunks from
   * NORMALS_JOB_VALUES and starts once NORMALS_START_VALUES of them were made here. The values are
   * the same whichever thread makes them; the pending counts come one per thread that took part.
   */
  async normals(p: NormalsParams): Promise<number[]> {
    return (await this.quick(p.n, NORMALS_JOB_VALUES, NORMALS_START_VALUES, "sizableValues")).normals(p);
  }

  /**
   * The runner for a short job of `size` (a scan's slice, a chunk of random values): runnerFor's
   * choice with the job's own thresholds (`gains`), but under "auto" never waiting for the pool to
   * start (the job runs on this thread meanwhile). A pool that failed to start fails the job, as it
   * fails a forward's.
   */
  private async quick(size: number, least: number, start: number, counter: "sizable" | "sizableValues"): Promise<Runner> {
    if (this.threads === 1) return this.inline;
    if (this.pool === "always") return this.started();
    if (this.startFailure !== null) throw this.startFailure;
    if (!this.gains(size, least, start, counter)) return this.inline;
    if (this.starting === null) void this.startPool();
    return this.poolRunner?.started ? this.onPool() : this.inline;
  }

  /** The pool once its threads are up (started now if it was not). */
  private async started(): Promise<PoolRunner> {
    await this.startPool(); // rethrows a failed start
    return this.onPool();
  }


  alloc(bytes: number): number {
    return this.arena.alloc(bytes);
  }

  /** A float64 vector in the arena: `values`, or `length` copies of `fill`. */
  vector(values: ArrayLike<number> | null, length: number, fill: number): number {
    const ptr = this.arena.alloc(length * 8);
    const v = this.arena.f64(ptr, length);
    if (values) v.set(values);
    else v.fill(fill);
    return ptr;
  }

  /** Y = GroupNorm(X), or act(GroupNorm(X)) with an activation code `act`, for tensors already in the arena at x and y; with `variance`, each group's variance too. */
  async forward(
    geo: Geometry,
    eps: number,
    x: number,
    y: number,
    gamma: ArrayLike<number> | null,
    beta: ArrayLike<number> | null,
    { variance = false, act = 0 }: { variance?: boolean; act?: number } = {},
  ): Promise<ForwardResult> {
    const mark = this.arena.used;
    try {
      const NG = geo.N * geo.G;
      const job = buildJob(this, geo, { eps, tensors: { x, y }, gamma, beta, gradients: false, wantDx: false, variance, act });
      await this.run("forward", job);
      const res: ForwardResult = { mean: this.arena.f64(job.mean, NG).slice(), rstd: this.arena.f64(job.rstd, NG).slice() };
      if (variance) res.variance = this.arena.f64(job.variance, NG).slice();
      return res;
    } finally {
      this.arena.release(mark);
    }
  }

  /**
   * dX (when dx != 0) and the internal gradients for tensors in the arena. `stats` are the forward
   * mean/rstd when supplied; otherwise they are recomputed from X with eps. Through an activation
   * (`through.act`, with the forward's beta), dY is the gradient of act(GroupNorm(X)); dy is left
   * holding dY·act'(pre) where dx is not written over it.
   */
  async backward(
    geo: Geometry,
    eps: number,
    ptrs: { dy: number; x: number; dx: number },
    gamma: ArrayLike<number> | null,
    stats: ForwardResult | null,
    through: { act: number; beta: ArrayLike<number> | null } | null = null,
  ): Promise<BackwardResult> {
    const mark = this.arena.used;
    try {
      const NG = geo.N * geo.G, NC = geo.N * geo.C;
      const act = through?.act ?? 0;
      const beta = act ? { beta: through?.beta ?? null } : {};
      const job = buildJob(this, geo, { eps, tensors: ptrs, gamma, stats, gradients: true, wantDx: ptrs.dx !== 0, act, ...beta });
      await this.run("backward", job);
      return {
        mean: this.arena.f64(job.mean, NG).slice(),
        rstd: this.arena.f64(job.rstd, NG).slice(),
        ds: this.arena.f64(job.ds, NC).slice(),
        db: this.arena.f64(job.db, NC).slice(),
      };
    } finally {
      this.arena.release(mark);
    }
  }
}
