/**
 * The production GroupNorm path on one shared WebAssembly memory: tensors are placed in the arena
 * by the caller (the I/O layer reads straight into it), the engine adds its scratch, runs the
 * kernels and hands back the small per-group and per-channel results.
 */
import { Arena } from "./arena.js";
import { Executor, type Geometry, type Job, gammaBetaBackward, runUnits, scratchBytes, unitOffset, type UnitStep, workLayout } from "./plan.js";
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
  /** One step over units [u0, u1) of item 0 of the job, shared out among the threads. */
  units(step: UnitStep, job: Job, u0: number, u1: number): Promise<void>;
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
  async units(step: UnitStep, job: Job, u0: number, u1: number): Promise<void> {
    runUnits(this.exec, job, step, u0, u1);
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
  /** Test-only: make pool thread 0 fail ("trap" or "exit"). */
  fault?: "trap" | "exit";
}

export class Engine {
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  readonly runner: Runner;

  constructor(options: EngineOptions = {}) {
    this.memory = createSharedMemory();
    this.arena = new Arena(this.memory);
    const threads = options.threads ?? 1;
    this.runner = threads > 1 ? new PoolRunner(this.memory, threads, options.cacheBytes ?? 8 << 20, options.fault) : new InlineRunner(this.memory);
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

  /** A float64 vector in the arena: `values`, or `length` copies of `fill`. */
  vector(values: ArrayLike<number> | null, length: number, fill: number): number {
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
        shiftSource: 0,
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
        shiftSource: 0,
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

/**
 * One work item too large for the memory budget (an NHWC sample, or an NCHW group as a one-group
 * tensor), streamed through the arena in chunks of whole units. Its unit partials persist between
 * chunks and combine in the usual fixed order, so results are bitwise those of an in-memory run.
 * The caller supplies each group's shift K (the group's first value), read from the file.
 */
export class ChunkedItem {
  readonly job: Job;
  readonly units: number;
  private readonly mark: number;

  constructor(
    private readonly engine: Engine,
    readonly geo: Geometry,
    eps: number,
    gamma: ArrayLike<number> | null,
    beta: ArrayLike<number> | null,
    stats: ForwardResult | null,
    shifts: ArrayLike<number>,
  ) {
    if (geo.N !== 1) throw new Error("ChunkedItem: one item (N = 1) at a time");
    const a = engine.arena;
    this.mark = a.used;
    const s = scratchBytes(geo);
    this.job = {
      ...geo,
      eps,
      x: 0,
      y: 0,
      dy: 0,
      dx: 0,
      gamma: engine.vector(gamma, geo.C, 1),
      beta: engine.vector(beta, geo.C, 0),
      mean: engine.vector(stats?.mean ?? null, geo.G, 0),
      rstd: engine.vector(stats?.rstd ?? null, geo.G, 0),
      partials: a.alloc(s.partials),
      perItem: a.alloc(s.perItem),
      threadScratch: a.alloc(s.perThread * engine.runner.threads),
      threadScratchBytes: s.perThread,
      shiftSource: engine.vector(shifts, geo.G, 0),
      ds: a.alloc(geo.C * 8),
      db: a.alloc(geo.C * 8),
      statsGiven: stats !== null,
      wantDx: true,
    };
    this.units = workLayout(geo).unitsPerItem;
  }

  /** Run a step over units [u0, u1), whose data start at x (and dy) in the arena; outputs in place. */
  async step(step: UnitStep, ptrs: { x: number; dy?: number }, u0: number, u1: number): Promise<void> {
    const back = unitOffset(this.geo, u0);
    const x = ptrs.x - back, dy = (ptrs.dy ?? 0) - back;
    await this.engine.runner.units(step, { ...this.job, x, y: x, dy, dx: dy }, u0, u1);
  }

  /** False when float32 partial sums overflowed: rerun the chunks with "statsWide", then finalize(true). */
  finalizeStats(wide = false): boolean {
    return this.engine.executor().finalizeStats(this.job, workLayout(this.geo), 0, wide);
  }
  prepareNorm(): void {
    this.engine.executor().prepareNorm(this.job, 0);
  }
  /** False when float32 partial sums overflowed: rerun the chunks with "gradWide", then finalize(true). */
  finalizeGrad(wide = false): boolean {
    return this.engine.executor().finalizeGrad(this.job, workLayout(this.geo), 0, wide);
  }
  prepareDx(): void {
    this.engine.executor().prepareDx(this.job, 0);
  }

  results(): BackwardResult {
    const a = this.engine.arena, G = this.geo.G, C = this.geo.C;
    return {
      mean: a.f64(this.job.mean, G).slice(),
      rstd: a.f64(this.job.rstd, G).slice(),
      ds: a.f64(this.job.ds, C).slice(),
      db: a.f64(this.job.db, C).slice(),
    };
  }

  release(): void {
    this.engine.arena.release(this.mark);
  }
}
