/**
 * File access shared by the tensor formats: opening inputs (regular files only), exact reads and
 * writes at a position, and Node's errno codes turned into one-line InputErrors naming the file.
 */
import { open, type FileHandle } from "node:fs/promises";
import { InputError } from "../errors.js";

/** Largest single read/write request handed to the OS. */
const MAX_IO = 1 << 30;

export interface ErrnoLike {
  code?: string;
  message?: string;
}

/** Turn a Node fs error into a one-line InputError about `path`. */
export function ioError(e: unknown, path: string, op: "open" | "read" | "create" | "write" | "rename"): InputError {
  if (e instanceof InputError) return e;
  const err = (e ?? {}) as ErrnoLike;
  switch (err.code) {
    case "ENOENT":
      return new InputError(op === "open" ? "no such file" : `cannot ${op}: no such file or directory`, path);
    case "EISDIR":
      return new InputError("is a directory, not a file", path);
    case "ENOTDIR":
      return new InputError(`cannot ${op}: a component of the path is not a directory`, path);
    case "EACCES":
    case "EPERM":
      return new InputError(`cannot ${op}: permission denied`, path);
    case "ELOOP":
      return new InputError(`cannot ${op}: too many levels of symbolic links`, path);
    case "ENOSPC":
      return new InputError(`cannot ${op}: no space left on device`, path);
    case "EROFS":
      return new InputError(`cannot ${op}: read-only file system`, path);
    case "EMFILE":
    case "ENFILE":
      return new InputError(`cannot ${op}: too many open files`, path);
    default: {
      const msg = String(err.message ?? e).replace(/\r?\n/g, " ");
      return new InputError(`cannot ${op}: ${msg}`, path);
    }
  }
}

export async function openForRead(path: string): Promise<{ fh: FileHandle; fileSize: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw ioError(e, path, "open");
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new InputError("is a directory, not a file", path);
    if (!st.isFile()) throw new InputError("is not a regular file", path);
    return { fh, fileSize: st.size };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw ioError(e, path, "open");
  }
}

/** Read exactly `length` bytes at file `position` into `buf[offset ...]`. */
export async function readFully(
  fh: FileHandle,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
  path: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const want = Math.min(length - done, MAX_IO);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, offset + done, want, position + done));
    } catch (e) {
      throw ioError(e, path, "read");
    }
    if (bytesRead === 0) {
      throw new InputError(
        `unexpected end of file at byte ${position + done} (was the file truncated while being read?)`,
        path,
      );
    }
    done += bytesRead;
  }
}

/** Write all of `buf` at file `position`. */
export async function writeFully(fh: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const want = Math.min(buf.length - done, MAX_IO);
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await fh.write(buf, done, want, position + done));
    } catch (e) {
      throw ioError(e, path, "write");
    }
    if (bytesWritten === 0) throw new InputError("cannot write: no progress (device full?)", path);
    done += bytesWritten;
  }
}

/** A Buffer over a fresh ArrayBuffer: byteOffset 0, so any typed-array view over it is aligned. */
export function alignedBuffer(bytes: number): Buffer {
  return Buffer.from(new ArrayBuffer(bytes), 0, bytes);
}

export function swapInPlace(b: Buffer, itemSize: 2 | 4 | 8): void {
  if (itemSize === 2) b.swap16();
  else if (itemSize === 4) b.swap32();
  else b.swap64();
}
