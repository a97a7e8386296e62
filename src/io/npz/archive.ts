/**
 * NumPy's .npz: a zip archive of .npy members, one per array (`key.npy`), stored (np.savez) or
 * deflated (np.savez_compressed), zip64 for large ones. The archive's structure — the end of central
 * directory record, zip64 records, the central directory and the local headers — is read by yauzl;
 * the members' data by members.ts. Nothing is read from a member before its entry and local header
 * are checked: a known method, not encrypted, inside the file, overlapping no other member (an
 * overlapping-entries zip bomb), its local header agreeing with the central directory.
 */
import type { FileHandle } from "../handle.js";
import { Readable } from "node:stream";
import yauzl from "yauzl";
import { InputError } from "../../errors.js";
import type { ByteSource } from "../bytes.js";
import { readFully } from "../files.js";
import { DeflatedMember, type MemberPlace, StoredMember } from "./members.js";

/** More members than this is not an .npz anyone wrote: refused before the central directory is read. */
export const MAX_MEMBERS = 100_000;

export interface NpzMember {
  /** The member's file name in the archive (`x.npy`). */
  fileName: string;
  /** The array's key: the name without `.npy` (np.load's key); other members keep their name. */
  key: string;
  /** A .npy member (by name), an array of the archive. */
  isNpy: boolean;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  localHeaderOffset: number;
  /** Why it cannot be read (encrypted, another compression method), or null. */
  problem: string | null;
  entry: yauzl.Entry;
}

/** yauzl's random access over our file handle (which we close ourselves). */
class HandleReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
  ) {
    super();
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    readFully(this.fh, buffer, offset, length, position, this.path).then(
      () => callback(null, length),
      (e) => callback(e as Error),
    );
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const { fh, path } = this;
    return Readable.from(
      (async function* () {
        for (let at = start; at < end; ) {
          const b = Buffer.allocUnsafe(Math.min(1 << 20, end - at));
          await readFully(fh, b, 0, b.length, at, path);
          at += b.length;
          yield b;
        }
      })(),
    );
  }

  override close(callback: (err: Error | null) => void): void {
    callback(null);
  }
}

function zipError(e: unknown, path: string): InputError {
  if (e instanceof InputError) return e;
  const msg = String((e as Error)?.message ?? e).replace(/[\r\n]+/g, " ");
  return new InputError(`corrupt or truncated zip archive (.npz): ${msg}`, path);
}

const METHODS: Record<number, string> = { 0: "stored", 8: "deflated" };

export class NpzArchive {
  private constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly members: NpzMember[],
    private readonly zip: yauzl.ZipFile,
    private readonly fh: FileHandle,
    /** Where the central directory starts: no member's data may run into it. */
    private readonly centralDirectory: number,
  ) {}

  /** Read the archive's central directory (no member data). */
  static async open(fh: FileHandle, fileSize: number, path: string): Promise<NpzArchive> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.fromRandomAccessReaderPromise(new HandleReader(fh, path), fileSize, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true, strictFileNames: false });
    } catch (e) {
      throw zipError(e, path);
    }
    // yauzl starts reading entries at the central directory's offset
    const centralDirectory = Number((zip as unknown as { readEntryCursor?: number }).readEntryCursor ?? fileSize);
    if (zip.entryCount > MAX_MEMBERS) throw new InputError(`zip archive claims ${zip.entryCount} members, more than the ${MAX_MEMBERS} an .npz is read with`, path);
    const members: NpzMember[] = [];
    const names = new Set<string>();
    try {
      for await (const entry of zip.eachEntry()) {
        const fileName = entry.fileName;
        if (fileName.endsWith("/")) continue; // a folder entry
        if (names.has(fileName)) throw new InputError(`the archive holds two members named ${JSON.stringify(fileName)}`, path);
        names.add(fileName);
        const isNpy = fileName.endsWith(".npy");
        const method = entry.compressionMethod;
        const problem = entry.isEncrypted() ? "is encrypted" : METHODS[method] ? null : `is compressed with zip method ${method} (only stored and deflated members are read)`;
        members.push({
          fileName, key: isNpy ? fileName.slice(0, -4) : fileName, isNpy, method, compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize,
          crc32: entry.crc32, localHeaderOffset: entry.relativeOffsetOfLocalHeader, problem, entry,
        });
      }
    } catch (e) {
      zip.close();
      throw zipError(e, path);
    }
    return new NpzArchive(path, fileSize, members, zip, fh, centralDirectory);
  }

  /** The arrays: the .npy members. */
  get arrays(): NpzMember[] {
    return this.members.filter((m) => m.isNpy);
  }

  storage(m: NpzMember): string {
    return METHODS[m.method] ?? `method ${m.method}`;
  }

  /**
   * The data of member `m` as a byte source named `path:key`. It reads through the archive's file
   * handle; `own` hands the handle to it (closing it closes the file).
   */
  async member(m: NpzMember, own: boolean): Promise<ByteSource> {
    const name = `${this.path}:${m.key}`;
    if (m.problem) throw new InputError(`the member ${JSON.stringify(m.fileName)} ${m.problem}`, name);
    let local: yauzl.LocalFileHeader;
    try {
      local = await this.zip.readLocalFileHeaderPromise(m.entry);
    } catch (e) {
      throw zipError(e, name);
    }
    const localName = Buffer.from(local.fileName).toString("utf8");
    // (yauzl reads the central name with bit 11 or CP437 and turns '\' into '/': compare loosely)
    if (localName.replace(/\\/g, "/") !== m.fileName && Buffer.from(local.fileName).toString("latin1") !== m.fileName) {
      throw new InputError(`the local header names ${JSON.stringify(localName.slice(0, 60))} but the central directory ${JSON.stringify(m.fileName)} (a corrupt archive)`, name);
    }
    if (local.compressionMethod !== m.method) throw new InputError(`the local header says method ${local.compressionMethod} but the central directory ${m.method} (a corrupt archive)`, name);
    const dataStart = local.fileDataStart;
    const dataEnd = dataStart + m.compressedSize;
    if (dataEnd > this.centralDirectory) throw new InputError(`the member's data (bytes ${dataStart}–${dataEnd}) runs into the central directory at ${this.centralDirectory} (a corrupt archive)`, name);
    for (const o of this.members) {
      if (o !== m && o.localHeaderOffset >= m.localHeaderOffset && o.localHeaderOffset < dataEnd) {
        throw new InputError(`the member's data (bytes ${dataStart}–${dataEnd}) overlaps the member ${JSON.stringify(o.fileName)} at ${o.localHeaderOffset} (overlapping members: a zip bomb, or a corrupt archive)`, name);
      }
    }
    const place: MemberPlace = { fh: own ? this.fh : borrowed(this.fh), name, dataStart, compressedSize: m.compressedSize, size: m.uncompressedSize, crc32: m.crc32 };
    return m.method === 0 ? new StoredMember(place) : new DeflatedMember(place);
  }

  /** Stop reading entries (the file handle is the caller's). */
  close(): void {
    this.zip.close();
  }
}

/** The same file handle, whose close() does not close the file (for members read while the archive stays open). */
function borrowed(fh: FileHandle): FileHandle {
  return new Proxy(fh, {
    get: (t, k) => {
      if (k === "close") return async () => undefined;
      const v: unknown = Reflect.get(t, k, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as FileHandle;
}
