// Issue #18: info's statistics and compare's checks run as WebAssembly scans on the engine's threads
// (assembly/scan.ts, assembly/compare.ts), streamed through the arena in the files' own dtypes. They
// must give exactly what one scalar loop in order over the float64 values gives — the oracles below
// are those loops — for any thread count and any slicing (--memory), mean and std within float64
// accuracy of NumPy's and of the exact values (fixtures/statistics, made by its generate.py).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unravel } from "../src/analysis/chunks.js";
import type { Dtype } from "../src/core/dtype.js";
import { encodeValues } from "../src/io/container-writer.js";
import { writeNpy } from "../src/io/npy/index.js";
import { openTensor } from "../src/io/open.js";
import { readAll } from "../src/io/tensor.js";
import { compareFiles, createEngine, describeFile, type GroupNormEngine, type InfoReport } from "../src/index.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";

const S = fileURLToPath(new URL("../fixtures/statistics/", import.meta.url));
const expected = JSON.parse(readFileSync(`${S}expected.json`, "utf8")) as {
  info: Record<string, { min: number | null; max: number | null; mean: number | null; std: number | null; exact_mean: number | null; exact_std: number | null; nan: number; posinf: number; neginf: number }>;
  compare: Record<string, { a: string; b: string; atol: number; rtol: number; mismatches: number; max_abs_error: number | null }>;
};
const dir = mkdtempSync(join(tmpdir(), "groupnorm-scan-"));
const P = (f: string) => join(dir, f);
let engines: GroupNormEngine[] = [];
/** Every way of running a scan: 1, 2 and 3 threads (the pool started, so that it takes the slices), and budgets that cut a tensor into slices of 1 and of 7 blocks. */
const RUNS = [
  { threads: 1, memory: undefined },
  { threads: 2, memory: undefined },
  { threads: 3, memory: 1 },
  { threads: 2, memory: 1 << 20 },
  { threads: 1, memory: 1 },
];
beforeAll(async () => {
  engines = [1, 2, 3].map((threads) => createEngine({ threads, pool: "always" }));
  for (const e of engines) await e.use((k) => k.ready());
});
afterAll(async () => {
  for (const e of engines) await e.close();
  rmSync(dir, { recursive: true, force: true });
});
const engineOf = (threads: number) => engines[threads - 1];

/** Every run's summary; all must be the same to the bit (Object.is, so ±0 counts). */
async function summaries(name: string): Promise<InfoReport> {
  const all = [];
  for (const r of RUNS) all.push((await describeFile(name, { engine: engineOf(r.threads), memory: r.memory })) as InfoReport);
  for (const s of all.slice(1)) for (const k of ["min", "max", "mean", "std", "nan", "posinf", "neginf"] as const) expect(Object.is(s[k], all[0][k]), `${name} ${k}: ${s[k]} vs ${all[0][k]}`).toBe(true);
  return all[0];
}

/** Σ f(x) over the finite values, compensated (Neumaier): to the last bits of float64 whatever the terms. */
function fsum(v: Float64Array, f: (x: number) => number): number {
  let s = 0, c = 0;
  for (const x of v) {
    if (!Number.isFinite(x)) continue;
    const y = f(x), t = s + y;
    c += Math.abs(s) >= Math.abs(y) ? s - t + y : y - t + s;
    s = t;
  }
  return s + c;
}

/** info's loop in order over the float64 values (first of equal extremes kept), with a compensated two-pass mean and variance. */
function oracleSummary(v: Float64Array) {
  let min = Infinity, max = -Infinity, nan = 0, posinf = 0, neginf = 0, count = 0;
  for (const x of v) {
    if (Number.isNaN(x)) nan++;
    else if (x === Infinity) posinf++;
    else if (x === -Infinity) neginf++;
    else {
      count++;
      if (x < min) min = x;
      if (x > max) max = x;
    }
  }
  const m = fsum(v, (x) => x) / count;
  const q = fsum(v, (x) => (x - m) * (x - m)), e = fsum(v, (x) => x - m);
  const mean = count ? m + e / count : null, std = count ? Math.sqrt(Math.max(0, q - (e * e) / count) / count) : null;
  return { min: count ? min : null, max: count ? max : null, mean, std, nan, posinf, neginf };
}

/** compare's loop in order (the one analysis/compare.ts ran before the kernels): the counts, errors and worst entry. */
function oracleCompare(va: Float64Array, vb: Float64Array, atol: number, rtol: number) {
  let mismatches = 0, maxAbs = 0, maxRel = 0, worstExcess = -Infinity, worst: { at: number; abs: number } | null = null;
  for (let i = 0; i < va.length; i++) {
    const a = va[i], b = vb[i];
    const close = Number.isNaN(a) || Number.isNaN(b) ? Number.isNaN(a) && Number.isNaN(b) : !Number.isFinite(a) || !Number.isFinite(b) ? a === b : Math.abs(a - b) <= atol + rtol * Math.abs(b);
    let abs = Math.abs(a - b);
    if (Number.isNaN(abs)) abs = close ? 0 : Infinity;
    if (!Number.isFinite(a) && a === b) abs = 0;
    if (abs > maxAbs) maxAbs = abs;
    const rel = abs === 0 ? 0 : abs / Math.abs(b);
    if (rel > maxRel) maxRel = rel;
    if (close) continue;
    mismatches++;
    const excess = abs - (atol + rtol * Math.abs(b));
    if (excess > worstExcess || Number.isNaN(excess)) {
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
      worst = { at: i, abs };
    }
  }
  return { mismatches, max_abs_error: maxAbs, max_rel_error: maxRel, worst: worst && { index: [worst.at], a: va[worst.at], b: vb[worst.at], abs_error: worst.abs } };
}

const values = async (name: string) => {
  const s = await openTensor(name);
  try {
    return await readAll(s);
  } finally {
    await s.close();
  }
};

/** A safetensors file of one tensor, `t`, of bfloat16 or float16 bit patterns (or values to round into them). */
function safetensors(file: string, dtype: "BF16" | "F16" | "F32", data: Uint8Array): string {
  const header = JSON.stringify({ t: { dtype, shape: [data.length / (dtype === "F32" ? 4 : 2)], data_offsets: [0, data.length] } });
  const h = Buffer.from(header.padEnd(Math.ceil(header.length / 8) * 8));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(P(file), Buffer.concat([len, h, data]));
  return `${P(file)}:t`;
}

/** n values of `dtype` from the seed, with NaN, ±∞ and ±0 sprinkled (`specials` of each), written as .npy. */
async function tensor(file: string, dtype: Dtype, n: number, seed: number, scale = 3, specials = 0): Promise<string> {
  const v = Float64Array.from(randn(n, seed), (x) => x * scale);
  for (let k = 0; k < specials; k++) for (const [j, s] of [NaN, Infinity, -Infinity, 0, -0].entries()) v[(seed * 7919 + k * 104729 + j * 15485863) % n] = s;
  await writeNpy(P(file), dtype, [n], v);
  return P(file);
}

describe("info's statistics against NumPy (fixtures/statistics)", () => {
  it.each(Object.keys(expected.info))("%s", async (name) => {
    const want = expected.info[name];
    const got = await summaries(`${S}${name}.npy`);
    expect({ min: got.min, max: got.max, nan: got.nan, posinf: got.posinf, neginf: got.neginf }).toEqual({ min: want.min, max: want.max, nan: want.nan, posinf: want.posinf, neginf: want.neginf });
    if (want.exact_mean === null) return expect([got.mean, got.std, got.statistics]).toEqual([null, null, "computed"]);
    const scale = Math.abs(want.exact_mean) + want.exact_std!;
    // float64-accurate: within a few units of the last place of the exact values, and as close to NumPy's as NumPy is to them
    expect(Math.abs(got.mean! - want.exact_mean) / scale).toBeLessThan(2e-15);
    expect(Math.abs(got.std! - want.exact_std!) / want.exact_std!).toBeLessThan(2e-15);
    expect(Math.abs(got.mean! - want.mean!) / scale).toBeLessThan(4e-15);
    expect(Math.abs(got.std! - want.std!) / want.std!).toBeLessThan(4e-15);
  });
});

describe("info's statistics: the scalar loop's values, the kernels' any way they run", () => {
  it.each([
    ["float32", 1], ["float32", 8191], ["float32", 8193], ["float32", 3 * 8192 + 5],
    ["float64", 7], ["float64", 8192], ["float64", 20001], ["float16", 9], ["float16", 40000],
  ] as const)("%s, %i values, with NaN, ±∞ and ±0", async (dtype, n) => {
    for (const specials of [0, 3]) {
      const f = await tensor(`s-${dtype}-${n}-${specials}.npy`, dtype, n, n + specials, 3, specials);
      const got = await summaries(f), want = oracleSummary(await values(f));
      expect({ min: got.min, max: got.max, nan: got.nan, posinf: got.posinf, neginf: got.neginf }).toEqual({ min: want.min, max: want.max, nan: want.nan, posinf: want.posinf, neginf: want.neginf });
      expect(Math.abs(got.mean! - want.mean!)).toBeLessThanOrEqual(4e-15 * (Math.abs(want.mean!) + want.std!));
      expect(Math.abs(got.std! - want.std!)).toBeLessThanOrEqual(4e-15 * want.std!);
    }
  });

  it("every float16 and every bfloat16 bit pattern, converted by the kernel as the readers convert them", async () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ["F16", "BF16"] as const) {
      const f = safetensors(`all-${dtype}.safetensors`, dtype, new Uint8Array(bits.buffer));
      const got = await summaries(f), want = oracleSummary(await values(f));
      expect(got).toMatchObject({ min: want.min, max: want.max, nan: want.nan, posinf: 1, neginf: 1 });
      expect(Math.abs(got.mean! - want.mean!)).toBeLessThanOrEqual(4e-15 * (Math.abs(want.mean!) + want.std!));
      expect(Math.abs(got.std! - want.std!)).toBeLessThanOrEqual(4e-15 * want.std!);
    }
    const bf = safetensors("bf.safetensors", "BF16", encodeValues(Float32Array.from(randn(30000, 4), (x) => x * 1e3), "bfloat16"));
    const got = await summaries(bf), want = oracleSummary(await values(bf));
    expect([got.min, got.max]).toEqual([want.min, want.max]);
    expect(Math.abs(got.std! - want.std!)).toBeLessThan(4e-15 * want.std!);
  });

  it("a zero extreme keeps the sign of the first zero met, in any block and any lane", async () => {
    const n = 3 * 8192 + 3;
    const cases: Array<[string, (v: Float32Array) => void, number]> = [
      ["+0 first, −0 next", (v) => (v[1] = -0), 0],
      ["−0 first", (v) => (v[0] = -0), -0],
      ["−0 first, in the second block", (v) => { v.fill(1); v[9001] = -0; v[9003] = 0; v[20000] = -0; }, -0],
      ["+0 first in one lane, −0 in the others", (v) => { v.fill(-0); v[0] = 1; v[1] = 0; }, 0],
      ["−0 in the tail only", (v) => { v.fill(5); v[n - 2] = -0; }, -0],
    ];
    for (const [what, fill, zero] of cases) {
      const v = new Float32Array(n);
      fill(v);
      await writeNpy(P("z.npy"), "float32", [n], v);
      const r = await summaries(P("z.npy"));
      expect(Object.is(r.min, zero), `${what}: min ${Object.is(r.min, -0) ? "-0" : r.min}`).toBe(true);
      const neg = Float32Array.from(v, (x) => -x);
      await writeNpy(P("zn.npy"), "float32", [n], neg);
      expect(Object.is((await summaries(P("zn.npy"))).max, -zero), `${what}, negated: max`).toBe(true);
    }
  });

  it("all non-finite: null statistics and the counts; empty: nothing counted", async () => {
    await writeNpy(P("nf.npy"), "float64", [5, 2], Float64Array.of(NaN, Infinity, -Infinity, NaN, Infinity, NaN, NaN, -Infinity, NaN, NaN));
    expect(await summaries(P("nf.npy"))).toMatchObject({ min: null, max: null, mean: null, std: null, nan: 6, posinf: 2, neginf: 2, statistics: "computed" });
    await writeNpy(P("empty.npy"), "float32", [0, 4], new Float32Array(0));
    expect(await summaries(P("empty.npy"))).toMatchObject({ size: 0, min: null, mean: null, nan: 0, posinf: 0, neginf: 0 });
  });
});

describe("compare: the scalar loop's counts, errors and worst entry, the kernel's any way it runs", () => {
  /** Every run's report (the same for all), checked against the oracle's. */
  async function check(a: string, b: string, atol: number, rtol: number, runs = RUNS) {
    const all = [];
    for (const r of runs) all.push(await compareFiles(a, b, { atol, rtol, engine: engineOf(r.threads), memory: r.memory }));
    for (const r of all.slice(1)) expect(r).toEqual(all[0]);
    const want = oracleCompare(await values(a), await values(b), atol, rtol);
    if (want.worst) want.worst.index = unravel(want.worst.index[0], all[0].a.shape);
    expect(all[0]).toMatchObject({ ...want, close: want.mismatches === 0 });
    return all[0];
  }

  it.each([
    ["float32", "float32"], ["float64", "float64"], ["float32", "float64"], ["float64", "float32"], ["float16", "float32"], ["float32", "float16"], ["float16", "float16"],
  ] as const)("%s against %s, with NaN, ±∞ and ±0, over and under the tolerance", async (da, db) => {
    for (const n of [3, 8192, 3 * 8192 + 6]) {
      const a = await tensor(`ca-${da}-${n}.npy`, da, n, 11, 3, 4), b = await tensor(`cb-${db}-${n}.npy`, db, n, 11, 3, 2);
      for (const [atol, rtol] of [[1e-6, 1e-5], [0, 0], [1e-2, 1e-1], [0, 2]]) await check(a, b, atol, rtol);
    }
  });

  it("the worst entry: the first of equal excesses across blocks; NaN against a number wherever it comes last; differences beyond float64", async () => {
    const n = 5 * 8192;
    const b = Float64Array.from(randn(n, 5));
    const a = Float64Array.from(b);
    a[9000] = b[9000] + 0.5; // excess 0.5 - 1e-6 - ...: equal to the next one where |b| is equal
    b[30000] = b[9000];
    a[30000] = a[9000];
    a[100] = b[100] + 0.25;
    await writeNpy(P("wa.npy"), "float64", [n], a);
    await writeNpy(P("wb.npy"), "float64", [n], b);
    let r = await check(P("wa.npy"), P("wb.npy"), 1e-6, 1e-5);
    expect(r.worst!.index).toEqual([9000]);
    // NaN against a number: its excess is NaN, and the last such entry is the worst
    b[20000] = NaN;
    b[33333] = NaN;
    a[3] = 1e308;
    b[3] = -1e308; // a − b overflows to ∞
    await writeNpy(P("wa.npy"), "float64", [n], a);
    await writeNpy(P("wb.npy"), "float64", [n], b);
    r = await check(P("wa.npy"), P("wb.npy"), 1e-6, 1e-5);
    expect(r.worst!.index).toEqual([33333]);
    expect(r.max_abs_error).toBe(Infinity);
  });

  it.each(Object.keys(expected.compare))("NumPy's isclose counts (fixtures/statistics: %s)", async (name) => {
    const c = expected.compare[name];
    const r = await check(`${S}${c.a}.npy`, `${S}${c.b}.npy`, c.atol, c.rtol);
    expect(r.mismatches).toBe(c.mismatches);
    expect(r.max_abs_error).toBe(c.max_abs_error ?? Infinity);
  });

  it("Fortran-order files: two compared in their stored order, one against a C-order file through its copy", async () => {
    const f = `${S}fortran_f32.npy`;
    const v = await values(f); // C order
    const noisy = Float32Array.from(v, (x, i) => (i % 997 === 0 ? x + 1e-3 : x));
    await writeNpy(P("c-order.npy"), "float32", [30, 40, 50], noisy);
    const r = await check(f, P("c-order.npy"), 1e-6, 1e-5, RUNS.filter((run) => run.memory !== 1)); // its C-order copy needs 240 KB
    expect(r.mismatches).toBe(Math.ceil(60000 / 997));
    const both = await compareFiles(f, f, { engine: engineOf(2) });
    expect(both).toMatchObject({ close: true, size: 60000, mismatches: 0, max_abs_error: 0 });
  });
});

describe("the command line", () => {
  it("info and compare take --threads and --memory, and say the same whatever they are", async () => {
    const a = await tensor("cli-a.npy", "float32", 50000, 3, 2, 2), b = await tensor("cli-b.npy", "float16", 50000, 3, 2, 1);
    const info = ["--threads 1", "--threads 2 --memory 300K", "--threads 3 --memory 64M"].map((f) => groupnorm(["info", a, "--json", ...f.split(" ")]));
    for (const r of info) expect(r.status, r.stderr).toBe(0);
    expect(new Set(info.map((r) => r.stdout)).size).toBe(1);
    const want = oracleSummary(await values(a));
    expect(JSON.parse(info[0].stdout)).toMatchObject({ min: want.min, max: want.max, nan: want.nan, posinf: want.posinf, neginf: want.neginf });
    const cmp = ["--threads 1", "--threads 2 --memory 300K"].map((f) => groupnorm(["compare", a, b, "--json", "--atol", "1e-3", ...f.split(" ")]));
    expect(cmp.map((r) => r.status)).toEqual([1, 1]);
    expect(cmp[0].stdout).toBe(cmp[1].stdout);
    expect(JSON.parse(cmp[0].stdout)).toMatchObject(JSON.parse(JSON.stringify(oracleCompare(await values(a), await values(b), 1e-3, 1e-5))));
  });

  it("a library caller's process exits by itself after info and compare on the default engine's pool", () => {
    const lib = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `import { compareFiles, describeFile } from ${JSON.stringify(lib)};
const a = ${JSON.stringify(`${S}offset_f64.npy`)};
const first = await describeFile(a);
await new Promise((r) => setTimeout(r, 300)); // the pool is up for the second call
const again = await describeFile(a);
const c = await compareFiles(a, a);
console.log(first.std === again.std, c.close);`;
    const r = spawnSync(process.execPath, ["--input-type=module"], { input: script, encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe("true true");
  });
});
