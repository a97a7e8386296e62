#!/usr/bin/env node
// The command: runs the built CLI's bundle (scripts/bundle.js) and sets the exit status. CommonJS
// (bin/package.json), so that a run starts without Node's ES module loader, and compiles the
// bundle's files with the V8 code caches made at build time (Node 20 has no compile cache).
"use strict";
const argv = process.argv.slice(2);
if (!(argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V") && printVersion())) {
  // Node 22.1+ keeps compiled ES modules between runs (the pool's worker threads); Node 20 has no
  // such cache, and loading node:module to find that out would cost it most of a millisecond
  if (Number(process.versions.node.split(".")[0]) >= 22) require("node:module").enableCompileCache?.();
  const { main } = load(require("node:path").join(__dirname, "../dist/bundle/main.cjs"));
  if (process.env.GROUPNORM_CODE_CACHE === "write" && process.env.GROUPNORM_CODE_CACHE_RUNS) {
    // the build: several commands in one process (a JSON list of argvs), so that each file's code
    // cache holds the functions all of them ran (a file's cache is written when the process exits)
    (async () => {
      for (const args of JSON.parse(process.env.GROUPNORM_CODE_CACHE_RUNS)) process.exitCode ||= await main(args);
    })();
  } else {
    main(argv).then((status) => {
      process.exitCode = status;
    });
  }
}

/**
 * The version alone needs no command parser: the package file's, printed as commander would. True
 * when it is done: printed, or its reader gone (EPIPE: nothing to say, as for any output); any
 * other failure (a full disk, a pipe that would block) is left to the command, which says why.
 */
function printVersion() {
  try {
    require("node:fs").writeSync(1, `${require("../package.json").version}\n`);
    return true;
  } catch (e) {
    return e.code === "EPIPE";
  }
}

/**
 * Run a CommonJS file of the bundle (and, through its require, the chunks it loads) compiled with
 * a code cache when V8 accepts it (the same V8 and flags made it; otherwise it compiles as usual):
 * FILE.COMMAND.cache, made by a build process that ran that command alone, so that it holds just
 * what the command runs (V8 also drops the bytecode of functions long unused, so a process running
 * every command keeps less of each); else FILE.cache, made by one process running them all (for
 * the commands the build does not run). GROUPNORM_CODE_CACHE=write (the build) writes the caches of
 * the files a run loaded that have none, with what the run compiled (GROUPNORM_CODE_CACHE_RUNS: the
 * commands to run; GROUPNORM_CODE_CACHE_TAG: the COMMAND of their caches, else the shared ones);
 * GROUPNORM_TRACE_LOAD=1 (the tests) names each file loaded on stderr, and its cache.
 */
function load(file, loaded = new Map()) {
  const fs = require("node:fs"), path = require("node:path"), vm = require("node:vm");
  const write = process.env.GROUPNORM_CODE_CACHE === "write";
  // the command: the first argument that is not a flag (`--no-color forward x.npy` is a forward)
  const first = argv.find((a) => !a.startsWith("-")) ?? "";
  const tag = write ? process.env.GROUPNORM_CODE_CACHE_TAG : /^[a-z]+$/.test(first) ? first : "help";
  const read = (p) => {
    try {
      return fs.readFileSync(p);
    } catch {
      return undefined; // no such cache: the next, or compiled as usual
    }
  };
  const run = (f) => {
    let m = loaded.get(f);
    if (m) return m.exports;
    m = { exports: {} };
    loaded.set(f, m);
    const own = tag ? `${f}.${tag}.cache` : null, shared = `${f}.cache`;
    const cache = write ? (own ?? shared) : own && fs.existsSync(own) ? own : shared;
    const cachedData = write ? undefined : read(cache);
    const source = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(f, "utf8")}\n})`;
    const script = new vm.Script(source, { filename: f, cachedData });
    if (process.env.GROUPNORM_TRACE_LOAD === "1") process.stderr.write(`LOADED ${f}${cachedData && !script.cachedDataRejected ? ` (code cache ${path.basename(cache)})` : ""}\n`);
    if (write && !fs.existsSync(cache)) process.once("exit", () => fs.writeFileSync(cache, script.createCachedData()));
    // the bundle's other files by path; anything else is one of Node's modules (the bundle's only
    // externals), which this file's own require loads
    const local = (id) => (id.startsWith("./") && id.endsWith(".cjs") ? run(path.join(path.dirname(f), id)) : require(id));
    script.runInThisContext()(m.exports, local, m, f, path.dirname(f));
    return m.exports;
  };
  return run(file);
}
