import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import { mkdtemp, rm, writeFile, readFile, mkdir, readdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  NpyReader,
  NpyWriter,
  encodeNpyHeader,
  readNpy,
  readNpyHeader,
  writeNpy,
} from "../src/io/npy/index.js";
import { type Dtype, itemSizeOf } from "../src/core/dtype.js";
import {
  decodeF16,
  encodeF16,
  f16ArrayToFloat32,
  f16ArrayToFloat64,
  f16ToF32,
  f32ToF16,
  floatArrayToF16,
} from "../src/io/float16.js";
import { CheckFailed, InputError, formatError } from "../src/errors.js";

/*
 * test/data/npy/ holds tiny reference files written once by NumPy 1.24 (tests never run Python):
 *
 *   import numpy as np; from numpy.lib import format as F
 *   a23 = np.arange(6).reshape(2, 3) * 0.5 - 1
 *   np.save('v1_f4_2x3.npy', a23.astype('<f4'))
 *   F.write_array(open('v2_f8_3.npy', 'wb'), np.array([1.5, -2.25, 1e300], '<f8'), version=(2, 0))
 *   F.write_array(open('v3_f2_4.npy', 'wb'), np.array([1, -0.5, 65504, 2**-24], '<f2'), version=(3, 0))
 *   for t in ('f2', 'f4', 'f8'): np.save(f'be_{t}_2x3.npy', a23.astype('>' + t))
 *   np.save('fortran_f4_2x3.npy', np.asfortranarray(a23.astype('<f4')))
 *   np.save('fortran_be_f8_2x3x2x2.npy',
 *           np.asfortranarray((np.arange(24).reshape(2, 3, 2, 2) / 4).astype('>f8')))
 *   np.save('f2_specials.npy', np.array([0.0, -0.0, 2**-24, 1023 * 2**-24, 2**-14, 65504, np.inf,
 *                                        -np.inf, np.nan, -2.0, 1/3], '<f2'))
 *   np.save('scalar_f8.npy', np.array(3.25)); np.save('empty_f4_0x3.npy', np.zeros((0, 3), '<f4'))
 *
 * Files written by writeNpy were checked (by hand, once) to be byte-identical to np.save output.
 */
const DATA = fileURLToPath(new URL("./data/npy/", import.meta.url));
const ref = (name: string) => join(DATA, name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "groupnorm-npy-test-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

let counter = 0;
async function tmpFile(bytes: Uint8Array | string, name?: string): Promise<string> {
  const p = join(dir, name ?? `f${counter++}.npy`);
  await writeFile(p, bytes);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Byte-level fixture builders

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

interface NpyOpts {
  version?: [number, number];
  /** Pad header with spaces + '\n' so the data starts at a multiple of this (default 64). */
  align?: number;
  /** Use `dict` verbatim as the whole header text (no padding, no '\n' added). */
  raw?: boolean;
  /** Override the header-length field. */
  hlen?: number;
}

function npy(dict: string, data: Uint8Array | number[] = [], opts: NpyOpts = {}): Uint8Array {
  const [major, minor] = opts.version ?? [1, 0];
  const prefix = major === 1 ? 10 : 12;
  let text = dict;
  if (!opts.raw) {
    const align = opts.align ?? 64;
    const enc = major === 3 ? Buffer.byteLength(dict, "utf8") : dict.length;
    const total = prefix + enc + 1;
    text = dict + " ".repeat((align - (total % align)) % align) + "\n";
  }
  const hb = major === 3 ? Buffer.from(text, "utf8") : Buffer.from(text, "latin1");
  const head = Buffer.alloc(prefix);
  head.set(MAGIC);
  head[6] = major;
  head[7] = minor;
  const hlen = opts.hlen ?? hb.length;
  if (major === 1) head.writeUInt16LE(hlen, 8);
  else head.writeUInt32LE(hlen, 8);
  return Buffer.concat([head, hb, Buffer.from(data)]);
}

const dictOf = (descr: string, shape: string, fortran = false) =>
  `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': ${shape}, }`;

/** Raw bytes of `values` as the given dtype and byte order. */
function rawBytes(values: ArrayLike<number>, dtype: Dtype, littleEndian = true): Uint8Array {
  const n = values.length;
  const isz = itemSizeOf(dtype);
  const b = Buffer.alloc(n * isz);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (dtype === "float16") {
      const h = f32ToF16(v);
      if (littleEndian) b.writeUInt16LE(h, 2 * i);
      else b.writeUInt16BE(h, 2 * i);
    } else if (dtype === "float32") {
      if (littleEndian) b.writeFloatLE(v, 4 * i);
      else b.writeFloatBE(v, 4 * i);
    } else if (littleEndian) b.writeDoubleLE(v, 8 * i);
    else b.writeDoubleBE(v, 8 * i);
  }
  return b;
}

/** Fortran-order flattening of a C-order array with the given shape. */
function toFortran(c: ArrayLike<number>, shape: number[]): number[] {
  const nd = shape.length;
  const size = shape.reduce((a, b) => a * b, 1);
  const cs = new Array<number>(nd).fill(1);
  for (let k = nd - 2; k >= 0; k--) cs[k] = cs[k + 1]! * shape[k + 1]!;
  const out = new Array<number>(size);
  const idx = new Array<number>(nd).fill(0);
  for (let f = 0; f < size; f++) {
    let off = 0;
    for (let k = 0; k < nd; k++) off += idx[k]! * cs[k]!;
    out[f] = c[off]!;
    for (let k = 0; k < nd; k++) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

/** Every entry point must refuse `path` with an InputError naming it. */
async function expectRefused(path: string, re: RegExp): Promise<void> {
  for (const attempt of [
    () => readNpyHeader(path),
    () => NpyReader.open(path),
    () => readNpy(path),
    () => readNpy(path, "float32"),
  ]) {
    const e = await caught(attempt());
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).file).toBe(path);
    expect((e as InputError).message).toMatch(re);
    expect((e as InputError).message).not.toMatch(/\n/);
  }
}

const A23 = [-1, -0.5, 0, 0.5, 1, 1.5];

// ---------------------------------------------------------------------------------------------

describe("errors", () => {
  it("formats InputError with and without a file", () => {
    expect(formatError(new InputError("bad thing", "x.npy"))).toBe("groupnorm: error: x.npy: bad thing");
    expect(formatError(new InputError("bad thing"))).toBe("groupnorm: error: bad thing");
    const e = new InputError("m", "f");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("InputError");
    expect(e.file).toBe("f");
    expect(new CheckFailed("c")).toBeInstanceOf(Error);
  });
});

describe("float16", () => {
  function refDecode(h: number): number {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 31;
    const f = h & 1023;
    if (e === 0) return s * f * 2 ** -24;
    if (e === 31) return f ? NaN : s * Infinity;
    return s * 2 ** (e - 15) * (1 + f / 1024);
  }

  it("decodes all 65536 bit patterns exactly", () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      const r = refDecode(h);
      if (Number.isNaN(r)) expect(Number.isNaN(v)).toBe(true);
      else expect(Object.is(v, r)).toBe(true);
    }
  });

  it("decodes specials", () => {
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0x7c01)).toBeNaN();
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x3555)).toBe(0.333251953125);
  });

  it("round-trips every non-NaN half through f32ToF16", () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      if (!Number.isNaN(v)) expect(f32ToF16(v)).toBe(h);
    }
  });

  it("rounds to nearest, ties to even", () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (down)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -30)).toBe(0x3c01); // just above the tie
    expect(f32ToF16(1 + 2 ** -11 - 2 ** -30)).toBe(0x3c00);
    // Not double-rounded through float32: 1 + 2^-11 + 2^-40 is 1 + 2^-11 (a tie) in float32.
    expect(Math.fround(1 + 2 ** -11 + 2 ** -40)).toBe(1 + 2 ** -11);
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(f32ToF16(-(1 + 2 ** -11 + 2 ** -40))).toBe(0xbc01);
    expect(f32ToF16(2048 + 1)).toBe(0x6800); // 2049 -> 2048 (tie, even)
    expect(f32ToF16(2048 + 3)).toBe(0x6802); // 2051 -> 2052
  });

  it("rounds subnormals correctly", () => {
    expect(f32ToF16(2 ** -24)).toBe(0x0001);
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie -> 0
    expect(f32ToF16(2 ** -25 + 2 ** -60)).toBe(0x0001);
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie -> 2
    expect(f32ToF16(5 * 2 ** -25)).toBe(0x0002); // tie -> 2
    expect(f32ToF16(1023.5 * 2 ** -24)).toBe(0x0400); // tie -> smallest normal
    expect(f32ToF16(1022.5 * 2 ** -24)).toBe(0x03fe);
    expect(f32ToF16(1e-30)).toBe(0x0000);
    expect(f32ToF16(-1e-30)).toBe(0x8000);
    expect(f32ToF16(Number.MIN_VALUE)).toBe(0x0000);
  });

  it("overflows to infinity and keeps NaN, -0", () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.99)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(-65520)).toBe(0xfc00);
    expect(f32ToF16(1e10)).toBe(0x7c00);
    expect(f32ToF16(Number.MAX_VALUE)).toBe(0x7c00);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    const n = f32ToF16(NaN);
    expect(n & 0x7c00).toBe(0x7c00);
    expect(n & 0x0200).toBe(0x0200); // quiet
    expect(f32ToF16(0)).toBe(0);
    expect(f32ToF16(-0)).toBe(0x8000);
  });

  /** Reference: nearest finite half by exact comparison, ties to even; overflow per IEEE. */
  const positives: number[] = [];
  for (let h = 0; h <= 0x7bff; h++) positives.push(f16ToF32(h));
  function refEncode(v: number): number {
    if (Number.isNaN(v)) return 0x7e00;
    const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
    const a = Math.abs(v);
    if (a >= 65520) return sign | 0x7c00;
    let lo = 0;
    let hi = 0x7bff;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (positives[mid]! <= a) lo = mid;
      else hi = mid - 1;
    }
    if (positives[lo] === a || lo === 0x7bff) return sign | lo;
    const dLo = a - positives[lo]!;
    const dHi = positives[lo + 1]! - a;
    if (dLo < dHi) return sign | lo;
    if (dHi < dLo) return sign | (lo + 1);
    return sign | (lo % 2 === 0 ? lo : lo + 1);
  }

  it("matches an exhaustive-search reference on random doubles (scalar and bulk)", () => {
    const interesting = fc.oneof(
      fc.double({ noNaN: false }),
      fc.double({ min: -70000, max: 70000 }),
      fc.double({ min: -1e-4, max: 1e-4 }),
      fc.integer({ min: 0, max: 0x7bfe }).map((h) => (f16ToF32(h) + f16ToF32(h + 1)) / 2), // ties
    );
    fc.assert(
      fc.property(fc.array(interesting, { maxLength: 50 }), (vals) => {
        const f64 = Float64Array.from(vals);
        const bulk = floatArrayToF16(f64);
        for (let i = 0; i < vals.length; i++) {
          const v = vals[i]!;
          const want = refEncode(v);
          const got = f32ToF16(v);
          if (Number.isNaN(v)) {
            expect(got & 0x7e00).toBe(0x7e00);
            expect(bulk[i]! & 0x7e00).toBe(0x7e00);
          } else {
            expect(got).toBe(want);
            expect(bulk[i]).toBe(want);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("bulk float32 encoding equals the scalar path", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: false }), { maxLength: 100 }), (vals) => {
        const f32 = Float32Array.from(vals);
        const out = new Uint16Array(f32.length + 2);
        encodeF16(f32, out, 2);
        for (let i = 0; i < f32.length; i++) {
          const v = f32[i]!;
          if (Number.isNaN(v)) expect(out[i + 2]! & 0x7e00).toBe(0x7e00);
          else expect(out[i + 2]).toBe(f32ToF16(v));
        }
      }),
      { numRuns: 300 },
    );
    // Dense sweep over float32 bit patterns around the half range (every 61st pattern).
    const bits = new Uint32Array(1 << 16);
    for (let base = 0x33000000; base < 0x47900000; base += bits.length * 61) {
      for (let i = 0; i < bits.length; i++) bits[i] = base + i * 61;
      const f32 = new Float32Array(bits.buffer);
      const out = floatArrayToF16(f32);
      for (let i = 0; i < f32.length; i++) {
        if (out[i] !== f32ToF16(f32[i]!)) expect([f32[i], out[i]]).toEqual([f32[i], f32ToF16(f32[i]!)]);
      }
    }
  });

  it("bulk decode helpers", () => {
    const src = Uint16Array.from([0x3c00, 0x0001, 0xfc00, 0x7bff]);
    expect(Array.from(f16ArrayToFloat32(src))).toEqual([1, 2 ** -24, -Infinity, 65504]);
    expect(Array.from(f16ArrayToFloat64(src))).toEqual([1, 2 ** -24, -Infinity, 65504]);
    const out = new Float64Array(6);
    decodeF16(src, out, 2);
    expect(Array.from(out)).toEqual([0, 0, 1, 2 ** -24, -Infinity, 65504]);
    expect(() => decodeF16(src, new Float32Array(3))).toThrow(RangeError);
  });
});

describe("reading NumPy-written files", () => {
  it("v1.0 little-endian float32", async () => {
    const { header, data } = await readNpy(ref("v1_f4_2x3.npy"));
    expect(header).toMatchObject({
      version: [1, 0],
      dtype: "float32",
      littleEndian: true,
      fortranOrder: false,
      shape: [2, 3],
      size: 6,
      itemSize: 4,
      dataOffset: 128,
      fileSize: 152,
    });
    expect(data).toBeInstanceOf(Float64Array);
    expect(Array.from(data)).toEqual(A23);
    const f32 = await readNpy(ref("v1_f4_2x3.npy"), "float32");
    expect(f32.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f32.data)).toEqual(A23);
  });

  it("v2.0 float64", async () => {
    const { header, data } = await readNpy(ref("v2_f8_3.npy"));
    expect(header.version).toEqual([2, 0]);
    expect(header.shape).toEqual([3]);
    expect(header.dataOffset).toBe(128);
    expect(Array.from(data)).toEqual([1.5, -2.25, 1e300]);
    // float64 -> float32 rounds (1e300 overflows to inf).
    expect(Array.from((await readNpy(ref("v2_f8_3.npy"), "float32")).data)).toEqual([1.5, -2.25, Infinity]);
  });

  it("v3.0 float16", async () => {
    const { header, data } = await readNpy(ref("v3_f2_4.npy"));
    expect(header.version).toEqual([3, 0]);
    expect(header.dtype).toBe("float16");
    expect(header.itemSize).toBe(2);
    expect(Array.from(data)).toEqual([1, -0.5, 65504, 2 ** -24]);
  });

  it.each(["be_f2_2x3.npy", "be_f4_2x3.npy", "be_f8_2x3.npy"])("big-endian %s", async (name) => {
    const { header, data } = await readNpy(ref(name));
    expect(header.littleEndian).toBe(false);
    expect(header.shape).toEqual([2, 3]);
    expect(Array.from(data)).toEqual(A23);
    expect(Array.from((await readNpy(ref(name), "float32")).data)).toEqual(A23);
  });

  it("float16 specials decode exactly", async () => {
    const { data } = await readNpy(ref("f2_specials.npy"));
    const want = [0, -0, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, Infinity, -Infinity, NaN, -2, 0.333251953125];
    expect(data.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      if (Number.isNaN(want[i])) expect(data[i]).toBeNaN();
      else expect(Object.is(data[i], want[i])).toBe(true);
    }
  });

  it("Fortran order 2-D is returned in C order", async () => {
    const { header, data } = await readNpy(ref("fortran_f4_2x3.npy"));
    expect(header.fortranOrder).toBe(true);
    expect(Array.from(data)).toEqual(A23);
  });

  it("Fortran order 4-D big-endian float64 is returned in C order, whole and in slices", async () => {
    const want = Array.from({ length: 24 }, (_, i) => i / 4);
    const { header, data } = await readNpy(ref("fortran_be_f8_2x3x2x2.npy"));
    expect(header).toMatchObject({ fortranOrder: true, littleEndian: false, shape: [2, 3, 2, 2] });
    expect(Array.from(data)).toEqual(want);
    const r = await NpyReader.open(ref("fortran_be_f8_2x3x2x2.npy"));
    try {
      const out = new Float32Array(10);
      await r.read(5, 7, out, 3);
      expect(Array.from(out)).toEqual([0, 0, 0, ...want.slice(5, 12)]);
      const out2 = new Float64Array(24);
      await r.read(0, 24, out2);
      expect(Array.from(out2)).toEqual(want);
      await r.read(23, 1, out2, 0);
      expect(out2[0]).toBe(want[23]);
    } finally {
      await r.close();
    }
  });

  it("scalar and empty arrays", async () => {
    const s = await readNpy(ref("scalar_f8.npy"));
    expect(s.header.shape).toEqual([]);
    expect(s.header.size).toBe(1);
    expect(Array.from(s.data)).toEqual([3.25]);
    const e = await readNpy(ref("empty_f4_0x3.npy"));
    expect(e.header.shape).toEqual([0, 3]);
    expect(e.header.size).toBe(0);
    expect(e.data.length).toBe(0);
  });
});

describe("reading hand-built files", () => {
  it("accepts '=' (native) and no trailing comma, double-spaced dict, 16-byte alignment", async () => {
    const p = await tmpFile(
      npy("{'descr':'=f4','fortran_order':False,'shape':(2, 3)}", rawBytes(A23, "float32"), { align: 16 }),
    );
    const { header, data } = await readNpy(p);
    expect(header.littleEndian).toBe(true);
    expect(header.dataOffset % 16).toBe(0);
    expect(Array.from(data)).toEqual(A23);
  });

  it("reads an unaligned data section", async () => {
    // Header text deliberately of odd length: data starts at an odd offset.
    const dict = dictOf("<f8", "(6,)") + " \n";
    const bytes = npy(dict, rawBytes(A23, "float64"), { raw: true });
    const p = await tmpFile(bytes);
    const h = await readNpyHeader(p);
    expect(h.dataOffset % 2).toBe(1);
    expect(Array.from((await readNpy(p)).data)).toEqual(A23);
    expect(Array.from((await readNpy(p, "float32")).data)).toEqual(A23);
  });

  it("v2 and v3 headers built by hand", async () => {
    for (const version of [
      [2, 0],
      [3, 0],
    ] as [number, number][]) {
      const p = await tmpFile(npy(dictOf(">f2", "(2, 3)"), rawBytes(A23, "float16", false), { version }));
      const { header, data } = await readNpy(p);
      expect(header.version).toEqual(version);
      expect(header.dataOffset).toBe(128);
      expect(Array.from(data)).toEqual(A23);
    }
  });

  it("Fortran order with unit axes needs no reordering; (1, 4) vs (4, 1)", async () => {
    const v = [1, 2, 3, 4];
    for (const shape of ["(1, 4)", "(4, 1)", "(4,)", "(1, 1, 4, 1)"]) {
      const p = await tmpFile(npy(dictOf("<f4", shape, true), rawBytes(v, "float32")));
      expect(Array.from((await readNpy(p)).data)).toEqual(v);
    }
  });

  it("Fortran-order float16 4-D, partial reads", async () => {
    const shape = [3, 2, 4, 5];
    const c = Array.from({ length: 120 }, (_, i) => i - 60);
    const p = await tmpFile(npy(dictOf("<f2", "(3, 2, 4, 5)", true), rawBytes(toFortran(c, shape), "float16")));
    expect(Array.from((await readNpy(p)).data)).toEqual(c);
    const r = await NpyReader.open(p);
    const out = new Float64Array(120);
    for (let s = 0; s < 120; s += 17) {
      const n = Math.min(17, 120 - s);
      await r.read(s, n, out, s);
    }
    await r.close();
    expect(Array.from(out)).toEqual(c);
  });

  it("large C-order big-endian float32, sub-ranges across chunk boundaries", async () => {
    const n = 1_300_000; // > one 4 MiB conversion chunk
    const vals = new Float32Array(n);
    for (let i = 0; i < n; i++) vals[i] = Math.fround(Math.sin(i) * 1000);
    const be = Buffer.from(vals.buffer.slice(0));
    be.swap32();
    const p = await tmpFile(npy(dictOf(">f4", `(${n},)`), be));
    const r = await NpyReader.open(p);
    try {
      expect(r.header.size).toBe(n);
      const all = new Float64Array(n);
      await r.read(0, n, all);
      for (let i = 0; i < n; i += 997) expect(all[i]).toBe(vals[i]);
      expect(all[n - 1]).toBe(vals[n - 1]);
      const start = 1_048_576 - 5;
      const out = new Float32Array(20);
      await r.read(start, 10, out, 10);
      expect(Array.from(out.subarray(10))).toEqual(Array.from(vals.subarray(start, start + 10)));
      expect(Array.from(out.subarray(0, 10))).toEqual(new Array(10).fill(0));
      // Concurrent reads are serialized internally and all land correctly.
      const outs = [new Float32Array(3), new Float32Array(3), new Float32Array(3)];
      await Promise.all([r.read(0, 3, outs[0]!), r.read(n - 3, 3, outs[1]!), r.read(500_000, 3, outs[2]!)]);
      expect(Array.from(outs[1]!)).toEqual(Array.from(vals.subarray(n - 3)));
      expect(Array.from(outs[2]!)).toEqual(Array.from(vals.subarray(500_000, 500_003)));
    } finally {
      await r.close();
    }
  });

  it("large Fortran-order float32 3-D is reordered across chunks", async () => {
    const shape = [3, 700, 600];
    const size = 3 * 700 * 600;
    const c = new Float32Array(size);
    for (let i = 0; i < size; i++) c[i] = i % 65536;
    const f = new Float32Array(toFortran(c, shape));
    const p = await tmpFile(npy(dictOf("<f4", "(3, 700, 600)", true), new Uint8Array(f.buffer)));
    const { data } = await readNpy(p, "float32");
    expect(Buffer.from(data.buffer).equals(Buffer.from(c.buffer))).toBe(true);
    const r = await NpyReader.open(p);
    const out = new Float64Array(4);
    await r.read(size - 700, 4, out);
    expect(Array.from(out)).toEqual(Array.from(c.subarray(size - 700, size - 696)));
    await r.close();
  });

  it("read() validates its arguments and refuses after close", async () => {
    const r = await NpyReader.open(ref("v1_f4_2x3.npy"));
    await expect(r.read(4, 3, new Float64Array(10))).rejects.toThrow(RangeError);
    await expect(r.read(-1, 1, new Float64Array(10))).rejects.toThrow(RangeError);
    await expect(r.read(0, 3, new Float64Array(2))).rejects.toThrow(RangeError);
    await expect(r.read(0, 3, new Float64Array(4), 2)).rejects.toThrow(RangeError);
    await r.read(0, 0, new Float64Array(0));
    await r.close();
    await expect(r.read(0, 1, new Float64Array(1))).rejects.toThrow(/closed/);
  });
});

describe("refusals", () => {
  const good = rawBytes(A23, "float32");

  it("missing file, directory, empty, too short, bad magic", async () => {
    await expectRefused(join(dir, "does-not-exist.npy"), /^no such file$/);
    const d = join(dir, "a-directory.npy");
    await mkdir(d);
    await expectRefused(d, /^is a folder, not a file$/);
    await expectRefused(await tmpFile(new Uint8Array(0)), /empty file/);
    await expectRefused(await tmpFile(new Uint8Array([0x93, 0x4e, 0x55])), /too short \(3 bytes\)/);
    await expectRefused(await tmpFile("PK\x03\x04 this is a zip file"), /^not a \.npy file \(bad magic\)$/);
    await expectRefused(await tmpFile("\x93NUMPX\x01\x00"), /bad magic/);
    await expectRefused(await tmpFile(new Uint8Array([...MAGIC, 1, 0])), /too short \(8 bytes\)/);
    await expectRefused(await tmpFile(new Uint8Array([...MAGIC, 2, 0, 5, 0])), /too short \(10 bytes\)/);
  });

  it("unknown versions", async () => {
    for (const version of [
      [4, 0],
      [1, 1],
      [0, 0],
    ] as [number, number][]) {
      const p = await tmpFile(npy(dictOf("<f4", "(2, 3)"), good, { version }));
      await expectRefused(p, new RegExp(`unsupported \\.npy format version ${version[0]}\\.${version[1]}`));
    }
  });

  it("header length running past the end of the file", async () => {
    await expectRefused(await tmpFile(npy(dictOf("<f4", "(2, 3)"), [], { hlen: 500 })), /header length 500 runs past the end of the file/);
    await expectRefused(
      await tmpFile(npy(dictOf("<f4", "(2, 3)"), good, { version: [2, 0], hlen: 0xffffffff })),
      /header length 4294967295 runs past the end/,
    );
  });

  it("implausibly long header", async () => {
    const dict = dictOf("<f4", "(2, 3)") + " ".repeat(1_100_000);
    await expectRefused(await tmpFile(npy(dict, good, { version: [2, 0] })), /implausibly large/);
  });

  it("header not terminated by a newline", async () => {
    const p = await tmpFile(npy(dictOf("<f4", "(2, 3)") + "   ", good, { raw: true }));
    await expectRefused(p, /not terminated by '\\n'/);
  });

  it("v3 header that is not UTF-8", async () => {
    const bytes = npy(dictOf("<f4", "(2, 3)"), good, { version: [3, 0] });
    bytes[12 + 3] = 0xff; // inside 'descr'
    await expectRefused(await tmpFile(bytes), /not valid UTF-8/);
  });

  it.each([
    ["truncated dict", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", /malformed header/],
    ["garbage", "hello world", /malformed header: expected a dict/],
    ["not a dict", "['<f4', False, (2, 3)]", /malformed header: expected a dict/],
    ["missing key", "{'descr': '<f4', 'shape': (2, 3)}", /missing key 'fortran_order'/],
    ["extra key", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", /unexpected key 'x'/],
    ["duplicate key", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", /duplicate key 'descr'/],
    ["junk after dict", `${dictOf("<f4", "(2, 3)")} x`, /after the dict/],
    ["newline inside", "{'descr': '<f4',\n 'fortran_order': False, 'shape': (2, 3)}", /malformed header/],
    ["double comma", dictOf("<f4", "(2,, 3)"), /malformed header/],
    ["shape as list", dictOf("<f4", "[2, 3]"), /'shape' must be a tuple/],
    ["shape as int", dictOf("<f4", "(6)"), /'shape' must be a tuple/],
    ["negative dimension", dictOf("<f4", "(2, -3)"), /shape \(2, -3\) has a negative dimension/],
    ["float dimension", dictOf("<f4", "(2.0, 3)"), /shape \(2\.0, 3\) has a non-integer dimension/],
    ["string dimension", dictOf("<f4", "('2', 3)"), /must contain only integers/],
    ["bool dimension", dictOf("<f4", "(True, 3)"), /must contain only integers/],
    ["leading zeros", dictOf("<f4", "(02, 3)"), /leading zeros/],
    ["huge dimension", dictOf("<f4", "(18446744073709551616,)"), /absurdly large dimension/],
    ["too many dims", dictOf("<f4", `(${new Array(65).fill(1).join(", ")})`), /65 dimensions/],
    ["fortran_order string", "{'descr': '<f4', 'fortran_order': 'no', 'shape': (2, 3)}", /'fortran_order' must be True or False/],
    ["fortran_order int", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", /'fortran_order' must be True or False/],
    ["descr int", "{'descr': 4, 'fortran_order': False, 'shape': (2, 3)}", /'descr' must be a string/],
    ["deep nesting", `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': ${"(".repeat(5000)}}`, /nesting too deep/],
    ["unknown name", "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}", /unexpected name 'false'/],
    ["bad escape", "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 3)}", /unsupported escape/],
  ])("malformed dict: %s", async (_name, dict, re) => {
    await expectRefused(await tmpFile(npy(dict, good)), re);
  });

  it("double-quoted keys pass the strict parser but not npyjs: refused", async () => {
    const p = await tmpFile(npy(`{"descr": "<f4", "fortran_order": False, "shape": (2, 3), }`, good));
    await expectRefused(p, /npyjs/);
  });

  it.each([
    ["|O", /^object arrays \('\|O'\) are not supported \(never unpickled\)$/],
    ["O", /object arrays/],
    ["<c8", /^complex dtype '<c8' is not supported; use float16, float32 or float64$/],
    ["<c16", /complex dtype '<c16'/],
    ["<i4", /^integer dtype '<i4' is not supported; use float16, float32 or float64$/],
    ["|u1", /integer dtype '\|u1'/],
    [">i8", /integer dtype '>i8'/],
    ["|b1", /boolean dtype '\|b1'/],
    ["<U5", /string dtype '<U5'/],
    ["|S3", /string dtype '\|S3'/],
    ["|V8", /void \(raw bytes\) dtype '\|V8'/],
    ["<M8[ns]", /datetime\/timedelta dtype '<M8\[ns\]'/],
    ["<m8[s]", /datetime\/timedelta dtype/],
    ["<f16", /float dtype '<f16' \(128-bit\) is not supported/],
    ["|f4", /byte order '\|' is not valid for the float dtype '\|f4'/],
    ["float32", /unrecognized dtype 'float32'/],
    ["", /unrecognized dtype ''/],
  ])("dtype %s is refused", async (descr, re) => {
    await expectRefused(await tmpFile(npy(dictOf(descr, "(2, 3)"), good)), re);
  });

  it("structured dtype (descr is a list) is refused", async () => {
    const dict = "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (3,), }";
    await expectRefused(await tmpFile(npy(dict, good)), /structured dtype/);
  });

  it("data one byte short or long", async () => {
    await expectRefused(
      await tmpFile(npy(dictOf("<f4", "(2, 3)"), good.subarray(0, 23))),
      /^data is 23 bytes but shape \(2, 3\) of float32 needs 24 bytes$/,
    );
    await expectRefused(
      await tmpFile(npy(dictOf("<f4", "(2, 3)"), [...good, 0])),
      /^data is 25 bytes but shape \(2, 3\) of float32 needs 24 bytes$/,
    );
    await expectRefused(
      await tmpFile(npy(dictOf(">f2", "(3,)"), [0, 0, 0, 0, 0])),
      /^data is 5 bytes but shape \(3,\) of float16 needs 6 bytes$/,
    );
    await expectRefused(await tmpFile(npy(dictOf("<f8", "()"), [1, 2, 3, 4])), /data is 4 bytes but shape \(\) of float64 needs 8 bytes/);
    await expectRefused(await tmpFile(npy(dictOf("<f8", "(0, 4)"), [1])), /data is 1 bytes but shape \(0, 4\) of float64 needs 0 bytes/);
  });

  it("absurd shape with a tiny file is refused without allocating", async () => {
    const p = await tmpFile(npy(dictOf("<f4", "(1099511627776, 1099511627776)"), good));
    const t0 = Date.now();
    await expectRefused(
      p,
      /^data is 24 bytes but shape \(1099511627776, 1099511627776\) of float32 needs 4835703278458516698824704 bytes$/,
    );
    const p2 = await tmpFile(npy(dictOf("<f8", "(4294967296, 4294967296, 4294967296)"), []));
    await expectRefused(p2, /data is 0 bytes but shape/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("encodeNpyHeader", () => {
  // Exact header bytes written by NumPy 1.24 (np.save of float32 zeros of each shape).
  const numpyHeaders: [number[], string][] = [
    [[], "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"],
    [[3], "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }" + " ".repeat(20)],
    [[2, 3], "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + " ".repeat(20)],
    [[0], "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }" + " ".repeat(20)],
    [[2, 3, 4, 5], "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4, 5), }" + " ".repeat(20)],
  ];

  it.each(numpyHeaders)("matches NumPy byte for byte for shape %j", (shape, dict) => {
    const h = encodeNpyHeader("float32", shape);
    expect(h.length).toBe(128);
    const text = dict.padEnd(128 - 10 - 1, " ") + "\n";
    const want = Buffer.concat([Buffer.from([...MAGIC, 1, 0, 0x76, 0x00]), Buffer.from(text, "latin1")]);
    expect(Buffer.from(h).equals(want)).toBe(true);
  });

  it("pads to a multiple of 64 with spaces and a final newline", () => {
    for (const dtype of ["float16", "float32", "float64"] as Dtype[]) {
      for (const shape of [[], [1], [12345678901234], [7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]) {
        const h = encodeNpyHeader(dtype, shape);
        expect(h.length % 64).toBe(0);
        expect(h[6]).toBe(1);
        expect(h[8]! | (h[9]! << 8)).toBe(h.length - 10);
        expect(h[h.length - 1]).toBe(0x0a);
        const text = Buffer.from(h.subarray(10)).toString("latin1");
        expect(text).toMatch(/^\{'descr': '<f[248]', 'fortran_order': False, 'shape': \([0-9, ]*\), \} *\n$/);
        expect(text).toContain(`'<f${itemSizeOf(dtype)}'`);
      }
    }
  });

  it("uses version 2.0 when the header does not fit in 65535 bytes", () => {
    const shape = new Array(25000).fill(1);
    const h = encodeNpyHeader("float64", shape);
    expect(h[6]).toBe(2);
    expect(h.length % 64).toBe(0);
    expect(Buffer.from(h).readUInt32LE(8)).toBe(h.length - 12);
    expect(h[h.length - 1]).toBe(0x0a);
  });

  it("rejects invalid shapes", () => {
    expect(() => encodeNpyHeader("float32", [-1])).toThrow(RangeError);
    expect(() => encodeNpyHeader("float32", [1.5])).toThrow(RangeError);
  });
});

describe("writing", () => {
  it.each(["float16", "float32", "float64"] as Dtype[])("writeNpy/readNpy round trip (%s)", async (dtype) => {
    const shape = [2, 3, 4];
    const vals = new Float64Array(24);
    for (let i = 0; i < 24; i++) vals[i] = (i - 12) / 3;
    vals[5] = 1 + 2 ** -11 + 2 ** -40; // rounds differently per dtype
    const p = join(dir, `rt-${dtype}.npy`);
    await writeNpy(p, dtype, shape, vals);
    const bytes = await readFile(p);
    const header = encodeNpyHeader(dtype, shape);
    expect(Buffer.from(bytes.subarray(0, header.length)).equals(Buffer.from(header))).toBe(true);
    expect(bytes.length).toBe(header.length + 24 * itemSizeOf(dtype));
    const { header: h, data } = await readNpy(p);
    expect(h).toMatchObject({ dtype, shape, littleEndian: true, fortranOrder: false, version: [1, 0] });
    for (let i = 0; i < 24; i++) {
      const want =
        dtype === "float64" ? vals[i] : dtype === "float32" ? Math.fround(vals[i]!) : f16ToF32(f32ToF16(vals[i]!));
      expect(data[i]).toBe(want);
    }
    if (dtype === "float16") expect(data[5]).toBe(1 + 2 ** -10);
    // No temporary files left behind.
    expect((await readdir(dir)).filter((n) => n.includes(`rt-${dtype}.npy.`))).toEqual([]);
  });

  it("writeNpy from Float32Array and scalars/empties", async () => {
    const p = join(dir, "w32.npy");
    await writeNpy(p, "float32", [6], Float32Array.from(A23));
    expect(Array.from((await readNpy(p)).data)).toEqual(A23);
    await writeNpy(p, "float64", [], Float64Array.of(2.5)); // overwrite
    const s = await readNpy(p);
    expect(s.header.shape).toEqual([]);
    expect(Array.from(s.data)).toEqual([2.5]);
    await writeNpy(p, "float16", [0, 5], new Float32Array(0));
    expect((await readNpy(p)).header.shape).toEqual([0, 5]);
    await expect(writeNpy(p, "float32", [2, 2], new Float32Array(3))).rejects.toThrow(RangeError);
  });

  it("writeNpy refuses a directory target and a missing parent", async () => {
    const d = join(dir, "target-dir.npy");
    await mkdir(d, { recursive: true });
    const e = await caught(writeNpy(d, "float32", [1], new Float32Array(1)));
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).file).toBe(d);
    const missing = join(dir, "no", "such", "dir.npy");
    const e2 = await caught(writeNpy(missing, "float32", [1], new Float32Array(1)));
    expect(e2).toBeInstanceOf(InputError);
    expect((e2 as InputError).file).toBe(missing);
  });

  it("NpyWriter: chunked writes, count checks, abort", async () => {
    const tmp = join(dir, "chunked.tmp");
    const w = await NpyWriter.create(tmp, "float16", [3, 4]);
    await w.write(Float64Array.of(1, 2, 3, 4, 5));
    await w.write(Float32Array.of(6, 7, 8));
    await expect(w.finish()).rejects.toThrow(/8 elements written/);
    await expect(w.write(new Float32Array(5))).rejects.toThrow(RangeError);
    await w.write(Float32Array.of(9, 10, 11, 65519.99));
    await w.finish();
    const { data } = await readNpy(tmp);
    expect(Array.from(data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 65504]);
    await expect(w.write(new Float32Array(0))).rejects.toThrow(/finished/);

    const tmp2 = join(dir, "aborted.tmp");
    const w2 = await NpyWriter.create(tmp2, "float32", [1000]);
    await w2.write(new Float32Array(10));
    await w2.abort();
    await expect(stat(tmp2)).rejects.toMatchObject({ code: "ENOENT" });
    await w2.abort(); // idempotent
  });

  it("NpyWriter large float16 write spanning several conversion chunks", async () => {
    const n = 2_500_000;
    const vals = new Float32Array(n);
    for (let i = 0; i < n; i++) vals[i] = (i % 4096) / 8 - 256;
    const tmp = join(dir, "big16.tmp");
    const w = await NpyWriter.create(tmp, "float16", [n]);
    await w.write(vals);
    await w.finish();
    const { data } = await readNpy(tmp, "float32");
    expect(Buffer.from(data.buffer).equals(Buffer.from(vals.buffer))).toBe(true);
  });

  it("NpyWriter.create refuses a missing directory with InputError", async () => {
    const p = join(dir, "missing-dir", "x.tmp");
    const e = await caught(NpyWriter.create(p, "float32", [1], { display: "x.npy" }));
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).file).toBe("x.npy");
  });
});
