/**
 * info's and compare's scans, streamed: the tensors flow through the arena in slices of whole
 * SCAN_BLOCK-value blocks, each read straight into the arena in its file's own dtype while the
 * engine scans the slice before it and the records of the one before that are merged (the pipeline
 * of stream.ts, three buffers in flight). Slices hold whole blocks and are merged in order, so the
 * merged results do not depend on the slice size (the memory budget) or on the thread count.
 */
import type { Engine } from "../kernels/engine.js";
import { align64 } from "../kernels/arena.js";
import { COMPARE_SCRATCH, RECORD, SCAN_BLOCK, type ScanDtype, scanItemBytes, ScanOp } from "../kernels/scan.js";
import { SLICE_TARGET } from "./slices.js";
import { pipeline } from "./stream.js";

/** One tensor a scan reads, and how its values go into the arena. */
export interface ScanInput {
  /** The element type its values take in the arena. */
  readonly dtype: ScanDtype;
  /** Values [start, start + count) into the arena at byte `ptr`, as `dtype` (count · its size bytes). */
  read(start: number, count: number, ptr: number): Promise<void>;
}

export interface ScanRun {
  op: ScanOp;
  /** The values, and for compare the reference b. */
  inputs: readonly [ScanInput] | readonly [ScanInput, ScanInput];
  /** Values of each input. */
  size: number;
  /** Bytes the slices in flight may take (at least one block each whatever it says). */
  budget: number;
  atol?: number;
  rtol?: number;
  /** A slice's block records (RECORD float64 each, `blocks` of them) whose first value is `start`: called in slice order. */
  merge(records: Float64Array, blocks: number, start: number): void;
}

interface ScanSlice {
  index: number;
  start: number;
  count: number;
}

/** Blocks per slice: as many as the budget holds three times over, at most SLICE_TARGET bytes per tensor buffer, at least one. */
export function scanSliceBlocks(run: Pick<ScanRun, "inputs" | "size" | "budget">): number {
  const bytes = run.inputs.map((i) => scanItemBytes(i.dtype));
  const perBlock = bytes.reduce((t, b) => t + align64(SCAN_BLOCK * b), 0) + RECORD * 8;
  const fit = Math.floor(run.budget / (3 * perBlock));
  const target = Math.floor(SLICE_TARGET / (SCAN_BLOCK * Math.max(...bytes)));
  return Math.max(1, Math.min(Math.ceil(run.size / SCAN_BLOCK), fit, target));
}

export async function streamScan(engine: Engine, run: ScanRun): Promise<void> {
  if (run.size === 0) return;
  const perSlice = scanSliceBlocks(run);
  const cap = perSlice * SCAN_BLOCK;
  const slices = {
    count: Math.ceil(run.size / cap),
    at: (index: number): ScanSlice => ({ index, start: index * cap, count: Math.min(cap, run.size - index * cap) }),
  };
  const mark = engine.arena.used;
  try {
    const widened = run.op === ScanOp.Compare && run.inputs.some((i) => scanItemBytes(i.dtype) === 2);
    const scratch = widened ? engine.arena.alloc(COMPARE_SCRATCH * engine.threads) : 0;
    const buffers = Array.from({ length: Math.min(3, slices.count) }, () => ({
      values: run.inputs.map((i) => engine.arena.alloc(cap * scanItemBytes(i.dtype))),
      out: engine.arena.alloc(perSlice * RECORD * 8),
    }));
    const [a, b = a] = run.inputs;
    const valueBytes = run.inputs.reduce((sum, i) => sum + scanItemBytes(i.dtype), 0);
    engine.expect(run.size * valueBytes, cap * valueBytes); // a scan large enough for the pool starts it while the first slice is read
    await pipeline(slices, buffers, {
      read: async (s, buf) => {
        await Promise.all(run.inputs.map((i, k) => i.read(s.start, s.count, buf.values[k])));
      },
      compute: (s, buf) =>
        engine.scan({
          op: run.op, a: buf.values[0], da: a.dtype, b: buf.values[1] ?? 0, db: b.dtype, n: s.count, out: buf.out,
          atol: run.atol ?? 0, rtol: run.rtol ?? 0, scratch,
        }, s.count * valueBytes),
      write: async (s, buf) => {
        const blocks = Math.ceil(s.count / SCAN_BLOCK);
        run.merge(engine.arena.f64(buf.out, blocks * RECORD), blocks, s.start);
      },
    });
  } finally {
    engine.arena.release(mark);
  }
}
