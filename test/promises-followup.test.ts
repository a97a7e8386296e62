// Issue #14, the promises an adversarial review found broken at the command line: full or broken
// standard streams, compare of Fortran-order files within memory, flags that had no effect or took
// values they could not hold, and messages that said less (or other) than the truth.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeNpyHeader, writeNpy } from "../src/io/npy/index.js";
import { bin, groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { run } from "./helpers/spawn.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-followup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const P = (f: string) => join(dir, f);
const X = P("x.npy");
await writeNpy(X, "float32", [2, 6, 4, 5], Float32Array.from(randn(240, 5)));

/** The built command with stdout and/or stderr sent to a given file (e.g. /dev/full). */
function redirected(args: string[], o: { stdout?: string; stderr?: string }) {
  const out = o.stdout ? openSync(o.stdout, "w") : "pipe";
  const err = o.stderr ? openSync(o.stderr, "w") : "pipe";
  try {
    const r = spawnSync(process.execPath, [bin, ...args], { stdio: ["ignore", out, err], encoding: "utf8", env: { ...process.env, NO_COLOR: "" } });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  } finally {
    if (typeof out === "number") closeSync(out);
    if (typeof err === "number") closeSync(err);
  }
}

/** A .npy file of `shape` whose data is a hole (zeros), in C or Fortran order. */
function sparse(name: string, shape: number[], fortran = false): string {
  let header = encodeNpyHeader("float32", shape);
  if (fortran) header = Buffer.from(Buffer.from(header).toString("latin1").replace("'fortran_order': False", "'fortran_order': True "), "latin1");
  writeFileSync(P(name), header);
  truncateSync(P(name), header.length + 4 * shape.reduce((a, b) => a * b, 1));
  return P(name);
}

describe.skipIf(!existsSync("/dev/full"))("full standard streams", () => {
  it("a run that prints nothing (--quiet) does not fail on a full stdout", () => {
    const r = redirected(["forward", X, "--groups", "3", "--out-dir", P("q"), "--quiet"], { stdout: "/dev/full" });
    expect([r.status, r.stderr]).toEqual([0, ""]);
  });

  it("a full stdout after the outputs are written: exit 2, saying the outputs are complete", () => {
    const r = redirected(["forward", X, "--groups", "3", "--out-dir", P("loud")], { stdout: "/dev/full" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^groupnorm: error: cannot write to standard output: no space left on the device \(the outputs are complete on disk: .*Y\.npy.*\)\n$/);
    expect(existsSync(P("loud/Y.npy"))).toBe(true);
  });

  it("a full stderr changes no exit status: 2 for bad input, 0 for a run with a warning", () => {
    expect(redirected(["compare", P("nonexistent.npy"), X], { stderr: "/dev/full" }).status).toBe(2);
    groupnorm(["forward", X, "--groups", "3", "--out-dir", P("st"), "--quiet"]);
    const r = redirected(["backward", X, X, "--groups", "3", "--mean", P("st/mean.npy"), "--rstd", P("st/rstd.npy"), "--eps", "0.5", "--out-dir", P("w")], { stderr: "/dev/full" });
    expect(r.status).toBe(0);
  });
});

describe("compare and Fortran order", () => {
  it("two Fortran-order files are compared in their stored order, without a copy, the worst index in the file's coordinates", async () => {
    const shape = [512, 512, 256]; // 256 MiB each
    const a = sparse("fa.npy", shape, true), b = sparse("fb.npy", shape, true);
    // one value differs: stored (Fortran) index of (3, 5, 7) = 3 + 512·(5 + 512·7)
    const at = 3 + 512 * (5 + 512 * 7);
    const fd = openSync(b, "r+");
    const one = Buffer.alloc(4);
    one.writeFloatLE(1);
    writeSync(fd, one, 0, 4, encodeNpyHeader("float32", shape).length + 4 * at);
    closeSync(fd);
    const r = await run(["compare", a, b, "--json"], { timeout: 120_000 });
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ close: false, reason: "values", size: 512 * 512 * 256, mismatches: 1, worst: { index: [3, 5, 7], a: 0, b: 1 } });
    expect(r.peak).toBeLessThan(200 * 2 ** 20); // a C-order copy would be 1 GiB (float32 → its float32 copy of both)
  }, 150_000);

  it("a Fortran-order file against a C-order one: refused over --memory, saying what would do; compared within it", () => {
    const f = sparse("f-small.npy", [64, 64, 64], true), c = sparse("c-small.npy", [64, 64, 64]);
    const r = groupnorm(["compare", c, f, "--memory", "512K"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/f-small\.npy: is in Fortran order and .*c-small\.npy in C order: comparing them needs a C-order copy of 1024K in memory, over --memory 512K; raise --memory to 1024K/);
    expect(groupnorm(["compare", c, f]).status).toBe(0);
  });

  it("shapes that differ: nothing compared, no mismatch count", () => {
    const r = groupnorm(["compare", X, sparse("other.npy", [2, 6, 20]), "--json"]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ close: false, reason: "shape", size: 0, mismatches: null });
  });

  it("NaN against a number says NaN, not an infinite error", async () => {
    await writeNpy(P("n1.npy"), "float32", [3], Float32Array.of(1, NaN, 3));
    await writeNpy(P("n2.npy"), "float32", [3], Float32Array.of(1, 2, 3));
    const r = groupnorm(["compare", P("n1.npy"), P("n2.npy")]);
    expect(r.stdout).toContain("worst at (1): a = NaN, b = 2 (a is NaN)");
    expect(r.stdout).not.toContain("Infinity");
  });
});

describe("info", () => {
  // headers written by hand, as NumPy writes them
  const npy = (name: string, descr: string, shape: string, bytes: number) => {
    let text = `{'descr': ${descr}, 'fortran_order': False, 'shape': ${shape}, }`;
    text += " ".repeat(63 - ((10 + text.length) % 64)) + "\n";
    const h = Buffer.alloc(10);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(h);
    h.writeUInt16LE(text.length, 8);
    writeFileSync(P(name), Buffer.concat([h, Buffer.from(text, "latin1"), Buffer.alloc(bytes)]));
    return P(name);
  };
  it("bytes, raw void and records have no byte order; records have their fixed size; one value is one value", () => {
    expect(JSON.parse(groupnorm(["info", npy("s5.npy", "'|S5'", "(2,)", 10), "--json"]).stdout).byte_order).toBe("none");
    expect(JSON.parse(groupnorm(["info", npy("v8.npy", "'|V8'", "(3,)", 24), "--json"]).stdout).byte_order).toBe("none");
    expect(JSON.parse(groupnorm(["info", npy("u3.npy", "'>U3'", "(1,)", 12), "--json"]).stdout).byte_order).toBe("big");
    // [('a','<f4'), ('b','>i8',(2,3)), ('c',[('x','u1'),('y','<U3')])]: 4 + 48 + 13 = 65 bytes a record
    const st = npy("st.npy", "[('a', '<f4'), ('b', '>i8', (2, 3)), ('c', [('x', '|u1'), ('y', '<U3')])]", "(4,)", 260);
    expect(JSON.parse(groupnorm(["info", st, "--json"]).stdout)).toMatchObject({ dtype: "structured", byte_order: "none", bytes: 260 });
    const one = npy("one.npy", "'<f8'", "(1,)", 8);
    expect(groupnorm(["info", one]).stdout).toMatch(/size\s+1 value, 8 bytes of data/);
  });
});

describe("flags and messages", () => {
  it("a nonzero number float64 cannot hold is refused, not taken as 0", () => {
    const r = groupnorm(["forward", X, "--groups", "3", "--eps", "1e-400", "--out-dir", P("e")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("groupnorm: error: --eps 1e-400 is below the smallest float64 (about 5e-324): write 0 if you mean 0\n");
    expect(groupnorm(["forward", X, "--groups", "3", "--eps", "0e5", "--out-dir", P("e0"), "--quiet"]).status).toBe(0);
  });

  it("--peak-gbps says the same thing of 0 and of -1", () => {
    for (const v of ["0", "-1"]) expect(groupnorm(["roofline", "--peak-gbps", v]).stderr).toBe(`groupnorm: error: --peak-gbps must be a finite number > 0, got '${v}'\n`);
  });

  it("help for an unknown command is one line, exit 2", () => {
    const r = groupnorm(["help", "nosuch"]);
    expect([r.status, r.stdout, r.stderr]).toEqual([2, "", "groupnorm: error: unknown command 'nosuch' (groupnorm --help lists them)\n"]);
  });

  it("a symbolic link loop named as an output is called a loop", () => {
    symlinkSync(P("loop-b"), P("loop-a"));
    symlinkSync(P("loop-a"), P("loop-b"));
    const r = groupnorm(["forward", X, "--groups", "3", "--y", P("loop-a")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/loop-a: is a symbolic link in a loop/);
  });

  it("backward --eps with given statistics warns that it has no effect; without --eps, no warning", () => {
    groupnorm(["forward", X, "--groups", "3", "--out-dir", P("s"), "--quiet"]);
    const base = ["backward", X, X, "--groups", "3", "--mean", P("s/mean.npy"), "--rstd", P("s/rstd.npy"), "--out-dir", P("g")];
    const warned = groupnorm([...base, "--eps", "0.5"]);
    expect(warned.status).toBe(0);
    expect(warned.stderr).toBe("groupnorm: warning: --eps has no effect when the statistics are given (--mean, --rstd): rstd already holds it\n");
    expect(groupnorm(base).stderr).toBe("");
    expect(groupnorm([...base, "--eps", "0.5", "--quiet"]).stderr).toBe("");
  });

  it("verify backward names dY and X in its first line", () => {
    const v = join(new URL("../fixtures/verify/cases/float32_nchw/", import.meta.url).pathname);
    const r = groupnorm(["verify", "backward", join(v, "dy.npy"), join(v, "x.npy"), "--groups", "4", "--gamma", join(v, "gamma.npy"), "--dx", join(v, "backward_torch_dX.npy")]);
    expect(r.status).toBe(0);
    expect(r.stdout.split("\n")[0]).toMatch(/^verify backward \S*dy\.npy \S*x\.npy: shape \(2, 8, 8, 8\)/);
  });

  it("verify counts a Fortran-order candidate's C-order copy against --memory", () => {
    const shape = [2, 8, 256, 256];
    const x = sparse("vx.npy", shape), y = sparse("vy-f.npy", shape, true); // 4 MiB each
    const r = groupnorm(["verify", "forward", x, "--groups", "4", "--y", y, "--memory", "18M"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/vy-f\.npy: the memory budget 18M is too small for the C-order copy of the Fortran-order file \S*vy-f\.npy \(4096K\), and the reference \(16\.1M\): raise --memory to 20\.1M or more, or save it in C order/);
    expect(groupnorm(["verify", "forward", x, "--groups", "4", "--y", y, "--quiet"]).status).toBe(0);
  });
});
