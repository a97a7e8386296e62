/** One tensor of a safetensors file as a tensor source: little-endian, C order, read by offset. */
import type { Dtype, FloatArray } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import type { ByteSource } from "../bytes.js";
import type { TensorSource } from "../tensor.js";
import { RawArray } from "../values.js";
import type { SafetensorsHeader, SafetensorsTensor } from "./header.js";

export class SafetensorsSource implements TensorSource {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly size: number;
  #raw: RawArray;
  #bytes: ByteSource | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** A source over `tensor` of the file `bytes` (closed with the source); refused unless its dtype is one groupnorm computes with. */
  constructor(bytes: ByteSource, header: SafetensorsHeader, tensor: SafetensorsTensor) {
    this.name = `${header.path}:${tensor.name}`;
    if (!tensor.element.dtype) throw new InputError(tensor.element.refusal!, this.name);
    this.dtype = tensor.element.dtype;
    this.shape = tensor.shape;
    this.size = tensor.size;
    this.#bytes = bytes;
    this.#raw = new RawArray(bytes, header.dataStart + tensor.begin, this.dtype, true, this.size);
  }

  read(start: number, count: number, out: FloatArray, outOffset = 0): Promise<void> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > this.size || outOffset < 0 || outOffset + count > out.length) {
      return Promise.reject(new RangeError(`SafetensorsSource.read: range [${start}, ${start}+${count}) at ${outOffset} is outside the tensor or the array`));
    }
    const run = this.#queue.then(() => {
      if (!this.#bytes) throw new Error("SafetensorsSource.read: source is closed");
      return count === 0 ? undefined : this.#raw.read(start, count, out, outOffset);
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** The tensor's bytes (little-endian in the file) in the host's byte order (TensorSource.readStoredRaw). */
  readonly readStoredRaw = (start: number, count: number, out: Uint8Array): Promise<void> => {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > this.size || out.length < count * this.#raw.itemSize) {
      return Promise.reject(new RangeError(`SafetensorsSource.readStoredRaw: range [${start}, ${start}+${count}) is outside the tensor or its bytes do not fit ${out.length}`));
    }
    const run = this.#queue.then(() => {
      if (!this.#bytes) throw new Error("SafetensorsSource.readStoredRaw: source is closed");
      return count === 0 ? undefined : this.#raw.readRaw(start, count, out);
    });
    this.#queue = run.catch(() => undefined);
    return run;
  };

  async close(): Promise<void> {
    await this.#queue;
    const b = this.#bytes;
    this.#bytes = undefined;
    this.#raw.release();
    if (b) await b.close();
  }
}
