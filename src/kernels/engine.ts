/**
 * The production GroupNorm path on one shared WebAssembly memory: tensors are placed in the arena
 * by the caller (the pipeline reads straight into it), the engine adds its scratch, runs the kernels
 * and hands back the small per-group and per-channel results.
 */
import { Arena } from "./arena.js";
import { Executor } from "./executor.js";
import { buildJob, type Geometry, type JobMemory } from "./plan.js";
import { PoolRunner } from "./pool/pool.js";
import { InlineRunner, type Runner } from "./runner.js";
import { encodeScan, runScan, type ScanParams } from "./scan.js";
import { createSharedMemory, instantiateKernels } from "./wasm.js";

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

export interface EngineOptions {
  /** Compute threads: 1 runs on the calling thread, more start a worker pool. */
  threads?: number;
  /** Last-level cache size, for the split schedule's waves (default 8 MiB). */
  cacheBytes?: number;
  /** Let the process exit while the pool is idle (its workers are unreferenced between jobs). */
  unref?: boolean;
  /** Test-only: make pool thread 0 fail ("trap" or "exit"). */
  fault?: "trap" | "exit";
}

/** Cache size the split schedule assumes when the host's is not given. */
const DEFAULT_CACHE_BYTES = 8 << 20;

export class Engine implements JobMemory {
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  readonly runner: Runner;

  constructor(options: EngineOptions = {}) {
    this.memory = createSharedMemory();
    this.arena = new Arena(this.memory);
    const threads = options.threads ?? 1;
    this.runner =
      threads > 1
        ? new PoolRunner(this.memory, threads, options.cacheBytes ?? DEFAULT_CACHE_BYTES, { fault: options.fault, unref: options.unref })
        : new InlineRunner(this.memory);
  }

  get threads(): number {
    return this.runner.threads;
  }

  /**
   * Run the following jobs and probes on the first `k` of the pool's threads (the roofline's thread
   * scaling); `useThreads(this.threads)` restores the whole pool. The scratch stays sized for all.
   */
  useThreads(k: number): void {
    if (this.runner instanceof PoolRunner) this.runner.useThreads(k);
    else if (k !== 1) throw new RangeError(`a single-thread engine runs on 1 thread, not ${k}`);
  }

  private mainExec: Executor | undefined;

  /** An executor on this thread, for the serial steps of chunked items. */
  executor(): Executor {
    this.mainExec ??= new Executor(instantiateKernels(this.memory), this.memory, 0);
    return this.mainExec;
  }

  /** Resolves when every pool thread is up (at once for the single-thread path). */
  async ready(): Promise<void> {
    if (this.runner instanceof PoolRunner) await this.runner.ready;
  }

  async close(): Promise<void> {
    await this.runner.close();
  }

  /**
   * A scan of info or compare (scan.ts) on the pool, or on this thread while the pool's threads are
   * still starting (tens of milliseconds after the engine is made, as long as reading a few hundred
   * MB from the page cache): a short command never waits for them, and a block's record is the same
   * whichever thread scans it.
   */
  async scan(p: ScanParams): Promise<void> {
    if (this.runner instanceof PoolRunner && !this.runner.started) {
      encodeScan(this.memory.buffer, p);
      runScan(this.executor().k, this.memory.buffer, { ith: 0, nth: 1, barrier: () => undefined });
      return;
    }
    await this.runner.scan(p);
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
      await this.runner.run("forward", job);
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
      await this.runner.run("backward", job);
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
