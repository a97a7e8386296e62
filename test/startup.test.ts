// Issue #18, start-up: a command loads only what it needs. --version and --help (of any command)
// load the command definitions and the flags table, never the kernels, the pool, the pipeline, the
// file formats or the verify and roofline engines; a command loads those when it runs. Checked by
// the modules the process resolves (a resolve hook), not by time.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { traced } from "./helpers/cli.js";

const hook = `data:text/javascript,${encodeURIComponent(`
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(\`
export async function resolve(s, c, n) { const r = await n(s, c); if (r.url.startsWith("file:")) process.stderr.write("LOADED " + r.url + "\\\\n"); return r; }\`));`)}`;

/** The modules a run of the unbundled CLI (dist/cli/main.js, as the command's bundle is made of it) resolves. */
function loaded(args: string[]): { status: number | null; modules: string[] } {
  const entry = ["--input-type=module", "-e", `import { main } from ${JSON.stringify(new URL("../dist/cli/main.js", import.meta.url).href)}; process.exitCode = await main(process.argv.slice(1));`, "--"];
  const r = spawnSync(process.execPath, ["--import", hook, ...entry, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const modules = [...new Set(r.stderr.split("\n").filter((l) => l.startsWith("LOADED ")).map((l) => l.slice(7).replace(/^.*?\/(bin|dist|node_modules)\//, "$1/")))];
  return { status: r.status, modules };
}

/** What help and --version must never load. */
const HEAVY = [/^dist\/kernels\//, /^dist\/pipeline\//, /^dist\/api\//, /^dist\/io\/npy\//, /^dist\/io\/(npz|safetensors)\//, /^dist\/io\/(outputs|container-writer|open|inspect)/, /^node_modules\/(yauzl|yazl)\//, /^dist\/verify\/(run|reference|check)/, /^dist\/roofline\/(measure|svg|host)/, /^dist\/checks\//, /^dist\/analysis\//, /^node_modules\/(npyjs|cli-progress|chalk)\//];

describe("start-up loads only what the command needs (the modules, unbundled)", () => {
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

// The command runs its bundle (scripts/bundle.js): what --help needs in dist/bundle/main.cjs (with
// rolldown's runtime helpers beside it), the engine, the pipeline and the .npy format in one chunk
// ("lib"), the containers and the pool in chunks of their own; each compiled with the code cache
// the build made (helpers/cli.ts: traced). errors.js, which every chunk imports, rolldown keeps in a
// small common chunk of its own ("errors") that main.cjs requires first.
describe("the bundled command loads one file (and rolldown's helpers) for help, one more for a .npy forward", () => {
  it("--version loads none of the bundle", () => {
    const r = traced(["--version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(r.files).toEqual([]);
  });
  it.each([["--help"], ["forward", "--help"], ["verify", "backward", "--help"]].map((a) => [a.join(" "), a] as const))("groupnorm %s: main.cjs alone, compiled from its code cache", (_, args) => {
    const r = traced([...args]);
    expect(r.status).toBe(0);
    expect(r.files).toEqual(["main", "rolldown", "errors"]);
    expect(r.cached).toEqual(["main", "rolldown", "errors"]); // V8 took the caches the build made
  });
  it("a .npy forward: main.cjs and lib, no containers, no pool; an .npz input adds the containers", () => {
    const out = mkdtempSync(join(tmpdir(), "groupnorm-startup-"));
    try {
      const x = fileURLToPath(new URL("../fixtures/cases/nc_f32/x.npy", import.meta.url));
      const r = traced(["forward", x, "--groups", "2", "--out-dir", out, "--quiet"]);
      expect(r.status).toBe(0);
      expect(r.files).toEqual(["main", "rolldown", "errors", "lib"]);
      expect(r.cached).toContain("lib");
      const npz = fileURLToPath(new URL("../fixtures/containers/one.npz", import.meta.url));
      const z = traced(["info", npz]);
      expect(z.status).toBe(0);
      expect(z.files).toContain("containers");
      expect(z.files).not.toContain("pool");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
