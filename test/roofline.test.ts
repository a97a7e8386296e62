// roofline: host facts from recorded /proc and sysfs (this machine and a 2-socket, 128-core,
// 4-node host), sizes, spread, scaling and baseline logic on fixed timings, the SVG's structure on
// both hosts, and the command end to end on small shapes (no timed assertion anywhere).
// ROOFLINE_PLOTS=dir also writes the SVGs drawn here, to look at them.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ARENA_LIMIT } from "../src/pipeline/budget.js";
import { checkBaselineDocument, compareRuns, parseBaseline, withBaseline } from "../src/roofline/baseline.js";
import { bufferPlacement, cacheReach, countCpuList, llcReach, parseCacheSize, parseDmidecode, parseHmat, parseNumaMaps, recordedHostSource, theoreticalPeak } from "../src/roofline/host.js";
import { buildReport, cacheRoofs, type RooflineReport } from "../src/roofline/report.js";
import { defaultShape, dramWorkingSet, scalingCounts, suggestShape, sweepSizes, sweepStart } from "../src/roofline/sizes.js";
import { coefficientOfVariation, NOISY_CV, noisyWarning, percentile, rateSpread } from "../src/roofline/spread.js";
import { rooflineSvg, textBox, textWidth } from "../src/roofline/svg.js";
import { asciiRoofline } from "../src/roofline/ascii.js";
import { bin, groupnorm } from "./helpers/cli.js";
import { devSpeeds, epycSpeeds, hostOf, recorded, type Speeds, syntheticReport, times } from "./helpers/roofline.js";

const data = (f: string) => readFileSync(new URL(`./data/host/${f}`, import.meta.url), "utf8");
const MiB = 2 ** 20;

describe("theoretical peak sources", () => {
  it("DMI type 17: populated DIMMs × configured MT/s × 8 bytes", () => {
    const t = parseDmidecode(data("dmidecode-t17.txt"));
    expect(t).not.toBeNull();
    expect(t!.source).toBe("dmi");
    expect(t!.gbps).toBeCloseTo((2 * 4800 * 8) / 1000, 6); // 76.8 GB/s
    expect(t!.detail).toMatch(/2 populated/);
  });
  it("DMI from a VM without speeds gives nothing", () => {
    expect(parseDmidecode(data("dmidecode-vm.txt"))).toBeNull();
    expect(parseDmidecode("")).toBeNull();
  });
  it("HMAT read bandwidth in MB/s is summed over nodes", () => {
    const t = parseHmat([{ node: "node0", mbps: 204800 }, { node: "node1", mbps: 102400 }]);
    expect(t!.source).toBe("hmat");
    expect(t!.gbps).toBeCloseTo(307.2, 6);
    expect(parseHmat([{ node: "node0", mbps: 0 }])).toBeNull();
  });
  it("cache sizes and CPU lists from sysfs", () => {
    expect(parseCacheSize("32768K\n")).toBe(32 * MiB);
    expect(parseCacheSize("2M")).toBe(2 * MiB);
    expect(parseCacheSize("junk")).toBe(0);
    expect(countCpuList("0-3,8-11\n")).toBe(8);
    expect(countCpuList("0,128")).toBe(2);
    expect(countCpuList("")).toBe(0);
  });
});

describe("host facts, recorded", () => {
  it("this machine: 1 socket, 2 cores without SMT, 1 NUMA node, L3 8 MiB shared by both cores", () => {
    const h = hostOf("dev-2cpu");
    expect([h.sockets, h.physical_cores, h.smt, h.logical_cpus, h.numa_nodes.length]).toEqual([1, 2, 1, 2, 1]);
    expect(h.caches.map((c) => [c.level, c.bytes, c.shared_by_cores, c.instances])).toEqual([[1, 32 << 10, 1, 2], [2, 512 << 10, 1, 2], [3, 8 * MiB, 2, 1]]);
    expect(h.llc_bytes).toBe(8 * MiB);
    expect(h.huge_pages).toBe("madvise");
    expect(h.hypervisor).toBe(true);
    expect(h.memory_bytes).toBeGreaterThan(2 ** 30);
    expect(theoreticalPeak(undefined, recordedHostSource(recorded("dev-2cpu")))).toMatchObject({ gbps: null, source: "unavailable" });
  });
  it("the large host: 2 sockets, 128 cores × SMT 2, 4 NUMA nodes, 16 L3s of 32 MiB (512 MiB), DMI peak, buffers on node 0", () => {
    const src = recordedHostSource(recorded("epyc-2s-128c"));
    const h = hostOf("epyc-2s-128c");
    expect([h.sockets, h.physical_cores, h.smt, h.logical_cpus, h.cores]).toEqual([2, 128, 2, 256, 256]);
    expect(h.numa_nodes.map((n) => [n.node, n.cpus, n.memory_bytes])).toEqual([0, 1, 2, 3].map((n) => [n, 64, 192 * 2 ** 30]));
    const l3 = h.caches[2];
    expect([l3.bytes, l3.shared_by_cpus, l3.shared_by_cores, l3.instances, l3.total_bytes]).toEqual([32 * MiB, 16, 8, 16, 512 * MiB]);
    expect(h.caches[0]).toMatchObject({ bytes: 32 << 10, shared_by_cpus: 2, shared_by_cores: 1, instances: 128 });
    expect(h.huge_pages).toBe("always");
    expect(theoreticalPeak(undefined, src)).toMatchObject({ gbps: 921.6, source: "dmi" });
    expect(bufferPlacement(src)).toEqual({ nodes: [{ node: 0, bytes: 3 * 2 ** 30 }], policy: "default", huge_page_bytes: 2 * 2 ** 30 });
    // what the threads reach: one instance per thread until all are in use
    expect(llcReach(h, 2)).toBe(64 * MiB);
    expect(llcReach(h, 256)).toBe(512 * MiB);
    expect(cacheReach(h.caches[0], 256)).toBe(128 * 32 << 10);
  });
  it("numa_maps: the mapping with the most bytes, per node", () => {
    const p = parseNumaMaps("00400000 default file=/usr/bin/node mapped=1487 N0=1487 kernelpagesize_kB=4\n7f00 interleave:0-1 anon=8000 dirty=8000 N0=3000 N1=5000 kernelpagesize_kB=4\n");
    expect(p).toEqual({ nodes: [{ node: 1, bytes: 5000 * 4096 }, { node: 0, bytes: 3000 * 4096 }], policy: "interleave:0-1", huge_page_bytes: null });
    expect(parseNumaMaps(null)).toBeNull();
  });
});

describe("sizes", () => {
  it("the default tensor: X ≥ 4× the LLC reached, else as large as one WebAssembly memory allows", () => {
    expect(defaultShape(8 * MiB, 4, ARENA_LIMIT, 20 * 2 ** 30)).toEqual({ shape: [16, 512, 64, 64], reaches: true, limit: null });
    // 260 MiB of L3 (the Xeon that filed the issue): 4 × 260 MiB of float32 → N = 130, rounded up to 144
    const xeon = defaultShape(260 * MiB, 4, ARENA_LIMIT, 500 * 2 ** 30);
    expect(xeon.shape).toEqual([144, 512, 64, 64]);
    expect(xeon.reaches).toBe(true);
    // 512 MiB: X would need 2 GiB beside dY's 2 GiB: the largest that fits, and why
    const big = defaultShape(512 * MiB, 4, ARENA_LIMIT, 700 * 2 ** 30);
    expect(big.reaches).toBe(false);
    expect(big.shape[0] % 16).toBe(0);
    expect(2 * big.shape[0] * 8 * MiB).toBeLessThanOrEqual(ARENA_LIMIT);
    expect(big.limit).toMatch(/WebAssembly memory/);
    // a small machine's memory bounds it too
    expect(defaultShape(512 * MiB, 4, ARENA_LIMIT, 2 * 2 ** 30)).toMatchObject({ reaches: false, limit: "half the host's available memory" });
    expect(suggestShape([2, 8, 16, 16], 16 << 10, 8 * MiB)).toBe("4096,8,16,16");
  });
  it("probe arrays, sweep sizes and thread counts", () => {
    expect(dramWorkingSet(8 * MiB)).toBe(64 * MiB);
    expect(dramWorkingSet(260 * MiB)).toBe(1040 * MiB);
    expect(dramWorkingSet(512 * MiB)).toBe(1.25 * 2 ** 30);
    expect(dramWorkingSet(512 * MiB, 3 * 2 ** 30)).toBe(512 * MiB);
    expect(sweepStart(2)).toBe(16 << 10);
    expect(sweepStart(256)).toBe(2 * MiB);
    const s = sweepSizes(2, 64 * MiB);
    expect(s[0]).toBe(16 << 10);
    expect(s[s.length - 1]).toBe(128 * MiB); // the copy probe's own working set
    const epyc = hostOf("epyc-2s-128c");
    expect(scalingCounts(2, hostOf("dev-2cpu"))).toEqual([1, 2]);
    expect(scalingCounts(256, epyc)).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256]);
    // the domains below --threads: 8 cores per L3, 32 per node, 64 per socket
    expect(scalingCounts(96, epyc)).toEqual([1, 2, 4, 8, 16, 32, 64, 96]);
    expect(scalingCounts(6, hostOf("dev-2cpu"))).toEqual([1, 2, 4, 6]);
  });
});

describe("spread, on fixed timings", () => {
  it("best, median, p90 and CV of a rate from run times", () => {
    const t = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(t, 0.5)).toBe(5.5);
    expect(percentile(t, 0.9)).toBeCloseTo(9.1, 12);
    expect(coefficientOfVariation(t)).toBeCloseTo(3.0276503540974917 / 5.5, 12);
    const s = rateSpread(10, t);
    expect(s).toEqual({ runs: 10, best: 10, median: 10 / 5.5, p90: 10 / percentile(t, 0.9), cv: coefficientOfVariation(t) });
    expect(rateSpread(4, [2])).toEqual({ runs: 1, best: 2, median: 2, p90: 2, cv: 0 });
  });
  it("warns of a noisy host above 5% CV and says to compare medians", () => {
    const quiet = rateSpread(1, times(1, 1, 10, 0.05));
    expect(quiet.cv).toBeLessThan(NOISY_CV);
    expect(noisyWarning([{ name: "copy", spread: quiet }])).toBeNull();
    const noisy = rateSpread(1, times(1, 1, 10, 0.6));
    const w = noisyWarning([{ name: "copy", spread: quiet }, { name: "forward", spread: noisy }]);
    expect(w).toMatch(/^noisy host: 1 figure vary by more than 5% between runs \(coefficient of variation: forward \d+%/);
    expect(w).toMatch(/compare medians of several runs$/);
    // a single run has no spread to judge
    expect(noisyWarning([{ name: "x", spread: { runs: 1, best: 1, median: 1, p90: 1, cv: 0.5 } }])).toBeNull();
  });
});

const base = {
  host: hostOf("dev-2cpu"),
  threads: 2,
  theoretical: { gbps: 100, source: "flag" as const, detail: "--peak-gbps" },
  probes: [{ threads: 2, array_bytes: 64 * MiB, copy: times(128 * MiB, 40, 5, 0.01), add: times(192 * MiB, 50, 5, 0.01), triad: times(192 * MiB, 50, 5, 0.01), read: times(64 * MiB, 60, 5, 0.01) }],
  compute: { seconds: [1, 1, 1], flops: 40e9 },
  layout: "nchw" as const,
  dtype: "float32",
  shape: [16, 512, 64, 64],
  groups: 32,
  itemBytes: { forward: 256 * 1024, backward: 512 * 1024 },
  inputBytes: { forward: 128 * MiB, backward: 256 * MiB },
};
const kern = (name: "forward" | "backward", seconds: number[], bytes: number, flops = 1e8, threads = 2) => ({ name, threads, seconds, bytes, flops });

describe("report, on fixed timings", () => {
  it("GB/s, intensity and fractions against copy (forward) and add (backward), with spreads", () => {
    const r = buildReport({ ...base, kernels: [kern("forward", [0.01, 0.011, 0.012], 4e8, 2e8), kern("backward", [0.02, 0.021], 6e8, 3e8)] });
    expect(r.attainable.copy_gbps).toBeCloseTo((128 * MiB) / 1e9 / times(128 * MiB, 40, 5, 0.01)[0], 9);
    expect(r.attainable.spread.copy.best).toBe(r.attainable.copy_gbps);
    expect(r.attainable.array_bytes).toBe(64 * MiB);
    const [f, b] = r.kernels;
    expect(f.gbps).toBeCloseTo(40, 9);
    expect(f.spread).toMatchObject({ runs: 3, best: f.gbps });
    expect(f.spread.median).toBeCloseTo(4e8 / 0.011 / 1e9, 9);
    expect([f.seconds, f.median_seconds, f.runs]).toEqual([0.01, 0.011, 3]);
    expect(f.p90_seconds).toBeCloseTo(0.0118, 12);
    expect(f.fraction_of_attainable).toBeCloseTo(40 / r.attainable.copy_gbps, 9);
    expect(b.fraction_of_attainable).toBeCloseTo(30 / r.attainable.add_gbps, 9);
    expect(b.fraction_of_theoretical).toBeCloseTo(0.3, 9);
    expect(f.intensity).toBeCloseTo(0.5, 9);
    expect([f.working_set_bytes, b.working_set_bytes]).toEqual([128 * MiB, 256 * MiB]);
    expect(r.compute_gflops).toBe(40);
    expect(r.compute_spread.cv).toBe(0);
    expect(r.host).toMatchObject({ sockets: 1, physical_cores: 2, smt: 1, llc_reach_bytes: 8 * MiB, buffers: null, huge_pages: "madvise" });
    expect(r.warnings.some((w) => /virtual machine/.test(w))).toBe(true);
    expect(r.warnings.some((w) => /fits in cache|not a DRAM/.test(w))).toBe(false);
    expect(r.warnings.some((w) => /noisy host/.test(w))).toBe(true); // forward's runs vary by 9%
    expect([r.sweep, r.cache_roofs, r.dram_check, r.scaling, r.baseline]).toEqual([null, null, null, null, null]);
  });
  it("warns about cache-sized working sets (with the --shape to use) and too-short runs", () => {
    const r = buildReport({ ...base, inputBytes: { forward: MiB, backward: 2 * MiB }, kernels: [kern("forward", [1e-4, 1e-4], 2 * MiB)], shapeChoice: { defaulted: false, limit: null, suggestion: "512,512,64,64" } });
    expect(r.warnings).toContain("forward: working set 1 MiB is under 4× the last-level cache the 2 threads reach (8 MiB): fits in cache: not a DRAM measurement");
    expect(r.warnings).toContain("for a DRAM measurement use --shape 512,512,64,64 or larger (or leave --shape out: the default is sized to the cache)");
    expect(r.warnings.some((w) => /too short/.test(w))).toBe(true);
  });
  it("on a multi-node host, says where the buffers are and how to place them", () => {
    const epyc = hostOf("epyc-2s-128c");
    const r = syntheticReport(epyc, 256, epycSpeeds, { recording: recorded("epyc-2s-128c") });
    const w = r.warnings.find((x) => /NUMA nodes/.test(x))!;
    expect(w).toMatch(/^4 NUMA nodes: the buffers are all on node 0 \(policy default\);.*numactl --interleave=all.*--threads 64 for one node$/);
    expect(r.host.buffers?.nodes).toEqual([{ node: 0, bytes: 3 * 2 ** 30 }]);
    // the default tensor cannot reach 4 × 512 MiB for forward beside backward's dY: said so
    expect(r.warnings.some((x) => /^the default tensor \(\d+,512,64,64\) is as large as one 4 GiB WebAssembly memory/.test(x))).toBe(true);
  });
  it("cache roofs: the best sweep point within what each level holds for the threads, DRAM from 4× the LLC", () => {
    const caches = hostOf("dev-2cpu").caches; // reach at 2 threads: 64 KiB, 1 MiB, 8 MiB
    const pt = (kib: number, gbps: number) => ({ bytes: kib << 10, gbps, reps: 1, spread: { runs: 3, best: gbps, median: gbps * 0.95, p90: gbps * 0.9, cv: 0.04 } });
    const sweep = [pt(16, 30), pt(64, 45), pt(128, 50), pt(512, 52), pt(1024, 51), pt(2048, 40), pt(8192, 33), pt(16384, 12), pt(32768, 6), pt(131072, 5.5)];
    const roofs = cacheRoofs(sweep, caches, 2);
    expect(roofs.map((x) => [x.level, x.gbps, x.capacity_bytes, x.from_bytes, x.to_bytes, x.points])).toEqual([
      ["L1", 45, 64 << 10, 16 << 10, 64 << 10, 2],
      ["L2", 52, MiB, 512 << 10, MiB, 2],
      ["L3", 33, 8 * MiB, 8 * MiB, 8 * MiB, 1],
      ["DRAM", 6, null, 32 * MiB, null, 2],
    ]);
  });
  it("the sweep's DRAM plateau against the copy roof: within or beyond their spread", () => {
    const dev = hostOf("dev-2cpu");
    const same = syntheticReport(dev, 2, devSpeeds);
    expect(same.dram_check).toMatchObject({ beyond_spread: false });
    expect(same.dram_check!.note).toMatch(/within their runs' spread/);
    const slower: Speeds = { ...devSpeeds, sweep: (b) => (b >= 32 * MiB ? 2.6 : devSpeeds.sweep(b)) };
    const differ = syntheticReport(dev, 2, slower);
    expect(differ.dram_check!.beyond_spread).toBe(true);
    expect(differ.dram_check!.ratio).toBeCloseTo(2.6 / differ.attainable.copy_gbps, 9);
    expect(differ.dram_check!.note).toMatch(/more than their runs' spread/);
  });
  it("thread scaling: a point per count with spreads, and where each figure saturates", () => {
    const epyc = hostOf("epyc-2s-128c");
    const r = syntheticReport(epyc, 256, epycSpeeds, { scaling: true });
    const s = r.scaling!;
    expect(s.counts).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256]);
    expect(s.points.map((p) => p.threads)).toEqual(s.counts);
    for (const p of s.points) {
      expect(p.copy.gbps).toBeCloseTo(epycSpeeds.at("copy", p.threads), 6);
      expect(p.forward.spread.runs).toBe(10);
      expect(p.forward.spread.median).toBeLessThan(p.forward.gbps);
    }
    // 1 − e^(−t/28): 64 threads give 89.8% of 256's, 128 give 99%
    expect(s.saturation).toEqual({ copy: 128, add: 128, forward: 128, backward: 128 });
    const linear = syntheticReport(epyc, 256, { ...epycSpeeds, at: (f, t) => t }, { scaling: true });
    expect(linear.scaling!.saturation.copy).toBe(256);
    // the full count is the report's own figure
    expect(s.points[s.points.length - 1].copy.gbps).toBe(r.attainable.copy_gbps);
    expect(s.points[s.points.length - 1].forward.gbps).toBe(r.kernels[0].gbps);
  });
});

describe("--baseline, on fixed timings", () => {
  const dev = hostOf("dev-2cpu");
  const doc = (r: RooflineReport) => JSON.parse(JSON.stringify({ command: "roofline", ...r }));
  it("ratio per figure, and which differences exceed both runs' spread", () => {
    const before = doc(syntheticReport(dev, 2, devSpeeds, { scaling: true }));
    const faster: Speeds = { ...devSpeeds, at: (f, t) => devSpeeds.at(f, t) * (f === "copy" ? 1.2 : f === "forward" ? 1.01 : 1) };
    const now = syntheticReport(dev, 2, faster, { scaling: true });
    const c = compareRuns(doc(now), before, "before.json");
    const fig = (name: string) => c.figures.find((f) => f.figure === name)!;
    expect(fig("copy probe").ratio).toBeCloseTo(1.2, 9);
    expect(fig("copy probe").exceeds_spread).toBe(true); // 20% apart, each run within 3%
    expect(fig("forward").ratio).toBeCloseTo(1.01, 9);
    expect(fig("forward").exceeds_spread).toBe(false); // within the spread
    expect(fig("add probe").exceeds_spread).toBe(false);
    expect(fig("copy at 1 thread").ratio).toBeCloseTo(1.2, 9);
    expect(fig("L1 roof").ratio).toBeCloseTo(1, 9);
    expect(c.exceeding).toEqual(["copy probe", "copy at 1 thread", "copy at 2 threads"]);
    expect(c.notes).toEqual([]);
    expect(c.figures.every((f) => f.comparable)).toBe(true);
    const r = withBaseline(now, before, "before.json");
    expect(r.baseline?.figures.length).toBe(c.figures.length);
  });
  it("an earlier document without spreads still compares, with the spread unknown where it lacks it", () => {
    const old = doc(syntheticReport(dev, 2, devSpeeds));
    delete old.attainable.spread;
    delete old.compute_spread;
    for (const k of old.kernels) delete k.spread;
    old.host = { cpu: "AMD EPYC", cores: 2, threads: 4, llc_bytes: old.host.llc_bytes, node: "v20" };
    const c = compareRuns(doc(syntheticReport(dev, 2, devSpeeds)), old, "old.json");
    const fig = (name: string) => c.figures.find((f) => f.figure === name)!;
    expect(fig("copy probe").exceeds_spread).toBeNull();
    expect(fig("copy probe").baseline).toEqual({ best: old.attainable.copy_gbps, median: null, p90: null });
    expect(typeof fig("forward").exceeds_spread).toBe("boolean"); // best and median seconds
    expect(fig("forward").baseline.median).toBeCloseTo(old.kernels[0].bytes / old.kernels[0].median_seconds / 1e9, 9);
    expect(c.notes).toEqual(["ran 4 threads, this run 2: the probe and kernel figures are not like for like"]);
    expect(fig("forward").comparable).toBe(false);
  });
  it("refuses what is not a roofline document, naming the file", () => {
    expect(() => parseBaseline("{", "x.json")).toThrow(/^is not JSON/);
    try {
      parseBaseline("[]", "y.json");
    } catch (e) {
      expect((e as { file?: string }).file).toBe("y.json");
    }
    expect(() => parseBaseline('{"command":"forward"}', "f.json")).toThrow(/is not a 'groupnorm roofline --json' document \(it is from 'forward'\)/);
    expect(() => checkBaselineDocument({ command: "roofline" }, "e.json")).toThrow(/without its attainable and kernels/);
  });
});

// ------------------------------------------------------------------ the SVG's structure

interface Panel {
  kind: string;
  ox: number;
  oy: number;
  plot: number[];
  axes: { xlo: number; xhi: number; ylo: number; yhi: number } | null;
  lines: string[];
}

function panels(svg: string): Panel[] {
  const out: Panel[] = [];
  let cur: Panel | null = null;
  for (const l of svg.split("\n")) {
    const m = /^<g data-panel="(\w+)" transform="translate\(([\d.]+),([\d.]+)\)" data-origin="[^"]*" data-plot="([^"]+)"(?: data-x-lo="([^"]+)" data-x-hi="([^"]+)" data-y-lo="([^"]+)" data-y-hi="([^"]+)")?>$/.exec(l);
    if (m) {
      cur = { kind: m[1], ox: Number(m[2]), oy: Number(m[3]), plot: m[4].split(",").map(Number), axes: m[5] ? { xlo: Number(m[5]), xhi: Number(m[6]), ylo: Number(m[7]), yhi: Number(m[8]) } : null, lines: [] };
      out.push(cur);
    } else if (l === "</g>") cur = null;
    else cur?.lines.push(l);
  }
  return out;
}

const attr = (el: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(el)?.[1];
const keyed = (p: Panel, key: string) => p.lines.flatMap((l) => [...l.matchAll(/<(?:line|polyline|circle|path)\b[^>]*>/g)].map((m) => m[0])).filter((el) => attr(el, "data-key") === key);
const legendOf = (p: Panel) => p.lines.flatMap((l) => [...l.matchAll(/<g data-legend="([^"]+)">(.*?)<\/g>/g)].map((m) => ({ key: m[1], body: m[2] })));
const texts = (body: string) => [...body.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)].map((m) => ({ attrs: m[1], text: m[2].replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">") }));
const widthOf = (svg: string) => Number(/<svg [^>]*width="(\d+)"/.exec(svg)![1]);

function checkSvg(svg: string, r: RooflineReport, caches: ReturnType<typeof hostOf>["caches"]): void {
  expect(svg.startsWith("<svg")).toBe(true);
  expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
  expect((svg.match(/<text\b/g) ?? []).length).toBe((svg.match(/<\/text>/g) ?? []).length);
  const W = widthOf(svg);
  const ps = panels(svg);
  expect(ps.map((p) => p.kind)).toEqual(r.scaling ? ["roofline", "sweep", "scaling"] : ["roofline", "sweep"]);
  for (const p of ps) {
    // every legend entry names a drawn element, and its text is whole: inside the SVG
    for (const e of legendOf(p)) {
      expect(keyed(p, e.key).length, `${p.kind}: legend ${e.key} has no element`).toBeGreaterThan(0);
      for (const t of texts(e.body)) {
        const x = p.ox + Number(attr(t.attrs, "x"));
        expect(x + textWidth(t.text, Number(attr(t.attrs, "font-size") ?? 14)), `${t.text}`).toBeLessThanOrEqual(W);
      }
    }
    // one tick style: no trailing zeros, no mixed 1.00 / 10.0 / 100
    for (const l of p.lines.filter((x) => /data-tick/.test(x))) {
      const label = texts(l)[0].text;
      if (p.kind === "sweep" && /data-tick="x"/.test(l)) expect(label).toMatch(/^\d+(\.\d)? (KiB|MiB|GiB)$/);
      else expect(label, label).toMatch(/^(0|0\.0*[1-9]+|[1-9]\d*(\.\d*[1-9])?k?)$/);
    }
    // horizontal labels: none overlaps another, all inside the plot
    const boxes = p.lines.filter((l) => /^<text [^>]*data-label/.test(l) && !/transform/.test(l)).map((l) => {
      const t = texts(l)[0];
      return textBox(Number(attr(t.attrs, "x")), Number(attr(t.attrs, "y")), t.text, Number(attr(t.attrs, "font-size") ?? 14), (attr(t.attrs, "text-anchor") ?? "start") as "start");
    });
    const [px0, py0, pw, ph] = p.plot;
    for (const [i, a] of boxes.entries()) {
      expect(a.x0).toBeGreaterThanOrEqual(px0);
      expect(a.x1).toBeLessThanOrEqual(px0 + pw);
      expect(a.y0).toBeGreaterThanOrEqual(py0);
      expect(a.y1).toBeLessThanOrEqual(py0 + ph);
      for (const b of boxes.slice(i + 1)) expect(a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1).toBe(false);
    }
  }
  const [roof, sweep] = ps;
  // the roofline: ceiling, both DRAM roofs (forward's copy, backward's add), each cache roof, in the legend and labelled
  const legend = legendOf(roof).map((e) => e.key);
  const cacheLevels = (r.cache_roofs ?? []).filter((c) => c.level !== "DRAM").map((c) => `roof-${c.level}`);
  expect(legend).toEqual(expect.arrayContaining(["ceiling", "roof-copy", "roof-add", ...cacheLevels, "kernel-forward", "kernel-backward", "ridge"]));
  expect(legend.includes("roof-theoretical")).toBe(r.theoretical.gbps !== null);
  const legendText = legendOf(roof).map((e) => texts(e.body).map((t) => t.text).join(" ").replace(/\s+/g, " ")).join("\n");
  for (const c of r.cache_roofs ?? []) if (c.level !== "DRAM") expect(legendText).toMatch(new RegExp(`${c.level} roof \\d[\\d.]* GB/s`));
  expect(legendText).toMatch(/backward nchw: .* of the DRAM add roof/);
  // each roof meets the ceiling: no dashed roof stopping mid-air
  const ceiling = keyed(roof, "ceiling")[0];
  const [cx0, cy] = attr(ceiling, "points")!.split(" ")[0].split(",").map(Number);
  for (const key of ["roof-copy", "roof-add", "roof-theoretical", ...cacheLevels]) {
    const el = keyed(roof, key)[0];
    if (!el) continue;
    const pts = attr(el, "points")!.split(" ").map((q) => q.split(",").map(Number));
    const [ex, ey] = pts[pts.length - 1];
    if (ey <= roof.plot[1] + roof.plot[3] && ey >= roof.plot[1]) {
      expect(Math.abs(ey - cy), key).toBeLessThan(0.6);
      expect(ex, key).toBeGreaterThanOrEqual(cx0 - 0.6);
    }
  }
  // the sweep: cache markers at what all the threads reach, on the panel's own axis
  const ax = sweep.axes!;
  const [sx0, , sw] = sweep.plot;
  const xOf = (b: number) => sx0 + ((Math.log2(b) - Math.log2(ax.xlo)) / (Math.log2(ax.xhi) - Math.log2(ax.xlo))) * sw;
  for (const c of caches) {
    const reach = Math.min(c.instances, r.host.threads) * c.bytes;
    const el = keyed(sweep, `cache-L${c.level}`);
    if (reach < ax.xlo || reach > ax.xhi) continue;
    expect(Number(attr(el[0], "data-bytes"))).toBe(reach);
    expect(Number(attr(el[0], "x1"))).toBeCloseTo(xOf(reach), 0);
  }
  for (const k of r.kernels) expect(Number(attr(keyed(sweep, `ws-${k.name}`)[0], "x1"))).toBeCloseTo(xOf(k.working_set_bytes), 0);
  for (const c of r.cache_roofs ?? []) expect(keyed(sweep, `plateau-${c.level}`)).toHaveLength(1);
  expect(keyed(sweep, "sweep-point")).toHaveLength(r.sweep!.length);
  // notes say why there is no theoretical roof, never a legend line for a roof not drawn
  const prose = texts(svg).map((t) => t.text).join(" ").replace(/\s+/g, " ");
  if (!r.theoretical.gbps) expect(prose).toContain(`No theoretical roof: ${r.theoretical.detail}`);
  if (r.dram_check) expect(prose).toContain("DRAM: the sweep's DRAM plateau");
  if (r.scaling) {
    const sc = ps[2];
    expect(attr(keyed(sc, "scaling-copy")[0], "points")!.split(" ")).toHaveLength(r.scaling.counts.length);
    for (const f of ["copy", "add", "forward", "backward"] as const) expect(Number(attr(keyed(sc, `saturation-${f}`)[0], "data-threads"))).toBe(r.scaling.saturation[f]);
  }
}

describe("the SVG: structure on this host and on the large one", () => {
  const out = process.env.ROOFLINE_PLOTS;
  const dev = hostOf("dev-2cpu"), epyc = hostOf("epyc-2s-128c");
  const cases: Array<[string, RooflineReport, typeof dev.caches]> = [
    ["dev", syntheticReport(dev, 2, devSpeeds, { scaling: true }), dev.caches],
    ["dev-plain", syntheticReport(dev, 2, devSpeeds, { theoretical: { gbps: 76.8, source: "dmi", detail: "2 DIMMs" } }), dev.caches],
    ["epyc", syntheticReport(epyc, 256, epycSpeeds, { scaling: true, recording: recorded("epyc-2s-128c"), theoretical: theoreticalPeak(undefined, recordedHostSource(recorded("epyc-2s-128c"))) }), epyc.caches],
    ["epyc-2-threads", syntheticReport(epyc, 2, epycSpeeds, { scaling: true, recording: recorded("epyc-2s-128c") }), epyc.caches],
  ];
  it.each(cases)("%s: roofs present and labelled, legend whole and matching, labels apart, markers at the threads' sizes", (name, r, caches) => {
    const svg = rooflineSvg(r, caches);
    if (out) writeFileSync(join(out, `${name}.svg`), svg);
    checkSvg(svg, r, caches);
  });
  it("the large host's markers: L1 128 × 32 KiB, L2 128 × 1 MiB, L3 16 × 32 MiB at 256 threads; 2 L3s at 2 threads", () => {
    const svg = rooflineSvg(cases[2][1], epyc.caches);
    const sweep = panels(svg)[1];
    expect(keyed(sweep, "cache-L1").map((e) => Number(attr(e, "data-bytes")))).toEqual([4 * MiB]);
    expect(keyed(sweep, "cache-L2").map((e) => Number(attr(e, "data-bytes")))).toEqual([128 * MiB]);
    expect(keyed(sweep, "cache-L3").map((e) => Number(attr(e, "data-bytes")))).toEqual([512 * MiB]);
    expect(svg).toContain("L3 16×32 MiB");
    const two = panels(rooflineSvg(cases[3][1], epyc.caches))[1];
    expect(keyed(two, "cache-L3").map((e) => Number(attr(e, "data-bytes")))).toEqual([64 * MiB]);
    // the thread domains of panel 3: 8 cores per L3, 32 per node, 64 per socket, 128 cores (SMT beyond)
    const sc = panels(svg)[2];
    expect(sc.lines.flatMap((l) => [...l.matchAll(/data-key="domain-(\d+)"/g)].map((m) => Number(m[1])))).toEqual([8, 32, 64, 128]);
  });
  it("the text estimate is generous enough for bold titles", () => {
    expect(textWidth("ceiling 15.0 GFLOP/s", 14)).toBeGreaterThan(130);
    expect(textWidth("Roofline", 16, true)).toBeGreaterThan(textWidth("Roofline", 16));
  });
});

describe("the terminal roofline", () => {
  it("draws roofs, ceiling and kernels", () => {
    const lines = asciiRoofline(syntheticReport(hostOf("dev-2cpu"), 2, devSpeeds));
    expect(lines.length).toBeGreaterThan(10);
    const body = lines.join("\n");
    for (const ch of ["F", "B", "╱", "─"]) expect(body).toContain(ch);
  });
});

describe("the byte model", () => {
  it("reports the three byte counts", () => {
    const r = buildReport({ ...base, kernels: [kern("forward", [0.006], 268e6)] });
    const f = r.kernels[0].byte_model;
    expect(f.compulsory.bytes).toBe(268e6);
    expect(f.implementation.passes).toBe(1); // 256 KiB items fit in an 8 MiB / 2 / 2 share
    expect(f.with_write_allocate.bytes).toBe(f.implementation.bytes);
    const twoPass = buildReport({ ...base, itemBytes: { forward: 64 * MiB, backward: 128 * MiB }, inputBytes: { forward: 134e6, backward: 268e6 }, kernels: [kern("forward", [0.01], 268e6)] });
    const m = twoPass.kernels[0].byte_model;
    expect(m.implementation.passes).toBe(2);
    expect(m.implementation.bytes).toBe(268e6 + 134e6);
    expect(m.implementation.gbps).toBeCloseTo(40.2, 6);
  });
});

// ------------------------------------------------------------------ the command, end to end

describe("groupnorm roofline --json", () => {
  it("prints the docs/cli.md fields, old and new", () => {
    const r = groupnorm(["roofline", "--json", "--shape", "2,8,16,16", "--groups", "4", "--threads", "2", "--runs", "2", "--peak-gbps", "51.2"]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    for (const k of ["cpu", "cores", "threads", "llc_bytes", "node", "logical_cpus", "physical_cores", "smt", "sockets", "numa_nodes", "huge_pages", "memory_bytes", "available_bytes", "hypervisor", "llc_reach_bytes", "buffers"]) expect(j.host).toHaveProperty(k);
    expect(j.host.threads).toBe(2);
    expect(j.theoretical).toEqual({ gbps: 51.2, source: "flag", detail: "--peak-gbps" });
    for (const k of ["copy", "add", "triad", "read"]) {
      expect(j.attainable[`${k}_gbps`]).toBeGreaterThan(0);
      expect(Object.keys(j.attainable.spread[k]).sort()).toEqual(["best", "cv", "median", "p90", "runs"]);
      expect(j.attainable.spread[k].best).toBe(j.attainable[`${k}_gbps`]);
    }
    expect(j.compute_spread.runs).toBe(2);
    expect(j.kernels.map((k: { name: string }) => k.name)).toEqual(["forward", "backward"]);
    const f = j.kernels[0];
    for (const key of ["layout", "dtype", "shape", "groups", "threads", "seconds", "median_seconds", "p90_seconds", "runs", "bytes", "working_set_bytes", "gbps", "spread", "flops", "gflops", "intensity", "fraction_of_attainable", "fraction_of_theoretical", "byte_model"]) {
      expect(f).toHaveProperty(key);
    }
    expect(f.shape).toEqual([2, 8, 16, 16]);
    expect(f.bytes).toBe(2 * 2 * 8 * 256 * 4 + 2 * 8 * 4 + 2 * 2 * 4 * 4);
    expect(f.working_set_bytes).toBe(2 * 8 * 256 * 4);
    expect(f.seconds).toBeLessThanOrEqual(f.median_seconds);
    expect(f.spread.best).toBe(f.gbps);
    expect([j.sweep, j.cache_roofs, j.scaling, j.baseline]).toEqual([null, null, null, null]);
    expect(j.caches[0]).toHaveProperty("reach_bytes");
    expect(j.warnings.some((w: string) => /fits in cache/.test(w))).toBe(true);
    expect(j.warnings.some((w: string) => /use --shape \d+,8,16,16 or larger/.test(w))).toBe(true);
  });
  it("reads --shape as N,C,H,W for either layout, so both layouts time the same tensor", () => {
    // C = 8 (second): 8 groups divide it; read in NHWC file order, C would be 6 and refused
    const r = groupnorm(["roofline", "--json", "--shape", "2,8,4,6", "--groups", "8", "--layout", "nhwc", "--runs", "1"]);
    expect(r.status).toBe(0);
    const f = JSON.parse(r.stdout).kernels[0];
    expect(f.layout).toBe("nhwc");
    expect(f.shape).toEqual([2, 8, 4, 6]);
    // X in and Y out, gamma and beta (C = 8), mean and rstd (N·G = 16), float32
    expect(f.bytes).toBe(2 * 2 * 8 * 24 * 4 + 2 * 8 * 4 + 2 * 16 * 4);
    expect(groupnorm(["roofline", "--shape", "2,6,4,8", "--groups", "8", "--layout", "nhwc"]).status).toBe(2);
  });
  it("refuses a bad shape, dtype or baseline with exit 2", () => {
    expect(groupnorm(["roofline", "--shape", "16,x"]).status).toBe(2);
    expect(groupnorm(["roofline", "--dtype", "f16"]).status).toBe(2);
    expect(groupnorm(["roofline", "--shape", "2,6,4,4", "--groups", "4"]).status).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-base-"));
    try {
      writeFileSync(join(dir, "bad.json"), '{"command":"info"}');
      const r = groupnorm(["roofline", "--shape", "2,8,16,16", "--groups", "4", "--baseline", join(dir, "bad.json")]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/bad\.json.*is not a 'groupnorm roofline --json' document \(it is from 'info'\)/);
      expect(groupnorm(["roofline", "--shape", "2,8,16,16", "--groups", "4", "--baseline", join(dir, "none.json")]).stderr).toMatch(/none\.json.*no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("shows the default tensor in --help as sized to the cache", () => {
    expect(groupnorm(["roofline", "--help"]).stdout.replace(/\s+/g, " ")).toMatch(/--shape <N,C,...> .*\(default: N,512,64,64 with X ≥ 4× the last-level cache\)/);
  });
});

describe("groupnorm roofline --scaling --svg --baseline", () => {
  it("measures each thread count, draws three panels, and compares with an earlier run", () => {
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-svg-"));
    try {
      const svg = join(dir, "plot.svg");
      const args = ["roofline", "--shape", "2,8,16,16", "--groups", "4", "--threads", "2", "--runs", "2"];
      const r = groupnorm([...args, "--json", "--scaling", "--svg", svg]);
      expect(r.status).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.sweep.length).toBeGreaterThan(8);
      expect(j.sweep[0].bytes).toBe(16384);
      expect(j.sweep[j.sweep.length - 1].bytes).toBe(2 * j.attainable.array_bytes);
      expect(j.sweep[0].spread.runs).toBe(2);
      expect(j.cache_roofs.map((c: { level: string }) => c.level)).toContain("DRAM");
      expect(j.dram_check.copy_gbps).toBe(j.attainable.copy_gbps);
      expect(j.scaling.counts).toEqual([1, 2]);
      expect(j.scaling.points[1].copy.gbps).toBe(j.attainable.copy_gbps);
      expect(Object.keys(j.scaling.saturation).sort()).toEqual(["add", "backward", "copy", "forward"]);
      expect(j.kernels[0].byte_model.compulsory.bytes).toBe(j.kernels[0].bytes);
      const text = readFileSync(svg, "utf8");
      expect(text).toContain('data-panel="scaling"');
      expect(readdirSync(dir)).toEqual(["plot.svg"]);
      // the same run again, against the first
      writeFileSync(join(dir, "before.json"), r.stdout);
      const b = groupnorm([...args, "--scaling", "--baseline", join(dir, "before.json")]);
      expect(b.status).toBe(0);
      expect(b.stdout).toMatch(/against .*before\.json \(.*, 2 threads\)/);
      expect(b.stdout).toMatch(/copy at 1 thread +[\d.]+ +[\d.]+ +[\d.]+ +(no|yes: faster|yes: slower)/);
      expect(b.stdout).toMatch(/thread scaling/);
      const bj = JSON.parse(groupnorm([...args, "--baseline", join(dir, "before.json"), "--json"]).stdout);
      expect(bj.baseline.path).toBe(join(dir, "before.json"));
      expect(bj.baseline.figures.map((f: { figure: string }) => f.figure)).toEqual(expect.arrayContaining(["copy probe", "forward", "backward", "compute"]));
      for (const f of bj.baseline.figures) expect(f.ratio).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("progress", () => {
  const python = spawnSync("python3", ["-c", "import pty"]).status === 0;
  it.runIf(python)("a terminal sees a bar for the whole run, and the cursor and line wrap back at the end", () => {
    const script = `
import json, os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"status": os.WEXITSTATUS(status), "out": out.decode("utf8", "replace")}))
`;
    const r = spawnSync("python3", ["-c", script, process.execPath, bin, "roofline", "--shape", "2,32,16,16", "--groups", "4", "--runs", "3", "--scaling"], { encoding: "utf8", timeout: 120_000 });
    const { status, out } = JSON.parse(r.stdout) as { status: number; out: string };
    expect(status).toBe(0);
    expect(out).toMatch(/roofline \[[^\]]*\] +\d+% +\d+\/\d+ runs \| [^|]+\| (starting the threads|copy probe, 2 threads|add probe)/);
    const hid = out.lastIndexOf("\u001b[?25l"), shown = out.lastIndexOf("\u001b[?25h");
    expect(hid).toBeGreaterThanOrEqual(0);
    expect(shown).toBeGreaterThan(hid);
    expect(out.lastIndexOf("\u001b[?7h")).toBeGreaterThan(out.lastIndexOf("\u001b[?7l"));
    expect(out.indexOf("host")).toBeGreaterThan(shown); // the tables come after the bar is gone
  });
  it("nothing of it when stderr is not a terminal", () => {
    const r = groupnorm(["roofline", "--shape", "2,32,16,16", "--groups", "4", "--runs", "1"]);
    expect(r.status).toBe(0);
    expect(r.stderr.split("\n").filter((l) => l && !l.startsWith("groupnorm: warning: "))).toEqual([]);
  });
});

describe("roofline on one thread and a signal", () => {
  // on one thread every probe and kernel runs inline and resolves at once: the runs take turns of
  // the event loop between them, so SIGINT and SIGTERM end a measurement at once, with their line
  it.each(["SIGINT", "SIGTERM"] as const)("%s ends a --threads 1 roofline within a second", async (sig) => {
    const child = spawn(process.execPath, [bin, "roofline", "--threads", "1", "--runs", "50", "--json"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const ended = new Promise<string | null>((resolve) => child.on("close", (_code, signal) => resolve(signal)));
    await new Promise((r) => setTimeout(r, 1500)); // measuring by now
    const t0 = Date.now();
    child.kill(sig);
    const signal = await Promise.race([ended, new Promise<"running">((r) => setTimeout(() => r("running"), 5000))]);
    if (signal === "running") child.kill("SIGKILL");
    expect(signal).toBe(sig);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(stderr).toContain(`groupnorm: interrupted by ${sig}`);
  });
});
