/** The roofline report (the `roofline --json` document, see docs/cli.md) from measurements. */
import type { HostInfo, Theoretical } from "./host.js";
import type { Layout } from "../core/dims.js";
import type { Attainable, KernelTiming, SweepPoint } from "./measure.js";

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
  /** The byte model: compulsory bytes (the headline above), what the passes move, and with write-allocate. */
  byte_model: {
    compulsory: { bytes: number; gbps: number };
    implementation: { bytes: number; gbps: number; passes: number; note: string };
    with_write_allocate: { bytes: number; gbps: number; note: string };
  };
}

export interface RooflineReport {
  host: { cpu: string; cores: number; threads: number; llc_bytes: number; node: string };
  theoretical: Theoretical;
  attainable: { copy_gbps: number; add_gbps: number; triad_gbps: number; read_gbps: number };
  compute_gflops: number;
  /** Arithmetic intensity where the copy roof meets the compute ceiling (FLOP/byte). */
  ridge_intensity: number;
  kernels: KernelReport[];
  /** Copy bandwidth against working-set size (when measured, for --svg). */
  sweep: SweepPoint[] | null;
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
  /** Bytes of one work item's tensors (an NCHW group, an NHWC sample), for the pass model. */
  itemBytes: { forward: number; backward: number };
  /** Bytes of the tensors the kernel reads in full (forward X; backward dY and X). */
  inputBytes: { forward: number; backward: number };
  sweep?: SweepPoint[] | null;
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
      byte_model: byteModel(t, args.itemBytes[t.name], args.inputBytes[t.name], host.llc_bytes, args.threads),
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
    ridge_intensity: args.computeGflops / attainable.copy_gbps,
    sweep: args.sweep ?? null,
    host: { cpu: host.cpu, cores: host.cores, threads: args.threads, llc_bytes: host.llc_bytes, node: host.node },
    theoretical,
    attainable: { copy_gbps: attainable.copy_gbps, add_gbps: attainable.add_gbps, triad_gbps: attainable.triad_gbps, read_gbps: attainable.read_gbps },
    compute_gflops: args.computeGflops,
    kernels,
    warnings,
  };
}

/**
 * What the kernels move, beyond the compulsory bytes: each work item's inputs come from DRAM once
 * when the item fits in the thread's share of half the last-level cache, twice otherwise (statistics
 * pass, then normalisation or input-backward pass). Outputs are written over inputs in place, so
 * there is no write-allocate read of a separate output buffer.
 */
function byteModel(t: KernelTiming, itemBytes: number, inputBytes: number, llc: number, threads: number): KernelReport["byte_model"] {
  const fits = llc > 0 && itemBytes <= llc / 2 / Math.max(1, threads);
  const passes = fits ? 1 : 2;
  const implementation = t.bytes + (passes - 1) * inputBytes;
  const gb = (b: number) => b / t.seconds / 1e9;
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
