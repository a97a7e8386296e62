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

/**
 * Format an error line: `groupnorm: error: <file>: <message>` (or without the file part).
 * Accepts any Error; a `file` property is used when present. Embedded newlines are flattened so
 * the result is always one line.
 */
export function formatError(e: InputError | Error): string {
  const file = (e as { file?: unknown }).file;
  const message = String(e.message).replace(/\r?\n/g, " ");
  return typeof file === "string" && file !== ""
    ? `groupnorm: error: ${file}: ${message}`
    : `groupnorm: error: ${message}`;
}
