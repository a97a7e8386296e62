// Issue #14, numerics: wherever the float64 computation of the stored inputs is finite (and fits the
// output dtype), the float32 result matches it within float32's tolerance, at the ends of float32's
// range too; eps = 0 on a constant group is NaN, as in float64 and PyTorch.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { groupNormDims, type Layout } from "../src/core/dims.js";
import { readNpy, writeNpy } from "../src/io/npy/index.js";
import { abortAllOutputsSync, OutputSet, outputFile } from "../src/io/outputs.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { groupnorm } from "./helpers/cli.js";
import { relError } from "./helpers/random.js";

const root = mkdtempSync(join(tmpdir(), "groupnorm-numerics-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let k = 0;
const FLT_MAX = 3.4028234663852886e38;
const load = async (p: string) => (await readNpy(p, "float64")).data as Float64Array;

interface Case {
  name: string;
  /** One group's values (C = 4 channels × 8 positions), as float32. */
  values: number[];
  eps: number;
  /** dY's scale: dX must stay within float32's range for a comparison to mean anything. */
  dyScale: number;
}

const cases: Case[] = [
  // the group: 31 × FLT_MAX and one −FLT_MAX (float64: Y = −5.568 for the last value)
  { name: "31 × 3.4028235e38 and one −3.4028235e38", values: [...Array(31).fill(FLT_MAX), -FLT_MAX], eps: 1e-5, dyScale: 1 },
  // a subnormal group, σ ≈ 1e-40, with eps = 0 (float64: rstd ≈ 1e40, finite Y)
  { name: "subnormal values (σ ≈ 1e-40) with eps = 0", values: Array.from({ length: 32 }, (_, i) => 1e-40 * Math.sin(0.7 * i + 0.1)), eps: 0, dyScale: 1e-12 },
  // a constant group with eps = 1e-80: Y is exactly beta
  { name: "a constant group with eps = 1e-80", values: Array(32).fill(0.75), eps: 1e-80, dyScale: 1e-12 },
];

async function files(c: Case, layout: Layout) {
  const dir = join(root, String(k++));
  mkdirSync(dir);
  // two groups: the extreme one and an ordinary one beside it, which must stay on the fast path unchanged
  const D = 4, HxW = 8, C = 2 * D;
  const shape = layout === "nchw" ? [1, C, HxW] : [1, HxW, C];
  const d = groupNormDims(shape, 2, layout);
  const x = new Float64Array(C * HxW), dy = new Float64Array(C * HxW);
  for (let ch = 0; ch < C; ch++) {
    for (let s = 0; s < HxW; s++) {
      const i = layout === "nchw" ? ch * HxW + s : s * C + ch;
      x[i] = Math.fround(ch < D ? c.values[ch * HxW + s] : Math.cos(ch * 3 + s));
      dy[i] = Math.fround(c.dyScale * Math.sin(ch + 2 * s + 1));
    }
  }
  const gamma = Float64Array.from({ length: C }, (_, i) => Math.fround(1 + i / 8)), beta = Float64Array.from({ length: C }, (_, i) => Math.fround(i / 4 - 1));
  await writeNpy(join(dir, "x.npy"), "float32", shape, x);
  await writeNpy(join(dir, "dy.npy"), "float32", shape, dy);
  await writeNpy(join(dir, "g.npy"), "float32", [C], gamma);
  await writeNpy(join(dir, "b.npy"), "float32", [C], beta);
  return { dir, d, x, dy, gamma, beta };
}

describe.each(["nchw", "nhwc"] as const)("%s float32", (layout) => {
  it.each(cases)("$name: Y and dX match float64", async (c) => {
    const f = await files(c, layout);
    const common = ["--groups", "2", "--layout", layout, "--eps", String(c.eps), "--gamma", join(f.dir, "g.npy"), "--out-dir", f.dir];
    const fwd = groupnorm(["forward", join(f.dir, "x.npy"), ...common, "--beta", join(f.dir, "b.npy")]);
    expect(fwd.stderr).toBe("");
    const bwd = groupnorm(["backward", join(f.dir, "dy.npy"), join(f.dir, "x.npy"), ...common]);
    expect(bwd.stderr).toBe("");
    const ref = referenceForward(f.x, f.d, f.gamma, f.beta, c.eps);
    const refB = referenceBackward(f.dy, f.x, f.d, f.gamma, ref);
    const y = await load(join(f.dir, "Y.npy")), dx = await load(join(f.dir, "dX.npy"));
    expect(y.every(Number.isFinite)).toBe(true);
    expect(dx.every(Number.isFinite)).toBe(true);
    expect(relError(y, ref.y)).toBeLessThan(1e-6);
    expect(relError(dx, refB.dx)).toBeLessThan(1e-6);
    expect(relError(await load(join(f.dir, "dgamma.npy")), refB.dgamma)).toBeLessThan(1e-6);
    if (c.name.startsWith("a constant")) {
      for (let ch = 0; ch < 4; ch++) for (let s = 0; s < 8; s++) expect(y[layout === "nchw" ? ch * 8 + s : s * 8 + ch]).toBe(f.beta[ch]);
    }
  });

  it("eps = 0 on a constant group gives NaN there (0 · ∞, as float64 and PyTorch), leaves the other group finite, and README says so", async () => {
    expect(readFileSync(new URL("../README.md", import.meta.url), "utf8")).toMatch(/eps = 0[^.]*constant group[^.]*NaN/);
    const f = await files({ name: "constant, eps 0", values: Array(32).fill(0.75), eps: 0, dyScale: 1 }, layout);
    expect(groupnorm(["forward", join(f.dir, "x.npy"), "--groups", "2", "--layout", layout, "--eps", "0", "--out-dir", f.dir]).status).toBe(0);
    const y = await load(join(f.dir, "Y.npy"));
    for (let ch = 0; ch < 8; ch++) for (let s = 0; s < 8; s++) expect(Number.isNaN(y[layout === "nchw" ? ch * 8 + s : s * 8 + ch])).toBe(ch < 4);
  });
});

describe("what an interrupted run reports is what is on disk", () => {
  it("after its outputs are renamed into place a run reports them complete, before that it removes them", async () => {
    const dir = join(root, "sets");
    const done = new OutputSet();
    await done.ensureDir(dir);
    await (await done.create(join(dir, "a.npy"), "float32", [1], { explicit: true })).write(new Float32Array(1));
    await done.commit();
    const open = new OutputSet();
    await open.create(join(dir, "b.npy"), "float32", [1], { explicit: true });
    const r = abortAllOutputsSync();
    expect(r.aborted).toBe(1);
    expect(r.written).toContain(join(dir, "a.npy"));
  });
});

// outputFile splits FILE.npz:KEY and FILE.safetensors:KEY with string work (a regular expression's
// compile cost start-up time); this is the rule it replaced, and both must agree on every name.
describe("outputFile: where an output name points", () => {
  const byRegex = (name: string, key: string) => {
    const ext = (p: string) => (/\.npz$/i.test(p) ? "npz" : /\.safetensors$/i.test(p) ? "safetensors" : null);
    if (ext(name)) return { path: name, key, format: ext(name) };
    const m = /^(.*\.(?:npz|safetensors)):([^]+)$/i.exec(name);
    if (m) return { path: m[1], key: m[2], format: ext(m[1]!) };
    return { path: name, key, format: "npy" };
  };
  it("agrees with the regular expression on containers, members, colons and case", () => {
    const names = [
      "y.npy", "out/y.npy", "a.npz", "A.NPZ", "m.safetensors", "M.SafeTensors", "a.npz:Y", "a.NPZ:mean", "dir:x/a.npz:k", "a.npz:b.npz",
      "a.npz:b:c", "a.npz:", "a.npz::", ":a.npz", ".npz:k", "npz:k", "x.safetensors:w.0", "c:/tmp/y.npy", "a.npz.txt:k", "a.npzx:k",
      "weird.safetensors:key:with:colons", "a:b", ":", "", "a.npz:k\nz", "t.safetensors:é",
      // a line terminator before the colon: never a member (found by a review)
      "a\nb.npz:k", "out\r/y.safetensors:w", "x\u2028.npz:k", "x\u2029.npz:k", "a.npz:b\n.npz:c", "a.npz:b\r\n.npz:c:d",
    ];
    for (const n of names) expect(outputFile(n, "Y"), n).toEqual(byRegex(n, "Y"));
    let s = 1;
    const parts = ["a", ".npz", ".NpZ", ".safetensors", ":", "k", "/", ".npy", "\n", "\u2028"];
    for (let i = 0; i < 3000; i++) {
      let n = "";
      for (let j = 0; j < 1 + (i % 7); j++) {
        s = (s * 1103515245 + 12345) >>> 0;
        n += parts[s % parts.length];
      }
      expect(outputFile(n, "K"), n).toEqual(byRegex(n, "K"));
    }
  });
});
