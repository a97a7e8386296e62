/**
 * A pool thread: instantiates the kernels on the shared memory, then waits on the control array
 * for dispatches, runs its share (ith of nth) and counts itself done.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Executor, runUnits } from "../executor.js";
import { UNIT_STEPS } from "../plan.js";
import { execute } from "../schedule.js";
import { instantiateKernels } from "../wasm.js";
import { runNormals } from "../normals.js";
import { runProbe } from "../probes.js";
import { runScan } from "../scan.js";
import { Aborted, barrier, Command, CTL, CTL_WORDS, decodeJob, type WorkerMessage, type WorkerSetup } from "./protocol.js";

const setup = workerData as WorkerSetup;
const { memory, ith } = setup;
const kernels = instantiateKernels(memory, setup.module);
const exec = new Executor(kernels, memory, ith);
const ctl = new Int32Array(memory.buffer, 0, CTL_WORDS);
const post = (m: WorkerMessage) => parentPort!.postMessage(m);
// Fault injection for the tests of failure handling (exit 3, never a hang): "trap" makes thread 0
// run a kernel out of bounds, "exit" makes it exit (set by the CLI from GROUPNORM_FAULT).
const fault = ith === 0 ? setup.fault : undefined;

// read the generation before saying ready: a dispatch can follow the message at once
let seen = Atomics.load(ctl, CTL.GEN);
post({ type: "ready", ith });
for (;;) {
  // Wait for a new generation, not for a wake-up. The main thread bumps GEN and then notifies: a
  // thread that was not asleep yet sees the new GEN at once, runs the dispatch and can be asleep
  // again, on that GEN, before the notify arrives. Taken as a dispatch, that late notify made it
  // run the job a second time and count itself done twice, while the main thread was already
  // reading the results and reusing the scratch (backward: dX over dY, so the rerun read dX).
  while (Atomics.load(ctl, CTL.GEN) === seen) Atomics.wait(ctl, CTL.GEN, seen);
  seen = Atomics.load(ctl, CTL.GEN);
  const cmd = Atomics.load(ctl, CTL.CMD);
  if (cmd === Command.Exit) break;
  const nth = Atomics.load(ctl, CTL.NTH);
  if (ith < nth) {
    try {
      const team = { ith, nth, barrier: () => barrier(ctl, nth) };
      if (fault === "trap") kernels.stats_run_f64(0xfffffff0, 1024, 0, 0);
      if (fault === "exit") process.exit(7);
      if (cmd === Command.Probe) runProbe(kernels, memory.buffer, team);
      else if (cmd === Command.Normals) runNormals(kernels, memory.buffer, team);
      else if (cmd === Command.Scan) runScan(kernels, memory.buffer, team);
      else if (cmd === Command.Units) {
        const { job } = decodeJob(memory.buffer);
        const u0 = Atomics.load(ctl, CTL.U0), u1 = Atomics.load(ctl, CTL.U1);
        const a = u0 + Math.floor(((u1 - u0) * ith) / nth), b = u0 + Math.floor(((u1 - u0) * (ith + 1)) / nth);
        runUnits(exec, job, UNIT_STEPS[Atomics.load(ctl, CTL.STEP)], a, b);
      } else {
        const { job, cacheBytes } = decodeJob(memory.buffer);
        execute(exec, cmd === Command.Forward ? "forward" : "backward", job, team, cacheBytes);
      }
    } catch (e) {
      if (!(e instanceof Aborted)) {
        const err = e as Error;
        Atomics.store(ctl, CTL.ERROR, 1);
        Atomics.store(ctl, CTL.ABORT, 1);
        Atomics.notify(ctl, CTL.BAR_GEN);
        post({ type: "error", ith, message: err?.message ?? String(e), stack: err?.stack });
      }
    }
    Atomics.add(ctl, CTL.DONE, 1);
    Atomics.notify(ctl, CTL.DONE);
  }
}
