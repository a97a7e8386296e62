/**
 * Writing an .npz as NumPy's np.savez (stored) or np.savez_compressed (deflated, `compress`) would:
 * one `key.npy` member per tensor, each a .npy file with NumPy's own header, zip64 records where a
 * size or offset needs them. Written in one pass: a member's CRC-32 and compressed size are patched
 * into its local header once its data is out (a device written through gets data descriptors
 * instead). yazl, the zip writer that goes with yauzl, computes CRC-32 in JavaScript at about
 * 110 MB/s here, ten times slower than the pipeline; this writer uses zlib's (about 1 GB/s).
 */
import { promisify } from "node:util";
import { constants, crc32, deflateRaw } from "node:zlib";
import type { Dtype } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { ContainerWriter, type ContainerTarget, type Member } from "../container-writer.js";
import { encodeNpyHeader } from "../npy/encode.js";

const deflate = promisify(deflateRaw) as (b: Uint8Array, o: object) => Promise<Buffer>;

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const DESCRIPTOR = 0x08074b50;
const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const U32 = 0xffffffff;
const U16 = 0xffff;
/** NumPy's compression level (zipfile's default, zlib's 6). */
const LEVEL = 6;
/** MS-DOS time and date of 1980-01-01 00:00: the outputs are the same bytes for the same inputs. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

interface Entry {
  name: Buffer;
  npyHeader: Uint8Array;
  method: 0 | 8;
  /** Where its local header starts. */
  offset: number;
  crc: number;
  size: number;
  compressed: number;
  /** The local header has a zip64 extra field (decided before the data: by the size it may reach). */
  zip64: boolean;
  /** Sizes and CRC follow the data (a device: nothing can be patched). */
  descriptor: boolean;
}

export class NpzWriter extends ContainerWriter {
  #entries = new Map<Member, Entry>();

  constructor(
    target: ContainerTarget,
    readonly compress: boolean,
  ) {
    super(target);
  }

  protected check(key: string, dtype: Dtype, _shape: readonly number[]): void {
    if (dtype === "bfloat16") throw new InputError(`${key} would be bfloat16, which .npy (and so .npz) cannot hold: write it to a safetensors file`, this.target.display);
    if (key === "") throw new InputError("an .npz member needs a name", this.target.display);
    if (this.members.some((m) => m.key === key)) throw new InputError(`the member ${JSON.stringify(key)} is named twice`, this.target.display);
  }

  protected async begin(): Promise<void> {}

  protected async startMember(m: Member): Promise<void> {
    const npyHeader = encodeNpyHeader(m.dtype as Exclude<Dtype, "bfloat16">, m.shape);
    const size = npyHeader.length + m.bytes;
    // deflate can grow incompressible data by a few bytes per block (and per sync-flushed write)
    const bound = this.compress ? size + Math.ceil(size / 1000) + (1 << 20) : size;
    const e: Entry = {
      name: Buffer.from(`${m.key}.npy`, "utf8"), npyHeader, method: this.compress ? 8 : 0, offset: this.pos, crc: 0, size, compressed: 0,
      zip64: bound >= U32, descriptor: !this.target.temporary,
    };
    this.#entries.set(m, e);
    await this.append(this.#localHeader(e));
    await this.data(m, npyHeader);
  }

  protected async data(m: Member, bytes: Uint8Array): Promise<void> {
    const e = this.#entries.get(m)!;
    e.crc = crc32(bytes, e.crc);
    // each write deflated on its own, sync-flushed to a byte boundary: the pieces join into one
    // deflate stream, and the work runs off the main thread
    const out = this.compress ? await deflate(bytes, { level: LEVEL, finishFlush: constants.Z_SYNC_FLUSH }) : bytes;
    await this.append(out);
    e.compressed += out.length;
  }

  protected async endMember(m: Member): Promise<void> {
    const e = this.#entries.get(m)!;
    if (this.compress) {
      const last = await deflate(new Uint8Array(0), { level: LEVEL, finishFlush: constants.Z_FINISH });
      await this.append(last);
      e.compressed += last.length;
    }
    if (!e.zip64 && (e.compressed >= U32 || e.size >= U32)) throw new Error("NpzWriter: a member outgrew its local header's 32-bit sizes");
    if (e.descriptor) {
      const d = Buffer.alloc(e.zip64 ? 24 : 16);
      d.writeUInt32LE(DESCRIPTOR, 0);
      d.writeUInt32LE(e.crc >>> 0, 4);
      if (e.zip64) {
        d.writeBigUInt64LE(BigInt(e.compressed), 8);
        d.writeBigUInt64LE(BigInt(e.size), 16);
      } else {
        d.writeUInt32LE(e.compressed, 8);
        d.writeUInt32LE(e.size, 12);
      }
      await this.append(d);
    } else await this.patch(this.#localHeader(e), e.offset);
  }

  protected async end(order: Member[]): Promise<void> {
    const start = this.pos;
    for (const m of order) await this.append(this.#centralHeader(this.#entries.get(m)!));
    const size = this.pos - start;
    const count = order.length;
    if (count >= U16 || start >= U32 || size >= U32) {
      const z = Buffer.alloc(56 + 20);
      z.writeUInt32LE(ZIP64_EOCD, 0);
      z.writeBigUInt64LE(44n, 4); // the record's size after this field
      z.writeUInt16LE(45, 12); // version made by
      z.writeUInt16LE(45, 14); // version needed
      z.writeBigUInt64LE(BigInt(count), 24);
      z.writeBigUInt64LE(BigInt(count), 32);
      z.writeBigUInt64LE(BigInt(size), 40);
      z.writeBigUInt64LE(BigInt(start), 48);
      z.writeUInt32LE(ZIP64_LOCATOR, 56);
      z.writeBigUInt64LE(BigInt(this.pos), 64); // where the zip64 record starts
      z.writeUInt32LE(1, 72); // disks
      await this.append(z);
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(EOCD, 0);
    eocd.writeUInt16LE(Math.min(count, U16), 8);
    eocd.writeUInt16LE(Math.min(count, U16), 10);
    eocd.writeUInt32LE(Math.min(size, U32), 12);
    eocd.writeUInt32LE(Math.min(start, U32), 16);
    await this.append(eocd);
  }

  #localHeader(e: Entry): Buffer {
    const h = Buffer.alloc(30 + e.name.length + (e.zip64 ? 20 : 0));
    h.writeUInt32LE(LOCAL, 0);
    h.writeUInt16LE(e.zip64 ? 45 : 20, 4);
    h.writeUInt16LE(e.descriptor ? 8 : 0, 6);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt16LE(DOS_TIME, 10);
    h.writeUInt16LE(DOS_DATE, 12);
    if (!e.descriptor) {
      h.writeUInt32LE(e.crc >>> 0, 14);
      h.writeUInt32LE(e.zip64 ? U32 : e.compressed, 18);
      h.writeUInt32LE(e.zip64 ? U32 : e.size, 22);
    }
    h.writeUInt16LE(e.name.length, 26);
    h.writeUInt16LE(e.zip64 ? 20 : 0, 28);
    e.name.copy(h, 30);
    if (e.zip64) {
      const x = 30 + e.name.length;
      h.writeUInt16LE(0x0001, x);
      h.writeUInt16LE(16, x + 2);
      if (!e.descriptor) {
        h.writeBigUInt64LE(BigInt(e.size), x + 4);
        h.writeBigUInt64LE(BigInt(e.compressed), x + 12);
      }
    }
    return h;
  }

  #centralHeader(e: Entry): Buffer {
    // the zip64 extra holds, in this order, those of the three that do not fit 32 bits
    const big = [e.size, e.compressed, e.offset].map((v) => v >= U32);
    const extra = big.filter(Boolean).length * 8;
    const zip64 = extra > 0;
    const h = Buffer.alloc(46 + e.name.length + (zip64 ? 4 + extra : 0));
    h.writeUInt32LE(CENTRAL, 0);
    h.writeUInt16LE((3 << 8) | 45, 4); // made by: UNIX, spec 4.5
    h.writeUInt16LE(zip64 || e.zip64 ? 45 : 20, 6);
    h.writeUInt16LE(e.descriptor ? 8 : 0, 8);
    h.writeUInt16LE(e.method, 10);
    h.writeUInt16LE(DOS_TIME, 12);
    h.writeUInt16LE(DOS_DATE, 14);
    h.writeUInt32LE(e.crc >>> 0, 16);
    h.writeUInt32LE(big[1] ? U32 : e.compressed, 20);
    h.writeUInt32LE(big[0] ? U32 : e.size, 24);
    h.writeUInt16LE(e.name.length, 28);
    h.writeUInt16LE(zip64 ? 4 + extra : 0, 30);
    h.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
    h.writeUInt32LE(big[2] ? U32 : e.offset, 42);
    e.name.copy(h, 46);
    if (zip64) {
      let x = 46 + e.name.length;
      h.writeUInt16LE(0x0001, x);
      h.writeUInt16LE(extra, x + 2);
      x += 4;
      for (const [i, v] of [e.size, e.compressed, e.offset].entries()) {
        if (big[i]) {
          h.writeBigUInt64LE(BigInt(v), x);
          x += 8;
        }
      }
    }
    return h;
  }
}
