/**
 * The pool's shared-memory protocol. The first CONTROL_BYTES of the WebAssembly memory hold a small
 * Int32 control array (dispatch generation, command, done count, barrier, abort and error flags)
 * and the current job as float64 fields; threads start and finish with Atomics on it, never with
 * messages. Messages are only for set-up and for reporting an error's text.
 */
import { type Job, workLayout } from "../plan.js";

export const CTL = {
  GEN: 0, // bumped by the main thread for every dispatch
  CMD: 1, // Command
  NTH: 2, // threads taking part
  DONE: 3, // threads finished with the current dispatch
  BAR_COUNT: 4,
  BAR_GEN: 5,
  ABORT: 6, // set when any thread failed: everyone leaves barriers and stops
  ERROR: 7, // set by a thread that failed, before it counts itself done
  PROBE: 8, // probe kernel selector (roofline)
  STEP: 9, // Units: which step (index into UNIT_STEPS)
  U0: 10, // Units: first unit
  U1: 11, // Units: end of the unit range
} as const;
export const CTL_WORDS = 64;
/** Most threads a pool runs (per-thread slots in the control area are sized by it). */
export { MAX_THREADS } from "../../core/threads.js";

export const enum Command {
  None = 0,
  Forward = 1,
  Backward = 2,
  Probe = 3,
  Units = 4,
  Normals = 5,
  Scan = 6,
  Exit = 99,
}

/** Float64 fields of the job record, after the control words. */
export const JOB_OFFSET = CTL_WORDS * 4;
const FIELDS = [
  "N", "C", "HxW", "G", "D", "eps", "x", "y", "dy", "dx", "gamma", "beta", "mean", "rstd", "partials",
  "ds", "db", "perItem", "threadScratch", "threadScratchBytes", "precision", "layout", "statsGiven", "wantDx",
  "cacheBytes", "shiftSource", "interleaved", "variance", "act", "actCoef",
] as const;
export const JOB_FIELDS = FIELDS.length;

interface Posted {
  job: Job;
  cacheBytes: number;
}

export function encodeJob(buf: ArrayBufferLike, job: Job, cacheBytes: number): void {
  const v = new Float64Array(buf, JOB_OFFSET, FIELDS.length);
  const rec = job as unknown as Record<string, number | string | boolean>;
  FIELDS.forEach((f, i) => {
    if (f === "precision") v[i] = job.precision === "f32" ? 0 : 1;
    else if (f === "layout") v[i] = job.layout === "nchw" ? 0 : 1;
    else if (f === "statsGiven" || f === "wantDx" || f === "interleaved") v[i] = rec[f] ? 1 : 0;
    else if (f === "cacheBytes") v[i] = cacheBytes;
    else v[i] = rec[f] as number;
  });
}

export function decodeJob(buf: ArrayBufferLike): Posted {
  const v = new Float64Array(buf, JOB_OFFSET, FIELDS.length);
  const at = (f: (typeof FIELDS)[number]) => v[FIELDS.indexOf(f)];
  // Object literals, so the job has one fixed shape (fast property access in the hot paths); an
  // object filled key by key in a loop would fall back to a dictionary. The work layout is computed
  // once per dispatch, from the decoded geometry.
  const geometry: Omit<Job, "work"> = {
    N: at("N"), C: at("C"), HxW: at("HxW"), G: at("G"), D: at("D"), eps: at("eps"),
    x: at("x"), y: at("y"), dy: at("dy"), dx: at("dx"), gamma: at("gamma"), beta: at("beta"),
    mean: at("mean"), rstd: at("rstd"), partials: at("partials"), ds: at("ds"), db: at("db"),
    perItem: at("perItem"), threadScratch: at("threadScratch"), threadScratchBytes: at("threadScratchBytes"),
    shiftSource: at("shiftSource"), variance: at("variance"), act: at("act"), actCoef: at("actCoef"),
    precision: at("precision") === 0 ? "f32" : "f64",
    layout: at("layout") === 0 ? "nchw" : "nhwc",
    statsGiven: at("statsGiven") === 1,
    wantDx: at("wantDx") === 1,
    interleaved: at("interleaved") === 1,
  };
  const job: Job = { ...geometry, work: workLayout(geometry) };
  return { job, cacheBytes: at("cacheBytes") };
}

/** workerData of a pool thread. */
export interface WorkerSetup {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  ith: number;
  /** Test-only fault injection (see worker.ts). */
  fault?: "trap" | "exit";
}

/** Messages from a pool thread. */
export type WorkerMessage = { type: "ready"; ith: number } | { type: "error"; ith: number; message: string; stack?: string };

export class Aborted extends Error {
  constructor() {
    super("aborted: another thread failed");
  }
}

/** Spins before a barrier's waiter sleeps, and how long each sleep lasts (ms) before it looks for an abort. */
const BARRIER_SPINS = 2000;
const BARRIER_SLEEP_MS = 20;

/** A barrier over the control array (sense by generation); leaves with Aborted on abort. */
export function barrier(ctl: Int32Array, nth: number): void {
  const gen = Atomics.load(ctl, CTL.BAR_GEN);
  if (Atomics.add(ctl, CTL.BAR_COUNT, 1) === nth - 1) {
    Atomics.store(ctl, CTL.BAR_COUNT, 0);
    Atomics.add(ctl, CTL.BAR_GEN, 1);
    Atomics.notify(ctl, CTL.BAR_GEN);
    return;
  }
  for (let spin = 0; Atomics.load(ctl, CTL.BAR_GEN) === gen; spin++) {
    if (Atomics.load(ctl, CTL.ABORT)) throw new Aborted();
    if (spin > BARRIER_SPINS) Atomics.wait(ctl, CTL.BAR_GEN, gen, BARRIER_SLEEP_MS);
  }
}
