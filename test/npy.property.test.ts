// Property-based tests of the .npy reader (fast-check): whatever the bytes, a file is either read
// correctly or refused with the tool's InputError, never another exception, never a hang.
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../src/errors.js";
import { encodeNpyHeader, NpyReader } from "../src/io/npy/index.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-npyprop-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Open and read the whole file; returns the values, or the InputError. Anything else fails. */
async function readOrRefuse(bytes: Uint8Array): Promise<Float64Array | InputError> {
  const p = join(dir, `f${n++}.npy`);
  writeFileSync(p, bytes);
  let reader: NpyReader | undefined;
  try {
    reader = await NpyReader.open(p);
    const out = new Float64Array(reader.header.size);
    await reader.read(0, reader.header.size, out);
    return out;
  } catch (e) {
    if (e instanceof InputError) {
      expect(e.file).toBe(p);
      expect(e.message).not.toMatch(/\n/);
      return e;
    }
    throw e;
  } finally {
    await reader?.close();
  }
}

function validFile(dtype: "float16" | "float32" | "float64", shape: number[], values: number[]): Uint8Array {
  const header = encodeNpyHeader(dtype, shape);
  const data =
    dtype === "float64" ? new Uint8Array(Float64Array.from(values).buffer) : dtype === "float32" ? new Uint8Array(Float32Array.from(values).buffer) : new Uint8Array(values.length * 2);
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 });
const validArb = fc
  .tuple(fc.constantFrom("float16" as const, "float32" as const, "float64" as const), shapeArb)
  .chain(([dtype, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    return fc.tuple(fc.constant(dtype), fc.constant(shape), fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: size, maxLength: size }));
  });

describe(".npy reader properties", () => {
  it("random bytes are refused with InputError (or read, if they happen to be valid)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.boolean(), async (bytes, magic) => {
        const b = magic ? new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, ...bytes]) : bytes;
        await readOrRefuse(b);
      }),
      { numRuns: 300 },
    );
  });

  it("valid files read back their values", async () => {
    await fc.assert(
      fc.asyncProperty(validArb, async ([dtype, shape, values]) => {
        const r = await readOrRefuse(validFile(dtype, shape, values));
        expect(r).toBeInstanceOf(Float64Array);
        if (dtype !== "float16") {
          const expected = dtype === "float32" ? Float64Array.from(Float32Array.from(values)) : Float64Array.from(values);
          expect(Array.from(r as Float64Array)).toEqual(Array.from(expected));
        }
      }),
      { numRuns: 200 },
    );
  });

  it("mutated valid files are read or refused with InputError, never another exception", async () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), value: fc.constant(0) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("text" as const), at: fc.nat(), value: fc.integer({ min: 32, max: 126 }) }),
    );
    await fc.assert(
      fc.asyncProperty(validArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), async ([dtype, shape, values], muts) => {
        let b = Array.from(validFile(dtype, shape, values));
        for (const m of muts) {
          const at = b.length ? m.at % b.length : 0;
          if (m.kind === "set") b[at] = m.value;
          else if (m.kind === "cut") b = b.slice(0, at);
          else if (m.kind === "insert") b.splice(at, 0, m.value);
          else b[Math.min(b.length - 1, 10 + (m.at % 60))] = m.value; // inside the header text
        }
        await readOrRefuse(Uint8Array.from(b));
      }),
      { numRuns: 400 },
    );
  });
});
