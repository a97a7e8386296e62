#!/usr/bin/env node
// `npm run bench`: our kernels (groupnorm roofline --json), PyTorch's native_group_norm (when
// Debian's python3-torch is installed, under tcmalloc when present) and a C STREAM build (when gcc
// is present), printed side by side as ratios. Not a test: numbers vary with the machine and its load.
//
// A second table, "fused", times forward with --activation silu against plain forward, and the
// backward through it against plain backward (scripts/bench-fused.js, the two alternated on the same
// buffers), next to PyTorch's silu(group_norm(x)) and its autograd backward (scripts/bench_torch.py fused).
//
// The host's memory bandwidth moves between two levels (about 47 and 80 GB/s of STREAM copy here)
// from one minute to the next, so a ratio is only meaningful between measurements taken close
// together. The bench therefore runs in rounds: in each round and layout, C STREAM, then our kernels,
// then PyTorch, seconds apart; every ratio compares measurements of the same round. It prints the
// median of the per-round ratios and each round's own ratios.
// Then the "command-line" section (scripts/bench-cli.js): whole commands, wall time, beside
// `node -e 0` and `cp`, in rounds likewise.
//   node scripts/bench.js [--shape 16,512,64,64] [--groups 32] [--threads 2] [--runs 20] [--rounds 5]
//                         [--only kernels|command-line]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { commandLine } from "./bench-cli.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const shape = arg("shape", "16,512,64,64");
const groups = arg("groups", "32");
const threads = arg("threads", "2");
const runs = arg("runs", "20");
const rounds = Math.max(1, Number(arg("rounds", "5")));
const only = arg("only", null);
if (only !== null && only !== "kernels" && only !== "command-line") throw new Error(`--only kernels or --only command-line, not ${only}`);
const [N, C, H, W] = shape.split(",").map(Number);
const TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
const PYTHON = "/usr/bin/python3";

function buildStream() {
  try {
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-bench-"));
    const exe = join(dir, "stream");
    execFileSync("gcc", ["-O3", "-march=native", "-fopenmp", join(root, "scripts/stream.c"), "-o", exe], { stdio: "pipe" });
    return { exe };
  } catch (e) {
    return { error: `C STREAM unavailable (${e.message.split("\n")[0]})` };
  }
}

function stream(build) {
  if (build.error) return build;
  // 4 × 80M float64 per array would not fit short rounds; 40M (320 MB per array) is 10× the LLC
  const out = execFileSync(build.exe, ["40000000", "8"], { env: { ...process.env, OMP_NUM_THREADS: threads, OMP_PROC_BIND: "close" }, encoding: "utf8" });
  return JSON.parse(out);
}

function ours(layout) {
  const out = execFileSync(process.execPath, [join(root, "bin/groupnorm.js"), "roofline", "--json", "--shape", shape, "--groups", groups, "--layout", layout, "--threads", threads, "--runs", runs], { encoding: "utf8" });
  return JSON.parse(out);
}

/** PyTorch's timings (`fused`: of silu(group_norm(x)) and plain group_norm with autograd, scripts/bench_torch.py). */
function torch(layout, fused = false) {
  if (!existsSync(PYTHON)) return { error: "no /usr/bin/python3" };
  const env = { ...process.env, OMP_NUM_THREADS: threads };
  if (existsSync(TCMALLOC)) env.LD_PRELOAD = TCMALLOC;
  const r = spawnSync(PYTHON, [join(root, "scripts/bench_torch.py"), String(N), String(C), String(H), String(W), groups, layout, runs, threads, ...(fused ? ["fused"] : [])], { env, encoding: "utf8" });
  if (r.status !== 0) return { error: `PyTorch unavailable (${(r.stderr || "").trim().split("\n").pop()})` };
  return { ...JSON.parse(r.stdout), tcmalloc: !!env.LD_PRELOAD };
}

function fused(layout) {
  const out = execFileSync(process.execPath, [join(root, "scripts/bench-fused.js"), "--shape", shape, "--groups", groups, "--layout", layout, "--threads", threads, "--runs", runs, "--activation", "silu"], { encoding: "utf8" });
  return JSON.parse(out);
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (s) => (s * 1e3).toFixed(2);
const pct = (r) => `${(r * 100).toFixed(0)}%`;

function kernels() {
  const build = buildStream();
  console.log(`groupnorm bench: shape (${shape}), G=${groups}, float32, ${threads} threads, best of ${runs} runs, ${rounds} rounds`);
  if (build.error) console.log(`C STREAM: ${build.error}`);

  // samples[kernel] = per-round measurements; fusedSamples[kernel]: the activation's
  const samples = new Map();
  const fusedSamples = new Map();
  let torchError = null;
  for (let round = 1; round <= rounds; round++) {
    for (const layout of ["nchw", "nhwc"]) {
      const c = stream(build);
      const o = ours(layout);
      const t = torch(layout);
      if (t.error) torchError = t.error;
      for (const k of o.kernels) {
        const key = `${k.name} ${layout}`;
        const roof = k.name === "forward" ? "copy" : "add";
        const s = {
          round,
          seconds: k.seconds,
          median: k.median_seconds,
          gbps: k.gbps,
          cStream: c.error ? null : c[`${roof}_gbps`],
          wasm: o.attainable[`${roof}_gbps`],
          torch: t.error ? null : t[k.name].best,
        };
        if (!samples.has(key)) samples.set(key, []);
        samples.get(key).push(s);
      }
      const f = fused(layout);
      const tf = torch(layout, true);
      if (tf.error) torchError = tf.error;
      for (const name of ["forward", "backward"]) {
        const key = `${name} ${layout}`;
        if (!fusedSamples.has(key)) fusedSamples.set(key, []);
        fusedSamples.get(key).push({ round, plain: f[name].plain, fused: f[name].fused, ratio: f[name].ratio, torch: tf.error ? null : tf[name].best, torchPlain: tf.error ? null : tf[`plain_${name}`].best });
      }
    }
    process.stderr.write(`round ${round}/${rounds} done\n`);
  }

  console.log("");
  console.log("Median over rounds of the per-round figures (each ratio compares measurements of one round):");
  console.log("");
  console.log("| kernel | groupnorm ms | GB/s | C STREAM GB/s | vs C STREAM | vs WASM probe | PyTorch ms | speed-up |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const [key, v] of samples) {
    const roof = key.startsWith("forward") ? "copy" : "add";
    const withC = v.filter((s) => s.cStream);
    const withT = v.filter((s) => s.torch);
    console.log(
      `| ${key} | ${ms(median(v.map((s) => s.seconds)))} | ${median(v.map((s) => s.gbps)).toFixed(1)} | ` +
        `${withC.length ? `${roof} ${median(withC.map((s) => s.cStream)).toFixed(1)}` : "n/a"} | ` +
        `${withC.length ? pct(median(withC.map((s) => s.gbps / s.cStream))) : "n/a"} | ` +
        `${pct(median(v.map((s) => s.gbps / s.wasm)))} | ` +
        `${withT.length ? ms(median(withT.map((s) => s.torch))) : torchError} | ` +
        `${withT.length ? `${median(withT.map((s) => s.torch / s.seconds)).toFixed(2)}×` : "n/a"} |`,
    );
  }
  console.log("");
  console.log("Each round (ms: ours / PyTorch; % of the C STREAM roof measured just before ours):");
  for (const [key, v] of samples) {
    const parts = v.map((s) => `${ms(s.seconds)}${s.torch ? ` / ${ms(s.torch)}` : ""}${s.cStream ? ` (${pct(s.gbps / s.cStream)} of ${s.cStream.toFixed(0)})` : ""}`);
    console.log(`  ${key.padEnd(14)} ${parts.join(" · ")}`);
  }

  console.log("");
  console.log(`Fused activation (silu), median over rounds; each round's ratio is the median of ${runs} alternated runs (plain, fused, plain, …) on the same buffers:`);
  console.log("");
  console.log("| kernel | plain ms | with silu ms | ratio | target | PyTorch silu(group_norm) ms | PyTorch's own ratio | speed-up |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const [key, v] of fusedSamples) {
    const withT = v.filter((s) => s.torch);
    console.log(
      `| ${key} | ${ms(median(v.map((s) => s.plain)))} | ${ms(median(v.map((s) => s.fused)))} | ${median(v.map((s) => s.ratio)).toFixed(2)}× | ${key.startsWith("forward") ? "≤ 1.15×" : "≤ 1.2×"} | ` +
        `${withT.length ? ms(median(withT.map((s) => s.torch))) : torchError} | ` +
        `${withT.length ? `${median(withT.map((s) => s.torch / s.torchPlain)).toFixed(2)}×` : "n/a"} | ` +
        `${withT.length ? `${median(withT.map((s) => s.torch / s.fused)).toFixed(2)}×` : "n/a"} |`,
    );
  }
  console.log("");
  console.log("Each round (ms: plain / with silu, ratio; PyTorch with silu):");
  for (const [key, v] of fusedSamples) {
    const parts = v.map((s) => `${ms(s.plain)} / ${ms(s.fused)} (${s.ratio.toFixed(2)}×)${s.torch ? `; ${ms(s.torch)}` : ""}`);
    console.log(`  ${key.padEnd(14)} ${parts.join(" · ")}`);
  }
}

if (only !== "command-line") kernels();
if (only !== "kernels") commandLine({ root, rounds });
