/**
 * Outputs appear whole or not at all: each is written to a temporary file beside its target and all
 * of a run's outputs are renamed into place together at the end. Anything else (an error, a signal)
 * removes the temporaries.
 */
import { randomBytes } from "node:crypto";
import { renameSync, rmdirSync, unlinkSync } from "node:fs";
import { mkdir, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { InputError } from "../errors.js";
import type { Dtype } from "../core/dtype.js";
import { NpyWriter } from "./npy/index.js";

interface Pending {
  target: string;
  tmp: string;
  writer: NpyWriter | null; // null while the temporary file is being created
}

const live = new Set<OutputSet>();

/** Remove every temporary file of every open OutputSet (for signal handlers); synchronous. */
export function abortAllOutputsSync(): void {
  for (const set of live) set.abortSync();
}

export class OutputSet {
  private pending: Pending[] = [];
  private done = false;
  /** Inputs of the run (device:inode): an output naming one is replaced only at the end. */
  private inputs = new Set<string>();
  /** Removals of the previous versions of outputs, started early so their cost overlaps the run. */
  private removals: Promise<void>[] = [];

  /** Declare the run's input files, so outputs that name them are never removed early. */
  async protect(paths: Array<string | undefined>): Promise<void> {
    for (const p of paths) {
      if (!p) continue;
      try {
        const s = await stat(p);
        this.inputs.add(`${s.dev}:${s.ino}`);
      } catch {
        /* not a file: nothing to protect */
      }
    }
  }

  constructor() {
    live.add(this);
  }

  /** Folders this run created (deepest last), removed again if the run fails. */
  private createdDirs: string[] = [];

  /** Make sure a folder exists (created with parents) and is a folder. */
  async ensureDir(dir: string): Promise<void> {
    let first: string | undefined;
    try {
      first = await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new InputError(`cannot create output folder: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, dir);
    }
    if (first) {
      // every folder from `first` down to `dir` is new
      const chain: string[] = [];
      for (let d = resolve(dir); ; d = dirname(d)) {
        chain.unshift(d);
        if (d === resolve(first) || d === dirname(d)) break;
      }
      this.createdDirs.push(...chain);
    }
    const s = await stat(dir);
    if (!s.isDirectory()) throw new InputError("output folder is not a folder", dir);
  }

  private removeCreatedDirs(): void {
    for (const d of [...this.createdDirs].reverse()) {
      try {
        rmdirSync(d);
      } catch {
        break; // not empty (or gone): leave it and its parents
      }
    }
    this.createdDirs = [];
  }

  /** Open a writer for `target` (through a temporary file beside it). */
  async create(target: string, dtype: Dtype, shape: readonly number[]): Promise<NpyWriter> {
    const abs = resolve(target);
    if (this.pending.some((p) => p.target === abs)) {
      throw new InputError("the same output file is named twice", target);
    }
    let previous: Awaited<ReturnType<typeof stat>> | undefined;
    try {
      previous = await stat(abs);
    } catch {
      /* no previous version */
    }
    if (previous?.isDirectory()) throw new InputError("output path is a folder, not a file", target);
    const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    // registered before the file exists, so an interruption during creation still removes it
    const entry: Pending = { target: abs, tmp, writer: null };
    this.pending.push(entry);
    try {
      entry.writer = await NpyWriter.create(tmp, dtype, shape, target);
    } catch (e) {
      if (e instanceof InputError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new InputError(`cannot write output (${code ?? (e as Error).message})`, target);
    }
    // The previous version of an output that is not an input goes now, as cp truncates its target:
    // freeing a large file's pages then overlaps the run instead of delaying the final rename.
    if (previous?.isFile() && !this.inputs.has(`${previous.dev}:${previous.ino}`)) {
      this.removals.push(unlink(abs).catch(() => undefined));
    }
    return entry.writer;
  }

  /** Finish every writer, then rename all into place. */
  async commit(): Promise<string[]> {
    try {
      for (const p of this.pending) await p.writer!.finish();
      await Promise.all(this.removals);
      // synchronous renames: a signal handler cannot run between them, so all appear or none
      for (const p of this.pending) renameSync(p.tmp, p.target);
    } catch (e) {
      await this.abort();
      const code = (e as NodeJS.ErrnoException).code;
      if (code) throw new InputError(`cannot write outputs (${code}: ${(e as Error).message})`);
      throw e;
    }
    this.done = true;
    live.delete(this);
    return this.pending.map((p) => p.target);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    live.delete(this);
    for (const p of this.pending) {
      await p.writer?.abort().catch(() => undefined);
      await unlink(p.tmp).catch(() => undefined);
    }
    this.removeCreatedDirs();
  }

  abortSync(): void {
    if (this.done) return;
    this.done = true;
    live.delete(this);
    for (const p of this.pending) {
      try {
        unlinkSync(p.tmp);
      } catch {
        /* already gone */
      }
    }
    this.removeCreatedDirs();
  }
}

/** Write a small text file whole or not at all (temporary file beside it, then rename). */
export async function writeWhole(path: string, text: string): Promise<void> {
  const abs = resolve(path);
  const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, text);
    renameSync(tmp, abs);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`cannot write output (${code ?? (e as Error).message})`, path);
  }
}
