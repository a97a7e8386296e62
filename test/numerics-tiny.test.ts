// Float32 groups whose variance float32 squares cannot hold: values around 1e-19 … 1e-45 (with eps 0
// or 1e-40, so that the variance decides rstd), the internal gradients of such groups (products
// dy·(x − mean) below float32's normal range), float16 input (float32 arithmetic), and one such
// group among ordinary ones, whose results must not change by one bit, for any thread count (1, 2,
// 3, 8: 3 and 8 share the units of an item out among threads) and when streamed in chunks. Also
// rstd = ±∞ given to the backward (the float64 formula's ±∞ or NaN).
// Everything against the float64 oracle (src/oracle/reference.ts) on the stored values.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, decodeFloat16, encodeFloat16, groupNorm, groupNormBackward, type GroupNormEngine, type Layout } from "../src/index.js";
import { groupNormDims } from "../src/core/dims.js";
import { writeNpy } from "../src/io/npy/index.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";

const THREADS = [1, 2, 3, 8];
const engines: Record<number, GroupNormEngine> = Object.fromEntries(THREADS.map((t) => [t, createEngine({ threads: t, pool: "always" })]));
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-tiny-"));
afterAll(async () => {
  await Promise.all(Object.values(engines).map((e) => e.close()));
  rmSync(tmp, { recursive: true, force: true });
});

type Dt = "float32" | "float16";
const FLT_MAX = 3.4028234663852886e38;
/** Unit roundoff ×2 (one ulp at 1), the largest finite value and the smallest subnormal of a dtype. */
const FMT: Record<Dt, { ulp: number; max: number; tiny: number }> = {
  float32: { ulp: 2 ** -23, max: FLT_MAX, tiny: 2 ** -149 },
  float16: { ulp: 2 ** -10, max: 65504, tiny: 2 ** -24 },
};

/**
 * max |a − ref| in ulps of the output's scale: one ulp of max |ref| (or of `scale` when given),
 * never below the dtype's smallest subnormal. Where ref is beyond the dtype's range a must be the
 * same infinity (the float64 value rounds there); where ref is NaN, a must be NaN.
 */
function ulps(a: ArrayLike<number>, ref: ArrayLike<number>, dt: Dt, scale?: number): number {
  const f = FMT[dt];
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(ref[i])) {
      if (!Number.isNaN(a[i])) return Infinity;
      continue;
    }
    if (Math.abs(ref[i]) > f.max * (1 + f.ulp / 4)) {
      if (a[i] !== Math.sign(ref[i]) * Infinity) return Infinity;
      continue;
    }
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= num)) num = d; // NaN or Inf in a where ref is finite: Infinity
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / Math.max(f.ulp * (scale ?? den), f.tiny);
}

const values = (a: ArrayLike<number>, dt: Dt) => Float64Array.from(dt === "float16" ? decodeFloat16(a as Uint16Array) : a);
const store = (v: ArrayLike<number>, dt: Dt) => (dt === "float16" ? encodeFloat16(Float64Array.from(v)) : Float32Array.from(v));
const maxAbs = (a: ArrayLike<number>) => Array.prototype.reduce.call(a, (m: number, v: number) => Math.max(m, Math.abs(v)), 0) as number;

interface Errors {
  mean: number;
  rstd: number;
  y: number;
  dx: number;
  dgamma: number;
  dbeta: number;
  /** The backward given the oracle's mean and rstd. */
  dxGiven: number;
  dgammaGiven: number;
}

/** Forward and backward (statistics recomputed, and given) against the oracle, in ulps; dY is given. */
async function errors(shape: number[], G: number, layout: Layout, eps: number, dt: Dt, threads: number, x0: Float64Array, dy0: Float64Array): Promise<Errors> {
  const d = groupNormDims(shape, G, layout);
  const x = store(x0, dt), dy = store(dy0, dt);
  const xv = values(x, dt), dyv = values(dy, dt);
  const gamma = Float64Array.from({ length: d.C }, (_, c) => Math.fround(1 + 0.25 * Math.sin(c + 1)));
  const beta = Float64Array.from({ length: d.C }, (_, c) => Math.fround(0.5 * Math.cos(c)));
  const o = { groups: G, eps, layout, engine: engines[threads], gamma, dtype: dt };
  const f = await groupNorm(x, shape, { ...o, beta });
  const b = await groupNormBackward(dy, x, shape, o);
  const ref = referenceForward(xv, d, gamma, beta, eps);
  const rb = referenceBackward(dyv, xv, d, gamma, ref);
  const bg = await groupNormBackward(dy, x, shape, { ...o, mean: ref.mean, rstd: ref.rstd });
  return {
    // the mean in ulps of the values' scale (it is a cancelling sum of them), rstd in its own
    mean: ulps(f.mean, ref.mean, "float32", maxAbs(xv)),
    rstd: ulps(f.rstd, ref.rstd, "float32"),
    y: ulps(values(f.y, dt), ref.y, dt),
    dx: ulps(values(b.dx!, dt), rb.dx, dt),
    dgamma: ulps(values(b.dgamma!, dt), rb.dgamma, dt),
    dbeta: ulps(values(b.dbeta!, dt), rb.dbeta, dt),
    dxGiven: ulps(values(bg.dx!, dt), rb.dx, dt),
    dgammaGiven: ulps(values(bg.dgamma!, dt), rb.dgamma, dt),
  };
}

const worst = (e: Errors) => Math.max(...Object.values(e));

/** Whether two runs' outputs (forward and backward results, all their arrays) are bitwise the same. */
function sameBits(a: object, b: object): boolean {
  const arrays = (o: object): ArrayBufferView[] =>
    Object.values(o).flatMap((v) => (ArrayBuffer.isView(v) ? [v] : v && typeof v === "object" ? arrays(v) : []));
  const x = arrays(a), y = arrays(b);
  return x.length === y.length && x.every((v, i) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(Buffer.from(y[i].buffer, y[i].byteOffset, y[i].byteLength)));
}

// NCHW runs of 50 (one 48-value float32 block and a tail) and of 600 (blocks of 256); NHWC with
// D = 3 (per-channel strips) and D = 4 (per-group strips, the fused forward)
const SHAPES: Record<Layout, { shape: number[]; G: number }[]> = {
  nchw: [{ shape: [2, 6, 50], G: 2 }, { shape: [1, 4, 600], G: 2 }],
  nhwc: [{ shape: [2, 50, 6], G: 2 }, { shape: [2, 64, 8], G: 2 }],
};

const TESTER_X = [
  1.2573022e-26, -1.3210487e-26, 6.404227e-26, 1.0490012e-26, -5.356694e-26, 3.6159504e-26, 1.304e-25, 9.4708095e-26, -7.0373523e-26, -1.2654215e-25,
  -6.2327444e-26, 4.132598e-27, -2.3250307e-25, -2.1879167e-26, -1.2459109e-25, -7.3226735e-26, -5.44259e-26, -3.1630016e-26, 4.1163055e-26, 1.0425133e-25,
  -1.2853466e-26, 1.3664635e-25, -6.651947e-26, 3.5151007e-26, 9.034702e-26, 9.40123e-27, -7.4349925e-26, -9.2172536e-26, -4.5772582e-26, 2.2019513e-26,
  -1.0096182e-25, -2.0917557e-26, -1.5922501e-26, 5.4084556e-26, 2.1465913e-26, 3.5537272e-26, -6.538286e-26, -1.2961364e-26, 7.8397545e-26, 1.4934312e-25,
  -1.2590655e-25, 1.5139238e-25, 1.3458755e-25, 7.813114e-26, 2.6445563e-26, -3.1392282e-26, 1.4580207e-25, 1.9602583e-25, 1.8016349e-25, 1.3151037e-25,
];

describe("the issue's groups (float32, eps = 0)", () => {
  it("16 values, all 0 but x[8] = 1e-22: rstd and Y as float64 gives them", async () => {
    const x = new Float64Array(16);
    x[8] = 1e-22;
    for (const layout of ["nchw", "nhwc"] as const) {
      const f = await groupNorm(Float32Array.from(x), [1, 1, 16], { groups: 1, eps: 0, layout, engine: engines[1] });
      const ref = referenceForward(Float64Array.from(Float32Array.from(x)), groupNormDims([1, 1, 16], 1, layout), null, null, 0);
      expect(ulps(f.rstd, ref.rstd, "float32")).toBeLessThan(1);
      expect(ulps(f.y, ref.y, "float32")).toBeLessThan(2);
    }
  });

  it("50 normal values × 1e-25 (the report's): rstd 1.0975364e25 as float64 gives it (was 3.4410282e25, 3.1× too large), Y, dX, dgamma, dbeta too, any thread count", async () => {
    const shape = { nchw: [1, 1, 50], nhwc: [1, 50, 1] };
    const dy = Float32Array.from(randn(50, 2));
    const xv = Float64Array.from(Float32Array.from(TESTER_X)), dyv = Float64Array.from(dy);
    for (const layout of ["nchw", "nhwc"] as const) {
      const d = groupNormDims(shape[layout], 1, layout);
      const ref = referenceForward(xv, d, null, null, 0);
      const rb = referenceBackward(dyv, xv, d, [1.25], ref);
      expect(Math.fround(ref.rstd[0])).toBe(Math.fround(1.0975364e25));
      for (const threads of THREADS) {
        const o = { groups: 1, eps: 0, layout, engine: engines[threads] };
        const f = await groupNorm(Float32Array.from(TESTER_X), shape[layout], o);
        const b = await groupNormBackward(dy, Float32Array.from(TESTER_X), shape[layout], { ...o, gamma: [1.25] });
        const bg = await groupNormBackward(dy, Float32Array.from(TESTER_X), shape[layout], { ...o, gamma: [1.25], mean: ref.mean, rstd: ref.rstd });
        const at = `${layout}, ${threads} threads`;
        expect(Math.abs(f.rstd[0] / ref.rstd[0] - 1), at).toBeLessThan(2 ** -23);
        expect(ulps(f.y, ref.y, "float32"), at).toBeLessThan(2);
        for (const r of [b, bg]) {
          expect(ulps(r.dx!, rb.dx, "float32"), at).toBeLessThan(2);
          expect(ulps(r.dgamma!, rb.dgamma, "float32"), at).toBeLessThan(2);
          expect(ulps(r.dbeta!, rb.dbeta, "float32"), at).toBeLessThan(2);
        }
      }
    }
  });

  it("50 normal values × 1e-25 (the report's, from numpy's default_rng(0)): forward, verify and backward at the command line", async () => {
    // the float32 values of (np.random.default_rng(0).normal(size=(1, 1, 50)) * 1e-25).astype(np.float32); rstd was 3.4410282e25 for 1.0975364e25
    const x = Float32Array.from(TESTER_X);
    const dy = Float32Array.from(randn(50, 2));
    const px = join(tmp, "tv.npy"), pdy = join(tmp, "dy.npy"), out = join(tmp, "o");
    await writeNpy(px, "float32", [1, 1, 50], x);
    await writeNpy(pdy, "float32", [1, 1, 50], dy);
    const common = ["--groups", "1", "--eps", "0", "--quiet"];
    expect(groupnorm(["forward", px, ...common, "--out-dir", out]).status).toBe(0);
    const v = groupnorm(["verify", "forward", px, ...common, "--rstd", join(out, "rstd.npy"), "--y", join(out, "Y.npy")]);
    expect(v.stderr + v.stdout).not.toMatch(/FAIL/);
    expect(v.status).toBe(0);
    expect(groupnorm(["backward", pdy, px, ...common, "--out-dir", out]).status).toBe(0);
    const vb = groupnorm(["verify", "backward", pdy, px, ...common, "--dx", join(out, "dX.npy")]);
    expect(vb.status).toBe(0);
  });
});

describe.each(["nchw", "nhwc"] as const)("%s float32: every data scale from 1 to 1e-45", (layout) => {
  // values ~ scale; dY ~ √scale keeps dX (~ dY/σ) and dgamma within float32's range at every scale
  const scales = [1, 1e-19, 1e-20, 1e-21, 1e-22, 1e-23, 1e-25, 1e-28, 1e-30, 1e-33, 1e-36, 1e-38, 1e-40, 1e-42, 1e-44, 1e-45];
  it.each([0, 1e-40])("eps = %s: forward and backward within a few ulps, 1, 2, 3 and 8 threads", async (eps) => {
    const bad: string[] = [];
    for (const { shape, G } of SHAPES[layout]) {
      const size = shape.reduce((a, b) => a * b);
      for (const s of scales) {
        for (const threads of THREADS) {
          const e = await errors(shape, G, layout, eps, "float32", threads, randn(size, 3, s), randn(size, 4, Math.sqrt(s)));
          if (worst(e) > 8) bad.push(`${shape} × ${s} (${threads} threads): ${JSON.stringify(e)}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it("dY ~ 1 down to 1e-35 (dX up to 1e35), eps = 0", async () => {
    const bad: string[] = [];
    for (const { shape, G } of SHAPES[layout]) {
      const size = shape.reduce((a, b) => a * b);
      for (const s of [1e-20, 1e-22, 1e-25, 1e-28, 1e-30, 1e-33, 1e-35]) {
        const e = await errors(shape, G, layout, 0, "float32", 1, randn(size, 5, s), randn(size, 6));
        if (worst(e) > 8) bad.push(`${shape} × ${s}: ${JSON.stringify(e)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("dY ±1e-38 that cancels exactly in every channel, on a spread of 1e-10: every product dy·(x − mean) is below float32's subnormals", async () => {
    const { shape, G } = SHAPES[layout][0];
    const size = shape.reduce((a, b) => a * b);
    const x = randn(size, 7, 1e-10);
    // ±1e-38 in pairs along the spatial axis, so that every (n, c) sums to exactly 0
    const d = groupNormDims(shape, G, layout);
    const dy = Float64Array.from({ length: size }, (_, i) => ((layout === "nchw" ? i % d.HxW : Math.floor(i / d.C) % d.HxW) % 2 ? -1e-38 : 1e-38));
    const e = await errors(shape, G, layout, 1e-30, "float32", 1, x, dy);
    expect(worst(e)).toBeLessThan(8);
  });
});

describe.each(["nchw", "nhwc"] as const)("%s float32: the same bits for 1, 2, 3 and 8 threads", (layout) => {
  it("scales 1 … 1e-40, eps = 0: forward, backward with statistics recomputed and given", async () => {
    for (const { shape, G } of SHAPES[layout]) {
      const size = shape.reduce((a, b) => a * b);
      for (const s of [1, 1e-20, 1e-22, 1e-25, 1e-28, 1e-35, 1e-40]) {
        const x = Float32Array.from(randn(size, 14, s)), dy = Float32Array.from(randn(size, 15, Math.sqrt(s)));
        const gamma = Array.from({ length: groupNormDims(shape, G, layout).C }, (_, c) => 1 + c / 7);
        let first: object | null = null;
        for (const threads of THREADS) {
          const o = { groups: G, eps: 0, layout, engine: engines[threads], gamma };
          const f = await groupNorm(x, shape, o);
          const r = { f, b: await groupNormBackward(dy, x, shape, o), bg: await groupNormBackward(dy, x, shape, { ...o, mean: f.mean, rstd: f.rstd }) };
          first ??= r;
          expect(sameBits(r, first), `${shape} × ${s}, ${threads} threads against 1`).toBe(true);
        }
      }
    }
  });
});

describe.each(["nchw", "nhwc"] as const)("%s float16 (float32 arithmetic)", (layout) => {
  it.each([0, 1e-40])("eps = %s: scales 1 … 6e-8 within an ulp of float16, statistics as float32 gives them", async (eps) => {
    const bad: string[] = [];
    for (const { shape, G } of SHAPES[layout]) {
      const size = shape.reduce((a, b) => a * b);
      for (const s of [1, 1e-2, 1e-4, 1e-5, 1e-6, 1e-7]) {
        const e = await errors(shape, G, layout, eps, "float16", 2, randn(size, 8, s), randn(size, 9));
        // float16 outputs in float16 ulps; mean and rstd are float32 outputs (float32 fast sums: a few ulps)
        if (Math.max(e.y, e.dx, e.dgamma, e.dbeta) > 1 || Math.max(e.mean, e.rstd) > 16) bad.push(`${shape} × ${s}: ${JSON.stringify(e)}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

describe.each(["nchw", "nhwc"] as const)("%s: one special group among ordinary ones", (layout) => {
  // group 0 of sample 0 replaced; the other groups' outputs must be bitwise those of a run with an
  // ordinary group 0 (NHWC: the same sample, other groups), for 1, 2, 3 and 8 threads (each run's
  // outputs bitwise those of 1 thread); group 0 against the oracle
  const kinds: { name: string; x: (v: number) => number; dy?: number }[] = [
    { name: "variance ~1e-44 (squares below float32's normals)", x: (v) => v * 1e-22 },
    { name: "spread ~1e-28, dY ~1e-14 (products below float32's normals)", x: (v) => v * 1e-28, dy: 1e-14 },
    { name: "spread ~1e-35 (float64 coefficients)", x: (v) => v * 1e-35, dy: 1e-17 },
    { name: "values ~1e20 (float32 squares overflow)", x: (v) => v * 1e20 },
    { name: "a constant group", x: () => 0.75 },
  ];
  it.each([3, 4])("D = %s", async (D) => {
    const G = 4, C = G * D, HxW = 40, N = 2;
    const shape = layout === "nchw" ? [N, C, HxW] : [N, HxW, C];
    const d = groupNormDims(shape, G, layout);
    const size = N * C * HxW;
    const chan = (i: number) => (layout === "nchw" ? Math.floor(i / HxW) % C : i % C);
    const special = (i: number) => Math.floor(i / (C * HxW)) === 0 && chan(i) < D;
    const x0 = randn(size, 10), dy0 = randn(size, 11);
    const gamma = Float64Array.from({ length: C }, (_, c) => 1 + c / 10), beta = Float64Array.from({ length: C }, (_, c) => c / 20);
    const run = async (x: Float32Array, dy: Float32Array, threads: number) => {
      const o = { groups: G, eps: 1e-5, layout, engine: engines[threads], gamma };
      return { f: await groupNorm(x, shape, { ...o, beta }), b: await groupNormBackward(dy, x, shape, o) };
    };
    const base = await run(Float32Array.from(x0), Float32Array.from(dy0), 1);
    for (const k of kinds) {
      const x = Float32Array.from(x0, (v, i) => (special(i) ? k.x(v) : v));
      const dy = Float32Array.from(dy0, (v, i) => (special(i) && k.dy ? v * k.dy : v));
      let one: Awaited<ReturnType<typeof run>> | null = null;
      for (const threads of THREADS) {
        const r = await run(x, dy, threads);
        one ??= r;
        expect(sameBits(r, one), `${k.name}, ${threads} threads against 1`).toBe(true);
        for (let i = 0; i < size; i++) {
          if (special(i)) continue;
          if (!Object.is(r.f.y[i], base.f.y[i]) || !Object.is(r.b.dx![i], base.b.dx![i])) throw new Error(`${k.name}, ${threads} threads: element ${i} changed`);
        }
        expect([...r.f.mean.slice(1)], k.name).toEqual([...base.f.mean.slice(1)]);
        expect([...r.f.rstd.slice(1)], k.name).toEqual([...base.f.rstd.slice(1)]);
        // the special group's channels take sample 0's new part; the others are bitwise as before
        expect([...r.b.dgamma!.slice(D)], k.name).toEqual([...base.b.dgamma!.slice(D)]);
        const ref = referenceForward(Float64Array.from(x), d, gamma, beta, 1e-5);
        const rb = referenceBackward(Float64Array.from(dy), Float64Array.from(x), d, gamma, ref);
        const part = (a: ArrayLike<number>) => Float64Array.from({ length: size }, (_, i) => (special(i) ? a[i] : 0));
        expect(ulps(part(r.f.y), part(ref.y), "float32"), k.name).toBeLessThan(4);
        expect(ulps(part(r.b.dx!), part(rb.dx), "float32"), k.name).toBeLessThan(4);
        expect(ulps(r.f.rstd.slice(0, 1), ref.rstd.slice(0, 1), "float32"), k.name).toBeLessThan(4);
        expect(ulps(r.b.dgamma!.slice(0, D), rb.dgamma.slice(0, D), "float32"), k.name).toBeLessThan(8);
      }
    }
  });
});

describe.each(["nchw", "nhwc"] as const)("%s float32: streamed in chunks", (layout) => {
  it("an item over the memory budget with a tiny-variance group and a float64 one beside ordinary ones: bitwise the in-memory results, and the oracle's", async () => {
    // 8 channels × 70 000 positions, 4 groups: group 1 at 1e-22, group 2 at 1e-35 (dY scaled to keep dX in range)
    const G = 4, C = 8, HxW = 70000;
    const shape = layout === "nchw" ? [1, C, HxW] : [1, HxW, C];
    const d = groupNormDims(shape, G, layout);
    const size = C * HxW;
    const chan = (i: number) => (layout === "nchw" ? Math.floor(i / HxW) : i % C);
    const sx = [1, 1e-22, 1e-35, 1], sdy = [1, 1, 1e-17, 1];
    const r0 = randn(size, 12), r1 = randn(size, 13);
    const x = Float32Array.from(r0, (v, i) => v * sx[chan(i) >> 1]);
    const dy = Float32Array.from(r1, (v, i) => v * sdy[chan(i) >> 1]);
    const gamma = [1, 2, 3, 4, 5, 6, 7, 8];
    const runs = [];
    // 1.5 MiB (forward) and 3 MiB (backward) put the item in chunks of whole units
    for (const [threads, fm, bm] of [[1], [2], [3], [8], [1, 1.5 * 2 ** 20, 3 * 2 ** 20], [2, 1.5 * 2 ** 20, 3 * 2 ** 20], [8, 1.5 * 2 ** 20, 3 * 2 ** 20]]) {
      const o = { groups: G, eps: 0, layout, engine: engines[threads] };
      runs.push({ f: await groupNorm(x, shape, { ...o, memory: fm }), b: await groupNormBackward(dy, x, shape, { ...o, gamma, memory: bm }) });
    }
    for (const r of runs.slice(1)) {
      expect(Buffer.from(r.f.y.buffer).equals(Buffer.from(runs[0].f.y.buffer))).toBe(true);
      expect([...r.f.rstd]).toEqual([...runs[0].f.rstd]);
      expect(Buffer.from(r.b.dx!.buffer).equals(Buffer.from(runs[0].b.dx!.buffer))).toBe(true);
      expect([...r.b.dgamma!]).toEqual([...runs[0].b.dgamma!]);
    }
    const ref = referenceForward(Float64Array.from(x), d, null, null, 0);
    const rb = referenceBackward(Float64Array.from(dy), Float64Array.from(x), d, gamma, ref);
    expect(ulps(runs[0].f.rstd, ref.rstd, "float32")).toBeLessThan(2);
    for (let g = 1; g <= 2; g++) {
      const part = (a: ArrayLike<number>) => Float64Array.from({ length: size }, (_, i) => (chan(i) >> 1 === g ? a[i] : 0));
      expect(ulps(part(runs[0].f.y), part(ref.y), "float32")).toBeLessThan(4);
      expect(ulps(part(runs[0].b.dx!), part(rb.dx), "float32")).toBeLessThan(4);
      expect(ulps(runs[0].b.dgamma!.slice(2 * g, 2 * g + 2), rb.dgamma.slice(2 * g, 2 * g + 2), "float32")).toBeLessThan(8);
    }
  });
});

describe.each(["nchw", "nhwc"] as const)("%s: rstd = ±∞ given to the backward", (layout) => {
  // float64 formula: x̂ = ±∞ or NaN; Σ dy·x̂ per channel (dgamma) and Σ γ·dy·x̂ per group (dX) are ±∞
  // when all their terms share a sign, else NaN
  const x = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 2, 5, 4, 6, 8, 7]);
  const cases = [
    { name: "terms of mixed signs", dy: [1, -1, 2, 0.5, -3, 1, 1, 1, 2, 1, -1, 0.25, 1, 1, -2, 3], rstd: Infinity },
    // dy = sign(x − 4.5)·γ-free magnitude: every dy·(x − mean) > 0, so dgamma and dX are ±∞
    { name: "terms of one sign", dy: x.map((v, i) => Math.sign(v - 4.5) * (1 + i / 8)), rstd: Infinity },
    { name: "rstd = −∞, one sign", dy: x.map((v, i) => Math.sign(v - 4.5) * (1 + i / 8)), rstd: -Infinity },
    { name: "a dy of 0", dy: x.map((v, i) => (i === 5 ? 0 : Math.sign(v - 4.5))), rstd: Infinity },
  ];
  it.each(["float32", "float64"] as const)("%s: dX and dgamma as the float64 formula gives them; the other group as before", async (dtype) => {
    const shape = [1, 4, 4];
    const d = groupNormDims(shape, 2, layout);
    const gamma = [1, 2, 3, 4];
    const arr = (v: ArrayLike<number>) => (dtype === "float32" ? Float32Array.from(v) : Float64Array.from(v));
    for (const c of cases) {
      const stats = { mean: [4.5, 4.5], rstd: [c.rstd, 0.5] };
      const b = await groupNormBackward(arr(c.dy), arr(x), shape, { groups: 2, layout, gamma, ...stats, engine: engines[1] });
      const rb = referenceBackward(Float64Array.from(c.dy), x, d, gamma, stats);
      const inGroup0 = (i: number) => (layout === "nchw" ? Math.floor(i / 4) : i % 4) < 2;
      for (let i = 0; i < 16; i++) {
        if (inGroup0(i)) expect(b.dx![i], `${c.name}: dx[${i}]`).toBe(rb.dx[i]);
        else expect(b.dx![i]).toBeCloseTo(rb.dx[i], 5);
      }
      expect([...b.dgamma!.slice(0, 2)], c.name).toEqual([...rb.dgamma.slice(0, 2)]);
      expect(b.dgamma![2]).toBeCloseTo(rb.dgamma[2], 5);
    }
  });
});
