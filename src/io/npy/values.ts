/**
 * The raw values of a .npy file of any numeric dtype (float, integer, bool), in file order, as
 * float64, for the order-independent statistics of info. Integers beyond 2^53 are rounded.
 */
import { HOST_LE } from "../../core/dtype.js";
import { decodeBF16 } from "../bfloat16.js";
import type { ByteSource } from "../bytes.js";
import { decodeF16 } from "../float16.js";
import { alignedBuffer, swapInPlace } from "../files.js";
import { CHUNK_BYTES } from "./format.js";
import type { NpyDescription } from "./header.js";

/** An element type and where its values lie: a .npy header's description, or a safetensors tensor's. */
export type RawDescription = Pick<NpyDescription, "element" | "size" | "dataOffset">;

/** Whether info can compute statistics of this element type. */
export function isNumeric(d: Pick<NpyDescription, "element">): boolean {
  const k = d.element.kind;
  return (k === "f" && d.element.dtype !== null) || k === "i" || k === "u" || k === "b";
}

function decode(raw: Buffer, n: number, d: RawDescription, out: Float64Array): void {
  const { kind, bytes } = d.element;
  const b = bytes!;
  if (b > 1 && d.element.littleEndian !== HOST_LE) swapInPlace(raw.subarray(0, n * b), b as 2 | 4 | 8);
  const buf = raw.buffer, off = raw.byteOffset;
  const view =
    kind === "f" ? (b === 2 ? null : b === 4 ? new Float32Array(buf, off, n) : new Float64Array(buf, off, n))
    : kind === "b" ? new Uint8Array(buf, off, n)
    : kind === "i" ? (b === 1 ? new Int8Array(buf, off, n) : b === 2 ? new Int16Array(buf, off, n) : b === 4 ? new Int32Array(buf, off, n) : new BigInt64Array(buf, off, n))
    : b === 1 ? new Uint8Array(buf, off, n) : b === 2 ? new Uint16Array(buf, off, n) : b === 4 ? new Uint32Array(buf, off, n) : new BigUint64Array(buf, off, n);
  if (view === null) (d.element.dtype === "bfloat16" ? decodeBF16 : decodeF16)(new Uint16Array(buf, off, n), out);
  else if (kind === "b") for (let i = 0; i < n; i++) out[i] = view[i] ? 1 : 0;
  else if (view instanceof BigInt64Array || view instanceof BigUint64Array) for (let i = 0; i < n; i++) out[i] = Number(view[i]);
  else out.set(view as ArrayLike<number>);
}

/** The values of a numeric element type by range (stored order), decoded to float64 through a bounded scratch buffer. */
export class RawValues {
  #raw: Buffer | undefined;

  constructor(
    readonly bytes: ByteSource,
    readonly d: RawDescription,
  ) {}

  /** Values [start, start + count) into out[0 ...]. */
  async read(start: number, count: number, out: Float64Array): Promise<void> {
    const b = this.d.element.bytes!;
    const per = Math.max(1, Math.floor(CHUNK_BYTES / 8));
    this.#raw ??= alignedBuffer(Math.min(per, Math.max(1, this.d.size)) * b);
    for (let done = 0; done < count; ) {
      const n = Math.min(per, count - done);
      await this.bytes.read(this.#raw, 0, n * b, this.d.dataOffset + (start + done) * b);
      decode(this.#raw, n, this.d, out.subarray(done, done + n));
      done += n;
    }
  }
}
