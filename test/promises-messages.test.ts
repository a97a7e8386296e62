// Issue #14, messages, flags, JSON, help and package: errors in words naming the file and what to
// do, outputs checked before the work, info for any dtype, strict numbers and sizes, warnings once
// on stderr, one JSON style, the shared flags on every command, and a package that installs no script.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { writeNpy } from "../src/io/npy/index.js";
import { errnoWords } from "../src/io/files.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { run } from "./helpers/spawn.js";

const repo = fileURLToPath(new URL("..", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "groupnorm-messages-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const P = (f: string) => join(root, f);
const X = P("x.npy");
await writeNpy(X, "float32", [2, 8, 4, 4], randn(256, 1));

function refused(args: string[], pattern: RegExp, cwd = root) {
  const r = groupnorm(args, { cwd });
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\b(E[A-Z]{3,})\b|\n\s+at /);
}

/** A .npy file of any descr, written by hand (as NumPy lays it out). */
function npyOf(name: string, descr: string, shape: string, data: Buffer): string {
  const dict = `{'descr': ${descr}, 'fortran_order': False, 'shape': ${shape}, }`;
  const body = dict + " ".repeat(63 - ((10 + dict.length) % 64)) + "\n";
  writeFileSync(P(name), Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, body.length & 0xff, body.length >> 8]), Buffer.from(body, "latin1"), data]));
  return P(name);
}

describe("what a file is, and what to do", () => {
  const zip = (member: string) => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, member.length, 0, 0, 0]), Buffer.from(member), Buffer.alloc(64)]);
  const files: Array<[string, Buffer | string, RegExp]> = [
    ["model.pt", zip("archive/data.pkl"), /is a PyTorch file \(torch\.save, a zip holding a pickle\): pickles are never unpickled; save the tensor with numpy\.save/],
    ["old.pt", Buffer.from([0x80, 0x02, 0x63, 0x5f, 0x5f]), /is a Python pickle .*never unpickled; save the array with numpy\.save/],
    ["values.txt", "1.0 2.0 3.0\n4.0 5.0 6.0\n", /is a text file, not a \.npy file: load it \(numpy\.loadtxt\) and save the array with numpy\.save/],
    ["w.h5", Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]), /is an HDF5 file/],
    ["x.npy.gz", Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), /is gzip-compressed: decompress it first/],
  ];
  it.each(files)("%s", (name, bytes, pattern) => {
    writeFileSync(P(name), bytes);
    refused(["forward", P(name), "--groups", "4"], pattern);
    refused(["info", P(name)], pattern);
  });
});

describe("info describes any dtype", () => {
  it.each([
    ["<i4", "int32", Buffer.from(Int32Array.of(-5, 7, 2, 100).buffer), { min: -5, max: 100, mean: 26 }],
    ["|u1", "uint8", Buffer.from([0, 255, 3, 2]), { min: 0, max: 255, mean: 65 }],
    [">i8", "int64", Buffer.from(new BigInt64Array([1n, -1n, 3n, 5n]).buffer).swap64(), { min: -1, max: 5, mean: 2 }],
    ["|b1", "bool", Buffer.from([1, 0, 1, 1]), { min: 0, max: 1, mean: 0.75 }],
  ] as const)("%s: header facts and statistics", (descr, name, data, stats) => {
    const r = groupnorm(["info", npyOf(`${name}.npy`, `'${descr}'`, "(2, 2)", data), "--json"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ command: "info", dtype: name, shape: [2, 2], size: 4, statistics: "computed", ...stats });
  });
  it.each([
    ["<c8", "complex64", 8],
    ["<U3", "<U3", 12],
    ["|O", "object", 0],
  ] as const)("%s: header facts, statistics not computed, and computing refuses it", (descr, name, bytes) => {
    const f = npyOf(`d${bytes}.npy`, `'${descr}'`, "(2,)", Buffer.alloc(2 * bytes));
    const r = groupnorm(["info", f, "--json"]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ command: "info", dtype: name, shape: [2], min: null, statistics: expect.stringMatching(/^not computed for/) });
    expect(groupnorm(["info", f]).stdout).toMatch(/statistics\s+not computed for/);
    refused(["forward", f, "--groups", "1"], /dtype .* is not supported|never unpickled/);
  });
});

describe("numbers and sizes", () => {
  it("numbers are decimal or scientific only", () => {
    for (const eps of ["0x10", "Infinity", "1e", "0b1", "1_0"]) refused(["forward", X, "--groups", "4", "--eps", eps], /--eps must be a finite number >= 0/);
    expect(groupnorm(["forward", X, "--groups", "4", "--eps", "1e-3", "--out-dir", P("eps")]).status).toBe(0);
    refused(["compare", X, X, "--atol", "0x1"], /--atol must be a finite number >= 0/);
  });
  it("--memory takes K, M, G, T with or without i, iB, B, the same way", () => {
    for (const size of ["65536", "512K", "512k", "512KB", "512KiB", "1Gi", "1G", "1GiB", "1gb", "1T", "2TiB", "0.5G"]) {
      const r = groupnorm(["forward", X, "--groups", "4", "--memory", size, "--out-dir", P("mem"), "--json"]);
      expect(r.status, `${size}: ${r.stderr}`).toBe(0);
    }
    for (const size of ["5i", "1X", "G", "-1M", "1.5.2G", "0"]) refused(["forward", X, "--groups", "4", "--memory", size], /--memory must be a size like 512M/);
  });
});

describe("roofline", () => {
  it("checks the --svg path before measuring, and says what is wrong in words", async () => {
    let r = await run(["roofline", "--shape", "2,32,16,16", "--runs", "1", "--svg", "/proc/nope/p.svg"]);
    expect(r.status).toBe(2);
    expect(r.seconds).toBeLessThan(3);
    expect(r.stderr).toMatch(/cannot create the output folder/);
    r = await run(["roofline", "--shape", "2,32,16,16", "--runs", "1", "--svg", root]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is a folder/);
    expect(r.seconds).toBeLessThan(3);
  });
  it("creates the --svg file's folders, and warns on stderr once, also when it is not a terminal", async () => {
    const svg = join(root, "made", "for", "plot.svg");
    const r = await run(["roofline", "--shape", "2,32,16,16", "--runs", "1", "--svg", svg]);
    expect(r.status).toBe(0);
    expect(readFileSync(svg, "utf8")).toMatch(/^<svg|<\?xml/);
    const warnings = r.stderr.split("\n").filter((l) => l.startsWith("groupnorm: warning: "));
    expect(warnings.length).toBeGreaterThan(0); // a 64 KiB tensor is in cache
    expect(new Set(warnings).size).toBe(warnings.length);
    expect(r.stdout).not.toMatch(/warning/);
    const q = await run(["roofline", "--shape", "2,32,16,16", "--runs", "1", "--quiet"]);
    expect(q.stderr).toBe("");
  });
});

describe("JSON documents", () => {
  const FILE_KEYS = new Set(["Y", "mean", "rstd", "dX", "dgamma", "dbeta"]);
  /** Every key snake_case, but the outputs' file names. */
  function keys(v: unknown, path = ""): string[] {
    if (Array.isArray(v)) return v.flatMap((x) => keys(x, path));
    if (v === null || typeof v !== "object") return [];
    return Object.entries(v).flatMap(([key, x]) => [...(/^[a-z][a-z0-9_]*$/.test(key) || FILE_KEYS.has(key) ? [] : [`${path}${key}`]), ...keys(x, `${path}${key}.`)]);
  }
  it("every command's document starts with its command, uses snake_case, keys outputs by file name, and lists coordinates", async () => {
    const out = P("json");
    const docs = {
      forward: groupnorm(["forward", X, "--groups", "4", "--out-dir", out, "--json"]),
      backward: groupnorm(["backward", X, X, "--groups", "4", "--gamma", join(repo, "fixtures/cases/nchw_odd_f32/gamma.npy"), "--out-dir", out, "--json"]),
      gradcheck: groupnorm(["gradcheck", "--shape", "2,8,4,4", "--groups", "4", "--json"]),
      compare: groupnorm(["compare", X, join(out, "Y.npy"), "--json"]),
      info: groupnorm(["info", X, "--json"]),
      roofline: groupnorm(["roofline", "--shape", "2,32,16,16", "--runs", "1", "--json"]),
    };
    for (const [command, r] of Object.entries(docs)) {
      if (command === "backward") continue;
      const doc = JSON.parse(r.stdout);
      expect(Object.keys(doc)[0]).toBe("command");
      expect(doc.command).toBe(command);
      expect(keys(doc), command).toEqual([]);
    }
    expect(docs.backward.status).toBe(2); // that gamma is (6,), X has C = 8
    const b = JSON.parse(groupnorm(["backward", X, X, "--groups", "4", "--out-dir", out, "--outputs", "dx,dgamma", "--json"]).stdout);
    expect(Object.keys(b.outputs)).toEqual(["dX", "dgamma"]);
    expect(b.dtypes).toEqual({ dX: "float32", dgamma: "float32" });
    const f = JSON.parse(docs.forward.stdout);
    expect(Object.keys(f.outputs)).toEqual(["Y", "mean", "rstd"]);
    expect(f.dims).toEqual({ n: 2, c: 8, hxw: 16, g: 4, d: 2 });
    const g = JSON.parse(docs.gradcheck.stdout);
    expect(g.outputs.dX.worst_index).toHaveLength(4);
    expect(g.outputs.dgamma.worst_index).toHaveLength(1);
    expect(JSON.parse(docs.compare.stdout).size).toBe(256);
    expect(JSON.parse(docs.info.stdout).size).toBe(256);
  });
});

describe("every command", () => {
  const commands = [
    ["forward", X, "--groups", "4", "--out-dir", P("q")],
    ["backward", X, X, "--groups", "4", "--out-dir", P("q")],
    ["gradcheck", "--shape", "2,8,4,4", "--groups", "4"],
    ["compare", X, X],
    ["info", X],
    ["roofline", "--shape", "2,32,16,16", "--runs", "1"],
  ];
  it.each(commands.map((c) => [c[0], c] as const))("%s takes --quiet and --no-color", (_name, args) => {
    const r = groupnorm([...args, "--quiet", "--no-color"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
  });
  it("shows --groups as required (forward and backward: it or --group-size, issue #17), and bare groupnorm is a usage error", () => {
    for (const c of ["forward", "backward"]) expect(groupnorm([c, "--help"]).stdout).toMatch(/--groups <G>\s+number of groups; must divide C \(or --group-size\)/);
    expect(groupnorm(["gradcheck", "--help"]).stdout).toMatch(/--groups <G>\s+number of groups; must divide C \(required\)/);
    const r = groupnorm([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Usage: groupnorm/);
  });
});

describe("the package", () => {
  it("runs no script when installed, and ships its LICENSE, no source maps and no .wat", () => {
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
    for (const hook of ["preinstall", "install", "postinstall", "prepare"]) expect(pkg.scripts[hook], hook).toBeUndefined();
    expect(pkg.scripts.prepack).toBe("npm run build");
    expect(existsSync(join(repo, "LICENSE"))).toBe(true);
    expect(readFileSync(join(repo, "LICENSE"), "utf8")).toMatch(new RegExp(`^${pkg.license} License`));
    const files = (JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: repo, encoding: "utf8" }))[0].files as Array<{ path: string }>).map((f) => f.path);
    expect(files).toContain("LICENSE");
    expect(files.filter((f) => /\.(map|wat)$/.test(f))).toEqual([]);
  });
});

it("errno codes are said in words", () => {
  expect(errnoWords({ code: "EROFS" })).toBe("the file system is read-only");
  expect(errnoWords({ code: "EEXIST" })).toBe("a file of that name exists");
  expect(errnoWords({ code: "EWHATEVER", message: "EWHATEVER: something odd happened, open 'x'" })).toBe("something odd happened");
});
