// Issue #14, gradcheck: shapes beyond what can be held are refused up front with what limit and what
// would do (never exit 3); a signal ends a run within a fraction of a second however large the
// tensor, with random values bitwise those of before; flags that would be ignored are refused; NaN
// and infinities are said in words, never as an error of Infinity.
import { constants } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { gradcheck } from "../src/api/gradcheck.js";
import { Pacer } from "../src/checks/pace.js";
import { normals, normalsInto, normalsIntoPaced } from "../src/checks/random.js";
import { InputError } from "../src/errors.js";
import { f32ToF16 } from "../src/io/float16.js";
import { encodeNpyHeader, writeNpy } from "../src/io/npy/index.js";
import { cases, casePath } from "./helpers/fixtures.js";
import { groupnorm } from "./helpers/cli.js";
import { run, until } from "./helpers/spawn.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-gradcheck-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const P = (f: string) => join(dir, f);
const fx = (name: string, file: string) => casePath(cases.find((c) => c.name === name)!, file);
const MiB = 2 ** 20;

/** A float32 .npy file of `shape` whose data is a hole: any size, no disk, zeros when read. */
function sparse(name: string, shape: number[]): string {
  const header = encodeNpyHeader("float32", shape);
  writeFileSync(P(name), header);
  truncateSync(P(name), header.length + 4 * shape.reduce((a, b) => a * b, 1));
  return P(name);
}

describe("limits: refused up front with exit 2, the limit and what would do", () => {
  // 2^33 values of 4 bytes, twice: beyond one typed array in Node.js 20 (2^32 values), or beyond a machine of less than 64 GiB
  const beyond = constants.MAX_LENGTH < 2 ** 33 || totalmem() < 2 ** 36;
  it.runIf(beyond)("--shape 8192,1024,1024 --memory 1T (was exit 3, Invalid typed array length): one line naming the limit and a shape", async () => {
    const r = await run(["gradcheck", "--shape", "8192,1024,1024", "--groups", "1", "--memory", "1T"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^groupnorm: error: gradcheck holds its random inputs in memory: --shape 8192,1024,1024 (has 8589934592 values, more than the \d+ one typed array holds in Node\.js v[\d.]+ \(each input is one\)|needs 64\.1G, more than this machine's [\d.]+[GT]); check a smaller shape, e\.g\. --shape \d+,1024,1024 \(the kernels are the same at every size\)\n$/,
    );
    expect(r.seconds).toBeLessThan(5);
    expect(r.peak).toBeLessThan(200 * MiB);
  });

  it("--shape 100000,100000,100000: the typed-array limit, and that one sample is already too many", async () => {
    const r = await run(["gradcheck", "--shape", "100000,100000,100000", "--groups", "1"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^groupnorm: error: gradcheck holds its random inputs in memory: --shape 100000,100000,100000 (has 1000000000000000 values, more than the \d+ one typed array holds in Node\.js v[\d.]+ \(each input is one\)|needs [\d.]+P, more than this machine's [\d.]+[GT] \(and over --memory 384M\)); check a smaller shape, with fewer channels or positions \(one sample has 10000000000 values\) \(the kernels are the same at every size\)\n$/,
    );
  });

  it("over --memory alone: raise --memory to what it needs, or the smaller shape given; both run", async () => {
    const args = ["gradcheck", "--groups", "1", "--samples", "4"];
    const r = await run([...args, "--shape", "8,64,32,32", "--memory", "4M"]);
    expect(r.status).toBe(2);
    const m = /^groupnorm: error: gradcheck holds its random inputs in memory: --shape 8,64,32,32 needs ([\d.]+[KM]) \([\d.]+[KM] held, [\d.]+K for the production backward\), over --memory 4096K; raise --memory to \1 or check a smaller shape, e\.g\. --shape (\d+,64,32,32) \(the kernels are the same at every size\)\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const smaller = groupnorm([...args, "--shape", m![2], "--memory", "4M"]);
    expect(smaller.stderr).toBe("");
    expect(smaller.status).toBe(0);
    const raised = groupnorm([...args, "--shape", "8,64,32,32", "--memory", m![1]]);
    expect(raised.stderr).toBe("");
    expect(raised.status).toBe(0);
  });

  it.runIf(constants.MAX_LENGTH < 2 ** 32 + 4)("--x of more values than a typed array holds, without --dy: give --dy (nothing is read)", async () => {
    const big = sparse("big-x.npy", [1, 4, 2 ** 30 + 1]); // 2^32 + 4 values, a 16 GiB hole
    const r = await run(["gradcheck", "--x", big, "--groups", "4", "--memory", "1T"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^groupnorm: error: ${big.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: gradcheck holds a random dY in one typed array, and one typed array holds at most \\d+ values in Node\\.js v[\\d.]+: X has 4294967300; give --dy\\n$`));
    expect(r.seconds).toBeLessThan(5);
  });
});

describe("signals: a run ends within a fraction of a second of SIGINT or SIGTERM", () => {
  const rss = (pid: number) => {
    try {
      return Number(/VmRSS:\s+(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  /**
   * Signals the child once it is at work (its resident set past `busy` bytes, or `after` ms without
   * /proc); resolves with the run and the seconds from the signal to the end.
   */
  async function interrupt(args: string[], signal: NodeJS.Signals, busy: number, after = 2000) {
    let sent = 0;
    const r = await run(args, {
      with: (child: ChildProcess) => {
        const t0 = Date.now();
        void until(() => {
          const now = rss(child.pid!);
          return now > busy || (now === 0 && Date.now() - t0 > after); // no /proc: by time
        }).then(() => {
          sent = Date.now();
          child.kill(signal);
        });
      },
    });
    return { r, latency: (Date.now() - sent) / 1000 };
  }

  it("while making 2 × 134M random values (before: 69–77 s to act on SIGINT)", async () => {
    const { r, latency } = await interrupt(["gradcheck", "--shape", "32,256,128,128", "--groups", "1", "--memory", "2G"], "SIGINT", 200 * MiB);
    expect(r.signal).toBe("SIGINT");
    expect(r.stderr).toBe("groupnorm: interrupted by SIGINT: no output written\n");
    expect(latency).toBeLessThan(3);
  });

  const X = sparse("x256m.npy", [4, 64, 512, 512]); // 256 MiB of zeros, 16.8M values per group at G = 1
  it("--x with a random dY, groups of 16.8M values (before: 5–9 s to act on SIGINT)", async () => {
    const { r, latency } = await interrupt(["gradcheck", "--x", X, "--groups", "1", "--memory", "2G"], "SIGTERM", 300 * MiB);
    expect(r.signal).toBe("SIGTERM");
    expect(r.stderr).toBe("groupnorm: interrupted by SIGTERM: no output written\n");
    expect(latency).toBeLessThan(3);
  });

  it("--x and --dy on one thread: the streamed backward, then groups of 16.8M values read and perturbed", async () => {
    const { r, latency } = await interrupt(["gradcheck", "--x", X, "--dy", X, "--groups", "1", "--memory", "2G", "--threads", "1"], "SIGINT", 350 * MiB);
    expect(r.signal).toBe("SIGINT");
    expect(r.stderr).toBe("groupnorm: interrupted by SIGINT: no output written\n");
    expect(latency).toBeLessThan(3);
  });

  it("random values made in pieces are bitwise those made at once, and those of before (hashes of the earlier generator)", async () => {
    const hash = (a: ArrayBufferView) => createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex").slice(0, 16);
    const n = 200_003; // several pieces, the last one short
    // made by the generator of commit ed81caa (one synchronous loop)
    const before = { f64: "7633bd77ce857f41", f32: "dc66ae6e1aeaa3ce", f16: "8ecfabbd7432712a", gamma: "e9ed1dfa06919118" };
    const pacer = new Pacer(0); // lets the event loop in after every piece
    const f64 = new Float64Array(n), f32 = new Float32Array(n), f16 = new Uint16Array(n);
    await normalsIntoPaced(f64, pacer, 7, 1.5, 0.5);
    await normalsIntoPaced(f32, pacer, 8);
    await normalsIntoPaced(f16, pacer, 9, 1, 0, f32ToF16);
    expect({ f64: hash(f64), f32: hash(f32), f16: hash(f16), gamma: hash(normals(1000, 2, 0.5, 1)) }).toEqual(before);
    const once = new Float64Array(n);
    normalsInto(once, 7, 1.5, 0.5);
    expect(hash(once)).toBe(before.f64);
  });
});

describe("flags that would be ignored are refused", () => {
  const x = fx("nc_f32", "x.npy"), gamma = fx("nc_f32", "gamma.npy"), beta = fx("nc_f32", "beta.npy");

  it("--x with a --dtype that is not X's: one line naming both (X's dtype wins otherwise)", () => {
    const r = groupnorm(["gradcheck", "--x", x, "--groups", "2", "--dtype", "f64"]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`groupnorm: error: ${x}: is float32, but --dtype asks for float64: gradcheck --x checks in X's own dtype; drop --dtype, or save X as float64\n`);
  });

  it("--x with X's own dtype as --dtype: runs", () => {
    const r = groupnorm(["gradcheck", "--x", x, "--groups", "2", "--dtype", "f32", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).dtype).toBe("float32");
  });

  it("--no-affine with --gamma and --beta, or either: one line (the files were dropped)", () => {
    const both = groupnorm(["gradcheck", "--x", x, "--groups", "2", "--no-affine", "--gamma", gamma, "--beta", beta]);
    expect(both.status).toBe(2);
    expect(both.stderr).toBe("groupnorm: error: --no-affine checks without gamma and beta, but --gamma and --beta are given: drop --no-affine to check with them, or drop them\n");
    const one = groupnorm(["gradcheck", "--x", x, "--groups", "2", "--no-affine", "--beta", beta]);
    expect(one.status).toBe(2);
    expect(one.stderr).toBe("groupnorm: error: --no-affine checks without gamma and beta, but --beta is given: drop --no-affine to check with them, or drop them\n");
  });

  it("the same from the library, as InputError; --samples over 1000000 at the command line", async () => {
    await expect(gradcheck({ groups: 2, x, dtype: "float64" })).rejects.toThrow(InputError);
    await expect(gradcheck({ groups: 2, x, affine: false, gamma, beta })).rejects.toThrow(/--no-affine checks without gamma and beta/);
    const r = groupnorm(["gradcheck", "--shape", "2,6", "--groups", "3", "--samples", "1000001"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("groupnorm: error: --samples must be an integer from 1 to 1000000, got '1000001'\n");
  });
});

describe("NaN and infinities in words, never an error of Infinity", () => {
  const args = (c: string, G: string, ...more: string[]) => ["gradcheck", "--x", fx(c, "x.npy"), "--dy", fx(c, "dy.npy"), "--gamma", fx(c, "gamma.npy"), "--beta", fx(c, "beta.npy"), "--groups", G, ...more];

  it("a NaN group: its entries are not compared, said where; the others pass (before: FAIL, max abs error Infinity)", () => {
    const r = groupnorm(args("nan_group_f32", "3"));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/Infinity/);
    expect(r.stdout).toMatch(/^ {2}dX {6}pass {2}max abs error \S+ {2}max rel error \S+ {2}\(108 of 108 entries\)\n {10}90 of 108 entries within tolerance; NaN in both the analytic and the numeric gradient at \(0, 2, 0, 0\): the loss is not finite there \(a NaN or Inf in the inputs, or eps = 0 on a constant group\), so it has no derivative to compare with \(18 entries not compared\)$/m);
    expect(r.stdout).toMatch(/NaN in the numeric gradient at \(2\) \(the analytic one is [\d.]+\): the loss is not finite there/);
    const j = JSON.parse(groupnorm(args("nan_group_f32", "3", "--json")).stdout);
    expect(j.outputs.dX).toMatchObject({ passed: true, checked: 108, within: 90, not_compared: 18, nan_mismatches: 0 });
    expect(j.outputs.dX.max_abs_error).toBeGreaterThan(0);
    expect(j.outputs.dX.max_abs_error).toBeLessThan(1e-3);
  });

  it("eps = 0 on constant groups: an output with nothing to compare fails, its errors null in JSON", () => {
    const c = "constant_group_f32";
    const a = ["gradcheck", "--x", fx(c, "x.npy"), "--gamma", fx(c, "gamma.npy"), "--beta", fx(c, "beta.npy"), "--groups", "2", "--eps", "0"];
    const r = groupnorm(a);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toMatch(/Infinity/);
    expect(r.stdout).toMatch(/^ {2}dgamma {2}FAIL {2}no finite pair compared {2}\(4 of 4 entries\)\n {10}no entry compared \(4 checked\); NaN in both the analytic and the numeric gradient at \(0\)/m);
    const raw = groupnorm([...a, "--json"]).stdout;
    expect(raw).not.toMatch(/Infinity|: NaN/); // JSON has no Infinity: null
    const j = JSON.parse(raw);
    expect(j.outputs.dgamma).toMatchObject({ passed: false, max_abs_error: null, max_rel_error: null, within: 0, not_compared: 4, worst_index: null });
    expect(j.outputs.dgamma.message).toMatch(/^no entry compared \(4 checked\); NaN in both the analytic and the numeric gradient at \(0\)/);
  });

  it("+Inf in the kernel's dX (float32 overflow) where the numeric gradient is finite: FAIL, in words", async () => {
    await writeNpy(P("ox.npy"), "float32", [1, 2, 4], Float64Array.from([0.1, -1.3, 2.2, 0.7, -0.4, 1.9, -2.5, 0.3]));
    await writeNpy(P("ody.npy"), "float32", [1, 2, 4], Float64Array.from([3e38, -2e38, 1e38, 3.3e38, -3e38, 2.5e38, -1e38, 3e38]));
    await writeNpy(P("og.npy"), "float32", [2], Float64Array.from([100, 0.5]));
    await writeNpy(P("ob.npy"), "float32", [2], Float64Array.from([0, 0]));
    const a = ["gradcheck", "--x", P("ox.npy"), "--dy", P("ody.npy"), "--gamma", P("og.npy"), "--beta", P("ob.npy"), "--groups", "2"];
    const r = groupnorm(a);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toMatch(/Infinity/);
    expect(r.stdout).toMatch(/^ {2}dX {6}FAIL {2}max abs error \S+ {2}max rel error \S+ {2}\(8 of 8 entries\)\n {10}4 of 8 entries within tolerance; \+Inf in the analytic gradient at \(0, 0, 0\), where the numeric one is [\d.]+e\+40 \(4 entries are NaN or infinite in the analytic gradient only\)$/m);
    const j = JSON.parse(groupnorm([...a, "--json"]).stdout);
    expect(j.outputs.dX).toMatchObject({ passed: false, within: 4, nan_mismatches: 4, not_compared: 0, worst_index: [0, 0, 0] });
    expect(Number.isFinite(j.outputs.dX.max_abs_error)).toBe(true);
  });
});
