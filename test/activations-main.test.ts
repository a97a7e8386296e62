// Issue #17's activations through what main added beside them: bfloat16 inputs and outputs,
// tensors named in .npz and safetensors containers (beta from file:key) and --out containers, the
// memory planner (the backward holds beta through an activation), verify's diagnosis from per-(n, c)
// channel sums (one set per pre-activation, summed in passes), and gradcheck's pacing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { groupNormDims } from "../src/core/dims.js";
import { backwardFiles, createEngine, forwardFiles, gradcheck, groupNormBackward, verifyFiles } from "../src/index.js";
import { withEngine } from "../src/api/engine.js";
import { gradcheck as check } from "../src/checks/gradcheck.js";
import { ACTIVATION_PIECE, Pacer } from "../src/checks/pace.js";
import { bf16ToF32, encodeBF16 } from "../src/io/bfloat16.js";
import { MemorySource } from "../src/io/memory.js";
import { writeNpy } from "../src/io/npy/index.js";
import { activate } from "../src/oracle/activation.js";
import { planBackward } from "../src/pipeline/backward.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { bitsOf, values } from "./helpers/tensors.js";

const F = fileURLToPath(new URL("../fixtures/containers/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-act-main-"));
const P = (name: string) => join(tmp, name);
const engine = createEngine({ threads: 2, pool: "always" });
afterAll(async () => {
  await engine.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** float32 values rounded once to bfloat16, as float64. */
const toBF16 = (v: Float64Array) => {
  const o = new Uint16Array(v.length);
  encodeBF16(Float32Array.from(v), o);
  return Float64Array.from(o, bf16ToF32);
};

describe("bfloat16 and containers through the activation", () => {
  it("a bfloat16 run (PyTorch's tensors, beta from the safetensors file) is the float32 run of the same values rounded once, and verify passes it", async () => {
    const st = `${F}torch_bf16.safetensors`;
    const named = { x: `${st}:x`, gamma: `${st}:gamma`, beta: `${st}:beta` };
    const as32 = { x: `${F}bf16_as_f32.npy`, gamma: `${F}bf16_gamma_as_f32.npy`, beta: `${F}bf16_beta_as_f32.npy` };
    const f16 = await forwardFiles({ engine, ...named, groups: 3, activation: "silu", out: P("silu.safetensors") });
    const f32 = await forwardFiles({ engine, ...as32, groups: 3, activation: "silu", outDir: P("silu32") });
    expect([f16.activation, f16.dtypes.Y]).toEqual(["silu", "bfloat16"]);
    const b16 = await backwardFiles({ engine, dy: `${st}:dy`, ...named, groups: 3, activation: "silu", out: P("silu-grads.safetensors") });
    const b32 = await backwardFiles({ engine, dy: `${F}bf16_dy_as_f32.npy`, ...as32, groups: 3, activation: "silu", outDir: P("silu32-grads") });
    expect(b16.input.beta).toBe(`${st}:beta`);
    const pairs = [[f16.outputs.Y, f32.outputs.Y], [b16.outputs.dX, b32.outputs.dX], [b16.outputs.dgamma, b32.outputs.dgamma], [b16.outputs.dbeta, b32.outputs.dbeta]];
    for (const [a, b] of pairs) expect(bitsOf(await values(a!)).equals(bitsOf(toBF16(await values(b!)))), a).toBe(true);
    // beta moves the gradients through the activation: without it they differ
    const nobeta = await backwardFiles({ engine, dy: `${st}:dy`, x: named.x, gamma: named.gamma, groups: 3, activation: "silu", out: P("silu-nobeta.safetensors") });
    expect(bitsOf(await values(nobeta.outputs.dX!)).equals(bitsOf(await values(b16.outputs.dX!)))).toBe(false);
    const vf = await verifyFiles({ mode: "forward", ...named, groups: 3, activation: "silu", y: f16.outputs.Y, mean: f16.outputs.mean, rstd: f16.outputs.rstd });
    expect(vf.passed).toBe(true);
    const vb = await verifyFiles({ mode: "backward", dy: `${st}:dy`, ...named, groups: 3, activation: "silu", dx: b16.outputs.dX, dgamma: b16.outputs.dgamma, dbeta: b16.outputs.dbeta });
    expect(vb.passed, JSON.stringify(vb.outputs)).toBe(true);
  });

  it("inputs named in an .npz and a deflated .npz output give the .npy run's bits; the command line says so", async () => {
    const z = `${F}savez.npz`;
    const npz = await backwardFiles({ engine, dy: `${z}:dy`, x: `${z}:x`, gamma: `${z}:gamma`, beta: `${z}:beta`, groups: 3, activation: "gelu", out: P("gelu.npz"), compress: true });
    const npy = await backwardFiles({ engine, dy: `${F}dy.npy`, x: `${F}x.npy`, gamma: `${F}gamma.npy`, beta: `${F}beta.npy`, groups: 3, activation: "gelu", outDir: P("gelu-npy") });
    expect(npz.outputs).toEqual({ dX: `${P("gelu.npz")}:dX`, dgamma: `${P("gelu.npz")}:dgamma`, dbeta: `${P("gelu.npz")}:dbeta` });
    for (const k of ["dX", "dgamma", "dbeta"] as const) expect(bitsOf(await values(npz.outputs[k]!)).equals(bitsOf(await values(npy.outputs[k]!))), k).toBe(true);
    const r = groupnorm(["forward", `${z}:x`, "--groups", "3", "--gamma", `${z}:gamma`, "--beta", `${z}:beta`, "--activation", "gelu-tanh", "--out", P("cli.safetensors"), "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect([doc.activation, doc.outputs.Y]).toEqual(["gelu-tanh", `${P("cli.safetensors")}:Y`]);
    const same = await forwardFiles({ engine, x: `${F}x.npy`, gamma: `${F}gamma.npy`, beta: `${F}beta.npy`, groups: 3, activation: "gelu-tanh", outDir: P("gelu-tanh-npy") });
    expect(bitsOf(await values(doc.outputs.Y)).equals(bitsOf(await values(same.outputs.Y!)))).toBe(true);
  });
});

describe("the memory planner counts beta through an activation", () => {
  const C = 1 << 20;
  const x = new MemorySource("x.npy", new Float32Array(C), "float32", [1, C, 1]);
  const vector = (name: string) => new MemorySource(name, new Float32Array(C), "float32", [C]);
  const dims = groupNormDims(x.shape, C, "nchw");
  const plan = (act: number) => () => planBackward(1, { dy: x, x, dims, gamma: vector("g.npy"), beta: vector("b.npy"), stats: null, act, memoryBudget: 1 << 20 });
  it("the backward's refusal names beta among the vectors it holds, and only through an activation", () => {
    expect(plan(1)).toThrow(/too small for gamma, beta, the dgamma sums and the dbeta sums, C = 1048576 float64 values each \(32M\)/);
    expect(plan(0)).toThrow(/too small for gamma, the dgamma sums and the dbeta sums, C = 1048576 float64 values each \(24M\)/);
  });
  it("gradcheck counts beta (and the activation's coefficients) in the production backward's share", async () => {
    const share = async (activation: "silu" | null) => {
      const e = await gradcheck({ shape: [2, 65536, 2, 2], groups: 1024, memory: 1 << 20, activation, engine }).then(() => null, (err: Error) => err.message);
      const m = /\(([\d.]+)K held, ([\d.]+)K for the production backward\)/.exec(e ?? "");
      expect(m, e ?? "ran").not.toBeNull();
      return { held: Number(m![1]), backward: Number(m![2]) };
    };
    const plain = await share(null), silu = await share("silu");
    expect(silu.held).toBe(plain.held);
    expect(silu.backward - plain.backward).toBeGreaterThanOrEqual((8 * 65536) / 1024);
  });
});

describe("verify's diagnosis through an activation", () => {
  // float64 inputs, so that a convention difference is far beyond the tolerance
  const shape = [2, 8, 6, 5], groups = 4, d = groupNormDims(shape, groups, "nchw");
  const x = Float64Array.from(randn(d.N * d.C * d.HxW, 11), (v) => 1.5 * v + 0.5), dy = Float64Array.from(randn(x.length, 12));
  const gamma = Float64Array.from(randn(d.C, 13), (v) => 0.5 * v + 1), beta = Float64Array.from(randn(d.C, 14));
  const files = { x: P("dx-x.npy"), dy: P("dx-dy.npy"), gamma: P("dx-g.npy"), beta: P("dx-b.npy") };
  const ready = Promise.all([writeNpy(files.x, "float64", shape, x), writeNpy(files.dy, "float64", shape, dy), writeNpy(files.gamma, "float64", [d.C], gamma), writeNpy(files.beta, "float64", [d.C], beta)]);
  /** The gradients computed with `how`, written as candidates; verify backward through gelu with eps 1e-5, the given convention. */
  async function diagnose(tag: string, how: Parameters<typeof groupNormBackward>[3]) {
    await ready;
    const r = await groupNormBackward(dy, x, shape, { groups, engine, ...how });
    const c = { dx: P(`${tag}-dx.npy`), dgamma: P(`${tag}-dg.npy`), dbeta: P(`${tag}-db.npy`) };
    await Promise.all([writeNpy(c.dx, "float64", shape, r.dx!), writeNpy(c.dgamma, "float64", [d.C], r.dgamma!), writeNpy(c.dbeta, "float64", [d.C], r.dbeta!)]);
    const v = await verifyFiles({ mode: "backward", ...files, groups, activation: "gelu", ...c });
    expect(v.passed).toBe(false);
    return { dX: v.outputs.dX!.diagnosis, dgamma: v.outputs.dgamma!.diagnosis, dbeta: v.outputs.dbeta!.diagnosis };
  }
  it("names another eps for every gradient (dbeta too: eps moves the pre-activation), found among a pass of sums per pre-activation", async () => {
    const r = await diagnose("eps", { gamma, beta, activation: "gelu", eps: 1e-3 });
    for (const k of ["dX", "dgamma", "dbeta"] as const) expect(r[k], k).toMatch(new RegExp(`^${k} matches GroupNorm with eps = 0\\.001 \\(Keras\\), not 1e-5`));
  });
  it("names gamma and beta swapped (beta is the scale of dY then), and the activation left out", async () => {
    const swapped = await diagnose("swapped", { gamma: beta, beta: gamma, activation: "gelu" });
    for (const k of ["dX", "dgamma", "dbeta"] as const) expect(swapped[k], k).toMatch(new RegExp(`^${k} matches GroupNorm with gamma and beta swapped, not in their places`));
    const none = await diagnose("none", { gamma, beta });
    for (const k of ["dX", "dgamma", "dbeta"] as const) expect(none[k], k).toMatch(new RegExp(`^${k} matches GroupNorm with no activation, not gelu`));
  });
});

describe("gradcheck's pacing through an activation", () => {
  it("a loss through gelu lets the event loop in every ACTIVATION_PIECE values, a few milliseconds of its float64 reference", async () => {
    const M = 1 << 16;
    const src = (name: string, seed: number) => new MemorySource(name, Float64Array.from(randn(M, seed)), "float64", [1, 1, M]);
    class Counting extends Pacer {
      calls = 0;
      override async pace(): Promise<void> {
        this.calls++;
        return super.pace();
      }
    }
    const count = async (activation: "gelu" | null) => {
      const pacer = new Counting();
      const r = await withEngine({ engine }, (e) => check(e, { d: groupNormDims([1, 1, M], 1, "nchw"), shape: [1, 1, M], x: src("x", 1), dy: src("dy", 2), gamma: null, beta: null, eps: 1e-5, activation, precision: "f64", memoryBudget: 1 << 26 }, { samples: 1, seed: 0, atol: 1e-6, rtol: 1e-5, pacer }));
      expect(r.passed).toBe(true);
      return pacer.calls;
    };
    const plain = await count(null), gelu = await count("gelu");
    // one dX entry: two losses, each of M values; through gelu in pieces of ACTIVATION_PIECE
    expect(gelu - plain).toBeGreaterThanOrEqual(2 * (M / ACTIVATION_PIECE - 1));
    let s = 0;
    for (let i = 0; i < 2 * ACTIVATION_PIECE; i++) s += activate("gelu", (i / ACTIVATION_PIECE - 1) * 4); // warm
    const t = performance.now();
    for (let i = 0; i < ACTIVATION_PIECE; i++) s += activate("gelu", (i / ACTIVATION_PIECE - 0.5) * 8);
    expect(performance.now() - t, String(s)).toBeLessThan(20);
  });
});
