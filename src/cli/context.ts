/** What every command receives: the console and a way to get a compute engine. */
import type { GroupNormEngine } from "../api/engine.js";
import type { Console } from "./console.js";

export interface Context {
  console: Console;
  /** Exit status the command chose (0 unless set). */
  exitCode: number;
  /** An engine with `threads` threads (default: the available cores); closed by main when the command ends. */
  engine(threads: number | undefined): GroupNormEngine;
}
