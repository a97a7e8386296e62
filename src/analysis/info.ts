/**
 * Summary statistics of a tensor's values (info): the WebAssembly scan's per-block records
 * (assembly/scan.ts) streamed through the arena (pipeline/scan.ts) and merged here in block order.
 */
import type { ByteSource } from "../io/bytes.js";
import { RawValues, type RawDescription } from "../io/npy/values.js";
import { RawArray } from "../io/values.js";
import type { Engine } from "../kernels/engine.js";
import { RECORD, SCAN_BLOCK, ScanDtype, scanDtypeOf, ScanOp } from "../kernels/scan.js";
import { type ScanInput, streamScan } from "../pipeline/scan.js";

export interface Summary {
  /** Over the finite values (null when there are none). */
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  posinf: number;
  neginf: number;
}

/** Count, mean (relative to the merge's origin) and M2 of a run of blocks, and how many blocks it spans. */
interface Moments {
  count: number;
  mean: number;
  m2: number;
  blocks: number;
}

/** Chan's merge of two adjacent runs, a before b (float64; stable for any spread). */
function chan(a: Moments, b: Moments): Moments {
  const blocks = a.blocks + b.blocks;
  if (a.count === 0 || b.count === 0) return { ...(a.count === 0 ? b : a), blocks };
  const n = a.count + b.count, delta = b.mean - a.mean;
  return { count: n, mean: a.mean + (delta * b.count) / n, m2: a.m2 + b.m2 + ((delta * delta * a.count) / n) * b.count, blocks };
}

/**
 * Block records merged in order: counts added, min and max kept as `if (x < min) min = x` keeps
 * them (the first of equal values, which only ±0 can tell), and the blocks' counts, means and M2
 * merged pairwise (a binary counter over the block index, so the tree depends on nothing else) by
 * Chan's formula, the means taken relative to the first block's shift (assembly/scan.ts gives each
 * as a shift and a small part): float64-accurate however many blocks and whatever their means.
 */
export class SummaryMerge {
  /** The first block's shift with finite values: the means merged are relative to it. */
  private origin: number | null = null;
  private nan = 0;
  private posinf = 0;
  private neginf = 0;
  private min = Infinity;
  private max = -Infinity;
  /** Merged runs of 2^k blocks, earliest first, sizes strictly decreasing. */
  private runs: Moments[] = [];

  /** `size`: the values of the tensor (the last block's length). */
  constructor(private readonly size: number) {}

  /** Records [0, blocks) of `r`, of the blocks from value `start` on. */
  add(r: Float64Array, blocks: number, start: number): void {
    for (let k = 0; k < blocks; k++) {
      const o = k * RECORD;
      this.nan += r[o + 1];
      this.posinf += r[o + 2];
      this.neginf += r[o + 3];
      const count = Math.min(SCAN_BLOCK, this.size - start - k * SCAN_BLOCK) - r[o + 1] - r[o + 2] - r[o + 3];
      let part: Moments = { count, mean: 0, m2: 0, blocks: 1 };
      if (count > 0) {
        if (r[o + 4] < this.min) this.min = r[o + 4];
        if (r[o + 5] > this.max) this.max = r[o + 5];
        this.origin ??= r[o];
        part = { count, mean: r[o] - this.origin + r[o + 6], m2: r[o + 7], blocks: 1 };
      }
      const runs = this.runs;
      while (runs.length && runs[runs.length - 1].blocks === part.blocks) part = chan(runs.pop()!, part);
      runs.push(part);
    }
  }

  result(): Summary {
    let all: Moments = { count: 0, mean: 0, m2: 0, blocks: 0 };
    for (let i = this.runs.length - 1; i >= 0; i--) all = chan(this.runs[i], all);
    const c = all.count;
    return {
      min: c ? this.min : null,
      max: c ? this.max : null,
      mean: c ? this.origin! + all.mean : null,
      std: c ? Math.sqrt(all.m2 / c) : null,
      nan: this.nan,
      posinf: this.posinf,
      neginf: this.neginf,
    };
  }
}

/** The summary of `size` values read by `input`, in slices within `budget` bytes, on the engine's threads. */
export async function summarize(engine: Engine, input: ScanInput, size: number, budget: number): Promise<Summary> {
  const acc = new SummaryMerge(size);
  await streamScan(engine, { op: ScanOp.Summary, inputs: [input], size, budget, merge: (r, blocks, start) => acc.add(r, blocks, start) });
  return acc.result();
}

/**
 * How info's values go into the arena: a float dtype's own bytes, straight from the file (the kernel
 * converts float16 and bfloat16), integers and bools decoded to float64 on the way.
 */
export function valuesInput(engine: Engine, bytes: ByteSource, d: RawDescription): ScanInput {
  const el = d.element;
  if (el.dtype) {
    const raw = new RawArray(bytes, d.dataOffset, el.dtype, el.littleEndian, d.size);
    return { dtype: scanDtypeOf(el.dtype), read: (start, count, ptr) => raw.readRaw(start, count, new Uint8Array(engine.memory.buffer, ptr, count * raw.itemSize)) };
  }
  const values = new RawValues(bytes, d);
  return { dtype: ScanDtype.F64, read: (start, count, ptr) => values.read(start, count, engine.arena.f64(ptr, count)) };
}
