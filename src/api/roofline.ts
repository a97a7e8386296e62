/**
 * roofline as a function: the host's attainable and theoretical memory bandwidth, its compute
 * ceiling, the cache-level roofs, the thread scaling and the GroupNorm kernels measured against
 * them (the `roofline` command).
 */
import { type Dims, groupNormDims, type Layout, memoryOrder } from "../core/dims.js";
import { checkLayout } from "../core/params.js";
import { sizeText } from "../core/units.js";
import { jobArenaBytes } from "../kernels/plan.js";
import { ARENA_LIMIT } from "../pipeline/budget.js";
import { InputError } from "../errors.js";
import { dirname } from "node:path";
import { OutputSet } from "../io/outputs.js";
import { readTextFile } from "../io/text.js";
import { Engine } from "../kernels/engine.js";
import { bufferPlacement, type CacheLevel, cacheReach, type HostSource, hostInfo, liveHostSource, llcReach, theoreticalPeak } from "../roofline/host.js";
import { measureBandwidth, measureCompute, measureKernels, measureSweep } from "../roofline/measure.js";
import { buildReport, type RooflineReport } from "../roofline/report.js";
import { parseBaseline, withBaseline } from "../roofline/baseline.js";
import { DEFAULT_ROOFLINE_GROUPS } from "../roofline/defaults.js";
import { defaultShape, dramWorkingSet, scalingCounts, suggestShape, sweepSizes } from "../roofline/sizes.js";
import { checkThreads } from "./engine.js";

export type { RooflineReport } from "../roofline/report.js";
export type { HostSource, RecordedHost } from "../roofline/host.js";

export interface RooflineOptions {
  /** Tensor for the kernel timings, N, C, spatial for either layout (default: N,512,64,64 with every working set ≥ 4× the last-level cache). */
  shape?: number[];
  groups?: number;
  layout?: Layout;
  dtype?: "float32" | "float64";
  threads?: number;
  /** Theoretical peak bandwidth (GB/s) to compare with (else DMI or ACPI HMAT when the host says). */
  peakGbps?: number;
  /** Timed runs per measurement (default 10). */
  runs?: number;
  /** Measure copy bandwidth against working-set size (implied by svg). */
  sweep?: boolean;
  /** Also measure at 1, 2, 4, … threads up to `threads`. */
  scaling?: boolean;
  /** An earlier `roofline --json` document to compare with (its path). */
  baseline?: string;
  /** Also draw the report as SVG into this file. */
  svg?: string;
  /** Progress over the whole run: timed runs done of total, and what is being timed. */
  onProgress?: (done: number, total: number, phase: string) => void;
  /** @internal Where host facts come from (default: this machine's /proc and sysfs; tests replay recorded ones). */
  hostSource?: HostSource;
}

export interface RooflineResult extends RooflineReport {
  command: "roofline";
  caches: Array<CacheLevel & { reach_bytes: number }>;
  svg: string | null;
}

export { DEFAULT_ROOFLINE_GROUPS };

export async function roofline(o: RooflineOptions = {}): Promise<RooflineResult> {
  const groups = o.groups ?? DEFAULT_ROOFLINE_GROUPS;
  const layout = checkLayout(o.layout);
  const dtype = o.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new InputError(`dtype must be float32 or float64, got '${dtype}'`);
  const threads = checkThreads(o.threads);
  if (o.peakGbps !== undefined && !(Number.isFinite(o.peakGbps) && o.peakGbps > 0)) throw new InputError(`--peak-gbps must be a finite number > 0, got ${o.peakGbps}`);
  const runs = o.runs ?? 10;
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new InputError(`--runs must be an integer from 1 to 1000, got '${runs}'`);
  const precision = dtype === "float32" ? "f32" : "f64";
  const eb = precision === "f32" ? 4 : 8;
  const src = o.hostSource ?? liveHostSource();
  const host = hostInfo(src);
  const reach = llcReach(host, threads);
  // --shape is the logical N,C,H,W whatever the layout; the layout only sets the memory order, so
  // both layouts time the same tensor (as PyTorch's channels_last does)
  const dimsOf = (shape: number[]) => groupNormDims(memoryOrder(shape, layout), groups, layout, "--shape");
  // the timings hold X and dY whole in the arena (the probes release theirs first)
  const need = (d: Dims) => 2 * d.N * d.C * d.HxW * eb + jobArenaBytes({ ...d, precision }, { beta: true, shifts: false, gradients: true }, threads);
  let shape = o.shape;
  let limit: string | null = null;
  if (!shape) {
    const choice = defaultShape(reach, eb, ARENA_LIMIT, host.available_bytes);
    shape = choice.shape;
    limit = choice.limit;
    while (shape[0] > 1 && need(dimsOf(shape)) > ARENA_LIMIT) {
      shape = [Math.max(1, shape[0] - 16), ...shape.slice(1)];
      limit = "one 4 GiB WebAssembly memory (X and dY together)";
    }
  }
  const d = dimsOf(shape);
  if (need(d) > ARENA_LIMIT) {
    throw new InputError(`--shape ${shape.join(",")} needs ${sizeText(need(d))} of WebAssembly memory for the kernel timings (X, dY and the per-channel state in memory), more than the 4 GiB one WebAssembly memory holds: use a smaller --shape`);
  }
  const tensorBytes = d.N * d.C * d.HxW * eb;
  const earlier = o.baseline ? parseBaseline(await readTextFile(o.baseline), o.baseline) : null;
  // the plot's path is checked (and its folder made) before the minutes of measuring
  const outputs = new OutputSet();
  let plot: { set(text: string): void } | null = null;
  if (o.svg) {
    await outputs.ensureDir(dirname(o.svg));
    plot = await outputs.createText(o.svg, { explicit: true });
  }
  const arrayBytes = dramWorkingSet(reach, host.available_bytes);
  const counts = o.scaling ? scalingCounts(threads, host) : [threads];
  const sweepRuns = Math.min(runs, 5);
  const sizes = o.svg || o.sweep ? sweepSizes(threads, arrayBytes) : [];
  // progress: one step per timed run, planned ahead
  const total = runs * (4 + 2 * (counts.length - 1)) + runs + 2 * runs * counts.length + sweepRuns * sizes.length;
  let done = 0;
  const tick = (phase: string) => o.onProgress?.(++done, total, phase);
  o.onProgress?.(0, total, "starting the threads");
  // explicit thread counts measured as asked: every probe and kernel on the pool, whatever its size
  const engine = new Engine({ threads, pool: "always", cacheBytes: host.llc_bytes || undefined });
  try {
    const probes = await measureBandwidth(engine, arrayBytes, runs, counts, tick);
    const compute = await measureCompute(engine, precision, runs, tick);
    const kernels = await measureKernels(engine, d, precision, runs, counts, tick);
    const placement = bufferPlacement(src);
    const sweep = sizes.length ? await measureSweep(engine, sizes, sweepRuns, tick) : null;
    const item = (layout === "nchw" ? d.D * d.HxW : d.C * d.HxW) * eb;
    let report = buildReport({
      host,
      threads: engine.threads,
      theoretical: theoreticalPeak(o.peakGbps, src),
      probes,
      compute,
      kernels,
      layout,
      dtype,
      shape,
      groups,
      itemBytes: { forward: item, backward: 2 * item },
      inputBytes: { forward: tensorBytes, backward: 2 * tensorBytes },
      sweep,
      scaling: o.scaling,
      placement,
      shapeChoice: { defaulted: !o.shape, limit, suggestion: o.shape && reach ? suggestShape(shape, tensorBytes, reach) : null },
    });
    if (earlier && o.baseline) report = withBaseline(report, earlier, o.baseline);
    if (plot) {
      const { rooflineSvg } = await import("../roofline/svg.js");
      plot.set(rooflineSvg(report, host.caches));
    }
    await outputs.commit();
    return { command: "roofline", ...report, caches: host.caches.map((c) => ({ ...c, reach_bytes: cacheReach(c, threads) })), svg: o.svg ?? null };
  } catch (e) {
    await outputs.abort();
    throw e;
  } finally {
    await engine.close();
  }
}
