/**
 * The scans of info and compare on the engine's threads: a slice of values in the arena is cut into
 * blocks of SCAN_BLOCK values, each thread takes its share of the blocks (ith of nth) and writes one
 * record of partials per block (assembly/scan.ts, assembly/compare.ts). Which thread scanned a block
 * never changes its record, and the records are merged in block order (analysis/), so results are
 * the same for any thread count and any slicing into whole blocks. Parameters travel in the control
 * area after the probes' (probes.ts), as the probes' do.
 */
import type { Dtype } from "../core/dtype.js";
import { CONTROL_BYTES } from "./arena.js";
import type { Team } from "./schedule.js";
import type { KernelExports } from "./wasm.js";
import { JOB_FIELDS, JOB_OFFSET, MAX_THREADS } from "./pool/protocol.js";

/** Values per block: a multiple of 8, small enough that a block's second pass reads it from L1/L2. */
export const SCAN_BLOCK = 8192;
/** Float64 values per block record (both kinds). */
export const RECORD = 8;
/** Bytes of a thread's scratch for compare (float32 copies of a float16 or bfloat16 block of each side). */
export const COMPARE_SCRATCH = 8 * SCAN_BLOCK;

/** How values lie in the arena for the kernels: the file's own dtype (host byte order). */
export const enum ScanDtype {
  F32 = 0,
  F64 = 1,
  F16 = 2,
  BF16 = 3,
}

export function scanDtypeOf(d: Dtype): ScanDtype {
  return d === "float32" ? ScanDtype.F32 : d === "float64" ? ScanDtype.F64 : d === "float16" ? ScanDtype.F16 : ScanDtype.BF16;
}

export function scanItemBytes(d: ScanDtype): number {
  return d === ScanDtype.F64 ? 8 : d === ScanDtype.F32 ? 4 : 2;
}

export const enum ScanOp {
  Summary = 0,
  Compare = 1,
}

export interface ScanParams {
  op: ScanOp;
  /** The values (and, for compare, the reference b) in the arena, and their element codes. */
  a: number;
  da: ScanDtype;
  b: number;
  db: ScanDtype;
  /** Values in the slice. */
  n: number;
  /** SCAN_BLOCK-value blocks' records: ceil(n / SCAN_BLOCK) of RECORD float64. */
  out: number;
  atol: number;
  rtol: number;
  /** Compare: COMPARE_SCRATCH bytes per thread, thread ith's at scratch + ith·COMPARE_SCRATCH. */
  scratch: number;
}

/** After the probes' parameters and per-thread results. */
const SCAN_OFFSET = JOB_OFFSET + JOB_FIELDS * 8 + 8 * 8 + MAX_THREADS * 8;
const FIELDS = 10;
if (SCAN_OFFSET + FIELDS * 8 > CONTROL_BYTES) throw new Error("scan parameters do not fit the control area");

export function encodeScan(buf: ArrayBufferLike, p: ScanParams): void {
  new Float64Array(buf, SCAN_OFFSET, FIELDS).set([p.op, p.a, p.da, p.b, p.db, p.n, p.out, p.atol, p.rtol, p.scratch]);
}

/** This thread's blocks of the scan in the control area. */
export function runScan(k: KernelExports, buf: ArrayBufferLike, team: Team): void {
  const [op, a, da, b, db, n, out, atol, rtol, scratch] = new Float64Array(buf, SCAN_OFFSET, FIELDS);
  const blocks = Math.ceil(n / SCAN_BLOCK);
  const k0 = Math.floor((blocks * team.ith) / team.nth), k1 = Math.floor((blocks * (team.ith + 1)) / team.nth);
  if (k0 >= k1) return;
  const v0 = k0 * SCAN_BLOCK, count = Math.min(n, k1 * SCAN_BLOCK) - v0;
  const rec = out + k0 * RECORD * 8;
  if (op === ScanOp.Summary) k.scan_blocks(a + v0 * scanItemBytes(da), count, da, SCAN_BLOCK, rec);
  else k.compare_blocks(a + v0 * scanItemBytes(da), da, b + v0 * scanItemBytes(db), db, count, SCAN_BLOCK, atol, rtol, scratch + team.ith * COMPARE_SCRATCH, rec);
}
