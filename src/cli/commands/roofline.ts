/** `groupnorm roofline …`: parse, call roofline, print the table, the warnings and a terminal plot. */
import type { RooflineResult } from "../../api/roofline.js";
import { DEFAULT_ROOFLINE_GROUPS, DEFAULT_ROOFLINE_SHAPE } from "../../roofline/defaults.js";
import { InputError } from "../../errors.js";
import { defineCommand } from "../command.js";
import type { Console } from "../console.js";
import { progressFor } from "../report.js";

function fmt(v: number | null, digits = 1): string {
  return v === null ? "—" : v.toFixed(digits);
}

function printTable(c: Console, r: RooflineResult, bytesLabel: (bytes: number) => string): void {
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
}

export const rooflineCommand = defineCommand({
  name: "roofline",
  description: "measure the kernels' memory bandwidth against what the host attains and its peak",
  flags: ["shape", "groups", "layout", "dtype", "threads", "peakGbps", "runs", "svg", "sweep"],
  defaults: { shape: DEFAULT_ROOFLINE_SHAPE, groups: DEFAULT_ROOFLINE_GROUPS },
  shownDefaults: { shape: "16,512,64,64", dtype: "f32" },
  help: {
    shape: "tensor shape for the kernel timings, N,C,spatial in this order for either layout",
    groups: "number of groups; must divide C",
    dtype: "f32 or f64",
  },
  examples: ["groupnorm roofline", "groupnorm roofline --layout nhwc --threads 2 --peak-gbps 76.8 --json", "groupnorm roofline --svg roofline.svg"],
  async run(ctx, _args, f) {
    const progress = progressFor(ctx.console, "bandwidth sweep", "sizes", 0);
    const dtype = f.dtype ?? "float32";
    if (dtype === "float16" || dtype === "bfloat16") throw new InputError(`--dtype must be f32 or f64, got '${dtype === "float16" ? "f16" : "bf16"}'`);
    const [{ roofline }, { asciiRoofline }, { bytesLabel }] = await Promise.all([import("../../api/roofline.js"), import("../../roofline/ascii.js"), import("../../roofline/svg.js")]);
    const r = await roofline({ shape: f.shape, groups: f.groups, layout: f.layout, dtype, threads: f.threads, peakGbps: f.peakGbps, runs: f.runs, sweep: f.sweep, svg: f.svg, onProgress: progress.update }).finally(progress.stop);
    for (const w of r.warnings) ctx.console.warn(w);
    if (f.json) return ctx.console.document(r);
    printTable(ctx.console, r, bytesLabel);
    ctx.console.result("");
    for (const line of asciiRoofline(r)) ctx.console.result(line);
    if (r.svg) ctx.console.result(`\nwrote ${r.svg}`);
  },
});
