// .npz and safetensors (issue #16): containers made by NumPy and from PyTorch tensors
// (fixtures/containers/generate.py) read as the .npy path reads the same values, bitwise; outputs
// written into containers, read back by groupnorm and by NumPy and a safetensors reader written in
// Python (those parts skipped without python3 + NumPy); bfloat16 end to end; names and refusals.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, deflateRawSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { groupNormDims } from "../src/core/dims.js";
import { InputError } from "../src/errors.js";
import { bf16ToF32, encodeBF16, f64ToBF16 } from "../src/io/bfloat16.js";
import { openTensor } from "../src/io/open.js";
import { readAll } from "../src/io/tensor.js";
import { backwardFiles, compareFiles, createEngine, describeFile, forwardFiles, gradcheck, groupNorm, verifyFiles } from "../src/index.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { groupnorm } from "./helpers/cli.js";
import { relError } from "./helpers/random.js";
import { bitsOf, values } from "./helpers/tensors.js";

const F = fileURLToPath(new URL("../fixtures/containers/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "groupnorm-containers-"));
const P = (name: string) => join(tmp, name);
const engine = createEngine({ threads: 2, pool: "always" }); // the pool even for these small tensors
afterAll(async () => {
  await engine.close();
  rmSync(tmp, { recursive: true, force: true });
});

const python = spawnSync("/usr/bin/python3", ["-c", "import numpy"], { encoding: "utf8" }).status === 0;

/** Run Python (NumPy, and the by-hand safetensors reader below) and parse the JSON it prints. */
function py(script: string): unknown {
  const r = spawnSync("/usr/bin/python3", ["-c", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** A safetensors reader in Python, from the format's definition (no groupnorm code). */
const PY_SAFETENSORS = `
import json, struct, numpy as np
def st_load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        dt = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2"}[v["dtype"]]
        a = np.frombuffer(raw[8 + n + s:8 + n + e], dt).reshape(v["shape"])
        out[k] = (v["dtype"], a)
    return header, out
`;

async function refusal(name: string): Promise<InputError> {
  try {
    await (await openTensor(name)).close();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).not.toMatch(/\n/);
    return e as InputError;
  }
  throw new Error(`${name} was not refused`);
}

const tmpFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".tmp"));

describe("bfloat16", () => {
  it("decodes exactly, and rounds float32 to nearest even as PyTorch does (the fixture's bfloat16 bytes)", async () => {
    for (const bits of [0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f7f, 0x0001, 0x007f, 0x0080, 0x7f80, 0xff80]) {
      const f = new Float32Array(new Uint32Array([bits << 16]).buffer)[0]!;
      expect(bf16ToF32(bits)).toBe(f);
    }
    const x = Float32Array.from(await values(`${F}x.npy`));
    const out = new Uint16Array(x.length);
    encodeBF16(x, out);
    const raw = readFileSync(`${F}torch_bf16.safetensors`);
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    const [s, e] = header.x.data_offsets;
    expect(Buffer.from(out.buffer).equals(raw.subarray(8 + n + s, 8 + n + e))).toBe(true);
  });

  it("rounds float64 once (no double rounding through float32), keeps NaN, signs, and rounds past the largest finite to inf", () => {
    // 1 + 2^-8 is a tie (to even: 1); 1 + 2^-8 + 2^-30 is above it (rounds up to 1 + 2^-7), though
    // float32 would first round it to the tie itself
    expect(f64ToBF16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f64ToBF16(1 + 2 ** -8 + 2 ** -30)).toBe(0x3f81);
    expect(Math.fround(1 + 2 ** -8 + 2 ** -30)).toBe(1 + 2 ** -8);
    expect(f64ToBF16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie between 0x3f81 and 0x3f82: even
    expect(f64ToBF16(NaN) & 0x7fc0).toBe(0x7fc0);
    expect(f64ToBF16(-0)).toBe(0x8000);
    expect(f64ToBF16(-Infinity)).toBe(0xff80);
    const maxFinite = (2 - 2 ** -7) * 2 ** 127;
    expect(f64ToBF16(maxFinite)).toBe(0x7f7f);
    expect(f64ToBF16((2 - 2 ** -8) * 2 ** 127)).toBe(0x7f80); // the tie above the largest: to even, inf
    expect(f64ToBF16((2 - 2 ** -8) * 2 ** 127 * (1 - 2 ** -30))).toBe(0x7f7f);
    expect(f64ToBF16(2 ** -133)).toBe(0x0001); // smallest subnormal
    expect(f64ToBF16(2 ** -134)).toBe(0x0000); // a tie: to even, zero
    expect(f64ToBF16(2 ** -134 * 1.5)).toBe(0x0001);
    // float32 NaN payloads stay NaN
    const nan = new Float32Array(new Uint32Array([0x7f800001, 0xffc00000]).buffer);
    const o = new Uint16Array(2);
    encodeBF16(nan, o);
    expect([o[0]! & 0x7fc0, o[1]]).toEqual([0x7fc0, 0xffc0]);
    // float64 and float32 agree on float32 values, everywhere
    const f = new Float32Array(new Uint32Array(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 0)).buffer);
    const a = new Uint16Array(f.length), b = new Uint16Array(f.length);
    encodeBF16(f, a);
    encodeBF16(Float64Array.from(f), b);
    for (let i = 0; i < f.length; i++) if (!Number.isNaN(f[i])) expect(b[i], `${f[i]}`).toBe(a[i]);
  });

  it("the array API takes Uint16Array bfloat16 bits, and its Y is float32's rounded once", async () => {
    const x = Float32Array.from(await values(`${F}bf16_as_f32.npy`));
    const bits = new Uint16Array(x.length);
    encodeBF16(x, bits); // exact: the values are bfloat16's
    const shape = [2, 6, 4, 4];
    const r16 = await groupNorm(bits, shape, { groups: 3, dtype: "bfloat16", engine });
    const r32 = await groupNorm(x, shape, { groups: 3, engine });
    const want = new Uint16Array(x.length);
    encodeBF16(r32.y as Float32Array, want);
    expect(r16.y).toEqual(want);
    expect(r16.mean).toEqual(r32.mean);
  });

  it("gradcheck --dtype bf16 checks the kernels on bfloat16 inputs with its default tolerances, and on a bfloat16 file", async () => {
    const r = await gradcheck({ shape: [2, 8, 5, 5], groups: 2, dtype: "bfloat16", engine });
    expect([r.passed, r.dtype, r.atol, r.rtol]).toEqual([true, "bfloat16", 5e-2, 5e-2]);
    const f = await gradcheck({ x: `${F}torch_bf16.safetensors:x`, dy: `${F}torch_bf16.safetensors:dy`, groups: 3, engine });
    expect([f.passed, f.dtype]).toEqual([true, "bfloat16"]);
    const cli = groupnorm(["gradcheck", "--shape", "2,4,3", "--groups", "2", "--dtype", "bf16", "--json"]);
    expect(JSON.parse(cli.stdout)).toMatchObject({ passed: true, dtype: "bfloat16" });
    expect(groupnorm(["roofline", "--dtype", "bf16"]).stderr).toBe("groupnorm: error: --dtype must be f32 or f64, got 'bf16'\n");
  });
});

describe("reading containers made by NumPy and from PyTorch tensors", () => {
  it.each([
    ["savez.npz:x", "x.npy"],
    ["savez.npz:gamma", "gamma.npy"],
    ["savez_compressed.npz:dy", "dy.npy"],
    ["savez_compressed.npz:beta", "beta.npy"],
    ["one.npz", "x.npy"],
    ["mixed.npz:x16", "mixed_x16.npy"],
    ["mixed.npz:x64be", "mixed_x64be.npy"],
    ["mixed.npz:xf", "mixed_xf.npy"],
    ["mixed.npz:x64", "mixed_x64.npy"],
    ["mixed.npz:x64.npy", "mixed_x64.npy"],
    ["torch.safetensors:x", "x.npy"],
    ["torch.safetensors:x16", "mixed_x16.npy"],
    ["torch.safetensors:gamma", "gamma.npy"],
    ["torch.safetensors:xb", "bf16_as_f32.npy"],
    ["torch_bf16.safetensors:dy", "bf16_dy_as_f32.npy"],
  ])("%s has the values of %s, bitwise", async (name, npy) => {
    const a = await values(`${F}${name}`), b = await values(`${F}${npy}`);
    expect(bitsOf(a).equals(bitsOf(b))).toBe(true);
  });

  it("reads them in parts as it reads them whole (a deflated member's inflaters resume, restart and check its CRC)", async () => {
    for (const name of ["savez_compressed.npz:x", "mixed.npz:xf", "mixed.npz:x64be", "torch.safetensors:xb"]) {
      const s = await openTensor(`${F}${name}`);
      try {
        const whole = await readAll(s);
        const part = new Float64Array(s.size);
        for (const [a, b] of [[100, 192], [0, 50], [50, 100], [10, 20], [0, 192]]) await s.read(a!, b! - a!, part, a!);
        expect(part).toEqual(whole);
      } finally {
        await s.close();
      }
    }
  });

  it("forward and backward on .npz and safetensors inputs write the .npy path's outputs, bitwise, and match the float64 oracle", async () => {
    const d = groupNormDims([2, 6, 4, 4], 3, "nchw");
    const x = await values(`${F}x.npy`), dy = await values(`${F}dy.npy`), gamma = await values(`${F}gamma.npy`), beta = await values(`${F}beta.npy`);
    const ref = referenceForward(x, d, gamma, beta, 1e-5);
    const refB = referenceBackward(dy, x, d, gamma, ref);
    const runs = [
      { x: `${F}x.npy`, dy: `${F}dy.npy`, gamma: `${F}gamma.npy`, beta: `${F}beta.npy` },
      { x: `${F}savez.npz:x`, dy: `${F}savez.npz:dy`, gamma: `${F}savez.npz:gamma`, beta: `${F}savez.npz:beta` },
      { x: `${F}savez_compressed.npz:x`, dy: `${F}savez_compressed.npz:dy`, gamma: `${F}savez_compressed.npz:gamma`, beta: `${F}savez_compressed.npz:beta` },
      { x: `${F}torch.safetensors:x`, dy: `${F}dy.npy`, gamma: `${F}torch.safetensors:gamma`, beta: `${F}torch.safetensors:beta` },
    ];
    const outs: Buffer[][] = [];
    for (const [i, r] of runs.entries()) {
      const f = await forwardFiles({ engine, x: r.x, groups: 3, gamma: r.gamma, beta: r.beta, outDir: P(`fwd${i}`) });
      const b = await backwardFiles({ engine, dy: r.dy, x: r.x, groups: 3, gamma: r.gamma, outDir: P(`bwd${i}`) });
      const files = [f.outputs.Y!, f.outputs.mean!, f.outputs.rstd!, b.outputs.dX!, b.outputs.dgamma!, b.outputs.dbeta!];
      outs.push(files.map((p) => readFileSync(p)));
      expect(relError(await values(f.outputs.Y!), ref.y)).toBeLessThan(3e-6);
      expect(relError(await values(f.outputs.rstd!), ref.rstd)).toBeLessThan(3e-6);
      expect(relError(await values(b.outputs.dX!), refB.dx)).toBeLessThan(3e-5);
      expect(relError(await values(b.outputs.dgamma!), refB.dgamma)).toBeLessThan(3e-5);
    }
    for (const o of outs.slice(1)) for (const [k, buf] of o.entries()) expect(buf.equals(outs[0]![k]!), `output ${k}`).toBe(true);
  });

  it("a bfloat16 run (PyTorch's bfloat16 tensors) gives the float32 run of the same values, rounded once to bfloat16, and passes verify against the oracle", async () => {
    const st = `${F}torch_bf16.safetensors`;
    const f16 = await forwardFiles({ engine, x: `${st}:x`, groups: 3, gamma: `${st}:gamma`, beta: `${st}:beta`, out: P("bf16.safetensors") });
    expect(f16.dtypes).toEqual({ Y: "bfloat16", mean: "float32", rstd: "float32" });
    expect(f16.outputs.Y).toBe(`${P("bf16.safetensors")}:Y`);
    const f32 = await forwardFiles({ engine, x: `${F}bf16_as_f32.npy`, groups: 3, gamma: `${F}bf16_gamma_as_f32.npy`, beta: `${F}bf16_beta_as_f32.npy`, outDir: P("bf16-f32") });
    const b16 = await backwardFiles({ engine, dy: `${st}:dy`, x: `${st}:x`, groups: 3, gamma: `${st}:gamma`, out: P("bf16-grads.safetensors") });
    const b32 = await backwardFiles({ engine, dy: `${F}bf16_dy_as_f32.npy`, x: `${F}bf16_as_f32.npy`, groups: 3, gamma: `${F}bf16_gamma_as_f32.npy`, outDir: P("bf16-f32-grads") });
    const rounded = async (p: string) => {
      const v = await values(p);
      const o = new Uint16Array(v.length);
      encodeBF16(Float32Array.from(v), o);
      return Float64Array.from(o, bf16ToF32);
    };
    for (const [a, b] of [[f16.outputs.Y!, f32.outputs.Y!], [b16.outputs.dX!, b32.outputs.dX!], [b16.outputs.dgamma!, b32.outputs.dgamma!], [b16.outputs.dbeta!, b32.outputs.dbeta!]]) {
      expect(bitsOf(await values(a!)).equals(bitsOf(await rounded(b!))), a).toBe(true);
    }
    expect(await values(f16.outputs.rstd!)).toEqual(await values(f32.outputs.rstd!));
    // the oracle, in float64 from the stored bfloat16 values: Y within bfloat16's rounding
    const d = groupNormDims([2, 6, 4, 4], 3, "nchw");
    const ref = referenceForward(await values(`${st}:x`), d, await values(`${st}:gamma`), await values(`${st}:beta`), 1e-5);
    expect(relError(await values(f16.outputs.Y!), ref.y)).toBeLessThan(2 ** -8);
    const v = await verifyFiles({ mode: "forward", x: `${st}:x`, groups: 3, gamma: `${st}:gamma`, beta: `${st}:beta`, y: f16.outputs.Y, mean: f16.outputs.mean, rstd: f16.outputs.rstd });
    expect(v.passed).toBe(true);
    expect(v.outputs.Y!.tolerance_used).toBeGreaterThan(0.01); // bfloat16's tolerance is bfloat16's, and used
    // compare defaults to bfloat16's tolerance when either side is bfloat16
    const c = await compareFiles(f16.outputs.Y!, f32.outputs.Y!);
    expect([c.close, c.atol, c.rtol]).toEqual([true, 1e-5, 1.6e-2]);
  });
});

describe("outputs in containers", () => {
  it("--out FILE.npz (stored, and deflated with compress) and FILE.safetensors hold the .npy outputs' values, and keys name them; outputs naming one container go into it together", async () => {
    const base = await forwardFiles({ engine, x: `${F}x.npy`, groups: 3, gamma: `${F}gamma.npy`, beta: `${F}beta.npy`, outDir: P("base") });
    for (const [out, compress] of [["o.npz", false], ["oc.npz", true], ["o.safetensors", false]] as const) {
      const r = await forwardFiles({ engine, x: `${F}x.npy`, groups: 3, gamma: `${F}gamma.npy`, beta: `${F}beta.npy`, out: P(out), compress });
      expect(r.outputs).toEqual({ Y: `${P(out)}:Y`, mean: `${P(out)}:mean`, rstd: `${P(out)}:rstd` });
      for (const k of ["Y", "mean", "rstd"] as const) expect(bitsOf(await values(r.outputs[k]!)).equals(bitsOf(await values(base.outputs[k]!))), `${out} ${k}`).toBe(true);
      const info = await describeFile(P(out));
      expect("tensors" in info && info.tensors.map((t) => [t.name, t.dtype, t.storage])).toEqual(
        ["Y", "mean", "rstd"].map((k) => [k, "float32", out.endsWith(".safetensors") ? "raw" : compress ? "deflated" : "stored"]),
      );
    }
    const r = await forwardFiles({ engine, x: `${F}x.npy`, groups: 3, y: P("y.safetensors:normed"), mean: P("stats.npz"), rstd: P("stats.npz:r") });
    expect(r.outputs).toEqual({ Y: `${P("y.safetensors")}:normed`, mean: `${P("stats.npz")}:mean`, rstd: `${P("stats.npz")}:r` });
    expect(await values(P("stats.npz:r"))).toEqual(await values(base.outputs.rstd!));
    expect(tmpFiles(tmp)).toEqual([]);
  });

  it.runIf(python)("NumPy reads the .npz outputs (and zipfile's CRC test passes); a safetensors reader in Python reads the safetensors ones", async () => {
    await forwardFiles({ engine, x: `${F}x.npy`, groups: 3, out: P("np.npz") });
    await forwardFiles({ engine, x: `${F}x.npy`, groups: 3, out: P("npc.npz"), compress: true });
    await forwardFiles({ engine, x: `${F}torch_bf16.safetensors:x`, groups: 3, out: P("py.safetensors") });
    await forwardFiles({ engine, x: `${F}x.npy`, groups: 3, outDir: P("npy") });
    await backwardFiles({ engine, dy: `${F}dy.npy`, x: `${F}x.npy`, groups: 3, gamma: `${F}gamma.npy`, out: P("grads.npz"), compress: true });
    await backwardFiles({ engine, dy: `${F}dy.npy`, x: `${F}x.npy`, groups: 3, gamma: `${F}gamma.npy`, outDir: P("grads") });
    const r = py(`${PY_SAFETENSORS}
import zipfile, torch
res = {}
for name in ["np.npz", "npc.npz"]:
    z = np.load("${tmp}/" + name)
    res[name] = {k: bool((z[k] == np.load("${P("npy/")}" + k + ".npy")).all()) for k in ["Y", "mean", "rstd"]}
    res[name + " crc"] = zipfile.ZipFile("${tmp}/" + name).testzip()
g = np.load("${P("grads.npz")}")
res["grads"] = {k: bool((g[k] == np.load("${P("grads/")}" + k + ".npy")).all()) for k in ["dX", "dgamma", "dbeta"]}
header, t = st_load("${P("py.safetensors")}")
res["st"] = {k: v[0] for k, v in t.items()}
yb = torch.from_numpy(t["Y"][1].astype(np.int16)).view(torch.bfloat16).float().numpy()
x = torch.from_numpy(np.load("${F}bf16_as_f32.npy")).double()
ref = torch.nn.functional.group_norm(x, 3, eps=1e-5).numpy()
res["bf16 rel"] = float(np.abs(yb - ref).max() / np.abs(ref).max())
print(json.dumps(res))`) as Record<string, unknown>;
    expect(r["np.npz"]).toEqual({ Y: true, mean: true, rstd: true });
    expect(r["npc.npz"]).toEqual({ Y: true, mean: true, rstd: true });
    expect([r["np.npz crc"], r["npc.npz crc"]]).toEqual([null, null]);
    expect(r.grads).toEqual({ dX: true, dgamma: true, dbeta: true });
    expect(r.st).toEqual({ Y: "BF16", mean: "F32", rstd: "F32" });
    expect(r["bf16 rel"]).toBeLessThan(2 ** -8);
  });

  it("refuses bfloat16 in .npy and .npz outputs with the way to write it, before any output exists", async () => {
    const st = `${F}torch_bf16.safetensors:x`;
    await expect(forwardFiles({ engine, x: st, groups: 3, outDir: P("nobf16") })).rejects.toThrow(/\.npy has no bfloat16: Y would be bfloat16 \(X's dtype\); write it to a safetensors file \(--out FILE\.safetensors, or --y FILE\.safetensors\)/);
    await expect(forwardFiles({ engine, x: st, groups: 3, out: P("nobf16.npz") })).rejects.toThrow(/Y would be bfloat16, which \.npy \(and so \.npz\) cannot hold: write it to a safetensors file/);
    expect(existsSync(P("nobf16"))).toBe(false);
    expect(existsSync(P("nobf16.npz"))).toBe(false);
    // mean and rstd are float32: fine in .npy
    const r = await forwardFiles({ engine, x: st, groups: 3, outputs: ["mean", "rstd"], outDir: P("bf16stats") });
    expect(r.dtypes).toEqual({ mean: "float32", rstd: "float32" });
  });

  it("a run that fails while reading (a CRC mismatch at the end of X) leaves no container and no temporary", async () => {
    const zip = readFileSync(`${F}savez.npz`);
    const at = zip.indexOf(Buffer.from("x.npy")) + 5 + 200; // inside x.npy's data
    const bad = Buffer.from(zip);
    bad[at] ^= 0x40;
    writeFileSync(P("crc.npz"), bad);
    for (const out of ["crc-out.npz", "crc-out.safetensors"]) {
      await expect(forwardFiles({ engine, x: `${P("crc.npz")}:x`, groups: 3, out: P(out) })).rejects.toThrow(/CRC-32 mismatch: the member's data gives 0x[0-9a-f]{8} but the archive records 0x[0-9a-f]{8}/);
      expect(existsSync(P(out))).toBe(false);
    }
    expect(tmpFiles(tmp)).toEqual([]);
  });
});

describe("names, listings and refusals", () => {
  it("says which keys there are, and how to name one", async () => {
    expect((await refusal(`${F}savez.npz:nope`)).message).toBe('has no array "nope"; it holds "x", "gamma", "beta", "dy"');
    expect((await refusal(`${F}savez.npz`)).message).toMatch(/^holds 4 arrays \("x", "gamma", "beta", "dy"\): name one as .*savez\.npz:KEY$/);
    expect((await refusal(`${F}torch.safetensors:y`)).message).toMatch(/^has no tensor "y"; it holds "x", "x16", "gamma", "xb", "beta", "step"$/);
    expect((await refusal(`${F}torch.safetensors:step`)).message).toBe("dtype I64 (int64) is not supported; use F16, BF16, F32 or F64");
    expect((await refusal(`${F}mixed.npz:readme.txt`)).message).toMatch(/the member "readme\.txt" is not a \.npy file/);
    expect((await refusal(`${F}mixed.npz:ids`)).message).toMatch(/integer dtype '<i8' is not supported/);
    expect((await refusal(`${F}x.npy:x`)).message).toBe("is a .npy file, which holds one array: name it without ':x'");
    const missing = await refusal(`${P("nothere.npz")}:x`);
    expect([missing.file, missing.message]).toEqual([P("nothere.npz"), "no such file"]);
  });

  it("the command line: exit 2 and one line naming the file; --out must be a container, and not with --out-dir", () => {
    const r = groupnorm(["forward", `${F}savez.npz:nope`, "--groups", "3"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`groupnorm: error: ${F}savez.npz: has no array "nope"; it holds "x", "gamma", "beta", "dy"\n`);
    const o = groupnorm(["forward", `${F}x.npy`, "--groups", "3", "--out", P("out.npy")]);
    expect([o.status, o.stderr]).toEqual([2, `groupnorm: error: --out names a container, FILE.npz or FILE.safetensors (for .npy files, use --out-dir): got ${P("out.npy")}\n`]);
    const both = groupnorm(["forward", `${F}x.npy`, "--groups", "3", "--out", P("a.npz"), "--out-dir", P("d")]);
    expect([both.status, both.stderr]).toEqual([2, "groupnorm: error: --out and --out-dir: give one (--out writes the outputs into one container, --out-dir as .npy files in a folder)\n"]);
    const input = groupnorm(["forward", `${P("in.npz")}:x`, "--groups", "3", "--out", P("in.npz")], {});
    expect(input.status).toBe(2);
    writeFileSync(P("in.npz"), readFileSync(`${F}savez.npz`));
    const same = groupnorm(["forward", `${P("in.npz")}:x`, "--groups", "3", "--out", P("in.npz")]);
    expect([same.status, same.stderr]).toEqual([2, `groupnorm: error: ${P("in.npz")}: is an input of this run (${P("in.npz")}): a container output is written whole, so the tensors it holds would be lost; name another file\n`]);
    const warn = groupnorm(["forward", `${F}x.npy`, "--groups", "3", "--out", P("w.safetensors"), "--compress", "--quiet"]);
    expect([warn.status, warn.stderr]).toEqual([0, ""]);
    const loud = groupnorm(["forward", `${F}x.npy`, "--groups", "3", "--out", P("w2.safetensors"), "--compress"]);
    expect(loud.stderr).toBe("groupnorm: warning: --compress has no effect: no output is an .npz file\n");
  });

  it("info lists a container's tensors (name, dtype, shape, bytes, storage) and describes file:key as a .npy", async () => {
    const l = await describeFile(`${F}mixed.npz`);
    expect(l).toMatchObject({ command: "info", format: "npz", metadata: null });
    if (!("tensors" in l)) throw new Error("not a listing");
    expect(l.tensors.map((t) => [t.name, t.dtype, t.shape, t.bytes, t.storage, t.order])).toEqual([
      ["x16", "float16", [2, 6, 4, 4], 384, "deflated", "C"],
      ["x64be", "float64", [2, 6, 4, 4], 1536, "deflated", "C"],
      ["xf", "float32", [12, 16], 768, "deflated", "F"],
      ["ids", "int64", [5], 40, "deflated", "C"],
      ["x64", "float64", [2, 6, 4, 4], 1536, "stored", "C"],
    ]);
    expect(l.others.map((t) => [t.name, t.note])).toEqual([["readme.txt", "not a .npy member: not read"]]);
    const s = await describeFile(`${F}torch.safetensors`);
    if (!("tensors" in s)) throw new Error("not a listing");
    expect(s.metadata).toEqual({ format: "pt", made_by: "fixtures/containers/generate.py" });
    expect(s.tensors.find((t) => t.name === "xb")).toMatchObject({ dtype: "bfloat16", shape: [2, 6, 4, 4], bytes: 384, storage: "raw" });
    const one = await describeFile(`${F}savez_compressed.npz:x`);
    expect(one).toMatchObject({ format: "npz", file: `${F}savez_compressed.npz`, key: "x", version: "1.0", dtype: "float32", shape: [2, 6, 4, 4], storage: "deflated", statistics: "computed" });
    const b = await describeFile(`${F}torch.safetensors:xb`);
    expect(b).toMatchObject({ format: "safetensors", version: null, dtype: "bfloat16", byte_order: "little", bytes: 384, statistics: "computed" });
    const text = groupnorm(["info", `${F}torch.safetensors`]).stdout;
    expect(text).toMatch(/^ {2}xb +bfloat16 \(2, 6, 4, 4\), 384 bytes$/m);
  });
});

describe("hostile containers: exit 2 and one line", () => {
  const zip = readFileSync(`${F}savez.npz`);
  const cz = readFileSync(`${F}one.npz`);
  const st = readFileSync(`${F}torch.safetensors`);
  const stHeader = (h: unknown, data = Buffer.alloc(0), pad = true) => {
    let j = Buffer.from(JSON.stringify(h));
    if (pad) j = Buffer.concat([j, Buffer.alloc(-j.length & 7, 0x20)]);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([n, j, data]);
  };
  /** one.npz's single member, rebuilt with `body` deflated as its data (sizes and CRC as declared). */
  const memberWith = (body: Buffer, declared: number, crc: number) => {
    const name = Buffer.from("x.npy");
    const data = deflateRawSync(body);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(declared, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(declared, 24);
    central.writeUInt16LE(name.length, 28);
    const cdStart = 30 + name.length + data.length;
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(1, 8);
    eocd.writeUInt16LE(1, 10);
    eocd.writeUInt32LE(46 + name.length, 12);
    eocd.writeUInt32LE(cdStart, 16);
    return Buffer.concat([local, name, data, central, name, eocd]);
  };
  const x = readFileSync(`${F}x.npy`);
  const crcOf = (b: Buffer) => crc32(b);

  it.each<[string, "npz" | "safetensors", () => Buffer, RegExp]>([
    ["truncated zip", "npz", () => zip.subarray(0, zip.length - 30), /corrupt or truncated zip archive \(\.npz\): /],
    ["zip cut in a member", "npz", () => zip.subarray(0, 400), /corrupt or truncated zip archive/],
    ["stored member, CRC mismatch", "npz", () => { const b = Buffer.from(zip); b[zip.indexOf("x.npy") + 300] ^= 1; return b; }, /CRC-32 mismatch/],
    ["deflated member, corrupt deflate data", "npz", () => { const b = Buffer.from(cz); b[60] ^= 0xff; b[61] ^= 0xff; return b; }, /corrupt deflate data|CRC-32 mismatch|inflates to|malformed header|not a \.npy file|data is/],
    ["inflates to more than declared (a bomb)", "npz", () => memberWith(Buffer.concat([x, Buffer.alloc(50 << 20)]), x.length, crcOf(x)), /inflates to more than the 896 bytes its entry declares \(a zip bomb, or a corrupt archive\)/],
    ["inflates to fewer than declared", "npz", () => memberWith(x.subarray(0, 500), x.length, crcOf(x)), /inflates to only 500 of the 896 bytes its entry declares/],
    ["declared smaller than the data", "npz", () => memberWith(x, 800, crcOf(x)), /inflates to more than the 800 bytes its entry declares/],
    ["overlapping members (entries sharing data)", "npz", () => {
      // the central directory's second entry points at the first member's local header
      const b = Buffer.from(zip);
      const cd = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      b.writeUInt32LE(0, cd + 42);
      return b;
    }, /overlaps|local header names/],
    ["header length past the file", "safetensors", () => { const b = Buffer.from(st); b.writeBigUInt64LE(BigInt(st.length), 0); return b; }, /header length \d+ runs past the end of the file/],
    ["header over 100 MB", "safetensors", () => { const b = Buffer.from(st); b.writeBigUInt64LE(200_000_000n, 0); return b; }, /header length 200000000 is over the 100000000 bytes \(100 MB\) safetensors allows/],
    ["offsets outside the data", "safetensors", () => stHeader({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(4)), /the tensors need 8 bytes of data but the file holds 4/],
    ["overlapping tensors", "safetensors", () => stHeader({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, Buffer.alloc(12)), /tensor "b" \(data_offsets \[4, 12\]\) overlaps tensor "a"/],
    ["a gap (non-contiguous data)", "safetensors", () => stHeader({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, Buffer.alloc(12)), /the data is not contiguous: 4 bytes before tensor "b"/],
    ["size not dtype × shape", "safetensors", () => stHeader({ x: { dtype: "BF16", shape: [2, 3], data_offsets: [0, 8] } }, Buffer.alloc(8)), /tensor "x" has 8 bytes \(data_offsets \[0, 8\]\) but BF16 × shape \(2, 3\) needs 12 bytes/],
    ["an unknown dtype", "safetensors", () => stHeader({ x: { dtype: "Q7", shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)), /tensor "x" has an unknown dtype "Q7"/],
    ["bytes after the last tensor", "safetensors", () => stHeader({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(6)), /2 bytes belong to no tensor/],
  ])("%s (%s)", (name, ext, make, pattern) => {
    const file = P(`hostile-${name.replace(/\W+/g, "-")}.${ext}`);
    writeFileSync(file, make());
    const t0 = Date.now();
    const r = groupnorm(["forward", file.endsWith(".npz") ? `${file}:x` : file, "--groups", "1", "--out-dir", P("hostile-out")]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stdout).toBe("");
    expect(Date.now() - t0).toBeLessThan(30_000); // a CLI start and a refusal (generous: CI machines are shared)
  });

  it("duplicate tensor names are refused (JSON.parse would keep the last)", async () => {
    const body = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const j = Buffer.concat([Buffer.from(body), Buffer.alloc(-body.length & 7, 0x20)]);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(j.length));
    writeFileSync(P("dup.safetensors"), Buffer.concat([n, j, Buffer.alloc(4)]));
    expect((await refusal(P("dup.safetensors"))).message).toMatch(/^malformed header: duplicate key "x" at character \d+$/);
  });
});
