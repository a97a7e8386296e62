#!/usr/bin/env node
// Thin shim: run the built CLI and set the exit status.
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
