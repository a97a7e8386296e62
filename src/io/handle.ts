/**
 * Open files as the I/O layer uses them: read and write by position, fstat, close; and the few path
 * operations it needs (stat, rename, unlink, writeFile). In place of node:fs/promises, which loads
 * nine of Node's modules (readline, the file watchers, fs/dir, string_decoder) that a run never
 * uses: about 2 ms of every command's start (docs/performance.md, section 9).
 *
 * Small operations are done synchronously: the metadata calls (open, fstat, stat, rename, close)
 * and reads or writes of a regular file up to SYNC_BYTES (headers, statistics, a fixture's data).
 * Each takes microseconds from the page cache, against a round trip through libuv's thread pool
 * (and that pool's start, for the first); every SYNC_RUN-th transfer in a row still goes to the
 * pool, so that the event loop turns. Larger transfers, writes to a device (which may block) and
 * removals (freeing a large file's pages takes a while) go to the thread pool, so that the pipeline
 * overlaps them with the kernels as before. Every result is still a promise: callers cannot tell.
 */
import {
  close as closeCb,
  closeSync,
  fstatSync,
  openSync,
  read as readCb,
  readSync,
  renameSync,
  type Stats,
  statSync,
  unlink as unlinkCb,
  write as writeCb,
  writeFile as writeFileCb,
  writeSync,
} from "node:fs";

/** Transfers up to this many bytes are done synchronously (see above). */
export const SYNC_BYTES = 64 << 10;

/**
 * Synchronous transfers in a row before one goes to the thread pool. A settled promise resumes its
 * awaiter without a turn of the event loop, so a long run of small slices (--memory 1M on a large
 * file) done synchronously would never let a signal's handler, or any timer, run.
 */
export const SYNC_RUN = 32;
let syncLeft = SYNC_RUN;

/** Whether this transfer is done synchronously; every SYNC_RUN-th in a row is not. */
function inline(regular: boolean, length: number): boolean {
  if (!regular || length > SYNC_BYTES) return false;
  if (syncLeft > 0) {
    syncLeft--;
    return true;
  }
  syncLeft = SYNC_RUN;
  return false;
}

/** Run `f` now; its result or its error as a settled promise. */
function now<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

function closedError(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EBADF: file closed, ${syscall}`), { code: "EBADF", syscall });
}

/**
 * An open file: the operations of fs/promises' FileHandle that the I/O layer uses, with the same
 * results. As there, close() waits for the transfers still on the thread pool: their descriptor is
 * closed only once they are done, so that none of them reads or writes a file opened meanwhile
 * under the same number (new calls fail with EBADF as soon as close() is called).
 */
export class FileHandle {
  #fd: number;
  /** A regular file (not a device): its small transfers may be done synchronously. */
  readonly #regular: boolean;
  /** Transfers on the thread pool not yet done, and what the last of them wakes (a close waiting). */
  #pending = 0;
  #drained: (() => void) | null = null;
  #closed: Promise<void> | null = null;

  private constructor(fd: number) {
    this.#fd = fd;
    let regular = false;
    try {
      regular = fstatSync(fd).isFile();
    } catch {
      /* an fd fstat refuses is treated as a device: its transfers go to the thread pool */
    }
    this.#regular = regular;
  }

  /** Open `path` (flags as fs.open takes them: "w", "r+", or constants ORed together). */
  static open(path: string, flags: string | number, mode?: number): Promise<FileHandle> {
    return now(() => new FileHandle(openSync(path, flags, mode)));
  }

  get fd(): number {
    return this.#fd;
  }

  /** Run a transfer on the thread pool, counted until its callback. */
  #pooled<T>(start: (fd: number, done: (e: Error | null, n: number) => void) => void, result: (n: number) => T): Promise<T> {
    const fd = this.#fd;
    this.#pending++;
    return new Promise((resolve, reject) => {
      start(fd, (e, n) => {
        if (--this.#pending === 0) this.#drained?.();
        if (e) reject(e);
        else resolve(result(n));
      });
    });
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesRead: number }> {
    const fd = this.#fd;
    if (fd < 0) return Promise.reject(closedError("read"));
    if (inline(this.#regular, length)) return now(() => ({ bytesRead: readSync(fd, buffer, offset, length, position) }));
    return this.#pooled((f, done) => readCb(f, buffer, offset, length, position, done), (bytesRead) => ({ bytesRead }));
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }> {
    const fd = this.#fd;
    if (fd < 0) return Promise.reject(closedError("write"));
    if (inline(this.#regular, length)) return now(() => ({ bytesWritten: writeSync(fd, buffer, offset, length, position) }));
    return this.#pooled((f, done) => writeCb(f, buffer, offset, length, position, done), (bytesWritten) => ({ bytesWritten }));
  }

  stat(): Promise<Stats> {
    const fd = this.#fd;
    if (fd < 0) return Promise.reject(closedError("fstat"));
    return now(() => fstatSync(fd));
  }

  /** Close the file, after its transfers still on the thread pool; closing again gives the same promise. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const fd = this.#fd;
    this.#fd = -1; // at once (before any await): new transfers fail with EBADF
    if (this.#pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    // a device's close may wait (a tape, a terminal draining): off the main thread like its writes
    if (!this.#regular) return new Promise((resolve, reject) => closeCb(fd, (e) => (e ? reject(e) : resolve())));
    closeSync(fd);
  }
}

export const open = FileHandle.open;

export function stat(path: string): Promise<Stats> {
  return now(() => statSync(path));
}

export function rename(from: string, to: string): Promise<void> {
  return now(() => renameSync(from, to));
}

export function unlink(path: string): Promise<void> {
  return new Promise((resolve, reject) => unlinkCb(path, (e) => (e ? reject(e) : resolve())));
}

export function writeFile(path: string, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => writeFileCb(path, data, (e) => (e ? reject(e) : resolve())));
}
