/**
 * gradcheck's random inputs made by the kernels (src/assembly/random.ts): a chunk of the seeded
 * normal stream, shared out among the threads in contiguous ranges, each thread noting the values it
 * left pending (next to a rounding boundary, for the caller to make with Math.*). float64 values are
 * made by the stream's JavaScript on each thread. Parameters and the per-thread counts travel in the
 * control area, after the probes'.
 */
import { normalsInto, skip } from "../checks/random.js";
import type { Team } from "./schedule.js";
import type { KernelExports } from "./wasm.js";

/** How the values are stored (the kernel's kind). */
export const enum NormalKind {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  /** float64: the doubles of Math.log and Math.cos themselves, made by the stream's own JavaScript on each thread (no rounding to decide). */
  F64 = 3,
}

/** The bit patterns a pending value holds (NaNs the stream never gives). */
export const PENDING = { [NormalKind.F32]: 0x7fc00001, [NormalKind.F16]: 0x7e01, [NormalKind.BF16]: 0x7fc1 } as const;

export interface NormalsParams {
  kind: NormalKind;
  /** Byte offset of value 0 of the chunk. */
  out: number;
  /** Values in the chunk. */
  n: number;
  /** The stream's state before value 0 of the chunk. */
  state: number;
  scale: number;
  offset: number;
  /** Byte offset of the threads' scratch, `scratchBytes(cap)` each: the kernel's constants, then `cap` u32 indices of pending values. */
  scratch: number;
  cap: number;
}

const FIELDS = ["kind", "out", "n", "state", "scale", "offset", "scratch", "cap"] as const;
/** After the job record and the probes' parameters and results (under 3 KiB). */
const NORMALS_OFFSET = 4096;
const COUNTS = NORMALS_OFFSET + 8 * FIELDS.length;

/** Bytes before a thread's pending list in its scratch (TABLE_ROOM in src/assembly/random.ts). */
const TABLE_ROOM = 1024;

/** A thread's scratch for pending lists of `cap`. */
export function scratchBytes(cap: number): number {
  return TABLE_ROOM + 4 * cap;
}

/** Where thread ith's pending list starts. */
export function listOf(p: Pick<NormalsParams, "scratch" | "cap">, ith: number): number {
  return p.scratch + ith * scratchBytes(p.cap) + TABLE_ROOM;
}

/** Thread ith's values of a chunk of n, among nth: [from, to). */
export function share(n: number, ith: number, nth: number): { from: number; to: number } {
  return { from: Math.floor((n * ith) / nth), to: Math.floor((n * (ith + 1)) / nth) };
}

export function encodeNormals(buf: ArrayBufferLike, p: NormalsParams): void {
  new Float64Array(buf, NORMALS_OFFSET, FIELDS.length).set(FIELDS.map((f) => p[f]));
}

/** This thread's share of the chunk; its pending count goes to the control area. */
export function runNormals(k: KernelExports, buf: ArrayBufferLike, team: Team): void {
  const v = new Float64Array(buf, NORMALS_OFFSET, FIELDS.length);
  const [kind, out, n, state, scale, offset, scratch, cap] = v;
  const { from, to } = share(n, team.ith, team.nth);
  const counts = new Float64Array(buf, COUNTS, team.nth);
  if (kind === NormalKind.F64) {
    normalsInto(new Float64Array(buf, out + 8 * from, to - from), skip(state, from), scale, offset);
    counts[team.ith] = 0;
    return;
  }
  const bytes = kind === NormalKind.F32 ? 4 : 2;
  counts[team.ith] = k.normals(out + from * bytes, to - from, skip(state, from), scale, offset, kind, scratch + team.ith * scratchBytes(cap), cap);
}

/** The pending counts of the last chunk, per thread. */
export function pendingCounts(buf: ArrayBufferLike, nth: number): number[] {
  return [...new Float64Array(buf, COUNTS, nth)];
}
