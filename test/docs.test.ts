// The documents stay true: the README's JavaScript example runs as printed, every flag of every
// command is in docs/cli.md, and nothing refers users to files outside the repository.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { groupNormDims } from "../src/core/dims.js";
import { writeNpy } from "../src/io/npy/index.js";
import { NpzWriter } from "../src/io/npz/writer.js";
import { referenceBackward, referenceForward } from "../src/oracle/reference.js";
import { groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const read = (f: string) => readFileSync(`${root}${f}`, "utf8");
const COMMANDS = ["forward", "backward", "verify forward", "verify backward", "gradcheck", "compare", "info", "roofline"];
/** A command's section of docs/cli.md: from its "## " heading to the next. */
const section = (doc: string, command: string) => {
  const head = `\n## ${command.split(" ")[0]}\n`;
  const at = doc.indexOf(head);
  return at < 0 ? "" : doc.slice(at, doc.indexOf("\n## ", at + head.length) >>> 0);
};

describe("README", () => {
  it("its JavaScript example runs as printed and exits by itself", () => {
    const readme = read("README.md");
    const block = /## From JavaScript[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeTruthy();
    const r = spawnSync(process.execPath, ["--input-type=module"], { cwd: root, input: block, encoding: "utf8", timeout: 30_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe("8192 32 8192 64 64");
  });

  it("its script under 'Checking your implementation' writes every file it checks, and its verify commands pass on right outputs", async () => {
    const script = /## Checking your implementation[\s\S]*?```sh\n([\s\S]*?)```/.exec(read("README.md"))?.[1] ?? "";
    const commands = [...script.replace(/\\\n\s*/g, "").matchAll(/^groupnorm (verify .*?) \|\| status=\$\?$/gm)].map((m) => m[1]);
    expect(commands).toHaveLength(2);
    const written = new Set([...script.matchAll(/"(\w+)": /g)].map((m) => m[1]));
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-readme-"));
    try {
      // the files the script's Python writes, made here by the oracle (the right answers), in float32
      const shape = [4, 64, 16, 16], d = groupNormDims(shape, 32, "nchw"), size = 4 * 64 * 256;
      const x = Float32Array.from(randn(size, 1)), dy = Float32Array.from(randn(size, 2));
      const gamma = Float32Array.from(randn(64, 3)), beta = Float32Array.from(randn(64, 4));
      const f = referenceForward(x, d, gamma, beta, 1e-5);
      const b = referenceBackward(dy, x, d, gamma, f);
      const files: Record<string, [number[], ArrayLike<number>]> = {
        x: [shape, x], gamma: [[64], gamma], beta: [[64], beta], dy: [shape, dy], y: [shape, f.y], mean: [[4, 32], f.mean],
        rstd: [[4, 32], f.rstd], dx: [shape, b.dx], dgamma: [[64], b.dgamma], dbeta: [[64], b.dbeta],
      };
      for (const [name, [sh, v]] of Object.entries(files)) await writeNpy(join(dir, `${name}.npy`), "float32", sh, Float32Array.from(v));
      for (const command of commands) {
        const args = [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => (m[1] ?? m[2]).replace("$dir", dir));
        for (const a of args) if (a.startsWith(dir)) expect(written, a).toContain(a.slice(dir.length + 1, -4));
        const r = groupnorm(args);
        expect(r.stderr, command).toBe("");
        expect(r.status, `${command}\n${r.stdout}`).toBe(0);
        expect(r.stdout.trimEnd().split("\n").pop()).toBe("passed");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("its commands under 'Tensor files' run as printed on an .npz holding x, dy, gamma and beta, and write what they say", async () => {
    const block = /## Tensor files[\s\S]*?```sh\n([\s\S]*?)```/.exec(read("README.md"))?.[1] ?? "";
    const commands = block.replace(/\\\n\s*/g, "").split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l.startsWith("groupnorm "));
    expect(commands.length).toBeGreaterThanOrEqual(3);
    const dir = mkdtempSync(join(tmpdir(), "groupnorm-readme-npz-"));
    try {
      const shape = [2, 64, 4, 4], size = 2 * 64 * 16;
      const w = new NpzWriter({ path: join(dir, "run.npz"), temporary: true, display: "run.npz", scratch: () => join(dir, `.spill${Math.random()}`) }, false);
      const members: Array<[string, number[], number]> = [["x", shape, 1], ["dy", shape, 2], ["gamma", [64], 3], ["beta", [64], 4]];
      const sinks = members.map(([k, sh]) => w.add(k, "float32", sh));
      for (const [i, [, sh, seed]] of members.entries()) await sinks[i]!.write(Float32Array.from(randn(sh.reduce((a, b) => a * b, 1), seed)));
      await w.finish();
      expect(size).toBe(2048);
      for (const command of commands) {
        const r = groupnorm(command.split(/\s+/).slice(1), { cwd: dir });
        expect(r.stderr, command).toBe("");
        expect(r.status, command).toBe(0);
      }
      expect(groupnorm(["info", "fwd.npz", "--json"], { cwd: dir }).stdout).toMatch(/"name": "Y"/);
      expect(JSON.parse(groupnorm(["info", "grads.safetensors", "--json"], { cwd: dir }).stdout).tensors.map((t: { name: string }) => t.name)).toEqual(["dX", "dgamma", "dbeta"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the test command and every command", () => {
    const readme = read("README.md");
    expect(readme).toContain("npm test");
    for (const c of new Set(COMMANDS.map((c) => c.split(" ")[0]))) expect(readme).toContain(`### ${c}`);
  });
});

describe("docs/cli.md", () => {
  const doc = read("docs/cli.md");
  it.each(COMMANDS)("documents every flag of %s", (command) => {
    const help = groupnorm([...command.split(" "), "--help"]).stdout;
    const flags = [...help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]).filter((f) => f !== "--help");
    expect(flags.length).toBeGreaterThan(2);
    const own = section(doc, command);
    expect(own, command).not.toBe("");
    // the command's own flags in its section; those every command takes anywhere
    for (const f of flags) expect(["--json", "--quiet", "--no-color"].includes(f) ? doc : own, `${command} ${f}`).toContain(f);
  });
  it("every command's help ends with examples", () => {
    // examples, then at most a paragraph (when to use this command rather than another)
    for (const c of COMMANDS) expect(groupnorm([...c.split(" "), "--help"]).stdout, c).toMatch(/Examples:\n(  \$ groupnorm .+\n){2,3}(\n([^\s$].*\n)+)?\n?$/);
  });
});

it("nothing refers to files outside the repository", () => {
  const texts = ["README.md", "docs/cli.md", "docs/architecture.md", "docs/performance.md"].map(read);
  const help = COMMANDS.map((c) => groupnorm([...c.split(" "), "--help"]).stdout).join("\n") + groupnorm(["--help"]).stdout;
  for (const t of [...texts, help]) expect(t).not.toMatch(/SPEC\.md|\.\.\/shared|shared folder/);
});
