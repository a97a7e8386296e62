// gradcheck, compare and info: exit codes shell scripts rely on, reports, JSON.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeNpy } from "../src/io/npy/index.js";
import { isClose } from "../src/analysis/compare.js";
import { cases, casePath } from "./helpers/fixtures.js";
import { groupnorm } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-checks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fx = (name: string, file: string) => casePath(cases.find((c) => c.name === name)!, file);

describe("gradcheck", () => {
  const shapes: Array<[string, string, string, string]> = [
    ["2,6", "3", "nchw", "f64"],
    ["2,8,7", "4", "nchw", "f32"],
    ["2,8,7", "4", "nhwc", "f32"],
    ["2,8,5,5", "4", "nchw", "f64"],
    ["2,8,5,5", "2", "nhwc", "f64"],
    ["1,4,3,2,3", "1", "nchw", "f32"],
    ["1,4,3,2,3", "4", "nhwc", "f16"],
    ["3,6,4,4", "6", "nchw", "f16"],
  ];
  it.each(shapes)("passes on random %s G=%s %s %s, and fails with zero tolerances", (shape, G, layout, dtype) => {
    const args = ["gradcheck", "--shape", shape, "--groups", G, "--layout", layout, "--dtype", dtype, "--seed", "7"];
    const ok = groupnorm([...args, "--json"]);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    const j = JSON.parse(ok.stdout);
    expect(j.passed).toBe(true);
    for (const k of ["dX", "dgamma", "dbeta"]) {
      expect(j.outputs[k].passed).toBe(true);
      expect(j.outputs[k].max_abs_error).toBeGreaterThanOrEqual(0);
      expect(j.outputs[k].max_rel_error).toBeGreaterThanOrEqual(0);
    }
    const zero = groupnorm([...args, "--atol", "0", "--rtol", "0"]);
    expect(zero.status).toBe(1);
    expect(zero.stdout).toMatch(/FAIL/);
  });

  it("reads --shape as N,C,... for either layout", () => {
    // C = 8 (second): 8 groups divide it; read in NHWC file order, C would be 5 and refused
    const r = groupnorm(["gradcheck", "--shape", "2,8,3,5", "--groups", "8", "--layout", "nhwc", "--json"]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.shape).toEqual([2, 8, 3, 5]);
    expect(j.layout).toBe("nhwc");
    expect(j.outputs.dgamma.of).toBe(8);
    expect(groupnorm(["gradcheck", "--shape", "2,5,3,8", "--groups", "8", "--layout", "nhwc"]).status).toBe(2);
  });

  it("checks files, without affine, and samples large tensors reproducibly", () => {
    const F = (f: string) => fx("illcond_nhwc_f32", f);
    const r = groupnorm(["gradcheck", "--x", F("x.npy"), "--dy", F("dy.npy"), "--gamma", F("gamma.npy"), "--beta", F("beta.npy"), "--groups", "4", "--layout", "nhwc", "--json"]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.dtype).toBe("float32");
    expect(j.outputs.dX.checked).toBe(256);
    expect(j.outputs.dX.of).toBe(4096);
    const n = groupnorm(["gradcheck", "--x", fx("noaffine_f32", "x.npy"), "--groups", "2", "--no-affine", "--samples", "50", "--seed", "3", "--json"]);
    expect(n.status).toBe(0);
    const nj = JSON.parse(n.stdout);
    expect(Object.keys(nj.outputs)).toEqual(["dX"]);
    expect(nj.outputs.dX.checked).toBe(50);
    const again = JSON.parse(groupnorm(["gradcheck", "--x", fx("noaffine_f32", "x.npy"), "--groups", "2", "--no-affine", "--samples", "50", "--seed", "3", "--json"]).stdout);
    expect(again.outputs).toEqual(nj.outputs);
  });

  it("refuses bad usage with exit 2", () => {
    expect(groupnorm(["gradcheck", "--groups", "2"]).status).toBe(2); // neither --shape nor --x
    expect(groupnorm(["gradcheck", "--shape", "2,6", "--x", fx("nc_f32", "x.npy"), "--groups", "2"]).status).toBe(2);
    expect(groupnorm(["gradcheck", "--shape", "2,6", "--groups", "4"]).status).toBe(2);
    expect(groupnorm(["gradcheck", "--shape", "2,6", "--groups", "3", "--dtype", "int8"]).status).toBe(2);
    expect(groupnorm(["gradcheck", "--shape", "2,6", "--groups", "3", "--samples", "0"]).status).toBe(2);
    expect(groupnorm(["gradcheck", "--x", fx("nc_f32", "x.npy"), "--dy", fx("ncl_f64", "dy.npy"), "--groups", "2"]).status).toBe(2);
  });
});

describe("compare", () => {
  const a = join(dir, "a.npy"), b = join(dir, "b.npy");
  const write = async (p: string, values: number[], shape = [values.length], dtype: "float32" | "float64" = "float64") =>
    writeNpy(p, dtype, shape, Float64Array.from(values));

  it("isclose semantics", () => {
    expect(isClose(1, 1 + 1e-6, 0, 1e-5)).toBe(true);
    expect(isClose(1 + 1e-4, 1, 0, 1e-5)).toBe(false);
    expect(isClose(NaN, NaN, 0, 0)).toBe(true);
    expect(isClose(NaN, 1, 1, 1)).toBe(false);
    expect(isClose(Infinity, Infinity, 0, 0)).toBe(true);
    expect(isClose(Infinity, -Infinity, 1, 1)).toBe(false);
    expect(isClose(1e300, Infinity, 1, 1)).toBe(false);
  });

  it("exit 0 when close (NaN equal to NaN, any float dtypes)", async () => {
    await write(a, [1, 2, NaN, -3], [2, 2], "float32");
    await write(b, [1, 2 + 1e-7, NaN, -3], [2, 2], "float64");
    const r = groupnorm(["compare", a, b]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^close/);
  });

  it("exit 1 when values differ, naming the worst index and the count", async () => {
    await write(a, [1, 2, 3, 4, 5, 6], [2, 3]);
    await write(b, [1, 2.5, 3, 4, 5, 9], [2, 3]);
    const r = groupnorm(["compare", a, b, "--json"]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.close).toBe(false);
    expect(j.reason).toBe("values");
    expect(j.mismatches).toBe(2);
    expect(j.worst.index).toEqual([1, 2]);
    expect(j.max_abs_error).toBe(3);
    const t = groupnorm(["compare", a, b]);
    expect(t.stdout).toMatch(/2 of 6 values differ/);
    expect(t.stdout).toMatch(/\(1, 2\)/);
    expect(groupnorm(["compare", a, b, "--atol", "3"]).status).toBe(0);
    await write(b, [1, 2, 3, 4, 5, NaN], [2, 3]);
    expect(groupnorm(["compare", a, b]).status).toBe(1);
  });

  it("exit 1 when shape or count differ, saying which", async () => {
    await write(a, [1, 2, 3, 4, 5, 6], [2, 3]);
    await write(b, [1, 2, 3, 4, 5, 6], [3, 2]);
    let r = groupnorm(["compare", a, b]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/shapes differ/);
    await write(b, [1, 2, 3, 4], [4]);
    r = groupnorm(["compare", a, b, "--json"]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).reason).toBe("size");
  });

  it("exit 2 when a file cannot be read", async () => {
    writeFileSync(join(dir, "junk.npy"), "not a numpy file at all");
    await write(a, [1]);
    expect(groupnorm(["compare", a, join(dir, "missing.npy")]).status).toBe(2);
    const r = groupnorm(["compare", join(dir, "junk.npy"), a]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/junk\.npy/);
    expect(groupnorm(["compare", a, a, "--atol", "-1"]).status).toBe(2);
  });
});

describe("info", () => {
  it("reports header facts and statistics", () => {
    const r = groupnorm(["info", fx("nan_group_f32", "x.npy"), "--json"]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ version: "1.0", dtype: "float32", byte_order: "little", order: "C", shape: [2, 6, 3, 3], size: 108, bytes: 432, nan: 1, posinf: 0, neginf: 0 });
    expect(j.min).toBeLessThan(j.mean);
    expect(j.std).toBeGreaterThan(0);
  });
  it("knows big-endian, Fortran order and format versions", () => {
    expect(JSON.parse(groupnorm(["info", fx("bigendian_f64", "x.npy"), "--json"]).stdout).byte_order).toBe("big");
    expect(JSON.parse(groupnorm(["info", fx("fortran_f32", "x.npy"), "--json"]).stdout).order).toBe("F");
    expect(JSON.parse(groupnorm(["info", fx("npy_v3_f32", "x.npy"), "--json"]).stdout).version).toBe("3.0");
    const t = groupnorm(["info", fx("inf_group_f32", "x.npy")]);
    expect(t.stdout).toMatch(/1 \+Inf/);
  });
  it("exit 2 on an unreadable file", () => {
    expect(groupnorm(["info", "/nonexistent.npy"]).status).toBe(2);
  });
});
