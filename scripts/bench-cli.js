// The "command-line" section of `npm run bench` (scripts/bench.js): whole commands as a shell script
// runs them, wall time, beside `node -e 0` and `cp`. Each round runs every command once, one after
// another, and the four start-up rows (`node -e 0`, --version, --help, a fixture's forward)
// QUICK_RUNS times each, alternated, taking each one's median in the round (a single 40–60 ms run
// here varies by ±5–10 ms); a ratio or difference compares measurements of the same round, and the
// table gives the medians of those per-round figures (as the kernel section does), so that load
// that comes and goes between rounds moves both sides of a ratio alike.
//
// Every command runs with NODE_EXTRA_CA_CERTS removed from its environment: where it is set (this
// machine's sessions set it), every node process parses that certificate bundle at start, about
// 80 ms of CPU here, `node -e 0` included; it is no part of the tool's cost.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const PYTHON = "/usr/bin/python3";
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const loads = () => loadavg().map((l) => l.toFixed(2)).join(", ");
/** Runs of each start-up row in a round, alternated; the round takes their median. */
const QUICK_RUNS = 9;

/** Wall time of one run in ms; the statuses `ok` allows (compare exits 1 for tensors that differ). */
function timed(argv, env, ok = [0]) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!ok.includes(r.status)) throw new Error(`${argv.join(" ")}: exit ${r.status}: ${(r.stderr || "").trim().split("\n").pop()}`);
  return ms;
}

/** The 128 MiB float32 inputs, (16, 512, 64, 64), made with numpy (as a user's would be). */
function makeInputs(dir) {
  const x = join(dir, "x.npy"), dy = join(dir, "dy.npy");
  const script = "import numpy as np, sys\nr = np.random.default_rng(0)\nfor p in sys.argv[1:]: np.save(p, r.standard_normal((16, 512, 64, 64), dtype=np.float32))\n";
  execFileSync(existsSync(PYTHON) ? PYTHON : "python3", ["-c", script, x, dy], { stdio: "pipe" });
  return { x, dy };
}

export function commandLine({ root, rounds }) {
  const bin = join(root, "bin/groupnorm.js");
  const env = { ...process.env, NO_COLOR: "1" };
  delete env.NODE_EXTRA_CA_CERTS;
  const dir = mkdtempSync(join(tmpdir(), "groupnorm-bench-cli-"));
  try {
    const { x, dy } = makeInputs(dir);
    const out = join(dir, "out"), cpOut = join(dir, "cp"), small = join(dir, "small");
    for (const d of [out, cpOut, small]) mkdirSync(d);
    const fixture = join(root, "fixtures/cases/nchw_big_f32/x.npy"); // (2, 32, 8, 8) float32, 16 KB
    const gn = (...a) => [process.execPath, bin, ...a];
    const rows = [
      { key: "node", quick: true, label: "`node -e 0`", argv: [process.execPath, "-e", "0"] },
      { key: "version", quick: true, label: "`groupnorm --version`", argv: gn("--version"), vs: "node", target: "≤ 15 ms" },
      { key: "help", quick: true, label: "`groupnorm --help`", argv: gn("--help"), vs: "node", target: "≤ 15 ms" },
      { key: "small", quick: true, label: "`forward` of a 16 KB fixture (2,32,8,8), G = 8", argv: gn("forward", fixture, "--groups", "8", "--out-dir", small, "--quiet"), vs: "node", target: "≤ 30 ms" },
      { key: "cp", label: "`cp` of the 128 MiB X", argv: ["cp", x, join(cpOut, "x.npy")] },
      { key: "forward", label: "`forward` 128 MiB file to file, G = 32", argv: gn("forward", x, "--groups", "32", "--out-dir", out, "--quiet"), vs: "cp", target: "≤ 2.0×" },
      { key: "cp2", label: "`cp` of dY and X (256 MiB)", argv: ["cp", dy, x, cpOut] },
      { key: "backward", label: "`backward` 128 MiB dY and X to dX, G = 32", argv: gn("backward", dy, x, "--groups", "32", "--out-dir", out, "--quiet"), vs: "cp2", target: "≤ 2.0×" },
      { key: "info", label: "`info` of the 128 MiB X", argv: gn("info", x), vs: "cp", target: "≤ 1.5×" },
      { key: "compare", label: "`compare` dY against X (128 MiB each)", argv: gn("compare", dy, x, "--quiet"), ok: [0, 1], vs: "cp2", target: "≤ 2.0×" },
      { key: "compare1", label: "`compare`, the same runs", of: "compare", vs: "cp", target: "≤ 2.0×" },
      { key: "gradcheck", label: "`gradcheck --shape 16,512,64,64 --groups 32`", argv: gn("gradcheck", "--shape", "16,512,64,64", "--groups", "32", "--quiet"), ok: [0, 1], target: "< 4 s" },
    ];
    const before = loads();
    process.stderr.write(`command-line: warm-up (page cache, previous outputs)\n`);
    const runs = rows.filter((r) => !r.of); // a row `of` another shows that one's times against another base
    for (const r of runs) timed(r.argv, env, r.ok);
    const t = Object.fromEntries(runs.map((r) => [r.key, []]));
    for (const r of rows) if (r.of) t[r.key] = t[r.of];
    const quick = runs.filter((r) => r.quick);
    for (let round = 1; round <= rounds; round++) {
      const q = Object.fromEntries(quick.map((r) => [r.key, []]));
      for (let k = 0; k < QUICK_RUNS; k++) for (const r of quick) q[r.key].push(timed(r.argv, env, r.ok));
      for (const r of quick) t[r.key].push(median(q[r.key]));
      for (const r of runs) if (!r.quick) t[r.key].push(timed(r.argv, env, r.ok));
      process.stderr.write(`command-line round ${round}/${rounds} done\n`);
    }
    const after = loads();
    const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
    console.log("");
    console.log(`Command line (wall ms, medians over ${rounds} rounds, the start-up rows' of the median of ${QUICK_RUNS} alternated runs in each round; load average ${before} before, ${after} after; NODE_EXTRA_CA_CERTS unset):`);
    console.log("");
    console.log("| command | ms | against | difference | ratio | target |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      if (!r.vs) {
        console.log(`| ${r.label} | ${fmt(median(t[r.key]))} | | | | ${r.target ?? ""} |`);
        continue;
      }
      const base = t[r.vs];
      const diff = median(t[r.key].map((v, i) => v - base[i]));
      const ratio = median(t[r.key].map((v, i) => v / base[i]));
      const against = rows.find((q) => q.key === r.vs).label;
      console.log(`| ${r.label} | ${fmt(median(t[r.key]))} | ${against} | ${diff >= 0 ? "+" : ""}${fmt(diff)} ms | ${ratio.toFixed(2)}× | ${r.target ?? ""} |`);
    }
    console.log("");
    console.log("Each round (ms):");
    for (const r of runs) console.log(`  ${r.key.padEnd(9)} ${t[r.key].map(fmt).join(" · ")}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
