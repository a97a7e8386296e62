// Hostile input: every malformed file or flag ends with exit 2 and one or two lines on stderr
// naming the file and the problem; no stack trace, no output written, no input changed.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeNpyHeader, writeNpy } from "../src/io/npy/index.js";
import { groupnorm } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-hostile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const P = (name: string) => join(dir, name);

/** A .npy file with a hand-written header dictionary (v1.0, padded to 64 bytes) and raw data. */
function npy(name: string, dict: string, data: Uint8Array | number = 0, opts: { version?: [number, number]; magic?: string } = {}): string {
  const [major, minor] = opts.version ?? [1, 0];
  const pre = major === 1 ? 10 : 12;
  let text = dict;
  const total = Math.ceil((pre + text.length + 1) / 64) * 64;
  text = text + " ".repeat(total - pre - text.length - 1) + "\n";
  const head = Buffer.alloc(pre);
  head.write(opts.magic ?? "\x93NUMPY", 0, "latin1");
  head[6] = major;
  head[7] = minor;
  if (major === 1) head.writeUInt16LE(text.length, 8);
  else head.writeUInt32LE(text.length, 8);
  const body = typeof data === "number" ? Buffer.alloc(data) : Buffer.from(data);
  writeFileSync(P(name), Buffer.concat([head, Buffer.from(text, "latin1"), body]));
  return P(name);
}
const f4 = (shape: string) => `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;

beforeAll(async () => {
  await writeNpy(P("x.npy"), "float32", [2, 6, 3, 3], Float64Array.from({ length: 108 }, (_, i) => Math.sin(i)));
  await writeNpy(P("dy.npy"), "float32", [2, 6, 3, 3], Float64Array.from({ length: 108 }, (_, i) => Math.cos(i)));
  await writeNpy(P("dy_wrong.npy"), "float32", [2, 6, 9], new Float64Array(108));
  await writeNpy(P("g6.npy"), "float32", [6], new Float64Array(6).fill(1));
  await writeNpy(P("g5.npy"), "float32", [5], new Float64Array(5).fill(1));
  await writeNpy(P("g2d.npy"), "float32", [2, 3], new Float64Array(6).fill(1));
  await writeNpy(P("mean_ok.npy"), "float32", [2, 3], new Float64Array(6));
  await writeNpy(P("mean_bad.npy"), "float32", [2, 2], new Float64Array(4));
  await writeNpy(P("vec.npy"), "float32", [5], new Float64Array(5));
  writeFileSync(P("empty.npy"), "");
  writeFileSync(P("text.npy"), "hello, this is not numpy\n");
  npy("magic.npy", f4("(2, 6, 3, 3)"), 432, { magic: "\x93NUMPZ" });
  const long = Buffer.alloc(10);
  long.write("\x93NUMPY", 0, "latin1");
  long[6] = 1;
  long.writeUInt16LE(60000, 8);
  writeFileSync(P("headerpast.npy"), Buffer.concat([long, Buffer.from("{'descr': '<f4'")]));
  npy("unterminated.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 6, 3, 3), ", 432);
  npy("nokey.npy", "{'descr': '<f4', 'fortran_order': False, }", 432);
  npy("garbage.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 6, 3, 3), }", 432);
  npy("version.npy", f4("(2, 6, 3, 3)"), 432, { version: [4, 0] });
  npy("short1.npy", f4("(2, 6, 3, 3)"), 431);
  npy("short100.npy", f4("(2, 6, 3, 3)"), 332);
  npy("long1.npy", f4("(2, 6, 3, 3)"), 433);
  npy("long100.npy", f4("(2, 6, 3, 3)"), 532);
  npy("absurd.npy", f4("(1099511627776, 1099511627776, 4)"), 16);
  npy("negative.npy", f4("(-3, 4)"), 0);
  npy("object.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2, 6), }", 96);
  npy("complex.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 6), }", 96);
  npy("string.npy", "{'descr': '<U4', 'fortran_order': False, 'shape': (2, 6), }", 192);
  npy("int.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 6), }", 48);
  npy("bool.npy", "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 6), }", 12);
  npy("struct.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 6), }", 48);
  mkdirSync(P("folder.npy"));
  writeFileSync(P("plainfile"), "x");
  void encodeNpyHeader;
});

interface Case {
  name: string;
  args: () => string[];
  /** What the message must mention (the file, the flag). */
  mention: RegExp;
}

const X = () => P("x.npy");
const fwd = (x: string, ...rest: string[]) => ["forward", x, "--groups", "3", ...rest];
const cases: Case[] = [
  { name: "empty file", args: () => fwd(P("empty.npy")), mention: /empty\.npy.*empty/ },
  { name: "not a .npy file", args: () => fwd(P("text.npy")), mention: /text\.npy/ },
  { name: "bad magic", args: () => fwd(P("magic.npy")), mention: /magic\.npy/ },
  { name: "header length past the end", args: () => fwd(P("headerpast.npy")), mention: /headerpast\.npy/ },
  { name: "unterminated header dictionary", args: () => fwd(P("unterminated.npy")), mention: /unterminated\.npy/ },
  { name: "header without shape", args: () => fwd(P("nokey.npy")), mention: /nokey\.npy/ },
  { name: "malformed header value", args: () => fwd(P("garbage.npy")), mention: /garbage\.npy/ },
  { name: "unknown format version", args: () => fwd(P("version.npy")), mention: /version\.npy.*version/ },
  { name: "data 1 byte short", args: () => fwd(P("short1.npy")), mention: /short1\.npy.*bytes/ },
  { name: "data 100 bytes short", args: () => fwd(P("short100.npy")), mention: /short100\.npy.*bytes/ },
  { name: "data 1 byte long", args: () => fwd(P("long1.npy")), mention: /long1\.npy.*bytes/ },
  { name: "data 100 bytes long", args: () => fwd(P("long100.npy")), mention: /long100\.npy.*bytes/ },
  { name: "absurd claimed shape", args: () => fwd(P("absurd.npy")), mention: /absurd\.npy/ },
  { name: "negative dimension", args: () => fwd(P("negative.npy")), mention: /negative\.npy/ },
  { name: "object dtype", args: () => fwd(P("object.npy")), mention: /object\.npy.*(object|O)/ },
  { name: "complex dtype", args: () => fwd(P("complex.npy")), mention: /complex\.npy.*c8/ },
  { name: "string dtype", args: () => fwd(P("string.npy")), mention: /string\.npy/ },
  { name: "integer dtype", args: () => fwd(P("int.npy")), mention: /int\.npy.*i4/ },
  { name: "bool dtype", args: () => fwd(P("bool.npy")), mention: /bool\.npy/ },
  { name: "structured dtype", args: () => fwd(P("struct.npy")), mention: /struct\.npy/ },
  { name: "rank below 2", args: () => fwd(P("vec.npy")), mention: /vec\.npy.*dimensions/ },
  { name: "C not divisible by G", args: () => ["forward", X(), "--groups", "4"], mention: /x\.npy.*divisible/ },
  { name: "G zero", args: () => ["forward", X(), "--groups", "0"], mention: /--groups/ },
  { name: "G negative", args: () => ["forward", X(), "--groups", "-3"], mention: /--groups/ },
  { name: "G not a number", args: () => ["forward", X(), "--groups", "three"], mention: /--groups/ },
  { name: "G fractional", args: () => ["forward", X(), "--groups", "1.5"], mention: /--groups/ },
  { name: "eps negative", args: () => fwd(X(), "--eps", "-1e-5"), mention: /--eps/ },
  { name: "eps NaN", args: () => fwd(X(), "--eps", "NaN"), mention: /--eps/ },
  { name: "eps not a number", args: () => fwd(X(), "--eps", "tiny"), mention: /--eps/ },
  { name: "eps infinite", args: () => fwd(X(), "--eps", "Infinity"), mention: /--eps/ },
  { name: "unknown layout", args: () => fwd(X(), "--layout", "nwch"), mention: /layout/ },
  { name: "gamma of the wrong length", args: () => fwd(X(), "--gamma", P("g5.npy")), mention: /g5\.npy.*gamma/ },
  { name: "gamma of the wrong rank", args: () => fwd(X(), "--gamma", P("g2d.npy")), mention: /g2d\.npy/ },
  { name: "beta of the wrong length", args: () => fwd(X(), "--beta", P("g5.npy")), mention: /g5\.npy.*beta/ },
  { name: "dY shape unlike X", args: () => ["backward", P("dy_wrong.npy"), X(), "--groups", "3"], mention: /dy_wrong\.npy/ },
  { name: "mean not (N, G)", args: () => ["backward", P("dy.npy"), X(), "--groups", "3", "--mean", P("mean_bad.npy"), "--rstd", P("mean_ok.npy")], mention: /mean_bad\.npy/ },
  { name: "rstd not (N, G)", args: () => ["backward", P("dy.npy"), X(), "--groups", "3", "--mean", P("mean_ok.npy"), "--rstd", P("mean_bad.npy")], mention: /mean_bad\.npy/ },
  { name: "missing input", args: () => fwd(P("nothere.npy")), mention: /nothere\.npy/ },
  { name: "missing dY", args: () => ["backward", P("nothere.npy"), X(), "--groups", "3"], mention: /nothere\.npy/ },
  { name: "a folder given as a file", args: () => fwd(P("folder.npy")), mention: /folder\.npy/ },
  { name: "an unwritable output folder", args: () => fwd(X(), "--out-dir", join(P("plainfile"), "out")), mention: /plainfile/ },
  { name: "an output path that is a folder", args: () => fwd(X(), "--y", P("folder.npy"), "--out-dir", P("outs")), mention: /folder\.npy/ },
  { name: "bad --threads", args: () => fwd(X(), "--threads", "0"), mention: /--threads/ },
  { name: "bad --memory", args: () => fwd(X(), "--memory", "lots"), mention: /--memory/ },
];

describe("refusals", () => {
  it.each(cases)("$name: exit 2, a clear line, nothing written, inputs unchanged", ({ args, mention }) => {
    const before = readdirSync(dir).sort();
    const snapshot = before.filter((f) => !f.endsWith("folder.npy") && statSync(P(f)).isFile()).map((f) => [f, readFileSync(P(f))] as const);
    const t = Date.now();
    const r = groupnorm(args(), { cwd: dir });
    expect(Date.now() - t).toBeLessThan(20_000);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(lines[0]).toMatch(/^groupnorm: error: /);
    expect(r.stderr).toMatch(mention);
    expect(r.stderr).not.toMatch(/\n\s+at |Error:|TypeError|RangeError/);
    expect(readdirSync(dir).sort()).toEqual(before);
    for (const [f, bytes] of snapshot) expect(readFileSync(P(f)).equals(bytes), `${f} unchanged`).toBe(true);
  });
});

describe("failures inside the engine", () => {
  for (const fault of ["trap", "exit"]) {
    it(`a worker ${fault === "trap" ? "WASM trap" : "that exits"} ends the run with exit 3 and a message, never a hang`, () => {
      const out = P(`fault-${fault}`);
      const t = Date.now();
      const r = groupnorm(["forward", X(), "--groups", "3", "--out-dir", out, "--threads", "2"], { env: { GROUPNORM_FAULT: fault } });
      expect(Date.now() - t).toBeLessThan(20_000);
      expect(r.status).toBe(3);
      expect(r.stderr).toMatch(/^groupnorm: error: internal error: worker thread 0/);
      expect(r.stderr).toMatch(/GROUPNORM_DEBUG=1/);
      expect(existsSync(out)).toBe(false); // the folder this run created is gone again
      const debug = groupnorm(["forward", X(), "--groups", "3", "--out-dir", out, "--threads", "2"], { env: { GROUPNORM_FAULT: fault, GROUPNORM_DEBUG: "1" } });
      expect(debug.status).toBe(3);
      expect(debug.stderr).toMatch(/\n\s+at /); // the stack trace
    });
  }
});

describe("zero-size dimensions, as PyTorch", () => {
  it("N = 0 gives empty outputs; HxW = 0 gives mean 0 and rstd NaN", async () => {
    await writeNpy(P("n0.npy"), "float32", [0, 4, 3, 3], new Float64Array(0));
    await writeNpy(P("hw0.npy"), "float32", [2, 4, 0, 3], new Float64Array(0));
    const out = P("zero");
    let r = groupnorm(["forward", P("n0.npy"), "--groups", "2", "--out-dir", out, "--json"]);
    expect(r.status).toBe(0);
    r = groupnorm(["info", join(out, "mean.npy"), "--json"]);
    expect(JSON.parse(r.stdout).shape).toEqual([0, 2]);
    r = groupnorm(["forward", P("hw0.npy"), "--groups", "2", "--out-dir", out]);
    expect(r.status).toBe(0);
    const mean = JSON.parse(groupnorm(["info", join(out, "mean.npy"), "--json"]).stdout);
    const rstd = JSON.parse(groupnorm(["info", join(out, "rstd.npy"), "--json"]).stdout);
    expect(mean).toMatchObject({ shape: [2, 2], min: 0, max: 0 });
    expect(rstd).toMatchObject({ shape: [2, 2], nan: 4 });
  });
});
