/** A small text file read whole (an earlier JSON report), with the same refusals and messages as tensor inputs. */
import { InputError } from "../errors.js";
import { openForRead, readFully } from "./files.js";

/** Refused above this: a text input here is a report of a few kilobytes. */
const MAX_TEXT_BYTES = 64 << 20;

export async function readTextFile(path: string): Promise<string> {
  const { fh, fileSize } = await openForRead(path);
  try {
    if (fileSize > MAX_TEXT_BYTES) throw new InputError(`is ${fileSize} bytes, too large for a JSON report`, path);
    const buf = new Uint8Array(fileSize);
    await readFully(fh, buf, 0, fileSize, 0, path);
    return new TextDecoder("utf-8").decode(buf);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
