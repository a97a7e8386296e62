/**
 * The roofline report (the `roofline --json` document, see docs/cli.md) from the measurements' run
 * times: every timed figure with its spread, the cache roofs from the sweep, the thread scaling,
 * the warnings. Pure: tests feed recorded host facts and fixed timings.
 */
import type { BufferPlacement, CacheLevel, HostInfo, NumaNode, Theoretical } from "./host.js";
import { cacheReach } from "./host.js";
import type { Layout } from "../core/dims.js";
import type { ComputeSamples, KernelSamples, ProbeSamples, SweepSamples } from "./measure.js";
import { gbpsOf, noisyWarning, type Rate, rateSpread, type Spread, timeSpread } from "./spread.js";
import type { BaselineComparison } from "./baseline.js";
import { bytesLabel } from "./sizes.js";

export interface KernelReport {
  name: "forward" | "backward";
  layout: Layout;
  dtype: string;
  shape: number[];
  groups: number;
  threads: number;
  seconds: number;
  median_seconds: number;
  /** 90th-percentile run time. */
  p90_seconds: number;
  runs: number;
  bytes: number;
  /** Distinct bytes a run touches (forward X, written over; backward dY and X): what must exceed the cache. */
  working_set_bytes: number;
  gbps: number;
  /** GB/s over the runs: best (= gbps), median, p90, cv. */
  spread: Spread;
  flops: number;
  gflops: number;
  intensity: number;
  fraction_of_attainable: number;
  fraction_of_theoretical: number | null;
  /** The byte model: compulsory bytes (the headline above), what the passes move, and with write-allocate. */
  byte_model: {
    compulsory: { bytes: number; gbps: number };
    implementation: { bytes: number; gbps: number; passes: number; note: string };
    with_write_allocate: { bytes: number; gbps: number; note: string };
  };
}

export interface SweepPoint {
  /** Working set: bytes of both arrays of the copy, all threads together. */
  bytes: number;
  /** Best of the runs. */
  gbps: number;
  reps: number;
  spread: Spread;
}

export interface CacheRoof {
  level: "L1" | "L2" | "L3" | "L4" | "DRAM";
  /** The plateau: the best sweep point within the level's range. */
  gbps: number;
  spread: Spread;
  /** Capacity of the level the threads reach (spread over cores), null for DRAM. */
  capacity_bytes: number | null;
  /** The smallest and largest sweep working sets taken as this level's (to: null for DRAM, open-ended). */
  from_bytes: number;
  to_bytes: number | null;
  /** The working set of the point giving the plateau, and how many points the range held. */
  at_bytes: number;
  points: number;
}

export interface ScalingPoint {
  threads: number;
  copy: Rate;
  add: Rate;
  forward: Rate;
  backward: Rate;
}

export interface Scaling {
  counts: number[];
  points: ScalingPoint[];
  /** Fewest threads reaching SATURATION of each figure's best over the counts. */
  saturation: { copy: number; add: number; forward: number; backward: number };
}

export interface RooflineReport {
  host: {
    cpu: string;
    cores: number;
    threads: number;
    llc_bytes: number;
    node: string;
    logical_cpus: number;
    physical_cores: number;
    smt: number;
    sockets: number;
    numa_nodes: NumaNode[];
    huge_pages: HostInfo["huge_pages"];
    memory_bytes: number;
    available_bytes: number | null;
    hypervisor: boolean;
    /** Last-level cache the run's threads reach (all instances when they span them). */
    llc_reach_bytes: number;
    /** Where Linux placed the buffers (numa_maps), or null when it does not say. */
    buffers: BufferPlacement | null;
  };
  theoretical: Theoretical;
  attainable: {
    copy_gbps: number;
    add_gbps: number;
    triad_gbps: number;
    read_gbps: number;
    array_bytes: number;
    spread: { copy: Spread; add: Spread; triad: Spread; read: Spread };
  };
  compute_gflops: number;
  compute_spread: Spread;
  /** Arithmetic intensity where the copy roof meets the compute ceiling (FLOP/byte). */
  ridge_intensity: number;
  kernels: KernelReport[];
  /** Copy bandwidth against working-set size (when measured, for --svg). */
  sweep: SweepPoint[] | null;
  /** The sweep's plateaus per cache level and DRAM (the roofs drawn on the roofline). */
  cache_roofs: CacheRoof[] | null;
  /** The sweep's DRAM plateau against the copy roof, and whether they differ beyond their spread. */
  dram_check: { sweep_gbps: number; copy_gbps: number; ratio: number; beyond_spread: boolean; note: string } | null;
  scaling: Scaling | null;
  baseline: BaselineComparison | null;
  warnings: string[];
}

/** Seconds below which a timing is too close to the timer and dispatch resolution to trust. */
export const SHORT_RUN_SECONDS = 0.002;
/** A figure saturates at the fewest threads reaching this share of its best. */
export const SATURATION = 0.9;

export interface ReportInputs {
  host: HostInfo;
  threads: number;
  theoretical: Theoretical;
  /** Probe run times at each thread count measured (the one at `threads` has triad and read). */
  probes: ProbeSamples[];
  compute: ComputeSamples;
  /** Kernel run times at each thread count measured. */
  kernels: KernelSamples[];
  layout: Layout;
  dtype: string;
  shape: number[];
  groups: number;
  /** Bytes of one work item's tensors (an NCHW group, an NHWC sample), for the pass model. */
  itemBytes: { forward: number; backward: number };
  /** Bytes of the tensors the kernel reads in full (forward X; backward dY and X). */
  inputBytes: { forward: number; backward: number };
  sweep?: SweepSamples[] | null;
  /** Whether --scaling was asked (the counts are those of `probes` and `kernels`). */
  scaling?: boolean;
  placement?: BufferPlacement | null;
  /** How the tensor was chosen: by --shape, or the default (and whether it reaches 4× the LLC). */
  shapeChoice?: { defaulted: boolean; limit: string | null; suggestion?: string | null };
}

const MiB = bytesLabel;

export function buildReport(args: ReportInputs): RooflineReport {
  const { host, theoretical } = args;
  const warnings: string[] = [];
  const full = args.probes.find((p) => p.threads === args.threads) ?? args.probes[args.probes.length - 1];
  const bytes = full.array_bytes;
  const rate = (work: number, t: number[] | undefined) => rateSpread(work / 1e9, t && t.length ? t : [NaN]);
  const spread = { copy: rate(2 * bytes, full.copy), add: rate(3 * bytes, full.add), triad: rate(3 * bytes, full.triad), read: rate(bytes, full.read) };
  const attainable = {
    copy_gbps: spread.copy.best,
    add_gbps: spread.add.best,
    triad_gbps: spread.triad.best,
    read_gbps: spread.read.best,
    array_bytes: bytes,
    spread,
  };
  const compute_spread = rateSpread(args.compute.flops / 1e9, args.compute.seconds);
  const reach = host.caches.length ? cacheReach(host.caches[host.caches.length - 1], args.threads) : 0;
  // in place, a run touches just the tensors it reads in full
  const workingSet = args.inputBytes;
  const kernels = args.kernels
    .filter((t) => t.threads === args.threads)
    .map((t): KernelReport => {
      const s = timeSpread(t.seconds);
      const r = gbpsOf(t.bytes, t.seconds);
      const roof = t.name === "forward" ? attainable.copy_gbps : attainable.add_gbps;
      return {
        name: t.name,
        layout: args.layout,
        dtype: args.dtype,
        shape: args.shape,
        groups: args.groups,
        threads: args.threads,
        seconds: s.best,
        median_seconds: s.median,
        p90_seconds: s.p90,
        runs: s.runs,
        bytes: t.bytes,
        working_set_bytes: workingSet[t.name],
        gbps: r.gbps,
        spread: r.spread,
        flops: t.flops,
        gflops: t.flops / s.best / 1e9,
        intensity: t.flops / t.bytes,
        fraction_of_attainable: r.gbps / roof,
        fraction_of_theoretical: theoretical.gbps ? r.gbps / theoretical.gbps : null,
        byte_model: byteModel(t, s.best, args.itemBytes[t.name], args.inputBytes[t.name], host.llc_bytes, args.threads),
      };
    });

  // ---- working sets against the cache
  if (reach > 0) {
    const small = kernels.filter((k) => k.working_set_bytes < 4 * reach);
    for (const k of small) {
      const what = k.working_set_bytes < reach ? "fits in cache" : `only ${(k.working_set_bytes / reach).toFixed(1)}× it: partly served from cache`;
      warnings.push(`${k.name}: working set ${MiB(k.working_set_bytes)} is under 4× the last-level cache the ${args.threads > 1 ? `${args.threads} threads reach` : "thread reaches"} (${MiB(reach)}): ${what}: not a DRAM measurement`);
    }
    if (small.length) {
      const c = args.shapeChoice;
      if (c?.defaulted && c.limit) warnings.push(`the default tensor (${args.shape.join(",")}) is as large as ${c.limit} allows: no --shape reaches 4× the last-level cache for both kernels here`);
      else if (c?.suggestion) warnings.push(`for a DRAM measurement use --shape ${c.suggestion} or larger (or leave --shape out: the default is sized to the cache)`);
    }
    const probeSets: Array<[string, number]> = [["copy", 2 * bytes], ["add and triad", 3 * bytes], ["read", bytes]];
    const under = probeSets.filter(([, ws]) => ws < 4 * reach);
    if (under.length) warnings.push(`bandwidth probes: the ${under.map(([n]) => n).join(", ")} working set${under.length > 1 ? "s are" : " is"} under 4× the last-level cache (arrays of ${MiB(bytes)}, at most ${MiB(1.25 * 2 ** 30)} in one WebAssembly memory): not a DRAM measurement`);
  } else {
    warnings.push("last-level cache size unknown: cannot tell whether the measurements reach DRAM");
  }
  if (host.hypervisor) {
    warnings.push("running in a virtual machine (CPU 'hypervisor' flag): DMI memory data may be absent or invented, and bandwidth is shared with other guests");
  }
  for (const k of kernels) {
    if (k.seconds < SHORT_RUN_SECONDS) warnings.push(`${k.name}: a run takes ${(k.seconds * 1e3).toFixed(3)} ms, too short to time reliably; use a larger --shape`);
  }
  if (host.numa_nodes.length > 1) {
    const b = args.placement;
    const where = b && b.nodes.length
      ? `the buffers are ${b.nodes.length === 1 ? `all on node ${b.nodes[0].node}` : `on nodes ${b.nodes.map((n) => `${n.node} (${MiB(n.bytes)})`).join(", ")}`} (policy ${b.policy})`
      : "Linux does not say where the buffers are";
    warnings.push(`${host.numa_nodes.length} NUMA nodes: ${where}; threads on other nodes reach them across the interconnect, so the figures depend on placement: run under 'numactl --interleave=all' for the whole host, or 'numactl --cpunodebind=0 --membind=0' with --threads ${host.numa_nodes[0].cpus} for one node`);
  }

  // ---- sweep, cache roofs, DRAM check
  const sweep = args.sweep ? args.sweep.map((p): SweepPoint => ({ bytes: p.bytes, reps: p.reps, ...gbpsOf(p.bytes * p.reps, p.seconds) })) : null;
  const cache_roofs = sweep ? cacheRoofs(sweep, host.caches, args.threads) : null;
  const dram = cache_roofs?.find((r) => r.level === "DRAM");
  let dram_check: RooflineReport["dram_check"] = null;
  if (dram) {
    const beyond = disjoint(dram.spread, spread.copy);
    const ratio = dram.gbps / attainable.copy_gbps;
    const diff = `${ratio >= 1 ? "+" : "−"}${Math.abs((ratio - 1) * 100).toFixed(0)}%`;
    dram_check = {
      sweep_gbps: dram.gbps,
      copy_gbps: attainable.copy_gbps,
      ratio,
      beyond_spread: beyond,
      note: beyond
        ? `the sweep's DRAM plateau (${dram.gbps.toFixed(1)} GB/s) and the copy roof (${attainable.copy_gbps.toFixed(1)} GB/s) are the same copy at DRAM sizes, timed at different moments, and differ by ${diff}, more than their runs' spread: the host's bandwidth changed between them (other load?)`
        : `the sweep's DRAM plateau (${dram.gbps.toFixed(1)} GB/s) and the copy roof (${attainable.copy_gbps.toFixed(1)} GB/s) are the same copy at DRAM sizes, timed at different moments: ${diff}, within their runs' spread`,
    };
  }

  // ---- scaling
  let scaling: Scaling | null = null;
  if (args.scaling) {
    const counts = [...new Set(args.probes.map((p) => p.threads))].filter((t) => args.kernels.some((k) => k.threads === t)).sort((a, b) => a - b);
    const points = counts.map((t): ScalingPoint => {
      const p = args.probes.find((q) => q.threads === t)!;
      const k = (name: "forward" | "backward") => args.kernels.find((q) => q.threads === t && q.name === name)!;
      return {
        threads: t,
        copy: gbpsOf(2 * p.array_bytes, p.copy),
        add: gbpsOf(3 * p.array_bytes, p.add),
        forward: gbpsOf(k("forward").bytes, k("forward").seconds),
        backward: gbpsOf(k("backward").bytes, k("backward").seconds),
      };
    });
    const sat = (f: "copy" | "add" | "forward" | "backward") => {
      const best = Math.max(...points.map((p) => p[f].gbps));
      return points.find((p) => p[f].gbps >= SATURATION * best)!.threads;
    };
    scaling = { counts, points, saturation: { copy: sat("copy"), add: sat("add"), forward: sat("forward"), backward: sat("backward") } };
  }

  const noisy = noisyWarning([
    { name: "copy", spread: spread.copy },
    { name: "add", spread: spread.add },
    { name: "triad", spread: spread.triad },
    { name: "read", spread: spread.read },
    { name: "compute", spread: compute_spread },
    ...kernels.map((k) => ({ name: k.name, spread: k.spread })),
  ]);
  if (noisy) warnings.push(noisy);

  return {
    ridge_intensity: compute_spread.best / attainable.copy_gbps,
    sweep,
    cache_roofs,
    dram_check,
    scaling,
    baseline: null,
    host: {
      cpu: host.cpu,
      cores: host.cores,
      threads: args.threads,
      llc_bytes: host.llc_bytes,
      node: host.node,
      logical_cpus: host.logical_cpus,
      physical_cores: host.physical_cores,
      smt: host.smt,
      sockets: host.sockets,
      numa_nodes: host.numa_nodes,
      huge_pages: host.huge_pages,
      memory_bytes: host.memory_bytes,
      available_bytes: host.available_bytes,
      hypervisor: host.hypervisor,
      llc_reach_bytes: reach,
      buffers: args.placement ?? null,
    },
    theoretical,
    attainable,
    compute_gflops: compute_spread.best,
    compute_spread,
    kernels,
    warnings,
  };
}

/** Whether two spreads' ranges (p90 to best) do not overlap. */
export function disjoint(a: Spread, b: Spread): boolean {
  const lo = (s: Spread) => Math.min(s.p90, s.best), hi = (s: Spread) => Math.max(s.p90, s.best);
  return hi(a) < lo(b) || hi(b) < lo(a);
}

const LEVEL = ["L1", "L2", "L3", "L4"] as const;

/**
 * The plateau of each cache level and of DRAM in the sweep: a level's range is the working sets
 * that fit the capacity the threads reach and are over twice the level below's; DRAM's starts at
 * 4× the last level's. The plateau is the best point in the range (as the Empirical Roofline Toolkit).
 */
export function cacheRoofs(sweep: SweepPoint[], caches: CacheLevel[], threads: number): CacheRoof[] {
  const roofs: CacheRoof[] = [];
  const take = (level: CacheRoof["level"], capacity: number | null, from: number, to: number | null) => {
    const pts = sweep.filter((p) => p.bytes >= from && (to === null || p.bytes <= to));
    if (pts.length === 0) return;
    const best = pts.reduce((a, b) => (b.gbps > a.gbps ? b : a));
    const last = to === null ? null : pts[pts.length - 1].bytes;
    roofs.push({ level, gbps: best.gbps, spread: best.spread, capacity_bytes: capacity, from_bytes: pts[0].bytes, to_bytes: last, at_bytes: best.bytes, points: pts.length });
  };
  let below = 0;
  for (const c of caches) {
    const cap = cacheReach(c, threads);
    take(LEVEL[c.level - 1] ?? "L4", cap, below ? 2 * below + 1 : 0, cap);
    below = cap;
  }
  if (below) take("DRAM", null, 4 * below, null);
  else if (sweep.length) take("DRAM", null, sweep[sweep.length - 1].bytes, null);
  return roofs;
}

/**
 * What the kernels move, beyond the compulsory bytes: each work item's inputs come from DRAM once
 * when the item fits in the thread's share of half the last-level cache, twice otherwise (statistics
 * pass, then normalisation or input-backward pass). Outputs are written over inputs in place, so
 * there is no write-allocate read of a separate output buffer.
 */
function byteModel(t: KernelSamples, seconds: number, itemBytes: number, inputBytes: number, llc: number, threads: number): KernelReport["byte_model"] {
  const fits = llc > 0 && itemBytes <= llc / 2 / Math.max(1, threads);
  const passes = fits ? 1 : 2;
  const implementation = t.bytes + (passes - 1) * inputBytes;
  const gb = (b: number) => b / seconds / 1e9;
  return {
    compulsory: { bytes: t.bytes, gbps: gb(t.bytes) },
    implementation: {
      bytes: implementation,
      gbps: gb(implementation),
      passes,
      note: fits
        ? "each work item fits in the cache: its inputs come from memory once"
        : "work items are larger than the cache share: inputs are read from memory twice",
    },
    with_write_allocate: {
      bytes: implementation,
      gbps: gb(implementation),
      note: "outputs are written in place over inputs already in cache: no write-allocate reads",
    },
  };
}
