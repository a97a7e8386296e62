// The golden runs: for each fixture case, the CLI commands whose output bytes are recorded
// (record.mjs) and checked (test/golden.test.ts).
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = join(root, "bin/groupnorm.js");
const cases = JSON.parse(readFileSync(join(root, "fixtures/manifest.json"), "utf8"));

export function goldenRuns() {
  const runs = [];
  for (const c of cases) {
    const f = (name) => join(root, "fixtures/cases", c.name, name);
    const common = ["--groups", String(c.groups), "--layout", c.layout, "--eps", String(c.eps)];
    const affine = c.affine && existsSync(f("gamma.npy"));
    const fwd = ["forward", f("x.npy"), ...common, ...(affine ? ["--gamma", f("gamma.npy"), "--beta", f("beta.npy")] : [])];
    const bwd = ["backward", f("dy.npy"), f("x.npy"), ...common, ...(affine ? ["--gamma", f("gamma.npy")] : []), "--outputs", "dx,dgamma,dbeta"];
    runs.push({ id: `${c.name}/forward`, args: [...fwd, "--threads", "2"] });
    runs.push({ id: `${c.name}/backward`, args: [...bwd, "--threads", "2"] });
    runs.push({ id: `${c.name}/backward-given-stats`, args: [...bwd, "--mean", f("mean.npy"), "--rstd", f("rstd.npy"), "--threads", "1"] });
  }
  return runs;
}

/** Run one golden command into a fresh folder; file name → SHA-256 of its bytes. */
export async function hashRun(run) {
  const dir = mkdtempSync(join(tmpdir(), "groupnorm-golden-"));
  try {
    await promisify(execFile)(process.execPath, [bin, ...run.args, "--out-dir", dir, "--quiet"], { encoding: "utf8" }).catch((e) => {
      throw new Error(`${run.id}: exit ${e.code}: ${e.stderr}`);
    });
    const hashes = {};
    for (const name of readdirSync(dir).sort()) hashes[name] = createHash("sha256").update(readFileSync(join(dir, name))).digest("hex");
    return hashes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
