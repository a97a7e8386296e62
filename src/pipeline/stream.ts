/**
 * The pipeline of a streamed run: while slice k is computed, slice k+1 is read and slice k−1
 * written, through a fixed set of buffers; and the per-phase timing its report carries.
 */
import { now } from "../io/clock.js";
import type { Slice } from "./slices.js";

export interface Phases {
  read: number;
  compute: number;
  write: number;
  total: number;
}

/** Busy time per phase (phases may overlap) and the wall time from creation to `finish()`. */
export function phaseTimer(): {
  phases: Phases;
  timed: (kind: "read" | "compute" | "write", f: () => Promise<unknown>) => Promise<void>;
  finish: () => Phases;
} {
  const phases: Phases = { read: 0, compute: 0, write: 0, total: 0 };
  const t0 = now();
  return {
    phases,
    async timed(kind, f) {
      const t = now();
      await f();
      phases[kind] += now() - t;
    },
    finish() {
      phases.total = now() - t0;
      return phases;
    },
  };
}

/** Milliseconds to seconds, per phase. */
export function toSeconds(p: Phases): Phases {
  return { read: p.read / 1000, compute: p.compute / 1000, write: p.write / 1000, total: p.total / 1000 };
}

/**
 * Run read → compute → write over the slices with up to three buffer sets in rotation: read(k+1),
 * compute(k) and write(k−1) proceed together (min(3, slices) buffers are needed). Steps of one kind
 * run in slice order. Times per phase are busy times (they overlap); `total` is the wall time.
 */
export async function pipeline<B, S extends { index: number } = Slice>(
  slices: { readonly count: number; at(index: number): S },
  buffers: B[],
  steps: {
    read(s: S, b: B): Promise<void>;
    compute(s: S, b: B): Promise<void>;
    write(s: S, b: B): Promise<void>;
  },
  onSlice?: (done: S) => void,
): Promise<Phases> {
  const { timed, finish } = phaseTimer();
  const S = slices.count;
  const nb = buffers.length;
  if (nb < Math.min(3, S)) throw new Error(`pipeline: ${nb} buffers for ${S} slices`);
  // the slices in flight, made as they enter (the plan describes them, it does not hold them)
  const inFlight: S[] = [];
  for (let k = 0; k < S + 2; k++) {
    const work: Promise<void>[] = [];
    if (k < S) {
      const s = (inFlight[k % 3] = slices.at(k));
      work.push(timed("read", () => steps.read(s, buffers[k % nb])));
    }
    if (k - 1 >= 0 && k - 1 < S) work.push(timed("compute", () => steps.compute(inFlight[(k - 1) % 3], buffers[(k - 1) % nb])));
    if (k - 2 >= 0 && k - 2 < S) {
      const s = inFlight[(k - 2) % 3];
      work.push(timed("write", () => steps.write(s, buffers[(k - 2) % nb])).then(() => onSlice?.(s)));
    }
    // settle all before failing, so no step is left running against a buffer we give back
    const results = await Promise.allSettled(work);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
  return finish();
}
