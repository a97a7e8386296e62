#!/usr/bin/env node
// `npm run bench`: our kernels (groupnorm roofline --json), PyTorch's native_group_norm (when
// Debian's python3-torch is installed, under tcmalloc when present) and a C STREAM build (when gcc
// is present), measured in one run and printed side by side as ratios. Not a test: numbers vary
// with the machine and its load.
//   node scripts/bench.js [--shape 16,512,64,64] [--groups 32] [--threads 2] [--runs 20]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const shape = arg("shape", "16,512,64,64");
const groups = arg("groups", "32");
const threads = arg("threads", "2");
const runs = arg("runs", "20");
const [N, C, H, W] = shape.split(",").map(Number);
const TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
const PYTHON = "/usr/bin/python3";

function stream() {
  try {
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-bench-"));
    const exe = join(dir, "stream");
    execFileSync("gcc", ["-O3", "-march=native", "-fopenmp", join(root, "scripts/stream.c"), "-o", exe], { stdio: "pipe" });
    const out = execFileSync(exe, ["80000000", "10"], { env: { ...process.env, OMP_NUM_THREADS: threads, OMP_PROC_BIND: "close" }, encoding: "utf8" });
    return JSON.parse(out);
  } catch (e) {
    return { error: `C STREAM unavailable (${e.message.split("\n")[0]})` };
  }
}

function ours(layout) {
  const out = execFileSync(process.execPath, [join(root, "bin/groupnorm.js"), "roofline", "--json", "--shape", shape, "--groups", groups, "--layout", layout, "--threads", threads, "--runs", runs], { encoding: "utf8" });
  return JSON.parse(out);
}

function torch(layout) {
  if (!existsSync(PYTHON)) return { error: "no /usr/bin/python3" };
  const env = { ...process.env, OMP_NUM_THREADS: threads };
  if (existsSync(TCMALLOC)) env.LD_PRELOAD = TCMALLOC;
  const r = spawnSync(PYTHON, [join(root, "scripts/bench_torch.py"), String(N), String(C), String(H), String(W), groups, layout, runs, threads], { env, encoding: "utf8" });
  if (r.status !== 0) return { error: `PyTorch unavailable (${(r.stderr || "").trim().split("\n").pop()})` };
  return { ...JSON.parse(r.stdout), tcmalloc: !!env.LD_PRELOAD };
}

const ms = (s) => (s * 1e3).toFixed(2);
const c = stream();
console.log(`groupnorm bench: shape (${shape}), G=${groups}, float32, ${threads} threads, ${runs} runs (best; median in brackets)`);
if (c.error) console.log(`C STREAM: ${c.error}`);
else console.log(`C STREAM (gcc -O3 -fopenmp, ${c.threads} threads): copy ${c.copy_gbps.toFixed(1)} GB/s, add ${c.add_gbps.toFixed(1)} GB/s, triad ${c.triad_gbps.toFixed(1)} GB/s`);
const rows = [];
for (const layout of ["nchw", "nhwc"]) {
  const o = ours(layout);
  const t = torch(layout);
  if (layout === "nchw") console.log(`groupnorm roofline probes (WASM): copy ${o.attainable.copy_gbps.toFixed(1)} GB/s, add ${o.attainable.add_gbps.toFixed(1)} GB/s`);
  for (const k of o.kernels) {
    const streamRoof = c.error ? null : k.name === "forward" ? c.copy_gbps : c.add_gbps;
    const tk = t.error ? null : t[k.name];
    rows.push({
      kernel: `${k.name} ${layout}`,
      ours: `${ms(k.seconds)} [${ms(k.median_seconds)}]`,
      gbps: k.gbps.toFixed(1),
      stream: streamRoof ? `${((k.gbps / streamRoof) * 100).toFixed(0)}% of C ${k.name === "forward" ? "copy" : "add"}` : "n/a",
      torch: tk ? `${ms(tk.best)} [${ms(tk.median)}]` : t.error,
      speedup: tk ? `${(tk.best / k.seconds).toFixed(2)}×` : "n/a",
    });
  }
}
console.log("");
console.log("| kernel | groupnorm ms | GB/s | vs C STREAM | PyTorch ms | speed-up |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of rows) console.log(`| ${r.kernel} | ${r.ours} | ${r.gbps} | ${r.stream} | ${r.torch} | ${r.speedup} |`);
