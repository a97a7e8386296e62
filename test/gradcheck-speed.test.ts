// Issue #18, gradcheck at speed: its random inputs made by the kernels on the engine's threads, its
// groups read once for every difference they serve, and only the changed part of the loss summed
// again; every value the same as before, bit for bit.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine } from "../src/api/engine.js";
import { gradcheck, type GradcheckOptions } from "../src/api/gradcheck.js";
import { normalsOnEngine } from "../src/checks/normals.js";
import { Pacer } from "../src/checks/pace.js";
import { normalsInto } from "../src/checks/random.js";
import type { Dtype } from "../src/core/dtype.js";
import { memoryOrder } from "../src/core/dims.js";
import { f64ToBF16 } from "../src/io/bfloat16.js";
import { f32ToF16 } from "../src/io/float16.js";
import { allocateStored } from "../src/io/memory.js";
import { writeNpy } from "../src/io/npy/index.js";
import { Engine } from "../src/kernels/engine.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-gradcheck-speed-"));
const engines = [new Engine({ threads: 1 }), new Engine({ threads: 2, pool: "always" })];
const shared = createEngine({ threads: 2, pool: "always" });
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await Promise.all([...engines.map((e) => e.close()), shared.close()]);
});

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe("random inputs made by the kernels are bitwise the values of Math.log and Math.cos", () => {
  const stores = { float32: null, float16: f32ToF16, bfloat16: f64ToBF16, float64: null } as const;
  for (const dtype of ["float32", "float16", "bfloat16", "float64"] as Dtype[]) {
    it(`${dtype}: seeds, scales, odd lengths, one and two threads, small chunks, lists full`, async () => {
      // 2463401483 + MULBERRY = 0: value 0's first uniform is mix(0) = 0, taken as 1e-300; 631835670: its second
      const cases = [[0, 1.5, 0.5, 300_007], [1, 1, 0, 65_539], [4294967295, 0.5, 1, 3], [123456789, 1, 0, 1], [2463401483, 1, 0, 9], [631835670, 1.5, 0.5, 9]];
      for (const [seed, scale, offset, n] of cases) {
        const want = allocateStored(dtype, n);
        normalsInto(want, seed, scale, offset, stores[dtype as keyof typeof stores]);
        for (const engine of engines) {
          for (const [bytes, room] of [[64 << 20, undefined], [4096, undefined], [1 << 20, 0]]) {
            const got = allocateStored(dtype, n);
            await normalsOnEngine(engine, got, dtype, new Pacer(), bytes!, seed, scale, offset, room);
            expect(Buffer.compare(bytesOf(got), bytesOf(want)), `seed ${seed}, n ${n}, ${engine.threads} threads, ${bytes} bytes, room ${room}`).toBe(0);
          }
        }
      }
    });
  }

  it("the arena is left as it was", async () => {
    const e = engines[1];
    const before = e.arena.used;
    await normalsOnEngine(e, new Float32Array(100_000), "float32", new Pacer(), 1 << 20, 5);
    expect(e.arena.used).toBe(before);
  });
});

describe("gradcheck's reports are those of before", () => {
  // sha-256 (16 hex digits) of JSON.stringify(outputs), from the CLI's --json reports at commit 5f5d3f9 (before issue #18)
  const before: Array<[string, Partial<GradcheckOptions>]> = [
    ["540a08061521eabd", { shape: [2, 8, 5, 7], groups: 2 }],
    ["d1e3749732cf1f34", { shape: [2, 8, 5, 7], groups: 4, layout: "nhwc" }],
    ["ad54f8277acf656b", { shape: [3, 12, 9], groups: 3, dtype: "float64", seed: 5 }],
    ["1dad9740e92c5adc", { shape: [3, 12, 9], groups: 3, dtype: "float64", seed: 5, layout: "nhwc" }],
    ["ea1f26e8cdadd9af", { shape: [2, 16, 6, 6], groups: 4, dtype: "float16", seed: 3 }],
    ["c2fbb1be35b605f2", { shape: [2, 16, 6, 6], groups: 4, dtype: "float16", seed: 3, layout: "nhwc" }],
    ["ff48418342a602e1", { shape: [2, 16, 6, 6], groups: 8, dtype: "bfloat16", seed: 11 }],
    ["b94fe14030a3251f", { shape: [2, 16, 6, 6], groups: 8, dtype: "bfloat16", seed: 11, layout: "nhwc" }],
    ["b027705cb982cd41", { shape: [4, 32, 16, 16], groups: 8, seed: 1 }],
    ["2b441e9b61aa167a", { shape: [4, 32, 16, 16], groups: 8, seed: 1, layout: "nhwc", affine: false }],
    ["c5bd0993b21ddb36", { shape: [2, 64, 9, 9], groups: 16, layout: "nhwc", dtype: "float64" }],
    ["d5204c82ee75c272", { shape: [5, 6], groups: 3, seed: 2 }],
    ["dfca1e11d1b6b1b4", { shape: [3, 30, 100], groups: 5, samples: 1000, seed: 9 }],
    ["f72c2cae805e546d", { shape: [3, 30, 100], groups: 5, samples: 1000, seed: 9, layout: "nhwc", dtype: "float16" }],
    ["3f6033eabf63a97a", { shape: [2, 48, 33, 17], groups: 6, samples: 64, seed: 123456, dtype: "bfloat16", layout: "nhwc" }],
    ["d0fc4227c1ec84a2", { shape: [2, 48, 33, 17], groups: 6, samples: 5000, seed: 4294967295 }],
    ["77bb8cb747e465aa", { shape: [8, 64, 32, 32], groups: 32, seed: 2, eps: 0 }],
    ["f058e59eca69f0fb", { shape: [4, 256, 32, 32], groups: 1, seed: 6, layout: "nhwc", threads: 1 }],
    ["900046a6541a36fc", { shape: [4, 256, 32, 32], groups: 256, seed: 6, dtype: "float64", layout: "nhwc" }],
  ];
  const hash = (v: unknown) => createHash("sha256").update(JSON.stringify(v)).digest("hex").slice(0, 16);
  for (const [h, o] of before) {
    it(JSON.stringify(o), async () => {
      const r = await gradcheck({ groups: 1, ...o, engine: o.threads ? undefined : shared });
      expect(r.passed).toBe(true);
      expect(hash(r.outputs)).toBe(h);
    });
  }

  for (const layout of ["nchw", "nhwc"] as const) {
    it(`${layout}: the same inputs from files (read in ranges) give the report of --shape (held in memory)`, async () => {
      const shape = [3, 24, 7, 5], seed = 4, n = 3 * 24 * 35;
      const o = { groups: 6, layout, seed, samples: 300, engine: shared };
      const values = (count: number, s: number, scale: number, offset: number) => {
        const v = new Float32Array(count);
        normalsInto(v, s, scale, offset);
        return v;
      };
      const fileShape = memoryOrder(shape, layout);
      await writeNpy(join(dir, "x.npy"), "float32", fileShape, values(n, seed, 1.5, 0.5));
      await writeNpy(join(dir, "dy.npy"), "float32", fileShape, values(n, seed + 1, 1, 0));
      await writeNpy(join(dir, "g.npy"), "float32", [24], values(24, seed + 2, 0.5, 1));
      await writeNpy(join(dir, "b.npy"), "float32", [24], values(24, seed + 3, 1, 0));
      const files = await gradcheck({ ...o, x: join(dir, "x.npy"), dy: join(dir, "dy.npy"), gamma: join(dir, "g.npy"), beta: join(dir, "b.npy") });
      const held = await gradcheck({ ...o, shape });
      expect(files.outputs.dX.checked).toBe(300);
      expect(files.outputs).toEqual(held.outputs);
    });
  }
});

describe("gradcheck's threads: those it computed on, as forward's and backward's", () => {
  it("a small check on a 2-thread engine reports 1 (every step on the calling thread); on the pool, 2", async () => {
    const auto = createEngine({ threads: 2 });
    try {
      const small = await gradcheck({ shape: [2, 8, 3, 3], groups: 2, seed: 1, engine: auto });
      expect(small.passed).toBe(true);
      expect(small.threads).toBe(1);
    } finally {
      await auto.close();
    }
    const pooled = await gradcheck({ shape: [2, 8, 3, 3], groups: 2, seed: 1, engine: shared });
    expect(pooled.threads).toBe(2);
  });
});
