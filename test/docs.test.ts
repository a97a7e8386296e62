// The documents stay true: the README's JavaScript example runs as printed, every flag of every
// command is in docs/cli.md, and nothing refers users to files outside the repository.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { groupnorm } from "./helpers/cli.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const read = (f: string) => readFileSync(`${root}${f}`, "utf8");
const COMMANDS = ["forward", "backward", "gradcheck", "compare", "info", "roofline"];

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

  it("names the test command and every command", () => {
    const readme = read("README.md");
    expect(readme).toContain("npm test");
    for (const c of COMMANDS) expect(readme).toContain(`### ${c}`);
  });
});

describe("docs/cli.md", () => {
  const doc = read("docs/cli.md");
  it.each(COMMANDS)("documents every flag of %s", (command) => {
    const help = groupnorm([command, "--help"]).stdout;
    const flags = [...help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]).filter((f) => f !== "--help");
    expect(flags.length).toBeGreaterThan(2);
    expect(doc).toContain(`## ${command}`);
    for (const f of flags) expect(doc, `${command} ${f}`).toContain(f);
  });
  it("every command's help ends with examples", () => {
    for (const c of COMMANDS) expect(groupnorm([c, "--help"]).stdout).toMatch(/Examples:\n(  \$ groupnorm .+\n){2,3}\n?$/);
  });
});

it("nothing refers to files outside the repository", () => {
  const texts = ["README.md", "docs/cli.md", "docs/architecture.md", "docs/performance.md"].map(read);
  const help = COMMANDS.map((c) => groupnorm([c, "--help"]).stdout).join("\n") + groupnorm(["--help"]).stdout;
  for (const t of [...texts, help]) expect(t).not.toMatch(/SPEC\.md|\.\.\/shared|shared folder/);
});
