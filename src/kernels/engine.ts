/**
 * The production GroupNorm path on one shared WebAssembly memory: tensors are placed in the arena
 * by the caller (the I/O layer reads straight into it), the engine adds its scratch, runs the
 * kernels and hands back the small per-group and per-channel results.
 */
import { Arena } from "./arena.js";
import { Executor, type Geometry, type Job, gammaBetaBackward, scratchBytes } from "./plan.js";
import { createSharedMemory, instantiateKernels } from "./wasm.js";

export interface ForwardResult {
  mean: Float64Array; // N·G
  rstd: Float64Array; // N·G
}

export interface BackwardResult extends ForwardResult {
  /** Per-(n, c) internal gradients, for gamma/beta backward across slices. */
  ds: Float64Array;
  db: Float64Array;
}

/** Runs a job's items: on this thread, or (see pool) on worker threads. */
export interface Runner {
  run(kind: "forward" | "backward", job: Job): Promise<void>;
  readonly threads: number;
  close(): Promise<void>;
}

export class InlineRunner implements Runner {
  readonly threads = 1;
  private readonly exec: Executor;
  constructor(memory: WebAssembly.Memory) {
    this.exec = new Executor(instantiateKernels(memory), memory);
  }
  async run(kind: "forward" | "backward", job: Job): Promise<void> {
    const items = job.layout === "nchw" ? job.N * job.G : job.N;
    if (kind === "forward") this.exec.forwardItems(job, 0, items);
    else this.exec.backwardItems(job, 0, items);
  }
  async close(): Promise<void> {}
}

export class Engine {
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  runner: Runner;

  constructor(runner?: (memory: WebAssembly.Memory) => Runner) {
    this.memory = createSharedMemory();
    this.arena = new Arena(this.memory);
    this.runner = runner ? runner(this.memory) : new InlineRunner(this.memory);
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
