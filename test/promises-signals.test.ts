// Issue #14, signals, pipes and terminals: a closed or full stdout ends quietly or with one line,
// every signal that ends a run cleans up and says what is on disk, the terminal is restored, and
// names are quoted.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeNpyHeader, writeNpy } from "../src/io/npy/index.js";
import { bin, groupnorm } from "./helpers/cli.js";
import { randn } from "./helpers/random.js";
import { run, until } from "./helpers/spawn.js";

const root = mkdtempSync(join(tmpdir(), "groupnorm-signals-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let k = 0;
const fresh = () => {
  const d = join(root, String(k++));
  mkdirSync(d);
  return d;
};
const X = join(root, "x.npy");
await writeNpy(X, "float32", [2, 8, 4, 4], randn(256, 1));
/**
 * A 2 GiB float32 file of zeros without disk blocks: a run over it lasts several seconds, so that
 * the progress bar (drawn after a second) is up before the run ends; every run of it is interrupted.
 */
const BIG = join(root, "big.npy");
{
  const h = encodeNpyHeader("float32", [128, 256, 128, 128]);
  writeFileSync(BIG, h);
  truncateSync(BIG, h.length + 4 * 128 * 256 * 128 * 128);
}
const temporaries = (d: string) => readdirSync(d).filter((f) => f.endsWith(".tmp"));

describe("a closed or full stdout", () => {
  const commands: Array<[string, string[]]> = [
    ["info", ["info", X]],
    ["gradcheck", ["gradcheck", "--shape", "2,8,4,4", "--groups", "4"]],
    ["roofline", ["roofline", "--shape", "2,32,16,16", "--runs", "1"]],
    ["compare", ["compare", X, X]],
  ];
  it.each(commands)("%s | head -1: ends quietly, no stack trace, not exit 1", async (_name, args) => {
    // the reader is gone before the first line, as `| head -1` is after its line
    const r = await run(args, { with: (child) => child.stdout!.destroy() });
    expect(r.stderr).not.toMatch(/at |Error|EPIPE/);
    expect(r.status).toBe(0);
  });

  it("info > /dev/full: one line in words, exit 2", () => {
    const r = spawnSync("sh", ["-c", `exec "${process.execPath}" "${bin}" info "${X}" > /dev/full`], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("groupnorm: error: cannot write to standard output: no space left on the device\n");
  });
});

describe("signals", () => {
  it.each(["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const)("%s mid-run removes the temporaries, says no output was written, and ends by the signal", async (signal) => {
    const out = fresh();
    const r = await run(["forward", BIG, "--groups", "32", "--out-dir", out, "--threads", "1", "--memory", "64M"], {
      with: (child) => void until(() => temporaries(out).length > 0).then(() => child.kill(signal)),
    });
    expect(r.signal).toBe(signal);
    expect(r.stderr).toBe(`groupnorm: interrupted by ${signal}: no output written (the partial files are removed)\n`);
    expect(readdirSync(out)).toEqual([]);
  });

  it("after SIGKILL (which cannot be caught) the next run writing the same outputs removes the temporaries left", async () => {
    const out = fresh();
    const r = await run(["forward", BIG, "--groups", "32", "--out-dir", out, "--threads", "1", "--memory", "64M"], {
      with: (child) => void until(() => temporaries(out).length > 0).then(() => child.kill("SIGKILL")),
    });
    expect(r.signal).toBe("SIGKILL");
    expect(temporaries(out).length).toBeGreaterThan(0);
    expect(groupnorm(["forward", X, "--groups", "4", "--out-dir", out]).status).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["Y.npy", "mean.npy", "rstd.npy"]);
  });

  it("SIGTERM at random moments: the message always says what is on disk, nothing partial is ever left", async () => {
    for (let i = 0; i < 24; i++) {
      const out = join(fresh(), "made", "here");
      const delay = 20 + ((i * 37) % 24) * 15; // 20 … 365 ms, spread over start-up, the run and the exit
      const r = await run(["forward", X, "--groups", "4", "--out-dir", out], { with: (child) => setTimeout(() => child.kill("SIGTERM"), delay) });
      const written = existsSync(out) ? readdirSync(out).sort() : null;
      expect(temporaries(join(out, "..", "..")).length).toBe(0);
      if (r.status === 0) expect(written).toEqual(["Y.npy", "mean.npy", "rstd.npy"]);
      else {
        expect(r.signal).toBe("SIGTERM");
        // killed before its handlers were installed, or after they are gone as the process ends (no
        // message: nothing written, or the outputs whole), or with nothing written: not even the
        // folders it made
        if (r.stderr === "") expect([null, "Y.npy,mean.npy,rstd.npy"]).toContain(written?.join(",") ?? null);
        else if (/no output written/.test(r.stderr)) expect(written).toBeNull();
        else {
          expect(r.stderr).toMatch(/interrupted by SIGTERM: the outputs were complete on disk before it/);
          expect(written).toEqual(["Y.npy", "mean.npy", "rstd.npy"]);
        }
      }
    }
  });
});

describe("the terminal", () => {
  const python = spawnSync("python3", ["-c", "import pty"]).status === 0;
  it.runIf(python)("Ctrl-C during a progress bar shows the cursor and turns line wrap back on", () => {
    // run in a pseudo-terminal; interrupt once the bar has hidden the cursor
    const script = `
import json, os, pty, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
deadline = time.time() + 30
sent = False
while time.time() < deadline:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
    if not sent and b"\\x1b[?25l" in out:
        os.kill(pid, signal.SIGINT)
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"sent": sent, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, "out": out.decode("latin1")}))
`;
    const r = spawnSync("python3", ["-c", script, process.execPath, bin, "forward", BIG, "--groups", "32", "--out-dir", fresh(), "--threads", "1", "--memory", "64M"], { encoding: "utf8", timeout: 60_000 });
    const { sent, signal, out: text } = JSON.parse(r.stdout) as { sent: boolean; signal: number | null; out: string };
    expect(sent).toBe(true);
    expect(signal).toBe(2); // SIGINT
    const hid = text.lastIndexOf("\u001b[?25l"), shown = text.lastIndexOf("\u001b[?25h");
    expect(hid).toBeGreaterThanOrEqual(0);
    expect(shown).toBeGreaterThan(hid);
    expect(text.lastIndexOf("\u001b[?7h")).toBeGreaterThan(text.lastIndexOf("\u001b[?7l"));
    expect(text).toMatch(/interrupted by SIGINT/);
  });
});

describe("names and header text are quoted, never echoed raw", () => {
  it("an ESC sequence or a newline in a file name stays inside one quoted, escaped line", () => {
    const d = fresh();
    for (const name of ["bad\u001b[31mred.npy", "two\nlines.npy"]) {
      writeFileSync(join(d, name), "not a tensor at all");
      const r = groupnorm(["info", name], { cwd: d });
      expect(r.status).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\u001b/);
      expect(r.stderr).toMatch(name.includes("\n") ? /^groupnorm: error: \$'two\\nlines\.npy': is a text file/ : /^groupnorm: error: \$'bad\\e\[31mred\.npy': is a text file/);
    }
  });

  it("control characters in a header's descr are escaped", () => {
    const d = fresh();
    const dict = "{'descr': '<f4\u001b]0;owned\u0007', 'fortran_order': False, 'shape': (2,), }";
    const body = dict + " ".repeat(64 - ((10 + dict.length + 1) % 64)) + "\n";
    writeFileSync(join(d, "h.npy"), Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, body.length & 0xff, body.length >> 8]), Buffer.from(body, "latin1"), Buffer.alloc(8)]));
    const r = groupnorm(["forward", join(d, "h.npy"), "--groups", "1"], { cwd: d });
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(r.stderr).toMatch(/\\e\]0;owned\\x07/);
  });
});
