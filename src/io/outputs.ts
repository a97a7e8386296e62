/**
 * Outputs appear whole or not at all: each is written to a temporary file beside its target and all
 * of a run's outputs are renamed into place together at the end. Anything else (an error, a signal)
 * removes the temporaries and the folders the run created. Files that are not regular are never
 * replaced: a character device (/dev/null) is written through, anything else refused. An output that
 * is also an input is replaced only when named explicitly, and only at the end. An output named
 * `FILE.npz[:KEY]` or `FILE.safetensors[:KEY]` is a member of that container: the outputs naming one
 * file are written into it together, whole or not at all like any other.
 */
import { lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, rmdirSync, type Stats, statSync, unlinkSync } from "node:fs";
import { stat, unlink, writeFile } from "./handle.js";
import { basename, dirname, join, resolve } from "node:path";
import type { Dtype } from "../core/dtype.js";
import { InputError, quoteName } from "../errors.js";
import type { ContainerTarget, ContainerWriter } from "./container-writer.js";
import { createTemporarySync, errnoWords, ioError, kindOf, temporaryBeside } from "./files.js";
import { NpyWriter } from "./npy/index.js";
import { locateTensor } from "./open.js";
import { live, written } from "./registry.js";
import type { TensorSink } from "./tensor.js";

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
  /** The output's name (`Y`, `mean`, …): its key in a container named without one. */
  file?: string;
  /** Deflate .npz members (np.savez_compressed); else they are stored (np.savez). */
  compress?: boolean;
}

export type OutputFormat = "npy" | "npz" | "safetensors";

/** Where an output name points: a .npy file, or a member (key) of a container file. */
export function outputFile(name: string, key: string): { path: string; key: string; format: OutputFormat } {
  const whole = containerExt(name);
  if (whole) return { path: name, key, format: whole };
  // FILE.npz:KEY, at the last colon after which a key remains and before any line break (string
  // work, not the backtracking regular expression it was, /^(.*\.(?:npz|safetensors)):([^]+)$/i,
  // whose compile cost every start 0.3 ms; its `.` matches no line terminator)
  const lineBreak = name.search(/[\n\r\u2028\u2029]/);
  const last = lineBreak < 0 ? name.length - 2 : Math.min(name.length - 2, lineBreak - 1);
  for (let c = name.lastIndexOf(":", last); c > 0; c = name.lastIndexOf(":", c - 1)) {
    const format = containerExt(name.slice(0, c));
    if (format) return { path: name.slice(0, c), key: name.slice(c + 1), format };
  }
  return { path: name, key, format: "npy" };
}

/** The container a name's extension says (case aside), or null. */
function containerExt(p: string): "npz" | "safetensors" | null {
  const lower = p.slice(-12).toLowerCase();
  return lower.endsWith(".npz") ? "npz" : lower.endsWith(".safetensors") ? "safetensors" : null;
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
  /** Container outputs by target, and the temporary files their members are held aside in. */
  private containers = new Map<string, ContainerWriter>();
  private scratches: string[] = [];

  constructor() {
    live.add(this);
  }

  /** Declare the run's input files: an output naming one is refused unless explicit, and replaced only at the end. */
  async protect(paths: Array<string | undefined>): Promise<void> {
    for (const name of paths) {
      if (!name) continue;
      const p = (await locateTensor(name)).path;
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
  private reserve(target: string, o: CreateOptions & { container?: boolean }): Pending {
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
      if (input !== undefined && o.container) {
        throw new InputError(`is an input of this run (${quoteName(input)}): a container output is written whole, so the tensors it holds would be lost; name another file`, target);
      }
      if (input !== undefined && !o.explicit) {
        throw new InputError(
          `the default output would replace the input ${quoteName(input)}; to replace it on purpose name it${o.flag ? ` (${o.flag} ${quoteName(target)})` : ""}, or choose another --out-dir`,
          target,
        );
      }
    }
    removeStaleTemporaries(dirname(abs), basename(abs));
    entry.tmp = temporaryBeside(abs);
    // registered before the file exists, so an interruption during creation still removes it
    this.pending.push(entry);
    // The previous version of an output that is not an input goes now, as cp truncates its target:
    // freeing a large file's pages then overlaps the run instead of delaying the final rename.
    if (previous && !this.inputs.has(`${previous.dev}:${previous.ino}`)) {
      this.removals.push(unlink(abs).catch(() => undefined));
    }
    return entry;
  }

  /** A temporary file beside `target`, removed with the run's temporaries. */
  private scratch(target: string): string {
    const p = temporaryBeside(target);
    this.scratches.push(p);
    return p;
  }

  /**
   * A sink for the output `target`: a .npy writer (through a temporary file beside it, or straight to
   * a device), or a member of the container `FILE.npz[:KEY]` / `FILE.safetensors[:KEY]` (keyed by
   * `o.file` when no key is given).
   */
  async create(target: string, dtype: Dtype, shape: readonly number[], o: CreateOptions): Promise<TensorSink> {
    const dest = outputFile(target, o.file ?? basename(target));
    if (dest.format !== "npy") return await this.member(dest.path, dest.format, dest.key, dtype, shape, o);
    if (dtype === "bfloat16") {
      throw new InputError(`.npy has no bfloat16: ${o.file ?? "this output"} would be bfloat16 (X's dtype); write it to a safetensors file (--out FILE.safetensors${o.flag ? `, or ${o.flag} FILE.safetensors` : ""})`, target);
    }
    const entry = this.reserve(target, o);
    const w = await NpyWriter.create(entry.tmp ?? entry.target, dtype, shape, { display: target, temporary: entry.tmp !== null });
    entry.writer = w;
    return w;
  }

  private async member(path: string, format: "npz" | "safetensors", key: string, dtype: Dtype, shape: readonly number[], o: CreateOptions): Promise<TensorSink> {
    // the container writers (and zlib) load only for a run that writes a container; loaded before
    // the look-up, so that the members of one container created together still share its writer
    const { NpzWriter } = format === "npz" ? await import("./npz/writer.js") : { NpzWriter: null };
    const { SafetensorsWriter } = format === "safetensors" ? await import("./safetensors/writer.js") : { SafetensorsWriter: null };
    const id = resolve(path);
    let c = this.containers.get(id);
    if (!c) {
      const entry = this.reserve(path, { ...o, container: true });
      const t: ContainerTarget = { path: entry.tmp ?? entry.target, temporary: entry.tmp !== null, display: path, scratch: () => this.scratch(entry.target) };
      c = NpzWriter ? new NpzWriter(t, o.compress ?? false) : new SafetensorsWriter!(t);
      entry.writer = c;
      this.containers.set(id, c);
    }
    return c.add(key, dtype, shape);
  }

  /** A text output (written at commit), checked and reserved now so a bad path fails before the work. */
  async createText(target: string, o: CreateOptions): Promise<{ set(text: string): void }> {
    const entry = this.reserve(target, o);
    let text = "";
    const path = entry.tmp ?? entry.target;
    try {
      if (entry.tmp) createTemporarySync(path);
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
    for (const s of this.scratches) await unlink(s).catch(() => undefined);
    this.removeCreatedDirs();
  }

  /** Remove the temporaries now (a signal); true when there was anything to abort. */
  abortSync(): boolean {
    if (this.done) return false;
    this.done = true;
    live.delete(this);
    for (const p of [...this.pending.map((e) => e.tmp), ...this.scratches]) {
      try {
        if (p) unlinkSync(p);
      } catch {
        /* already gone */
      }
    }
    this.removeCreatedDirs();
    return true;
  }
}
