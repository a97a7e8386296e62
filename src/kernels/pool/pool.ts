/**
 * A persistent pool of worker threads over the one shared memory (after piscina, minus the queue:
 * one job at a time). Dispatch: write the job into the control area, bump the generation and
 * notify; each thread runs its share and counts itself done. The main thread waits asynchronously,
 * so it still sees a thread that dies and can abort the others instead of hanging.
 */
import { Worker } from "node:worker_threads";
import { type Job, UNIT_STEPS, type UnitStep } from "../plan.js";
import type { Runner } from "../runner.js";
import { encodeNormals, type NormalsParams, pendingCounts } from "../normals.js";
import { encodeProbe, type ProbeParams } from "../probes.js";
import { encodeScan, type ScanParams } from "../scan.js";
import type { Kind } from "../schedule.js";
import { kernelModule } from "../wasm.js";
import { Command, CTL, CTL_WORDS, encodeJob, type WorkerMessage, type WorkerSetup } from "./protocol.js";

/** A pool thread failed (exit status 3). */
export class WorkerFailure extends Error {
  constructor(message: string, readonly detail?: string) {
    super(message);
    this.name = "WorkerFailure";
  }
}

/**
 * The worker's file beside this module's: dist/kernels/pool/worker.js, or in the CLI's bundle
 * dist/bundle/worker.js (scripts/bundle.js); run from the sources (the tests), the built one.
 */
const workerUrl = import.meta.url.endsWith(".ts") ? new URL("../../../dist/kernels/pool/worker.js", import.meta.url) : new URL("./worker.js", import.meta.url);
/** How often a waiting dispatch looks again for a thread that died without a message (ms). */
const WAIT_SLICE_MS = 1000;
/** Time given to a failed thread's message (with its error text) to arrive (ms). */
const ERROR_MESSAGE_GRACE_MS = 50;
/**
 * A pool thread's JavaScript heap. Its data live in the shared memory; it holds only the kernels'
 * instance and a few small objects per dispatch (about 5 MB live). But it never returns to its event
 * loop (it waits in Atomics.wait), where V8 runs the collections it schedules as tasks. Measured
 * (not traced into V8): with the default limits its old space kept the dead objects of its
 * dispatches, about 0.7 KB each, and was collected only every few tens of MB; at thousands of
 * dispatches a second (items streamed in chunks) the process's resident set grew by over 1 MB/s for
 * as long as the run lasted. Small limits make V8 collect in time, and bound each thread's heap.
 */
export const WORKER_HEAP = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 } as const;

/**
 * The parent's Node flags for the workers, less those about the main script: a worker given
 * `--input-type` (left by `node --input-type=module -e …` or a script on stdin) refuses to load its
 * file, and `-e`/`-p` with their code mean nothing to it.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if (a.startsWith("--input-type=") || a.startsWith("--eval=") || a.startsWith("--print=")) continue;
    if (a === "--input-type" || a === "-e" || a === "--eval" || a === "-p" || a === "--print" || a === "-pe") {
      i++; // and its value
      continue;
    }
    out.push(a);
  }
  return out;
}

export interface PoolOptions {
  /** Test-only fault injection (see worker.ts). */
  fault?: "trap" | "exit";
  /**
   * Unreference the workers while no job runs, so an idle pool never keeps the process alive (a
   * library's default engine). During a dispatch they are referenced: Atomics.waitAsync alone does
   * not keep Node's event loop running.
   */
  unref?: boolean;
}

export class PoolRunner implements Runner {
  private readonly workers: Worker[] = [];
  private readonly ctl: Int32Array;
  private failure: WorkerFailure | null = null;
  private closing = false;
  /** Threads taking part in the dispatches (the first `active` of the pool): all but for thread-scaling measurements. */
  private active: number;
  readonly ready: Promise<void>;
  private up = false;

  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly threads: number,
    private readonly cacheBytes: number,
    private readonly options: PoolOptions = {},
  ) {
    const fault = options.fault;
    this.active = threads;
    this.ctl = new Int32Array(memory.buffer, 0, CTL_WORDS);
    const module = kernelModule();
    const started: Promise<void>[] = [];
    for (let ith = 0; ith < threads; ith++) {
      const setup: WorkerSetup = { memory, module, ith, fault };
      const w = new Worker(workerUrl, { workerData: setup, execArgv: workerExecArgv(), resourceLimits: WORKER_HEAP });
      started.push(
        new Promise<void>((resolve, reject) => {
          w.on("message", (m: WorkerMessage) => {
            if (m.type === "ready") resolve();
            else this.fail(new WorkerFailure(`worker thread ${m.ith} failed: ${m.message}`, m.stack));
          });
          w.once("error", (e) => {
            reject(e);
            this.fail(new WorkerFailure(`worker thread ${ith} crashed: ${e.message}`, e.stack));
          });
          w.once("exit", (code) => {
            if (!this.closing) {
              const f = new WorkerFailure(`worker thread ${ith} exited unexpectedly (code ${code})`);
              reject(f);
              this.fail(f);
            }
          });
        }),
      );
      this.workers.push(w);
    }
    // referenced while they start (the engine waits for them: an unreferenced start would let the
    // process exit under an await), unreferenced from then on while idle
    this.ready = Promise.all(started)
      .finally(() => {
        if (options.unref) for (const w of this.workers) w.unref();
      })
      .then(() => {
        this.up = true;
      });
    this.ready.catch(() => undefined);
  }

  /** Whether every thread has started (`ready` has resolved). */
  get started(): boolean {
    return this.up;
  }

  /** Each thread's heap limits as Node applied them (WORKER_HEAP). */
  get heapLimits(): Array<Worker["resourceLimits"]> {
    return this.workers.map((w) => w.resourceLimits);
  }

  private fail(f: WorkerFailure): void {
    if (!this.failure) this.failure = f;
    Atomics.store(this.ctl, CTL.ABORT, 1);
    Atomics.notify(this.ctl, CTL.BAR_GEN);
    Atomics.notify(this.ctl, CTL.DONE);
  }

  private async dispatch(cmd: Command): Promise<void> {
    if (this.options.unref) for (const w of this.workers) w.ref();
    try {
      await this.dispatchNow(cmd);
    } finally {
      if (this.options.unref) for (const w of this.workers) w.unref();
    }
  }

  private async dispatchNow(cmd: Command): Promise<void> {
    await this.ready;
    if (this.failure) throw this.failure;
    const c = this.ctl;
    Atomics.store(c, CTL.CMD, cmd);
    const nth = this.active;
    Atomics.store(c, CTL.NTH, nth);
    Atomics.store(c, CTL.DONE, 0);
    Atomics.store(c, CTL.ABORT, 0);
    Atomics.store(c, CTL.ERROR, 0);
    Atomics.store(c, CTL.BAR_COUNT, 0);
    Atomics.add(c, CTL.GEN, 1);
    Atomics.notify(c, CTL.GEN);
    for (;;) {
      const done = Atomics.load(c, CTL.DONE);
      if (done >= nth) break;
      if (this.failure) break;
      const r = Atomics.waitAsync(c, CTL.DONE, done, WAIT_SLICE_MS);
      if (r.async) await r.value;
    }
    if (Atomics.load(c, CTL.ERROR) && !this.failure) {
      // the thread's message with the text is on its way
      await new Promise((resolve) => setTimeout(resolve, ERROR_MESSAGE_GRACE_MS));
      if (!this.failure) this.failure = new WorkerFailure("a worker thread failed");
    }
    if (this.failure) throw this.failure;
  }

  async run(kind: Kind, job: Job): Promise<void> {
    encodeJob(this.memory.buffer, job, this.cacheBytes);
    await this.dispatch(kind === "forward" ? Command.Forward : Command.Backward);
  }

  async units(step: UnitStep, job: Job, u0: number, u1: number): Promise<void> {
    encodeJob(this.memory.buffer, job, this.cacheBytes);
    Atomics.store(this.ctl, CTL.STEP, UNIT_STEPS.indexOf(step));
    Atomics.store(this.ctl, CTL.U0, u0);
    Atomics.store(this.ctl, CTL.U1, u1);
    await this.dispatch(Command.Units);
  }

  async probe(p: ProbeParams): Promise<void> {
    encodeProbe(this.memory.buffer, p);
    await this.dispatch(Command.Probe);
  }

  async normals(p: NormalsParams): Promise<number[]> {
    encodeNormals(this.memory.buffer, p);
    await this.dispatch(Command.Normals);
    return pendingCounts(this.memory.buffer, this.active);
  }

  async scan(p: ScanParams): Promise<void> {
    encodeScan(this.memory.buffer, p);
    await this.dispatch(Command.Scan);
  }

  /** Run the following dispatches on the first `k` threads only (1 ≤ k ≤ threads); the others stay idle. */
  useThreads(k: number): void {
    if (!Number.isInteger(k) || k < 1 || k > this.threads) throw new RangeError(`threads taking part must be 1 to ${this.threads}, got ${k}`);
    this.active = k;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    Atomics.store(this.ctl, CTL.CMD, Command.Exit);
    Atomics.add(this.ctl, CTL.GEN, 1);
    Atomics.notify(this.ctl, CTL.GEN);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
