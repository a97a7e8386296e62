#!/usr/bin/env node
// Thin shim: run the built CLI (its bundle, scripts/bundle.js) and set the exit status.
import module from "node:module";

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  // the version alone needs no command parser: the package file, read as commander would print it
  const { readFileSync } = await import("node:fs");
  process.stdout.write(`${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`);
} else {
  // Node 22.1+ keeps the compiled code of the modules between runs (Node 20 has no such cache)
  module.enableCompileCache?.();
  const { main } = await import("../dist/bundle/main.js");
  process.exitCode = await main(argv);
}
