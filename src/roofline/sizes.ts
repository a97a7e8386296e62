/**
 * How big and how many: the probe arrays and default tensor for a DRAM measurement (≥ 4× the
 * last-level cache the threads reach, STREAM's rule, within one WebAssembly memory and the host's
 * memory), the sweep's working sets, and the thread counts of --scaling. Pure functions of host facts.
 */
import { type HostInfo, llcReach } from "./host.js";

/** LLC assumed when the host does not say. */
const UNKNOWN_LLC = 32 << 20;
/** Smallest array of the bandwidth probes. */
const MIN_PROBE_BYTES = 64 << 20;
/** The most one probe array may take: three of them share one WebAssembly memory (4 GiB). */
export const MAX_PROBE_BYTES = 1.25 * 2 ** 30;
/** Share of the host's available memory the measurements may take at most. */
const MEMORY_SHARE = 0.5;

/** Bytes per array for a DRAM measurement: 4× the LLC reached, at least 64 MiB, within one WebAssembly memory and half the available memory. */
export function dramWorkingSet(llcBytes: number, availableBytes: number | null = null): number {
  const room = availableBytes ? Math.max(MIN_PROBE_BYTES, Math.floor((availableBytes * MEMORY_SHARE) / 3 / 2 ** 20) * 2 ** 20) : Infinity;
  return Math.min(MAX_PROBE_BYTES, room, Math.max(4 * (llcBytes || UNKNOWN_LLC), MIN_PROBE_BYTES));
}

/** The smallest sweep working set: 16 KiB, or 8 KiB per thread (below that a dispatch costs more than the copy). */
export function sweepStart(threads: number): number {
  let s = 16 << 10;
  while (s < threads * (8 << 10)) s *= 2;
  return s;
}

/**
 * Working sets for the sweep (both arrays of the copy): powers of two from sweepStart to the copy
 * probe's own working set (2 arrays of `arrayBytes`), so the sweep's DRAM end is the probe's measurement.
 */
export function sweepSizes(threads: number, arrayBytes: number): number[] {
  const top = 2 * arrayBytes;
  const sizes: number[] = [];
  for (let s = sweepStart(threads); s < top; s *= 2) sizes.push(s);
  sizes.push(top);
  return sizes;
}

/**
 * Thread counts for --scaling: 1, 2, 4, … below `threads`, `threads` itself, and the host's domains
 * that fall below it (cores per last-level cache, per NUMA node, per socket, physical cores), as
 * likwid-bench's thread domains.
 */
export function scalingCounts(threads: number, host: Pick<HostInfo, "physical_cores" | "sockets" | "numa_nodes" | "caches" | "smt">): number[] {
  const set = new Set<number>([threads]);
  for (let t = 1; t < threads; t *= 2) set.add(t);
  const llc = host.caches[host.caches.length - 1];
  const domains = [llc?.shared_by_cores, host.numa_nodes.length > 1 ? host.numa_nodes[0].cpus / host.smt : undefined, host.sockets > 1 ? host.physical_cores / host.sockets : undefined, host.physical_cores];
  for (const d of domains) if (d && Number.isInteger(d) && d > 1 && d < threads) set.add(d);
  return [...set].sort((a, b) => a - b);
}

/** The default tensor: N × 512 × 64 × 64 with N a multiple of 16 (at least 16). */
export const DEFAULT_C = 512, DEFAULT_HW = [64, 64] as const;

export interface ShapeChoice {
  shape: number[];
  /** Whether every working set (forward: X; backward: dY and X) reaches 4× the LLC reached. */
  reaches: boolean;
  /** What bounds N when it does not reach: one WebAssembly memory or the host's memory. */
  limit: string | null;
}

/**
 * The smallest default tensor whose smallest working set (forward's X, written over in place) is
 * ≥ 4× the last-level cache the threads reach; when that does not fit beside backward's dY in one
 * WebAssembly memory (`arenaRoom` for X and dY) or half the available memory, the largest that does.
 */
export function defaultShape(llcReachBytes: number, elementBytes: number, arenaRoom: number, availableBytes: number | null): ShapeChoice {
  const perN = DEFAULT_C * DEFAULT_HW[0] * DEFAULT_HW[1] * elementBytes;
  const need = Math.max(16, Math.ceil((4 * (llcReachBytes || UNKNOWN_LLC)) / perN / 16) * 16);
  const arenaMax = Math.floor(arenaRoom / 2 / perN);
  const memoryMax = availableBytes ? Math.floor((availableBytes * MEMORY_SHARE) / 2 / perN) : Infinity;
  const max = Math.min(arenaMax, memoryMax);
  if (need <= max) return { shape: [need, DEFAULT_C, ...DEFAULT_HW], reaches: true, limit: null };
  const n = Math.max(1, max >= 16 ? Math.floor(max / 16) * 16 : max);
  return { shape: [n, DEFAULT_C, ...DEFAULT_HW], reaches: false, limit: arenaMax <= memoryMax ? "one 4 GiB WebAssembly memory (X and dY together)" : "half the host's available memory" };
}

/** A --shape like `shape` (N scaled) whose smallest working set reaches 4× `llcReachBytes`, as text. */
export function suggestShape(shape: readonly number[], smallestWorkingSet: number, llcReachBytes: number): string {
  const factor = Math.ceil((4 * llcReachBytes) / Math.max(1, smallestWorkingSet));
  return [shape[0] * factor, ...shape.slice(1)].join(",");
}

export { llcReach };

/** 16 KiB, 1.5 MiB, 2 GiB: powers of 1024, one decimal when not whole. */
export function bytesLabel(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${Number.isInteger(b) ? b : b.toFixed(1)} ${units[i]}`;
}

