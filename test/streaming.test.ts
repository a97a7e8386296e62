// Streaming through slices: bitwise the same results whatever the slicing and thread count,
// whole-or-nothing outputs, interruption, outputs over inputs, and the JSON phases.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readNpy, writeNpy } from "../src/io/npy/index.js";
import { bin, groupnorm } from "./helpers/cli.js";
import { randn, relError } from "./helpers/random.js";
import { referenceForward } from "../src/oracle/reference.js";
import { groupNormDims } from "../src/core/dims.js";

const root = mkdtempSync(join(tmpdir(), "groupnorm-stream-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let k = 0;
const fresh = () => {
  const d = join(root, String(k++));
  mkdirSync(d);
  return d;
};
const bytes = (p: string) => readFileSync(p);

async function inputs(shape: number[], C: number, dtype: "float32" | "float64" = "float32") {
  const dir = fresh();
  const n = shape.reduce((a, b) => a * b, 1);
  await writeNpy(join(dir, "x.npy"), dtype, shape, randn(n, 1, 2, 0.5));
  await writeNpy(join(dir, "dy.npy"), dtype, shape, randn(n, 2));
  await writeNpy(join(dir, "g.npy"), dtype, [C], randn(C, 3, 0.5, 1));
  await writeNpy(join(dir, "b.npy"), dtype, [C], randn(C, 4));
  return dir;
}

// a run with more than one thread puts every job on the pool (GROUPNORM_POOL=always), however small
function run(dir: string, out: string, extra: string[], layout = "nchw", G = "4") {
  const opts = extra.includes("--threads") && extra[extra.indexOf("--threads") + 1] !== "1" ? { env: { GROUPNORM_POOL: "always" } } : {};
  const f = groupnorm(["forward", join(dir, "x.npy"), "--groups", G, "--layout", layout, "--gamma", join(dir, "g.npy"), "--beta", join(dir, "b.npy"), "--out-dir", out, "--json", ...extra], opts);
  expect(f.stderr).toBe("");
  expect(f.status).toBe(0);
  const b = groupnorm(["backward", join(dir, "dy.npy"), join(dir, "x.npy"), "--groups", G, "--layout", layout, "--gamma", join(dir, "g.npy"), "--out-dir", out, "--json", ...extra], opts);
  expect(b.stderr).toBe("");
  expect(b.status).toBe(0);
  return { forward: JSON.parse(f.stdout), backward: JSON.parse(b.stdout) };
}

const OUTPUTS = ["Y.npy", "mean.npy", "rstd.npy", "dX.npy", "dgamma.npy", "dbeta.npy"];

describe("slicing", () => {
  it("uneven sample slices and group slices give bitwise the in-memory results (1 and 2 threads)", async () => {
    const dir = await inputs([5, 12, 33, 17], 12);
    const whole = fresh();
    const w = run(dir, whole, ["--threads", "1"]);
    expect(w.forward.slices).toBe(1);
    // sample = 26928 bytes: 200K → slices of 3 and 2 samples; 40K → slices of one group (test/budget.test.ts)
    for (const [memory, forwardSlices] of [["200K", 2], ["40K", 20]] as const) {
      for (const threads of ["1", "2"]) {
        const out = fresh();
        const r = run(dir, out, ["--memory", memory, "--threads", threads]);
        expect(r.forward.slices).toBe(forwardSlices);
        for (const f of OUTPUTS) expect(bytes(join(out, f)).equals(bytes(join(whole, f))), `${f} with --memory ${memory}, ${threads} threads`).toBe(true);
      }
    }
    // and the values are right
    const x = (await readNpy(join(dir, "x.npy"), "float64")).data;
    const d = groupNormDims([5, 12, 33, 17], 4, "nchw");
    const ref = referenceForward(x, d, (await readNpy(join(dir, "g.npy"), "float64")).data, (await readNpy(join(dir, "b.npy"), "float64")).data, 1e-5);
    expect(relError((await readNpy(join(whole, "Y.npy"), "float64")).data, ref.y)).toBeLessThan(3e-6);
  });

  it("NHWC and N = 1 slice on sample boundaries with the same bits", async () => {
    const dir = await inputs([8, 10, 9, 8], 8, "float64");
    const whole = fresh(), sliced = fresh();
    run(dir, whole, [], "nhwc", "2");
    const r = run(dir, sliced, ["--memory", "24K"], "nhwc", "2"); // 5760-byte samples: one per slice (three buffers in flight)
    expect(r.forward.slices).toBe(8);
    expect(r.backward.slices).toBeGreaterThan(1);
    for (const f of OUTPUTS) expect(bytes(join(sliced, f)).equals(bytes(join(whole, f))), f).toBe(true);
    const one = await inputs([1, 8, 40, 40], 8);
    const a = fresh(), b = fresh();
    run(one, a, []);
    const rb = run(one, b, ["--memory", "48K"]); // one 51200-byte sample over the budget: slices of whole groups
    expect(rb.forward.slices).toBeGreaterThan(1);
    for (const f of OUTPUTS) expect(bytes(join(b, f)).equals(bytes(join(a, f))), f).toBe(true);
  });

  it("streams a sample (NHWC) or a group (NCHW) over the budget in chunks, with the same bits", async () => {
    for (const [shape, G, layout, memory] of [
      [[2, 200, 500, 8], "2", "nhwc", "3M"], // 3.2 MB samples of 4 units (32768 rows of 8 channels)
      [[2, 4, 300, 300], "2", "nchw", "600K"], // 720 KB groups: 2 channels of 2 blocks each
    ] as const) {
      const dir = await inputs([...shape], layout === "nhwc" ? shape[3] : shape[1]);
      const whole = fresh(), chunked = fresh();
      run(dir, whole, ["--threads", "1"], layout, G);
      for (const threads of ["1", "2"]) {
        const r = run(dir, chunked, ["--memory", memory, "--threads", threads], layout, G);
        expect(r.forward.slices).toBeGreaterThan(2);
        for (const f of OUTPUTS) expect(bytes(join(chunked, f)).equals(bytes(join(whole, f))), `${layout} ${f}, ${threads} threads`).toBe(true);
      }
    }
  });

  it("chunked items redo overflowing float32 sums in float64, as in memory", async () => {
    const dir = await inputs([2, 200, 500, 8], 8);
    const n = 2 * 200 * 500 * 8;
    await writeNpy(join(dir, "x.npy"), "float32", [2, 200, 500, 8], randn(n, 9, 1e20, 3e20));
    await writeNpy(join(dir, "dy.npy"), "float32", [2, 200, 500, 8], randn(n, 10, 1e20));
    const whole = fresh(), chunked = fresh();
    run(dir, whole, [], "nhwc", "2");
    run(dir, chunked, ["--memory", "3M"], "nhwc", "2");
    for (const f of OUTPUTS) expect(bytes(join(chunked, f)).equals(bytes(join(whole, f))), f).toBe(true);
    const y = (await readNpy(join(whole, "Y.npy"), "float64")).data;
    expect(y.every((v) => Number.isFinite(v))).toBe(true);
  });

  it("refuses a budget smaller than one work unit", async () => {
    const dir = await inputs([2, 10, 9, 8], 8);
    const out = fresh();
    const r = groupnorm(["forward", join(dir, "x.npy"), "--groups", "2", "--layout", "nhwc", "--memory", "100", "--out-dir", out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--memory/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("--json reports the phases, bytes and threads", async () => {
    const dir = await inputs([2, 8, 5, 5], 8);
    const r = run(dir, fresh(), ["--threads", "2"]);
    for (const doc of [r.forward, r.backward]) {
      expect(Object.keys(doc.seconds).sort()).toEqual(["compute", "read", "total", "write"]);
      expect(doc.threads).toBe(2);
      expect(doc.bytes.read).toBeGreaterThan(0);
    }
    expect(r.forward.bytes.read).toBe(2 * 8 * 25 * 4);
  });
});

describe("whole or nothing", () => {
  it("an output may name an input: the input is read whole, then replaced", async () => {
    const dir = await inputs([3, 8, 6, 6], 8);
    const expected = fresh();
    run(dir, expected, []);
    const r = groupnorm(["forward", join(dir, "x.npy"), "--groups", "4", "--gamma", join(dir, "g.npy"), "--beta", join(dir, "b.npy"), "--y", join(dir, "x.npy"), "--out-dir", fresh(), "--memory", "10K"]);
    expect(r.status).toBe(0);
    expect(bytes(join(dir, "x.npy")).equals(bytes(join(expected, "Y.npy")))).toBe(true);
  });

  it("an unwritable output folder: exit 2, a clear message, nothing left", async () => {
    const dir = await inputs([2, 8, 3, 3], 8);
    writeFileSync(join(dir, "afile"), "x");
    const r = groupnorm(["forward", join(dir, "x.npy"), "--groups", "4", "--out-dir", join(dir, "afile", "sub")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^groupnorm: error: .*afile/);
    const r2 = groupnorm(["forward", join(dir, "x.npy"), "--groups", "4", "--y", join(dir, "nodir", "Y.npy"), "--out-dir", dir]);
    expect(r2.status).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(["afile", "b.npy", "dy.npy", "g.npy", "x.npy"]);
  });

  it("SIGINT mid-run removes the temporaries and ends by the signal (status 130 in a shell); an input named as output is untouched", async () => {
    const dir = fresh();
    const shape = [64, 64, 64, 64]; // 64 MiB of float32
    await writeNpy(join(dir, "x.npy"), "float32", shape, randn(shape.reduce((a, b) => a * b, 1), 5));
    const before = bytes(join(dir, "x.npy"));
    for (const target of ["out", "input"]) {
      const out = fresh();
      const extra = target === "input" ? ["--y", join(dir, "x.npy")] : [];
      const child = spawn(process.execPath, [bin, "forward", join(dir, "x.npy"), "--groups", "8", "--out-dir", out, "--memory", "2M", "--threads", "1", ...extra], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (b) => (stderr += b));
      const exited = new Promise<string | number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
      // wait until the run is writing its temporaries, then interrupt it
      const tmpDir = target === "input" ? dir : out;
      for (let i = 0; i < 2000 && !readdirSync(tmpDir).some((f) => f.endsWith(".tmp")); i++) await new Promise((r) => setTimeout(r, 2));
      expect(readdirSync(tmpDir).some((f) => f.endsWith(".tmp"))).toBe(true);
      child.kill("SIGINT");
      expect(await exited).toBe("SIGINT");
      expect(stderr).toMatch(/interrupted by SIGINT/);
      expect(readdirSync(out)).toEqual([]);
      expect(readdirSync(dir)).toEqual(["x.npy"]);
      expect(bytes(join(dir, "x.npy")).equals(before)).toBe(true);
    }
  });

  it("an existing output is replaced by the new one", async () => {
    const dir = await inputs([2, 8, 4, 4], 8);
    const out = fresh();
    writeFileSync(join(out, "Y.npy"), "old contents");
    const r = groupnorm(["forward", join(dir, "x.npy"), "--groups", "4", "--out-dir", out]);
    expect(r.status).toBe(0);
    expect((await readNpy(join(out, "Y.npy"), "float64")).header.shape).toEqual([2, 8, 4, 4]);
  });

});
