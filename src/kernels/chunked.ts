/**
 * One work item too large for the memory budget (an NHWC sample, or an NCHW group as a one-group
 * tensor), streamed through the arena in chunks of whole units. Its unit partials persist between
 * chunks and combine in the usual fixed order, so results are bitwise those of an in-memory run.
 * The caller supplies each group's shift K (the group's first value), read from the file.
 */
import type { BackwardResult, Engine, ForwardResult } from "./engine.js";
import { buildJob, type Geometry, type Job, unitOffset, type UnitStep } from "./plan.js";

export class ChunkedItem {
  readonly job: Job;
  private readonly mark: number;

  constructor(
    private readonly engine: Engine,
    readonly geo: Geometry,
    eps: number,
    gamma: ArrayLike<number> | null,
    beta: ArrayLike<number> | null,
    stats: ForwardResult | null,
    shifts: ArrayLike<number>,
    variance = false,
    /** The activation's code (forward: y = act(pre); backward: through it, with beta). */
    act = 0,
  ) {
    if (geo.N !== 1) throw new Error("ChunkedItem: one item (N = 1) at a time");
    this.mark = engine.arena.used;
    this.job = buildJob(engine, geo, { eps, gamma, beta, stats, shifts, gradients: true, wantDx: true, variance, act });
  }

  get units(): number {
    return this.job.work.unitsPerItem;
  }

  /** Run a step over units [u0, u1), whose data start at x (and dy) in the arena; outputs in place. */
  async step(step: UnitStep, ptrs: { x: number; dy?: number }, u0: number, u1: number): Promise<void> {
    const back = unitOffset(this.geo, u0);
    const x = ptrs.x - back, dy = (ptrs.dy ?? 0) - back;
    await this.engine.units(step, { ...this.job, x, y: x, dy, dx: dy }, u0, u1);
  }

  /** False when float32 partial sums overflowed: rerun the chunks with "statsWide", then finalize(true). */
  finalizeStats(wide = false): boolean {
    return this.engine.executor().finalizeStats(this.job, 0, wide);
  }
  prepareNorm(): void {
    this.engine.executor().prepareNorm(this.job, 0);
  }
  /** False when float32 partial sums overflowed: rerun the chunks with "gradWide", then finalize(true). */
  finalizeGrad(wide = false): boolean {
    return this.engine.executor().finalizeGrad(this.job, 0, wide);
  }
  prepareDx(): void {
    this.engine.executor().prepareDx(this.job, 0);
  }
  /** Backward through the activation: the forward's coefficients, after the statistics. */
  prepareAct(): void {
    this.engine.executor().prepareAct(this.job, 0);
  }

  results(): BackwardResult {
    const a = this.engine.arena, G = this.geo.G, C = this.geo.C;
    const r: BackwardResult = {
      mean: a.f64(this.job.mean, G).slice(),
      rstd: a.f64(this.job.rstd, G).slice(),
      ds: a.f64(this.job.ds, C).slice(),
      db: a.f64(this.job.db, C).slice(),
    };
    if (this.job.variance) r.variance = a.f64(this.job.variance, G).slice();
    return r;
  }

  release(): void {
    this.engine.arena.release(this.mark);
  }
}
