/**
 * The only place that writes to the terminal. Colours follow NO_COLOR / FORCE_COLOR / --no-color
 * and are off when the stream is not a TTY (chalk alone ignores NO_COLOR). With --json, stdout
 * carries exactly one JSON document and nothing else.
 */

/** The colour functions the commands use: chalk's when colours are on, identities otherwise. */
export interface Painter {
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

const plain: Painter = { green: (s) => s, red: (s) => s, yellow: (s) => s, bold: (s) => s, dim: (s) => s };

/** chalk is loaded only when some stream may be coloured (it is not needed for pipes and files). */
async function chalkPainter(): Promise<(level: 1 | 2 | 3) => Painter> {
  const { Chalk } = await import("chalk");
  return (level) => new Chalk({ level });
}

export type Stream = NodeJS.WritableStream & { isTTY?: boolean };

/**
 * Where a run writes. stdout and stderr are read only when something is written to them or their
 * terminal-ness is asked (processStreams makes the process's on first use); `terminal`, when given,
 * answers that without making the stream where it can.
 */
export interface Streams {
  readonly stdout: Stream;
  readonly stderr: Stream;
  env: NodeJS.ProcessEnv;
  terminal?(name: "stdout" | "stderr"): boolean;
}

/** A stream made on first use, with its error listener attached then. */
export class LazyStream {
  private made: Stream | null = null;
  constructor(
    private readonly make: () => Stream,
    private readonly onError: (e: NodeJS.ErrnoException) => void,
  ) {}
  /** The stream, made now if it was not yet. */
  get(): Stream {
    if (!this.made) {
      this.made = this.make();
      this.made.on("error", this.onError);
    }
    return this.made;
  }
  /** The stream if it was made (null: nothing was written to it). */
  get existing(): Stream | null {
    return this.made;
  }
  /**
   * The stream as a terminal's stream (a progress bar draws on it): the process's own stream where
   * the writes went around it (stdio.ts: FdWriter).
   */
  terminalStream(): NodeJS.WriteStream {
    const s = this.get() as Stream & { stream?: NodeJS.WriteStream };
    return s.stream ?? (s as NodeJS.WriteStream);
  }

  /** Stop listening for its errors (a stream never made has none). */
  release(): void {
    this.made?.removeListener("error", this.onError);
  }
}

export function colorLevel(tty: boolean | undefined, env: NodeJS.ProcessEnv, noColorFlag: boolean): 0 | 1 | 2 | 3 {
  if (noColorFlag) return 0;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "") {
    if (force === "0" || force === "false") return 0;
    if (force === "2") return 2;
    if (force === "3") return 3;
    return 1;
  }
  return tty ? 1 : 0;
}

export class Console {
  quiet = false;
  json = false;
  /** Set when stdout failed (closed by its reader, or full): nothing more is written to it. */
  closed = false;
  /** Whether anything was written to stdout (only then is there anything to flush or fail). */
  wroteStdout = false;
  /** The colour functions of stdout and stderr (plain unless the stream is coloured). */
  out: Painter;
  err: Painter;

  private constructor(
    readonly stdout: LazyStream,
    readonly stderr: LazyStream,
    private readonly levels: Record<"stdout" | "stderr", 0 | 1 | 2 | 3>,
    chalk: ((level: 1 | 2 | 3) => Painter) | null,
    private readonly terminal: (name: "stdout" | "stderr") => boolean,
  ) {
    this.out = levels.stdout && chalk ? chalk(levels.stdout) : plain;
    this.err = levels.stderr && chalk ? chalk(levels.stderr) : plain;
  }

  /**
   * A console on `streams`, neither stream made yet. Colours need chalk, loaded here only when
   * some stream is coloured (FORCE_COLOR, or a terminal among them): whether stdout or stderr is a
   * terminal is asked of `streams.terminal` once (for the process's, without making the stream
   * where fstat can tell: a file, pipe or socket is none).
   */
  static async create(streams: Streams, stdout: LazyStream, stderr: LazyStream, noColor = false): Promise<Console> {
    const known: Partial<Record<"stdout" | "stderr", boolean>> = {};
    const terminal = (name: "stdout" | "stderr") => (known[name] ??= streams.terminal ? streams.terminal(name) : !!streams[name].isTTY);
    const levels = { stdout: colorLevel(terminal("stdout"), streams.env, noColor), stderr: colorLevel(terminal("stderr"), streams.env, noColor) };
    const chalk = levels.stdout || levels.stderr ? await chalkPainter() : null;
    return new Console(stdout, stderr, levels, chalk, terminal);
  }

  /** No colours from here on (--no-color). */
  noColor(): void {
    this.out = plain;
    this.err = plain;
  }

  /** Text to stdout, unless it has failed. */
  writeOut(text: string): void {
    if (this.closed) return;
    this.wroteStdout = true;
    this.stdout.get().write(text);
  }

  /** Text to stderr. */
  writeErr(text: string): void {
    this.stderr.get().write(text);
  }

  /** Human text on stdout (suppressed by --quiet and --json). */
  info(line: string): void {
    if (!this.quiet && !this.json) this.writeOut(line + "\n");
  }

  /** Report text that is the command's answer (compare, gradcheck, info): suppressed by --json and --quiet (the exit status answers). */
  result(line: string): void {
    if (!this.json && !this.quiet) this.writeOut(line + "\n");
  }

  /** The one JSON document of a --json run. */
  document(value: unknown): void {
    this.writeOut(JSON.stringify(value, jsonReplacer, 2) + "\n");
  }

  /** Warnings go to stderr unless --quiet, once; --json documents carry them too. */
  warn(line: string): void {
    if (!this.quiet) this.writeErr(this.err.yellow("groupnorm: warning: ") + line + "\n");
  }

  error(line: string): void {
    this.writeErr(line + "\n");
  }

  /** The terminal's width for commander's help, or undefined (not a terminal: no wrapping width asked of a stream). */
  helpWidth(name: "stdout" | "stderr"): number | undefined {
    return this.terminal(name) ? this[name].terminalStream().columns : undefined;
  }

  /** Whether commander may colour what it writes to `name`: this console's colour rule. */
  hasColors(name: "stdout" | "stderr"): boolean {
    return this.levels[name] > 0;
  }

  /** Whether progress bars may be drawn (stderr a TTY, not --quiet, not --json). */
  get progress(): boolean {
    return !this.quiet && !this.json && this.terminal("stderr");
  }
}

/** JSON has no NaN/Infinity: write them as null. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  return value;
}
