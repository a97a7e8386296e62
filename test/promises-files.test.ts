// Issue #14, files that are not plain files, and outputs: inputs never changed, non-regular files
// never replaced, folders created or refused in words, implicit outputs never over inputs, and
// only the outputs named (or asked for) written.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readNpyHeader, writeNpy } from "../src/io/npy/index.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { run } from "./helpers/spawn.js";

const root = mkdtempSync(join(tmpdir(), "groupnorm-files-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let k = 0;
const fresh = () => {
  const d = join(root, String(k++));
  mkdirSync(d);
  return d;
};
const X = join(root, "x.npy");
await writeNpy(X, "float32", [2, 8, 4, 4], randn(256, 1));
const isRoot = process.getuid?.() === 0;

function expectRefused(r: { status: number | null; stdout: string; stderr: string }, pattern: RegExp) {
  expect(r.status).toBe(2);
  expect(r.stdout).toBe("");
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(r.stderr).toMatch(/^groupnorm: error: /);
  expect(r.stderr).toMatch(pattern);
}

describe("inputs that are not regular files", () => {
  it("a named pipe with no writer is refused at once, without hanging", async () => {
    const d = fresh();
    execFileSync("mkfifo", [join(d, "pipe.npy")]);
    const r = await run(["forward", join(d, "pipe.npy"), "--groups", "4", "--out-dir", d], { timeout: 10_000 });
    expect(r.seconds).toBeLessThan(5);
    expectRefused(r, /pipe\.npy: is a named pipe \(FIFO\), not a regular file: groupnorm reads its inputs by offset/);
  });

  it("'-' is not standard input: it says so and what to do", () => {
    expectRefused(groupnorm(["forward", "-", "--groups", "4"], { cwd: fresh() }), /^groupnorm: error: -: reading standard input is not supported: .*save the array to a file/);
  });

  it("a device is refused as an input", () => {
    expectRefused(groupnorm(["info", "/dev/zero"]), /\/dev\/zero: is a character device, not a regular file/);
  });
});

describe("outputs that are not regular files are never replaced", () => {
  it("/dev/null as an output is written through (discarded) and stays a device", () => {
    const d = fresh();
    const r = groupnorm(["forward", X, "--groups", "4", "--y", join(d, "Y.npy"), "--mean", "/dev/null", "--rstd", "/dev/null"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(statSync("/dev/null").isCharacterDevice()).toBe(true);
    expect(readdirSync(d)).toEqual(["Y.npy"]);
  });

  it.runIf(isRoot)("a device node made with mknod is written through, not replaced by a regular file", () => {
    const d = fresh();
    execFileSync("mknod", [join(d, "n"), "c", "1", "3"]); // another /dev/null
    const r = groupnorm(["forward", X, "--groups", "4", "--y", join(d, "n"), "--outputs", "y"]);
    expect(r.status).toBe(0);
    expect(lstatSync(join(d, "n")).isCharacterDevice()).toBe(true);
  });

  it("a named pipe or a folder as an output is refused, and nothing is written", () => {
    const d = fresh();
    execFileSync("mkfifo", [join(d, "p")]);
    expectRefused(groupnorm(["forward", X, "--groups", "4", "--y", join(d, "p")]), /p: is a named pipe \(FIFO\): outputs are regular files, and this is never replaced/);
    mkdirSync(join(d, "f"));
    expectRefused(groupnorm(["forward", X, "--groups", "4", "--y", join(d, "f"), "--outputs", "y"]), /f: is a folder/);
    expect(readdirSync(d).sort()).toEqual(["f", "p"]);
  });

  it("an output through a symbolic link replaces the link's target, not the link", () => {
    const d = fresh();
    writeFileSync(join(d, "target.npy"), "old");
    symlinkSync(join(d, "target.npy"), join(d, "link.npy"));
    expect(groupnorm(["forward", X, "--groups", "4", "--y", join(d, "link.npy"), "--outputs", "y"]).status).toBe(0);
    expect(lstatSync(join(d, "link.npy")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(d, "target.npy")).subarray(0, 6).toString("latin1")).toBe("\x93NUMPY");
  });
});

describe("output folders", () => {
  it("--out-dir /proc/nope is refused at once, in words", async () => {
    const r = await run(["forward", X, "--groups", "4", "--out-dir", "/proc/nope"], { timeout: 10_000 });
    expect(r.seconds).toBeLessThan(5);
    expectRefused(r, /\/proc\/nope: cannot create the output folder: the file system does not allow new folders there/);
  });

  it("a file where a folder is wanted, a file on the way, a folder not allowed: said in words, never a bare code", () => {
    const d = fresh();
    writeFileSync(join(d, "afile"), "x");
    const cases: Array<[string, RegExp]> = [
      [join(d, "afile"), /afile: cannot create the output folder: a file of that name exists/],
      [join(d, "afile", "sub"), /sub: cannot create the output folder: .*afile is a file, not a folder/],
      ["/sys/nope", /\/sys\/nope: cannot create the output folder: operation not permitted/],
    ];
    for (const [dir, pattern] of cases) {
      const r = groupnorm(["forward", X, "--groups", "4", "--out-dir", dir]);
      expectRefused(r, pattern);
      expect(r.stderr).not.toMatch(/\b(EEXIST|ENOTDIR|ENOENT|EPERM|EACCES|EROFS|EISDIR)\b/);
    }
  });
});

describe("outputs and inputs", () => {
  it("a default output that is an input is refused with a hint, and the input is unchanged", () => {
    const d = fresh();
    copyFileSync(X, join(d, "Y.npy"));
    const before = readFileSync(join(d, "Y.npy"));
    const r = groupnorm(["forward", "Y.npy", "--groups", "4"], { cwd: d });
    expectRefused(r, /Y\.npy: the default output would replace the input Y\.npy; to replace it on purpose name it \(--y Y\.npy\), or choose another --out-dir/);
    expect(readFileSync(join(d, "Y.npy")).equals(before)).toBe(true);
    expect(readdirSync(d)).toEqual(["Y.npy"]);
  });

  it("an explicit output may be the input: it is normalised in place", async () => {
    const d = fresh();
    copyFileSync(X, join(d, "Y.npy"));
    const r = groupnorm(["forward", "Y.npy", "--groups", "4", "--y", "Y.npy"], { cwd: d });
    expect(r.status).toBe(0);
    expect(readdirSync(d)).toEqual(["Y.npy"]);
    expect((await readNpyHeader(join(d, "Y.npy"))).shape).toEqual([2, 8, 4, 4]);
    expect(readFileSync(join(d, "Y.npy")).equals(readFileSync(X))).toBe(false);
  });

  it("--y alone writes only Y; --outputs adds the others; --outputs alone chooses", () => {
    let d = fresh();
    expect(groupnorm(["forward", X, "--groups", "4", "--y", join(d, "out.npy")], { cwd: d }).status).toBe(0);
    expect(readdirSync(d)).toEqual(["out.npy"]);
    d = fresh();
    expect(groupnorm(["forward", X, "--groups", "4", "--y", join(d, "out.npy"), "--outputs", "mean"], { cwd: d }).status).toBe(0);
    expect(readdirSync(d).sort()).toEqual(["mean.npy", "out.npy"]);
    d = fresh();
    expect(groupnorm(["forward", X, "--groups", "4", "--outputs", "rstd"], { cwd: d }).status).toBe(0);
    expect(readdirSync(d)).toEqual(["rstd.npy"]);
    d = fresh();
    expect(groupnorm(["backward", X, X, "--groups", "4", "--dx", join(d, "g.npy")], { cwd: d }).status).toBe(0);
    expect(readdirSync(d)).toEqual(["g.npy"]);
    expectRefused(groupnorm(["forward", X, "--groups", "4", "--outputs", "y,var2"], { cwd: fresh() }), /--outputs: unknown output 'var2' \(expected y, mean, rstd or var\)/);
  });

  it("a temporary left by a killed run is removed by the next run writing the same output", async () => {
    const d = fresh();
    const stale = join(d, ".Y.npy.999999.0123abcd.tmp"); // pid 999999 does not exist
    writeFileSync(stale, "left by a run killed with SIGKILL");
    const mine = join(d, `.Y.npy.${process.pid}.0123abcd.tmp`); // a live process's: kept
    writeFileSync(mine, "in progress");
    expect(groupnorm(["forward", X, "--groups", "4", "--out-dir", d]).status).toBe(0);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(mine)).toBe(true);
    expect(readdirSync(d).filter((f) => !f.startsWith(".")).sort()).toEqual(["Y.npy", "mean.npy", "rstd.npy"]);
  });
});
