// Property-based tests of the .npz and safetensors readers and writers (fast-check): whatever the
// bytes, a container is read correctly or refused with the tool's InputError (one line, naming the
// file), never another exception, never a hang; and whatever the members and the order their
// values come in, what the writers write reads back as it was written.
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Dtype } from "../src/core/dtype.js";
import { InputError } from "../src/errors.js";
import { bf16ToF32, f64ToBF16 } from "../src/io/bfloat16.js";
import type { ContainerWriter } from "../src/io/container-writer.js";
import { f16ToF32, f32ToF16 } from "../src/io/float16.js";
import { NpzWriter } from "../src/io/npz/writer.js";
import { openTensor } from "../src/io/open.js";
import { SafetensorsWriter } from "../src/io/safetensors/writer.js";
import { readAll } from "../src/io/tensor.js";

const F = fileURLToPath(new URL("../fixtures/containers/", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "groupnorm-containerprop-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Open `name` in the file holding `bytes` and read it all; the values, or the InputError. Anything else fails. */
async function readOrRefuse(bytes: Uint8Array, ext: string, key: string | null): Promise<Float64Array | InputError> {
  const p = join(dir, `f${n++}.${ext}`);
  writeFileSync(p, bytes);
  try {
    const s = await openTensor(key === null ? p : `${p}:${key}`);
    try {
      return await readAll(s);
    } finally {
      await s.close();
    }
  } catch (e) {
    if (e instanceof InputError) {
      expect(e.file?.startsWith(p)).toBe(true);
      expect(e.message).not.toMatch(/\n/);
      return e;
    }
    throw e;
  } finally {
    rmSync(p, { force: true });
  }
}

/** A mutation of `base`: bytes flipped, a cut, or bytes inserted. */
const mutated = (base: Buffer) =>
  fc.oneof(
    fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }).map((flips) => {
      const b = Buffer.from(base);
      for (const [at, x] of flips) b[at]! ^= x;
      return b;
    }),
    fc.nat(base.length - 1).map((cut) => base.subarray(0, cut)),
    fc.tuple(fc.nat(base.length), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([at, ins]) => Buffer.concat([base.subarray(0, at), ins, base.subarray(at)])),
  );

describe("hostile bytes", () => {
  it.each([
    ["savez.npz", "x"],
    ["savez_compressed.npz", "dy"],
    ["one.npz", null],
    ["mixed.npz", "xf"],
    ["mixed.npz", "x64"],
  ])("mutations of %s (:%s) are read or refused with InputError", async (file, key) => {
    const base = readFileSync(`${F}${file}`);
    const good = await readOrRefuse(base, "npz", key);
    expect(good).toBeInstanceOf(Float64Array);
    await fc.assert(
      fc.asyncProperty(mutated(base), async (b) => {
        const t0 = Date.now();
        const r = await readOrRefuse(b, "npz", key);
        expect(Date.now() - t0).toBeLessThan(5000);
        // a flip that survives every check (CRC included) can only be in bytes no check covers
        if (r instanceof Float64Array) expect(r.length).toBe((good as Float64Array).length);
      }),
      { numRuns: 150 },
    );
  });

  it("mutations of a safetensors file made from PyTorch tensors are read or refused with InputError", async () => {
    const base = readFileSync(`${F}torch.safetensors`);
    await fc.assert(
      fc.asyncProperty(mutated(base), fc.constantFrom("x", "xb", "gamma", "x16"), async (b, key) => {
        await readOrRefuse(b, "safetensors", key);
      }),
      { numRuns: 200 },
    );
  });

  const dtypes = ["F32", "F16", "BF16", "F64", "I64", "U8", "F8_E4M3", "Q7", "f32", ""];
  const entry = fc.record(
    {
      dtype: fc.oneof(fc.constantFrom(...dtypes), fc.integer()),
      shape: fc.oneof(fc.array(fc.oneof(fc.nat(5), fc.constant(-1), fc.constant(1.5), fc.constant(2 ** 60)), { maxLength: 4 }), fc.constant("3")),
      data_offsets: fc.oneof(fc.tuple(fc.nat(64), fc.nat(64)), fc.array(fc.nat(64), { maxLength: 3 })),
    },
    { requiredKeys: [] },
  );
  it("arbitrary headers are accepted only when they tile the data exactly, and then read back the bytes they point at", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom("a", "b", "c", "__metadata__"), entry, { maxKeys: 3 }), fc.nat(80), fc.boolean(), async (header, dataBytes, pad) => {
        let json = Buffer.from(JSON.stringify(header));
        if (pad) json = Buffer.concat([json, Buffer.alloc(-json.length & 7, 0x20)]);
        const data = Buffer.from(Float32Array.from({ length: Math.ceil(dataBytes / 4) }, (_, i) => i + 0.5).buffer).subarray(0, dataBytes);
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(json.length));
        const file = Buffer.concat([len, json, data]);
        for (const key of Object.keys(header).filter((k) => k !== "__metadata__")) {
          const r = await readOrRefuse(file, "safetensors", key);
          if (!(r instanceof Float64Array)) continue;
          // accepted: every entry is well formed, and the offsets tile the data
          const entries = Object.entries(header).filter(([k]) => k !== "__metadata__") as Array<[string, { dtype: string; shape: number[]; data_offsets: [number, number] }]>;
          const spans = entries.map(([, e]) => e.data_offsets).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
          let at = 0;
          for (const [s, e] of spans) {
            expect(s).toBe(at);
            at = e;
          }
          expect(at).toBe(dataBytes);
          const e = header[key] as { dtype: string; shape: number[]; data_offsets: [number, number] };
          expect(r.length).toBe(e.shape.reduce((p, q) => p * q, 1));
          if (e.dtype === "F32" && r.length > 0) expect(r[0]).toBe(new Float32Array(data.buffer.slice(data.byteOffset + e.data_offsets[0], data.byteOffset + e.data_offsets[0] + 4))[0]);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("the writers", () => {
  const stored = (dtype: Dtype, v: number) => (dtype === "float16" ? f16ToF32(f32ToF16(v)) : dtype === "bfloat16" ? bf16ToF32(f64ToBF16(v)) : dtype === "float32" ? Math.fround(v) : v);
  const member = fc.record({
    dtype: fc.constantFrom<Dtype>("float16", "bfloat16", "float32", "float64"),
    shape: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 0, maxLength: 3 }),
    seed: fc.nat(1000),
  });
  it("write any members, their values coming interleaved in any chunks, and read back what was written (.npz stored and deflated, safetensors)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(member, { minLength: 1, maxLength: 4, selector: (m) => m.seed }),
        fc.constantFrom("npz", "npz-deflated", "safetensors"),
        fc.array(fc.nat(), { minLength: 1, maxLength: 20 }),
        fc.constantFrom(false, false, false, true),
        async (members, format, schedule, big) => {
          const ms = format === "safetensors" ? members : members.filter((m) => m.dtype !== "bfloat16");
          if (ms.length === 0) return;
          // one large pair of members sends the one written second to a spill file (over 1 MiB)
          if (big) ms.push({ dtype: "float64", shape: [140, 1000], seed: 1001 }, { dtype: "float64", shape: [135, 1000], seed: 1002 });
          const path = join(dir, `w${n++}.${format.startsWith("npz") ? "npz" : "safetensors"}`);
          let scratch = 0;
          const target = { path, temporary: true, display: path, scratch: () => `${path}.spill${scratch++}` };
          const w: ContainerWriter = format === "safetensors" ? new SafetensorsWriter(target) : new NpzWriter(target, format === "npz-deflated");
          const data = ms.map((m) => Float64Array.from({ length: m.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(m.seed * 7 + i) * 10 ** ((i % 7) - 3)));
          const sinks = ms.map((m, i) => w.add(`t${i}`, m.dtype, m.shape));
          const at = ms.map(() => 0);
          let s = 0;
          for (let left = data.reduce((a, d) => a + d.length, 0); left > 0; ) {
            let k = schedule[s++ % schedule.length]! % ms.length;
            while (at[k] === data[k]!.length) k = (k + 1) % ms.length; // the next member not complete
            const len = Math.min(data[k]!.length - at[k]!, 1 + (schedule[s % schedule.length]! % 70000));
            const chunk = data[k]!.subarray(at[k], at[k]! + len);
            await sinks[k]!.write(ms[k]!.dtype === "float32" ? Float32Array.from(chunk) : chunk);
            at[k]! += len;
            left -= len;
          }
          await w.finish();
          for (const [i, m] of ms.entries()) {
            const src = await openTensor(`${path}:t${i}`);
            try {
              expect([src.dtype, [...src.shape]]).toEqual([m.dtype, m.shape]);
              const got = await readAll(src);
              const want = Float64Array.from(data[i]!, (v) => stored(m.dtype, v));
              expect(got).toEqual(want);
            } finally {
              await src.close();
            }
          }
          rmSync(path);
        },
      ),
      { numRuns: 40 },
    );
  }, 180_000);
});
