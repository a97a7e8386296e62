/**
 * A run of bytes read by position: a whole file, or a member of a container (a stored or deflated
 * .npz member). The .npy parser and the value decoders read through this, so a .npy inside an .npz
 * is read exactly as a .npy file is.
 */
import type { FileHandle } from "./handle.js";
import { readFully } from "./files.js";

export interface ByteSource {
  /** How messages name it: a path, or `path:key` for a member. */
  readonly name: string;
  /** Its length in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `position` (within [0, size)) into buf[offset ...]. */
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<void>;
  close(): Promise<void>;
}

export function checkByteRange(source: ByteSource, length: number, position: number): void {
  if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 || position + length > source.size) {
    throw new RangeError(`${source.name}: bytes [${position}, ${position}+${length}) are outside [0, ${source.size})`);
  }
}

/** The bytes [base, base + size) of an open file (the whole file by default); closing it closes the file. */
export class FileBytes implements ByteSource {
  constructor(
    readonly fh: FileHandle,
    readonly size: number,
    readonly name: string,
    readonly base = 0,
  ) {}

  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    checkByteRange(this, length, position);
    return readFully(this.fh, buf, offset, length, this.base + position, this.name);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
