#!/usr/bin/env node
// The command line's bundled entry (`npm run build:bundle`, after build:ts): dist/cli/main.js and
// everything it imports statically, commander included, in one file, dist/bundle/main.cjs; what the
// commands import lazily (the engine, the pipeline, the file formats) in chunks beside it, loaded as
// before only by the commands that need them; and the pool's worker thread in one file of its own,
// dist/bundle/worker.js. Node loads each ES module separately (resolve, read, compile, link): the
// unbundled CLI's --help loaded 23 of them, a .npy forward 67, and each worker thread 13.
// The main thread's files are CommonJS so that bin/groupnorm.js can compile them with V8's code
// cache (vm.Script's cachedData; Node 20 has no compile cache for ES modules): the caches are made
// here, at the end, by running the command (FILE.COMMAND.cache per command, FILE.cache shared).
// The library (dist/index.js) stays unbundled. See docs/performance.md, section 9.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "rolldown";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}dist/bundle`;
rmSync(out, { recursive: true, force: true });
const common = { platform: "node", external: [/^node:/], logLevel: "warn", cwd: root };
// no comments in the output: less for V8 to scan at every start (the sources keep them)
const output = { dir: out, comments: false };
/** The modules `file` imports statically, and theirs (tsc's output: one `import … from "…"` a line). */
function staticClosure(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const m of readFileSync(file, "utf8").matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)";?$/gm)) staticClosure(join(dirname(file), m[1]), seen);
  return seen;
}
const entry = `${root}dist/cli/main.js`;
const start = staticClosure(entry);
const matching = (re) => (id) => !start.has(id) && re.test(id.replaceAll("\\", "/"));
// What --help needs stays in main.js (the lazy chunks import it from there). forward and backward
// load one more chunk, "lib" (the engine, the pipeline, the .npy format), rather than the dozen or
// so shared chunks rolldown would make of it; the container formats (and yauzl, zlib) and the pool
// (worker_threads) are chunks of their own, loaded only by a run that uses them; so are the other
// commands' own modules (verify, roofline, gradcheck, info, compare).
// commander requires node:child_process at load, for executable subcommands (which groupnorm has
// none of); it costs every run some 5–8 ms of loading child_process, net and dgram. In the bundle
// its spawn() loads the module when called, so the program behaves the same if one ever appears.
const lazyChildProcess = {
  name: "lazy-child-process",
  transform(code, id) {
    if (!/[\\/]commander[\\/]lib[\\/]command\.js$/.test(id)) return null;
    const eager = /const childProcess = require\((["'])node:child_process\1\);/;
    if (!eager.test(code)) throw new Error(`bundle: commander's require of node:child_process has changed (${id}); see lazyChildProcess`);
    return code.replace(eager, 'const childProcess = { spawn: (...a) => require("node:child_process").spawn(...a) };');
  },
};
// Node modules that main.cjs (all that --help runs) requires at load but only some runs use: in
// main.cjs each is required at its first property access (node:module, some 0.5 ms, is for
// createRequire of cli-progress, which only a progress bar loads).
const LAZY_IN_MAIN = ["node:module"];
const lazyBuiltins = {
  name: "lazy-builtins",
  renderChunk(code, chunk) {
    if (chunk.fileName !== "main.cjs") return null;
    let out = code;
    for (const id of LAZY_IN_MAIN) {
      const eager = new RegExp(`^let (\\w+) = require\\(${JSON.stringify(id).replaceAll("/", "\\/")}\\);$`, "m");
      const m = eager.exec(out);
      if (!m) continue; // main.cjs no longer requires it
      const uses = [...out.matchAll(new RegExp(`\\b${m[1]}\\b(.?)`, "g"))].slice(1);
      if (uses.some((u) => u[1] !== ".")) throw new Error(`bundle: main.cjs uses ${m[1]} other than by its properties; see lazyBuiltins`);
      out = out.replace(m[0], `let ${m[1]} = new Proxy({}, { get: (_, key) => require(${JSON.stringify(id)})[key] });`);
    }
    return out;
  },
};
await build({
  ...common,
  plugins: [lazyChildProcess, lazyBuiltins],
  input: { main: entry },
  preserveEntrySignatures: "allow-extension", // the chunks may import what main.js holds from it
  checks: { ineffectiveDynamicImport: false }, // io/inspect.js (info) imports the containers statically
  output: {
    ...output,
    format: "cjs",
    dynamicImportInCjs: false, // require() for the externals too: vm.Script has no import() of its own
    entryFileNames: "[name].cjs",
    chunkFileNames: "[name]-[hash].cjs",
    codeSplitting: {
      includeDependenciesRecursively: false, // a group takes what it matches, not what that imports
      groups: [
        { name: "containers", priority: 3, test: matching(/\/dist\/io\/(npz|safetensors)\/|\/dist\/io\/(inspect|container-writer)\.js$|\/node_modules\/(yauzl|buffer-crc32|pend)\//) },
        { name: "pool", priority: 2, test: matching(/\/dist\/kernels\/pool\/pool\.js$/) },
        { name: "lib", priority: 1, test: matching(/\/dist\/(kernels|pipeline|io|core|oracle)\/|\/dist\/api\/(engine|files|forward|backward|arrays|conventions)\.js$|\/dist\/checks\/(pace|random)\.js$|\/node_modules\/npyjs\//) },
      ],
    },
  },
});
// the worker on its own (no chunks shared with the main thread's: one file to load per thread)
await build({
  ...common,
  input: { worker: `${root}dist/kernels/pool/worker.js` },
  output: { ...output, format: "esm", entryFileNames: "[name].js", codeSplitting: false },
});

// Every file of the bundle in ASCII, each other character as its \u escape (in strings, templates
// and regular expressions alike): V8 keeps an ASCII source as a one-byte string, which Node reads
// and V8 scans faster (main.cjs and lib read in 0.3 ms each instead of 0.7–1.1, and compile some
// 10% sooner). An escape would change a tagged template's raw text, or mean something else after a
// backslash: such a file is refused. (Done on the files written: the same rewrite in a
// renderChunk hook did not reach them.)
for (const f of readdirSync(out).filter((f) => /\.c?js$/.test(f))) {
  const file = join(out, f), code = readFileSync(file, "utf8");
  if (!/[^\x00-\x7f]/.test(code)) continue;
  if (/String\.raw|\\[^\x00-\x7f]/.test(code)) throw new Error(`bundle: ${f} has String.raw or a backslash before a non-ASCII character: its \\u escapes could change what it means`);
  writeFileSync(file, code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

// V8's code caches of the files a run loads, with the functions it ran compiled (a file's cache is
// written at the process's exit): one process runs --help and a fixture's forward, backward, info
// and compare for the shared caches; then one process each for the commands' own (bin/groupnorm.js)
const scratch = mkdtempSync(join(tmpdir(), "groupnorm-bundle-"));
try {
  const fixture = (f) => `${root}fixtures/cases/nchw_big_f32/${f}.npy`;
  const runs = [
    ["--help"],
    ["forward", fixture("x"), "--groups", "8", "--out-dir", scratch, "--quiet"],
    ["backward", fixture("dy"), fixture("x"), "--groups", "8", "--gamma", fixture("gamma"), "--out-dir", scratch, "--quiet"],
    ["info", fixture("x")],
    ["compare", fixture("y"), fixture("y_torch_native"), "--quiet"],
  ];
  const make = (tag, list) => {
    const env = { ...process.env, GROUPNORM_CODE_CACHE: "write", GROUPNORM_CODE_CACHE_RUNS: JSON.stringify(list) };
    if (tag) env.GROUPNORM_CODE_CACHE_TAG = tag;
    else delete env.GROUPNORM_CODE_CACHE_TAG;
    execFileSync(process.execPath, [`${root}bin/groupnorm.js`], { env, stdio: "ignore" });
  };
  // the shared caches (FILE.cache: for the commands not run here), then each command's own
  // (FILE.COMMAND.cache: a fixture's forward started 3 ms sooner with its own than with the shared)
  make(null, runs);
  for (const args of runs) make(args[0] === "--help" ? "help" : args[0], [args]);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
