/**
 * gradcheck's random inputs made by the kernels on the engine's threads (src/assembly/random.ts),
 * bitwise the values of normalsIntoPaced (random.ts): a chunk at a time in the WebAssembly memory,
 * the few values the kernels leave pending (next to a rounding boundary) made with Math.* here, and
 * the event loop let in between chunks. float64 values have no rounding to decide: each is the
 * double Math.log and Math.cos give, so each thread makes its share with random.ts's own code (the
 * same functions of the same V8 in every thread).
 */
import { type Dtype, itemSizeOf } from "../core/dtype.js";
import { f64ToBF16 } from "../io/bfloat16.js";
import { f32ToF16 } from "../io/float16.js";
import type { StoredArray } from "../io/memory.js";
import type { Engine } from "../kernels/engine.js";
import { listOf, NormalKind, PENDING, scratchBytes, share } from "../kernels/normals.js";
import type { Pacer } from "./pace.js";
import { normalAt, skip } from "./random.js";

/**
 * Values per chunk at most: on a pool, 1M (4 MiB of float32, 8 of float64; some 10 ms of its threads:
 * a dispatch's wake-ups cost a fraction of a millisecond); on the calling thread, which the chunk
 * holds, 256K (a few ms of the kernels, some 15 ms of float64's Math.*).
 */
const CHUNK = { pool: 1 << 20, inline: 1 << 18 };
/** Room for pending indices per thread: one per 64 values (about one in 5000 is pending); a fuller list is found by scanning. */
const LIST_RATIO = 64;

/** The WebAssembly memory that normalsOnEngine takes for chunks of `values`: the chunk and the threads' scratch. */
function chunkBytes(values: number, item: number, threads: number): number {
  return values * item + threads * scratchBytes(listCap(values, threads)) + 128;
}
const listCap = (values: number, threads: number) => Math.ceil(values / threads / LIST_RATIO) + 4;

/**
 * The stream of `seed` into `out` as `dtype` stores it (normalsIntoPaced's values), on the engine,
 * in chunks that take at most `bytes` of its memory (the chunks are released at the end). `room`:
 * pending indices noted per thread and chunk (a test's 0 finds them all by scanning).
 */
export async function normalsOnEngine(engine: Engine, out: StoredArray, dtype: Dtype, pacer: Pacer, bytes: number, seed: number, scale = 1, offset = 0, room?: number): Promise<void> {
  const store = dtype === "float16" ? f32ToF16 : dtype === "bfloat16" ? f64ToBF16 : null;
  const kind = { float32: NormalKind.F32, float16: NormalKind.F16, bfloat16: NormalKind.BF16, float64: NormalKind.F64 }[dtype];
  const item = itemSizeOf(dtype), threads = engine.threads;
  let chunk = Math.min(threads > 1 ? CHUNK.pool : CHUNK.inline, out.length);
  while (chunk > 64 && chunkBytes(chunk, item, threads) > bytes) chunk >>= 1;
  const mark = engine.arena.used;
  try {
    const cap = room ?? listCap(chunk, threads);
    const ptr = engine.alloc(chunk * item), scratch = engine.alloc(threads * scratchBytes(cap));
    for (let at = 0; at < out.length; at += chunk) {
      const n = Math.min(chunk, out.length - at);
      const counts = await engine.normals({ kind, out: ptr, n, state: skip(seed >>> 0, at), scale, offset, scratch, cap });
      const buf = engine.memory.buffer;
      out.set(kind === NormalKind.F64 ? new Float64Array(buf, ptr, n) : kind === NormalKind.F32 ? new Float32Array(buf, ptr, n) : new Uint16Array(buf, ptr, n), at);
      counts.forEach((count, ith) => {
        const { from, to } = share(n, ith, counts.length);
        const exact = (i: number) => normalAt(out, at + from + i, seed, scale, offset, store);
        if (count <= cap) for (const i of new Uint32Array(buf, listOf({ scratch, cap }, ith), count)) exact(i);
        else {
          // the list was full: the pending values by their NaN pattern (the stream has no NaN)
          const mine = out.subarray(at + from, at + to);
          for (let i = 0; i < mine.length; i++) if (kind === NormalKind.F16 || kind === NormalKind.BF16 ? mine[i] === PENDING[kind] : Number.isNaN(mine[i])) exact(i);
        }
      });
      await pacer.pace();
    }
  } finally {
    engine.arena.release(mark);
  }
}
