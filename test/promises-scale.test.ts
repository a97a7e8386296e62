// Issue #14, the memory budget at scale: planning is arithmetic (no list as long as the tensor, so an
// 8 TiB input starts at once, streams in bounded memory and ends promptly on SIGTERM), what grows with
// a huge group is bounded or counted, side files are counted by their header before any of their
// data is read, and a refusal names the file and what needs the memory, with the --memory that would
// do. Every input here is a sparse file: a header and a hole, so any size costs no disk.
import { type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/kernels/engine.js";
import { WORKER_HEAP } from "../src/kernels/pool/pool.js";
import { encodeNpyHeader } from "../src/io/npy/index.js";
import { type Ran, run, until } from "./helpers/spawn.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-scale-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const P = (f: string) => join(dir, f);
const MiB = 2 ** 20;
/** What Node, the tool and its two worker threads take before any tensor; budgets are on top of it. */
const BASE = 160 * MiB;
const DEFAULT_BUDGET = 384 * MiB;

/** A .npy file of `shape` float32 (C order unless `fortran`) whose data is a hole. */
function sparse(name: string, shape: number[], fortran = false): string {
  let header = encodeNpyHeader("float32", shape);
  if (fortran) {
    const text = `{'descr': '<f4', 'fortran_order': True, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
    const pad = 64 - ((10 + text.length + 1) % 64);
    const len = text.length + pad + 1;
    header = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, len & 0xff, len >> 8]), Buffer.from(text), Buffer.alloc(pad, 0x20), Buffer.from("\n")]);
  }
  writeFileSync(P(name), header);
  truncateSync(P(name), header.length + 4 * shape.reduce((a, b) => a * b, 1));
  return P(name);
}

/** Bytes of data in the temporary of output `name` (e.g. "Y.npy") in `out`; -1 while there is no temporary. */
function tmpBytes(out: string, name: string): number {
  try {
    const t = readdirSync(out).find((f) => f.startsWith(`.${name}.`) && f.endsWith(".tmp"));
    return t ? statSync(join(out, t)).size - 128 : -1;
  } catch {
    return -1;
  }
}

interface Streamed extends Ran {
  /** Seconds from the start to the awaited state of the output (Infinity: not before the deadline). */
  started: number;
  /** Seconds from SIGTERM to the process's end. */
  afterSignal: number;
}

/**
 * Run `args` until the temporary of `output` exists (the run is planned and its outputs created) or,
 * with `data`, has data in it; let it run for `streamMs` more, then SIGTERM it. A run that gets there
 * not within `startMs` is killed (SIGKILL) and reported with started = Infinity.
 */
async function streamThenTerm(args: string[], out: string, output: string, streamMs: number, o: { data: boolean; startMs?: number }): Promise<Streamed> {
  const t0 = Date.now();
  const startMs = o.startMs ?? 10_000;
  let started = Infinity, termAt = 0;
  const r = await run([...args, "--out-dir", out], {
    timeout: startMs + streamMs + 10_000,
    with: (child: ChildProcess) => {
      void (async () => {
        if (await until(() => tmpBytes(out, output) > (o.data ? 0 : -1), startMs)) {
          started = (Date.now() - t0) / 1000;
          await new Promise((res) => setTimeout(res, streamMs));
        }
        termAt = Date.now();
        child.kill(Number.isFinite(started) ? "SIGTERM" : "SIGKILL");
      })();
    },
  });
  return { ...r, started, afterSignal: (t0 + r.seconds * 1000 - termAt) / 1000 };
}

const INTERRUPTED = "groupnorm: interrupted by SIGTERM: no output written (the partial files are removed)\n";

function expectStreamedAndInterrupted(r: Streamed, out: string, peakBelow: number): void {
  expect(r.started, r.stderr).toBeLessThan(5); // planning takes no time however many slices there are, nor the first slices
  expect(r.signal).toBe("SIGTERM");
  expect(r.stderr).toBe(INTERRUPTED);
  expect(r.afterSignal).toBeLessThan(2);
  expect(existsSync(out)).toBe(false); // the --out-dir folder the run made is gone too
  expect(r.peak).toBeGreaterThan(0);
  expect(r.peak).toBeLessThan(peakBelow);
}

describe("(1099511627776, 2) float32, 8 TiB: planned at once, streamed in bounded memory, ended by SIGTERM", () => {
  const x = sparse("x8t.npy", [2 ** 40, 2]);
  it("forward --groups 1 --memory 1M", async () => {
    const r = await streamThenTerm(["forward", x, "--groups", "1", "--memory", "1M"], P("f1m"), "Y.npy", 3000, { data: true });
    expectStreamedAndInterrupted(r, P("f1m"), BASE + 1 * MiB);
  });
  it("backward --groups 1 --memory 1M", async () => {
    const r = await streamThenTerm(["backward", x, x, "--groups", "1", "--memory", "1M"], P("b1m"), "dX.npy", 3000, { data: true });
    expectStreamedAndInterrupted(r, P("b1m"), BASE + 1 * MiB);
  });
  it("forward --groups 1 with the default budget (slices of a million groups, seconds each)", async () => {
    const r = await streamThenTerm(["forward", x, "--groups", "1"], P("fdef"), "Y.npy", 4000, { data: false });
    expectStreamedAndInterrupted(r, P("fdef"), BASE + DEFAULT_BUDGET);
  });
});

describe("(4194304, 1, 524288) float32 with G = 1: what grows with the run is bounded", () => {
  const x = sparse("big.npy", [4194304, 1, 524288]);
  it("the default budget: slices of whole samples, within the budget", async () => {
    const r = await streamThenTerm(["forward", x, "--groups", "1"], P("bdef"), "Y.npy", 4000, { data: true });
    expectStreamedAndInterrupted(r, P("bdef"), BASE + DEFAULT_BUDGET);
  });
  it("--memory 1M: every sample streamed in chunks, thousands of dispatches a second, within 1M", async () => {
    const r = await streamThenTerm(["forward", x, "--groups", "1", "--memory", "1M", "--outputs", "mean,rstd"], P("g1m"), "mean.npy", 8000, { data: true });
    expectStreamedAndInterrupted(r, P("g1m"), BASE + 1 * MiB);
  });
  it("the pool's threads run with bounded heaps (they never return to their event loop to collect)", async () => {
    const e = new Engine({ threads: 2, pool: "always" });
    try {
      await e.ready();
      const limits = e.workerPool!.heapLimits;
      expect(limits).toHaveLength(2);
      for (const l of limits) {
        expect(l.maxOldGenerationSizeMb).toBe(WORKER_HEAP.maxOldGenerationSizeMb);
        expect(l.maxYoungGenerationSizeMb).toBe(WORKER_HEAP.maxYoungGenerationSizeMb);
      }
    } finally {
      await e.close();
    }
  });
});

describe("side files are counted by their header before any of their data is read", () => {
  // X is 2 GB claimed; gamma and beta 2 GB of float32 each, 4 GB each as the float64 the run holds
  const wide = sparse("c5e8.npy", [1, 500_000_000, 1]);
  const vec = sparse("g5e8.npy", [500_000_000]);
  const cases: Array<[string, string[], RegExp]> = [
    ["--gamma", ["forward", wide, "--groups", "500000", "--gamma", vec], /g5e8\.npy: the memory budget 384M is too small for gamma, C = 500000000 float64 values \(3815M\), and the rest of the run \(\d+K\): raise --memory to 3815M or more$/],
    ["--beta", ["forward", wide, "--groups", "500000", "--beta", vec], /g5e8\.npy: the memory budget 384M is too small for beta, C = 500000000 float64 values \(3815M\)/],
    ["--gamma and --beta", ["forward", wide, "--groups", "500000", "--gamma", vec, "--beta", vec], /g5e8\.npy: .* too small for gamma and beta, C = 500000000 float64 values each \(7630M\), .*raise --memory to 7630M or more$/],
    ["backward --gamma", ["backward", wide, wide, "--groups", "500000", "--gamma", vec], /g5e8\.npy: .* too small for gamma, the dgamma sums and the dbeta sums, C = 500000000 float64 values each \(11\.2G\)/],
  ];
  it.each(cases)("%s of C = 500000000: exit 2 at once, in little memory, naming the file and what needs the memory", async (_what, args, message) => {
    const r = await run([...args, "--out-dir", P("oside")]);
    expect(r.status).toBe(2);
    expect(r.stderr.split("\n")).toHaveLength(2); // one line
    expect(r.stderr.trimEnd()).toMatch(message);
    expect(r.stderr).not.toMatch(/a group/);
    expect(r.seconds).toBeLessThan(5);
    expect(r.peak).toBeLessThan(BASE);
    expect(existsSync(P("oside"))).toBe(false);
  });

  it("the given mean and rstd of N·G = 400000000: refused by the mean's file before either is read", async () => {
    const x = sparse("n2e8.npy", [200_000_000, 2]);
    const stats = sparse("s2e8.npy", [200_000_000, 2]);
    const r = await run(["backward", x, x, "--groups", "2", "--mean", stats, "--rstd", stats, "--out-dir", P("ostats")]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/s2e8\.npy: the memory budget 384M is too small for the given mean and rstd, N·G = 400000000 float64 values each \(6104M\), .*raise --memory to 6104M or more$/);
    expect(r.peak).toBeLessThan(BASE);
  });

  it("an empty X with a given rstd of N·G = 400000000: the rstd is counted too", async () => {
    const x = sparse("e2e8.npy", [200_000_000, 2, 0]);
    const rstd = sparse("r2e8.npy", [200_000_000, 2]);
    const r = await run(["backward", x, x, "--groups", "2", "--mean", rstd, "--rstd", rstd, "--outputs", "dgamma", "--out-dir", P("oempty")]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/r2e8\.npy: the memory budget 384M is too small for the given rstd, N·G = 400000000 float64 values \(3052M\): raise --memory to 3052M or more$/);
    expect(r.peak).toBeLessThan(BASE);
  });

  it("gradcheck --x with a gamma and beta of C = 500000000: refused before they are read", async () => {
    const r = await run(["gradcheck", "--x", wide, "--dy", wide, "--gamma", vec, "--beta", vec, "--groups", "500000"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/gradcheck needs .* for gamma, beta and the groups it perturbs, over --memory 384M/);
    expect(r.seconds).toBeLessThan(5);
    expect(r.peak).toBeLessThan(BASE);
  });
});

describe("the --memory a refusal names is what does", () => {
  it("gamma and beta of C = 10000000 over --memory 64M: the file, the vectors, and a --memory that runs", async () => {
    const x = sparse("c1e7.npy", [1, 10_000_000, 1]);
    const vec = sparse("g1e7.npy", [10_000_000]);
    const args = ["forward", x, "--groups", "10000", "--gamma", vec, "--beta", vec, "--out-dir", P("oneed")];
    const r = await run([...args, "--memory", "64M"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/g1e7\.npy: the memory budget 64M is too small for gamma and beta, C = 10000000 float64 values each \(153M\), and the rest of the run \(\d+K\): raise --memory to 153M or more$/);
    const ok = await run([...args, "--memory", /raise --memory to (\S+) or more/.exec(r.stderr)![1], "--json"]);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    expect(ok.peak).toBeLessThan(BASE + 153 * MiB);
  });

  it("one group of D = 10000000 channels: blamed on its per-channel scratch and vectors, not on its size", async () => {
    const x = sparse("d1e7.npy", [1, 10_000_000, 1]);
    const r = await run(["forward", x, "--groups", "1", "--memory", "64M", "--out-dir", P("od")]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/d1e7\.npy: the memory budget 64M is too small for the scratch and per-channel vectors in WebAssembly memory of one group of D = 10000000 channels × 1 positions, streamed in chunks \(917M\): raise --memory to 917M or more$/);
  });

  it("two Fortran-order inputs: both copies counted, both files named, and the --memory named runs", async () => {
    const dy = sparse("fdy.npy", [64, 256, 16, 16], true); // 16 MiB each
    const x = sparse("fx.npy", [64, 256, 16, 16], true);
    const args = ["backward", dy, x, "--groups", "32", "--out-dir", P("of")];
    const r = await run([...args, "--memory", "40M"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/fdy\.npy: is a Fortran-order array, and so is .*fx\.npy: reading them in parts needs C-order copies of 32M in memory, over half of --memory 40M; save them in C order \(numpy\.ascontiguousarray\) or raise --memory to 64M$/);
    const same = await run(["backward", x, x, "--groups", "32", "--memory", "40M", "--out-dir", P("of")]);
    expect(same.stderr.trimEnd()).toMatch(/fx\.npy: is a Fortran-order array \(given as dY and X\): reading it in parts needs C-order copies of 32M/);
    const ok = await run([...args, "--memory", "64M", "--json"]);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
  });

  it("verify counts a Fortran-order file's copy before reading it", async () => {
    const x = sparse("vx.npy", [64, 256, 16, 16], true);
    const r = await run(["verify", "forward", x, "--groups", "32", "--y", x, "--memory", "40M"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/vx\.npy: the memory budget 40M is too small for the C-order copies of the Fortran-order file .*vx\.npy \(given as x and Y\) \(32M\), and the reference \(\d+(\.\d)?M\): raise --memory to \d+(\.\d)?M or more, or save it in C order \(numpy\.ascontiguousarray\)$/);
  });
});
