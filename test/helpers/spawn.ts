/**
 * Running the built command asynchronously, as a user's shell would: its exit status or the signal
 * that ended it, its output, its wall time and its peak resident set (VmHWM, polled from /proc).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { bin } from "./cli.js";

export interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Peak resident set in bytes (0 where /proc does not say). */
  peak: number;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Called with the child once it runs (to signal it, close its pipes). */
  with?: (child: ChildProcess) => void;
  /** Kill after this many ms (default 60 s). */
  timeout?: number;
  /** Run `sh -c` with this prefix before the command (e.g. "ulimit -v 13000000;"). */
  shell?: string;
}

function vmHWM(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function run(args: string[], o: RunOptions = {}): Promise<Ran> {
  const env = { ...process.env, NO_COLOR: "", FORCE_COLOR: "", ...o.env };
  const child = o.shell
    ? spawn("sh", ["-c", `${o.shell} exec ${quote(process.execPath)} ${[bin, ...args].map(quote).join(" ")}`], { cwd: o.cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(process.execPath, [bin, ...args], { cwd: o.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const t0 = Date.now();
  let stdout = "", stderr = "", peak = 0;
  child.stdout!.on("data", (b) => (stdout += b));
  child.stderr!.on("data", (b) => (stderr += b));
  child.stdout!.on("error", () => undefined);
  const poll = setInterval(() => (peak = Math.max(peak, vmHWM(child.pid!))), 2);
  const killer = setTimeout(() => child.kill("SIGKILL"), o.timeout ?? 60_000);
  o.with?.(child);
  return new Promise((resolve) => {
    child.on("close", (status, signal) => {
      clearInterval(poll);
      clearTimeout(killer);
      resolve({ status, signal, stdout, stderr, seconds: (Date.now() - t0) / 1000, peak });
    });
  });
}

/** Resolves when `test()` holds, polling every 2 ms for up to `ms`. */
export async function until(test: () => boolean, ms = 20_000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; ) {
    if (test()) return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return test();
}
