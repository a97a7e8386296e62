// The oracle and the production path (files to files, in process) against PyTorch's float64
// results recorded in fixtures/.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { flatIndex, groupNormDims } from "../src/core/dims.js";
import { readNpy, readNpyHeader } from "../src/io/npy/index.js";
import { backwardFiles, createEngine, forwardFiles } from "../src/index.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { cases, casePath, hasFile, tolerance } from "./helpers/fixtures.js";
import { relError } from "./helpers/random.js";

const load = async (p: string) => (await readNpy(p, "float64")).data as Float64Array;

const engine = createEngine({ threads: 1 });
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-fixtures-"));
afterAll(async () => {
  await engine.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe.each(cases)("fixture $name", (c) => {
  const gammaFile = c.affine ? casePath(c, "gamma.npy") : undefined;
  const betaFile = c.affine ? casePath(c, "beta.npy") : undefined;

  it("oracle matches PyTorch float64 to 1e-9", async () => {
    const x = await load(casePath(c, "x.npy"));
    const dy = await load(casePath(c, "dy.npy"));
    const gamma = gammaFile ? await load(gammaFile) : null;
    const beta = betaFile ? await load(betaFile) : null;
    const d = groupNormDims(c.shape, c.groups, c.layout);
    const f = referenceForward(x, d, gamma, beta, c.eps);
    expect(relError(f.y, await load(casePath(c, "y.npy")))).toBeLessThan(1e-9);
    expect(relError(f.mean, await load(casePath(c, "mean.npy")))).toBeLessThan(1e-9);
    expect(relError(f.rstd, await load(casePath(c, "rstd.npy")))).toBeLessThan(1e-9);
    const b = referenceBackward(dy, x, d, gamma, f);
    expect(relError(b.dx, await load(casePath(c, "dx.npy")))).toBeLessThan(1e-9);
    if (c.affine) {
      expect(relError(b.dgamma, await load(casePath(c, "dgamma.npy")))).toBeLessThan(1e-9);
      expect(relError(b.dbeta, await load(casePath(c, "dbeta.npy")))).toBeLessThan(1e-9);
    }
  });

  it("forward files match PyTorch within the dtype's tolerance", async () => {
    const out = join(tmp, `${c.name}-fwd`);
    const r = await forwardFiles({
      engine,
      x: casePath(c, "x.npy"),
      groups: c.groups,
      gamma: gammaFile,
      beta: betaFile,
      eps: c.eps,
      layout: c.layout,
      outDir: out,
      memory: 1 << 30,
    });
    const tol = tolerance(c.dtypes.x);
    const statsDtype = c.dtypes.x === "float64" ? "float64" : "float32";
    const yh = await readNpyHeader(r.outputs.Y!);
    expect(yh.dtype).toBe(c.dtypes.x);
    expect(yh.shape).toEqual(c.shape);
    expect(yh.littleEndian && !yh.fortranOrder).toBe(true);
    expect((await readNpyHeader(r.outputs.mean!)).dtype).toBe(statsDtype);
    expect((await readNpyHeader(r.outputs.mean!)).shape).toEqual([c.shape[0], c.groups]);
    const y = await load(r.outputs.Y!);
    expect(relError(y, await load(casePath(c, "y.npy")))).toBeLessThan(tol);
    // mean/rstd are stored in float32 for float32/float16 input: compare at float32's precision
    const stol = statsDtype === "float64" ? 1e-9 : 3e-7;
    expect(relError(await load(r.outputs.mean!), await load(casePath(c, "mean.npy")))).toBeLessThan(stol);
    expect(relError(await load(r.outputs.rstd!), await load(casePath(c, "rstd.npy")))).toBeLessThan(stol);

    if (c.constant_groups) {
      const beta = await load(betaFile!);
      const d = groupNormDims(c.shape, c.groups, c.layout);
      for (const [n, g] of c.constant_groups) {
        for (let ch = g * d.D; ch < (g + 1) * d.D; ch++) {
          for (let s = 0; s < d.HxW; s++) {
            const i = flatIndex(d, n, ch, s);
            expect(y[i]).toBe(Math.fround(beta[ch]));
          }
        }
      }
    }
    if (c.nonfinite_groups) {
      // every other group finite
      const d = groupNormDims(c.shape, c.groups, c.layout);
      const bad = new Set(c.nonfinite_groups.map(([n, g]) => n * d.G + g));
      for (let n = 0; n < d.N; n++)
        for (let ch = 0; ch < d.C; ch++)
          for (let s = 0; s < d.HxW; s++) {
            const i = flatIndex(d, n, ch, s);
            expect(Number.isFinite(y[i])).toBe(!bad.has(n * d.G + Math.floor(ch / d.D)));
          }
    }
    if (c.torch_native_rel_error !== null && c.name.startsWith("illcond")) {
      // we are exact where PyTorch's own float32 path is not
      expect(c.torch_native_rel_error).toBeGreaterThan(1e-3);
      expect(relError(y, await load(casePath(c, "y.npy")))).toBeLessThan(3e-5);
    }
  });

  it("backward files match PyTorch (statistics recomputed and given)", async () => {
    const tol = tolerance(c.dtypes.x === "float64" || c.dtypes.dy === "float64" ? "float64" : c.dtypes.x);
    const outTol = c.dtypes.x === "float64" ? tol : tolerance(c.dtypes.x);
    for (const given of [false, true]) {
      const out = join(tmp, `${c.name}-bwd-${given}`);
      const r = await backwardFiles({
        engine,
        dy: casePath(c, "dy.npy"),
        x: casePath(c, "x.npy"),
        groups: c.groups,
        gamma: gammaFile,
        mean: given ? casePath(c, "mean.npy") : undefined,
        rstd: given ? casePath(c, "rstd.npy") : undefined,
        eps: c.eps,
        layout: c.layout,
        outDir: out,
        memory: 1 << 30,
      });
      expect(r.statistics).toBe(given ? "given" : "recomputed");
      expect((await readNpyHeader(r.outputs.dX!)).dtype).toBe(c.dtypes.x);
      expect(relError(await load(r.outputs.dX!), await load(casePath(c, "dx.npy")))).toBeLessThan(outTol);
      if (c.affine) {
        expect((await readNpyHeader(r.outputs.dgamma!)).shape).toEqual([c.shape[c.layout === "nchw" ? 1 : c.shape.length - 1]]);
        expect(relError(await load(r.outputs.dgamma!), await load(casePath(c, "dgamma.npy")))).toBeLessThan(outTol);
        expect(relError(await load(r.outputs.dbeta!), await load(casePath(c, "dbeta.npy")))).toBeLessThan(outTol);
      } else {
        expect(r.outputs.dgamma).toBeUndefined();
        expect(hasFile(c, "dgamma.npy")).toBe(false);
      }
    }
  });
});
