#!/usr/bin/env node
// Records the SHA-256 of every output the CLI writes for every fixture case (forward; backward with
// statistics recomputed; backward with the fixture's mean/rstd given) into outputs.json beside this
// file. Run once on a known-good build before a refactor; test/golden.test.ts re-runs the same
// commands and requires the same bytes.   usage: node test/golden/record.mjs
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { goldenRuns, hashRun } from "./runs.mjs";

const out = {};
for (const run of goldenRuns()) out[run.id] = await hashRun(run);
writeFileSync(fileURLToPath(new URL("./outputs.json", import.meta.url)), JSON.stringify(out, null, 1) + "\n");
console.log(`recorded ${Object.keys(out).length} runs`);
