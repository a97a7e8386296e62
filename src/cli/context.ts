/** What every command receives: the console and a way to get the compute engine. */
import { Engine } from "../kernels/engine.js";
import type { Console } from "./console.js";

export interface Context {
  console: Console;
  /** Exit status the command chose (0 unless set). */
  exitCode: number;
  /** An engine with `threads` threads; closed by main when the command ends. */
  engine(threads: number, cacheBytes?: number): Promise<Engine>;
}

/** The engine's worker threads start now and finish booting while the caller reads its inputs. */
export async function createEngine(threads: number, cacheBytes?: number, fault?: string): Promise<Engine> {
  return new Engine({ threads, cacheBytes, fault: fault === "trap" || fault === "exit" ? fault : undefined });
}
