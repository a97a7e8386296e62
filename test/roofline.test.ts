// roofline: the theoretical-peak parsers on recorded inputs, the report's fields and warnings, and
// the command's JSON end to end on a small shape.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseCacheSize, parseDmidecode, parseHmat } from "../src/io/host.js";
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

describe("report", () => {
  const base = {
    host: { cpu: "test", cores: 2, llc_bytes: 32 * 2 ** 20, node: "v20", hypervisor: true },
    threads: 2,
    theoretical: { gbps: 100, source: "flag" as const, detail: "--peak-gbps" },
    attainable: { copy_gbps: 40, add_gbps: 50, triad_gbps: 50, read_gbps: 60, array_bytes: 256 * 2 ** 20 },
    computeGflops: 40,
    layout: "nchw" as const,
    dtype: "float32",
    shape: [16, 512, 64, 64],
    groups: 32,
  };
  it("computes GB/s, intensity and fractions against copy (forward) and add (backward)", () => {
    const r = buildReport({
      ...base,
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
    const r = buildReport({ ...base, timings: [{ name: "forward", seconds: 1e-4, median_seconds: 1e-4, runs: 5, bytes: 1e6, flops: 1e6 }] });
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
  it("refuses a bad shape or dtype with exit 2", () => {
    expect(groupnorm(["roofline", "--shape", "16,x"]).status).toBe(2);
    expect(groupnorm(["roofline", "--dtype", "f16"]).status).toBe(2);
    expect(groupnorm(["roofline", "--shape", "2,6,4,4", "--groups", "4"]).status).toBe(2);
  });
});
