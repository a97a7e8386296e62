// The production path (WebAssembly kernels on the inline runner) against the float64 oracle.
import { afterAll, describe, expect, it } from "vitest";
import { type Dims, groupNormDims, type Layout } from "../src/core/dims.js";
import { Engine } from "../src/kernels/engine.js";
import { createSharedMemory, instantiateKernels } from "../src/kernels/wasm.js";
import type { Precision } from "../src/kernels/plan.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { randn, relError } from "./helpers/random.js";

const engine = new Engine();
afterAll(() => engine.close());

function place(values: Float64Array, precision: Precision): number {
  const bytes = precision === "f32" ? 4 : 8;
  const ptr = engine.arena.alloc(values.length * bytes);
  if (precision === "f32") engine.arena.f32(ptr, values.length).set(values);
  else engine.arena.f64(ptr, values.length).set(values);
  return ptr;
}

function read(ptr: number, n: number, precision: Precision): Float64Array {
  return Float64Array.from(precision === "f32" ? engine.arena.f32(ptr, n) : engine.arena.f64(ptr, n));
}

/** Rounds values to what the precision stores, so the oracle sees the same inputs. */
function stored(values: Float64Array, precision: Precision): Float64Array {
  return precision === "f32" ? Float64Array.from(Float32Array.from(values)) : values;
}

async function runBoth(shape: number[], G: number, layout: Layout, precision: Precision, opts: { offset?: number; scale?: number; dyScale?: number; affine?: boolean } = {}) {
  const d: Dims = groupNormDims(shape, G, layout);
  const n = shape.reduce((a, b) => a * b, 1);
  const x = stored(randn(n, 1, opts.scale ?? 1.5, opts.offset ?? 0.3), precision);
  const dy = stored(randn(n, 2, opts.dyScale ?? 1), precision);
  const affine = opts.affine ?? true;
  const gamma = affine ? randn(d.C, 3, 0.5, 1) : null;
  const beta = affine ? randn(d.C, 4) : null;
  const geo = { ...d, precision };
  const mark = engine.arena.used;
  try {
    const px = place(x, precision), py = engine.arena.alloc(n * 8), pdy = place(dy, precision), pdx = engine.arena.alloc(n * 8);
    const f = await engine.forward(geo, 1e-5, px, py, gamma, beta);
    const b = await engine.backward(geo, 1e-5, { dy: pdy, x: px, dx: pdx }, gamma, null);
    const ref = referenceForward(x, d, gamma, beta, 1e-5);
    const rb = referenceBackward(dy, x, d, gamma, ref);
    const dgamma = new Float64Array(d.C), dbeta = new Float64Array(d.C);
    for (let i = 0; i < d.N; i++)
      for (let c = 0; c < d.C; c++) {
        dgamma[c] += b.rstd[i * d.G + Math.floor(c / d.D)] * b.ds[i * d.C + c];
        dbeta[c] += b.db[i * d.C + c];
      }
    return {
      y: relError(read(py, n, precision), ref.y),
      mean: relError(f.mean, ref.mean),
      rstd: relError(f.rstd, ref.rstd),
      dx: relError(read(pdx, n, precision), rb.dx),
      dgamma: relError(dgamma, rb.dgamma),
      dbeta: relError(dbeta, rb.dbeta),
    };
  } finally {
    engine.arena.release(mark);
  }
}

const shapes: Array<[number[], number]> = [
  [[2, 6], 2], // M = 3: G = 3 would give M = 2, where dx vanishes exactly and only rounding noise is left
  [[3, 8, 7], 2],
  [[2, 12, 5, 6], 4],
  [[2, 4, 3, 2, 3], 2],
  [[1, 4, 2, 2, 2, 3], 4],
  [[2, 6, 3, 3], 1],
  [[2, 6, 3, 3], 6],
  [[1, 2, 300, 300], 2], // more than one block per channel run (HxW > BLOCK)
  [[2, 3, 33, 41], 3], // odd sizes, SIMD tails
  [[2, 32, 7, 5], 4], // D = 8: NHWC per-group statistics path
  [[3, 20, 40, 1], 5], // D = 4, 40 rows: several row strips
  [[2, 48, 5, 7], 3], // D = 16: NHWC grouped kernels, four vectors at a time
  [[2, 96, 9, 4], 2], // D = 48
  [[2, 16, 150, 150], 4], // NHWC: two units of rows, their input backward in reverse chunks with a short last one
  [[2, 32, 100, 100], 2], // the same with D = 16
];

describe.each(["f32", "f64"] as Precision[])("%s kernels against the oracle", (precision) => {
  const tol = precision === "f32" ? 3e-6 : 1e-12;
  for (const layout of ["nchw", "nhwc"] as Layout[]) {
    for (const [shape0, G] of shapes) {
      const shape = layout === "nchw" ? shape0 : [shape0[0], ...shape0.slice(2), shape0[1]];
      it(`${layout} ${JSON.stringify(shape)} G=${G}`, async () => {
        const e = await runBoth(shape, G, layout, precision);
        for (const [k, v] of Object.entries(e)) expect(v, k).toBeLessThan(tol);
      });
    }
    it(`${layout} ill-conditioned (mean 1000, std 0.01)`, async () => {
      for (const G of [4, 2]) {
        const shape = layout === "nchw" ? [2, 8, 16, 16] : [2, 16, 16, 8];
        const e = await runBoth(shape, G, layout, precision, { offset: layout === "nchw" ? 1000 : 3000, scale: 0.01 });
        for (const [k, v] of Object.entries(e)) expect(v, k).toBeLessThan(precision === "f32" ? 3e-5 : 1e-9);
      }
    });
    it(`${layout} huge values (float32 squares overflow: the float64-accumulating fallback)`, async () => {
      const shape = layout === "nchw" ? [2, 8, 9, 9] : [2, 9, 9, 8];
      const e = await runBoth(shape, 2, layout, precision, { offset: 3e20, scale: 1e20 });
      for (const [k, v] of Object.entries(e)) {
        expect(Number.isFinite(v), k).toBe(true);
        expect(v, k).toBeLessThan(precision === "f32" ? 3e-5 : 1e-9);
      }
    });
    it(`${layout} huge values and gradients (float32 Σ dy·x overflows: the float64-accumulating fallback)`, async () => {
      const shape = layout === "nchw" ? [2, 8, 9, 9] : [2, 9, 9, 8];
      const e = await runBoth(shape, 2, layout, precision, { offset: 3e20, scale: 1e20, dyScale: 1e20 });
      for (const [k, v] of Object.entries(e)) {
        expect(Number.isFinite(v), k).toBe(true);
        expect(v, k).toBeLessThan(precision === "f32" ? 3e-5 : 1e-9);
      }
    });
    it(`${layout} without affine`, async () => {
      const shape = layout === "nchw" ? [2, 6, 4, 5] : [2, 4, 5, 6];
      const e = await runBoth(shape, 3, layout, precision, { affine: false });
      for (const [k, v] of Object.entries(e)) expect(v, k).toBeLessThan(tol);
    });
  }
});

describe("NHWC float32 grouped kernels (D a multiple of 4)", () => {
  // norm_rows_g_f32 and dx_rows_g_f32 load a group's constants once; they must give bitwise the
  // results of the per-channel norm_rows_f32 and dx_rows_f32.
  const memory = createSharedMemory(128);
  const k = instantiateKernels(memory);
  const f32 = new Float32Array(memory.buffer);
  const DY = 1 << 16, X = 1 << 20, OUT = 1 << 21, OUT2 = 1 << 22, COEF = 1 << 12;
  for (const [C, D, rows] of [[16, 4, 70], [24, 8, 33], [36, 12, 5], [64, 16, 70], [96, 32, 1], [96, 48, 40]]) {
    it(`C=${C} D=${D} ${rows} rows`, () => {
      const n = rows * C;
      f32.set(Float32Array.from(randn(n, 7, 2)), DY / 4);
      f32.set(Float32Array.from(randn(n, 8, 3, 0.7)), X / 4);
      // A per channel; B, C0 and m per group (the same value at each of a group's channels)
      const grp = randn(3 * (C / D), 9);
      const coef = new Float32Array(4 * C);
      coef.set(Float32Array.from(randn(C, 10)), 0);
      for (let c = 0; c < C; c++) for (let p = 1; p < 4; p++) coef[p * C + c] = grp[(p - 1) * (C / D) + Math.floor(c / D)];
      f32.set(coef, COEF / 4);
      // forward: m per group (the first array), a and b per channel
      k.norm_rows_f32(X, OUT, rows, C, COEF + 4 * C);
      k.norm_rows_g_f32(X, OUT2, rows, C, D, COEF + 4 * C);
      expect(Array.from(f32.subarray(OUT2 / 4, OUT2 / 4 + n))).toEqual(Array.from(f32.subarray(OUT / 4, OUT / 4 + n)));
      k.dx_rows_f32(DY, X, OUT, rows, C, COEF);
      k.dx_rows_g_f32(DY, X, OUT2, rows, C, D, COEF);
      expect(Array.from(f32.subarray(OUT2 / 4, OUT2 / 4 + n))).toEqual(Array.from(f32.subarray(OUT / 4, OUT / 4 + n)));
    });
  }
});
