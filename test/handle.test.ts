// io/handle.ts: the I/O layer's file handle in place of fs/promises' (small transfers synchronous,
// larger ones and devices on libuv's thread pool), with the same results and errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileHandle, open, rename, stat, SYNC_BYTES, SYNC_RUN, unlink, writeFile } from "../src/io/handle.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "groupnorm-handle-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes whose every position differs from its neighbours' (a misplaced read shows). */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed + (i >>> 8)) & 255;
  return b;
}

describe("FileHandle", () => {
  it("reads by position, small (synchronous) and large (thread pool) alike, into the offset asked", async () => {
    const n = 3 * SYNC_BYTES + 12345;
    const data = pattern(n, 7);
    const p = join(dir, "read.bin");
    writeFileSync(p, data);
    const fh = await open(p, "r");
    try {
      for (const [pos, len] of [[0, 16], [1000, SYNC_BYTES], [777, SYNC_BYTES + 1], [5, n - 5]] as const) {
        const buf = new Uint8Array(len + 9).fill(0xee);
        const { bytesRead } = await fh.read(buf, 9, len, pos);
        expect(bytesRead).toBe(len);
        expect(Buffer.from(buf.subarray(9)).equals(Buffer.from(data.subarray(pos, pos + len)))).toBe(true);
        expect([...buf.subarray(0, 9)]).toEqual(new Array(9).fill(0xee));
      }
      // past the end: what is there, then 0
      const tail = new Uint8Array(100);
      expect((await fh.read(tail, 0, 100, n - 40)).bytesRead).toBe(40);
      expect((await fh.read(tail, 0, 100, n + 1)).bytesRead).toBe(0);
      expect((await fh.stat()).size).toBe(n);
    } finally {
      await fh.close();
    }
  });

  it("writes by position, small and large, and several large writes at once land where asked", async () => {
    const p = join(dir, "write.bin");
    writeFileSync(p, "");
    const fh = await open(p, "r+");
    const a = pattern(SYNC_BYTES * 2 + 3, 1), b = pattern(100, 2), c = pattern(SYNC_BYTES * 3, 3);
    const results = await Promise.all([fh.write(a, 0, a.length, 0), fh.write(c, 0, c.length, a.length + 100)]);
    expect(results.map((r) => r.bytesWritten)).toEqual([a.length, c.length]);
    expect((await fh.write(b, 0, b.length, a.length)).bytesWritten).toBe(100);
    await fh.close();
    expect(Buffer.from(readFileSync(p)).equals(Buffer.concat([a, b, c]))).toBe(true);
  });

  it("close is idempotent; a closed handle's reads, writes and stat fail with EBADF", async () => {
    const p = join(dir, "closed.bin");
    writeFileSync(p, "abc");
    const fh = await open(p, "r");
    await fh.close();
    await expect(fh.close()).resolves.toBeUndefined();
    await expect(fh.read(new Uint8Array(3), 0, 3, 0)).rejects.toMatchObject({ code: "EBADF" });
    await expect(fh.write(new Uint8Array(3), 0, 3, 0)).rejects.toMatchObject({ code: "EBADF" });
    await expect(fh.stat()).rejects.toMatchObject({ code: "EBADF" });
    expect(fh.fd).toBe(-1);
  });

  it("failures are rejected promises with the errno code, never thrown", async () => {
    const missing = join(dir, "nope", "x.bin");
    const opened = open(missing, "r");
    expect(opened).toBeInstanceOf(Promise);
    await expect(opened).rejects.toMatchObject({ code: "ENOENT", syscall: "open" });
    await expect(stat(missing)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(unlink(missing)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(rename(missing, join(dir, "y.bin"))).rejects.toMatchObject({ code: "ENOENT" });
    // exclusive create of an existing file
    const p = join(dir, "exists.bin");
    writeFileSync(p, "x");
    await expect(open(p, "wx")).rejects.toMatchObject({ code: "EEXIST" });
  });

  it("a device is written through (the thread pool, position null), as /dev/null takes it", async () => {
    const fh = await open("/dev/null", "w");
    const big = pattern(SYNC_BYTES * 2, 5);
    expect((await fh.write(big, 0, big.length, null)).bytesWritten).toBe(big.length);
    expect((await fh.write(big, 0, 10, null)).bytesWritten).toBe(10);
    expect((await fh.stat()).isCharacterDevice()).toBe(true);
    await fh.close();
  });

  it("rename, unlink and writeFile do what their names say", async () => {
    const p = join(dir, "text.txt"), q = join(dir, "moved.txt");
    await writeFile(p, "héllo");
    expect(readFileSync(p, "utf8")).toBe("héllo");
    await rename(p, q);
    expect(existsSync(p)).toBe(false);
    expect((await stat(q)).size).toBe(6);
    await unlink(q);
    expect(existsSync(q)).toBe(false);
  });

  it("is the class open() makes", async () => {
    const p = join(dir, "class.bin");
    writeFileSync(p, "z");
    const fh = await open(p, "r");
    expect(fh).toBeInstanceOf(FileHandle);
    await fh.close();
  });
});

describe("a long run of small transfers", () => {
  it("lets the event loop turn (signals, timers): every SYNC_RUN-th goes to the thread pool", async () => {
    const p = join(dir, "small.bin");
    writeFileSync(p, pattern(4096, 9));
    const fh = await open(p, "r");
    let ranAt = -1, i = 0;
    setImmediate(() => (ranAt = i));
    const buf = new Uint8Array(16);
    for (; i < 20 * SYNC_RUN; i++) await fh.read(buf, 0, 16, i % 4000);
    await fh.close();
    // synchronous reads alone would resolve every await without a turn: the immediate would run after the loop
    expect(ranAt).toBeGreaterThanOrEqual(0);
    expect(ranAt).toBeLessThanOrEqual(SYNC_RUN + 1);
  });
});

// Found by a review: close() closed the descriptor at once, while transfers were still on the
// thread pool; they then ran on a closed descriptor, or on the file opened next under its number.
describe("close with transfers on the thread pool", () => {
  it("reads in flight complete on the file they were asked of", async () => {
    const p = join(dir, "inflight-a.bin"), q = join(dir, "inflight-b.bin");
    writeFileSync(p, Buffer.alloc(4 * SYNC_BYTES, 1));
    writeFileSync(q, Buffer.alloc(16, 2));
    const fh = await open(p, "r");
    const bufs = Array.from({ length: 8 }, () => new Uint8Array(2 * SYNC_BYTES));
    const reads = bufs.map((b) => fh.read(b, 0, b.length, SYNC_BYTES));
    const closed = fh.close();
    await expect(fh.read(new Uint8Array(4), 0, 4, 0)).rejects.toMatchObject({ code: "EBADF" }); // closing: no new transfers
    const other = await open(q, "r"); // would take the closed descriptor's number
    const results = await Promise.allSettled(reads);
    await closed;
    await other.close();
    expect(results.map((r) => (r.status === "fulfilled" ? r.value.bytesRead : (r.reason as NodeJS.ErrnoException).code))).toEqual(new Array(8).fill(2 * SYNC_BYTES));
    for (const b of bufs) expect(b.every((v) => v === 1)).toBe(true);
  });
  it("writes in flight land in their own file, not in the one opened next", async () => {
    const p = join(dir, "inflight-w.bin"), q = join(dir, "inflight-victim.bin");
    writeFileSync(p, "");
    writeFileSync(q, "victim");
    const fh = await open(p, "r+");
    const data = Buffer.alloc(2 * SYNC_BYTES, 0x41);
    const writes = Array.from({ length: 8 }, (_, i) => fh.write(data, 0, data.length, i * data.length));
    const closed = fh.close();
    expect(fh.close()).toBe(closed); // the same close
    const other = await open(q, "r+");
    await Promise.all(writes);
    await closed;
    await other.close();
    expect(readFileSync(q, "utf8")).toBe("victim");
    expect(readFileSync(p).length).toBe(8 * data.length);
  });
});
