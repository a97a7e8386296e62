#!/usr/bin/env node
// Compiles src/assembly/index.ts (the entry of the kernel files in src/assembly/) to build/kernels.wasm
// (run by `npm install` through `prepare`).
// The module imports one shared memory (up to 4 GiB) so every worker thread runs on the same bytes.
import { main } from "assemblyscript/asc";
import { mkdirSync } from "node:fs";

mkdirSync(new URL("../build/", import.meta.url), { recursive: true });
const { error, stderr } = await main([
  "src/assembly/index.ts",
  "--outFile", "build/kernels.wasm",
  "--textFile", "build/kernels.wat",
  "--optimizeLevel", "3",
  "--shrinkLevel", "0",
  "--noAssert",
  "--runtime", "stub",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory", "1",
  "--maximumMemory", "65536",
  "--enable", "simd,threads",
  "--memoryBase", "0",
]);
if (error) {
  console.error(stderr.toString());
  console.error(`build-wasm: ${error.message}`);
  process.exit(1);
}
