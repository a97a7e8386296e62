/**
 * STREAM-style bandwidth probes and a multiply-add probe, run by every thread of the pool on its
 * share of the arrays (the same runtime and threads as the GroupNorm kernels). Parameters travel in
 * the control area after the job record.
 */
import type { Team } from "./schedule.js";
import type { KernelExports } from "./wasm.js";
import { JOB_FIELDS, JOB_OFFSET, MAX_THREADS } from "./pool/protocol.js";

export const enum Probe {
  Copy = 0,
  Add = 1,
  Triad = 2,
  Read = 3,
  Flops = 4,
  Flops32 = 5,
}

const PROBE_OFFSET = JOB_OFFSET + JOB_FIELDS * 8;
/** Per-thread results (float64) after the probe parameters. */
const PROBE_RESULTS = PROBE_OFFSET + 8 * 8;

export interface ProbeParams {
  probe: Probe;
  a: number;
  b: number;
  c: number;
  /** float64 elements per array (multiple of 8), or multiply-add rounds for Flops. */
  n: number;
  /** Passes over the arrays in one dispatch (for small, cache-sized arrays); default 1. */
  reps?: number;
}

export function encodeProbe(buf: ArrayBufferLike, p: ProbeParams): void {
  new Float64Array(buf, PROBE_OFFSET, 6).set([p.probe, p.a, p.b, p.c, p.n, p.reps ?? 1]);
}

export function runProbe(k: KernelExports, buf: ArrayBufferLike, team: Team): void {
  const [probe, a, b, c, n, reps] = new Float64Array(buf, PROBE_OFFSET, 6);
  if (probe === Probe.Flops || probe === Probe.Flops32) {
    new Float64Array(buf, PROBE_RESULTS, MAX_THREADS)[team.ith] = k.flops_probe(n, team.ith, probe === Probe.Flops32 ? 1 : 0);
    return;
  }
  const blocks = n / 8;
  const b0 = Math.floor((blocks * team.ith) / team.nth) * 8;
  const b1 = Math.floor((blocks * (team.ith + 1)) / team.nth) * 8;
  const off = b0 * 8, len = b1 - b0;
  for (let r = 0; r < reps; r++) pass(k, buf, probe, a + off, b + off, c + off, len, team.ith);
}

function pass(k: KernelExports, buf: ArrayBufferLike, probe: number, a: number, b: number, c: number, len: number, ith: number): void {
  switch (probe) {
    case Probe.Copy:
      k.stream_copy(a, c, len);
      break;
    case Probe.Add:
      k.stream_add(a, b, c, len);
      break;
    case Probe.Triad:
      k.stream_triad(a, b, c, 3.0, len);
      break;
    case Probe.Read:
      new Float64Array(buf, PROBE_RESULTS, MAX_THREADS)[ith] = k.stream_read(a, len);
      break;
  }
}
