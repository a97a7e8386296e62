// Issue #14, memory and limits: every file's header is checked before its data is read, memory
// stays within --memory whatever the sizes, and any input either runs within the budget or is
// refused up front with exit 2 and what to change — never exit 3, never a V8 abort.
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeNpyHeader, readNpy, writeNpy } from "../src/io/npy/index.js";
import { randn } from "./helpers/random.js";
import { run } from "./helpers/spawn.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-memory-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const P = (f: string) => join(dir, f);
const MiB = 2 ** 20;
/** What Node and the tool take before any tensor (measured ~60–80 MB); budgets are on top of it. */
const BASE = 160 * MiB;

/** A .npy file of `shape` float32 whose data is a hole: any size, no disk, zeros when read. */
function sparse(name: string, shape: number[]): string {
  const header = encodeNpyHeader("float32", shape);
  writeFileSync(P(name), header);
  truncateSync(P(name), header.length + 4 * shape.reduce((a, b) => a * b, 1));
  return P(name);
}

const X = P("x.npy");
await writeNpy(X, "float32", [2, 64, 8, 8], randn(2 * 64 * 64, 1));
await writeNpy(P("mean.npy"), "float32", [2, 32], new Float64Array(64));
const huge = sparse("huge-vector.npy", [500_000_000]); // 2 GB claimed
const hugeStats = sparse("huge-stats.npy", [250_000_000, 2]);

describe("side files are checked by their header before their data is read", () => {
  const cases: Array<[string, string[]]> = [
    ["--gamma", ["forward", X, "--groups", "32", "--gamma", huge]],
    ["--beta", ["forward", X, "--groups", "32", "--beta", huge]],
    ["--mean", ["backward", X, X, "--groups", "32", "--mean", hugeStats, "--rstd", P("mean.npy")]],
    ["--rstd", ["backward", X, X, "--groups", "32", "--mean", P("mean.npy"), "--rstd", hugeStats]],
  ];
  it.each(cases)("a 2 GB %s of the wrong shape: exit 2 at once, in little memory", async (_flag, args) => {
    const r = await run([...args, "--out-dir", P("o")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/must have shape/);
    expect(r.seconds).toBeLessThan(5);
    expect(r.peak).toBeLessThan(BASE);
  });
});

describe("per-channel and per-group vectors count against the budget", () => {
  const wide = sparse("c1e7.npy", [1, 10_000_000, 1]);
  it("(1, 10000000, 1) with --memory 16M is refused up front, saying what --memory would do, and that much runs", async () => {
    const r = await run(["forward", wide, "--groups", "1", "--memory", "16M", "--out-dir", P("o16")]);
    expect(r.status).toBe(2);
    const need = /raise --memory to (\d+)M/.exec(r.stderr);
    expect(need).not.toBeNull();
    expect(r.peak).toBeLessThan(BASE);
    const ok = await run(["forward", wide, "--groups", "1", "--memory", `${need![1]}M`, "--out-dir", P("oneed"), "--json"]);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    expect(ok.peak).toBeLessThan(BASE + Number(need![1]) * MiB);
  });

  it("(1, 20000000, 0), 128 bytes of file, runs with --memory 1M in little memory", async () => {
    const empty = sparse("c2e7-0.npy", [1, 20_000_000, 0]);
    const r = await run(["forward", empty, "--groups", "4", "--memory", "1M", "--out-dir", P("oempty")]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.peak).toBeLessThan(BASE);
    const mean = await readNpy(join(P("oempty"), "mean.npy"));
    const rstd = await readNpy(join(P("oempty"), "rstd.npy"));
    expect(Array.from(mean.data)).toEqual([0, 0, 0, 0]);
    expect(Array.from(rstd.data).every(Number.isNaN)).toBe(true);
    const b = await run(["backward", empty, empty, "--groups", "4", "--outputs", "dbeta", "--memory", "1M", "--out-dir", P("oempty")]);
    expect(b.status).toBe(0);
    expect(b.peak).toBeLessThan(BASE + 200 * MiB); // dbeta itself is 80 MB of float32
  });
});

describe("valid inputs run or are refused with exit 2, never exit 3", () => {
  it("(1, 100000000, 1) with --groups 1: refused, beyond one WebAssembly memory, saying what to change", async () => {
    const r = await run(["forward", sparse("c1e8.npy", [1, 100_000_000, 1]), "--groups", "1", "--out-dir", P("o1e8")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/4 GiB one WebAssembly memory holds: split the channels into more groups/);
    expect(r.peak).toBeLessThan(BASE);
  });

  it("(1, 100000000, 0) runs", async () => {
    const r = await run(["forward", sparse("c1e8-0.npy", [1, 100_000_000, 0]), "--groups", "1", "--out-dir", P("o1e8-0")]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("a 4.5 GiB file with --memory 5G (more than one WebAssembly memory) runs, in bounded memory", async () => {
    // three 1.5 GiB samples: three slice buffers of one sample each would be 4.5 GiB of WebAssembly memory
    const f = sparse("s45.npy", [3, 1536, 1024, 256]);
    const r = await run(["forward", f, "--groups", "32", "--layout", "nhwc", "--memory", "5G", "--outputs", "mean,rstd", "--out-dir", P("o5g"), "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).slices).toBeGreaterThan(3);
    expect(r.peak).toBeLessThan(BASE + 400 * MiB);
  });

  it("gradcheck --shape 100000,100000,100000 and --shape 1,1000000000: refused at once, in little memory", async () => {
    for (const shape of ["100000,100000,100000", "1,1000000000"]) {
      const r = await run(["gradcheck", "--shape", shape, "--groups", "1"]);
      expect(r.status).toBe(2);
      // over one typed array (10^15 values in Node.js 20) or this machine's memory (67 GB for 10^9 on most): a sample is already too large
      expect(r.stderr).toMatch(/^groupnorm: error: gradcheck holds its random inputs in memory: .*check a smaller shape, with fewer channels or positions \(one sample has \d+ values\) \(the kernels are the same at every size\)\n$/);
      expect(r.seconds).toBeLessThan(5);
      expect(r.peak).toBeLessThan(BASE);
    }
  });

  it("gradcheck stays within --memory and ends within a second of SIGINT", async () => {
    const r = await run(["gradcheck", "--shape", "8,256,64,64", "--groups", "1", "--memory", "200M"], {
      with: (child) => setTimeout(() => child.kill("SIGINT"), 1500),
    });
    expect(r.signal).toBe("SIGINT");
    expect(r.seconds).toBeLessThan(2.5);
    expect(r.stderr).toMatch(/interrupted by SIGINT/);
    expect(r.peak).toBeLessThan(BASE + 200 * MiB);
  });

  it("roofline --shape 1,1000000000: refused before any measuring", async () => {
    const r = await run(["roofline", "--shape", "1,1000000000", "--runs", "1"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/more than the 4 GiB one WebAssembly memory holds: use a smaller --shape/);
    expect(r.seconds).toBeLessThan(3);
  });

  it("under ulimit -v 13000000, --threads 8 is refused with what fits (V8 would abort), and the default fits", async () => {
    const r = await run(["forward", X, "--groups", "32", "--threads", "8", "--out-dir", P("oulimit")], { shell: "ulimit -v 13000000;" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/address space is limited to 12\.4 GiB \(ulimit -v\).*use --threads \d/);
    const d = await run(["forward", X, "--groups", "32", "--out-dir", P("oulimit"), "--json"], { shell: "ulimit -v 13000000;" });
    expect(d.stderr).toBe("");
    expect(d.status).toBe(0);
    expect(JSON.parse(d.stdout).threads).toBeGreaterThanOrEqual(1);
  });
});

describe("a Fortran-order file read in parts", () => {
  it("is refused when its C-order copy would not fit half the budget, and runs when it does", async () => {
    // a Fortran-order (64, 256, 16, 16) float32 file: 16 MiB, read in slices
    const shape = [64, 256, 16, 16];
    const n = shape.reduce((a, b) => a * b, 1);
    const header = new TextEncoder().encode(`{'descr': '<f4', 'fortran_order': True, 'shape': (${shape.join(", ")}), }`);
    const pad = 64 - ((10 + header.length + 1) % 64);
    const file = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, (header.length + pad + 1) & 0xff, (header.length + pad + 1) >> 8]), Buffer.from(header), Buffer.alloc(pad, 0x20), Buffer.from("\n"), Buffer.from(Float32Array.from(randn(n, 3)).buffer)]);
    writeFileSync(P("fortran.npy"), file);
    const r = await run(["forward", P("fortran.npy"), "--groups", "32", "--memory", "24M", "--out-dir", P("of")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is a Fortran-order array: .*save it in C order \(numpy\.ascontiguousarray\) or raise --memory to 32M/);
    const ok = await run(["forward", P("fortran.npy"), "--groups", "32", "--memory", "40M", "--out-dir", P("of")]);
    expect(ok.status).toBe(0);
    expect(readFileSync(join(P("of"), "Y.npy")).length).toBeGreaterThan(4 * n);
  });
});
