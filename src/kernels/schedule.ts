/**
 * Which thread does what (ggml's ith/nth). Two shapes of schedule, chosen per job; both produce
 * bitwise the same results because every unit's partials and every item's combination are fixed
 * (see plan.ts and executor.ts):
 *
 *   whole items  Items are shared out in contiguous ranges; each thread takes its items from
 *                start to end, so an item's data makes one trip through memory. Used when the
 *                items divide evenly or are many against the threads.
 *   split items  Few items (N = 1, say): the units of a wave of items are shared out, with a
 *                barrier between the steps (partials → statistics → normalisation). A wave is as
 *                many items as fit in half the last-level cache, so the second step finds them there.
 */
import type { Executor } from "./executor.js";
import type { Job } from "./plan.js";

export type Kind = "forward" | "backward";

export interface Team {
  readonly ith: number;
  readonly nth: number;
  /** Wait until every thread of the team has arrived. */
  barrier(): void;
}

export function splitsItems(job: Job, nth: number): boolean {
  const items = job.work.items;
  if (nth <= 1 || items === 0) return false;
  return !(items % nth === 0 || items >= 8 * nth);
}

function share(count: number, ith: number, nth: number): [number, number] {
  return [Math.floor((count * ith) / nth), Math.floor((count * (ith + 1)) / nth)];
}

export function execute(exec: Executor, kind: Kind, job: Job, team: Team, cacheBytes: number): void {
  const w = job.work;
  const { ith, nth } = team;
  if (!splitsItems(job, nth)) {
    const [i0, i1] = share(w.items, ith, nth);
    if (kind === "forward") exec.forwardItems(job, i0, i1);
    else exec.backwardItems(job, i0, i1);
    return;
  }
  const eb = job.precision === "f32" ? 4 : 8;
  const itemBytes = (w.samples ? job.C * job.HxW : job.D * job.HxW) * eb * (kind === "forward" ? 2 : 3);
  const wave = Math.max(1, Math.floor(cacheBytes / 2 / Math.max(1, itemBytes)));
  for (let i0 = 0; i0 < w.items; i0 += wave) {
    const i1 = Math.min(w.items, i0 + wave);
    const units = (i1 - i0) * w.unitsPerItem;
    const [u0, u1] = share(units, ith, nth);
    const eachUnit = (f: (item: number, u: number) => void, reversed = false) => {
      if (reversed) for (let k = u1 - 1; k >= u0; k--) f(i0 + Math.floor(k / w.unitsPerItem), k % w.unitsPerItem);
      else for (let k = u0; k < u1; k++) f(i0 + Math.floor(k / w.unitsPerItem), k % w.unitsPerItem);
    };
    const eachItem = (f: (item: number) => void) => {
      for (let item = i0 + ith; item < i1; item += nth) f(item);
    };
    if (kind === "forward" || !job.statsGiven) {
      eachUnit((item, u) => exec.statsUnit(job, item, u));
      team.barrier();
      eachItem((item) => {
        exec.finalizeStats(job, item);
        if (kind === "forward") exec.prepareNorm(job, item);
        else if (job.act) exec.prepareAct(job, item);
      });
      team.barrier();
    } else if (job.act) {
      eachItem((item) => exec.prepareAct(job, item));
      team.barrier();
    }
    if (kind === "forward") {
      eachUnit((item, u) => exec.normUnit(job, item, u));
      continue;
    }
    eachUnit((item, u) => exec.gradUnit(job, item, u));
    team.barrier();
    eachItem((item) => {
      exec.finalizeGrad(job, item);
      if (job.wantDx) exec.prepareDx(job, item);
    });
    team.barrier();
    // last units first: the internal-gradient step read them last, so they are still in cache
    if (job.wantDx) eachUnit((item, u) => exec.dxUnit(job, item, u, true), true);
    // the next wave's first step writes other items' partials: no barrier needed here
  }
}
