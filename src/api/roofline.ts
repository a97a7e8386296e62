/**
 * roofline as a function: the host's attainable and theoretical memory bandwidth, its compute
 * ceiling, and the GroupNorm kernels measured against them (the `roofline` command).
 */
import { groupNormDims, type Layout, memoryOrder } from "../core/dims.js";
import { checkLayout } from "../core/params.js";
import { sizeText } from "../core/units.js";
import { jobArenaBytes } from "../kernels/plan.js";
import { ARENA_LIMIT } from "../pipeline/budget.js";
import { InputError } from "../errors.js";
import { dirname } from "node:path";
import { OutputSet } from "../io/outputs.js";
import { Engine } from "../kernels/engine.js";
import { type CacheLevel, hostInfo, theoreticalPeak } from "../roofline/host.js";
import { dramWorkingSet, measureBandwidth, measureCompute, measureKernels, measureSweep, sweepSizes } from "../roofline/measure.js";
import { buildReport, type RooflineReport } from "../roofline/report.js";
import { checkThreads } from "./engine.js";

export type { RooflineReport } from "../roofline/report.js";

export interface RooflineOptions {
  /** Tensor for the kernel timings, N, C, spatial for either layout (default 16,512,64,64). */
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
  /** Also draw the report as SVG into this file. */
  svg?: string;
  /** Progress of the sweep: sizes done of total. */
  onProgress?: (done: number, total: number) => void;
}

export interface RooflineResult extends RooflineReport {
  command: "roofline";
  caches: CacheLevel[];
  svg: string | null;
}

import { DEFAULT_ROOFLINE_GROUPS, DEFAULT_ROOFLINE_SHAPE } from "../roofline/defaults.js";

export { DEFAULT_ROOFLINE_GROUPS, DEFAULT_ROOFLINE_SHAPE };

export async function roofline(o: RooflineOptions = {}): Promise<RooflineResult> {
  const shape = o.shape ?? DEFAULT_ROOFLINE_SHAPE;
  const groups = o.groups ?? DEFAULT_ROOFLINE_GROUPS;
  const layout = checkLayout(o.layout);
  const dtype = o.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new InputError(`dtype must be float32 or float64, got '${dtype}'`);
  const threads = checkThreads(o.threads);
  if (o.peakGbps !== undefined && !(Number.isFinite(o.peakGbps) && o.peakGbps > 0)) throw new InputError(`--peak-gbps must be a finite number > 0, got ${o.peakGbps}`);
  const runs = o.runs ?? 10;
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new InputError(`--runs must be an integer from 1 to 1000, got '${runs}'`);
  // --shape is the logical N,C,H,W whatever the layout; the layout only sets the memory order, so
  // both layouts time the same tensor (as PyTorch's channels_last does)
  const d = groupNormDims(memoryOrder(shape, layout), groups, layout, "--shape");
  const precision = dtype === "float32" ? "f32" : "f64";
  // the timings hold X and dY whole in the arena (the probes release theirs first): refuse what cannot fit
  const tensors = 2 * d.N * d.C * d.HxW * (precision === "f32" ? 4 : 8);
  const job = jobArenaBytes({ ...d, precision }, { beta: true, shifts: false, gradients: true }, threads);
  if (tensors + job > ARENA_LIMIT) {
    throw new InputError(`--shape ${shape.join(",")} needs ${sizeText(tensors + job)} of WebAssembly memory for the kernel timings (X, dY and the per-channel state in memory), more than the 4 GiB one WebAssembly memory holds: use a smaller --shape`);
  }
  const host = hostInfo();
  // the plot's path is checked (and its folder made) before the minutes of measuring
  const outputs = new OutputSet();
  let plot: { set(text: string): void } | null = null;
  if (o.svg) {
    await outputs.ensureDir(dirname(o.svg));
    plot = await outputs.createText(o.svg, { explicit: true });
  }
  const engine = new Engine({ threads, cacheBytes: host.llc_bytes || undefined });
  try {
    const attainable = await measureBandwidth(engine, dramWorkingSet(host.llc_bytes), runs);
    const computeGflops = await measureCompute(engine, precision);
    const timings = await measureKernels(engine, d, precision, runs);
    const sweep = o.svg || o.sweep ? await measureSweep(engine, sweepSizes(host.llc_bytes), o.onProgress) : null;
    const eb = precision === "f32" ? 4 : 8;
    const item = (layout === "nchw" ? d.D * d.HxW : d.C * d.HxW) * eb;
    const numelBytes = d.N * d.C * d.HxW * eb;
    const report = buildReport({
      host,
      threads: engine.threads,
      theoretical: theoreticalPeak(o.peakGbps),
      attainable,
      computeGflops,
      timings,
      layout,
      dtype,
      shape,
      groups,
      itemBytes: { forward: item, backward: 2 * item },
      inputBytes: { forward: numelBytes, backward: 2 * numelBytes },
      sweep,
    });
    if (plot) {
      const { rooflineSvg } = await import("../roofline/svg.js");
      plot.set(rooflineSvg(report, host.caches));
    }
    await outputs.commit();
    return { command: "roofline", ...report, caches: host.caches, svg: o.svg ?? null };
  } catch (e) {
    await outputs.abort();
    throw e;
  } finally {
    await engine.close();
  }
}
