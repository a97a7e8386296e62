/**
 * Roofline reports from recorded host facts and fixed timings (no timing in the tests): the run
 * times each measurement would have taken at given GB/s, with a fixed pattern of slower runs.
 */
import { readFileSync } from "node:fs";
import { groupNormDims } from "../../src/core/dims.js";
import { bufferPlacement, hostInfo, type HostInfo, llcReach, recordedHostSource, type RecordedHost } from "../../src/roofline/host.js";
import { FLOPS_PER_ELEMENT, kernelBytes, type KernelSamples, type ProbeSamples, type SweepSamples } from "../../src/roofline/measure.js";
import { buildReport, type ReportInputs, type RooflineReport } from "../../src/roofline/report.js";
import { defaultShape, dramWorkingSet, scalingCounts, sweepSizes } from "../../src/roofline/sizes.js";
import { ARENA_LIMIT } from "../../src/pipeline/budget.js";

export const recorded = (name: "dev-2cpu" | "epyc-2s-128c"): RecordedHost => JSON.parse(readFileSync(new URL(`../data/host/${name}.json`, import.meta.url), "utf8"));
export const hostOf = (name: "dev-2cpu" | "epyc-2s-128c"): HostInfo => hostInfo(recordedHostSource(recorded(name)));

/** Run times of `runs` runs moving `bytes` at `gbps`: the best at gbps, the others slower by `jitter` steps. */
export function times(bytes: number, gbps: number, runs: number, jitter: number): number[] {
  const best = bytes / (gbps * 1e9);
  return Array.from({ length: runs }, (_, i) => best * (1 + jitter * ((i * 7) % runs) / Math.max(1, runs - 1)));
}

export interface Speeds {
  /** GB/s of each probe and kernel at t threads. */
  at(figure: "copy" | "add" | "triad" | "read" | "forward" | "backward", t: number): number;
  /** Copy GB/s at a working set (all threads). */
  sweep(bytes: number): number;
  gflops: number;
}

/** A whole report as the api would build it for `host` at `threads`, with the given speeds. */
export function syntheticReport(host: HostInfo, threads: number, speeds: Speeds, o: { runs?: number; jitter?: number; scaling?: boolean; sweep?: boolean; shape?: number[]; theoretical?: ReportInputs["theoretical"]; recording?: RecordedHost } = {}): RooflineReport {
  const runs = o.runs ?? 10, jitter = o.jitter ?? 0.03;
  const reach = llcReach(host, threads);
  const choice = defaultShape(reach, 4, ARENA_LIMIT - (64 << 20), host.available_bytes);
  const shape = o.shape ?? choice.shape;
  const d = groupNormDims(shape, 32, "nchw");
  const arrayBytes = dramWorkingSet(reach, host.available_bytes);
  const counts = o.scaling ? scalingCounts(threads, host) : [threads];
  const probes: ProbeSamples[] = counts.map((t) => ({
    threads: t,
    array_bytes: arrayBytes,
    copy: times(2 * arrayBytes, speeds.at("copy", t), runs, jitter),
    add: times(3 * arrayBytes, speeds.at("add", t), runs, jitter),
    ...(t === threads ? { triad: times(3 * arrayBytes, speeds.at("triad", t), runs, jitter), read: times(arrayBytes, speeds.at("read", t), runs, jitter) } : {}),
  }));
  const b = kernelBytes(d, "f32"), numel = d.N * d.C * d.HxW;
  const kernels: KernelSamples[] = counts.flatMap((t) => (["forward", "backward"] as const).map((name) => ({ name, threads: t, seconds: times(b[name], speeds.at(name, t), runs, jitter), bytes: b[name], flops: FLOPS_PER_ELEMENT[name] * numel })));
  const sweep: SweepSamples[] | null = o.sweep === false ? null : sweepSizes(threads, arrayBytes).map((bytes) => ({ bytes, reps: 4, seconds: times(4 * bytes, speeds.sweep(bytes), 5, jitter) }));
  const flops = 1e11;
  return buildReport({
    host,
    threads,
    theoretical: o.theoretical ?? { gbps: null, source: "unavailable", detail: "dmidecode is not installed; no ACPI HMAT bandwidth in sysfs" },
    probes,
    compute: { seconds: Array.from({ length: runs }, (_, i) => (flops / (speeds.gflops * 1e9)) * (1 + 0.01 * i)), flops },
    kernels,
    layout: "nchw",
    dtype: "float32",
    shape,
    groups: 32,
    itemBytes: { forward: d.D * d.HxW * 4, backward: 2 * d.D * d.HxW * 4 },
    inputBytes: { forward: numel * 4, backward: 2 * numel * 4 },
    sweep,
    scaling: o.scaling,
    placement: o.recording ? bufferPlacement(recordedHostSource(o.recording)) : null,
    shapeChoice: { defaulted: !o.shape, limit: o.shape ? null : choice.limit, suggestion: null },
  });
}

/** This development machine, as measured on a quiet moment (2 threads, ~5 GB/s DRAM). */
export const devSpeeds: Speeds = {
  at: (f, t) => ({ copy: 3.4, add: 3.6, triad: 3.6, read: 4.1, forward: 2.2, backward: 2.9 })[f] * Math.min(t, 1.55),
  sweep: (bytes) => (bytes <= 64 << 10 ? 48 : bytes <= 1 << 20 ? 55 : bytes <= 8 << 20 ? 32 : 5.4),
  gflops: 15,
};

/** The large host: copy saturating near 520 GB/s from about 64 threads. */
export const epycSpeeds: Speeds = {
  at: (f, t) => ({ copy: 520, add: 560, triad: 560, read: 610, forward: 470, backward: 500 })[f] * (1 - Math.exp(-t / 28)),
  sweep: (bytes) => (bytes <= 4 << 20 ? 5200 : bytes <= 128 << 20 ? 3100 : bytes <= 512 << 20 ? 1400 : 515),
  gflops: 5200,
};
