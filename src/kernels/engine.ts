/**
 * The production GroupNorm path on one shared WebAssembly memory: tensors are placed in the arena
 * by the caller (the I/O layer reads straight into it), the engine adds its scratch, runs the
 * kernels and hands back the small per-group and per-channel results.
 */
import { Arena } from "./arena.js";
import { Executor, type Geometry, type Job, gammaBetaBackward, scratchBytes } from "./plan.js";
import { PoolRunner } from "./pool/pool.js";
import { encodeProbe, type ProbeParams, runProbe } from "./probes.js";
import { execute, type Kind } from "./schedule.js";
import { createSharedMemory, instantiateKernels, type KernelExports } from "./wasm.js";

export interface ForwardResult {
  mean: Float64Array; // N·G
  rstd: Float64Array; // N·G
}

export interface BackwardResult extends ForwardResult {
  /** Per-(n, c) internal gradients, for gamma/beta backward across slices. */
  ds: Float64Array;
  db: Float64Array;
}

/** Runs a job on this thread or on a pool of worker threads. */
export interface Runner {
  run(kind: Kind, job: Job): Promise<void>;
  probe(p: ProbeParams): Promise<void>;
  readonly threads: number;
  close(): Promise<void>;
}

/** The single-thread path: no workers, the same schedule with one thread. */
export class InlineRunner implements Runner {
  readonly threads = 1;
  private readonly exec: Executor;
  private readonly kernels: KernelExports;
  constructor(private readonly memory: WebAssembly.Memory) {
    this.kernels = instantiateKernels(memory);
    this.exec = new Executor(this.kernels, memory, 0);
  }
  async run(kind: Kind, job: Job): Promise<void> {
    execute(this.exec, kind, job, { ith: 0, nth: 1, barrier: () => undefined }, 0);
  }
  async probe(p: ProbeParams): Promise<void> {
    encodeProbe(this.memory.buffer, p);
    runProbe(this.kernels, this.memory.buffer, { ith: 0, nth: 1, barrier: () => undefined });
  }
  async close(): Promise<void> {}
}

export interface EngineOptions {
  /** Compute threads: 1 runs on the calling thread, more start a worker pool. */
  threads?: number;
  /** Last-level cache size, for the split schedule's waves (default 8 MiB). */
  cacheBytes?: number;
}

export class Engine {
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  readonly runner: Runner;

  constructor(options: EngineOptions = {}) {
    this.memory = createSharedMemory();
    this.arena = new Arena(this.memory);
    const threads = options.threads ?? 1;
    this.runner = threads > 1 ? new PoolRunner(this.memory, threads, options.cacheBytes ?? 8 << 20) : new InlineRunner(this.memory);
  }

  /** Resolves when every pool thread is up (at once for the single-thread path). */
  async ready(): Promise<void> {
    if (this.runner instanceof PoolRunner) await this.runner.ready;
  }

  async close(): Promise<void> {
    await this.runner.close();
  }

  private vector(values: ArrayLike<number> | null, length: number, fill: number): number {
    const ptr = this.arena.alloc(length * 8);
    const v = this.arena.f64(ptr, length);
    if (values) v.set(values);
    else v.fill(fill);
    return ptr;
  }

  /** Y = GroupNorm(X) for tensors already in the arena at x and y. */
  async forward(
    geo: Geometry,
    eps: number,
    x: number,
    y: number,
    gamma: ArrayLike<number> | null,
    beta: ArrayLike<number> | null,
  ): Promise<ForwardResult> {
    const mark = this.arena.used;
    try {
      const NG = geo.N * geo.G;
      const s = scratchBytes(geo);
      const job: Job = {
        ...geo,
        eps,
        x,
        y,
        dy: 0,
        dx: 0,
        gamma: this.vector(gamma, geo.C, 1),
        beta: this.vector(beta, geo.C, 0),
        mean: this.arena.alloc(NG * 8),
        rstd: this.arena.alloc(NG * 8),
        partials: this.arena.alloc(s.partials),
        perItem: this.arena.alloc(s.perItem),
        threadScratch: this.arena.alloc(s.perThread * this.runner.threads),
        threadScratchBytes: s.perThread,
        ds: 0,
        db: 0,
        statsGiven: false,
        wantDx: false,
      };
      await this.runner.run("forward", job);
      return { mean: this.arena.f64(job.mean, NG).slice(), rstd: this.arena.f64(job.rstd, NG).slice() };
    } finally {
      this.arena.release(mark);
    }
  }

  /**
   * dX (when dx != 0) and the internal gradients for tensors in the arena. `stats` are the forward
   * mean/rstd when supplied; otherwise they are recomputed from X with eps.
   */
  async backward(
    geo: Geometry,
    eps: number,
    ptrs: { dy: number; x: number; dx: number },
    gamma: ArrayLike<number> | null,
    stats: ForwardResult | null,
  ): Promise<BackwardResult> {
    const mark = this.arena.used;
    try {
      const NG = geo.N * geo.G, NC = geo.N * geo.C;
      const s = scratchBytes(geo);
      const job: Job = {
        ...geo,
        eps,
        x: ptrs.x,
        y: 0,
        dy: ptrs.dy,
        dx: ptrs.dx,
        gamma: this.vector(gamma, geo.C, 1),
        beta: 0,
        mean: this.vector(stats?.mean ?? null, NG, 0),
        rstd: this.vector(stats?.rstd ?? null, NG, 0),
        partials: this.arena.alloc(s.partials),
        perItem: this.arena.alloc(s.perItem),
        threadScratch: this.arena.alloc(s.perThread * this.runner.threads),
        threadScratchBytes: s.perThread,
        ds: this.arena.alloc(NC * 8),
        db: this.arena.alloc(NC * 8),
        statsGiven: stats !== null,
        wantDx: ptrs.dx !== 0,
      };
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

export { gammaBetaBackward };
