// Issue #15, verify: a user's own GroupNorm outputs and gradients against the float64 reference.
// The cases come from fixtures/verify (made by PyTorch 1.13 and NumPy: generate.py beside them):
// for forward and backward, both layouts and float16/float32/float64 candidates, PyTorch's own
// results pass, a perturbed (n, g) group fails and is named, each convention difference is
// diagnosed by name, NaN and shape differences fail with their reason; held-out candidates from
// independent implementations are checked the same way. A 1 GiB candidate verifies within the
// default memory.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type VerifyOptions, type VerifyReport, verifyFiles } from "../src/api/verify.js";
import { groupNormDims } from "../src/core/dims.js";
import { formatError, InputError } from "../src/errors.js";
import { encodeNpyHeader, readNpy, writeNpy } from "../src/io/npy/index.js";
import type { TensorSource } from "../src/io/tensor.js";
import { referenceBackward, referenceForward, referenceStats } from "../src/oracle/reference.js";
import { alternatives, type Convention, givenConvention } from "../src/verify/conventions.js";
import { GroupIndex } from "../src/verify/grouping.js";
import { affineOf, type BackwardSums, backwardSums, moments, type Stats, statsOf } from "../src/verify/reference.js";
import { offsetFactor } from "../src/verify/tolerance.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { run } from "./helpers/spawn.js";

const root = new URL("../fixtures/verify/", import.meta.url).pathname;
interface Check {
  mode: "forward" | "backward";
  label: string;
  pass: boolean;
  candidates: Record<string, string>;
  reason?: Record<string, string>;
  worst_group?: Record<string, number[]>;
  diagnosis?: Record<string, string | null>;
}
interface Case {
  name: string;
  dtype: string;
  layout: "nchw" | "nhwc";
  groups: number;
  eps: number;
  inputs: Record<string, string>;
  checks: Check[];
}
const manifest: Case[] = JSON.parse(readFileSync(join(root, "manifest.json"), "utf8"));
const heldout = new Set(["nchw", "nhwc"]);
const dirOf = (c: Case) => join(root, heldout.has(c.name) ? "heldout" : "cases", c.name);
const FLAG: Record<string, "y" | "mean" | "rstd" | "dx" | "dgamma" | "dbeta"> = { Y: "y", mean: "mean", rstd: "rstd", dX: "dx", dgamma: "dgamma", dbeta: "dbeta" };

function optionsOf(c: Case, k: Check): VerifyOptions {
  const d = dirOf(c);
  const o: VerifyOptions = {
    mode: k.mode, x: join(d, c.inputs.x), groups: c.groups, layout: c.layout, eps: c.eps, gamma: join(d, c.inputs.gamma),
    ...(k.mode === "forward" ? { beta: join(d, c.inputs.beta) } : { dy: join(d, c.inputs.dy) }),
  };
  for (const [name, file] of Object.entries(k.candidates)) o[FLAG[name]] = join(d, file);
  return o;
}

function expectations(r: VerifyReport, k: Check): void {
  expect(r.passed).toBe(k.pass);
  expect(Object.keys(r.outputs).sort()).toEqual(Object.keys(k.candidates).sort());
  for (const [name, reason] of Object.entries(k.reason ?? {})) expect(r.outputs[name as "Y"]!.reason, name).toBe(reason);
  for (const [name, group] of Object.entries(k.worst_group ?? {})) {
    const o = r.outputs[name as "Y"]!;
    expect(o.worst!.group, name).toEqual(group);
    expect(o.worst_groups[0].group, name).toEqual(group); // the worst group is the one perturbed …
    expect(o.worst_groups.length, name).toBe(1); // … and no other group has a mismatch
  }
  for (const [name, diagnosis] of Object.entries(k.diagnosis ?? {})) {
    const got = r.outputs[name as "Y"]!.diagnosis;
    if (diagnosis === null) expect(got, name).toBeNull();
    else {
      // the first convention that fits, or one of those said to fit as well ("also with …")
      expect(got, name).toMatch(new RegExp(`^${name} matches GroupNorm with `));
      expect(got, name).toContain(diagnosis);
    }
  }
  if (k.pass) {
    for (const [name, o] of Object.entries(r.outputs)) {
      expect(o!.mismatches, name).toBe(0);
      expect(o!.diagnosis, name).toBeNull();
      expect(o!.max_abs_error, name).not.toBeNull();
    }
  }
}

describe("fixtures made by PyTorch: every case of the manifest", () => {
  const cases = manifest.filter((c) => !heldout.has(c.name));
  it("covers forward and backward, both layouts, float16, float32 and float64 candidates", () => {
    expect(new Set(cases.map((c) => `${c.dtype} ${c.layout}`))).toEqual(new Set(["float16", "float32", "float64"].flatMap((d) => [`${d} nchw`, `${d} nhwc`])));
    for (const c of cases) {
      const labels = (mode: string) => new Set(c.checks.filter((k) => k.mode === mode).map((k) => k.label));
      for (const l of ["torch", "perturbed", "eps1e-3", "eps1e-6", "eps0", "unbiased", "interleaved", "pergroup", "noaffine", "swapped", "otherlayout", "rstdstd", "rstdvar", "nan", "shape"]) expect(labels("forward").has(l), `${c.name} forward ${l}`).toBe(true);
      for (const l of ["torch", "perturbed", "eps1e-3", "eps1e-6", "eps0", "unbiased", "interleaved", "pergroup", "noaffine"]) expect(labels("backward").has(l), `${c.name} backward ${l}`).toBe(true);
    }
  });
  for (const c of cases) {
    describe(c.name, () => {
      it.each(c.checks.map((k) => [`${k.mode} ${k.label}`, k] as const))("%s", async (_t, k) => {
        expectations(await verifyFiles(optionsOf(c, k)), k);
      });
    });
  }
});

describe("held-out candidates from independent implementations", () => {
  for (const c of manifest.filter((c) => heldout.has(c.name))) {
    it.each(c.checks.map((k) => [`${c.name} ${k.mode} ${k.label}`, k] as const))("%s", async (_t, k) => {
      expectations(await verifyFiles(optionsOf(c, k)), k);
    });
  }
});

const dir = mkdtempSync(join(tmpdir(), "groupnorm-verify-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const P = (f: string) => join(dir, f);
const f32 = join(root, "cases", "float32_nchw");
const base = { mode: "forward" as const, x: join(f32, "x.npy"), groups: 4, gamma: join(f32, "gamma.npy"), beta: join(f32, "beta.npy") };

describe("error measures against the oracle", () => {
  it("a candidate rounded from the oracle is within half an ulp; one entry off by 1000 ulp is found, with its group, channel and coordinates", async () => {
    const x = (await readNpy(base.x)).data, gamma = (await readNpy(base.gamma)).data, beta = (await readNpy(base.beta)).data;
    const shape = [2, 8, 8, 8], d = groupNormDims(shape, 4, "nchw");
    const ref = referenceForward(x, d, gamma, beta, 1e-5);
    const y = Float32Array.from(ref.y);
    await writeNpy(P("exact.npy"), "float32", shape, y);
    const ok = await verifyFiles({ ...base, y: P("exact.npy") });
    expect(ok.passed).toBe(true);
    expect(ok.outputs.Y!.checked).toBe(1024);
    expect(ok.outputs.Y!.max_ulp_error).toBeLessThanOrEqual(0.5);
    expect(ok.outputs.Y!.max_abs_error).toBe(Math.max(...Array.from(y, (v, i) => Math.abs(v - ref.y[i]))));
    // entry (1, 5, 3, 6): n = 1, channel 5, group 2 (D = 2)
    const at = ((1 * 8 + 5) * 8 + 3) * 8 + 6;
    const bumped = Float32Array.from(y);
    const u = 2 ** (Math.floor(Math.log2(Math.abs(y[at]))) - 23);
    bumped[at] = y[at] + 1000 * u;
    await writeNpy(P("bumped.npy"), "float32", shape, bumped);
    const bad = (await verifyFiles({ ...base, y: P("bumped.npy") })).outputs.Y!;
    expect(bad.passed).toBe(false);
    expect(bad.reason).toBe("values");
    expect(bad.mismatches).toBe(1);
    expect(bad.mismatch_percent).toBeCloseTo(100 / 1024, 10);
    expect(bad.worst).toEqual({ index: [1, 5, 3, 6], group: [1, 2], channel: 5, value: bumped[at], reference: ref.y[at] });
    expect(bad.worst_groups).toEqual([{ group: [1, 2], mismatches: 1, max_abs_error: Math.abs(bumped[at] - ref.y[at]), tolerance_used: bad.tolerance_used }]);
    expect(bad.tolerance_used).toBeGreaterThan(1);
    expect(bad.max_ulp_error).toBeGreaterThan(999.5);
    expect(bad.max_ulp_error).toBeLessThan(1000.5);
    expect(bad.diagnosis).toBeNull(); // no convention explains one wrong value
  });

  it("NHWC coordinates are in the file's own index order", async () => {
    const nhwc = join(root, "cases", "float32_nhwc");
    const y = (await readNpy(join(nhwc, "forward_torch_Y.npy"), "float32")).data as Float32Array;
    const shape = (await readNpy(join(nhwc, "x.npy"))).header.shape; // (N, H, W, C)
    const C = shape[3], at = ((1 * shape[1] + 2) * shape[2] + 3) * C + 6; // (1, 2, 3, 6): channel 6
    y[at] += 1;
    await writeNpy(P("nhwc.npy"), "float32", shape, y);
    const r = await verifyFiles({ mode: "forward", x: join(nhwc, "x.npy"), groups: 4, layout: "nhwc", gamma: join(nhwc, "gamma.npy"), beta: join(nhwc, "beta.npy"), y: P("nhwc.npy") });
    expect(r.outputs.Y!.worst!.index).toEqual([1, 2, 3, 6]);
    expect(r.outputs.Y!.worst!.channel).toBe(6);
    expect(r.outputs.Y!.worst!.group).toEqual([1, Math.floor(6 / (C / 4))]);
  });

  it("dgamma and dbeta from the oracle pass; one channel of dgamma off fails and names that channel's group", async () => {
    const x = (await readNpy(base.x)).data, dy = (await readNpy(join(f32, "dy.npy"))).data, gamma = (await readNpy(base.gamma)).data;
    const d = groupNormDims([2, 8, 8, 8], 4, "nchw");
    const ref = referenceBackward(dy, x, d, gamma, referenceStats(x, d, 1e-5));
    await writeNpy(P("dg.npy"), "float32", [8], Float32Array.from(ref.dgamma));
    await writeNpy(P("db.npy"), "float32", [8], Float32Array.from(ref.dbeta));
    await writeNpy(P("dx.npy"), "float32", [2, 8, 8, 8], Float32Array.from(ref.dx));
    const opts = { mode: "backward" as const, x: base.x, dy: join(f32, "dy.npy"), groups: 4, gamma: base.gamma, dx: P("dx.npy"), dbeta: P("db.npy") };
    expect((await verifyFiles({ ...opts, dgamma: P("dg.npy") })).passed).toBe(true);
    const dg = Float32Array.from(ref.dgamma);
    dg[6] *= 1.001;
    await writeNpy(P("dg-bad.npy"), "float32", [8], dg);
    const r = await verifyFiles({ ...opts, dgamma: P("dg-bad.npy") });
    expect(r.passed).toBe(false);
    expect(r.outputs.dX!.passed && r.outputs.dbeta!.passed).toBe(true);
    expect(r.outputs.dgamma!.worst).toMatchObject({ index: [6], group: [3], channel: 6 });
  });
});

describe("reasons and conventions beyond the fixtures", () => {
  it("a candidate of the wrong dtype fails with reason dtype, without reading its values", async () => {
    const y = (await readNpy(join(f32, "forward_torch_Y.npy"))).data;
    await writeNpy(P("y64.npy"), "float64", [2, 8, 8, 8], Float64Array.from(y));
    const r = await verifyFiles({ ...base, y: P("y64.npy"), mean: join(f32, "forward_torch_mean.npy") });
    expect(r.passed).toBe(false);
    expect(r.outputs.Y).toMatchObject({ passed: false, reason: "dtype", checked: 0 });
    expect(r.outputs.Y!.message).toMatch(/float64.*float32|float32.*float64/);
    expect(r.outputs.mean!.passed).toBe(true);
  });

  it("eps = 1e-12 is diagnosed (and said to be indistinguishable from 0 when it is)", async () => {
    const x = (await readNpy(base.x)).data, gamma = (await readNpy(base.gamma)).data, beta = (await readNpy(base.beta)).data;
    const ref = referenceForward(x, groupNormDims([2, 8, 8, 8], 4, "nchw"), gamma, beta, 1e-12);
    await writeNpy(P("y-eps12.npy"), "float32", [2, 8, 8, 8], Float32Array.from(ref.y));
    await writeNpy(P("rstd-eps12.npy"), "float32", [2, 4], Float32Array.from(ref.rstd));
    const r = await verifyFiles({ ...base, y: P("y-eps12.npy"), rstd: P("rstd-eps12.npy") });
    expect(r.passed).toBe(false);
    expect(r.outputs.Y!.diagnosis).toMatch(/^Y matches GroupNorm with eps = 1e-12, not 1e-5 \(also with eps = 0: not told apart by these values\)$/);
    expect(r.outputs.rstd!.diagnosis).toMatch(/^rstd matches GroupNorm with eps = 1e-12, not 1e-5/);
  });

  it("a difference too small to fail but systematic is named in a note, and the output still passes", async () => {
    // unit-variance data, M = 512: eps 1e-6 instead of 1e-5 moves rstd by 4.5e-6, within float32 tolerance
    const shape = [4, 64, 16, 16], d = groupNormDims(shape, 32, "nchw");
    const x = Float32Array.from(randn(4 * 64 * 256, 11)), gamma = Float32Array.from(randn(64, 12)), beta = Float32Array.from(randn(64, 13));
    await writeNpy(P("n-x.npy"), "float32", shape, x);
    await writeNpy(P("n-g.npy"), "float32", [64], gamma);
    await writeNpy(P("n-b.npy"), "float32", [64], beta);
    const o = { mode: "forward" as const, x: P("n-x.npy"), groups: 32, gamma: P("n-g.npy"), beta: P("n-b.npy") };
    const right = referenceForward(x, d, gamma, beta, 1e-5), off = referenceForward(x, d, gamma, beta, 1e-6);
    await writeNpy(P("n-right.npy"), "float32", shape, Float32Array.from(right.y));
    await writeNpy(P("n-off.npy"), "float32", shape, Float32Array.from(off.y));
    const good = (await verifyFiles({ ...o, y: P("n-right.npy") })).outputs.Y!;
    expect(good.passed).toBe(true);
    expect(good.tolerance_used).toBeLessThan(0.1);
    expect(good.diagnosis).toBeNull();
    const r = await verifyFiles({ ...o, y: P("n-off.npy") });
    expect(r.passed).toBe(true);
    const y = r.outputs.Y!;
    expect(y.tolerance_used).toBeGreaterThan(0.5);
    expect(y.tolerance_used).toBeLessThanOrEqual(1);
    expect(y.diagnosis).toMatch(/^Y is within tolerance, but fits GroupNorm with eps = 1e-6 \(Flax, diffusers\) more closely than with 1e-5: [\d.]+% of the tolerance used, against [\d.]+%$/);
    const cli = groupnorm(["verify", "forward", o.x, "--groups", "32", "--gamma", o.gamma, "--beta", o.beta, "--y", P("n-off.npy")]);
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain("note: Y is within tolerance, but fits GroupNorm with eps = 1e-6");
  });

  it("--atol and --rtol replace the default tolerances", async () => {
    const perturbed = join(f32, "forward_perturbed_Y.npy");
    expect((await verifyFiles({ ...base, y: perturbed })).passed).toBe(false);
    const loose = await verifyFiles({ ...base, y: perturbed, atol: 0.1, rtol: 0.02 });
    expect(loose.passed).toBe(true);
    expect(loose.outputs.Y).toMatchObject({ atol: 0.1, rtol: 0.02 });
    const strict = await verifyFiles({ ...base, y: join(f32, "forward_torch_Y.npy"), atol: 0, rtol: 0 });
    expect(strict.passed).toBe(false); // PyTorch's float32 rounding is not exact
  });

  it("refuses what it cannot check, naming the problem", async () => {
    const bad = async (o: Partial<VerifyOptions>, message: RegExp) => {
      const e = await verifyFiles({ ...base, ...o } as VerifyOptions).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(InputError);
      expect(formatError(e as InputError)).toMatch(message);
    };
    await bad({}, /at least one candidate/);
    await bad({ mode: "backward", beta: undefined, dy: join(f32, "dy.npy"), dx: join(f32, "backward_torch_dX.npy"), mean: join(f32, "forward_torch_mean.npy") }, /--mean and --rstd must be given together/);
    // the other mode's inputs and candidates are named, not ignored
    await bad({ mode: "backward", dy: join(f32, "dy.npy"), dx: join(f32, "backward_torch_dX.npy") }, /beta is not an input of verify backward/);
    await bad({ mode: "backward", beta: undefined, dy: join(f32, "dy.npy"), dx: join(f32, "backward_torch_dX.npy"), y: join(f32, "forward_torch_Y.npy") }, /y is not an input of verify backward/);
    await bad({ y: join(f32, "forward_torch_Y.npy"), dx: join(f32, "backward_torch_dX.npy") }, /dx is not an input of verify forward/);
    await bad({ y: join(f32, "forward_torch_Y.npy"), dy: join(f32, "dy.npy") }, /dy is not an input of verify forward/);
    await bad({ mode: "sideways" as "forward", y: join(f32, "forward_torch_Y.npy") }, /mode/);
    await bad({ atol: -1, y: join(f32, "forward_torch_Y.npy") }, /atol/);
    await bad({ rtol: Number.NaN, y: join(f32, "forward_torch_Y.npy") }, /rtol/);
    await bad({ groups: 3, y: join(f32, "forward_torch_Y.npy") }, /not divisible by --groups 3/);
    await bad({ y: P("missing.npy") }, /missing\.npy.*no such file/);
    await bad({ gamma: join(f32, "x.npy"), y: join(f32, "forward_torch_Y.npy") }, /gamma/);
    await bad({ eps: -1, y: join(f32, "forward_torch_Y.npy") }, /eps/);
    await bad({ memory: 1 << 20, y: join(f32, "forward_torch_Y.npy") }, /raise --memory/);
    // the backward's sums per (n, c) count too (here, of both layouts' channel axes, 8 long): what is named runs
    const bw = { mode: "backward" as const, beta: undefined, dy: join(f32, "dy.npy"), dx: join(f32, "backward_torch_dX.npy") };
    const need = 8 * (120 * 2 * 4 + 100 * 8 + 32 * 2 * 8) + (16 << 20);
    await bad({ ...bw, memory: need - 1 }, /the reference needs .* for N·G = 8 groups, C = 8 channels and 16 \(sample, channel\) pairs, over --memory .*; raise --memory to/);
    expect((await verifyFiles({ ...base, ...bw, memory: need })).passed).toBe(true);
  });
});

describe("the tolerance at the edges", () => {
  // groupnorm's own float32 kernels are an honest float32 implementation (float64 sums): what they
  // write must pass however large the mean is against the spread
  it("groups whose mean is 10⁴ times their spread: an honest float32 forward and backward pass", async () => {
    const { groupNorm, groupNormBackward } = await import("groupnorm");
    const shape = [2, 16, 12, 12], G = 4, n = 2 * 16 * 144;
    const x = Float32Array.from(randn(n, 11), (v) => 1000 + 0.1 * v);
    const gamma = Float32Array.from(randn(16, 12)), beta = Float32Array.from(randn(16, 13)), dy = Float32Array.from(randn(n, 14));
    const f = await groupNorm(x, shape, { groups: G, gamma, beta, threads: 1 });
    const b = await groupNormBackward(dy, x, shape, { groups: G, gamma, threads: 1 });
    for (const [name, dtype, sh, data] of [["x", "float32", shape, x], ["g", "float32", [16], gamma], ["b", "float32", [16], beta], ["dy", "float32", shape, dy],
      ["y", "float32", shape, f.y], ["m", "float32", [2, G], f.mean], ["r", "float32", [2, G], f.rstd], ["dx", "float32", shape, b.dx!], ["dg", "float32", [16], b.dgamma!], ["db", "float32", [16], b.dbeta!]] as const)
      await writeNpy(P(`lm-${name}.npy`), dtype, [...sh], data as Float32Array);
    const fw = await verifyFiles({ mode: "forward", x: P("lm-x.npy"), groups: G, gamma: P("lm-g.npy"), beta: P("lm-b.npy"), y: P("lm-y.npy"), mean: P("lm-m.npy"), rstd: P("lm-r.npy") });
    const bw = await verifyFiles({ mode: "backward", x: P("lm-x.npy"), dy: P("lm-dy.npy"), groups: G, gamma: P("lm-g.npy"), dx: P("lm-dx.npy"), dgamma: P("lm-dg.npy"), dbeta: P("lm-db.npy") });
    for (const r of [fw, bw]) {
      expect(r.passed).toBe(true);
      for (const o of Object.values(r.outputs)) expect(o!.tolerance_used!).toBeLessThan(0.5);
    }
    // the room for the mean is not room for a wrong eps: checked as eps = 1e-3 (Keras's), rstd of a
    // spread of 0.1 is 5% off, and the eps the outputs were made with is named
    const wrong = await verifyFiles({ mode: "forward", x: P("lm-x.npy"), groups: G, eps: 1e-3, gamma: P("lm-g.npy"), beta: P("lm-b.npy"), rstd: P("lm-r.npy") });
    expect(wrong.outputs.rstd!.passed).toBe(false);
    expect(wrong.outputs.rstd!.diagnosis).toMatch(/^rstd matches GroupNorm with eps = 1e-5 \(PyTorch, ONNX\), not 0.001/);
  });

  it("a constant group with eps = 0: where the reference is undefined (NaN), any NaN or infinity matches", async () => {
    const shape = [1, 4, 2, 2], x = new Float32Array(16).fill(3);
    for (let i = 8; i < 16; i++) x[i] = i; // group 1 varies
    await writeNpy(P("c-x.npy"), "float32", shape, x);
    const d = groupNormDims(shape, 2, "nchw"), ref = referenceForward(Float64Array.from(x), d, null, null, 0);
    expect(Number.isNaN(ref.y[0])).toBe(true);
    const y = Float32Array.from(ref.y);
    y[0] = Infinity; y[1] = -Infinity; // 0·∞ written either way
    await writeNpy(P("c-y.npy"), "float32", shape, y);
    const r = await verifyFiles({ mode: "forward", x: P("c-x.npy"), groups: 2, eps: 0, y: P("c-y.npy") });
    expect(r.outputs.Y).toMatchObject({ passed: true, nan_mismatches: 0 });
    // but a NaN where the reference is finite is a mismatch
    y[8] = Number.NaN;
    await writeNpy(P("c-y2.npy"), "float32", shape, y);
    const bad = await verifyFiles({ mode: "forward", x: P("c-x.npy"), groups: 2, eps: 0, y: P("c-y2.npy") });
    expect(bad.outputs.Y).toMatchObject({ passed: false, reason: "nan", nan_mismatches: 1 });
  });

  it("--rtol alone keeps the scaled absolute part; --atol alone keeps the relative one", async () => {
    const y = join(f32, "forward_torch_Y.npy");
    const r = await verifyFiles({ ...base, y, rtol: 0 });
    expect(r.passed).toBe(true); // PyTorch's rounding is within the computing part alone
    expect(r.outputs.Y!.rtol).toBe(0);
    expect(r.outputs.Y!.atol).toBeGreaterThan(0);
    const a = await verifyFiles({ ...base, y, atol: 0 });
    expect(a.outputs.Y!.atol).toBe(0);
    expect(a.outputs.Y!.rtol).toBe(2 ** -22);
  });

  it("rstd written as var + eps is named", async () => {
    const x = (await readNpy(base.x)).data;
    const st = referenceStats(x, groupNormDims([2, 8, 8, 8], 4, "nchw"), 1e-5);
    await writeNpy(P("r-ve.npy"), "float32", [2, 4], Float32Array.from(st.rstd, (r) => 1 / (r * r)));
    const r = await verifyFiles({ ...base, rstd: P("r-ve.npy") });
    expect(r.outputs.rstd!.diagnosis).toBe("rstd matches GroupNorm with rstd written as var + eps, not 1/sqrt(var + eps)");
  });
});

describe("the backward's sums, derived from sums per (n, c)", () => {
  /** A float64 source over an array that counts the values read. */
  const source = (data: Float64Array, shape: number[]) => {
    const s = {
      name: "mem", dtype: "float64" as const, shape, size: data.length, values: 0,
      async read(start: number, n: number, out: Float32Array | Float64Array, at = 0) {
        s.values += n;
        out.set(data.subarray(start, start + n), at);
      },
      async close() {},
    };
    return s satisfies TensorSource;
  };
  const breathe = async () => {};

  /** The sums entry by entry, as the reference summed them before (and the absolute sums of their terms, for the rounding allowed). */
  function direct(dy: Float64Array, x: Float64Array, c: Convention, s: Stats, gamma: Float64Array): { sums: BackwardSums; abs: Record<string, Float64Array> } {
    const ix = s.index, gi = new Int32Array(x.length), ch = new Int32Array(x.length);
    ix.walk(0, x.length, gi, ch);
    const G = () => new Float64Array(ix.groups), C = () => new Float64Array(ix.C);
    const sums: BackwardSums = { sgdy: G(), sgdyx: G(), dymax: G(), dgamma: C(), dbeta: C(), absDgamma: C(), absDbeta: C() };
    const abs = { sgdy: G(), sgdyx: G(), dgamma: C(), dbeta: C(), absDgamma: C(), absDbeta: C() };
    const add = (k: keyof typeof abs, i: number, v: number) => {
      sums[k][i] += v;
      abs[k][i] += Math.abs(v);
    };
    for (let k = 0; k < x.length; k++) {
      const g = gi[k], chn = ch[k], d = dy[k], w = affineOf(c, gamma, null, chn, ix.groupOf[chn])[0];
      const xhat = (x[k] - s.mean[g]) * s.rstd[g], q = offsetFactor(s.mean[g], s.rstd[g]);
      add("sgdy", g, w * d);
      add("sgdyx", g, w * d * xhat);
      sums.dymax[g] = Math.max(sums.dymax[g], Math.abs(d));
      add("dgamma", chn, d * xhat);
      add("dbeta", chn, d);
      add("absDgamma", chn, Math.abs(d) * (Math.abs(xhat) * q + q - 1));
      add("absDbeta", chn, Math.abs(d));
    }
    return { sums, abs };
  }

  it("equal the sums entry by entry under every alternative, in both layouts; those of the given index and mean need no pass of their own", async () => {
    // both channel axes 6 long, so that gamma fits the file read in the other layout too
    const shape = [3, 6, 5, 6], size = 3 * 6 * 5 * 6, G = 3;
    const x = Float64Array.from(randn(size, 21), (v) => 2 + 0.5 * v), dy = randn(size, 22), gamma = randn(6, 23);
    for (const layout of ["nchw", "nhwc"] as const) {
      const sx = source(x, shape), sdy = source(dy, shape);
      const given = givenConvention({ eps: 1e-5, layout, hasGamma: true, hasBeta: false, otherLayout: false, statsGiven: false });
      const alts = alternatives({ eps: 1e-5, layout, hasGamma: true, hasBeta: false, otherLayout: true, statsGiven: false }).filter((c) => c.rstdAs === "rstd");
      const statsOfConv = async (c: Convention) => statsOf((await moments(sx, [new GroupIndex(shape, G, c.layout, c.grouping)], breathe))[0], c);
      const s0 = await statsOfConv(given);
      // statistics given: their mean is not the one recomputed from X
      const givenStats: Stats = { ...s0, mean: s0.mean.map((m, g) => m + 0.01 * (g + 1)), rstd: s0.rstd.map((r) => 1.1 * r) };
      const cases: Array<{ c: Convention; stats: Stats }> = [{ c: given, stats: s0 }, { c: given, stats: givenStats }];
      for (const c of alts) cases.push({ c, stats: await statsOfConv(c) });
      expect(new Set(cases.map(({ c }) => `${c.layout}/${c.grouping}`)).size).toBe(3);

      sx.values = sdy.values = 0;
      const first = await backwardSums(sdy, sx, [cases[0]], gamma, breathe);
      expect([sx.values, sdy.values]).toEqual([size, size]); // one pass
      const same = cases.filter(({ c, stats }) => c.layout === layout && c.grouping === "contiguous" && stats !== givenStats);
      expect(same.length).toBeGreaterThanOrEqual(8); // eps, the unbiased variance, the affines
      const shared = await backwardSums(sdy, sx, same, gamma, breathe, first.bases);
      expect([sx.values, sdy.values]).toEqual([size, size]); // none more
      const all = await backwardSums(sdy, sx, cases, gamma, breathe, first.bases);
      expect([sx.values, sdy.values]).toEqual([2 * size, 2 * size]); // one more, for the rest
      expect(shared.sums[0]).toEqual(first.sums[0]);

      cases.forEach(({ c, stats }, k) => {
        const { sums, abs } = direct(dy, x, c, stats, gamma), got = all.sums[k];
        expect(got.dymax, c.label).toEqual(sums.dymax);
        for (const name of Object.keys(abs) as Array<keyof typeof abs>) {
          got[name].forEach((v, i) => expect(Math.abs(v - sums[name][i]), `${layout} ${c.label} ${name}[${i}]`).toBeLessThanOrEqual(1e-13 * abs[name][i]));
        }
      });
    }
  });

  it("are 0 where the groups hold no values", async () => {
    const shape = [2, 4, 0], x = source(new Float64Array(0), shape), c = givenConvention({ eps: 1e-5, layout: "nchw", hasGamma: false, hasBeta: false, otherLayout: false, statsGiven: false });
    const ix = new GroupIndex(shape, 2, "nchw", "contiguous");
    const stats = statsOf((await moments(x, [ix], breathe))[0], c);
    const { sums: [s] } = await backwardSums(x, x, [{ c, stats }], null, breathe);
    for (const v of Object.values(s)) expect([...v].every((e) => e === 0)).toBe(true);
  });
});

describe("a failing 16 MiB backward", () => {
  it("is diagnosed as the eps it was computed with, from the failed entries and blocks spread over the file", async () => {
    const { groupNormBackward } = await import("groupnorm");
    const shape = [4, 64, 128, 128], G = 32, n = 4 * 64 * 128 * 128;
    // a spread of 0.1: eps 1e-6 instead of 1e-5 moves rstd by 4.5e-4, far beyond the tolerance
    const x = Float32Array.from(randn(n, 31), (v) => 0.5 + 0.1 * v), dy = Float32Array.from(randn(n, 32)), gamma = Float32Array.from(randn(64, 33), (v) => 1 + 0.1 * v);
    const b = await groupNormBackward(dy, x, shape, { groups: G, gamma, eps: 1e-6, threads: 1 });
    for (const [name, sh, data] of [["x", shape, x], ["dy", shape, dy], ["g", [64], gamma], ["dx", shape, b.dx!], ["dg", [64], b.dgamma!], ["db", [64], b.dbeta!]] as const)
      await writeNpy(P(`big16-${name}.npy`), "float32", [...sh], data as Float32Array);
    const o = { mode: "backward" as const, x: P("big16-x.npy"), dy: P("big16-dy.npy"), groups: G, gamma: P("big16-g.npy"), dx: P("big16-dx.npy"), dgamma: P("big16-dg.npy"), dbeta: P("big16-db.npy") };
    const r = await verifyFiles(o);
    expect(r.passed).toBe(false);
    const dx = r.outputs.dX!;
    expect(dx.checked).toBe(n);
    expect(dx.mismatches).toBeGreaterThan(4096); // more than are kept: a sample of them is tried
    expect(dx.diagnosis).toMatch(/^dX matches GroupNorm with eps = 1e-6 \(Flax, diffusers\), not 1e-5$/);
    // dgamma's sums over N·HxW values leave it room enough to pass, but not unnoticed
    expect(r.outputs.dgamma!.passed).toBe(true);
    expect(r.outputs.dgamma!.diagnosis).toMatch(/^dgamma is within tolerance, but fits GroupNorm with eps = 1e-6 \(Flax, diffusers\) more closely than with 1e-5: /);
    expect(r.outputs.dbeta!).toMatchObject({ passed: true, diagnosis: null }); // eps does not change it
    // and with the eps they were made with, all pass
    const right = await verifyFiles({ ...o, eps: 1e-6 });
    expect(right.passed).toBe(true);
    for (const out of Object.values(right.outputs)) expect(out!.diagnosis).toBeNull();
  }, 120_000);
});

describe("the command", () => {
  const fwd = ["verify", "forward", base.x, "--groups", "4", "--gamma", base.gamma, "--beta", base.beta];
  it("exit 0 when every candidate passes; --quiet prints nothing", () => {
    const r = groupnorm([...fwd, "--y", join(f32, "forward_torch_Y.npy"), "--mean", join(f32, "forward_torch_mean.npy"), "--rstd", join(f32, "forward_torch_rstd.npy")]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\s+Y\s+pass\s+1024 values; max abs error/m);
    expect(r.stdout.trimEnd().split("\n").pop()).toBe("passed");
    const q = groupnorm([...fwd, "--y", join(f32, "forward_torch_Y.npy"), "--quiet"]);
    expect([q.status, q.stdout, q.stderr]).toEqual([0, "", ""]);
  });

  it("exit 1 with the diagnosis in one line, the worst entry and the worst groups", () => {
    const r = groupnorm([...fwd, "--y", join(f32, "forward_eps1e-6_Y.npy")]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("diagnosis: Y matches GroupNorm with eps = 1e-6 (Flax, diffusers), not 1e-5\n");
    const p = groupnorm([...fwd, "--y", join(f32, "forward_perturbed_Y.npy")]);
    expect(p.status).toBe(1);
    expect(p.stdout).toMatch(/worst at \(1, \d+, \d+, \d+\): .*group \(1, 2\), channel [45]\n/);
    expect(p.stdout).toMatch(/worst groups: \(1, 2\) \d+ values, max error/);
  });

  it("a candidate of the wrong shape is a failed check (exit 1), not bad input", () => {
    const r = groupnorm([...fwd, "--y", base.gamma]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/Y\s+FAIL\s+.*gamma\.npy.*shape \(8,\).*\(2, 8, 8, 8\)/);
  });

  it("--json: the documented document", () => {
    const r = groupnorm(["verify", "backward", join(f32, "dy.npy"), base.x, "--groups", "4", "--gamma", base.gamma, "--dx", join(f32, "backward_unbiased_dX.npy"), "--dbeta", join(f32, "backward_torch_dbeta.npy"), "--json"]);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ command: "verify", mode: "backward", passed: false, layout: "nchw", groups: 4, eps: 1e-5 });
    expect(Object.keys(doc.outputs).sort()).toEqual(["dX", "dbeta"]);
    for (const o of Object.values(doc.outputs) as Array<Record<string, unknown>>) {
      for (const k of ["passed", "checked", "mismatches", "max_abs_error", "mean_abs_error", "max_rel_error", "max_ulp_error", "tolerance_used", "worst", "worst_groups", "diagnosis", "atol", "rtol"]) expect(o, k).toHaveProperty(k);
    }
    expect(doc.outputs.dX.diagnosis).toMatch(/^dX matches GroupNorm with the unbiased variance/);
    expect(Object.keys(doc.outputs.dX.worst).sort()).toEqual(["channel", "group", "index", "reference", "value"]);
    expect(doc.outputs.dbeta.passed).toBe(true);
  });

  it("bad input: exit 2 and one line naming the file and the problem", () => {
    const cases: Array<[string[], RegExp]> = [
      [[...fwd], /at least one candidate/],
      [[...fwd, "--y", P("nope.npy")], /nope\.npy.*no such file/],
      [["verify", "forward", base.x, "--groups", "4", "--gamma", base.x, "--y", join(f32, "forward_torch_Y.npy")], /gamma.*x\.npy|x\.npy.*gamma/],
      [["verify", "forward", base.x, "--y", join(f32, "forward_torch_Y.npy")], /--groups/],
      [["verify", "backward", base.x, "--groups", "4", "--dx", base.x], /missing required argument|DY|X\.npy/i],
      [["verify"], /Usage: groupnorm verify/],
    ];
    for (const [args, message] of cases) {
      const r = groupnorm(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
      if (args.length > 1) expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
  });

  it("verify --help and gradcheck --help say when to use which", () => {
    expect(groupnorm(["verify", "forward", "--help"]).stdout).toMatch(/gradcheck checks\s+groupnorm's own/);
    expect(groupnorm(["gradcheck", "--help"]).stdout).toMatch(/groupnorm verify\s+forward\|backward/);
  });
});

describe("a 1 GiB candidate", () => {
  it("verifies within the default memory, streaming, and the one wrong value is found in its group", async () => {
    // (16, 64, 512, 512) float32: X is zeros but for group (9, 5), which holds random values; Y is
    // zeros (right for constant groups: β = 0) but for that group's normalised values, and one
    // wrong value in group (14, 30). Both files are holes but for what is written: no disk to speak of.
    const shape = [16, 64, 512, 512], G = 32, D = 2, HxW = 512 * 512, M = D * HxW, size = 16 * 64 * HxW;
    const header = encodeNpyHeader("float32", shape);
    const sparse = (name: string, blocks: Array<[number, Float32Array]>) => {
      writeFileSync(P(name), header);
      truncateSync(P(name), header.length + 4 * size);
      const fd = openSync(P(name), "r+");
      for (const [at, v] of blocks) writeSync(fd, new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 0, v.byteLength, header.length + 4 * at);
      closeSync(fd);
      return P(name);
    };
    const start = (9 * 64 + 5 * D) * HxW; // group (9, 5): channels 10 and 11 of sample 9
    const xg = new Float32Array(M);
    let seed = 7;
    for (let i = 0; i < M; i++) xg[i] = (((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5) * 6;
    let sum = 0;
    for (const v of xg) sum += v;
    const mean = sum / M;
    let m2 = 0;
    for (const v of xg) m2 += (v - mean) ** 2;
    const rstd = 1 / Math.sqrt(m2 / M + 1e-5);
    const yg = xg.map((v) => (v - mean) * rstd);
    const wrongAt = (14 * 64 + 30 * D + 1) * HxW + 12345; // group (14, 30), channel 61
    const x = sparse("big-x.npy", [[start, xg]]);
    const y = sparse("big-y.npy", [[start, yg], [wrongAt, Float32Array.of(0.01)]]);
    const r = await run(["verify", "forward", x, "--groups", String(G), "--y", y, "--json"], { timeout: 300_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(1);
    const o = JSON.parse(r.stdout).outputs.Y;
    expect(o.checked).toBe(size);
    expect(o.mismatches).toBe(1);
    expect(o.worst).toMatchObject({ index: [14, 61, 12345 >> 9, 12345 & 511], group: [14, 30], channel: 61, value: Math.fround(0.01), reference: 0 });
    expect(o.max_ulp_error).toBeGreaterThan(0);
    expect(r.peak).toBeLessThan(300 * 2 ** 20); // default --memory 384M; measured ~80 MB
  }, 320_000);
});
