/**
 * Writing several tensors into one container file (.npz, safetensors), streamed, whatever order the
 * pipeline produces their values in. Once every member is known (at the first value written), the
 * largest goes into the file directly, as its values come; the others, usually small (mean and rstd
 * beside Y), are held aside — in memory up to a MiB each, then in a temporary file beside the
 * target — and copied in after it when the writer finishes. Nothing is ever written out of order,
 * so the container can also go to a device (/dev/null) written through.
 */
import type { FileHandle } from "./handle.js";
import { unlink } from "./handle.js";
import { type Dtype, type FloatArray, HOST_LE, itemSizeOf } from "../core/dtype.js";
import { encodeBF16 } from "./bfloat16.js";
import { ioError, openForWriting, readFully, swapInPlace, writeFully } from "./files.js";
import { encodeF16 } from "./float16.js";
import type { TensorSink } from "./tensor.js";

/** What a member holds aside in memory before it spills to a temporary file. */
const SPILL_MEMORY = 1 << 20;
/** Bytes copied at a time from a spill file. */
const COPY_CHUNK = 4 << 20;

/** `values` as little-endian bytes of `dtype`: a view of them when they already are, else a new buffer. */
export function encodeValues(values: FloatArray, dtype: Dtype): Uint8Array {
  if (HOST_LE && ((dtype === "float32" && values instanceof Float32Array) || (dtype === "float64" && values instanceof Float64Array))) {
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }
  const n = values.length;
  const out = Buffer.from(new ArrayBuffer(n * itemSizeOf(dtype)));
  if (dtype === "float16") encodeF16(values, new Uint16Array(out.buffer, 0, n));
  else if (dtype === "bfloat16") encodeBF16(values, new Uint16Array(out.buffer, 0, n));
  else if (dtype === "float32") new Float32Array(out.buffer, 0, n).set(values);
  else new Float64Array(out.buffer, 0, n).set(values);
  if (!HOST_LE) swapInPlace(out, itemSizeOf(dtype));
  return out;
}

/** Bytes held aside for a member written after the direct one: in memory, then in a temporary file. */
class Spill {
  #chunks: Buffer[] = [];
  #held = 0;
  #fh: FileHandle | undefined;
  #path: string | undefined;
  /** Bytes in the spill file. */
  #fileLength = 0;

  constructor(
    private readonly scratch: () => string,
    private readonly display: string,
  ) {}

  async append(bytes: Uint8Array): Promise<void> {
    if (!this.#fh && this.#held + bytes.length <= SPILL_MEMORY) {
      this.#chunks.push(Buffer.from(bytes)); // a copy: the caller's buffer is reused
      this.#held += bytes.length;
      return;
    }
    if (!this.#fh) {
      this.#path = this.scratch();
      try {
        this.#fh = await openForWriting(this.#path, true);
      } catch (e) {
        throw ioError(e, this.display, "create");
      }
      for (const c of this.#chunks) await this.#put(c);
      this.#chunks = [];
      this.#held = 0;
    }
    await this.#put(bytes);
  }

  async #put(b: Uint8Array): Promise<void> {
    await writeFully(this.#fh!, b, this.#fileLength, this.display);
    this.#fileLength += b.length;
  }

  /** The held bytes, in order, a chunk at a time. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    if (!this.#fh) {
      yield* this.#chunks;
      return;
    }
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, this.#fileLength)));
    for (let at = 0; at < this.#fileLength; ) {
      const n = Math.min(buf.length, this.#fileLength - at);
      await readFully(this.#fh, buf, 0, n, at, this.display);
      at += n;
      yield buf.subarray(0, n);
    }
  }

  async remove(): Promise<void> {
    this.#chunks = [];
    const fh = this.#fh, path = this.#path;
    this.#fh = undefined;
    this.#path = undefined;
    if (fh) await fh.close().catch(() => undefined);
    if (path) await unlink(path).catch(() => undefined);
  }
}

export interface Member {
  key: string;
  dtype: Dtype;
  shape: readonly number[];
  size: number;
  /** Bytes of its values. */
  bytes: number;
  written: number;
  spill: Spill | null;
}

export interface ContainerTarget {
  /** The file written: a temporary beside the target, or a device written through. */
  path: string;
  /** false: a device, written in order, never removed. */
  temporary: boolean;
  /** The target as messages name it. */
  display: string;
  /** A new temporary path beside the target, removed with the run's outputs if it fails. */
  scratch: () => string;
}

export abstract class ContainerWriter {
  readonly members: Member[] = [];
  protected fh: FileHandle | undefined;
  /** Bytes written so far (the position of the next byte in the file). */
  protected pos = 0;
  #order: Member[] | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #finished = false;

  constructor(readonly target: ContainerTarget) {}

  /** Check a member before it is added (a dtype the format cannot hold, say). */
  protected abstract check(key: string, dtype: Dtype, shape: readonly number[]): void;
  /** Write what comes before the members' data, in file order, the direct member first. */
  protected abstract begin(order: Member[]): Promise<void>;
  /** A member's data starts (its values follow through `data`); the direct one's at begin's end. */
  protected abstract startMember(m: Member, direct: boolean): Promise<void>;
  /** Bytes of a member's values, in order. */
  protected abstract data(m: Member, bytes: Uint8Array): Promise<void>;
  /** A member's values are all written. */
  protected abstract endMember(m: Member, direct: boolean): Promise<void>;
  /** Write what comes after the members (a zip's central directory). */
  protected abstract end(order: Member[]): Promise<void>;

  static async openTarget(t: ContainerTarget): Promise<FileHandle> {
    try {
      return await openForWriting(t.path, t.temporary);
    } catch (e) {
      throw ioError(e, t.display, "create");
    }
  }

  protected async append(bytes: Uint8Array): Promise<void> {
    await writeFully(this.fh!, bytes, this.target.temporary ? this.pos : null, this.target.display);
    this.pos += bytes.length;
  }

  /** Overwrite bytes written earlier (only in a temporary file: a device is never patched). */
  protected async patch(bytes: Uint8Array, position: number): Promise<void> {
    await writeFully(this.fh!, bytes, position, this.target.display);
  }

  /** Add a member; its values are written through the sink returned, in C order. */
  add(key: string, dtype: Dtype, shape: readonly number[]): TensorSink {
    if (this.#order) throw new Error("ContainerWriter.add: members are added before any value is written");
    this.check(key, dtype, shape);
    const size = shape.reduce((a, b) => a * b, 1);
    const m: Member = { key, dtype, shape: [...shape], size, bytes: size * itemSizeOf(dtype), written: 0, spill: null };
    this.members.push(m);
    return { dtype, shape: m.shape, write: (values) => this.#serial(() => this.#write(m, values)) };
  }

  #serial(f: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(f);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #seal(): Promise<Member[]> {
    if (this.#order) return this.#order;
    // the largest member goes in directly; the others follow in the order they were added
    const direct = this.members.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    const order = [direct, ...this.members.filter((m) => m !== direct)];
    for (const m of order) if (m !== direct) m.spill = new Spill(this.target.scratch, this.target.display);
    this.#order = order;
    this.fh = await ContainerWriter.openTarget(this.target);
    await this.begin(order);
    await this.startMember(direct, true);
    return order;
  }

  async #write(m: Member, values: FloatArray): Promise<void> {
    if (this.#finished) throw new Error("ContainerWriter.write: the writer is finished");
    if (m.written + values.length > m.size) throw new RangeError(`ContainerWriter.write: ${m.written + values.length} values exceed the ${m.size} of ${m.key}`);
    await this.#seal();
    const bytes = encodeValues(values, m.dtype);
    if (m.spill) await m.spill.append(bytes);
    else await this.data(m, bytes);
    m.written += values.length;
  }

  /** Check every member is complete, write the held members and the end, and close. */
  finish(): Promise<void> {
    return this.#serial(async () => {
      if (this.members.length === 0) throw new Error("ContainerWriter.finish: no members");
      const order = await this.#seal();
      for (const m of order) if (m.written !== m.size) throw new Error(`ContainerWriter.finish: ${m.written} of the ${m.size} values of ${m.key} written`);
      await this.endMember(order[0]!, true);
      for (const m of order.slice(1)) {
        await this.startMember(m, false);
        for await (const chunk of m.spill!.chunks()) await this.data(m, chunk);
        await this.endMember(m, false);
        await m.spill!.remove();
      }
      await this.end(order);
      this.#finished = true;
      const fh = this.fh;
      this.fh = undefined;
      try {
        await fh?.close();
      } catch (e) {
        throw ioError(e, this.target.display, "write");
      }
    });
  }

  /** Close and remove the temporary and the spills. Safe to call more than once. */
  async abort(): Promise<void> {
    await this.#queue.catch(() => undefined);
    this.#finished = true;
    for (const m of this.members) await m.spill?.remove();
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close().catch(() => undefined);
    if (this.target.temporary) await unlink(this.target.path).catch(() => undefined);
  }
}
