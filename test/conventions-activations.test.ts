// Issue #17: the conventions and the activations together — interleaved groups, a per-group affine
// and group sizes through silu, gelu and gelu-tanh, forward and backward, both layouts, float16,
// float32 and float64, against the float64 oracle (itself checked against PyTorch in
// conventions.test.ts and activations.test.ts); bitwise the same for 1 and 2 threads, for slices
// of one sample, and for a sample streamed in chunks (interleaved groups through an activation run
// dy·act'(pre) in a pass of their own, with float64 coefficients), through the float64 fallbacks of
// extreme groups too.
import { afterAll, describe, expect, it } from "vitest";
import type { Activation } from "../src/core/activation.js";
import { type ConventionOptions, conventionDims, perGroupSums, resolveConvention } from "../src/core/conventions.js";
import type { Dims } from "../src/core/dims.js";
import { createEngine, decodeFloat16, encodeFloat16, groupNorm, groupNormBackward } from "../src/index.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { type Plan, planRun } from "../src/pipeline/budget.js";
import { InputError } from "../src/errors.js";
import { randn, relError } from "./helpers/random.js";

type Dt = "float16" | "float32" | "float64";
const engine1 = createEngine({ threads: 1 });
const engine2 = createEngine({ threads: 2, pool: "always" });
afterAll(async () => {
  await engine1.close();
  await engine2.close();
});

/** Against the float64 oracle (max |error| / max |reference|), by input dtype: as without conventions. */
const TOL: Record<Dt, number> = { float16: 4e-3, float32: 3e-5, float64: 1e-11 };

/** Values as stored in the dtype (what the kernels see), and the typed array handed to the API. */
function stored(values: Float64Array, dtype: Dt): { typed: Float32Array | Float64Array | Uint16Array; exact: Float64Array } {
  if (dtype === "float64") return { typed: values, exact: values };
  if (dtype === "float32") {
    const t = Float32Array.from(values);
    return { typed: t, exact: Float64Array.from(t) };
  }
  const t = encodeFloat16(values);
  return { typed: t, exact: Float64Array.from(decodeFloat16(t)) };
}

/** (G,) or (C,) affine values as the C per-channel ones the oracle takes. */
const expand = (v: Float64Array, d: Dims, perGroup: boolean) =>
  perGroup ? Float64Array.from({ length: d.C }, (_, c) => v[d.interleaved ? c % d.G : Math.floor(c / d.D)]) : v;

interface Setup {
  shape: number[];
  options: ConventionOptions;
  dtype: Dt;
  activation: Activation;
  extreme?: boolean;
}

function inputs(s: Setup, seed: number) {
  const d = conventionDims(s.shape, resolveConvention(s.options));
  const n = s.shape.reduce((a, b) => a * b, 1);
  const xv = randn(n, seed, 1.5, 0.3);
  if (s.extreme) {
    // group 1 ill-conditioned (3e4 + 1e-3·x): the float32 loops hand it to float64
    for (let i = 0; i < n; i++) {
      const c = d.layout === "nchw" ? Math.floor(i / d.HxW) % d.C : i % d.C;
      const g = d.interleaved ? c % d.G : Math.floor(c / d.D);
      if (g === 1) xv[i] = 3e4 + 1e-3 * xv[i];
    }
  }
  const perGroup = s.options.affine === "per-group";
  const A = perGroup ? d.G : d.C;
  const x = stored(xv, s.dtype), dy = stored(randn(n, seed + 1), s.dtype);
  const gamma = randn(A, seed + 2, 0.5, 1), beta = randn(A, seed + 3, 0.7);
  return { d, x, dy, gamma, beta, perGroup };
}

const CASES: Array<[string, number[], ConventionOptions]> = [
  ["interleaved NCHW", [2, 12, 7, 9], { groups: 3, grouping: "interleaved" }],
  ["interleaved NHWC", [2, 6, 5, 12], { groups: 4, grouping: "interleaved", layout: "nhwc" }],
  ["per-group affine NCHW", [2, 8, 6, 6], { groups: 4, affine: "per-group" }],
  ["per-group affine NHWC (D = 4, grouped kernels)", [2, 5, 7, 16], { groups: 4, affine: "per-group", layout: "nhwc" }],
  ["interleaved, per-group affine, group size (MLX-like)", [2, 4, 4, 12], { groupSize: 3, grouping: "interleaved", affine: "per-group", layout: "nhwc" }],
  ["group size NCHW", [3, 10, 5, 5], { groupSize: 5 }],
];

describe.each(["float32", "float64", "float16"] as const)("%s", (dtype) => {
  describe.each(CASES)("%s", (_name, shape, options) => {
    it.each(["silu", "gelu", "gelu-tanh"] as const)("through %s: forward and backward match the oracle", async (activation) => {
      const { d, x, dy, gamma, beta, perGroup } = inputs({ shape, options, dtype, activation }, 7);
      const gC = expand(gamma, d, perGroup), bC = expand(beta, d, perGroup);
      const ref = referenceForward(x.exact, d, gC, bC, 1e-5, activation);
      const f = await groupNorm(x.typed, shape, { ...options, gamma, beta, activation, dtype, engine: engine2 });
      const y = dtype === "float16" ? decodeFloat16(f.y as Uint16Array) : f.y;
      expect(relError(y, ref.y)).toBeLessThan(TOL[dtype]);
      expect(relError(f.rstd, ref.rstd)).toBeLessThan(dtype === "float64" ? 1e-12 : 1e-6);
      const b = await groupNormBackward(dy.typed, x.typed, shape, { ...options, gamma, beta, activation, dtype, engine: engine2 });
      const rb = referenceBackward(dy.exact, x.exact, d, gC, ref, { activation, beta: bC });
      const dec = (v: ArrayLike<number>) => (dtype === "float16" ? decodeFloat16(v as Uint16Array) : v);
      const reduce = (v: Float64Array) => (perGroup ? perGroupSums(v, d) : v);
      expect(relError(dec(b.dx!), rb.dx)).toBeLessThan(TOL[dtype]);
      expect(relError(dec(b.dgamma!), reduce(rb.dgamma))).toBeLessThan(TOL[dtype]);
      expect(relError(dec(b.dbeta!), reduce(rb.dbeta))).toBeLessThan(TOL[dtype]);
      // the activation matters: without it the backward is another one
      const plain = await groupNormBackward(dy.typed, x.typed, shape, { ...options, gamma, dtype, engine: engine2 });
      expect(relError(dec(plain.dx!), rb.dx)).toBeGreaterThan(1e-2);
    });
  });
});

/** The least --memory whose plan is `want` (a sample over the budget: chunks; else slices of one sample). */
function budgetFor(d: Dims, kind: "forward" | "backward", precision: "f32" | "f64", want: (p: Plan) => boolean): number {
  const host = [{ what: "the vectors", file: "x", bytes: 6 * 8 * d.C }];
  for (let m = 512; m < 1 << 26; m += 64) {
    let plan: Plan;
    try {
      plan = planRun({ dims: d, precision, kind, budget: m, threads: 2, host, file: "x", act: kind === "backward" });
    } catch (e) {
      if (e instanceof InputError) continue;
      throw e;
    }
    if (want(plan)) return m;
  }
  throw new Error(`no budget for ${kind}`);
}

describe("bitwise the same for any thread count, slices and chunks", () => {
  const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
  it.each([
    ["interleaved NCHW float32, runs in blocks", [2, 4, 150, 150], { groups: 2, grouping: "interleaved" }, "float32", false],
    ["interleaved NCHW float32, an extreme group", [2, 8, 120, 120], { groups: 4, grouping: "interleaved" }, "float32", true],
    ["interleaved NHWC float32, an extreme group", [2, 120, 120, 12], { groups: 4, grouping: "interleaved", layout: "nhwc" }, "float32", true],
    ["interleaved NCHW float64", [2, 12, 80, 80], { groups: 3, grouping: "interleaved" }, "float64", false],
    ["per-group affine NHWC float32", [2, 120, 120, 16], { groups: 4, affine: "per-group", layout: "nhwc" }, "float32", false],
  ] as Array<[string, number[], ConventionOptions, Dt, boolean]>)("%s", async (_name, shape, options, dtype, extreme) => {
    const activation: Activation = "silu";
    const { d, x, dy, gamma, beta, perGroup } = inputs({ shape, options, dtype, activation, extreme }, 11);
    const gC = expand(gamma, d, perGroup), bC = expand(beta, d, perGroup);
    const precision = dtype === "float64" ? "f64" : "f32";
    const chunks = { forward: budgetFor(d, "forward", precision, (p) => p.kind === "chunks"), backward: budgetFor(d, "backward", precision, (p) => p.kind === "chunks") };
    const slices = { forward: budgetFor(d, "forward", precision, (p) => p.kind === "slices" && p.slices.count === d.N), backward: budgetFor(d, "backward", precision, (p) => p.kind === "slices" && p.slices.count === d.N) };
    const runs: Array<{ engine: typeof engine1; memory?: { forward: number; backward: number } }> = [{ engine: engine1 }, { engine: engine2 }, { engine: engine2, memory: slices }, { engine: engine2, memory: chunks }, { engine: engine1, memory: chunks }];
    const seen: string[] = [];
    for (const r of runs) {
      const f = await groupNorm(x.typed, shape, { ...options, gamma, beta, activation, dtype, engine: r.engine, memory: r.memory?.forward });
      const b = await groupNormBackward(dy.typed, x.typed, shape, { ...options, gamma, beta, activation, dtype, engine: r.engine, memory: r.memory?.backward });
      seen.push([f.y, f.mean, f.rstd, b.dx!, b.dgamma!, b.dbeta!].map(bits).join("|"));
    }
    for (const s of seen) expect(s).toBe(seen[0]);
    // and right: the oracle
    const ref = referenceForward(x.exact, d, gC, bC, 1e-5, activation);
    const f = await groupNorm(x.typed, shape, { ...options, gamma, beta, activation, dtype, engine: engine2 });
    expect(relError(f.y, ref.y)).toBeLessThan(TOL[dtype]);
    const rb = referenceBackward(dy.exact, x.exact, d, gC, ref, { activation, beta: bC });
    const b = await groupNormBackward(dy.typed, x.typed, shape, { ...options, gamma, beta, activation, dtype, engine: engine2 });
    expect(relError(b.dx!, rb.dx)).toBeLessThan(TOL[dtype]);
    expect(relError(b.dgamma!, perGroup ? perGroupSums(rb.dgamma, d) : rb.dgamma)).toBeLessThan(TOL[dtype]);
  });
});
