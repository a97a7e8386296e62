/** Spawning the built command (bin/groupnorm.js → dist/) as a user's shell would. */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const bin = fileURLToPath(new URL("../../bin/groupnorm.js", import.meta.url));

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function groupnorm(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Run {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, NO_COLOR: "", FORCE_COLOR: "", ...opts.env },
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
