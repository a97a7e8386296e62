// The conventions (issue #17) with what came beside them (issues #14 and #16): var and per-group
// dgamma/dbeta as container members, per-group gamma/beta files and var counted by the memory plan
// before anything is read, interleaved groups in the index-planned chunks, and empty tensors.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { conventionDims, resolveConvention } from "../src/core/conventions.js";
import { writeNpy } from "../src/io/npy/index.js";
import { MemorySource } from "../src/io/memory.js";
import { openTensor } from "../src/io/open.js";
import { planRun } from "../src/pipeline/budget.js";
import { planChunkItems, readShifts } from "../src/pipeline/slices.js";
import { backwardFiles, createEngine, forwardFiles, groupNormBackward, InputError } from "../src/index.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { values } from "./helpers/tensors.js";

const here = new URL("../fixtures/conventions/cases/", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-conventions-planning-"));
const engine = createEngine({ threads: 2, pool: "always" });
afterAll(async () => {
  await engine.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("container outputs", () => {
  const f = (c: string, n: string) => join(here, c, `${n}.npy`);
  it.each([["out.npz"], ["out.safetensors"]])("forward: var is a member of --out %s, the values of the .npy run", async (file) => {
    const c = "compat_mlx_f32", options = { groups: 4, compat: "mlx" as const };
    const npy = await forwardFiles({ engine, x: f(c, "x"), gamma: f(c, "gamma"), beta: f(c, "beta"), ...options, outDir: join(tmp, `npy-${file}`), outputs: ["y", "mean", "rstd", "var"] });
    const out = join(tmp, `fw-${file}`);
    const r = await forwardFiles({ engine, x: f(c, "x"), gamma: f(c, "gamma"), beta: f(c, "beta"), ...options, out, outputs: ["y", "mean", "rstd", "var"] });
    expect(r.outputs).toEqual({ Y: `${out}:Y`, mean: `${out}:mean`, rstd: `${out}:rstd`, var: `${out}:var` });
    for (const k of ["Y", "mean", "rstd", "var"] as const) expect(await values(r.outputs[k]!), k).toEqual(await values(npy.outputs[k]!));
  });

  it("backward: per-group dgamma and dbeta, (G,), as members of an .npz", async () => {
    const c = "pergroup_interleaved_nhwc_f32", options = { groups: 3, layout: "nhwc" as const, grouping: "interleaved" as const, affine: "per-group" as const };
    const npy = await backwardFiles({ engine, dy: f(c, "dy"), x: f(c, "x"), gamma: f(c, "gamma"), ...options, outDir: join(tmp, "bw-npy") });
    const out = join(tmp, "bw.npz");
    const r = await backwardFiles({ engine, dy: f(c, "dy"), x: f(c, "x"), gamma: f(c, "gamma"), ...options, out, compress: true });
    for (const k of ["dX", "dgamma", "dbeta"] as const) expect(await values(r.outputs[k]!), k).toEqual(await values(npy.outputs[k]!));
    const dg = await openTensor(r.outputs.dgamma!);
    expect(dg.shape).toEqual([3]);
    await dg.close();
  });

  it("the CLI: --var names a container member; the run line names the grouping", () => {
    const c = "interleaved_nchw_f32", st = join(tmp, "cli.safetensors");
    const r = groupnorm(["forward", f(c, "x"), "--groups", "3", "--grouping", "interleaved", "--var", `${st}:v`, "--mean", st]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/interleaved groups/);
    const j = groupnorm(["info", st, "--json"]);
    expect(j.status, j.stderr).toBe(0);
    expect(j.stdout).toMatch(/"v"/);
    expect(j.stdout).toMatch(/"mean"/);
  });
});

describe("memory planning", () => {
  /** The least budget that plans at all (a run fits every budget above the one its least chunk fits). */
  function least(p: Omit<Parameters<typeof planRun>[0], "budget">): number {
    const fits = (m: number) => {
      try {
        planRun({ ...p, budget: m });
        return true;
      } catch (e) {
        if (e instanceof InputError) return false;
        throw e;
      }
    };
    let lo = 0, hi = 1 << 30;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid)) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  it("the var output is counted: a forward that fits without it is refused with it, naming the --memory that does", async () => {
    const shape = [1, 8, 300, 300];
    const d = conventionDims(shape, resolveConvention({ groups: 4, grouping: "interleaved" }));
    const p = { dims: d, precision: "f32" as const, kind: "forward" as const, threads: 2, host: [], file: "x" };
    const without = least(p), withVar = least({ ...p, variance: true });
    expect(withVar).toBeGreaterThan(without);
    const x = join(tmp, "var-budget-x.npy");
    await writeNpy(x, "float32", shape, randn(shape.reduce((a, b) => a * b, 1), 7));
    const opts = { engine, x, groups: 4, grouping: "interleaved" as const, memory: without, outDir: join(tmp, "var-budget") };
    expect((await forwardFiles({ ...opts, outputs: ["y", "mean", "rstd"] })).slices).toBeGreaterThan(1);
    await expect(forwardFiles({ ...opts, outputs: ["y", "var"] })).rejects.toThrow(/raise --memory to/);
    await forwardFiles({ ...opts, memory: withVar, outputs: ["y", "var"] });
  });

  it("a per-group gamma and beta are planned as the C values the run holds, blamed on gamma's file", async () => {
    // C = 2^18 channels in groups of 2, one position: the vectors are most of what the run needs
    const C = 1 << 18, G = C / 2, shape = [1, C, 1];
    const x = join(tmp, "wide-x.npy"), gamma = join(tmp, "wide-gamma.npy"), beta = join(tmp, "wide-beta.npy");
    // x = ∓1, ∓2, …: each group of two has x̂ = ∓1 (up to eps)
    await writeNpy(x, "float32", shape, Float64Array.from({ length: C }, (_, c) => (c % 2 ? 1 : -1) * (1 + ((c >> 1) % 5))));
    await writeNpy(gamma, "float32", [G], randn(G, 9));
    await writeNpy(beta, "float32", [G], randn(G, 10));
    const o = { engine, x, gamma, beta, groups: G, affine: "per-group" as const, outDir: join(tmp, "wide") };
    const refused = forwardFiles({ ...o, memory: 3 << 20 });
    await expect(refused).rejects.toThrow(/too small for gamma and beta, C = 262144 float64 values each \(4096K\)/);
    await expect(refused).rejects.toMatchObject({ file: gamma });
    const r = await forwardFiles({ ...o, memory: 64 << 20 });
    const y = await values(r.outputs.Y!), g = await values(gamma), b = await values(beta);
    for (const c of [0, 1, 2, 3, C - 2, C - 1]) expect(y[c]).toBeCloseTo((c % 2 ? 1 : -1) * g[c >> 1] + b[c >> 1], 3);
  });

  it("a per-group backward counts its G sums of dgamma and dbeta", async () => {
    const shape = [2, 6, 4, 4];
    const x = join(tmp, "sums-x.npy"), gamma = join(tmp, "sums-gamma.npy");
    await writeNpy(x, "float32", shape, randn(192, 11));
    await writeNpy(gamma, "float32", [3], randn(3, 12));
    const base = { engine, dy: x, x, groups: 3, outDir: join(tmp, "sums") };
    const d = conventionDims(shape, resolveConvention(base));
    const host = (extra: number) => [{ what: "the vectors", file: x, bytes: 3 * 8 * d.C + extra }];
    const p = { dims: d, precision: "f32" as const, kind: "backward" as const, threads: 2, file: x };
    const perChannel = least({ ...p, host: host(0) }), perGroup = least({ ...p, host: host(2 * 8 * d.G) });
    expect(perGroup - perChannel).toBe(2 * 8 * d.G);
    await expect(backwardFiles({ ...base, gamma, affine: "per-group", memory: perGroup - 1 })).rejects.toThrow(/raise --memory to/);
    const r = await backwardFiles({ ...base, gamma, affine: "per-group", memory: perGroup });
    expect((await values(r.outputs.dgamma!)).length).toBe(3);
  });
});

describe("interleaved groups in index-planned chunks", () => {
  it.each([
    ["NCHW, channel runs", [2, 12, 7, 7], 3, "nchw"],
    ["NCHW, blocks", [1, 6, 300, 300], 2, "nchw"],
    ["NHWC, rows", [2, 70, 70, 9], 3, "nhwc"],
  ] as const)("%s: chunks of whole units within the buffer, each group's shift its first channel's value", async (_, shape, groups, layout) => {
    const d = conventionDims(shape, resolveConvention({ groups, grouping: "interleaved", layout }));
    expect(d.interleaved).toBe(true);
    const items = planChunkItems(d, "f32");
    for (const per of [1, 2, 5]) {
      const plan = items.chunked(per);
      expect(plan.items).toBe(d.N); // a sample, whichever the layout
      let largest = 0, covered = 0;
      for (let k = 0; k < plan.chunksPerItem; k++) {
        const c = plan.chunk(k);
        expect(c.from).toBe(covered);
        covered = c.to;
        largest = Math.max(largest, c.to - c.from);
      }
      expect(covered).toBe(d.C * d.HxW);
      expect(largest).toBeLessThanOrEqual(plan.cap);
      if (per === 1) expect(largest).toBe(items.unitValues);
    }
    // a source whose values are their own indexes: each shift is the index of (n, channel g, position 0)
    const n = shape.reduce((a, b) => a * b, 1);
    const src = new MemorySource("x", Float64Array.from({ length: n }, (_, i) => i), "float64", [...shape]);
    const plan = items.chunked(1), item = plan.item(d.N - 1);
    const at = (c: number) => (layout === "nchw" ? ((d.N - 1) * d.C + c) * d.HxW : (d.N - 1) * d.HxW * d.C + c);
    expect([...(await readShifts(src, item))]).toEqual(Array.from({ length: d.G }, (_, g) => at(g)));
  });
});

describe("empty tensors, interleaved", () => {
  it("dgamma is NaN on the channels of a group whose given rstd is not finite (c mod G), 0 elsewhere", async () => {
    const shape = [2, 6, 0], mean = new Float64Array(6), rstd = new Float64Array(6).fill(1);
    rstd[1] = NaN; // sample 0, group 1: channels 1 and 4
    const o = { groups: 3, grouping: "interleaved" as const, gamma: new Float64Array(6).fill(1), mean, rstd, engine };
    const r = await groupNormBackward(new Float32Array(0), new Float32Array(0), shape, o);
    expect([...r.dgamma!]).toEqual([0, NaN, 0, 0, NaN, 0]);
    expect([...r.dbeta!]).toEqual([0, 0, 0, 0, 0, 0]);
    const g = await groupNormBackward(new Float32Array(0), new Float32Array(0), shape, { ...o, affine: "per-group", gamma: [1, 1, 1] });
    expect([...g.dgamma!]).toEqual([0, NaN, 0]);
  });
});
