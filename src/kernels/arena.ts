/**
 * A bump allocator over the shared WebAssembly memory. Regions are 64-byte aligned (one cache
 * line) so no two tensors, and no two threads' scratch, share a line. The first 64 KiB hold the
 * pool's control words and are never handed out.
 */
import { MAX_PAGES, WASM_PAGE } from "./wasm.js";

export const CONTROL_BYTES = 65536;

export class Arena {
  private top = CONTROL_BYTES;

  constructor(readonly memory: WebAssembly.Memory) {}

  get used(): number {
    return this.top;
  }

  /** Reserve `bytes` and return the byte offset; grows the memory when needed. */
  alloc(bytes: number): number {
    const at = align64(this.top);
    const end = at + Math.max(0, bytes);
    if (end > MAX_PAGES * WASM_PAGE) {
      throw new RangeError(`needs ${end} bytes of WebAssembly memory, more than the 4 GiB limit`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / WASM_PAGE));
    this.top = end;
    return at;
  }

  /** Release everything allocated after `mark` (a value of `used`). */
  release(mark: number): void {
    this.top = Math.max(CONTROL_BYTES, mark);
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  f64(ptr: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, length);
  }
}

export function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}
