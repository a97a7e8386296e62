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

/** chalk is loaded only when some stream is coloured (it is not needed for pipes and files). */
export async function painter(level: 0 | 1 | 2 | 3): Promise<Painter> {
  if (level === 0) return plain;
  const { Chalk } = await import("chalk");
  return new Chalk({ level });
}

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
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

  private constructor(
    readonly streams: Streams,
    public out: Painter,
    public err: Painter,
  ) {}

  /** No colours from here on (--no-color). */
  noColor(): void {
    this.out = plain;
    this.err = plain;
  }

  static async create(streams: Streams, noColor = false): Promise<Console> {
    const out = await painter(colorLevel(streams.stdout.isTTY, streams.env, noColor));
    const err = await painter(colorLevel(streams.stderr.isTTY, streams.env, noColor));
    return new Console(streams, out, err);
  }

  /** Text to `stream` (stdout), unless it has failed. */
  /** Whether anything was written to stdout (only then is there anything to flush or fail). */
  wroteStdout = false;

  write(stream: NodeJS.WritableStream, text: string): void {
    if (stream === this.streams.stdout) {
      if (this.closed) return;
      this.wroteStdout = true;
    }
    stream.write(text);
  }

  /** Human text on stdout (suppressed by --quiet and --json). */
  info(line: string): void {
    if (!this.quiet && !this.json) this.write(this.streams.stdout, line + "\n");
  }

  /** Report text that is the command's answer (compare, gradcheck, info): suppressed by --json and --quiet (the exit status answers). */
  result(line: string): void {
    if (!this.json && !this.quiet) this.write(this.streams.stdout, line + "\n");
  }

  /** The one JSON document of a --json run. */
  document(value: unknown): void {
    this.write(this.streams.stdout, JSON.stringify(value, jsonReplacer, 2) + "\n");
  }

  /** Warnings go to stderr unless --quiet, once; --json documents carry them too. */
  warn(line: string): void {
    if (!this.quiet) this.streams.stderr.write(this.err.yellow("groupnorm: warning: ") + line + "\n");
  }

  error(line: string): void {
    this.streams.stderr.write(line + "\n");
  }

  /** Whether progress bars may be drawn (stderr a TTY, not --quiet, not --json). */
  get progress(): boolean {
    return !!this.streams.stderr.isTTY && !this.quiet && !this.json;
  }
}

/** JSON has no NaN/Infinity: write them as null. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  return value;
}
