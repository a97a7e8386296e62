/**
 * Error types shared by the whole tool.
 *
 *   InputError   bad usage or bad input (exit status 2)
 *   CheckFailed  a requested check failed (exit status 1)
 */

/** Bad usage or bad input: exit 2. `file` is the path the problem concerns (if any). */
export class InputError extends Error {
  readonly file?: string;

  constructor(message: string, file?: string) {
    super(message);
    this.name = "InputError";
    if (file !== undefined) this.file = file;
  }
}

/** A check failed: exit 1. */
export class CheckFailed extends Error {
  constructor(message?: string) {
    super(message);
    this.name = "CheckFailed";
  }
}

/** Characters a terminal would act on: C0 and C1 controls, DEL, and the bidirectional overrides. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  const named: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r", "\u001b": "\\e" };
  if (named[c]) return named[c];
  const code = c.codePointAt(0)!;
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** Text from a file (a header's descr, say) made safe to print: control characters escaped. */
export function printable(text: string): string {
  return text.replace(CONTROL, escapeChar);
}

/**
 * A file name as a shell would need it, and safe for a terminal: plain when it is only ordinary
 * characters, in single quotes when it has spaces or shell characters, and as $'…' with escapes
 * when it has control characters or a single quote (coreutils' style).
 */
export function quoteName(name: string): string {
  if (/^[\p{L}\p{N}._\/+,:@%=~-]+$/u.test(name)) return name;
  CONTROL.lastIndex = 0;
  if (!CONTROL.test(name) && !name.includes("'")) return `'${name}'`;
  return `$'${name.replace(/[\\']/g, (c) => `\\${c}`).replace(CONTROL, escapeChar)}'`;
}

/**
 * Format an error line: `groupnorm: error: <file>: <message>` (or without the file part). The file
 * name is quoted as needed and control characters anywhere are escaped, so the result is always one
 * line and never drives the terminal.
 */
export function formatError(e: InputError | Error): string {
  const file = (e as { file?: unknown }).file;
  const message = printable(String(e.message));
  return typeof file === "string" && file !== "" ? `groupnorm: error: ${quoteName(file)}: ${message}` : `groupnorm: error: ${message}`;
}
