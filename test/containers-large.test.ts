// Large containers (issue #16), made at test time without writing gigabytes: a 5 GiB .npz whose
// zip64 member is stored in a sparse file, the same 5 GiB deflated (a 5 MB file of sync-flushed
// pieces), and, with python3 + NumPy, a zip64 member over 4 GiB written by np.savez itself into a
// sparse file. Each runs forward with the default settings (Y discarded into /dev/null, mean and
// rstd into an .npz), within 1 GiB resident, and its statistics are checked against float64.
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants, crc32, deflateRawSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { encodeNpyHeader } from "../src/io/npy/encode.js";
import { openTensor } from "../src/io/open.js";
import { readAll } from "../src/io/tensor.js";
import { groupnorm } from "./helpers/cli.js";
import { run } from "./helpers/spawn.js";

const dir = mkdtempSync(join(tmpdir(), "groupnorm-large-"));
const P = (name: string) => join(dir, name);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const GiB = 2 ** 30;
const python = spawnSync("/usr/bin/python3", ["-c", "import numpy"], { encoding: "utf8" }).status === 0;

/** The CRC-32 of `crc`'s data followed by `n` zero bytes, in O(log n): the zero-byte step is linear, so it is a 32×32 matrix over GF(2), raised to the n-th power. */
function crcZeros(crc: number, n: number): number {
  const step = (v: number) => {
    let s = v >>> 0;
    for (let k = 0; k < 8; k++) s = s & 1 ? (s >>> 1) ^ 0xedb88320 : s >>> 1;
    return s >>> 0;
  };
  const apply = (m: Uint32Array, v: number) => {
    let r = 0;
    for (let i = 0; v; i++, v >>>= 1) if (v & 1) r ^= m[i]!;
    return r >>> 0;
  };
  const mul = (a: Uint32Array, b: Uint32Array) => Uint32Array.from(b, (col) => apply(a, col)); // a·b
  let m = Uint32Array.from({ length: 32 }, (_, i) => step(2 ** i)); // one zero byte
  let s = ~crc >>> 0;
  for (let k = n; k > 0; k = Math.floor(k / 2)) {
    if (k % 2) s = apply(m, s);
    m = mul(m, m);
  }
  return ~s >>> 0;
}

// X: (N, 32, 8388608) float32, N GiB; G = 8: groups of 4 channels × 8388608 = 2^25 values (128 MiB),
// so a sample (1 GiB) is over the default budget and streams in slices of whole groups. Its first
// and last 4096 values are not zero; the rest is. Stored: N = 5; deflated: N = 2 (inflating 5 GiB
// takes minutes on a loaded 2-core machine, and 2 GiB shows as well that memory does not grow).
const M = 2 ** 25;
const HEAD = 4096;
const head = Float32Array.from({ length: HEAD }, (_, i) => Math.sin(i) * 3 + 1);
const tail = Float32Array.from({ length: HEAD }, (_, i) => Math.cos(i) * 2 - 0.5);
const shapeOf = (n: number) => [n, 32, 8388608];
const sizeOf = (n: number) => n * 32 * 8388608;
const headerOf = (n: number) => encodeNpyHeader("float32", shapeOf(n));
const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The member's CRC-32: header, head, zeros, tail. */
function memberCrc(n: number): number {
  let c = crc32(bytesOf(head), crc32(headerOf(n)));
  c = crcZeros(c, (sizeOf(n) - 2 * HEAD) * 4);
  return crc32(bytesOf(tail), c);
}

/** A one-member zip64 archive `x.npy`: local header, the member's data (written by `data` from offset `start`), central directory, zip64 records. */
function zip64(path: string, method: 0 | 8, crc: number, size: number, compressed: number, data: (fd: number, start: number) => void): void {
  const name = Buffer.from("x.npy");
  const local = Buffer.alloc(30 + name.length + 20);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(45, 4);
  local.writeUInt16LE(method, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(0xffffffff, 18);
  local.writeUInt32LE(0xffffffff, 22);
  local.writeUInt16LE(name.length, 26);
  local.writeUInt16LE(20, 28);
  name.copy(local, 30);
  local.writeUInt16LE(1, 35);
  local.writeUInt16LE(16, 37);
  local.writeBigUInt64LE(BigInt(size), 39);
  local.writeBigUInt64LE(BigInt(compressed), 47);
  const cdAt = local.length + compressed;
  const cd = Buffer.alloc(46 + name.length + 4 + (compressed >= 0xffffffff ? 16 : 8));
  cd.writeUInt32LE(0x02014b50, 0);
  cd.writeUInt16LE(45, 4);
  cd.writeUInt16LE(45, 6);
  cd.writeUInt16LE(method, 10);
  cd.writeUInt32LE(crc, 16);
  cd.writeUInt32LE(compressed >= 0xffffffff ? 0xffffffff : compressed, 20);
  cd.writeUInt32LE(0xffffffff, 24);
  cd.writeUInt16LE(name.length, 28);
  cd.writeUInt16LE(cd.length - 46 - name.length, 30);
  name.copy(cd, 46);
  cd.writeUInt16LE(1, 46 + name.length);
  cd.writeUInt16LE(cd.length - 50 - name.length, 48 + name.length);
  cd.writeBigUInt64LE(BigInt(size), 50 + name.length);
  if (compressed >= 0xffffffff) cd.writeBigUInt64LE(BigInt(compressed), 58 + name.length);
  const end = Buffer.alloc(56 + 20 + 22);
  end.writeUInt32LE(0x06064b50, 0);
  end.writeBigUInt64LE(44n, 4);
  end.writeUInt16LE(45, 12);
  end.writeUInt16LE(45, 14);
  end.writeBigUInt64LE(1n, 24);
  end.writeBigUInt64LE(1n, 32);
  end.writeBigUInt64LE(BigInt(cd.length), 40);
  end.writeBigUInt64LE(BigInt(cdAt), 48);
  end.writeUInt32LE(0x07064b50, 56);
  end.writeBigUInt64LE(BigInt(cdAt + cd.length), 64);
  end.writeUInt32LE(1, 72);
  end.writeUInt32LE(0x06054b50, 76);
  end.writeUInt16LE(1, 84);
  end.writeUInt16LE(1, 86);
  end.writeUInt32LE(cd.length, 88);
  end.writeUInt32LE(cdAt >= 0xffffffff ? 0xffffffff : cdAt, 92);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, local, 0, local.length, 0);
    data(fd, local.length);
    writeSync(fd, cd, 0, cd.length, cdAt);
    writeSync(fd, end, 0, end.length, cdAt + cd.length);
  } finally {
    closeSync(fd);
  }
}

/** Mean and rstd (float64) of a group of M values whose first (or last) HEAD values are `v` and the others zero. */
function stats(v: Float32Array): { mean: number; rstd: number } {
  let s = 0;
  for (const x of v) s += x;
  const mean = s / M;
  let q = (M - v.length) * mean * mean;
  for (const x of v) q += (x - mean) ** 2;
  return { mean, rstd: 1 / Math.sqrt(q / M + 1e-5) };
}

async function checkRun(x: string, label: string, n: number): Promise<void> {
  const out = P(`${label}-stats.npz`);
  const r = await run(["forward", x, "--groups", "8", "--outputs", "y,mean,rstd", "--y", "/dev/null", "--out", out, "--json"], { timeout: 280_000 });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const doc = JSON.parse(r.stdout);
  console.log(`${label}: forward of a ${n} GiB container: ${r.seconds.toFixed(1)} s wall, peak RSS ${(r.peak / 2 ** 20).toFixed(0)} MiB, ${doc.slices} slices`);
  expect(r.peak).toBeLessThan(GiB);
  const read = async (k: string) => {
    const s = await openTensor(`${out}:${k}`);
    try {
      return await readAll(s);
    } finally {
      await s.close();
    }
  };
  const mean = await read("mean"), rstd = await read("rstd");
  const groups = n * 8;
  expect(mean.length).toBe(groups);
  const first = stats(head), last = stats(tail);
  expect(Math.abs(mean[0]! - first.mean) / Math.abs(first.mean)).toBeLessThan(1e-5);
  expect(Math.abs(rstd[0]! - first.rstd) / first.rstd).toBeLessThan(1e-5);
  expect(Math.abs(mean[groups - 1]! - last.mean) / Math.abs(last.mean)).toBeLessThan(1e-5);
  expect(Math.abs(rstd[groups - 1]! - last.rstd) / last.rstd).toBeLessThan(1e-5);
  for (let i = 1; i < groups - 1; i++) {
    expect(mean[i]).toBe(0);
    expect(rstd[i]).toBe(Math.fround(1 / Math.sqrt(1e-5)));
  }
}

describe("large containers run forward with the default settings within 1 GiB resident", () => {
  it("a 5 GiB .npz: a stored zip64 member of 5 GiB (a sparse file)", async () => {
    const npyHeader = headerOf(5), SIZE = sizeOf(5);
    const size = npyHeader.length + SIZE * 4;
    zip64(P("big.npz"), 0, memberCrc(5), size, size, (fd, start) => {
      writeSync(fd, npyHeader, 0, npyHeader.length, start);
      writeSync(fd, bytesOf(head), 0, HEAD * 4, start + npyHeader.length);
      writeSync(fd, bytesOf(tail), 0, HEAD * 4, start + size - HEAD * 4);
    });
    const info = groupnorm(["info", P("big.npz"), "--json"]);
    expect(JSON.parse(info.stdout).tensors[0]).toMatchObject({ name: "x", dtype: "float32", shape: shapeOf(5), bytes: SIZE * 4, storage: "stored", stored_bytes: size });
    await checkRun(P("big.npz"), "stored", 5);
  }, 300_000);

  it("a deflated member of 2 GiB (a 2 MB file), inflated as it streams, never whole", async () => {
    const npyHeader = headerOf(2), SIZE = sizeOf(2);
    const size = npyHeader.length + SIZE * 4;
    const sync = (b: Uint8Array) => deflateRawSync(b, { finishFlush: constants.Z_SYNC_FLUSH });
    const zeros = sync(Buffer.alloc(1 << 20));
    const zerosBytes = (SIZE - 2 * HEAD) * 4;
    const pieces = [sync(Buffer.concat([npyHeader, bytesOf(head)]))];
    const whole = Math.floor(zerosBytes / (1 << 20));
    const rest = sync(Buffer.alloc(zerosBytes - whole * (1 << 20)));
    const last = [rest, sync(bytesOf(tail)), deflateRawSync(Buffer.alloc(0))];
    const compressed = pieces[0]!.length + whole * zeros.length + last.reduce((a, b) => a + b.length, 0);
    zip64(P("bigz.npz"), 8, memberCrc(2), size, compressed, (fd, start) => {
      let at = start;
      const put = (b: Buffer) => {
        writeSync(fd, b, 0, b.length, at);
        at += b.length;
      };
      put(pieces[0]!);
      const batch = Buffer.concat(Array.from({ length: 256 }, () => zeros));
      for (let i = 0; i < whole; i += 256) put(i + 256 <= whole ? batch : Buffer.concat(Array.from({ length: whole - i }, () => zeros)));
      for (const b of last) put(b);
    });
    await checkRun(P("bigz.npz"), "deflated", 2);
  }, 300_000);

  it.runIf(python)("a zip64 member over 4 GiB written by np.savez (into a sparse file) is read, CRC and all", async () => {
    // np.savez writes through zipfile with force_zip64 for large arrays; the file object skips runs of zeros
    const script = `
import numpy as np, os
class Sparse:
    def __init__(self, path): self.f = open(path, "wb"); self.pos = 0; self.end = 0
    def write(self, b):
        b = bytes(b)
        if b.count(0) == len(b): self.pos += len(b)
        else: self.f.seek(self.pos); self.f.write(b); self.pos += len(b)
        self.end = max(self.end, self.pos); return len(b)
    def tell(self): return self.pos
    def seek(self, p, whence=0):
        self.pos = p if whence == 0 else self.pos + p if whence == 1 else self.end + p
        return self.pos
    def seekable(self): return True
    def read(self, n=-1): raise OSError("write only")
    def flush(self): self.f.flush()
    def close(self): self.f.truncate(self.end); self.f.close()
x = np.zeros((1, 1, 1100000000), np.float32)
x[0, 0, :3] = [1.5, -2.0, 0.25]
x[0, 0, -1] = 4.0
f = Sparse("${P("numpy.npz")}")
np.savez(f, x=x)
f.close()
`;
    const t0 = Date.now();
    const made = spawnSync("/usr/bin/python3", ["-c", script], { encoding: "utf8", timeout: 120_000 });
    expect(made.stderr).toBe("");
    console.log(`np.savez of a 4.4 GB array into a sparse file: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const r = await run(["forward", `${P("numpy.npz")}:x`, "--groups", "1", "--outputs", "mean,rstd", "--out", P("numpy-stats.safetensors"), "--json"], { timeout: 280_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    console.log(`forward of np.savez's 4.4 GB zip64 member: ${r.seconds.toFixed(1)} s, peak RSS ${(r.peak / 2 ** 20).toFixed(0)} MiB`);
    expect(r.peak).toBeLessThan(GiB);
    const s = await openTensor(`${P("numpy-stats.safetensors")}:mean`);
    const mean = await readAll(s);
    await s.close();
    expect(mean[0]).toBeCloseTo((1.5 - 2 + 0.25 + 4) / 1.1e9, 12);
  }, 300_000);
});
