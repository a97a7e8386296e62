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

/**
 * Run the command with GROUPNORM_TRACE_LOAD=1: the bundle's files it loaded (bin/groupnorm.js names
 * each on stderr), by chunk name ("main", "lib", "pool", …), those compiled from a code cache, and
 * whose cache each was ("forward" for FILE.forward.cache, "shared" for FILE.cache).
 */
export function traced(args: string[], env: Record<string, string> = {}): { status: number | null; files: string[]; cached: string[]; caches: string[]; stdout: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1", GROUPNORM_TRACE_LOAD: "1", ...env } });
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("LOADED "));
  const name = (l: string) => /\/dist\/bundle\/([a-z]+)(-[\w-]+)?\.cjs\b/.exec(l)?.[1] ?? l;
  const withCache = lines.map((l) => ({ l, m: / \(code cache [^ ]+?\.cjs\.(?:([a-z]+)\.)?cache\)$/.exec(l) })).filter((c) => c.m);
  return { status: r.status, files: lines.map(name), cached: withCache.map((c) => name(c.l)), caches: withCache.map((c) => c.m![1] ?? "shared"), stdout: r.stdout };
}

