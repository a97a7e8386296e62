// The package's entry, imported by its name as a user would: groupNorm and groupNormBackward against
// the float64 oracle (both layouts; float16, float32, float64), bitwise against the CLI's files,
// engines, typed errors, a script that exits by itself, and the types in the packed tarball.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, decodeFloat16, encodeFloat16, groupNorm, groupNormBackward, InputError, type Dtype, type Layout, type TensorData } from "groupnorm";
import { groupNormDims } from "../src/core/dims.js";
import { POOL_JOB_BYTES, POOL_START_BYTES } from "../src/kernels/engine.js";
import { readNpy, readNpyHeader } from "../src/io/npy/index.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { cases, casePath } from "./helpers/fixtures.js";
import { groupnorm } from "./helpers/cli.js";
import { randn, relError } from "./helpers/random.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-api-"));
const engine = createEngine({ threads: 2, pool: "always" }); // the pool even for these small tensors
afterAll(async () => {
  await engine.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Values as stored in `dtype`, and the typed array that stores them. */
function stored(v: Float64Array, dtype: Dtype): { values: Float64Array; data: TensorData } {
  if (dtype === "float64") return { values: v, data: v };
  if (dtype === "float32") {
    const data = Float32Array.from(v);
    return { values: Float64Array.from(data), data };
  }
  const data = encodeFloat16(v);
  return { values: Float64Array.from(decodeFloat16(data)), data };
}

const asNumbers = (a: TensorData, dtype: Dtype): Float64Array => Float64Array.from(dtype === "float16" ? decodeFloat16(a as Uint16Array) : (a as Float32Array));

// relative tolerance of each dtype's outputs against the oracle of the stored inputs
const TOL: Record<Dtype, number> = { float64: 1e-12, float32: 3e-6, float16: 1e-3 };
const shapes: Record<Layout, number[]> = { nchw: [3, 12, 7, 9], nhwc: [3, 7, 9, 12] };

describe.each(["nchw", "nhwc"] as const)("%s", (layout) => {
  describe.each(["float16", "float32", "float64"] as const)("%s", (dtype) => {
    const shape = shapes[layout];
    const n = shape.reduce((a, b) => a * b, 1);
    const G = 4;
    const d = groupNormDims(shape, G, layout);
    const x = stored(randn(n, 11, 2, 0.75), dtype);
    const dy = stored(randn(n, 12), dtype);
    const gamma = stored(randn(d.C, 13, 0.5, 1), dtype).values;
    const beta = stored(randn(d.C, 14), dtype).values;

    it("groupNorm matches the float64 oracle", async () => {
      const r = await groupNorm(x.data, shape, { groups: G, gamma, beta, layout, dtype, engine });
      expect(r.y.constructor).toBe(x.data.constructor);
      expect(r.mean).toBeInstanceOf(dtype === "float64" ? Float64Array : Float32Array);
      const ref = referenceForward(x.values, d, gamma, beta, 1e-5);
      expect(relError(asNumbers(r.y, dtype), ref.y)).toBeLessThan(TOL[dtype]);
      expect(relError(Float64Array.from(r.mean), ref.mean)).toBeLessThan(dtype === "float64" ? 1e-12 : 1e-6);
      expect(relError(Float64Array.from(r.rstd), ref.rstd)).toBeLessThan(dtype === "float64" ? 1e-12 : 1e-6);
    });

    it("groupNormBackward matches the float64 oracle (statistics recomputed and given)", async () => {
      const ref = referenceBackward(dy.values, x.values, d, gamma, referenceForward(x.values, d, gamma, beta, 1e-5));
      const fwd = await groupNorm(x.data, shape, { groups: G, gamma, beta, layout, dtype, engine });
      for (const stats of [{}, { mean: fwd.mean, rstd: fwd.rstd }]) {
        const r = await groupNormBackward(dy.data, x.data, shape, { groups: G, gamma, layout, dtype, engine, ...stats });
        expect(Object.keys(r).sort()).toEqual(["dbeta", "dgamma", "dx"]);
        expect(relError(asNumbers(r.dx!, dtype), ref.dx)).toBeLessThan(dtype === "float64" ? 1e-10 : TOL[dtype] * 10);
        expect(relError(asNumbers(r.dgamma!, dtype), ref.dgamma)).toBeLessThan(dtype === "float64" ? 1e-10 : TOL[dtype] * 10);
        expect(relError(asNumbers(r.dbeta!, dtype), ref.dbeta)).toBeLessThan(dtype === "float64" ? 1e-10 : TOL[dtype] * 10);
      }
      const only = await groupNormBackward(dy.data, x.data, shape, { groups: G, layout, dtype, engine });
      expect(Object.keys(only)).toEqual(["dx"]);
    });
  });
});

describe("bitwise what the CLI writes", () => {
  const bytesOf = (a: TensorData) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const dataOf = async (file: string) => readFileSync(file).subarray((await readNpyHeader(file)).dataOffset);
  const raw = async (file: string): Promise<TensorData> => {
    const h = await readNpyHeader(file);
    const b = readFileSync(file).subarray(h.dataOffset);
    const copy = new Uint8Array(b).buffer;
    return h.dtype === "float16" ? new Uint16Array(copy) : h.dtype === "float32" ? new Float32Array(copy) : new Float64Array(copy);
  };
  it.each(["nchw_2d_f32", "f16_nhwc", "nlc_f64", "mixed_dtypes"])("%s", async (name) => {
    const c = cases.find((k) => k.name === name)!;
    const out = join(tmp, name);
    const args = ["--groups", String(c.groups), "--layout", c.layout];
    expect(groupnorm(["forward", casePath(c, "x.npy"), ...args, "--gamma", casePath(c, "gamma.npy"), "--beta", casePath(c, "beta.npy"), "--out-dir", out]).status).toBe(0);
    expect(groupnorm(["backward", casePath(c, "dy.npy"), casePath(c, "x.npy"), ...args, "--gamma", casePath(c, "gamma.npy"), "--out-dir", out]).status).toBe(0);
    const x = await raw(casePath(c, "x.npy")), dy = await raw(casePath(c, "dy.npy"));
    const gamma = (await readNpy(casePath(c, "gamma.npy"))).data, beta = (await readNpy(casePath(c, "beta.npy"))).data;
    // `dtype` says what a Uint16Array holds (float16 bits); the other arrays speak for themselves
    const dtype = x instanceof Uint16Array || dy instanceof Uint16Array ? "float16" : undefined;
    const f = await groupNorm(x, c.shape, { groups: c.groups, layout: c.layout, gamma, beta, dtype, engine });
    expect(bytesOf(f.y).equals(await dataOf(join(out, "Y.npy")))).toBe(true);
    expect(bytesOf(f.mean).equals(await dataOf(join(out, "mean.npy")))).toBe(true);
    expect(bytesOf(f.rstd).equals(await dataOf(join(out, "rstd.npy")))).toBe(true);
    const b = await groupNormBackward(dy, x, c.shape, { groups: c.groups, layout: c.layout, gamma, dtype, engine });
    expect(bytesOf(b.dx!).equals(await dataOf(join(out, "dX.npy")))).toBe(true);
    expect(bytesOf(b.dgamma!).equals(await dataOf(join(out, "dgamma.npy")))).toBe(true);
    expect(bytesOf(b.dbeta!).equals(await dataOf(join(out, "dbeta.npy")))).toBe(true);
  });
});

describe("engines", () => {
  it("calls on one engine run one at a time and give the results of sequential calls", async () => {
    const shape = [4, 16, 33, 9];
    const inputs = [1, 2, 3, 4].map((s) => Float32Array.from(randn(4 * 16 * 33 * 9, s)));
    const sequential = [];
    for (const x of inputs) sequential.push(await groupNorm(x, shape, { groups: 8, engine }));
    const together = await Promise.all(inputs.map((x) => groupNorm(x, shape, { groups: 8, engine })));
    for (let i = 0; i < inputs.length; i++) expect(Buffer.from(together[i].y.buffer).equals(Buffer.from(sequential[i].y.buffer))).toBe(true);
  });

  it("the default engine and engines of other thread counts give bitwise the same results", async () => {
    const x = Float64Array.from(randn(2 * 8 * 100, 5));
    const a = await groupNorm(x, [2, 8, 100], { groups: 2, engine });
    const b = await groupNorm(x, [2, 8, 100], { groups: 2, threads: 1 });
    const c = await groupNorm(x, [2, 8, 100], { groups: 2 });
    expect(Array.from(b.y)).toEqual(Array.from(a.y));
    expect(Array.from(c.y)).toEqual(Array.from(a.y));
  });

  it("a closed engine refuses calls", async () => {
    const e = createEngine({ threads: 1 });
    await e.close();
    await expect(groupNorm(new Float32Array(8), [1, 8], { groups: 2, engine: e })).rejects.toThrow(/closed/);
  });
});

describe("bad input rejects with InputError, never exits", () => {
  const x = new Float32Array(2 * 6 * 5);
  const bad: Array<[string, () => Promise<unknown>, RegExp]> = [
    ["C not divisible by groups", () => groupNorm(x, [2, 6, 5], { groups: 4 }), /C = 6 .* not divisible by --groups 4/],
    ["shape and length disagree", () => groupNorm(x, [2, 6, 4], { groups: 3 }), /x has 60 values but shape \(2, 6, 4\) has 48/],
    ["gamma of the wrong length", () => groupNorm(x, [2, 6, 5], { groups: 3, gamma: [1, 2] }), /gamma must have 6 values/],
    ["negative eps", () => groupNorm(x, [2, 6, 5], { groups: 3, eps: -1 }), /eps must be a finite number >= 0/],
    ["unknown layout", () => groupNorm(x, [2, 6, 5], { groups: 3, layout: "nwhc" as Layout }), /unknown layout 'nwhc'/],
    ["Uint16Array without dtype", () => groupNorm(new Uint16Array(60), [2, 6, 5], { groups: 3 }), /dtype: "float16"/],
    ["bad thread count", () => groupNorm(x, [2, 6, 5], { groups: 3, threads: 0 }), /threads must be an integer from 1 to 256/],
    ["dy of another length", () => groupNormBackward(new Float32Array(3), x, [2, 6, 5], { groups: 3 }), /dy has 3 values/],
    ["mean without rstd", () => groupNormBackward(x, x, [2, 6, 5], { groups: 3, mean: new Float32Array(6) }), /mean and rstd must be given together/],
  ];
  it.each(bad)("%s", async (_name, call, message) => {
    const e = await call().then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(message);
  });
});

describe("as a package", () => {
  // calls of POOL_JOB_BYTES that add up to POOL_START_BYTES: the default engine of 2 threads starts its pool
  const HW = POOL_JOB_BYTES / (4 * 32 * 4), CALLS = POOL_START_BYTES / POOL_JOB_BYTES;
  const script = (threads: number) => `
    import { groupNorm } from "groupnorm";
    const x = Float32Array.from({ length: 4 * 32 * ${HW} }, (_, i) => Math.sin(i));
    let r;
    for (let i = 0; i < ${CALLS}; i++) r = await groupNorm(x, [4, 32, ${HW}], { groups: 8, threads: ${threads} });
    const { y, mean } = r;
    console.log(y.length, mean.length, y.reduce((a, b) => a + b * b, 0).toFixed(1));`;
  it.each([1, 2])("a script that calls groupNorm once (threads %d) exits by itself", (threads) => {
    const t = Date.now();
    const r = spawnSync(process.execPath, ["--input-type=module"], { cwd: root, input: script(threads), encoding: "utf8", timeout: 20_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const [size, stats, sumSquares] = r.stdout.trim().split(" ").map(Number);
    expect([size, stats]).toEqual([4 * 32 * HW, 32]);
    expect(Math.abs(sumSquares / (4 * 32 * HW) - 1)).toBeLessThan(1e-4); // each group has variance 1 (up to eps)
    expect(Date.now() - t).toBeLessThan(20_000);
  });

  it("the packed tarball carries the types, the built code and the kernels, and no sources", () => {
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
    const files = (JSON.parse(out)[0].files as Array<{ path: string }>).map((f) => f.path);
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/api/arrays.d.ts", "build/kernels.wasm", "bin/groupnorm.js", "package.json", "README.md"]) expect(files).toContain(f);
    expect(files.filter((f) => f.startsWith("src/") || f.endsWith(".map") || f.endsWith(".wat"))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.exports["."].types).toBe("./dist/index.d.ts");
  });
});
