/**
 * The process's standard streams for main(), written without Node's stream objects where it can.
 * Making process.stdout or process.stderr loads Node's stream modules (some 4 ms of a run here, and
 * net for a pipe): a run that prints nothing (--quiet) never makes them, and one that prints writes
 * with fs.writeSync to a file, a terminal or a device, as Node itself does on Linux (synchronously),
 * and to a pipe through a non-blocking description of its own, so that a reader that stops reading
 * never stops the event loop (nor the signal handlers on it): the first write that would block, a
 * socket, or a progress bar that needs a terminal's stream go through the process's stream instead.
 */
import { EventEmitter } from "node:events";
import { constants, fstatSync, openSync, writeSync } from "node:fs";
import type { Stream, Streams } from "./console.js";

type Name = "stdout" | "stderr";
const FD = { stdout: 1, stderr: 2 } as const;

/** Linux's memory devices (/dev/null, /dev/zero, /dev/full, /dev/random…): character devices of major 1, never a terminal. */
const MEMORY_DEVICES = 1;

/** The major number of a Linux device number (glibc's gnu_dev_major). */
const major = (rdev: number) => ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);

/**
 * Whether the process's stdout or stderr is a terminal. A file, a pipe or a socket is not one, nor
 * on Linux /dev/null and its kin, and fstat says so without making the stream; any other character
 * device may be a terminal, which the stream (isatty) tells.
 */
function terminal(name: Name): boolean {
  try {
    const st = fstatSync(FD[name]);
    if (!st.isCharacterDevice()) return false;
    if (process.platform === "linux" && major(st.rdev) === MEMORY_DEVICES) return false;
  } catch {
    return false; // closed: no terminal (a write reports its own error)
  }
  return process[name].isTTY === true;
}

type Done = (e?: Error | null) => void;

/**
 * stdout or stderr written with fs.writeSync (each write whole, in order). A failed write (EPIPE
 * from a reader that left, ENOSPC) is emitted as 'error' on the next tick, as Node's streams emit
 * theirs. From the first write that would block (EAGAIN: a non-blocking pipe), or when `stream` is
 * asked for, everything goes through the process's own stream, which waits for the reader.
 */
export class FdWriter extends EventEmitter {
  #stream: NodeJS.WriteStream | null = null;
  #fd: number | null = null;
  constructor(private readonly name: Name) {
    super();
  }

  /**
   * The descriptor written to: for a pipe or a socket, a write must never block (the event loop,
   * and with it the signal handlers, would stop until the reader reads): a pipe is written through
   * a non-blocking description of its own (/proc/self/fd/N, Linux), whose EAGAIN hands over to
   * the process's stream; a socket, or a pipe that cannot be reopened, goes to the stream at once.
   */
  #target(): number | null {
    if (this.#fd !== null) return this.#fd;
    const fd = FD[this.name];
    let st;
    try {
      st = fstatSync(fd);
    } catch {
      return (this.#fd = fd); // closed: the write reports it
    }
    if (!st.isFIFO() && !st.isSocket()) return (this.#fd = fd);
    if (st.isFIFO() && process.platform === "linux") {
      try {
        return (this.#fd = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        /* no /proc: the stream */
      }
    }
    return null;
  }

  get isTTY(): boolean {
    return terminal(this.name);
  }

  /** The process's stream (made now if it was not), which takes every write from here on. */
  get stream(): NodeJS.WriteStream {
    if (!this.#stream) {
      this.#stream = process[this.name];
      this.#stream.on("error", (e) => this.emit("error", e));
    }
    return this.#stream;
  }

  write(chunk: string | Uint8Array, encoding?: BufferEncoding | Done, done?: Done): boolean {
    const cb = typeof encoding === "function" ? encoding : done;
    if (this.#stream) return this.#stream.write(chunk, cb);
    const fd = this.#target();
    if (fd === null) return this.stream.write(chunk, cb);
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    let at = 0;
    try {
      while (at < bytes.length) at += writeSync(fd, bytes, at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return this.stream.write(bytes.subarray(at), cb);
      process.nextTick(() => {
        this.emit("error", e);
        cb?.(e as Error);
      });
      return false;
    }
    if (cb) process.nextTick(cb, null);
    return true;
  }
}

export function processStreams(): Streams {
  let stdout: FdWriter | null = null, stderr: FdWriter | null = null;
  return {
    get stdout() {
      return (stdout ??= new FdWriter("stdout")) as unknown as Stream;
    },
    get stderr() {
      return (stderr ??= new FdWriter("stderr")) as unknown as Stream;
    },
    env: process.env,
    terminal,
  };
}
