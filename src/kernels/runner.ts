/**
 * What runs a job: the single-thread path here (the same schedule with one thread, no workers), or
 * the pool of worker threads (pool/pool.ts).
 */
import { Executor, runUnits } from "./executor.js";
import type { Job, UnitStep } from "./plan.js";
import { encodeNormals, type NormalsParams, pendingCounts, runNormals } from "./normals.js";
import { encodeProbe, type ProbeParams, runProbe } from "./probes.js";
import { encodeScan, runScan, type ScanParams } from "./scan.js";
import { execute, type Kind } from "./schedule.js";
import { instantiateKernels, type KernelExports } from "./wasm.js";

/** Runs a job on this thread or on a pool of worker threads. */
export interface Runner {
  run(kind: Kind, job: Job): Promise<void>;
  /** One step over units [u0, u1) of item 0 of the job, shared out among the threads. */
  units(step: UnitStep, job: Job, u0: number, u1: number): Promise<void>;
  probe(p: ProbeParams): Promise<void>;
  /** A chunk of gradcheck's random values, shared out among the threads; their pending counts, per thread. */
  normals(p: NormalsParams): Promise<number[]>;
  /** A scan of info or compare (scan.ts), its blocks shared out among the threads. */
  scan(p: ScanParams): Promise<void>;
  readonly threads: number;
  close(): Promise<void>;
}

const alone = { ith: 0, nth: 1, barrier: () => undefined };

/** The single-thread path: no workers, the same schedule with one thread. */
export class InlineRunner implements Runner {
  readonly threads = 1;
  /** The executor on this thread (also the engine's, for the serial steps of chunked items). */
  readonly exec: Executor;
  private readonly kernels: KernelExports;
  constructor(private readonly memory: WebAssembly.Memory) {
    this.kernels = instantiateKernels(memory);
    this.exec = new Executor(this.kernels, memory, 0);
  }
  async run(kind: Kind, job: Job): Promise<void> {
    execute(this.exec, kind, job, alone, 0);
  }
  async units(step: UnitStep, job: Job, u0: number, u1: number): Promise<void> {
    runUnits(this.exec, job, step, u0, u1);
  }
  async probe(p: ProbeParams): Promise<void> {
    encodeProbe(this.memory.buffer, p);
    runProbe(this.kernels, this.memory.buffer, alone);
  }
  async normals(p: NormalsParams): Promise<number[]> {
    encodeNormals(this.memory.buffer, p);
    runNormals(this.kernels, this.memory.buffer, alone);
    return pendingCounts(this.memory.buffer, 1);
  }
  async scan(p: ScanParams): Promise<void> {
    encodeScan(this.memory.buffer, p);
    runScan(this.kernels, this.memory.buffer, alone);
  }
  async close(): Promise<void> {}
}
