/** The roofline report (SPEC.md "roofline --json fields") from measurements. */
import type { HostInfo, Theoretical } from "../io/host.js";
import type { Layout } from "../core/dims.js";
import type { Attainable, KernelTiming } from "./measure.js";

export interface KernelReport {
  name: "forward" | "backward";
  layout: Layout;
  dtype: string;
  shape: number[];
  groups: number;
  threads: number;
  seconds: number;
  median_seconds: number;
  bytes: number;
  gbps: number;
  flops: number;
  gflops: number;
  intensity: number;
  fraction_of_attainable: number;
  fraction_of_theoretical: number | null;
}

export interface RooflineReport {
  host: { cpu: string; cores: number; threads: number; llc_bytes: number; node: string };
  theoretical: Theoretical;
  attainable: { copy_gbps: number; add_gbps: number; triad_gbps: number; read_gbps: number };
  compute_gflops: number;
  kernels: KernelReport[];
  warnings: string[];
}

/** Seconds below which a timing is too close to the timer and dispatch resolution to trust. */
export const SHORT_RUN_SECONDS = 0.002;

export function buildReport(args: {
  host: HostInfo;
  threads: number;
  theoretical: Theoretical;
  attainable: Attainable;
  computeGflops: number;
  timings: KernelTiming[];
  layout: Layout;
  dtype: string;
  shape: number[];
  groups: number;
}): RooflineReport {
  const { host, attainable, theoretical } = args;
  const warnings: string[] = [];
  const kernels = args.timings.map((t): KernelReport => {
    const gbps = t.bytes / t.seconds / 1e9;
    const roof = t.name === "forward" ? attainable.copy_gbps : attainable.add_gbps;
    return {
      name: t.name,
      layout: args.layout,
      dtype: args.dtype,
      shape: args.shape,
      groups: args.groups,
      threads: args.threads,
      seconds: t.seconds,
      median_seconds: t.median_seconds,
      bytes: t.bytes,
      gbps,
      flops: t.flops,
      gflops: t.flops / t.seconds / 1e9,
      intensity: t.flops / t.bytes,
      fraction_of_attainable: gbps / roof,
      fraction_of_theoretical: theoretical.gbps ? gbps / theoretical.gbps : null,
    };
  });
  const llc = host.llc_bytes;
  if (llc > 0) {
    for (const k of kernels) {
      if (k.bytes < 4 * llc) {
        warnings.push(`${k.name}: working set ${(k.bytes / 2 ** 20).toFixed(1)} MiB is under 4× the last-level cache (${(llc / 2 ** 20).toFixed(0)} MiB): fits in cache: not a DRAM measurement`);
      }
    }
    if (attainable.array_bytes < 4 * llc) warnings.push("bandwidth probe arrays are under 4× the last-level cache: not a DRAM measurement");
  } else {
    warnings.push("last-level cache size unknown: cannot tell whether the measurements reach DRAM");
  }
  if (host.hypervisor) {
    warnings.push("running in a virtual machine (CPU 'hypervisor' flag): DMI memory data may be absent or invented, and bandwidth is shared with other guests");
  }
  for (const k of kernels) {
    if (k.seconds < SHORT_RUN_SECONDS) warnings.push(`${k.name}: a run takes ${(k.seconds * 1e3).toFixed(3)} ms, too short to time reliably; use a larger --shape`);
  }
  return {
    host: { cpu: host.cpu, cores: host.cores, threads: args.threads, llc_bytes: host.llc_bytes, node: host.node },
    theoretical,
    attainable: { copy_gbps: attainable.copy_gbps, add_gbps: attainable.add_gbps, triad_gbps: attainable.triad_gbps, read_gbps: attainable.read_gbps },
    compute_gflops: args.computeGflops,
    kernels,
    warnings,
  };
}
