// The worker pool: results bitwise identical for every thread count (whole-item and split
// schedules), and equal to the single-thread path. Uses the built worker (dist/), built in setup.
import { afterAll, describe, expect, it } from "vitest";
import { groupNormDims, type Layout } from "../src/core/dims.js";
import { Engine } from "../src/kernels/engine.js";
import { type Precision, workLayout } from "../src/kernels/plan.js";
import { splitsItems } from "../src/kernels/schedule.js";
import { referenceForward } from "../src/oracle/reference.js";
import { randn, relError } from "./helpers/random.js";

const engines = new Map<number, Engine>();
async function engine(threads: number): Promise<Engine> {
  let e = engines.get(threads);
  if (!e) {
    e = new Engine({ threads, cacheBytes: 1 << 20, pool: "always" }); // small cache: several waves in the split schedule; every job on the pool, however small
    await e.ready();
    engines.set(threads, e);
  }
  return e;
}
afterAll(async () => {
  for (const e of engines.values()) await e.close();
});

async function run(threads: number, shape: number[], G: number, layout: Layout, precision: Precision) {
  const e = await engine(threads);
  const d = groupNormDims(shape, G, layout);
  const n = shape.reduce((a, b) => a * b, 1);
  const eb = precision === "f32" ? 4 : 8;
  const x = randn(n, 11, 2, 0.5), dy = randn(n, 12);
  const gamma = randn(d.C, 13, 0.5, 1), beta = randn(d.C, 14);
  const mark = e.arena.used;
  try {
    const px = e.arena.alloc(n * eb), py = e.arena.alloc(n * eb), pdy = e.arena.alloc(n * eb), pdx = e.arena.alloc(n * eb);
    const view = (p: number) => (precision === "f32" ? e.arena.f32(p, n) : e.arena.f64(p, n));
    view(px).set(x);
    view(pdy).set(dy);
    const geo = { ...d, precision };
    const f = await e.forward(geo, 1e-5, px, py, gamma, beta);
    const b = await e.backward(geo, 1e-5, { dy: pdy, x: px, dx: pdx }, gamma, null);
    const bytes = (p: number) => Buffer.from(new Uint8Array(e.memory.buffer as ArrayBuffer, p, n * eb));
    return { y: bytes(py), dx: bytes(pdx), mean: f.mean, rstd: f.rstd, ds: b.ds, db: b.db, yValues: Float64Array.from(view(py)), x: Float64Array.from(view(px)), d, gamma, beta };
  } finally {
    e.arena.release(mark);
  }
}

const cases: Array<[string, number[], number, Layout]> = [
  ["many items (whole-item schedule)", [4, 8, 33, 9], 4, "nchw"],
  ["N = 1, G = 1 (split schedule)", [1, 6, 150, 140], 1, "nchw"],
  ["N = 3, G = 1 (split)", [3, 4, 70, 70], 1, "nchw"],
  ["NHWC many samples", [8, 9, 11, 12], 3, "nhwc"],
  ["NHWC D = 16 (grouped kernels), dX in reverse chunks", [4, 70, 70, 32], 2, "nhwc"],
  ["NHWC N = 1 (split)", [1, 300, 300, 8], 2, "nhwc"],
  ["NHWC N = 3, odd C (split)", [3, 37, 41, 6], 2, "nhwc"],
  ["NHWC N = 3, D = 4: pipelined samples on 1 thread, split on 2 and 3", [3, 20, 21, 8], 2, "nhwc"],
  ["NCHW N = 5, G = 1: whole items on 1 thread, split on 2 and 3", [5, 3, 40, 40], 1, "nchw"],
];

describe.each(["f32", "f64"] as Precision[])("%s: bitwise identical for 1, 2 and 3 threads", (precision) => {
  it.each(cases)("%s", async (_name, shape, G, layout) => {
    const one = await run(1, shape, G, layout, precision);
    const ref = referenceForward(one.x, one.d, one.gamma, one.beta, 1e-5);
    expect(relError(one.yValues, ref.y)).toBeLessThan(precision === "f32" ? 3e-6 : 1e-12);
    for (const threads of [2, 3]) {
      const other = await run(threads, shape, G, layout, precision);
      expect(other.y.equals(one.y), `Y with ${threads} threads`).toBe(true);
      expect(other.dx.equals(one.dx), `dX with ${threads} threads`).toBe(true);
      expect(Array.from(other.mean)).toEqual(Array.from(one.mean));
      expect(Array.from(other.rstd)).toEqual(Array.from(one.rstd));
      expect(Array.from(other.ds)).toEqual(Array.from(one.ds));
      expect(Array.from(other.db)).toEqual(Array.from(one.db));
    }
  });
});

it("the split schedule is really exercised by the cases above", async () => {
  const e = await engine(2);
  expect(e.threads).toBe(2);
  expect(e.poolStarted).toBe(true);
  const job = (shape: number[], G: number, layout: Layout) => {
    const geo = { ...groupNormDims(shape, G, layout), precision: "f32" as const };
    return { ...geo, work: workLayout(geo) } as never;
  };
  expect(splitsItems(job([1, 6, 150, 140], 1, "nchw"), 2)).toBe(true);
  expect(splitsItems(job([1, 300, 300, 8], 2, "nhwc"), 2)).toBe(true);
  expect(splitsItems(job([4, 8, 33, 9], 4, "nchw"), 2)).toBe(false);
});

// A dispatch is a new generation, not a wake-up. The main thread bumps CTL.GEN and then notifies;
// a thread that was still awake sees the new GEN at once, runs the job, and can be asleep again
// (on that GEN) when the notify arrives. Taken as a dispatch, that late notify made it rerun the
// job and count itself done twice while the main thread read the results and reused the scratch:
// about 1 backward in 10,000 gave a wrong dX (in place over dY, so the rerun read dX as dY).
describe("a late or stray notify on the dispatch generation runs nothing", () => {
  const shape = [2, 4, 3, 3], G = 2, n = 72;
  const geo = { ...groupNormDims(shape, G, "nchw"), precision: "f64" as Precision };
  const x = randn(n, 21, 2, 0.75), dy = randn(n, 22), gamma = randn(4, 23, 0.5, 1);

  /** One backward with dX over dY (not idempotent: a second run of the same job reads dX). */
  async function inPlace(e: Engine, check?: (pdy: number) => Promise<void>): Promise<number[]> {
    const mark = e.arena.used;
    try {
      const px = e.arena.alloc(n * 8), pdy = e.arena.alloc(n * 8);
      e.arena.f64(px, n).set(x);
      e.arena.f64(pdy, n).set(dy);
      const b = await e.backward(geo, 1e-5, { dy: pdy, x: px, dx: pdy }, gamma, null);
      await check?.(pdy);
      return [...e.arena.f64(pdy, n), ...b.ds, ...b.db, ...b.mean, ...b.rstd];
    } finally {
      e.arena.release(mark);
    }
  }

  it("many tiny back-to-back jobs on a shared engine are bitwise the 1-thread results", async () => {
    const want = await inPlace(await engine(1));
    // more threads than this machine may have cores: a main thread preempted between bumping GEN
    // and notifying is what let the race show
    for (const threads of [2, 4]) {
      const e = await engine(threads);
      let bad = 0, runs = 0;
      for (const t0 = Date.now(); Date.now() - t0 < 1500; runs++) {
        const got = await inPlace(e);
        if (got.some((v, i) => !Object.is(v, want[i]))) bad++;
      }
      expect(bad, `${bad} of ${runs} runs with ${threads} threads differ`).toBe(0);
    }
  }, 20000);
});
