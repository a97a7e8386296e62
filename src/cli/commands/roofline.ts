import { Command } from "commander";
import { InputError } from "../../errors.js";
import { groupNormDims, memoryOrder } from "../../core/dims.js";
import type { RooflineReport } from "../../roofline/report.js";
import { writeWhole } from "../../io/outputs.js";
import { bytesLabel } from "../../roofline/svg.js";
import { progressFor } from "../report.js";
import type { Context } from "../context.js";
import type { Console } from "../console.js";
import { parseGroups, parseLayoutOption, parseNonNegative, parseShape, parseThreads } from "../options.js";


function fmt(v: number | null, digits = 1): string {
  return v === null ? "—" : v.toFixed(digits);
}

function printTable(c: Console, r: RooflineReport): void {
  const o = c.out;
  c.result(o.bold("host"));
  c.result(`  ${r.host.cpu}, ${r.host.cores} cores, ${r.host.threads} threads, last-level cache ${(r.host.llc_bytes / 2 ** 20).toFixed(0)} MiB, Node ${r.host.node}`);
  c.result(o.bold("memory bandwidth (GB/s = 1e9 B/s)"));
  c.result(`  theoretical  ${r.theoretical.gbps === null ? "unknown" : r.theoretical.gbps.toFixed(1)}  (${r.theoretical.source}: ${r.theoretical.detail})`);
  const a = r.attainable;
  c.result(`  attainable   copy ${fmt(a.copy_gbps)}   add ${fmt(a.add_gbps)}   triad ${fmt(a.triad_gbps)}   read ${fmt(a.read_gbps)}   (WASM SIMD STREAM on the pool)`);
  c.result(`  compute      ${fmt(r.compute_gflops)} GFLOP/s multiply-add peak (WASM SIMD, ${r.kernels[0]?.dtype ?? ""})`);
  c.result(o.bold("kernels"));
  c.result("  kernel    layout dtype  best ms  median ms     MB    GB/s  GFLOP/s  FLOP/B  of attainable  of theoretical");
  for (const k of r.kernels) {
    const frac = `${(k.fraction_of_attainable * 100).toFixed(0)}% of ${k.name === "forward" ? "copy" : "add"}`;
    c.result(
      `  ${k.name.padEnd(9)} ${k.layout.padEnd(6)} ${k.dtype.padEnd(5)} ${(k.seconds * 1e3).toFixed(2).padStart(8)} ${(k.median_seconds * 1e3).toFixed(2).padStart(10)} ${(k.bytes / 1e6).toFixed(0).padStart(6)} ${k.gbps.toFixed(1).padStart(7)} ${k.gflops.toFixed(1).padStart(8)} ${k.intensity.toFixed(2).padStart(7)}  ${frac.padStart(13)}  ${k.fraction_of_theoretical === null ? "—".padStart(14) : `${(k.fraction_of_theoretical * 100).toFixed(0)}%`.padStart(14)}`,
    );
  }
  c.result(`  shape (${r.kernels[0]?.shape.join(", ")}) as N, C, spatial, stored ${r.kernels[0]?.layout}, G = ${r.kernels[0]?.groups}; bytes = compulsory traffic (forward X in, Y out; backward dY, X in, dX out; plus the small vectors)`);
  c.result("  kernels run as the file pipeline runs them: Y over X and dX over dY in place; backward with the forward's mean/rstd given");
  c.result(o.bold("byte model"));
  for (const k of r.kernels) {
    const m = k.byte_model;
    c.result(`  ${k.name.padEnd(9)} compulsory ${(m.compulsory.bytes / 1e6).toFixed(0)} MB (${m.compulsory.gbps.toFixed(1)} GB/s); implementation ${(m.implementation.bytes / 1e6).toFixed(0)} MB (${m.implementation.gbps.toFixed(1)} GB/s, ${m.implementation.passes} pass${m.implementation.passes > 1 ? "es" : ""}); with write-allocate ${(m.with_write_allocate.bytes / 1e6).toFixed(0)} MB (${m.with_write_allocate.gbps.toFixed(1)} GB/s)`);
  }
  c.result(`  ${r.kernels[0]?.byte_model.implementation.note}; ${r.kernels[0]?.byte_model.with_write_allocate.note}`);
  if (r.sweep) {
    c.result(o.bold("copy bandwidth against working set"));
    c.result("  " + r.sweep.map((p) => `${bytesLabel(p.bytes)} ${p.gbps.toFixed(0)}`).join(" · ") + "  (GB/s)");
  }
  if (r.warnings.length) {
    c.result(o.bold("warnings"));
    for (const w of r.warnings) c.result(`  ${w}`);
  }
}

export function rooflineCommand(ctx: Context): Command {
  return new Command("roofline")
    .description("measure the kernels' memory bandwidth against what the host attains and its peak")
    .option("--shape <N,C,H,W>", "tensor shape for the kernel timings, N,C,spatial in this order for either layout", "16,512,64,64")
    .option("--groups <G>", "number of groups", "32")
    .option("--layout <layout>", "nchw or nhwc", "nchw")
    .option("--dtype <dtype>", "f32 or f64", "f32")
    .option("--threads <K>", "worker threads (default: available cores)")
    .option("--peak-gbps <X>", "theoretical peak bandwidth in GB/s (otherwise DMI or HMAT if the host exposes them)")
    .option("--runs <R>", "timed runs per measurement (best and median reported)", "10")
    .option("--svg <file>", "also draw the roofline and a bandwidth-against-working-set sweep as SVG")
    .option("--sweep", "measure the bandwidth-against-working-set sweep (implied by --svg)")
    .option("--json", "print the SPEC.md JSON report on stdout")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const shape = parseShape(o.shape as string);
      const groups = parseGroups(o.groups as string);
      const layout = parseLayoutOption(o.layout as string);
      const dtype = String(o.dtype).toLowerCase();
      if (dtype !== "f32" && dtype !== "f64") throw new InputError(`--dtype must be f32 or f64, got '${o.dtype}'`);
      const threads = parseThreads(o.threads as string | undefined);
      const peak = o.peakGbps !== undefined ? parseNonNegative(o.peakGbps as string, "--peak-gbps", 0) : undefined;
      if (peak === 0) throw new InputError("--peak-gbps must be greater than 0");
      const runs = Number(o.runs);
      if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new InputError(`--runs must be an integer from 1 to 1000, got '${o.runs}'`);
      ctx.console.json = !!o.json;
      // --shape is the logical N,C,H,W whatever the layout; --layout only sets the memory order, so
      // both layouts time the same tensor (as PyTorch's channels_last does)
      const d = groupNormDims(memoryOrder(shape, layout), groups, layout, "--shape");
      const { hostInfo, theoreticalPeak } = await import("../../io/host.js");
      const { measureBandwidth, measureCompute, measureKernels } = await import("../../roofline/measure.js");
      const { buildReport } = await import("../../roofline/report.js");
      const host = hostInfo();
      const engine = await ctx.engine(threads, host.llc_bytes || undefined);
      const arrayBytes = Math.max(4 * (host.llc_bytes || 32 << 20), 64 << 20);
      const attainable = await measureBandwidth(engine, arrayBytes, runs);
      const computeGflops = await measureCompute(engine, dtype);
      const timings = await measureKernels(engine, d, dtype, runs);
      let sweep = null;
      if (o.svg || o.sweep) {
        const { measureSweep, sweepSizes } = await import("../../roofline/measure.js");
        const progress = progressFor(ctx.console, "bandwidth sweep", "sizes", 0);
        try {
          sweep = await measureSweep(engine, sweepSizes(host.llc_bytes), progress.update);
        } finally {
          progress.stop();
        }
      }
      const eb = dtype === "f32" ? 4 : 8;
      const item = (layout === "nchw" ? d.D * d.HxW : d.C * d.HxW) * eb;
      const numelBytes = d.N * d.C * d.HxW * eb;
      const report = buildReport({
        host,
        threads: engine.runner.threads,
        theoretical: theoreticalPeak(peak),
        attainable,
        computeGflops,
        timings,
        layout,
        dtype: dtype === "f32" ? "float32" : "float64",
        shape,
        groups,
        itemBytes: { forward: item, backward: 2 * item },
        inputBytes: { forward: numelBytes, backward: 2 * numelBytes },
        sweep,
      });
      if (o.svg) {
        const { rooflineSvg } = await import("../../roofline/svg.js");
        await writeWhole(o.svg as string, rooflineSvg(report, host.caches));
      }
      for (const w of report.warnings) if (!o.json) ctx.console.warn(w);
      if (o.json) ctx.console.document({ ...report, caches: host.caches, svg: o.svg ?? null });
      else {
        printTable(ctx.console, report);
        const { asciiRoofline } = await import("../../roofline/ascii.js");
        ctx.console.result("");
        for (const line of asciiRoofline(report)) ctx.console.result(line);
        if (o.svg) ctx.console.result(`\nwrote ${o.svg}`);
      }
    });
}
