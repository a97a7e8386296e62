// Issue #18, start-up: a command loads only what it needs. --version and --help (of any command)
// load the command definitions and the flags table, never the kernels, the pool, the pipeline, the
// file formats or the verify and roofline engines; a command loads those when it runs. Checked by
// the modules the process resolves (a resolve hook), not by time.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Help } from "commander";
import { backwardCommand } from "../src/cli/commands/backward.js";
import { compareCommand } from "../src/cli/commands/compare.js";
import { forwardCommand } from "../src/cli/commands/forward.js";
import { gradcheckCommand } from "../src/cli/commands/gradcheck.js";
import { infoCommand } from "../src/cli/commands/info.js";
import { rooflineCommand } from "../src/cli/commands/roofline.js";
import { verifyCommand } from "../src/cli/commands/verify.js";
import type { Context } from "../src/cli/context.js";
import { bin, groupnorm, traced } from "./helpers/cli.js";

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
    // each command the build runs has caches of its own; verify, which it does not run, the shared ones
    expect(new Set(r.caches)).toEqual(new Set([args[0] === "--help" ? "help" : args[0] === "verify" ? "shared" : args[0]]));
  });
  it("a .npy forward: main.cjs and lib, no containers, no pool; an .npz input adds the containers", () => {
    const out = mkdtempSync(join(tmpdir(), "groupnorm-startup-"));
    try {
      const x = fileURLToPath(new URL("../fixtures/cases/nc_f32/x.npy", import.meta.url));
      const r = traced(["forward", x, "--groups", "2", "--out-dir", out, "--quiet"]);
      expect(r.status).toBe(0);
      expect(r.files).toEqual(["main", "rolldown", "errors", "lib"]);
      expect(r.cached).toEqual(["main", "rolldown", "errors", "lib"]);
      // the caches a forward alone made at build (3 ms sooner than the shared ones, made by a process running every command)
      expect(r.caches).toEqual(["forward", "forward", "forward", "forward"]);
      // the command is the first argument that is not a flag (found by a review: a flag first took help's)
      expect(traced(["--no-color", "forward", x, "--groups", "2", "--out-dir", out, "--quiet"]).caches).toEqual(["forward", "forward", "forward", "forward"]);
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

// Node's own modules (process.moduleLoadList, written at exit by a preloaded script): commander's
// require of node:child_process (with net and dgram) waits in the bundle until a spawn, which
// groupnorm never makes; stdout and stderr are written with fs.writeSync (cli/stdio.ts), so Node's
// stream modules (and, for a pipe, net) load only for a progress bar or a pipe that would block.
describe("Node's modules: no child_process, no fs/promises, and no stream modules for what a run prints", () => {
  /** A run's Node modules, its stdout a pipe (a FIFO, as a shell's `| cat` makes) or a file. */
  function builtins(args: string[], into: "pipe" | "file" = "pipe"): { status: number | null; stdout: string; modules: Set<string> } {
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-builtins-"));
    try {
      const pre = join(dir, "pre.cjs"), list = join(dir, "list.txt"), file = join(dir, "stdout.txt"), status = join(dir, "status");
      writeFileSync(pre, `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join("\\n")));`);
      // sh -c SCRIPT node pre.cjs bin ARGS…: $0 is node, $1 the preload, then the command's argv
      const run = 'pre=$1; shift; "$0" -r "$pre" "$@"; echo $? > "$STATUS"';
      const script = into === "pipe" ? `{ ${run}; } | cat` : `{ ${run}; } > "$OUT"`;
      const r = spawnSync("sh", ["-c", script, process.execPath, pre, bin, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "", OUT: file, STATUS: status } });
      expect(r.stderr).toBe("");
      const modules = new Set(readFileSync(list, "utf8").split("\n").filter((l) => l.startsWith("NativeModule ")).map((l) => l.slice(13)));
      return { status: Number(readFileSync(status, "utf8")), stdout: into === "pipe" ? r.stdout : readFileSync(file, "utf8"), modules };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const x = fileURLToPath(new URL("../fixtures/cases/nc_f32/x.npy", import.meta.url));
  // fs/promises (with readline, the file watchers, fs/dir) is some 2 ms a run never needs: the I/O
  // layer reads and writes through io/handle.ts
  const NOT = ["child_process", "dgram", "net", "stream", "tty", "fs/promises", "internal/fs/promises", "internal/readline/interface"];
  it("--help into a pipe: the whole help, none of them", () => {
    const r = builtins(["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: groupnorm [\s\S]*\n {2}info \[options\] <X> [\s\S]*docs\/cli\.md/);
    for (const m of NOT) expect(r.modules.has(m), m).toBe(false);
  });
  it("a --quiet forward and a --json one into a pipe: none of them; the document whole", () => {
    const out = mkdtempSync(join(tmpdir(), "groupnorm-builtins-out-"));
    try {
      const quiet = builtins(["forward", x, "--groups", "2", "--out-dir", out, "--quiet"]);
      expect(quiet.status).toBe(0);
      expect(quiet.stdout).toBe("");
      for (const m of NOT) expect(quiet.modules.has(m), m).toBe(false);
      for (const into of ["pipe", "file"] as const) {
        const json = builtins(["forward", x, "--groups", "2", "--out-dir", out, "--json"], into);
        expect(json.status).toBe(0);
        expect(JSON.parse(json.stdout).command).toBe("forward");
        for (const m of NOT) expect(json.modules.has(m), `${m} (${into})`).toBe(false);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
  it("a reader that stops reading holds up no signal: SIGTERM ends the run at once, with its line", async () => {
    // info of a safetensors file of 4000 tensors lists them: some 300 KB, far more than a pipe holds
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-stall-"));
    try {
      const header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> = {};
      for (let i = 0; i < 4000; i++) header[`tensor_number_${String(i).padStart(5, "0")}_with_a_long_name`] = { dtype: "F32", shape: [2, 2], data_offsets: [16 * i, 16 * (i + 1)] };
      let json = JSON.stringify(header);
      json += " ".repeat((8 - (json.length % 8)) % 8);
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(json.length));
      const file = join(dir, "many.safetensors"), fifo = join(dir, "out");
      writeFileSync(file, Buffer.concat([size, Buffer.from(json), Buffer.alloc(16 * 4000)]));
      expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK); // there, never reading
      const writer = openSync(fifo, "w");
      try {
        const child = spawn(process.execPath, [bin, "info", file], { stdio: ["ignore", writer, "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        // "close": the process ended and its stderr is read to the end
        const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
        await new Promise((r) => setTimeout(r, 1500)); // the pipe is full by now
        const t0 = Date.now();
        child.kill("SIGTERM");
        const end = await Promise.race([ended, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
        if (!end) child.kill("SIGKILL");
        expect(end, "still running 5 s after SIGTERM").not.toBe(null);
        expect(end!.signal).toBe("SIGTERM");
        expect(Date.now() - t0).toBeLessThan(5000);
        expect(stderr).toMatch(/^groupnorm: interrupted by SIGTERM: no output written\n$/);
      } finally {
        closeSync(writer);
        closeSync(reader);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("a failing run still says why on stderr", () => {
    const r = spawnSync(process.execPath, [bin, "forward", "/nonexistent/x.npy", "--groups", "2", "--quiet"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^groupnorm: error: .*x\.npy/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});

// The top-level help lists the commands as made for it (cli/command.ts: MakeCommand's `listed`: no
// flag parsers, one Option for the "[options]" of a line); every line must be what the whole
// command would give, and `help NAME` still has all of NAME.
describe("the top-level help, from the commands as listed", () => {
  const ctx = { console: {}, exitCode: 0, engine: () => undefined } as unknown as Context;
  const whole = [forwardCommand, backwardCommand, verifyCommand, gradcheckCommand, compareCommand, rooflineCommand, infoCommand].map((make) => make(ctx));
  const flat = (s: string) => s.replace(/\s+/g, " ");
  it.each([["--help"], ["-h"], ["help"], ["--no-color", "--help"]])("groupnorm %s: each command's line as the whole command's term and description", (...args) => {
    const r = groupnorm(args);
    expect(r.status).toBe(0);
    const help = flat(r.stdout);
    const helper = new Help();
    for (const cmd of whole) expect(help, cmd.name()).toContain(flat(`${helper.subcommandTerm(cmd)} ${cmd.description()}`));
    expect(help).toMatch(/forward \[options\] <X> /);
  });
  it("help forward and help verify: the whole commands, every flag", () => {
    const forward = groupnorm(["help", "forward"]).stdout;
    for (const o of whole[0]!.options) expect(forward).toContain(o.flags);
    const verify = flat(groupnorm(["help", "verify"]).stdout);
    for (const sub of whole[2]!.commands) expect(verify).toContain(flat(`${new Help().subcommandTerm(sub)} ${sub.description()}`));
    const verifyBackward = groupnorm(["verify", "help", "backward"]).stdout;
    for (const o of whole[2]!.commands[1]!.options) expect(verifyBackward).toContain(o.flags);
  });
});
