// Interleaved groups (channel c in group c mod G) in the kernels: the production path against the
// float64 oracle, both layouts and precisions, every work layout (multi-channel units, blocks of a
// long run, row units), the float64 fallbacks, the variance kept; and bitwise for 1, 2 and 3 threads.
import { afterAll, describe, expect, it } from "vitest";
import { type Dims, groupNormDims, type Layout } from "../src/core/dims.js";
import { Engine } from "../src/kernels/engine.js";
import { type Precision, workLayout } from "../src/kernels/plan.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { randn, relError } from "./helpers/random.js";

const engines = new Map<number, Engine>();
async function engine(threads: number): Promise<Engine> {
  let e = engines.get(threads);
  if (!e) {
    e = new Engine({ threads, cacheBytes: 1 << 20, pool: "always" });
    await e.ready();
    engines.set(threads, e);
  }
  return e;
}
afterAll(async () => {
  for (const e of engines.values()) await e.close();
});

const stored = (v: Float64Array, p: Precision) => (p === "f32" ? Float64Array.from(Float32Array.from(v)) : v);

interface Inputs {
  x: Float64Array;
  dy: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
}

function inputs(d: Dims, precision: Precision, seed: number, fx?: (x: Float64Array) => void): Inputs {
  const n = d.N * d.C * d.HxW;
  const x = randn(n, seed, 1.5, 0.3);
  fx?.(x);
  return { x: stored(x, precision), dy: stored(randn(n, seed + 1), precision), gamma: randn(d.C, seed + 2, 0.5, 1), beta: randn(d.C, seed + 3) };
}

async function run(threads: number, d: Dims, precision: Precision, v: Inputs) {
  const e = await engine(threads);
  const n = d.N * d.C * d.HxW, eb = precision === "f32" ? 4 : 8;
  const mark = e.arena.used;
  try {
    const px = e.arena.alloc(n * eb), py = e.arena.alloc(n * eb), pdy = e.arena.alloc(n * eb), pdx = e.arena.alloc(n * eb);
    const view = (p: number) => (precision === "f32" ? e.arena.f32(p, n) : e.arena.f64(p, n));
    view(px).set(v.x);
    view(pdy).set(v.dy);
    const geo = { ...d, precision };
    const f = await e.forward(geo, 1e-5, px, py, v.gamma, v.beta, { variance: true });
    const b = await e.backward(geo, 1e-5, { dy: pdy, x: px, dx: pdx }, v.gamma, null);
    return { y: Float64Array.from(view(py)), dx: Float64Array.from(view(pdx)), ...f, ds: b.ds, db: b.db };
  } finally {
    e.arena.release(mark);
  }
}

const dimsOf = (shape: number[], G: number, layout: Layout): Dims => ({ ...groupNormDims(shape, G, layout), interleaved: true });

function dgammaOf(d: Dims, rstd: Float64Array, ds: Float64Array): Float64Array {
  const out = new Float64Array(d.C);
  for (let n = 0; n < d.N; n++) for (let c = 0; c < d.C; c++) out[c] += rstd[n * d.G + (c % d.G)] * ds[n * d.C + c];
  return out;
}

const shapes: Array<[string, number[], number, Layout]> = [
  ["NCHW, several channels per unit", [2, 12, 5, 6], 4, "nchw"],
  ["NCHW (N, C)", [3, 8], 2, "nchw"],
  ["NCHW, runs in blocks (HxW > 65536)", [1, 4, 300, 300], 2, "nchw"],
  ["NCHW, odd sizes", [2, 6, 33, 41], 3, "nchw"],
  ["NHWC, D = 8", [2, 7, 5, 32], 4, "nhwc"],
  ["NHWC, odd C", [3, 9, 11, 15], 5, "nhwc"],
  ["NHWC, several row units", [2, 150, 150, 16], 4, "nhwc"],
];

describe.each(["f32", "f64"] as Precision[])("%s interleaved against the oracle", (precision) => {
  const tol = precision === "f32" ? 2e-6 : 1e-12;
  it.each(shapes)("%s", async (_name, shape, G, layout) => {
    const d = dimsOf(shape, G, layout);
    expect(workLayout({ ...d, precision }).samples).toBe(true);
    const v = inputs(d, precision, 5);
    const r = await run(1, d, precision, v);
    const ref = referenceForward(v.x, d, v.gamma, v.beta, 1e-5);
    const rb = referenceBackward(v.dy, v.x, d, v.gamma, ref);
    expect(relError(r.y, ref.y)).toBeLessThan(tol);
    expect(relError(r.mean, ref.mean)).toBeLessThan(tol);
    expect(relError(r.rstd, ref.rstd)).toBeLessThan(tol);
    expect(relError(r.variance!, ref.variance)).toBeLessThan(tol);
    expect(relError(r.dx, rb.dx)).toBeLessThan(precision === "f32" ? 2e-5 : 1e-11);
    expect(relError(dgammaOf(d, r.rstd, r.ds), rb.dgamma)).toBeLessThan(precision === "f32" ? 2e-5 : 1e-11);
    // rstd comes from the variance kept: exactly, in float64
    for (let g = 0; g < r.rstd.length; g++) expect(r.rstd[g]).toBe(1 / Math.sqrt(r.variance![g] + 1e-5));
  });
});

describe("float32 groups that need float64 (interleaved)", () => {
  // group 1's channels (1, 1 + G, …) ill-conditioned (mean 3e4, spread 1e-3) and group 2's with a
  // variance among the subnormals: the float64 fallbacks for those groups only
  const shaped: Array<[string, number[], number, Layout]> = [
    ["NCHW", [2, 12, 7, 9], 4, "nchw"],
    ["NHWC", [2, 7, 9, 12], 4, "nhwc"],
  ];
  it.each(shaped)("%s: the other groups keep their fast-loop bits, and the extreme ones are exact", async (_name, shape, G, layout) => {
    const d = dimsOf(shape, G, layout);
    const plain = inputs(d, "f32", 9);
    const odd = inputs(d, "f32", 9, (x) => {
      for (let n = 0; n < d.N; n++)
        for (let c = 0; c < d.C; c++)
          for (let s = 0; s < d.HxW; s++) {
            const i = layout === "nchw" ? (n * d.C + c) * d.HxW + s : (n * d.HxW + s) * d.C + c;
            if (c % G === 1) x[i] = 3e4 + 1e-3 * x[i];
            if (c % G === 2) x[i] = 1e-35 * x[i];
          }
    });
    const a = await run(1, d, "f32", plain), b = await run(1, d, "f32", odd);
    const ref = referenceForward(odd.x, d, odd.gamma, odd.beta, 0 + 1e-5);
    const rb = referenceBackward(odd.dy, odd.x, d, odd.gamma, ref);
    for (let n = 0; n < d.N; n++)
      for (let c = 0; c < d.C; c++)
        for (let s = 0; s < d.HxW; s++) {
          const i = layout === "nchw" ? (n * d.C + c) * d.HxW + s : (n * d.HxW + s) * d.C + c;
          if (c % G === 0 || c % G === 3) {
            expect(b.y[i]).toBe(a.y[i]);
            expect(b.dx[i]).toBe(a.dx[i]);
          } else {
            expect(Math.abs(b.y[i] - ref.y[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.y[i])));
          }
        }
    expect(relError(b.dx, rb.dx)).toBeLessThan(1e-4);
  });
});

describe("bitwise identical for 1, 2 and 3 threads (interleaved)", () => {
  const cases: Array<[string, number[], number, Layout]> = [
    ["NCHW many samples", [6, 8, 33, 9], 4, "nchw"],
    ["NCHW N = 1 (split)", [1, 6, 150, 140], 3, "nchw"],
    ["NHWC N = 1 (split)", [1, 200, 200, 8], 2, "nhwc"],
    ["NHWC N = 3", [3, 37, 41, 12], 3, "nhwc"],
  ];
  it.each(cases)("%s", async (_name, shape, G, layout) => {
    for (const precision of ["f32", "f64"] as Precision[]) {
      const d = dimsOf(shape, G, layout);
      const v = inputs(d, precision, 21);
      const one = await run(1, d, precision, v);
      for (const threads of [2, 3]) {
        const r = await run(threads, d, precision, v);
        for (const k of ["y", "dx", "mean", "rstd", "variance", "ds", "db"] as const) expect(Buffer.from(r[k]!.buffer).equals(Buffer.from(one[k]!.buffer)), `${k}, ${precision}, ${threads} threads`).toBe(true);
      }
    }
  });
});
