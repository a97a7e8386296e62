// End to end: the built `groupnorm` command on fixture files — outputs, names, flags, exit codes.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { readNpy, readNpyHeader } from "../src/io/npy/index.js";
import { cases, casePath } from "./helpers/fixtures.js";
import { groupnorm } from "./helpers/cli.js";
import { relError } from "./helpers/random.js";

const root = mkdtempSync(join(tmpdir(), "groupnorm-cli-"));
let dir = root;
let count = 0;
beforeEach(() => {
  dir = join(root, String(count++));
  rmSync(dir, { recursive: true, force: true });
  require_mkdir(dir);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

import { mkdirSync } from "node:fs";
function require_mkdir(p: string) {
  mkdirSync(p, { recursive: true });
}

const c = cases.find((k) => k.name === "nchw_2d_f32")!;
const nhwc = cases.find((k) => k.name === "nhwc_2d_f32")!;
const X = casePath(c, "x.npy"), DY = casePath(c, "dy.npy"), GAMMA = casePath(c, "gamma.npy"), BETA = casePath(c, "beta.npy");
const load = async (p: string) => (await readNpy(p, "float64")).data;

describe("forward", () => {
  it("writes Y.npy, mean.npy and rstd.npy in the current folder by default", async () => {
    const r = groupnorm(["forward", X, "--groups", "3", "--gamma", GAMMA, "--beta", BETA], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["Y.npy", "mean.npy", "rstd.npy"]);
    expect(relError(await load(join(dir, "Y.npy")), await load(casePath(c, "y.npy")))).toBeLessThan(3e-5);
    expect(r.stdout).toContain("Y.npy");
    expect(r.stdout).not.toMatch(/\u001b\[/); // not a TTY: no colour
  });

  it("creates --out-dir with parents and honours --y/--mean/--rstd", async () => {
    let r = groupnorm(["forward", X, "--groups", "3", "--out-dir", join(dir, "a/b/c")]);
    expect(r.status).toBe(0);
    expect(readdirSync(join(dir, "a/b/c")).sort()).toEqual(["Y.npy", "mean.npy", "rstd.npy"]);
    r = groupnorm(["forward", X, "--groups", "3", "--y", join(dir, "out.npy"), "--mean", join(dir, "m.npy"), "--rstd", join(dir, "r.npy"), "--quiet"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect((await readNpyHeader(join(dir, "m.npy"))).shape).toEqual([2, 3]);
    expect(existsSync(join(dir, "out.npy"))).toBe(true);
  });

  it("--json prints one JSON document and nothing else on stdout", () => {
    const r = groupnorm(["forward", X, "--groups", "3", "--out-dir", dir, "--json"]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.command).toBe("forward");
    expect(doc.dims).toEqual({ n: 2, c: 6, hxw: 20, g: 3, d: 2 });
    expect(doc.outputs.Y).toBe(join(dir, "Y.npy"));
    expect(doc.dtypes).toEqual({ Y: "float32", mean: "float32", rstd: "float32" });
    expect(typeof doc.seconds.compute).toBe("number");
  });

  it("runs channels-last input with --layout nhwc", async () => {
    const r = groupnorm(["forward", casePath(nhwc, "x.npy"), "--groups", "3", "--layout", "nhwc", "--gamma", casePath(nhwc, "gamma.npy"), "--beta", casePath(nhwc, "beta.npy"), "--out-dir", dir]);
    expect(r.status).toBe(0);
    expect(relError(await load(join(dir, "Y.npy")), await load(casePath(nhwc, "y.npy")))).toBeLessThan(3e-5);
  });
});

describe("backward", () => {
  it("writes dX, dgamma, dbeta with --gamma, recomputing statistics", async () => {
    const r = groupnorm(["backward", DY, X, "--groups", "3", "--gamma", GAMMA], { cwd: dir });
    expect(r.status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["dX.npy", "dbeta.npy", "dgamma.npy"]);
    expect(relError(await load(join(dir, "dX.npy")), await load(casePath(c, "dx.npy")))).toBeLessThan(3e-5);
    expect(relError(await load(join(dir, "dgamma.npy")), await load(casePath(c, "dgamma.npy")))).toBeLessThan(3e-5);
  });

  it("writes only dX without --gamma, and only what --outputs names", async () => {
    let r = groupnorm(["backward", DY, X, "--groups", "3"], { cwd: dir });
    expect(r.status).toBe(0);
    expect(readdirSync(dir)).toEqual(["dX.npy"]);
    rmSync(join(dir, "dX.npy"));
    r = groupnorm(["backward", DY, X, "--groups", "3", "--gamma", GAMMA, "--outputs", "dgamma,dbeta", "--mean", casePath(c, "mean.npy"), "--rstd", casePath(c, "rstd.npy")], { cwd: dir });
    expect(r.status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["dbeta.npy", "dgamma.npy"]);
    expect(relError(await load(join(dir, "dbeta.npy")), await load(casePath(c, "dbeta.npy")))).toBeLessThan(3e-5);
  });

  it("names outputs with --dx/--dgamma/--dbeta", () => {
    const r = groupnorm(["backward", DY, X, "--groups", "3", "--gamma", GAMMA, "--dx", join(dir, "gx.npy"), "--dgamma", join(dir, "gw.npy"), "--dbeta", join(dir, "gb.npy"), "--json"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).outputs).toEqual({ dX: join(dir, "gx.npy"), dgamma: join(dir, "gw.npy"), dbeta: join(dir, "gb.npy") });
    expect(readdirSync(dir).sort()).toEqual(["gb.npy", "gw.npy", "gx.npy"]);
  });
});

describe("exit codes and errors", () => {
  const bad: Array<[string, string[], RegExp]> = [
    ["missing --groups", ["forward", X], /--groups/],
    ["C not divisible by G", ["forward", X, "--groups", "4"], /not divisible/],
    ["G not a number", ["forward", X, "--groups", "abc"], /--groups/],
    ["G zero", ["forward", X, "--groups", "0"], /--groups/],
    ["negative eps", ["forward", X, "--groups", "3", "--eps", "-1"], /--eps/],
    ["NaN eps", ["forward", X, "--groups", "3", "--eps", "nan"], /--eps/],
    ["unknown layout", ["forward", X, "--groups", "3", "--layout", "nwhc"], /layout/],
    ["missing input", ["forward", "/nonexistent/x.npy", "--groups", "3"], /nonexistent\/x\.npy/],
    ["gamma of the wrong length", ["forward", X, "--groups", "3", "--gamma", casePath(cases.find((k) => k.name === "nc_f32")!, "gamma.npy")], /gamma/],
    ["dY shape unlike X", ["backward", casePath(nhwc, "dy.npy"), X, "--groups", "3"], /dY/],
    ["mean without rstd", ["backward", DY, X, "--groups", "3", "--mean", casePath(c, "mean.npy")], /--rstd/],
    ["unknown option", ["forward", X, "--groups", "3", "--bogus"], /bogus/],
    ["unknown command", ["frobnicate"], /frobnicate/],
    ["unknown output name", ["backward", DY, X, "--groups", "3", "--outputs", "dx,dq"], /dq/],
  ];
  it.each(bad)("%s: exit 2, one error line, nothing written", (_name, args, pattern) => {
    const r = groupnorm(args, { cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(lines[0]).toMatch(/^groupnorm: error: /);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(readdirSync(dir)).toEqual([]);
  });

  it("--help and --version exit 0", () => {
    expect(groupnorm(["--help"]).status).toBe(0);
    expect(groupnorm(["forward", "--help"]).stdout).toContain("--groups");
    expect(groupnorm(["--version"]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
