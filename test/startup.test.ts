// Issue #18, start-up: a command loads only what it needs. --version and --help (of any command)
// load the command definitions and the flags table, never the kernels, the pool, the pipeline, the
// file formats or the verify and roofline engines; a command loads those when it runs. Checked by
// the modules the process resolves (a resolve hook), not by time.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { bin } from "./helpers/cli.js";

const hook = `data:text/javascript,${encodeURIComponent(`
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(\`
export async function resolve(s, c, n) { const r = await n(s, c); if (r.url.startsWith("file:")) process.stderr.write("LOADED " + r.url + "\\\\n"); return r; }\`));`)}`;

function loaded(args: string[]): { status: number | null; modules: string[] } {
  const r = spawnSync(process.execPath, ["--import", hook, bin, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const modules = [...new Set(r.stderr.split("\n").filter((l) => l.startsWith("LOADED ")).map((l) => l.slice(7).replace(/^.*?\/(dist|node_modules)\//, "$1/")))];
  return { status: r.status, modules };
}

/** What help and --version must never load. */
const HEAVY = [/^dist\/kernels\//, /^dist\/pipeline\//, /^dist\/api\//, /^dist\/io\/npy\//, /^dist\/io\/(npz|safetensors)\//, /^dist\/io\/(outputs|container-writer|open|inspect)/, /^node_modules\/(yauzl|yazl)\//, /^dist\/verify\/(run|reference|check)/, /^dist\/roofline\/(measure|svg|host)/, /^dist\/checks\//, /^dist\/analysis\//, /^node_modules\/(npyjs|cli-progress|chalk)\//];

describe("start-up loads only what the command needs", () => {
  it.each([["--version"], ["--help"], ["forward", "--help"], ["verify", "backward", "--help"], ["roofline", "--help"], ["gradcheck", "--help"]].map((a) => [a.join(" "), a] as const))("groupnorm %s", (_, args) => {
    const r = loaded([...args]);
    expect(r.status).toBe(0);
    expect(r.modules.length).toBeGreaterThan(5); // the hook saw the CLI's own modules
    expect(r.modules.filter((m) => HEAVY.some((h) => h.test(m)))).toEqual([]);
  });

  it("a command that runs loads its engine (the check above would catch a hook that saw nothing)", () => {
    const r = loaded(["gradcheck", "--shape", "2,4,3", "--groups", "2", "--quiet"]);
    expect(r.status).toBe(0);
    expect(r.modules.some((m) => m.startsWith("dist/kernels/"))).toBe(true);
    expect(r.modules.some((m) => m.startsWith("dist/api/gradcheck"))).toBe(true);
  });
});
