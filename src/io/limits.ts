/**
 * The process's address-space limit (ulimit -v, RLIMIT_AS) and its current virtual size, from
 * /proc on Linux; null where the host does not say.
 */
import { readFileSync } from "node:fs";

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** The soft address-space limit in bytes, or null when unlimited or unknown. */
export function addressSpaceLimit(limits = read("/proc/self/limits")): number | null {
  const m = limits ? /^Max address space\s+(\S+)/m.exec(limits) : null;
  if (!m || m[1] === "unlimited") return null;
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : null;
}

/** The process's current virtual size in bytes, or null when unknown. */
export function virtualSize(status = read("/proc/self/status")): number | null {
  const m = status ? /^VmSize:\s+(\d+)\s*kB/m.exec(status) : null;
  return m ? Number(m[1]) * 1024 : null;
}
