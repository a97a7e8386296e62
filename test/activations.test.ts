// Issue #17, activations: Y = act(GroupNorm(X)) for act = silu (swish), gelu (erf form), gelu-tanh,
// forward and backward (dY·act'(pre) into GroupNorm's backward), computed in the kernels' own passes.
// Against PyTorch 1.13's float64 results (fixtures/activations/generate.py: torch.nn.functional for
// the tuning cases, the torch.nn modules with channels_last memory for the held-out ones), both
// layouts, float16/float32/float64 inputs; against the float64 oracle; the kernels' vectorised
// functions against the oracle's; bitwise the same for any thread count and any slicing, through the
// float64 fallbacks of extreme groups too; verify and gradcheck through each activation.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ACTIVATIONS, type Activation, activationCode, checkActivation } from "../src/core/activation.js";
import { groupNormDims, type Layout } from "../src/core/dims.js";
import { backwardFiles, createEngine, decodeFloat16, encodeFloat16, forwardFiles, gradcheck, groupNorm, groupNormBackward, type GroupNormEngine, verifyFiles } from "../src/index.js";
import { readNpy, writeNpy } from "../src/io/npy/index.js";
import { planRun } from "../src/pipeline/budget.js";
import { createSharedMemory, instantiateKernels } from "../src/kernels/wasm.js";
import { activate, activationSlope, CURVATURE, normalCdf, SLOPE } from "../src/oracle/activation.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { groupnorm } from "./helpers/cli.js";
import { randn, relError } from "./helpers/random.js";

const root = new URL("../fixtures/activations/", import.meta.url).pathname;
interface Case {
  folder: string;
  layout: Layout;
  shape: number[];
  groups: number;
  eps: number;
  dtype: "float16" | "float32" | "float64";
}
const manifest: { cases: Case[]; heldout: Case[] } = JSON.parse(readFileSync(join(root, "manifest.json"), "utf8"));
/** The fixtures' file suffix of an activation. */
const suffix = (a: Activation) => a.replace("-", "_");
const load = async (c: Case, file: string) => (await readNpy(join(root, c.folder, file), "float64")).data as Float64Array;
/** The relative tolerance (max |error| / max |reference|) against PyTorch's float64, by input dtype. */
const TOL = { float16: 4e-3, float32: 3e-5, float64: 1e-9 };

const engines: Record<number, GroupNormEngine> = { 1: createEngine({ threads: 1 }), 2: createEngine({ threads: 2, pool: "always" }), 3: createEngine({ threads: 3, pool: "always" }) };
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-act-"));
afterAll(async () => {
  await Promise.all(Object.values(engines).map((e) => e.close()));
  rmSync(tmp, { recursive: true, force: true });
});

describe("names", () => {
  it("takes silu, its alias swish, gelu, gelu-tanh and none; refuses others", () => {
    expect(checkActivation("silu")).toBe("silu");
    expect(checkActivation("Swish")).toBe("silu");
    expect(checkActivation("gelu")).toBe("gelu");
    expect(checkActivation("gelu-tanh")).toBe("gelu-tanh");
    expect(checkActivation("none")).toBeNull();
    expect(checkActivation(undefined)).toBeNull();
    expect(() => checkActivation("relu")).toThrow(/silu \(or swish\), gelu, gelu-tanh or none, got "relu"/);
    expect(ACTIVATIONS.map((a) => activationCode(a))).toEqual([1, 2, 3]);
  });
});

describe("the float64 oracle", () => {
  it("Φ matches mpmath at 40 digits (fixtures/activations/phi.npy)", async () => {
    const { data } = await readNpy(join(root, "phi.npy"), "float64");
    const K = data.length / 2;
    for (let k = 0; k < K; k++) {
      const z = data[k], want = data[K + k], got = normalCdf(z);
      // absolute ~2^-52 in the bulk (1 − erf); relative 1e-15 in the lower tail (the continued fraction)
      expect(Math.abs(got - want), `z = ${z}`).toBeLessThanOrEqual(Math.max(2.5e-16, 1e-15 * want));
    }
  });
  it("each activation's slope is its derivative, within its SLOPE and CURVATURE bounds", () => {
    for (const a of ACTIVATIONS) {
      let top = 0, curv = 0;
      for (let z = -12; z <= 12; z += 1 / 64) {
        const h = 1e-5, num = (activate(a, z + h) - activate(a, z - h)) / (2 * h);
        expect(Math.abs(activationSlope(a, z) - num), `${a} at ${z}`).toBeLessThan(1e-8);
        top = Math.max(top, Math.abs(activationSlope(a, z)));
        curv = Math.max(curv, Math.abs((activationSlope(a, z + h) - activationSlope(a, z - h)) / (2 * h)));
      }
      expect(top).toBeLessThanOrEqual(SLOPE[a]);
      expect(curv).toBeLessThanOrEqual(CURVATURE[a]);
    }
  });
  it.each(manifest.cases)("matches PyTorch float64 on $folder", async (c) => {
    const d = groupNormDims(c.shape, c.groups, c.layout);
    const [x, dy, gamma, beta] = await Promise.all(["x", "dy", "gamma", "beta"].map((n) => load(c, `${n}.npy`)));
    for (const a of ACTIVATIONS) {
      const f = referenceForward(x, d, gamma, beta, c.eps, a);
      expect(relError(f.y, await load(c, `y_${suffix(a)}.npy`)), a).toBeLessThan(1e-13);
      const b = referenceBackward(dy, x, d, gamma, f, { activation: a, beta });
      expect(relError(b.dx, await load(c, `dx_${suffix(a)}.npy`)), a).toBeLessThan(1e-12);
      expect(relError(b.dgamma, await load(c, `dgamma_${suffix(a)}.npy`)), a).toBeLessThan(1e-12);
      expect(relError(b.dbeta, await load(c, `dbeta_${suffix(a)}.npy`)), a).toBeLessThan(1e-12);
    }
  });
});

describe("the kernels' vectorised functions against the oracle", () => {
  const memory = createSharedMemory(64);
  const k = instantiateKernels(memory);
  // every path of act_array: four vectors at a time, one, and single values (n not a multiple of 4)
  const z = Float64Array.from({ length: 8003 }, (_, i) => -20 + (40 * i) / 8002);
  const run = (a: Activation, f64: boolean, slope: boolean) => {
    const at = 1 << 20;
    const v = f64 ? new Float64Array(memory.buffer, at, z.length) : new Float32Array(memory.buffer, at, z.length);
    v.set(z);
    k.act_array(at, z.length, activationCode(a), f64 ? 1 : 0, slope ? 1 : 0);
    return { input: f64 ? z : Float64Array.from(Float32Array.from(z)), out: Float64Array.from(v) };
  };
  // the measured bounds (docs/activations.md) with room: absolute error / max(1, |z|) in units of epsilon
  it.each(ACTIVATIONS.flatMap((a) => [[a, "float32"], [a, "float64"]] as const))("%s in %s: within 3 epsilon·max(1, |z|) of the oracle, value and slope", (a, dt) => {
    const eps = dt === "float32" ? 2 ** -23 : 2 ** -52;
    for (const slope of [false, true]) {
      const { input, out } = run(a, dt === "float64", slope);
      let worst = 0;
      for (let i = 0; i < input.length; i++) {
        const ref = slope ? activationSlope(a, input[i]) : activate(a, input[i]);
        worst = Math.max(worst, Math.abs(out[i] - ref) / Math.max(1, Math.abs(input[i])) / eps);
      }
      expect(worst, slope ? "slope" : "value").toBeLessThan(3);
    }
  });
});

/** Runs forward and backward files on a case and compares with its fixtures. */
async function filesMatch(c: Case, a: Activation, engine: GroupNormEngine, tol: number): Promise<void> {
  const dir = join(root, c.folder), out = join(tmp, `${c.folder.replace("/", "-")}-${a}`);
  const common = { engine, groups: c.groups, layout: c.layout, eps: c.eps, gamma: join(dir, "gamma.npy"), beta: join(dir, "beta.npy"), activation: a, memory: 1 << 30 };
  const f = await forwardFiles({ ...common, x: join(dir, "x.npy"), outDir: out });
  expect(f.activation).toBe(a);
  const y = (await readNpy(f.outputs.Y!, "float64")).data;
  expect(relError(y, await load(c, `y_${suffix(a)}.npy`)), `${a} Y`).toBeLessThan(tol);
  const b = await backwardFiles({ ...common, dy: join(dir, "dy.npy"), x: join(dir, "x.npy"), outDir: out });
  expect(b.activation).toBe(a);
  expect(b.input.beta).toBe(common.beta);
  for (const [name, file] of [["dX", "dx"], ["dgamma", "dgamma"], ["dbeta", "dbeta"]] as const) {
    const v = (await readNpy(b.outputs[name]!, "float64")).data;
    expect(relError(v, await load(c, `${file}_${suffix(a)}.npy`)), `${a} ${name}`).toBeLessThan(tol);
  }
}

describe("the production path against PyTorch float64", () => {
  it.each(manifest.cases.flatMap((c) => ACTIVATIONS.map((a) => [c.folder, a, c] as const)))("%s %s: files within the dtype's tolerance", async (_f, a, c) => {
    await filesMatch(c, a, engines[1], TOL[c.dtype]);
  });
});

describe("held-out cases (another seed and shapes, torch.nn modules, channels_last memory)", () => {
  it.each(manifest.heldout.flatMap((c) => ACTIVATIONS.map((a) => [c.folder, a, c] as const)))("%s %s", async (_f, a, c) => {
    await filesMatch(c, a, engines[2], TOL[c.dtype]);
  });
});

/** Random inputs of a layout's shape, stored in a dtype. */
function inputs(layout: Layout, nchw: number[], dtype: "float32" | "float64", seed: number, scale = 1.5) {
  const [N, C, ...sp] = nchw;
  const shape = layout === "nchw" ? nchw : [N, ...sp, C];
  const size = shape.reduce((p, v) => p * v, 1);
  const A = dtype === "float32" ? Float32Array : Float64Array;
  const x = A.from(randn(size, seed, scale, 0.2)), dy = A.from(randn(size, seed + 1));
  const gamma = Float64Array.from(A.from(randn(C, seed + 2, 0.6, 1))), beta = Float64Array.from(A.from(randn(C, seed + 3, 0.8)));
  return { shape, x, dy, gamma, beta };
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  const p = Float64Array.from(a), q = Float64Array.from(b);
  return p.length === q.length && p.every((v, i) => Object.is(v, q[i]));
};

describe("bitwise the same for any thread count and any slicing", () => {
  // NCHW HxW = 70000: units of one block of a channel (a group split into blocks); NHWC D = 16 and
  // D = 2 (the per-group and the per-channel loops); the small --memory (forward, backward) streams
  // groups in slices (NCHW float64) or items in chunks (the others: planRun says which)
  const CASES: Array<[Layout, number[], number, "float32" | "float64", [number, number]]> = [
    ["nchw", [2, 4, 70000], 2, "float32", [600_000, 600_000]],
    ["nhwc", [2, 32, 100, 100], 2, "float32", [1_500_000, 2_500_000]],
    ["nhwc", [2, 12, 30, 30], 6, "float32", [60_000, 100_000]],
    ["nchw", [3, 8, 33, 21], 4, "float64", [100_000, 100_000]],
    ["nhwc", [2, 8, 25, 25], 2, "float64", [60_000, 100_000]],
  ];
  it.each(CASES.flatMap(([l, s, g, dt, m]) => ACTIVATIONS.map((a) => [l, s.join("x"), dt, a, s, g, m] as const)))("%s %s %s %s", async (layout, _s, dtype, a, nchw, groups, small) => {
    const { shape, x, dy, gamma, beta } = inputs(layout, nchw, dtype, 42);
    const big: [number, number] = [1 << 30, 1 << 30];
    const runs = [{ threads: 1, memory: big }, { threads: 2, memory: big }, { threads: 3, memory: big }, { threads: 2, memory: small }, { threads: 3, memory: small }];
    let first: { y: ArrayLike<number>; dx: ArrayLike<number>; dgamma: ArrayLike<number>; dbeta: ArrayLike<number> } | null = null;
    for (const r of runs) {
      const o = { groups, layout, gamma, beta, activation: a, engine: engines[r.threads] };
      const f = await groupNorm(x, shape, { ...o, memory: r.memory[0] });
      const b = await groupNormBackward(dy, x, shape, { ...o, memory: r.memory[1] });
      const got = { y: f.y, dx: b.dx!, dgamma: b.dgamma!, dbeta: b.dbeta! };
      if (!first) {
        first = got;
        // and right: against the oracle
        const d = groupNormDims(shape, groups, layout);
        const rf = referenceForward(x, d, gamma, beta, 1e-5, a);
        const rb = referenceBackward(dy, x, d, gamma, rf, { activation: a, beta });
        const tol = dtype === "float32" ? 3e-6 : 1e-13;
        expect(relError(f.y, rf.y)).toBeLessThan(tol);
        expect(relError(b.dx!, rb.dx)).toBeLessThan(tol);
        expect(relError(b.dgamma!, rb.dgamma)).toBeLessThan(tol);
        expect(relError(b.dbeta!, rb.dbeta)).toBeLessThan(tol);
      } else {
        for (const k of ["y", "dx", "dgamma", "dbeta"] as const) expect(same(got[k], first[k]), `${k} with ${JSON.stringify(r)}`).toBe(true);
      }
    }
    // the small budgets do stream in parts
    const d = groupNormDims(shape, groups, layout), precision = dtype === "float32" ? "f32" : "f64";
    for (const [k, kind] of (["forward", "backward"] as const).entries()) {
      const p = planRun({ dims: d, precision, kind, budget: small[k], threads: 2, host: [], file: "x", act: true });
      expect(p.kind === "chunks" || (p.kind === "slices" && p.slices.count > 1), `${kind} ${p.kind}`).toBe(true);
    }
  });
});

describe("extreme float32 groups through the activation (the float64 fallbacks)", () => {
  // one group of values ~1e-32 with eps = 0 (rstd ~1e32: float64 coefficients), among ordinary groups:
  // NCHW runs that item in float64, NHWC only that group of the sample; the others keep their bits
  it.each(ACTIVATIONS.flatMap((a) => (["nchw", "nhwc"] as const).map((l) => [l, a] as const)))("%s %s", async (layout, a) => {
    const nchw = [2, 8, 6, 5], G = 4;
    const { shape, x, dy, gamma, beta } = inputs(layout, nchw, "float32", 7);
    const d = groupNormDims(shape, G, layout);
    const tiny = Float32Array.from(x);
    for (let c = 2; c < 4; c++) for (let s = 0; s < d.HxW; s++) {
      const i = layout === "nchw" ? (1 * d.C + c) * d.HxW + s : (1 * d.HxW + s) * d.C + c;
      tiny[i] = Math.fround(x[i] * 1e-32);
    }
    let first: Float64Array[] | null = null;
    for (const threads of [1, 3]) {
      const o = { groups: G, layout, gamma, beta, eps: 0, activation: a, engine: engines[threads] };
      const f = await groupNorm(tiny, shape, o);
      const b = await groupNormBackward(dy, tiny, shape, o);
      const got = [f.y, b.dx!, b.dgamma!, b.dbeta!].map((v) => Float64Array.from(v));
      if (!first) {
        const rf = referenceForward(tiny, d, gamma, beta, 0, a);
        const rb = referenceBackward(dy, tiny, d, gamma, rf, { activation: a, beta });
        [rf.y, rb.dx, rb.dgamma, rb.dbeta].forEach((r, k) => expect(relError(got[k], r), ["y", "dx", "dgamma", "dbeta"][k]).toBeLessThan(3e-6));
        first = got;
      } else got.forEach((v, k) => expect(same(v, first![k])).toBe(true));
    }
    // the ordinary groups get what they get without the extreme one
    const alone = await groupNorm(x, shape, { groups: G, layout, gamma, beta, eps: 0, activation: a, engine: engines[1] });
    for (let n = 0; n < d.N; n++) for (let c = 0; c < d.C; c++) for (let s = 0; s < d.HxW; s++) {
      if (n === 1 && c >= 2 && c < 4) continue;
      const i = layout === "nchw" ? (n * d.C + c) * d.HxW + s : (n * d.HxW + s) * d.C + c;
      if (!Object.is(first![0][i], alone.y[i])) throw new Error(`y[${i}] changed: ${first![0][i]} vs ${alone.y[i]}`);
    }
  });
});

describe("the API", () => {
  it("float16 input computes in float32 and rounds once", async () => {
    const c = manifest.cases.find((k) => k.folder === "cases/nchw_float16")!;
    const x = encodeFloat16(await load(c, "x.npy"));
    const gamma = await load(c, "gamma.npy"), beta = await load(c, "beta.npy");
    const r = await groupNorm(x, c.shape, { groups: c.groups, gamma, beta, dtype: "float16", activation: "gelu", engine: engines[1] });
    expect(r.y).toBeInstanceOf(Uint16Array);
    expect(relError(decodeFloat16(r.y as Uint16Array), await load(c, "y_gelu.npy"))).toBeLessThan(TOL.float16);
  });
  it("without an activation, beta does not move the gradients; with one it does", async () => {
    const { shape, x, dy, gamma, beta } = inputs("nchw", [2, 8, 5, 5], "float32", 3);
    const o = { groups: 2, gamma, engine: engines[1] };
    const plain = await groupNormBackward(dy, x, shape, o);
    expect(same((await groupNormBackward(dy, x, shape, { ...o, beta })).dx!, plain.dx!)).toBe(true);
    const act = await groupNormBackward(dy, x, shape, { ...o, beta, activation: "silu" });
    const act0 = await groupNormBackward(dy, x, shape, { ...o, activation: "silu" });
    expect(same(act.dx!, act0.dx!)).toBe(false);
  });
  it("refuses an unknown activation and a beta of the wrong length", async () => {
    const { shape, x, dy, gamma } = inputs("nchw", [1, 4, 3, 3], "float32", 5);
    await expect(groupNorm(x, shape, { groups: 2, activation: "tanh" as Activation })).rejects.toThrow(/activation must be silu/);
    await expect(groupNormBackward(dy, x, shape, { groups: 2, gamma, beta: [1, 2, 3], activation: "silu" })).rejects.toThrow(/beta must have 4 values/);
    // G values: per-channel affine names the per-group one
    await expect(groupNormBackward(dy, x, shape, { groups: 2, gamma, beta: [1, 2], activation: "silu" })).rejects.toThrow(/affine: "per-group"/);
  });
});

describe("verify through an activation", () => {
  const c = manifest.cases.find((k) => k.folder === "cases/nhwc_float64")!;
  const dir = join(root, c.folder);
  const base = { groups: c.groups, layout: c.layout, eps: c.eps, gamma: join(dir, "gamma.npy"), x: join(dir, "x.npy") };
  it.each(ACTIVATIONS)("PyTorch's %s results pass, forward and backward", async (a) => {
    const f = await verifyFiles({ ...base, mode: "forward", beta: join(dir, "beta.npy"), activation: a, y: join(dir, `y_${suffix(a)}.npy`) });
    expect(f.passed).toBe(true);
    expect(f.activation).toBe(a);
    expect(f.outputs.Y!.tolerance_used!).toBeLessThan(0.1);
    const b = await verifyFiles({
      ...base, mode: "backward", dy: join(dir, "dy.npy"), beta: join(dir, "beta.npy"), activation: a,
      dx: join(dir, `dx_${suffix(a)}.npy`), dgamma: join(dir, `dgamma_${suffix(a)}.npy`), dbeta: join(dir, `dbeta_${suffix(a)}.npy`),
    });
    expect(b.passed).toBe(true);
    for (const o of Object.values(b.outputs)) expect(o!.tolerance_used!).toBeLessThan(0.1);
  });
  it("PyTorch's float32 results (the held-out cases' rounded) pass with little of the tolerance", async () => {
    const h = manifest.heldout.find((k) => k.folder === "heldout/nhwc_float32")!;
    const hd = join(root, h.folder);
    for (const a of ACTIVATIONS) {
      const y = join(tmp, `y32-${a}.npy`);
      await writeNpy(y, "float32", h.shape, Float32Array.from(await load(h, `y_${suffix(a)}.npy`)));
      const r = await verifyFiles({ mode: "forward", x: join(hd, "x.npy"), groups: h.groups, layout: h.layout, gamma: join(hd, "gamma.npy"), beta: join(hd, "beta.npy"), activation: a, y });
      expect(r.passed, a).toBe(true);
      expect(r.outputs.Y!.tolerance_used!, a).toBeLessThan(0.1);
    }
  });
  it("names the activation a candidate follows when it is not the given one", async () => {
    const f = await verifyFiles({ ...base, mode: "forward", beta: join(dir, "beta.npy"), activation: "gelu", y: join(dir, "y_gelu_tanh.npy") });
    expect(f.passed).toBe(false);
    expect(f.outputs.Y!.diagnosis).toMatch(/^Y matches GroupNorm with gelu-tanh as the activation, not gelu/);
    const b = await verifyFiles({ ...base, mode: "backward", dy: join(dir, "dy.npy"), beta: join(dir, "beta.npy"), activation: "silu", dx: join(dir, "dx_gelu.npy") });
    expect(b.outputs.dX!.diagnosis).toMatch(/gelu as the activation, not silu/);
  });
  it("backward takes beta only with an activation, as before without one", async () => {
    await expect(verifyFiles({ ...base, mode: "backward", dy: join(dir, "dy.npy"), beta: join(dir, "beta.npy"), dx: join(dir, "dx_silu.npy") })).rejects.toThrow(/beta is not an input of verify backward/);
  });
});

describe("gradcheck through each activation", () => {
  it.each(ACTIVATIONS.flatMap((a) => [[a, "nchw", "float64"], [a, "nhwc", "float32"], [a, "nchw", "float16"]] as const))("%s %s %s", async (a, layout, dtype) => {
    const r = await gradcheck({ shape: [2, 16, 6, 5], groups: 4, layout, dtype, activation: a, seed: 3, engine: engines[2] });
    expect(r.passed).toBe(true);
    expect(r.activation).toBe(a);
    expect(Object.keys(r.outputs).sort()).toEqual(["dX", "dbeta", "dgamma"]);
  });
});

describe("the command line", () => {
  const c = manifest.cases.find((k) => k.folder === "cases/nchw_float32")!;
  const dir = join(root, c.folder);
  it("forward --activation swish writes silu's Y and says so", async () => {
    const y = join(tmp, "cli-y.npy");
    const r = groupnorm(["forward", join(dir, "x.npy"), "--groups", String(c.groups), "--gamma", join(dir, "gamma.npy"), "--beta", join(dir, "beta.npy"), "--activation", "swish", "--y", y, "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).activation).toBe("silu");
    expect(relError((await readNpy(y, "float64")).data, await load(c, "y_silu.npy"))).toBeLessThan(TOL.float32);
  });
  it("backward warns that --beta has no effect without --activation; verify and gradcheck take --activation", () => {
    const out = join(tmp, "cli-b");
    const r = groupnorm(["backward", join(dir, "dy.npy"), join(dir, "x.npy"), "--groups", String(c.groups), "--beta", join(dir, "beta.npy"), "--out-dir", out]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/--beta has no effect without --activation/);
    const v = groupnorm(["verify", "backward", join(dir, "dy.npy"), join(dir, "x.npy"), "--groups", String(c.groups), "--gamma", join(dir, "gamma.npy"), "--beta", join(dir, "beta.npy"), "--activation", "gelu-tanh", "--dgamma", join(dir, "dgamma_gelu_tanh.npy")]);
    expect(v.status, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/through gelu-tanh/);
    const g = groupnorm(["gradcheck", "--shape", "2,8,4,4", "--groups", "2", "--activation", "gelu", "--json"]);
    expect(g.status, g.stdout).toBe(0);
    expect(JSON.parse(g.stdout).activation).toBe("gelu");
  });
  it("refuses an unknown activation naming the flag", () => {
    const r = groupnorm(["forward", join(dir, "x.npy"), "--groups", "2", "--activation", "relu"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--activation must be silu \(or swish\), gelu, gelu-tanh or none, got "relu"/);
  });
});
