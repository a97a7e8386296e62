/**
 * What the host is, read from /proc and sysfs, and its theoretical memory bandwidth when the
 * platform says: DMI type-17 memory device records (through dmidecode) or ACPI HMAT (sysfs).
 *
 * Every fact comes through a HostSource: the live one reads this machine (the only file-system and
 * process access of the roofline), a recorded one replays the files of another machine (the tests
 * use this machine's and a 2-socket, 128-core, 4-node host's). The parsers are pure functions.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";

/** Where host facts come from: this machine, or a recording of one. */
export interface HostSource {
  /** A file's text, or null when it is absent or unreadable. */
  read(path: string): string | null;
  /** A folder's entries, or [] when it is absent. */
  list(dir: string): string[];
  /** `dmidecode -t 17` output, or why there is none. */
  dmidecode(): { text: string } | { error: string };
  /** CPUs this process may run on (os.availableParallelism). */
  readonly availableParallelism: number;
  /** The runtime's version (process.version). */
  readonly node: string;
  /** CPU model when /proc/cpuinfo does not name it, and memory when /proc/meminfo is absent. */
  readonly fallback: { cpu: string; memoryBytes: number };
}

/** A recording of a host: the files and folders read, as a HostSource replays them. */
export interface RecordedHost {
  description?: string;
  files: Record<string, string>;
  dirs: Record<string, string[]>;
  dmidecode: { text: string } | { error: string };
  available_parallelism: number;
  node: string;
  fallback: { cpu: string; memoryBytes: number };
}

export function liveHostSource(): HostSource {
  return {
    read(path) {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return null;
      }
    },
    list(dir) {
      try {
        return readdirSync(dir).sort();
      } catch {
        return [];
      }
    },
    dmidecode() {
      try {
        return { text: execFileSync("dmidecode", ["-t", "17"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 5000 }) };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return { error: code === "ENOENT" ? "dmidecode is not installed" : "dmidecode failed (DMI tables unreadable)" };
      }
    },
    availableParallelism: availableParallelism(),
    node: process.version,
    fallback: { cpu: cpus()[0]?.model ?? "unknown", memoryBytes: totalmem() },
  };
}

/** A source replaying a recording (tests; another machine's facts). */
export function recordedHostSource(r: RecordedHost): HostSource {
  return {
    read: (path) => r.files[path] ?? null,
    list: (dir) => r.dirs[dir] ?? [],
    dmidecode: () => r.dmidecode,
    availableParallelism: r.available_parallelism,
    node: r.node,
    fallback: r.fallback,
  };
}

/** Wraps a source and keeps what was read, to save as a RecordedHost (scripts/record-host.js). */
export function recordingHostSource(inner: HostSource): HostSource & { recording(): RecordedHost } {
  const files: Record<string, string> = {}, dirs: Record<string, string[]> = {};
  let dmi: RecordedHost["dmidecode"] | null = null;
  return {
    read(path) {
      const v = inner.read(path);
      if (v !== null) files[path] = v;
      return v;
    },
    list(dir) {
      const v = inner.list(dir);
      if (v.length) dirs[dir] = v;
      return v;
    },
    dmidecode() {
      dmi = inner.dmidecode();
      return dmi;
    },
    availableParallelism: inner.availableParallelism,
    node: inner.node,
    fallback: inner.fallback,
    recording: () => ({ files, dirs, dmidecode: dmi ?? { error: "not asked" }, available_parallelism: inner.availableParallelism, node: inner.node, fallback: inner.fallback }),
  };
}

export interface CacheLevel {
  level: number;
  /** Size of one instance (cpu0's). */
  bytes: number;
  /** Logical CPUs sharing one instance (sysfs shared_cpu_list). */
  shared_by_cpus: number;
  /** Physical cores sharing one instance. */
  shared_by_cores: number;
  /** Instances on the host (online CPUs / CPUs per instance). */
  instances: number;
  /** All instances together. */
  total_bytes: number;
}

export interface NumaNode {
  node: number;
  cpus: number;
  memory_bytes: number | null;
}

export interface HostInfo {
  cpu: string;
  /** CPUs this process may use (os.availableParallelism): the default thread count. */
  cores: number;
  /** Last-level cache of cpu0 (one instance; see caches for how many there are). */
  llc_bytes: number;
  node: string;
  hypervisor: boolean;
  /** Data/unified caches by level, from cpu0's sysfs entries (taken as alike on every CPU). */
  caches: CacheLevel[];
  logical_cpus: number;
  physical_cores: number;
  /** Hardware threads per core. */
  smt: number;
  sockets: number;
  numa_nodes: NumaNode[];
  /** Transparent huge pages mode (sysfs), or null when the kernel does not say. */
  huge_pages: "always" | "madvise" | "never" | null;
  memory_bytes: number;
  /** MemAvailable, or null when /proc/meminfo does not say. */
  available_bytes: number | null;
}

export interface Theoretical {
  gbps: number | null;
  source: "flag" | "dmi" | "hmat" | "unavailable";
  detail: string;
}

/** "32768K" → bytes. */
export function parseCacheSize(s: string): number {
  const m = /^\s*(\d+)\s*([KMG]?)/i.exec(s);
  if (!m) return 0;
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as "" | "K" | "M" | "G"];
  return Number(m[1]) * mult;
}

/** How many CPUs a sysfs list names: "0-3,8-11" → 8, "0,128" → 2, "" → 0. */
export function countCpuList(s: string | null): number {
  if (!s) return 0;
  let n = 0;
  for (const part of s.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m) n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n;
}

const CPU = "/sys/devices/system/cpu";
const NODE = "/sys/devices/system/node";

/** Data and unified caches of cpu0 from sysfs, one per level (the largest), with their sharing. */
export function cacheLevels(src: HostSource, online: number, smt: number): CacheLevel[] {
  const root = `${CPU}/cpu0/cache`;
  const byLevel = new Map<number, CacheLevel>();
  for (const e of src.list(root).filter((e) => e.startsWith("index"))) {
    const level = Number(src.read(`${root}/${e}/level`) ?? 0);
    const type = (src.read(`${root}/${e}/type`) ?? "").trim();
    const bytes = parseCacheSize(src.read(`${root}/${e}/size`) ?? "");
    if (type === "Instruction" || !level || !bytes) continue;
    const shared = Math.max(1, countCpuList(src.read(`${root}/${e}/shared_cpu_list`)));
    const instances = Math.max(1, Math.round(online / shared));
    const c: CacheLevel = { level, bytes, shared_by_cpus: shared, shared_by_cores: Math.max(1, Math.round(shared / smt)), instances, total_bytes: instances * bytes };
    const was = byLevel.get(level);
    if (!was || was.bytes < bytes) byLevel.set(level, c);
  }
  return [...byLevel.values()].sort((a, b) => a.level - b.level);
}

/** "MemTotal:  24576000 kB" → bytes, from /proc/meminfo or a node's meminfo. */
function meminfoField(text: string | null, field: string): number | null {
  const m = text ? new RegExp(`${field}:\\s*(\\d+)\\s*kB`).exec(text) : null;
  return m ? Number(m[1]) * 1024 : null;
}

export function hostInfo(src: HostSource = liveHostSource()): HostInfo {
  const cpuinfo = src.read("/proc/cpuinfo") ?? "";
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? src.fallback.cpu;
  const flags = /^flags\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "";
  const online = countCpuList(src.read(`${CPU}/online`)) || src.availableParallelism;
  const smt = Math.max(1, countCpuList(src.read(`${CPU}/cpu0/topology/thread_siblings_list`)));
  const perPackage = countCpuList(src.read(`${CPU}/cpu0/topology/package_cpus_list`) ?? src.read(`${CPU}/cpu0/topology/core_siblings_list`));
  const caches = cacheLevels(src, online, smt);
  const numa: NumaNode[] = src
    .list(NODE)
    .filter((n) => /^node\d+$/.test(n))
    .map((n) => ({ node: Number(n.slice(4)), cpus: countCpuList(src.read(`${NODE}/${n}/cpulist`)), memory_bytes: meminfoField(src.read(`${NODE}/${n}/meminfo`), "MemTotal") }))
    .sort((a, b) => a.node - b.node);
  const thp = /\[(always|madvise|never)\]/.exec(src.read("/sys/kernel/mm/transparent_hugepage/enabled") ?? "")?.[1] as HostInfo["huge_pages"] | undefined;
  const meminfo = src.read("/proc/meminfo");
  return {
    cpu: model,
    cores: src.availableParallelism,
    caches,
    llc_bytes: caches.length ? caches[caches.length - 1].bytes : 0,
    node: src.node,
    hypervisor: /\bhypervisor\b/.test(flags),
    logical_cpus: online,
    physical_cores: Math.max(1, Math.round(online / smt)),
    smt,
    sockets: perPackage > 0 ? Math.max(1, Math.round(online / perPackage)) : 1,
    numa_nodes: numa,
    huge_pages: thp ?? null,
    memory_bytes: meminfoField(meminfo, "MemTotal") ?? src.fallback.memoryBytes,
    available_bytes: meminfoField(meminfo, "MemAvailable"),
  };
}

/**
 * How much of a cache level `threads` threads reach, spread over the cores as Linux's scheduler
 * spreads them: one instance per thread until every instance is in use.
 */
export function cacheReach(c: CacheLevel, threads: number): number {
  return Math.min(c.instances, Math.max(1, threads)) * c.bytes;
}

/** The last-level cache the threads reach (0 when the host does not say). */
export function llcReach(host: Pick<HostInfo, "caches">, threads: number): number {
  const llc = host.caches[host.caches.length - 1];
  return llc ? cacheReach(llc, threads) : 0;
}

/** Where the process's largest memory mapping (the WebAssembly memory with the buffers) lives. */
export interface BufferPlacement {
  /** Bytes on each NUMA node, largest first. */
  nodes: Array<{ node: number; bytes: number }>;
  /** The mapping's memory policy (numa_maps: default, interleave, bind, …). */
  policy: string;
  /** Bytes of the process's anonymous memory in transparent huge pages (smaps_rollup AnonHugePages), or null. */
  huge_page_bytes: number | null;
}

/**
 * The NUMA placement of the mapping with the most resident pages, from /proc/self/numa_maps
 * (`addr policy anon=… N0=pages N1=pages kernelpagesize_kB=4`): Linux's own record of where the
 * pages of the buffers are. Null when the kernel does not say.
 */
export function parseNumaMaps(text: string | null, smapsRollup: string | null = null): BufferPlacement | null {
  if (!text) return null;
  let best: { pages: number; nodes: Map<number, number>; policy: string; pageBytes: number } | null = null;
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 3) continue;
    const nodes = new Map<number, number>();
    let pages = 0, pageBytes = 4096;
    for (const p of parts.slice(2)) {
      const n = /^N(\d+)=(\d+)$/.exec(p);
      if (n) {
        nodes.set(Number(n[1]), Number(n[2]));
        pages += Number(n[2]);
      }
      const k = /^kernelpagesize_kB=(\d+)$/.exec(p);
      if (k) pageBytes = Number(k[1]) * 1024;
    }
    if (pages > 0 && (!best || pages * pageBytes > best.pages * best.pageBytes)) best = { pages, nodes, policy: parts[1], pageBytes };
  }
  if (!best) return null;
  const b = best;
  return {
    nodes: [...b.nodes.entries()].map(([node, pages]) => ({ node, bytes: pages * b.pageBytes })).sort((x, y) => y.bytes - x.bytes),
    policy: b.policy,
    huge_page_bytes: meminfoField(smapsRollup, "AnonHugePages"),
  };
}

/** Read where the buffers are now (after they were filled): see parseNumaMaps. */
export function bufferPlacement(src: HostSource = liveHostSource()): BufferPlacement | null {
  return parseNumaMaps(src.read("/proc/self/numa_maps"), src.read("/proc/self/smaps_rollup"));
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

export function theoreticalPeak(flagGbps: number | undefined, src: HostSource = liveHostSource()): Theoretical {
  if (flagGbps !== undefined) return { gbps: flagGbps, source: "flag", detail: "--peak-gbps" };
  const reasons: string[] = [];
  const dmi = src.dmidecode();
  if ("text" in dmi) {
    const t = parseDmidecode(dmi.text);
    if (t) return t;
    reasons.push("dmidecode shows no populated type-17 memory device with a speed");
  } else reasons.push(dmi.error);
  const hmat: Array<{ node: string; mbps: number }> = [];
  for (const node of src.list(NODE).filter((n) => /^node\d+$/.test(n))) {
    const v = src.read(`${NODE}/${node}/access0/initiators/read_bandwidth`);
    if (v !== null) hmat.push({ node, mbps: Number(v.trim()) });
  }
  const h = parseHmat(hmat);
  if (h) return h;
  reasons.push("no ACPI HMAT bandwidth in sysfs");
  return { gbps: null, source: "unavailable", detail: reasons.join("; ") };
}
