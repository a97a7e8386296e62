/**
 * What the host is, read from /proc and sysfs, and its theoretical memory bandwidth when the
 * platform says: DMI type-17 memory device records (through dmidecode) or ACPI HMAT (sysfs).
 * The parsers are pure functions so they can be tested on recorded inputs.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";

export interface CacheLevel {
  level: number;
  bytes: number;
}

export interface HostInfo {
  cpu: string;
  cores: number;
  llc_bytes: number;
  node: string;
  hypervisor: boolean;
  /** Data/unified caches of cpu0 by level (sysfs), for the sweep plot. */
  caches: CacheLevel[];
}

export interface Theoretical {
  gbps: number | null;
  source: "flag" | "dmi" | "hmat" | "unavailable";
  detail: string;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** "32768K" → bytes. */
export function parseCacheSize(s: string): number {
  const m = /^\s*(\d+)\s*([KMG]?)/i.exec(s);
  if (!m) return 0;
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as "" | "K" | "M" | "G"];
  return Number(m[1]) * mult;
}

/** Data and unified caches of cpu0 from sysfs, one per level (largest), by level. */
export function cacheLevels(root = "/sys/devices/system/cpu/cpu0/cache"): CacheLevel[] {
  let entries: string[] = [];
  try {
    entries = readdirSync(root).filter((e) => e.startsWith("index"));
  } catch {
    return [];
  }
  const byLevel = new Map<number, number>();
  for (const e of entries) {
    const level = Number(read(`${root}/${e}/level`) ?? 0);
    const type = (read(`${root}/${e}/type`) ?? "").trim();
    const size = parseCacheSize(read(`${root}/${e}/size`) ?? "");
    if (type === "Instruction" || !level || !size) continue;
    byLevel.set(level, Math.max(byLevel.get(level) ?? 0, size));
  }
  return [...byLevel.entries()].sort((a, b) => a[0] - b[0]).map(([level, bytes]) => ({ level, bytes }));
}

export function hostInfo(): HostInfo {
  const cpuinfo = read("/proc/cpuinfo") ?? "";
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  const flags = /^flags\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "";
  const caches = cacheLevels();
  return {
    cpu: model,
    cores: availableParallelism(),
    caches,
    llc_bytes: caches.length ? caches[caches.length - 1].bytes : 0,
    node: process.version,
    hypervisor: /\bhypervisor\b/.test(flags),
  };
}

/**
 * Peak DRAM bandwidth from `dmidecode -t 17` output: populated devices × configured MT/s × 8 bytes
 * (each populated DIMM counted as one 64-bit channel: an upper bound when DIMMs share channels).
 */
export function parseDmidecode(text: string): Theoretical | null {
  const devices = text.split(/\n(?=Handle )/).filter((b) => /Memory Device/.test(b));
  let populated = 0;
  let mts = 0;
  let width = 64;
  for (const d of devices) {
    const size = /^\s*Size:\s*(.+)$/m.exec(d)?.[1] ?? "";
    if (!size || /No Module Installed|Not Installed|^0\b|Unknown/i.test(size)) continue;
    const speed =
      /^\s*Configured (?:Memory|Clock) Speed:\s*(\d+)\s*(MT\/s|MHz)/m.exec(d) ?? /^\s*Speed:\s*(\d+)\s*(MT\/s|MHz)/m.exec(d);
    if (!speed) continue;
    const w = /^\s*Data Width:\s*(\d+)\s*bits/m.exec(d);
    if (w) width = Number(w[1]);
    populated++;
    mts = mts === 0 ? Number(speed[1]) : Math.min(mts, Number(speed[1]));
  }
  if (populated === 0 || mts === 0) return null;
  const gbps = (populated * mts * (width / 8)) / 1000;
  return { gbps, source: "dmi", detail: `${populated} populated DIMM(s) × ${mts} MT/s × ${width / 8} bytes (dmidecode type 17)` };
}

/** Peak read bandwidth from ACPI HMAT (sysfs read_bandwidth, MB/s) summed over memory nodes. */
export function parseHmat(values: Array<{ node: string; mbps: number }>): Theoretical | null {
  const usable = values.filter((v) => Number.isFinite(v.mbps) && v.mbps > 0);
  if (usable.length === 0) return null;
  const total = usable.reduce((s, v) => s + v.mbps, 0);
  return { gbps: total / 1000, source: "hmat", detail: `ACPI HMAT read_bandwidth of ${usable.map((v) => `${v.node} ${v.mbps} MB/s`).join(", ")}` };
}

export function theoreticalPeak(flagGbps: number | undefined): Theoretical {
  if (flagGbps !== undefined) return { gbps: flagGbps, source: "flag", detail: "--peak-gbps" };
  const reasons: string[] = [];
  try {
    const out = execFileSync("dmidecode", ["-t", "17"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 5000 });
    const t = parseDmidecode(out);
    if (t) return t;
    reasons.push("dmidecode shows no populated type-17 memory device with a speed");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    reasons.push(code === "ENOENT" ? "dmidecode is not installed" : "dmidecode failed (DMI tables unreadable)");
  }
  const hmat: Array<{ node: string; mbps: number }> = [];
  try {
    for (const node of readdirSync("/sys/devices/system/node").filter((n) => /^node\d+$/.test(n))) {
      const v = read(`/sys/devices/system/node/${node}/access0/initiators/read_bandwidth`);
      if (v !== null) hmat.push({ node, mbps: Number(v.trim()) });
    }
  } catch {
    /* no NUMA sysfs */
  }
  const h = parseHmat(hmat);
  if (h) return h;
  reasons.push("no ACPI HMAT bandwidth in sysfs");
  return { gbps: null, source: "unavailable", detail: reasons.join("; ") };
}
