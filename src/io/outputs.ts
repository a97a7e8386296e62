/**
 * Outputs appear whole or not at all: each is written to a temporary file beside its target and all
 * of a run's outputs are renamed into place together at the end. Anything else (an error, a signal)
 * removes the temporaries and the folders the run created. Files that are not regular are never
 * replaced: a character device (/dev/null) is written through, anything else refused. An output that
 * is also an input is replaced only when named explicitly, and only at the end.
 */
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, rmdirSync, type Stats, statSync, unlinkSync } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Dtype } from "../core/dtype.js";
import { InputError, quoteName } from "../errors.js";
import { errnoWords, ioError, kindOf } from "./files.js";
import { NpyWriter } from "./npy/index.js";
import { live, written } from "./registry.js";

export { abortAllOutputsSync, type OutputsOnDisk } from "./registry.js";

interface Pending {
  target: string;
  /** The temporary file, or null for a device written through. */
  tmp: string | null;
  writer: { finish(): Promise<void>; abort(): Promise<void> } | null; // null while being created
}

/** `.NAME.PID.RANDOM.tmp`: the temporary beside an output NAME. */
const TMP = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.tmp$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, someone else's
  }
}

/** Remove the temporaries of `name` in `dir` left by processes that are gone (killed, say). */
function removeStaleTemporaries(dir: string, name: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const m = TMP.exec(e);
    if (m && m[1] === name && Number(m[2]) !== process.pid && !alive(Number(m[2]))) {
      try {
        unlinkSync(join(dir, e));
      } catch {
        /* gone already, or not ours to remove */
      }
    }
  }
}

function statOrNull(path: string, follow = true): Stats | null {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return null;
  }
}

export interface CreateOptions {
  /** The caller named this output (a flag); an output path derived from defaults is not explicit. */
  explicit: boolean;
  /** The flag that names it, for hints (`--y`). */
  flag?: string;
}

export class OutputSet {
  private pending: Pending[] = [];
  private done = false;
  /** Inputs of the run, device:inode → the name given. */
  private inputs = new Map<string, string>();
  /** Removals of the previous versions of outputs, started early so their cost overlaps the run. */
  private removals: Promise<void>[] = [];
  /** Folders this run created (outermost first), removed again if the run fails. */
  private createdDirs: string[] = [];

  constructor() {
    live.add(this);
  }

  /** Declare the run's input files: an output naming one is refused unless explicit, and replaced only at the end. */
  async protect(paths: Array<string | undefined>): Promise<void> {
    for (const p of paths) {
      if (!p) continue;
      try {
        const s = await stat(p);
        this.inputs.set(`${s.dev}:${s.ino}`, p);
      } catch {
        /* not a file: nothing to protect */
      }
    }
  }

  /**
   * Make sure a folder exists, creating it and its parents one by one (Node's recursive mkdir spins
   * forever where a file system refuses new folders, as /proc does). Each folder made is recorded at
   * once, so a signal at any moment removes exactly those.
   */
  async ensureDir(dir: string): Promise<void> {
    const abs = resolve(dir);
    const missing: string[] = [];
    for (let d = abs; ; d = dirname(d)) {
      const st = statOrNull(d);
      if (st) {
        if (!st.isDirectory()) {
          throw new InputError(d === abs ? "cannot create the output folder: a file of that name exists" : `cannot create the output folder: ${quoteName(d)} is a file, not a folder`, dir);
        }
        break;
      }
      if (dirname(d) === d) break;
      missing.unshift(d);
    }
    for (const d of missing) {
      try {
        mkdirSync(d);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EEXIST" && statOrNull(d)?.isDirectory()) continue;
        const why = code === "ENOENT" ? "the file system does not allow new folders there" : errnoWords(e);
        throw new InputError(`cannot create the output folder: ${why}`, dir);
      }
      this.createdDirs.push(d);
    }
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

  /** Check a target and register it: the path to write, and whether through a temporary. */
  private reserve(target: string, o: CreateOptions): Pending {
    if (target === "-") throw new InputError("writing an output to standard output is not supported: name a file (outputs are renamed into place once complete)", target);
    let abs = resolve(target);
    const link = statOrNull(abs, false);
    if (link?.isSymbolicLink()) {
      // write through the link: its target is replaced, the link stays
      try {
        abs = realpathSync(abs);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ELOOP") throw new InputError("is a symbolic link in a loop (it leads back to itself): remove it or name another output", target);
        if (code === "ENOENT") throw new InputError("is a symbolic link to nothing (a dangling link): remove it or name another output", target);
        throw ioError(e, target, "open");
      }
    }
    const previous = statOrNull(abs);
    const entry: Pending = { target: abs, tmp: null, writer: null };
    if (previous?.isCharacterDevice()) {
      this.pending.push(entry); // written through (/dev/null discards), as often as it is named
      return entry;
    }
    if (this.pending.some((p) => p.target === abs)) throw new InputError("the same output file is named twice", target);
    if (previous && !previous.isFile()) {
      throw new InputError(`is ${kindOf(previous)}: outputs are regular files, and this is never replaced`, target);
    }
    if (previous) {
      const input = this.inputs.get(`${previous.dev}:${previous.ino}`);
      if (input !== undefined && !o.explicit) {
        throw new InputError(
          `the default output would replace the input ${quoteName(input)}; to replace it on purpose name it${o.flag ? ` (${o.flag} ${quoteName(target)})` : ""}, or choose another --out-dir`,
          target,
        );
      }
    }
    removeStaleTemporaries(dirname(abs), basename(abs));
    entry.tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    // registered before the file exists, so an interruption during creation still removes it
    this.pending.push(entry);
    // The previous version of an output that is not an input goes now, as cp truncates its target:
    // freeing a large file's pages then overlaps the run instead of delaying the final rename.
    if (previous && !this.inputs.has(`${previous.dev}:${previous.ino}`)) {
      this.removals.push(unlink(abs).catch(() => undefined));
    }
    return entry;
  }

  /** Open a .npy writer for `target` (through a temporary file beside it, or straight to a device). */
  async create(target: string, dtype: Dtype, shape: readonly number[], o: CreateOptions): Promise<NpyWriter> {
    const entry = this.reserve(target, o);
    const w = await NpyWriter.create(entry.tmp ?? entry.target, dtype, shape, { display: target, temporary: entry.tmp !== null });
    entry.writer = w;
    return w;
  }

  /** A text output (written at commit), checked and reserved now so a bad path fails before the work. */
  async createText(target: string, o: CreateOptions): Promise<{ set(text: string): void }> {
    const entry = this.reserve(target, o);
    const { writeFile, open } = await import("node:fs/promises");
    let text = "";
    const path = entry.tmp ?? entry.target;
    try {
      if (entry.tmp) await (await open(path, "wx")).close();
    } catch (e) {
      throw new InputError(`cannot create: ${errnoWords(e)}`, target);
    }
    entry.writer = {
      async finish() {
        try {
          await writeFile(path, text);
        } catch (e) {
          throw new InputError(`cannot write: ${errnoWords(e)}`, target);
        }
      },
      async abort() {},
    };
    return { set: (t) => void (text = t) };
  }

  /** Finish every writer, then rename all into place. */
  async commit(): Promise<string[]> {
    try {
      for (const p of this.pending) await p.writer!.finish();
      await Promise.all(this.removals);
      // synchronous renames: a signal handler cannot run between them, so all appear or none
      for (const p of this.pending) if (p.tmp) renameSync(p.tmp, p.target);
    } catch (e) {
      await this.abort();
      if (e instanceof InputError) throw e;
      if ((e as NodeJS.ErrnoException).code) throw new InputError(`cannot write the outputs: ${errnoWords(e)}`);
      throw e;
    }
    this.done = true;
    live.delete(this);
    const targets = this.pending.map((p) => p.target);
    written.push(...targets);
    return targets;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    live.delete(this);
    for (const p of this.pending) {
      await p.writer?.abort().catch(() => undefined);
      if (p.tmp) await unlink(p.tmp).catch(() => undefined);
    }
    this.removeCreatedDirs();
  }

  /** Remove the temporaries now (a signal); true when there was anything to abort. */
  abortSync(): boolean {
    if (this.done) return false;
    this.done = true;
    live.delete(this);
    for (const p of this.pending) {
      try {
        if (p.tmp) unlinkSync(p.tmp);
      } catch {
        /* already gone */
      }
    }
    this.removeCreatedDirs();
    return true;
  }
}
