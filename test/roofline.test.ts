// roofline: the theoretical-peak parsers on recorded inputs, the report's fields and warnings, and
// the command's JSON end to end on a small shape.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseCacheSize, parseDmidecode, parseHmat } from "../src/roofline/host.js";
import { buildReport } from "../src/roofline/report.js";
import { groupnorm } from "./helpers/cli.js";

const data = (f: string) => readFileSync(new URL(`./data/host/${f}`, import.meta.url), "utf8");

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
  it("cache sizes from sysfs", () => {
    expect(parseCacheSize("32768K\n")).toBe(32 * 2 ** 20);
    expect(parseCacheSize("2M")).toBe(2 * 2 ** 20);
    expect(parseCacheSize("junk")).toBe(0);
  });
});

const base = {
  host: { cpu: "test", cores: 2, llc_bytes: 32 * 2 ** 20, node: "v20", hypervisor: false, caches: [] },
  threads: 2,
  theoretical: { gbps: null, source: "unavailable" as const, detail: "none" },
  attainable: { copy_gbps: 40, add_gbps: 50, triad_gbps: 50, read_gbps: 60, array_bytes: 256 * 2 ** 20 },
  computeGflops: 40,
  layout: "nchw" as const,
  dtype: "float32",
  shape: [16, 512, 64, 64],
  groups: 32,
  itemBytes: { forward: 256 * 1024, backward: 512 * 1024 },
  inputBytes: { forward: 134e6, backward: 268e6 },
};

describe("report", () => {
  const vm = {
    ...base,
    host: { ...base.host, hypervisor: true },
    theoretical: { gbps: 100, source: "flag" as const, detail: "--peak-gbps" },
  };
  it("computes GB/s, intensity and fractions against copy (forward) and add (backward)", () => {
    const r = buildReport({
      ...vm,
      timings: [
        { name: "forward", seconds: 0.01, median_seconds: 0.011, runs: 5, bytes: 4e8, flops: 2e8 },
        { name: "backward", seconds: 0.02, median_seconds: 0.021, runs: 5, bytes: 6e8, flops: 3e8 },
      ],
    });
    expect(r.kernels[0].gbps).toBeCloseTo(40, 9);
    expect(r.kernels[0].fraction_of_attainable).toBeCloseTo(1, 9);
    expect(r.kernels[1].gbps).toBeCloseTo(30, 9);
    expect(r.kernels[1].fraction_of_attainable).toBeCloseTo(0.6, 9);
    expect(r.kernels[1].fraction_of_theoretical).toBeCloseTo(0.3, 9);
    expect(r.kernels[0].intensity).toBeCloseTo(0.5, 9);
    expect(r.warnings.some((w) => /virtual machine/.test(w))).toBe(true);
    expect(r.warnings.some((w) => /fits in cache/.test(w))).toBe(false);
  });
  it("warns about cache-sized working sets and too-short runs", () => {
    const r = buildReport({ ...vm, timings: [{ name: "forward", seconds: 1e-4, median_seconds: 1e-4, runs: 5, bytes: 1e6, flops: 1e6 }] });
    expect(r.warnings.some((w) => /fits in cache: not a DRAM measurement/.test(w))).toBe(true);
    expect(r.warnings.some((w) => /too short/.test(w))).toBe(true);
  });
});

describe("groupnorm roofline --json", () => {
  it("prints the SPEC.md fields", () => {
    const r = groupnorm(["roofline", "--json", "--shape", "2,8,16,16", "--groups", "4", "--threads", "2", "--runs", "2", "--peak-gbps", "51.2"]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j.host).sort()).toEqual(["cores", "cpu", "llc_bytes", "node", "threads"]);
    expect(j.host.threads).toBe(2);
    expect(j.theoretical).toEqual({ gbps: 51.2, source: "flag", detail: "--peak-gbps" });
    for (const k of ["copy_gbps", "add_gbps", "triad_gbps", "read_gbps"]) expect(j.attainable[k]).toBeGreaterThan(0);
    expect(j.kernels.map((k: { name: string }) => k.name)).toEqual(["forward", "backward"]);
    const f = j.kernels[0];
    for (const key of ["layout", "dtype", "shape", "groups", "threads", "seconds", "median_seconds", "bytes", "gbps", "flops", "gflops", "intensity", "fraction_of_attainable", "fraction_of_theoretical"]) {
      expect(f).toHaveProperty(key);
    }
    expect(f.shape).toEqual([2, 8, 16, 16]);
    expect(f.bytes).toBe(2 * 2 * 8 * 256 * 4 + 2 * 8 * 4 + 2 * 2 * 4 * 4);
    expect(f.seconds).toBeLessThanOrEqual(f.median_seconds);
    expect(j.warnings.some((w: string) => /fits in cache/.test(w))).toBe(true);
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
  it("refuses a bad shape or dtype with exit 2", () => {
    expect(groupnorm(["roofline", "--shape", "16,x"]).status).toBe(2);
    expect(groupnorm(["roofline", "--dtype", "f16"]).status).toBe(2);
    expect(groupnorm(["roofline", "--shape", "2,6,4,4", "--groups", "4"]).status).toBe(2);
  });
});

describe("the roofline plot and byte model", async () => {
  const { rooflineSvg } = await import("../src/roofline/svg.js");
  const { asciiRoofline } = await import("../src/roofline/ascii.js");
  const report = (theoretical: number | null) =>
    buildReport({
      host: { cpu: "Test CPU", cores: 2, llc_bytes: 32 * 2 ** 20, node: "v20", hypervisor: false, caches: [] },
      threads: 2,
      theoretical: theoretical ? { gbps: theoretical, source: "dmi", detail: "2 DIMMs" } : { gbps: null, source: "unavailable", detail: "no DMI, no HMAT" },
      attainable: { copy_gbps: 40, add_gbps: 45, triad_gbps: 44, read_gbps: 50, array_bytes: 256 * 2 ** 20 },
      computeGflops: 100,
      timings: [
        { name: "forward", seconds: 0.006, median_seconds: 0.007, runs: 5, bytes: 268e6, flops: 7 * 33.5e6 },
        { name: "backward", seconds: 0.009, median_seconds: 0.01, runs: 5, bytes: 403e6, flops: 9 * 33.5e6 },
      ],
      layout: "nchw",
      dtype: "float32",
      shape: [16, 512, 64, 64],
      groups: 32,
      itemBytes: { forward: 256 * 1024, backward: 512 * 1024 },
      inputBytes: { forward: 134e6, backward: 268e6 },
      sweep: [
        { bytes: 16384, gbps: 120 },
        { bytes: 1 << 20, gbps: 200 },
        { bytes: 1 << 26, gbps: 60 },
        { bytes: 1 << 28, gbps: 45 },
      ],
    });

  it("draws both panels with real text: roofs, compute ceiling, ridge, kernels, sweep and caches", () => {
    const svg = rooflineSvg(report(76.8), [
      { level: 1, bytes: 48 << 10 },
      { level: 2, bytes: 1 << 20 },
      { level: 3, bytes: 32 << 20 },
    ]);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    for (const t of ["Roofline", "Bandwidth against working set", "copy roof 40.0 GB/s", "triad roof 44.0 GB/s", "theoretical DRAM roof 76.8 GB/s (dmi)", "compute ceiling 100 GFLOP/s", "ridge 2.50 FLOP/B", "forward nchw", "backward nchw", "L1 48 KiB", "L2 1 MiB", "L3 32 MiB", "GroupNorm forward"]) {
      expect(svg).toContain(t);
    }
    expect(svg).toMatch(/stroke-dasharray="7,5"/); // the theoretical roof is dashed
    expect(svg.match(/<circle [^>]*r="3"/g)?.length).toBe(4); // one marker per sweep point
    const opened = (svg.match(/<text\b/g) ?? []).length, closed = (svg.match(/<\/text>/g) ?? []).length;
    expect(opened).toBe(closed);
    expect(svg).toContain("94% of the copy roof".replace("94", String(Math.round((268e6 / 0.006 / 1e9 / 40) * 100))));
  });

  it("says why there is no theoretical roof", () => {
    const svg = rooflineSvg(report(null), []);
    expect(svg).not.toMatch(/stroke-dasharray="7,5"/);
    expect(svg).toContain("no theoretical roof: no DMI, no HMAT");
  });

  it("reports the three byte counts", () => {
    const r = report(null);
    const f = r.kernels[0].byte_model;
    expect(f.compulsory.bytes).toBe(268e6);
    expect(f.implementation.passes).toBe(1); // 256 KiB items fit in a 32 MiB / 2 / 2 share
    expect(f.with_write_allocate.bytes).toBe(f.implementation.bytes);
    const twoPass = buildReport({ ...base, itemBytes: { forward: 64 * 2 ** 20, backward: 128 * 2 ** 20 }, timings: [{ name: "forward", seconds: 0.01, median_seconds: 0.01, runs: 1, bytes: 268e6, flops: 1 }] });
    const m = twoPass.kernels[0].byte_model;
    expect(m.implementation.passes).toBe(2);
    expect(m.implementation.bytes).toBe(268e6 + 134e6);
    expect(m.implementation.gbps).toBeCloseTo(40.2, 6);
  });

  it("draws a compact terminal roofline", () => {
    const lines = asciiRoofline(report(null));
    expect(lines.length).toBeGreaterThan(10);
    const body = lines.join("\n");
    expect(body).toMatch(/F/);
    expect(body).toMatch(/B/);
    expect(body).toMatch(/╱/);
    expect(body).toMatch(/─/);
  });
});

describe("groupnorm roofline --svg", () => {
  it("writes the SVG and puts the sweep, warnings and byte model in the JSON", () => {
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-svg-"));
    try {
      const svg = join(dir, "plot.svg");
      const r = groupnorm(["roofline", "--json", "--shape", "2,8,16,16", "--groups", "4", "--runs", "2", "--svg", svg]);
      expect(r.status).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.sweep.length).toBeGreaterThan(8);
      expect(j.sweep[0].bytes).toBe(16384);
      expect(j.kernels[0].byte_model.compulsory.bytes).toBe(j.kernels[0].bytes);
      expect(j.warnings.length).toBeGreaterThan(0);
      expect(j.theoretical.source === "unavailable" ? typeof j.theoretical.detail : "string").toBe("string");
      const text = readFileSync(svg, "utf8");
      expect(text).toContain("Bandwidth against working set");
      expect(readdirSync(dir)).toEqual(["plot.svg"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
