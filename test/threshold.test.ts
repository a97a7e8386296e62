// Issue #18: one thread or the pool. An engine of several threads ("auto") computes the work a
// single thread finishes sooner on the calling thread and starts its worker threads only for work
// large enough (POOL_START_BYTES, POOL_JOB_BYTES); results are bitwise those of the pool either way.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { groupNormDims, type Layout } from "../src/core/dims.js";
import { writeNpy } from "../src/io/npy/index.js";
import { Engine, POOL_JOB_BYTES, POOL_START_BYTES } from "../src/kernels/engine.js";
import { RECORD, SCAN_BLOCK, type ScanParams } from "../src/kernels/scan.js";
import type { Precision } from "../src/kernels/plan.js";
import { groupnorm, traced } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";

const tmp = mkdtempSync(join(tmpdir(), "groupnorm-threshold-"));
const engines: Engine[] = [];
const engine = (o: ConstructorParameters<typeof Engine>[0]) => {
  const e = new Engine(o);
  engines.push(e);
  return e;
};
afterAll(async () => {
  for (const e of engines) await e.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Forward then backward (dX over dY, stats recomputed) of one tensor; every output's bytes. */
async function both(e: Engine, shape: number[], G: number, layout: Layout, precision: Precision, seed = 1) {
  const d = groupNormDims(shape, G, layout);
  const n = shape.reduce((a, b) => a * b, 1), eb = precision === "f32" ? 4 : 8;
  const mark = e.arena.used;
  try {
    const px = e.arena.alloc(n * eb), py = e.arena.alloc(n * eb), pdy = e.arena.alloc(n * eb);
    const view = (p: number) => (precision === "f32" ? e.arena.f32(p, n) : e.arena.f64(p, n));
    view(px).set(randn(n, seed, 2, 0.5));
    view(pdy).set(randn(n, seed + 1));
    const gamma = randn(d.C, seed + 2, 0.5, 1), beta = randn(d.C, seed + 3);
    const geo = { ...d, precision };
    e.resetUse();
    const f = await e.forward(geo, 1e-5, px, py, gamma, beta);
    const b = await e.backward(geo, 1e-5, { dy: pdy, x: px, dx: pdy }, gamma, null);
    const bytes = (p: number) => Buffer.from(new Uint8Array(e.memory.buffer as ArrayBuffer, p, n * eb));
    const f64 = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    return { threads: e.threadsUsed, out: [bytes(py), bytes(pdy), ...[f.mean, f.rstd, b.mean, b.rstd, b.ds, b.db].map(f64)] };
  } finally {
    e.arena.release(mark);
  }
}

/** A summary scan (info's) of n float32 values in the arena, on `e`: the threads it took. */
async function scanned(e: Engine, n: number): Promise<number> {
  const mark = e.arena.used;
  try {
    const a = e.arena.alloc(n * 4), out = e.arena.alloc(Math.ceil(n / SCAN_BLOCK) * RECORD * 8);
    e.arena.f32(a, n).set(randn(n, 3));
    e.resetUse();
    await e.scan({ op: 0 as ScanParams["op"], a, da: 0 as ScanParams["da"], b: 0, db: 0 as ScanParams["db"], n, out, atol: 0, rtol: 0, scratch: 0 }, n * 4);
    return e.threadsUsed;
  } finally {
    e.arena.release(mark);
  }
}

describe("scans on pool \"always\" and \"auto\"", () => {
  it("\"always\": a scan made as the engine starts waits for its threads and runs on them; \"auto\": on the calling thread", async () => {
    expect(await scanned(engine({ threads: 2, pool: "always" }), 4 * SCAN_BLOCK)).toBe(2);
    const auto = engine({ threads: 2 });
    expect(await scanned(auto, 4 * SCAN_BLOCK)).toBe(1);
    expect(auto.poolStarted).toBe(false);
  });
  it("a pool thread that fails fails the scan (it ran on the calling thread before the pool was up, and passed)", async () => {
    await expect(scanned(engine({ threads: 2, fault: "exit" }), 4 * SCAN_BLOCK)).rejects.toThrow(/worker thread 0/);
  });
});

describe("an engine of 2 threads, pool \"auto\"", () => {
  it("a tiny job runs on the calling thread and starts no worker threads; the same bits as on the pool", async () => {
    const auto = engine({ threads: 2 }), pool = engine({ threads: 2, pool: "always" });
    for (const [shape, G, layout, precision] of [[[2, 6, 5, 5], 3, "nchw", "f32"], [[3, 4, 7, 8], 2, "nhwc", "f64"], [[1, 4, 300, 30], 1, "nchw", "f32"]] as const) {
      const a = await both(auto, [...shape], G, layout, precision);
      const p = await both(pool, [...shape], G, layout, precision);
      expect(a.threads, `${shape}`).toBe(1);
      expect(p.threads, `${shape}`).toBe(2);
      a.out.forEach((buf, i) => expect(buf.equals(p.out[i]), `${shape}: output ${i}`).toBe(true));
    }
    expect(auto.poolStarted).toBe(false);
    expect(auto.workerPool).toBe(null);
  });

  it("jobs of POOL_JOB_BYTES start the pool once they add up to POOL_START_BYTES, and then run on it, bitwise as before", async () => {
    const auto = engine({ threads: 2 });
    const n = POOL_JOB_BYTES / 4, shape = [4, 16, n / 64];
    const geo = { ...groupNormDims(shape, 4, "nchw"), precision: "f32" as const };
    const px = auto.arena.alloc(n * 4), py = auto.arena.alloc(n * 4);
    auto.arena.f32(px, n).set(randn(n, 9, 2, 0.5));
    const y = () => Buffer.from(new Uint8Array(auto.memory.buffer as ArrayBuffer, py, n * 4));
    const jobs = POOL_START_BYTES / POOL_JOB_BYTES;
    let first: Buffer | null = null, firstStats: number[] = [];
    for (let k = 1; k <= jobs; k++) {
      auto.resetUse();
      const r = await auto.forward(geo, 1e-5, px, py, null, null);
      expect(auto.threadsUsed, `job ${k}`).toBe(k < jobs ? 1 : 2);
      expect(auto.poolStarted, `job ${k}`).toBe(k === jobs);
      if (!first) [first, firstStats] = [Buffer.from(y()), [...r.mean, ...r.rstd]];
      else if (k === jobs) {
        expect(y().equals(first)).toBe(true);
        expect([...r.mean, ...r.rstd]).toEqual(firstStats);
      }
    }
  }, 120_000);

  it("expect() of a large run starts the pool; jobs then take it only from POOL_JOB_BYTES up", async () => {
    const auto = engine({ threads: 2 });
    auto.expect(POOL_START_BYTES - 1, POOL_JOB_BYTES);
    expect(auto.poolStarted).toBe(false);
    auto.expect(POOL_START_BYTES, POOL_JOB_BYTES - 1); // a large run in jobs too small for the pool
    expect(auto.poolStarted).toBe(false);
    auto.expect(POOL_START_BYTES, POOL_JOB_BYTES);
    expect(auto.poolStarted).toBe(true);
    await auto.ready();
    const small = await both(auto, [2, 8, 64, 8], 4, "nchw", "f32"); // 32 KiB
    expect(small.threads).toBe(1);
    const under = await both(auto, [4, 16, (POOL_JOB_BYTES - 4096) / (4 * 16 * 4)], 4, "nchw", "f32"); // a forward just under POOL_JOB_BYTES
    expect(under.threads).toBe(2); // ran here; its backward (dY and X, twice the bytes) on the pool
    const job = [4, 16, POOL_JOB_BYTES / (4 * 16 * 4)]; // forward POOL_JOB_BYTES
    const large = await both(auto, job, 4, "nchw", "f32");
    expect(large.threads).toBe(2);
  }, 60_000);

  it("useThreads is checked against the most threads", () => {
    const auto = engine({ threads: 2 });
    expect(() => auto.useThreads(3)).toThrow(/1 to 2/);
    expect(() => engine({ threads: 1 }).useThreads(2)).toThrow(/single-thread/);
  });
});

describe("the command line", () => {
  it("a fixture-sized forward and backward with --threads 2 start no worker threads, and report 1 thread", async () => {
    const x = join(tmp, "x.npy"), dy = join(tmp, "dy.npy");
    await writeNpy(x, "float32", [2, 8, 4, 4], randn(256, 3));
    await writeNpy(dy, "float32", [2, 8, 4, 4], randn(256, 4));
    for (const args of [["forward", x], ["backward", dy, x]]) {
      const r = traced([...args, "--groups", "4", "--threads", "2", "--out-dir", join(tmp, "o"), "--json"]);
      expect(r.status).toBe(0);
      expect(r.files).toContain("lib"); // the engine loaded
      expect(r.files).not.toContain("pool"); // the pool (and so its workers) never did
      expect(JSON.parse(r.stdout).threads).toBe(1);
    }
    const always = traced(["forward", x, "--groups", "4", "--threads", "2", "--out-dir", join(tmp, "o"), "--json"], { GROUPNORM_POOL: "always" });
    expect(always.files).toContain("pool"); // the check above would see a pool that started
  });

  it("GROUPNORM_POOL=always computes the same bytes on the pool", async () => {
    const x = join(tmp, "x2.npy");
    await writeNpy(x, "float32", [3, 8, 5, 5], randn(600, 5, 2, 0.5));
    const outs = ["a", "b"].map((d) => join(tmp, d));
    const a = groupnorm(["forward", x, "--groups", "2", "--threads", "2", "--out-dir", outs[0], "--json"]);
    const b = groupnorm(["forward", x, "--groups", "2", "--threads", "2", "--out-dir", outs[1], "--json"], { env: { GROUPNORM_POOL: "always" } });
    expect([a.status, b.status]).toEqual([0, 0]);
    expect([JSON.parse(a.stdout).threads, JSON.parse(b.stdout).threads]).toEqual([1, 2]);
    for (const f of ["Y.npy", "mean.npy", "rstd.npy"]) expect(readFileSync(join(outs[0], f)).equals(readFileSync(join(outs[1], f))), f).toBe(true);
  });
});
