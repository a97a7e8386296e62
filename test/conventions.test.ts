// Issue #17, conventions: --group-size, --grouping interleaved, --affine per-group, --var and
// --compat, forward, backward, verify and the API, against PyTorch's float64 results made by
// fixtures/conventions/generate.py (interleaved groups by permuting channels, per-group affine by
// expanding gamma/beta, group size as G = C / K; both layouts; float16/32/64) and against the oracle;
// bitwise the same for any thread count and any slicing; the held-out cases (other seeds and shapes,
// made from each framework's own formula) are checked the same way at the end.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type ConventionOptions, conventionDims, perGroupSums, resolveConvention } from "../src/core/conventions.js";
import { readNpy, readNpyHeader, writeNpy } from "../src/io/npy/index.js";
import type { Dims } from "../src/core/dims.js";
import { type Plan, planRun } from "../src/pipeline/budget.js";
import { backwardFiles, createEngine, forwardFiles, groupNorm, groupNormBackward, InputError, verifyFiles } from "../src/index.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { groupnorm } from "./helpers/cli.js";
import { tolerance } from "./helpers/fixtures.js";
import { randn, relError } from "./helpers/random.js";

interface Case {
  name: string;
  layout: "nchw" | "nhwc";
  shape: number[];
  dtype: "float16" | "float32" | "float64";
  groups: number;
  group_size: number | null;
  grouping: "contiguous" | "interleaved";
  affine: "per-channel" | "per-group";
  eps: number;
  compat: string | null;
  flags: string[];
}

const here = new URL("../fixtures/conventions/", import.meta.url).pathname;
const manifestOf = (set: string): Case[] => JSON.parse(readFileSync(join(here, set, "manifest.json"), "utf8"));
const load = async (p: string) => (await readNpy(p, "float64")).data as Float64Array;

/** A case's command-line flags as API options (what the CLI passes). */
function optionsOf(flags: string[]): ConventionOptions {
  const o: Record<string, unknown> = {};
  const keys: Record<string, [string, (s: string) => unknown]> = {
    "--groups": ["groups", Number], "--group-size": ["groupSize", Number], "--eps": ["eps", Number],
    "--layout": ["layout", String], "--grouping": ["grouping", String], "--affine": ["affine", String], "--compat": ["compat", String],
  };
  for (let i = 0; i < flags.length; i += 2) {
    const [key, parse] = keys[flags[i]];
    o[key] = parse(flags[i + 1]);
  }
  return o as ConventionOptions;
}

const engine = createEngine({ threads: 1 });
const engine2 = createEngine({ threads: 2, pool: "always" });
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-conventions-"));
afterAll(async () => {
  await engine.close();
  await engine2.close();
  rmSync(tmp, { recursive: true, force: true });
});

const bytesOf = (p: string) => readFileSync(p);
const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** A little-endian C-order file's values in their own dtype (float16 as its bits): the data at the file's end. */
function raw(path: string, dtype: Case["dtype"], n: number): Float32Array | Float64Array | Uint16Array {
  const eb = dtype === "float16" ? 2 : dtype === "float32" ? 4 : 8;
  const b = Uint8Array.from(bytesOf(path).subarray(-n * eb)).buffer;
  return dtype === "float16" ? new Uint16Array(b) : dtype === "float32" ? new Float32Array(b) : new Float64Array(b);
}
/** Whether an array's bytes are the data of an output file. */
const sameAsFile = (a: ArrayBufferView, path: string) => bits(a).equals(bytesOf(path).subarray(-a.byteLength));

/** The checks every fixture gets, for the development cases and the held-out ones. */
function fixtureChecks(set: string) {
  describe.each(manifestOf(set))(`${set} $name`, (c) => {
    const dir = join(here, set, c.name);
    const f = (name: string) => join(dir, `${name}.npy`);
    const options = optionsOf(c.flags);
    // mean, rstd (and var, whose relative error is twice rstd's) are float32 for float32 and float16 input:
    // a few units in the last place (the float32 statistics sum at most 32 terms per lane before a float64 merge)
    const statsTol = (s: string) => (c.dtype === "float64" ? 1e-9 : s === "var" ? 2e-6 : 1e-6);
    const n = c.shape.reduce((a, b) => a * b, 1);

    it("the convention resolves to the case's (flags and --compat defaults)", () => {
      const conv = resolveConvention(options);
      expect([conv.eps, conv.layout, conv.grouping, conv.affine]).toEqual([c.eps, c.layout, c.grouping, c.affine]);
      expect(conventionDims(c.shape, conv).G).toBe(c.groups);
    });

    it("the oracle matches PyTorch float64 to 1e-9", async () => {
      const d = conventionDims(c.shape, resolveConvention(options));
      const expand = (v: Float64Array) => (c.affine === "per-group" ? Float64Array.from({ length: d.C }, (_, ch) => v[d.interleaved ? ch % d.G : Math.floor(ch / d.D)]) : v);
      const x = await load(f("x")), dy = await load(f("dy"));
      const gamma = expand(await load(f("gamma"))), beta = expand(await load(f("beta")));
      const r = referenceForward(x, d, gamma, beta, c.eps);
      expect(relError(r.y, await load(f("y")))).toBeLessThan(1e-9);
      expect(relError(r.mean, await load(f("mean")))).toBeLessThan(1e-9);
      expect(relError(r.rstd, await load(f("rstd")))).toBeLessThan(1e-9);
      expect(relError(r.variance, await load(f("var")))).toBeLessThan(1e-9);
      const b = referenceBackward(dy, x, d, gamma, r);
      const reduce = (v: Float64Array) => (c.affine === "per-group" ? perGroupSums(v, d) : v);
      expect(relError(b.dx, await load(f("dx")))).toBeLessThan(1e-9);
      expect(relError(reduce(b.dgamma), await load(f("dgamma")))).toBeLessThan(1e-9);
      expect(relError(reduce(b.dbeta), await load(f("dbeta")))).toBeLessThan(1e-9);
    });

    it("forward files match PyTorch within the dtype's tolerance, and the arrays API bitwise", async () => {
      const out = join(tmp, `${set}-${c.name}-fwd`);
      const r = await forwardFiles({ engine, x: f("x"), gamma: f("gamma"), beta: f("beta"), ...options, outDir: out, outputs: ["y", "mean", "rstd", "var"] });
      expect([r.groups, r.grouping, r.affine, r.layout, r.eps]).toEqual([c.groups, c.grouping, c.affine, c.layout, c.eps]);
      expect((await readNpyHeader(r.outputs.Y!)).dtype).toBe(c.dtype);
      expect((await readNpyHeader(r.outputs.var!)).shape).toEqual([c.shape[0], c.groups]);
      expect(relError(await load(r.outputs.Y!), await load(f("y")))).toBeLessThan(tolerance(c.dtype));
      for (const s of ["mean", "rstd", "var"] as const) expect(relError(await load(r.outputs[s]!), await load(f(s))), s).toBeLessThan(statsTol(s));
      const gamma = await load(f("gamma")), beta = await load(f("beta"));
      const a = await groupNorm(raw(f("x"), c.dtype, n), c.shape, { ...options, gamma, beta, dtype: c.dtype, engine });
      expect(sameAsFile(a.y, r.outputs.Y!)).toBe(true);
      expect(sameAsFile(a.variance, r.outputs.var!)).toBe(true);
      expect(sameAsFile(a.rstd, r.outputs.rstd!)).toBe(true);
    });

    it("backward files match PyTorch (statistics recomputed and given), dgamma and dbeta in the affine's shape", async () => {
      const tol = tolerance(c.dtype);
      for (const given of [false, true]) {
        const out = join(tmp, `${set}-${c.name}-bwd-${given}`);
        const r = await backwardFiles({
          engine, dy: f("dy"), x: f("x"), gamma: f("gamma"), ...options, outDir: out,
          ...(given ? { mean: f("mean"), rstd: f("rstd") } : {}),
        });
        expect((await readNpyHeader(r.outputs.dgamma!)).shape).toEqual([c.affine === "per-group" ? c.groups : c.shape[c.layout === "nchw" ? 1 : c.shape.length - 1]]);
        for (const [name, file] of [["dx", r.outputs.dX!], ["dgamma", r.outputs.dgamma!], ["dbeta", r.outputs.dbeta!]]) {
          expect(relError(await load(file), await load(f(name))), `${name}, statistics given: ${given}`).toBeLessThan(tol);
        }
        if (given) continue;
        const b = await groupNormBackward(raw(f("dy"), c.dtype, n), raw(f("x"), c.dtype, n), c.shape, { ...options, gamma: await load(f("gamma")), dtype: c.dtype, engine });
        expect(sameAsFile(b.dx!, r.outputs.dX!)).toBe(true);
        expect(sameAsFile(b.dgamma!, r.outputs.dgamma!)).toBe(true);
        expect(sameAsFile(b.dbeta!, r.outputs.dbeta!)).toBe(true);
      }
    });

    it("verify passes PyTorch's results in X's dtype against the case's convention", async () => {
      const out = join(tmp, `${set}-${c.name}-cand`);
      rmSync(out, { recursive: true, force: true });
      const { mkdirSync } = await import("node:fs");
      mkdirSync(out, { recursive: true });
      const cand = async (name: string, dtype: "float16" | "float32" | "float64") => {
        const v = await readNpy(f(name), "float64");
        const p = join(out, `${name}.npy`);
        await writeNpy(p, dtype, v.header.shape, v.data);
        return p;
      };
      const fwd = await verifyFiles({ mode: "forward", x: f("x"), gamma: f("gamma"), beta: f("beta"), ...options, y: await cand("y", c.dtype), mean: await cand("mean", "float64"), rstd: await cand("rstd", "float64"), var: await cand("var", "float64") });
      expect(fwd.passed, JSON.stringify(fwd.outputs, null, 1)).toBe(true);
      const bwd = await verifyFiles({ mode: "backward", dy: f("dy"), x: f("x"), gamma: f("gamma"), ...options, dx: await cand("dx", c.dtype), dgamma: await cand("dgamma", "float64"), dbeta: await cand("dbeta", "float64") });
      expect(bwd.passed, JSON.stringify(bwd.outputs, null, 1)).toBe(true);
    });
  });
}

fixtureChecks("cases");

describe("bitwise the same for any thread count and any slicing (interleaved groups)", () => {
  type Budget = { forward: number; backward: number };
  /**
   * Per command, the smallest --memory whose plan is `want` (the plans of streamForward and
   * streamBackward, with var, gamma and beta, and a per-group affine's dgamma/dbeta sums).
   */
  function budgetFor(d: Dims, precision: "f32" | "f64", want: (p: Plan) => boolean, perGroup = false): Budget {
    const least = (kind: "forward" | "backward") => {
      const bytes = kind === "forward" ? 2 * 8 * d.C : 3 * 8 * d.C + (perGroup ? 2 * 8 * d.G : 0);
      const host = [{ what: "the vectors", file: "x", bytes }];
      for (let m = 512; m < 1 << 26; m += 64) {
        let plan: Plan;
        try {
          plan = planRun({ dims: d, precision, kind, budget: m, threads: 2, host, file: "x", variance: kind === "forward" });
        } catch (e) {
          if (e instanceof InputError) continue; // too small
          throw e;
        }
        if (want(plan)) return m;
      }
      throw new Error(`no budget for ${kind}`);
    };
    return { forward: least("forward"), backward: least("backward") };
  }

  /** Forward and backward outputs (bytes) of each run, all of which must agree. */
  async function agree(name: string, x: string, dy: string, gamma: string, beta: string, options: ConventionOptions, runs: Array<{ engine: typeof engine; memory?: Budget }>) {
    const outputs: Buffer[][] = [];
    for (const [k, r] of runs.entries()) {
      const out = join(tmp, `bitwise-${name}-${k}`);
      const fw = await forwardFiles({ engine: r.engine, memory: r.memory?.forward, x, gamma, beta, ...options, outDir: out, outputs: ["y", "mean", "rstd", "var"] });
      const bw = await backwardFiles({ engine: r.engine, memory: r.memory?.backward, dy, x, gamma, ...options, outDir: out });
      if (r.memory) expect(Math.min(fw.slices, bw.slices), `run ${k} streamed in parts`).toBeGreaterThan(1);
      outputs.push([fw.outputs.Y!, fw.outputs.mean!, fw.outputs.rstd!, fw.outputs.var!, bw.outputs.dX!, bw.outputs.dgamma!, bw.outputs.dbeta!].map(bytesOf));
    }
    for (const [k, o] of outputs.entries()) o.forEach((b, i) => expect(b.equals(outputs[0][i]), `run ${k}, output ${i}`).toBe(true));
  }

  it.each([["interleaved_nchw_hw64_f32"], ["interleaved_nhwc_f32"], ["pergroup_interleaved_nhwc_f32"], ["interleaved_ncl_f64"]])("%s: 1 and 2 threads, slices of one sample", async (name) => {
    const c = manifestOf("cases").find((k) => k.name === name)!;
    const f = (n: string) => join(here, "cases", name, `${n}.npy`);
    const options = optionsOf(c.flags);
    const d = conventionDims(c.shape, resolveConvention(options));
    const memory = budgetFor(d, c.dtype === "float64" ? "f64" : "f32", (p) => p.kind === "slices" && p.slices.count === d.N, options.affine === "per-group");
    await agree(name, f("x"), f("dy"), f("gamma"), f("beta"), options, [{ engine }, { engine: engine2 }, { engine: engine2, memory }]);
  });

  it.each([
    ["NCHW, runs in blocks", [2, 4, 200, 200], { groups: 2, grouping: "interleaved" as const }, "float32"],
    ["NCHW float64, several channels per unit", [2, 24, 60, 60], { groups: 4, grouping: "interleaved" as const }, "float64"],
    ["NHWC, row units", [2, 150, 150, 12], { groups: 3, grouping: "interleaved" as const, layout: "nhwc" as const, affine: "per-group" as const }, "float32"],
    // group 1 ill-conditioned (3e4 + 1e-3·x) and group 2 with a variance among the subnormals: the float64 fallbacks, redone chunk by chunk
    ["NCHW, groups that need float64", [2, 8, 200, 200], { groups: 4, grouping: "interleaved" as const, extreme: true }, "float32"],
    ["NHWC, groups that need float64", [2, 150, 150, 12], { groups: 4, grouping: "interleaved" as const, layout: "nhwc" as const, extreme: true }, "float32"],
  ] as const)("%s: a sample over the budget streamed in chunks", async (name, shape, { extreme, ...options }: ConventionOptions & { extreme?: boolean }, dtype) => {
    const n = shape.reduce((a, b) => a * b, 1), d = conventionDims(shape, resolveConvention(options));
    const values = randn(n, 41, 2, 0.5);
    if (extreme) {
      for (let i = 0; i < n; i++) {
        const c = d.layout === "nchw" ? Math.floor(i / d.HxW) % d.C : i % d.C;
        if (c % d.G === 1) values[i] = 3e4 + 1e-3 * values[i];
        else if (c % d.G === 0 && d.G > 2) values[i] = 1e-35 * values[i];
      }
    }
    const file = async (what: string, sh: readonly number[], values: Float64Array) => {
      const p = join(tmp, `chunks-${name.replace(/\W+/g, "_")}-${what}.npy`);
      await writeNpy(p, dtype, sh, values);
      return p;
    };
    const x = await file("x", shape, values), dy = await file("dy", shape, randn(n, 42));
    const A = options.affine === "per-group" ? d.G : d.C;
    const gamma = await file("gamma", [A], randn(A, 43, 0.5, 1)), beta = await file("beta", [A], randn(A, 44));
    const memory = budgetFor(d, dtype === "float64" ? "f64" : "f32", (p) => p.kind === "chunks", options.affine === "per-group");
    await agree(name, x, dy, gamma, beta, options, [{ engine }, { engine: engine2, memory }, { engine, memory }]);
  });

  it("PyTorch's convention spelt out (--compat torch, --grouping contiguous, --affine per-channel) is bitwise the default", async () => {
    const f = (n: string) => join(here, "cases", "interleaved_nchw_hw64_f32", `${n}.npy`);
    const files: Buffer[][] = [];
    for (const [k, extra] of [{}, { compat: "torch" as const, grouping: "contiguous" as const, affine: "per-channel" as const }].entries()) {
      const r = await forwardFiles({ engine, x: f("x"), gamma: f("gamma"), beta: f("beta"), groups: 4, ...extra, outDir: join(tmp, `default-${k}`) });
      files.push([r.outputs.Y!, r.outputs.mean!, r.outputs.rstd!].map(bytesOf));
    }
    files[1].forEach((b, i) => expect(b.equals(files[0][i])).toBe(true));
  });
});

describe("var", () => {
  const f = (n: string) => join(here, "cases", "interleaved_ncl_f64", `${n}.npy`);
  it("is the statistics kernel's variance: float64 rstd is exactly 1/sqrt(var + eps)", async () => {
    const r = await forwardFiles({ engine, x: f("x"), groups: 2, grouping: "interleaved", outDir: join(tmp, "var-f64"), outputs: ["rstd", "var"] });
    const v = await load(r.outputs.var!), rstd = await load(r.outputs.rstd!);
    v.forEach((x, i) => expect(rstd[i]).toBe(1 / Math.sqrt(x + 1e-5)));
  });
  it("is written only when asked for, and --outputs names it", async () => {
    const r = await forwardFiles({ engine, x: f("x"), groups: 2, outDir: join(tmp, "var-default") });
    expect(Object.keys(r.outputs)).toEqual(["Y", "mean", "rstd"]);
    const cli = groupnorm(["forward", f("x"), "--groups", "2", "--outputs", "var", "--out-dir", join(tmp, "var-cli"), "--json"]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(Object.keys(JSON.parse(cli.stdout).outputs)).toEqual(["var"]);
  });
});

describe("bad conventions: exit 2 and one line", () => {
  const x = join(here, "cases", "pergroup_nchw_f32", "x.npy"), g = (n: string) => join(here, "cases", n, "gamma.npy");
  const cases: Array<[string, string[], RegExp]> = [
    ["--groups and --group-size", ["--groups", "4", "--group-size", "2"], /^groupnorm: error: give --groups or --group-size, not both\n$/],
    ["neither", [], /^groupnorm: error: --groups G or --group-size K is required\n$/],
    ["K not dividing C", ["--group-size", "3"], /error: .*x\.npy: C = 8 \(shape \(2, 8, 3, 3\), layout nchw\) is not divisible by --group-size 3\n$/],
    ["a (G,) gamma without --affine per-group", ["--groups", "4", "--gamma", g("pergroup_nchw_f32")], /gamma has shape \(4,\), one value per group \(G = 4\), but per-channel affine needs \(8,\) \(C = 8\): pass --affine per-group/],
    ["a (C,) gamma with --affine per-group", ["--groups", "2", "--affine", "per-group", "--gamma", g("groupsize_nchw_f32")], /gamma must have shape \(2,\) to match G = 2 \(--affine per-group\), but has shape \(12,\)/],
    ["per-group --compat onnx18 with a (C,) gamma", ["--groups", "4", "--compat", "onnx18", "--gamma", g("compat_onnx21_f32")], /gamma has shape \(8,\), one value per channel \(C = 8\), but --affine per-group needs \(4,\) \(G = 4\): use --affine per-channel/],
    ["an unknown grouping", ["--groups", "4", "--grouping", "strided"], /^groupnorm: error: --grouping must be contiguous or interleaved, got 'strided'\n$/],
    ["an unknown affine", ["--groups", "4", "--affine", "group"], /^groupnorm: error: --affine must be per-channel or per-group, got 'group'\n$/],
    ["an unknown system", ["--groups", "4", "--compat", "tensorflow"], /^groupnorm: error: --compat must be one of torch, onnx18, onnx21, keras, flax, mlx, got 'tensorflow'\n$/],
    ["a group size of 0", ["--group-size", "0"], /^groupnorm: error: --group-size must be a positive integer, got '0'\n$/],
  ];
  it.each(cases)("%s", (_what, flags, message) => {
    for (const command of [["forward", x, "--out-dir", join(tmp, "bad")], ["backward", x, x, "--out-dir", join(tmp, "bad")], ["verify", "forward", x, "--y", x]]) {
      const r = groupnorm([...command, ...flags]);
      expect(r.stderr, command.join(" ")).toMatch(message);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe("");
    }
  });
  it("G = C: a (C,) gamma is per channel and per group alike", async () => {
    const d = join(here, "cases", "compat_onnx21_f32"), g = (n: string) => join(d, `${n}.npy`);
    const files: Buffer[][] = [];
    for (const affine of ["per-channel", "per-group"] as const) {
      const fw = await forwardFiles({ engine, x: g("x"), gamma: g("gamma"), beta: g("beta"), groups: 8, affine, outDir: join(tmp, `gc-${affine}`) });
      const bw = await backwardFiles({ engine, dy: g("dy"), x: g("x"), gamma: g("gamma"), groups: 8, affine, outDir: join(tmp, `gc-${affine}`) });
      files.push([fw.outputs.Y!, bw.outputs.dX!, bw.outputs.dgamma!, bw.outputs.dbeta!].map(bytesOf));
    }
    files[1].forEach((b, i) => expect(b.equals(files[0][i])).toBe(true));
  });
  it("the API says the option, not the flag", async () => {
    const x32 = new Float32Array(2 * 8 * 4);
    await expect(groupNorm(x32, [2, 8, 4], { groups: 4, gamma: [1, 2, 3, 4] })).rejects.toThrow(/pass affine: "per-group" \(as ONNX opset 18\)/);
    await expect(groupNorm(x32, [2, 8, 4], { groups: 4, groupSize: 2 })).rejects.toThrow(/not both/);
    const r = await groupNorm(x32.map((_, i) => Math.sin(i)), [2, 8, 4], { groupSize: 2, affine: "per-group", gamma: [1, 2, 3, 4], beta: [0, 0, 0, 1], engine });
    expect(r.mean.length).toBe(8);
  });
});

describe("--compat", () => {
  const x = join(here, "cases", "compat_onnx21_f32", "x.npy");
  it.each([
    ["torch", 1e-5, "nchw", "contiguous", "per-channel"],
    ["onnx18", 1e-5, "nchw", "contiguous", "per-group"],
    ["onnx21", 1e-5, "nchw", "contiguous", "per-channel"],
    ["keras", 1e-3, "nhwc", "contiguous", "per-channel"],
    ["flax", 1e-6, "nhwc", "contiguous", "per-channel"],
    ["mlx", 1e-5, "nhwc", "interleaved", "per-channel"],
  ])("%s sets eps %s, layout %s, %s groups, affine %s; explicit flags win", (compat, eps, layout, grouping, affine) => {
    const r = groupnorm(["forward", x, "--group-size", "1", "--compat", compat, "--outputs", "mean", "--out-dir", join(tmp, `compat-${compat}`), "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect([j.eps, j.layout, j.grouping, j.affine, j.compat]).toEqual([eps, layout, grouping, affine, compat]);
    const o = groupnorm(["forward", x, "--groups", "1", "--compat", compat, "--eps", "0.5", "--layout", "nchw", "--grouping", "contiguous", "--affine", "per-channel", "--outputs", "mean", "--out-dir", join(tmp, `compat-o-${compat}`), "--json"]);
    const k = JSON.parse(o.stdout);
    expect([k.eps, k.layout, k.grouping, k.affine]).toEqual([0.5, "nchw", "contiguous", "per-channel"]);
  });
});

describe("verify against a system's convention", () => {
  const dir = join(here, "cases", "compat_mlx_f32");
  const f = (n: string) => join(dir, `${n}.npy`);
  it("an MLX result fails PyTorch's convention and is diagnosed as interleaved; a PyTorch result fails --compat mlx, diagnosed relative to it", async () => {
    const ours = await forwardFiles({ engine, x: f("x"), gamma: f("gamma"), beta: f("beta"), groups: 4, compat: "mlx", outDir: join(tmp, "mlx-ours") });
    const asTorch = await verifyFiles({ mode: "forward", x: f("x"), gamma: f("gamma"), beta: f("beta"), groups: 4, layout: "nhwc", y: ours.outputs.Y });
    expect(asTorch.passed).toBe(false);
    expect(asTorch.outputs.Y!.diagnosis).toMatch(/^Y matches GroupNorm with channels grouped interleaved \(channel c in group c mod G, as MLX by default\), not contiguous groups/);
    const torchY = await forwardFiles({ engine, x: f("x"), gamma: f("gamma"), beta: f("beta"), groups: 4, layout: "nhwc", outDir: join(tmp, "mlx-torch") });
    const asMlx = await verifyFiles({ mode: "forward", x: f("x"), gamma: f("gamma"), beta: f("beta"), groups: 4, compat: "mlx", y: torchY.outputs.Y });
    expect(asMlx.passed).toBe(false);
    expect([asMlx.grouping, asMlx.layout, asMlx.compat]).toEqual(["interleaved", "nhwc", "mlx"]);
    expect(asMlx.outputs.Y!.diagnosis).toMatch(/^Y matches GroupNorm with channels grouped contiguously \(channel c in group c \/ D, as PyTorch\), not interleaved groups \(c mod G\)/);
    expect((await verifyFiles({ mode: "forward", x: f("x"), gamma: f("gamma"), beta: f("beta"), groups: 4, compat: "mlx", y: ours.outputs.Y })).passed).toBe(true);
  });

  it("an ONNX-18 backward: dgamma of shape (G,) checked per group; one of shape (C,) refused by its shape", async () => {
    const d = join(here, "cases", "compat_onnx18_f16"), g = (n: string) => join(d, `${n}.npy`);
    const ours = await backwardFiles({ engine, dy: g("dy"), x: g("x"), gamma: g("gamma"), groups: 4, compat: "onnx18", outDir: join(tmp, "onnx18-ours") });
    const ok = await verifyFiles({ mode: "backward", dy: g("dy"), x: g("x"), gamma: g("gamma"), groups: 4, compat: "onnx18", dx: ours.outputs.dX, dgamma: ours.outputs.dgamma, dbeta: ours.outputs.dbeta });
    expect(ok.passed).toBe(true);
    const perChannel = await verifyFiles({ mode: "backward", dy: g("dy"), x: g("x"), gamma: g("gamma"), groups: 4, compat: "onnx18", dgamma: join(here, "cases", "compat_onnx21_f32", "gamma.npy") });
    expect(perChannel.outputs.dgamma!.reason).toBe("shape");
  });

  it("a var candidate computed with the unbiased variance is named so", async () => {
    const d = join(here, "cases", "interleaved_ncl_f64"), g = (n: string) => join(d, `${n}.npy`);
    const v = await load(g("var")), M = 4 * 7;
    const p = join(tmp, "var-unbiased.npy");
    await writeNpy(p, "float64", [2, 2], v.map((s) => (s * M) / (M - 1)));
    const r = await verifyFiles({ mode: "forward", x: g("x"), groups: 2, grouping: "interleaved", var: p });
    expect(r.outputs.var!.passed).toBe(false);
    expect(r.outputs.var!.diagnosis).toMatch(/^var matches GroupNorm with the unbiased variance/);
  });

  it("the CLI: verify forward --compat mlx prints the convention and passes", () => {
    const r = groupnorm(["verify", "forward", f("x"), "--groups", "4", "--compat", "mlx", "--gamma", f("gamma"), "--beta", f("beta"), "--var", f("var"), "--mean", f("mean")]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/nhwc, G=4, eps=1e-5, interleaved groups \(compat mlx\): candidates against the float64 reference/);
    expect(r.stdout).toMatch(/^ {2}var {4}pass/m);
  });
});

// the held-out cases: other seeds and shapes, each framework's own formula (fixtures/conventions/generate.py --heldout)
fixtureChecks("heldout");
