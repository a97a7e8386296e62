/** Small pieces of human output shared by commands: run and output lines, and the progress bar. */
import { createRequire } from "node:module";
import type cliProgressTypes from "cli-progress";
import { formatShape } from "../core/dims.js";
import { quoteName } from "../errors.js";
import type { Console, Painter } from "./console.js";

/** The first line of forward/backward: the command, its inputs, shape, dtype, layout, G. */
export function runLine(c: Painter, command: string, inputs: string[], r: { input: { shape: number[]; dtype: string }; layout: string; groups: number }, extra: string): string {
  return `${c.green(command)} ${inputs.map(quoteName).join(" ")}: shape ${formatShape(r.input.shape)} ${r.input.dtype}, ${r.layout}, G=${r.groups}, ${extra}`;
}

/** One line per output written: its name, path, dtype and shape. */
export function describeOutputs(c: Painter, paths: Record<string, string | undefined>, dtypes: Record<string, string | undefined>, shapes: Record<string, readonly number[]>): string[] {
  return Object.entries(paths)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, path]) => `  ${c.bold(name.padEnd(6))} ${quoteName(path)}  ${dtypes[name]} ${formatShape(shapes[name])}`);
}

/** The closing line of forward/backward: wall time, phases, threads. */
export function timingLine(c: Painter, r: { seconds: { total: number; read: number; compute: number; write: number }; threads: number; slices: number }): string {
  const t = r.seconds;
  return c.dim(`${t.total.toFixed(3)} s (read ${t.read.toFixed(3)}, compute ${t.compute.toFixed(3)}, write ${t.write.toFixed(3)}; overlapping), ${r.slices} slice${r.slices === 1 ? "" : "s"}, ${r.threads} thread${r.threads === 1 ? "" : "s"}`);
}

/** --compress with no .npz output written: say it did nothing. */
export function warnCompress(ctx: { console: Console }, compress: boolean, outputs: Record<string, string | undefined>): void {
  if (compress && !Object.values(outputs).some((p) => p !== undefined && /\.npz(:|$)/i.test(p))) ctx.console.warn("--compress has no effect: no output is an .npz file");
}

export interface Progress {
  /** `phase`: what is being done now, shown after the bar (when the bar was made with phases). */
  update: (done: number, total: number, phase?: string) => void;
  stop: () => void;
}

/** The terminal a bar has changed (cursor hidden, line wrap off), until it is restored. */
let changed: NodeJS.WritableStream | null = null;

/** Whether a bar is on screen (its line not yet ended): what is written next starts on a line of its own. */
let drawn = false;

/** Show the cursor and turn line wrap back on if a bar turned them off, and clear a bar left on screen (every exit path calls this). */
export function restoreTerminal(): void {
  if (!changed) return;
  changed.write(`${drawn ? "\r\u001b[2K" : ""}\u001b[?25h\u001b[?7h`);
  drawn = false;
  changed = null;
}

/**
 * A cli-progress bar on stderr, only on a TTY and not with --quiet/--json, and only once the work
 * has run for about a second (short runs print no bar at all).
 */
export function progressFor(console: Console, label: string, unit = "slices", delayMs = 1000, phases = false): Progress {
  if (!console.progress) return { update: () => undefined, stop: () => undefined };
  const started = Date.now();
  // loaded only when a bar may be drawn (a TTY): not on the start-up path of scripts
  const cliProgress = createRequire(import.meta.url)("cli-progress") as typeof cliProgressTypes;
  let bar: cliProgressTypes.SingleBar | null = null;
  return {
    update(done, total, phase = "") {
      if (!bar && Date.now() - started < delayMs) return;
      if (!bar) {
        changed = console.stderr.terminalStream();
        bar = new cliProgress.SingleBar(
          { stream: changed as NodeJS.WriteStream, format: `${label} [{bar}] {percentage}% {value}/{total} ${unit} | {duration_formatted}${phases ? " | {phase}" : ""}`, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done, { phase });
        drawn = true;
      } else bar.update(done, { phase });
    },
    stop() {
      bar?.stop(); // clearOnComplete: the bar's line is cleared
      bar = null;
      drawn = false;
      restoreTerminal();
    },
  };
}
