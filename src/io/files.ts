/**
 * File access shared by the tensor formats: opening inputs (regular files only), exact reads and
 * writes at a position, and Node's errno codes turned into one-line InputErrors naming the file.
 */
import { closeSync, constants, openSync, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { open, type FileHandle } from "./handle.js";
import { InputError } from "../errors.js";

/**
 * `.NAME.PID.RANDOM.tmp` beside `path` (NAME its base name): a temporary's name, with `bytes` random
 * bytes in hex (beside the process id, so only against collisions, not a secret: Math.random spares
 * every run loading node:crypto).
 */
export function temporaryBeside(path: string, bytes = 4): string {
  let hex = "";
  for (let i = 0; i < bytes; i++) hex += ((Math.random() * 256) | 0).toString(16).padStart(2, "0");
  return join(dirname(path), `.${basename(path)}.${process.pid}.${hex}.tmp`);
}

/** Largest single read/write request handed to the OS. */
const MAX_IO = 1 << 30;

export interface ErrnoLike {
  code?: string;
  message?: string;
}

/** What an errno code means, in words. */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "no such file or folder",
  EEXIST: "a file of that name exists",
  ENOTDIR: "a part of the path is a file, not a folder",
  EISDIR: "is a folder, not a file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "the file system is read-only",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "the file would be too large for the file system",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the name is too long",
  EXDEV: "it is on another file system",
  EBUSY: "the file or device is busy",
  ETXTBSY: "the file is busy",
  EIO: "input/output error",
  ENXIO: "no such device or address",
  ENODEV: "no such device",
  EINVAL: "the operation is not valid for this file",
  EAGAIN: "the resource is temporarily unavailable",
  EINTR: "interrupted",
};

/** An fs error in words: the errno's meaning, never its bare code. */
export function errnoWords(e: unknown): string {
  const err = (e ?? {}) as ErrnoLike;
  if (err.code && ERRNO_WORDS[err.code]) return ERRNO_WORDS[err.code];
  // Node's message is "CODE: strerror, syscall 'path'": keep the strerror part
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(String(err.message ?? e));
  return (m ? m[1] : String(err.message ?? e)).replace(/[\r\n]+/g, " ");
}

/** Turn a Node fs error into a one-line InputError about `path`. */
export function ioError(e: unknown, path: string, op: "open" | "read" | "create" | "write" | "rename"): InputError {
  if (e instanceof InputError) return e;
  const err = (e ?? {}) as ErrnoLike;
  if (err.code === "ENOENT" && op === "open") return new InputError("no such file", path);
  if (err.code === "EISDIR") return new InputError("is a folder, not a file", path);
  return new InputError(`cannot ${op}: ${errnoWords(e)}`, path);
}

/** What kind of file a stat describes, for messages about files that are not regular. */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

/** Standard input named as "-": refused, since inputs are read by offset (some twice). */
export const STDIN_REFUSAL = "reading standard input is not supported: groupnorm reads its inputs by offset, some of them twice; save the array to a file (numpy.save) and name the file";

/**
 * Open an input for reading. The open never blocks (O_NONBLOCK: a named pipe without a writer would
 * otherwise hang it); anything but a regular file is refused with what it is.
 */
export async function openForRead(path: string): Promise<{ fh: FileHandle; fileSize: number }> {
  if (path === "-") throw new InputError(STDIN_REFUSAL, path);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw ioError(e, path, "open");
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new InputError("is a folder, not a file", path);
    if (!st.isFile()) throw new InputError(`is ${kindOf(st)}, not a regular file: groupnorm reads its inputs by offset; save the array to a file first`, path);
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

/** Write all of `buf` at file `position` (null: at the current position, for devices). */
export async function writeFully(fh: FileHandle, buf: Uint8Array, position: number | null, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const want = Math.min(buf.length - done, MAX_IO);
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await fh.write(buf, done, want, position === null ? null : position + done));
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

/**
 * Open a file for writing: a temporary is created here, synchronously and exclusively (it must not
 * exist), then opened; any other target is opened as it is ("w": a device stays a device). Created
 * synchronously, a temporary never comes into being after a signal handler has removed the
 * registered ones (an asynchronous create could still be running on the thread pool then).
 */
export async function openForWriting(path: string, temporary: boolean): Promise<FileHandle> {
  if (!temporary) return open(path, "w");
  createTemporarySync(path);
  return open(path, "r+");
}

/** Create a temporary (empty, exclusively: it must not exist), synchronously: see openForWriting. */
export function createTemporarySync(path: string): void {
  closeSync(openSync(path, "wx"));
}
