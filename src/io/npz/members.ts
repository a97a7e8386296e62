/**
 * The data of one .npz member as a byte source. A stored member is read by offset; a deflated one
 * through streaming inflaters, never whole: each keeps its place, so reading on continues, and a few
 * are kept so that a second pass over earlier data (backward's chunks, verify's passes) resumes from
 * the nearest one instead of inflating from the start again. Only what is asked for is inflated,
 * plus one chunk at the end to see the stream end where the archive says it does. Both check the
 * member's CRC-32 once all of it has gone by, and a deflated member that inflates to more or fewer
 * bytes than its entry declares is refused as soon as that shows.
 */
import type { FileHandle } from "../handle.js";
import { Readable } from "node:stream";
import { crc32, createInflateRaw, type InflateRaw } from "node:zlib";
import { InputError } from "../../errors.js";
import { type ByteSource, checkByteRange } from "../bytes.js";
import { readFully } from "../files.js";

/**
 * Compressed bytes read from the file at a time, and inflated bytes handed out at a time (a highly
 * compressed input chunk is worked off in many output chunks: smaller input chunks keep zlib's
 * round trips short).
 */
const IN_CHUNK = 256 << 10;
const OUT_CHUNK = 1 << 20;
/** Inflaters kept per member. */
const CURSORS = 3;

export interface MemberPlace {
  fh: FileHandle;
  /** `path:key`, for messages. */
  name: string;
  /** Where the member's data starts in the file, and its stored (compressed) length. */
  dataStart: number;
  compressedSize: number;
  /** Its length once inflated, and the CRC-32 of that, from the central directory. */
  size: number;
  crc32: number;
}

const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, "0")}`;

function crcMismatch(p: MemberPlace, got: number): InputError {
  return new InputError(`CRC-32 mismatch: the member's data gives ${hex(got)} but the archive records ${hex(p.crc32)} (the archive is corrupt)`, p.name);
}

/** A stored (uncompressed) member: its bytes lie in the file as they are. */
export class StoredMember implements ByteSource {
  readonly name: string;
  readonly size: number;
  #crc = 0;
  /** How far the CRC has been computed: every byte before this has been read once, in order. */
  #crcAt = 0;
  #gap: Buffer | undefined;

  constructor(readonly place: MemberPlace) {
    this.name = place.name;
    this.size = place.size;
  }

  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    checkByteRange(this, length, position);
    await readFully(this.place.fh, buf, offset, length, this.place.dataStart + position, this.name);
    if (this.#crcAt >= this.size) return;
    // a read past the CRC's place: take the bytes between in first, so every byte counts once
    while (this.#crcAt < position) {
      const n = Math.min(IN_CHUNK, position - this.#crcAt);
      this.#gap ??= Buffer.alloc(IN_CHUNK);
      await readFully(this.place.fh, this.#gap, 0, n, this.place.dataStart + this.#crcAt, this.name);
      this.#crc = crc32(this.#gap.subarray(0, n), this.#crc);
      this.#crcAt += n;
    }
    const end = position + length;
    if (end > this.#crcAt) {
      this.#crc = crc32(buf.subarray(offset + (this.#crcAt - position), offset + length), this.#crc);
      this.#crcAt = end;
    }
    if (this.#crcAt === this.size) {
      this.#gap = undefined;
      if ((this.#crc >>> 0) !== (this.place.crc32 >>> 0)) throw crcMismatch(this.place, this.#crc);
    }
  }

  close(): Promise<void> {
    return this.place.fh.close();
  }
}

/** One streaming inflater over a deflated member, at `pos` of its inflated bytes. */
class Cursor {
  pos = 0;
  crc = 0;
  /** Inflated bytes not handed out yet: pending[pendingAt ...]. */
  pending: Buffer | null = null;
  pendingAt = 0;
  used = 0;
  readonly #input: Readable;
  readonly #inflate: InflateRaw;
  readonly #chunks: AsyncIterator<Buffer>;
  #ended = false;

  constructor(readonly place: MemberPlace) {
    const { fh, dataStart, compressedSize, name } = place;
    async function* compressed(): AsyncGenerator<Buffer> {
      for (let at = 0; at < compressedSize; ) {
        const n = Math.min(IN_CHUNK, compressedSize - at);
        const b = Buffer.allocUnsafe(n);
        await readFully(fh, b, 0, n, dataStart + at, name);
        at += n;
        yield b;
      }
    }
    this.#input = Readable.from(compressed(), { objectMode: false, highWaterMark: IN_CHUNK });
    this.#inflate = createInflateRaw({ chunkSize: OUT_CHUNK });
    this.#input.on("error", (e) => this.#inflate.destroy(e));
    this.#input.pipe(this.#inflate);
    this.#chunks = this.#inflate[Symbol.asyncIterator]();
  }

  /** The next inflated chunk, or null at the end of the stream; checks sizes and the CRC as it goes. */
  async #next(): Promise<Buffer | null> {
    if (this.#ended) return null;
    let r: IteratorResult<Buffer>;
    try {
      r = await this.#chunks.next();
    } catch (e) {
      if (e instanceof InputError) throw e;
      const msg = String((e as Error)?.message ?? e).replace(/[\r\n]+/g, " ");
      throw new InputError(`corrupt deflate data (${msg})`, this.place.name);
    }
    if (r.done) {
      this.#ended = true;
      const got = this.pos + (this.pending ? this.pending.length - this.pendingAt : 0);
      if (got < this.place.size) throw new InputError(`inflates to only ${got} of the ${this.place.size} bytes its entry declares (truncated or corrupt)`, this.place.name);
      return null;
    }
    const chunk = r.value;
    this.crc = crc32(chunk, this.crc);
    return chunk;
  }

  /** Copy the next `length` inflated bytes into buf[offset ...] (or skip them when buf is null). */
  async take(buf: Uint8Array | null, offset: number, length: number): Promise<void> {
    let done = 0;
    while (done < length) {
      if (!this.pending || this.pendingAt === this.pending.length) {
        const chunk = await this.#next();
        if (!chunk) throw new InputError(`inflates to only ${this.pos} of the ${this.place.size} bytes its entry declares (truncated or corrupt)`, this.place.name);
        if (this.pos + chunk.length > this.place.size) throw new InputError(`inflates to more than the ${this.place.size} bytes its entry declares (a zip bomb, or a corrupt archive)`, this.place.name);
        this.pending = chunk;
        this.pendingAt = 0;
      }
      const n = Math.min(length - done, this.pending.length - this.pendingAt);
      if (buf) buf.set(this.pending.subarray(this.pendingAt, this.pendingAt + n), offset + done);
      this.pendingAt += n;
      this.pos += n;
      done += n;
    }
    if (this.pos === this.place.size) {
      // the stream must end here, with the CRC the archive records
      const extra = await this.#next();
      if (extra && extra.length > 0) throw new InputError(`inflates to more than the ${this.place.size} bytes its entry declares (a zip bomb, or a corrupt archive)`, this.place.name);
      if ((this.crc >>> 0) !== (this.place.crc32 >>> 0)) throw crcMismatch(this.place, this.crc);
    }
  }

  destroy(): void {
    this.#input.destroy();
    this.#inflate.destroy();
  }
}

/** A deflated member, read through a few streaming inflaters. */
export class DeflatedMember implements ByteSource {
  readonly name: string;
  readonly size: number;
  #cursors: Cursor[] = [];
  #clock = 0;

  constructor(readonly place: MemberPlace) {
    this.name = place.name;
    this.size = place.size;
  }

  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    checkByteRange(this, length, position);
    if (length === 0) return;
    // the inflater nearest before `position`, or a new one from the start
    let c: Cursor | undefined;
    for (const k of this.#cursors) if (k.pos <= position && (!c || k.pos > c.pos)) c = k;
    if (!c) {
      if (this.#cursors.length >= CURSORS) {
        const lru = this.#cursors.reduce((a, b) => (a.used <= b.used ? a : b));
        lru.destroy();
        this.#cursors.splice(this.#cursors.indexOf(lru), 1);
      }
      c = new Cursor(this.place);
      this.#cursors.push(c);
    }
    c.used = ++this.#clock;
    try {
      if (c.pos < position) await c.take(null, 0, position - c.pos);
      await c.take(buf, offset, length);
    } catch (e) {
      this.#drop(c);
      throw e;
    }
    if (c.pos === this.size) this.#drop(c);
  }

  #drop(c: Cursor): void {
    c.destroy();
    const i = this.#cursors.indexOf(c);
    if (i >= 0) this.#cursors.splice(i, 1);
  }

  async close(): Promise<void> {
    for (const c of this.#cursors) c.destroy();
    this.#cursors = [];
    await this.place.fh.close();
  }
}
