/** `groupnorm roofline …`: parse, call roofline, print the tables, the warnings and a terminal plot. */
import type { RooflineResult } from "../../api/roofline.js";
import { DEFAULT_ROOFLINE_GROUPS, DEFAULT_ROOFLINE_SHAPE_TEXT } from "../../roofline/defaults.js";
import type { CacheRoof } from "../../roofline/report.js";
import type { Spread } from "../../roofline/spread.js";
import { InputError } from "../../errors.js";
import { defineCommand } from "../command.js";
import type { Console } from "../console.js";
import { progressFor } from "../report.js";

function fmt(v: number | null, digits = 1): string {
  return v === null || !Number.isFinite(v) ? "—" : v.toFixed(digits);
}
const pct = (v: number) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`;
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;
const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

/** best, median, p90, CV columns of a rate. */
const spreadCols = (s: Spread, digits = 1) => `${fmt(s.best, digits).padStart(8)} ${fmt(s.median, digits).padStart(8)} ${fmt(s.p90, digits).padStart(8)} ${pct(s.cv).padStart(6)}`;

function printHost(c: Console, r: RooflineResult, bytesLabel: (b: number) => string): void {
  const h = r.host;
  c.result(c.out.bold("host"));
  c.result(`  ${h.cpu}, ${h.cores} cores available, ${h.threads} threads, Node ${h.node}${h.hypervisor ? ", in a virtual machine" : ""}`);
  const numa = h.numa_nodes.length ? plural(h.numa_nodes.length, "NUMA node") : "NUMA nodes not reported";
  c.result(`  ${plural(h.sockets, "socket")}, ${h.physical_cores} cores × ${plural(h.smt, "hardware thread")} = ${h.logical_cpus} CPUs, ${numa}, ${gib(h.memory_bytes)} memory${h.available_bytes === null ? "" : ` (${gib(h.available_bytes)} available)`}, transparent huge pages: ${h.huge_pages ?? "not reported"}`);
  if (r.caches.length) {
    const caches = r.caches.map((k) => `L${k.level} ${bytesLabel(k.bytes)} ${k.shared_by_cores > 1 ? `shared by ${k.shared_by_cores} cores` : "per core"} (×${k.instances})`).join(", ");
    c.result(`  caches: ${caches}; the ${plural(h.threads, "thread")} reach ${r.caches.map((k) => `L${k.level} ${bytesLabel(k.reach_bytes)}`).join(", ")}`);
  } else c.result("  caches: not reported by sysfs");
  const b = h.buffers;
  if (b) c.result(`  buffers: ${b.nodes.map((n) => `node ${n.node} ${bytesLabel(n.bytes)}`).join(", ")} (policy ${b.policy})${b.huge_page_bytes === null ? "" : `, ${bytesLabel(b.huge_page_bytes)} of the process in huge pages`}`);
}

function printTable(c: Console, r: RooflineResult, bytesLabel: (bytes: number) => string): void {
  const o = c.out;
  printHost(c, r, bytesLabel);
  const a = r.attainable;
  const runs = a.spread.copy.runs;
  c.result(o.bold(`memory bandwidth (GB/s = 1e9 B/s; best, median and 90th percentile of ${plural(runs, "run")}, coefficient of variation)`));
  c.result(`  probe            best   median      p90     CV   (WASM SIMD STREAM on the pool, arrays of ${bytesLabel(a.array_bytes)})`);
  for (const p of ["copy", "add", "triad", "read"] as const) c.result(`  ${p.padEnd(10)} ${spreadCols(a.spread[p])}`);
  c.result(`  theoretical  ${r.theoretical.gbps === null ? "unknown" : r.theoretical.gbps.toFixed(1)}  (${r.theoretical.source}: ${r.theoretical.detail})`);
  c.result(`  compute    ${spreadCols(r.compute_spread)}   GFLOP/s multiply-add peak (WASM SIMD, ${r.kernels[0]?.dtype ?? ""})`);
  c.result(o.bold("kernels"));
  c.result("  kernel    layout dtype  best ms  median ms  p90 ms     CV     MB  working set    GB/s  GFLOP/s  FLOP/B  of attainable  of theoretical");
  for (const k of r.kernels) {
    const frac = `${(k.fraction_of_attainable * 100).toFixed(0)}% of ${k.name === "forward" ? "copy" : "add"}`;
    c.result(
      `  ${k.name.padEnd(9)} ${k.layout.padEnd(6)} ${k.dtype.padEnd(5)} ${(k.seconds * 1e3).toFixed(2).padStart(8)} ${(k.median_seconds * 1e3).toFixed(2).padStart(10)} ${(k.p90_seconds * 1e3).toFixed(2).padStart(7)} ${pct(k.spread.cv).padStart(6)} ${(k.bytes / 1e6).toFixed(0).padStart(6)} ${bytesLabel(k.working_set_bytes).padStart(12)} ${k.gbps.toFixed(1).padStart(7)} ${k.gflops.toFixed(1).padStart(8)} ${k.intensity.toFixed(2).padStart(7)}  ${frac.padStart(13)}  ${k.fraction_of_theoretical === null ? "—".padStart(14) : `${(k.fraction_of_theoretical * 100).toFixed(0)}%`.padStart(14)}`,
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
    c.result(o.bold(`copy bandwidth against working set (all threads; GB/s, best of ${plural(r.sweep[0]?.spread.runs ?? 0, "run")})`));
    c.result("  " + r.sweep.map((p) => `${bytesLabel(p.bytes)} ${p.gbps.toFixed(p.gbps < 10 ? 1 : 0)}`).join(" · "));
  }
  if (r.cache_roofs) {
    c.result(o.bold("cache roofs (the sweep's plateaus, drawn on the roofline)"));
    const range = (x: CacheRoof) => (x.to_bytes === null ? `≥ ${bytesLabel(x.from_bytes)}` : `${x.from_bytes ? `${bytesLabel(x.from_bytes)}–` : "≤ "}${bytesLabel(x.to_bytes)}`);
    c.result("  " + r.cache_roofs.map((x) => `${x.level} ${fmt(x.gbps)} GB/s (${range(x)})`).join(" · "));
    if (r.dram_check) c.result(`  ${r.dram_check.note}`);
  }
  if (r.scaling) printScaling(c, r);
  if (r.baseline) printBaseline(c, r);
}

function printScaling(c: Console, r: RooflineResult): void {
  const s = r.scaling!;
  const figs = ["copy", "add", "forward", "backward"] as const;
  c.result(c.out.bold(`thread scaling (GB/s, best of ${plural(s.points[0]?.copy.spread.runs ?? 0, "run")}; × speed-up over 1 thread, CV of the runs)`));
  c.result(`  threads ${figs.map((f) => f.padStart(20)).join("")}`);
  const one = s.points[0];
  for (const p of s.points) {
    const cells = figs.map((f) => {
      const up = one && one.threads === 1 && p.threads > 1 ? ` ${(p[f].gbps / one[f].gbps).toFixed(1)}×` : "";
      return `${p[f].gbps.toFixed(1)}${up} ±${pct(p[f].spread.cv)}`.padStart(20);
    });
    c.result(`  ${String(p.threads).padStart(7)} ${cells.join("")}`);
  }
  c.result(`  saturates (${pct(0.9)} of its best) at: ${figs.map((f) => `${f} ${plural(s.saturation[f], "thread")}`).join(", ")}`);
}

function printBaseline(c: Console, r: RooflineResult): void {
  const b = r.baseline!;
  c.result(c.out.bold(`against ${b.path} (${b.cpu}, ${b.threads ?? "?"} threads): medians where both runs have them, else best runs`));
  c.result(`  ${"figure".padEnd(26)} ${"now".padStart(9)} ${"before".padStart(9)}  ratio  beyond both runs' spread`);
  for (const f of b.figures) {
    // medians when both runs have one, else both best runs: what the ratio compares
    const both = f.current.median !== null && f.baseline.median !== null;
    const v = (x: { best: number; median: number | null }) => fmt(both ? x.median : x.best).padStart(9);
    const beyond = f.exceeds_spread === null ? "spread unknown" : f.exceeds_spread ? c.out.bold(f.ratio > 1 ? "yes: faster" : "yes: slower") : "no";
    c.result(`  ${`${f.figure}${f.comparable ? "" : " *"}`.padEnd(26)} ${v(f.current)} ${v(f.baseline)}  ${f.ratio.toFixed(2).padStart(5)}  ${beyond}`);
  }
  if (b.figures.some((f) => !f.comparable)) c.result("  * measured on other terms (threads or tensor): not like for like");
}

export const rooflineCommand = defineCommand({
  name: "roofline",
  description: "measure the kernels' memory bandwidth against what the host attains and its peak",
  flags: ["shape", "groups", "layout", "dtype", "threads", "peakGbps", "runs", "svg", "sweep", "scaling", "baseline"],
  defaults: { groups: DEFAULT_ROOFLINE_GROUPS },
  shownDefaults: { shape: DEFAULT_ROOFLINE_SHAPE_TEXT, dtype: "f32" },
  help: {
    shape: "tensor shape for the kernel timings, N,C,spatial in this order for either layout",
    groups: "number of groups; must divide C",
    dtype: "f32 or f64",
  },
  examples: [
    "groupnorm roofline",
    "groupnorm roofline --scaling --svg roofline.svg",
    "groupnorm roofline --json > before.json; groupnorm roofline --baseline before.json",
  ],
  async run(ctx, _args, f) {
    const dtype = f.dtype ?? "float32";
    if (dtype === "float16" || dtype === "bfloat16") throw new InputError(`--dtype must be f32 or f64, got '${dtype === "float16" ? "f16" : "bf16"}'`);
    const progress = progressFor(ctx.console, "roofline", "runs", 0, true);
    // the measuring code loads only when the command runs (not for --help)
    const [{ roofline }, { asciiRoofline }, { bytesLabel }] = await Promise.all([import("../../api/roofline.js"), import("../../roofline/ascii.js"), import("../../roofline/sizes.js")]);
    const r = await roofline({
      shape: f.shape,
      groups: f.groups,
      layout: f.layout,
      dtype,
      threads: f.threads,
      peakGbps: f.peakGbps,
      runs: f.runs,
      sweep: f.sweep,
      scaling: f.scaling,
      baseline: f.baseline,
      svg: f.svg,
      onProgress: progress.update,
    }).finally(progress.stop);
    for (const w of r.warnings) ctx.console.warn(w);
    if (f.json) return ctx.console.document(r);
    printTable(ctx.console, r, bytesLabel);
    ctx.console.result("");
    for (const line of asciiRoofline(r)) ctx.console.result(line);
    if (r.svg) ctx.console.result(`\nwrote ${r.svg}`);
  },
});
