#!/usr/bin/env node
// Where the pool pays (docs/performance.md, "One thread or the pool"): the measurements behind the
// engine's POOL_JOB_BYTES and POOL_START_BYTES (src/kernels/engine.ts). Not a test.
//   jobs:  one job at a time, in place as the pipeline runs it, on a warm engine: the calling thread
//          against a 2-thread pool that is already up, by tensor bytes (X for forward, dY + X for
//          backward); alternated run by run, medians.
//   files: `groupnorm forward` and `backward` file to file, --threads 1 against --threads 2 with
//          every job on the pool (GROUPNORM_POOL=always: its start-up included), by file size;
//          alternated, medians of per-round ratios.
//   node scripts/crossover.js [jobs|files|both] [--rounds 7] [--layout nchw] [--kib 64,256,…] (jobs' tensor sizes)
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const what = process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : "both";
const rounds = Number(arg("rounds", "7"));
const layout = arg("layout", "nchw");
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
const MiB = 2 ** 20;

async function jobs() {
  const { Engine } = await import(join(root, "dist/kernels/engine.js"));
  const { groupNormDims } = await import(join(root, "dist/core/dims.js"));
  const one = new Engine({ threads: 1 }), two = new Engine({ threads: 2, pool: "always" });
  await two.ready();
  console.log(`jobs (${layout} float32, G = 32, C = 64; load ${load()}): median µs per job, 1 thread / 2-thread pool, and the ratio (> 1: the pool is faster)`);
  for (const kib of (arg("kib", "64,256,1024,4096,8192,16384,32768,65536")).split(",").map(Number)) {
    const n = (kib * 1024) / 4, C = 64, N = Math.min(16, Math.max(1, n / (C * 256)));
    const hw = n / (N * C);
    const geo = { ...groupNormDims(layout === "nchw" ? [N, C, hw] : [N, hw, C], 32, layout), precision: "f32" };
    const put = (e) => {
      const x = e.arena.alloc(n * 4), dy = e.arena.alloc(n * 4);
      const vx = e.arena.f32(x, n), vdy = e.arena.f32(dy, n);
      for (let i = 0; i < n; i++) (vx[i] = Math.sin(i) * 2 + 1), (vdy[i] = Math.cos(i));
      return { x, dy };
    };
    const m1 = one.arena.used, m2 = two.arena.used;
    const p1 = put(one), p2 = put(two);
    const t = { f1: [], f2: [], b1: [], b2: [] };
    const time = async (list, f) => {
      const t0 = performance.now();
      await f();
      list.push((performance.now() - t0) * 1000);
    };
    const runs = Math.max(21, Math.min(301, Math.floor(40000 / kib)));
    for (let r = 0; r < runs; r++) {
      await time(t.f1, () => one.forward(geo, 1e-5, p1.x, p1.x, null, null));
      await time(t.f2, () => two.forward(geo, 1e-5, p2.x, p2.x, null, null));
      await time(t.b1, () => one.backward(geo, 1e-5, { dy: p1.dy, x: p1.x, dx: p1.dy }, null, null));
      await time(t.b2, () => two.backward(geo, 1e-5, { dy: p2.dy, x: p2.x, dx: p2.dy }, null, null));
    }
    one.arena.release(m1);
    two.arena.release(m2);
    const row = (a, b, bytes) => `${(bytes / 1024).toFixed(0).padStart(6)} KiB ${median(a).toFixed(0).padStart(6)} / ${median(b).toFixed(0).padStart(6)} ×${(median(a) / median(b)).toFixed(2)}`;
    console.log(`  ${String(kib).padStart(5)} KiB per tensor: forward ${row(t.f1, t.f2, kib * 1024)}   backward ${row(t.b1, t.b2, 2 * kib * 1024)}`);
  }
  await two.close();
}

function files() {
  const dir = mkdtempSync(join(tmpdir(), "groupnorm-crossover-"));
  const bin = join(root, "bin/groupnorm.js");
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS; // every node process would parse the bundle first (see bench.js)
  try {
    const sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256]; // MiB of float32: (N, 64, 64, 64)
    const make = `import numpy as np, sys\nfor n in map(int, sys.argv[2:]):\n    r = np.random.default_rng(n)\n    for k in ('x', 'dy'): np.save(f"{sys.argv[1]}/{k}{n}.npy", r.standard_normal((n, 64, 64, 64), dtype=np.float32))\n`;
    const py = spawnSync("/usr/bin/python3", ["-c", make, dir, ...sizes.map(String)], { encoding: "utf8" });
    if (py.status !== 0) throw new Error(`making the inputs needs /usr/bin/python3 with numpy: ${py.stderr}`);
    console.log(`files (float32 (N, 64, 64, 64), G = 32, NCHW; load ${load()}): median ms over ${rounds} rounds, --threads 1 / --threads 2 with the pool from the start, and the median per-round ratio (> 1: the pool is faster)`);
    const run = (args, extra = {}) => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [bin, ...args, "--groups", "32", "--out-dir", join(dir, "out"), "--quiet"], { env: { ...env, ...extra }, stdio: ["ignore", "ignore", "pipe"] });
      if (r.status !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    for (const n of sizes) {
      const t = { f1: [], f2: [], b1: [], b2: [] };
      const fwd = ["forward", join(dir, `x${n}.npy`)], bwd = ["backward", join(dir, `dy${n}.npy`), join(dir, `x${n}.npy`)];
      run(fwd), run(bwd); // warm the page cache and the outputs' previous versions
      for (let r = 0; r < rounds; r++) {
        t.f1.push(run([...fwd, "--threads", "1"]));
        t.f2.push(run([...fwd, "--threads", "2"], { GROUPNORM_POOL: "always" }));
        t.b1.push(run([...bwd, "--threads", "1"]));
        t.b2.push(run([...bwd, "--threads", "2"], { GROUPNORM_POOL: "always" }));
      }
      const ratio = (a, b) => median(a.map((v, i) => v / b[i])).toFixed(2);
      const row = (a, b) => `${median(a).toFixed(0).padStart(5)} / ${median(b).toFixed(0).padStart(5)} ×${ratio(a, b)}`;
      console.log(`  ${String(n).padStart(4)} MiB: forward ${row(t.f1, t.f2)}   backward (${2 * n} MiB in) ${row(t.b1, t.b2)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (what === "jobs" || what === "both") await jobs();
if (what === "files" || what === "both") files();
console.log(`load at the end: ${load()}`);
