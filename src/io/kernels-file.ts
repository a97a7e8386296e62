/**
 * The kernels' file, build/kernels.wasm (made from src/assembly by `npm install`), read and compiled.
 * Here, in the I/O layer and apart from the kernels, so that the command line can start compiling
 * it before it loads the engine (compileKernelsFile) and the engine compile it when nothing did.
 */
import { readFileSync } from "node:fs";

/** build/kernels.wasm's bytes; a missing file says how to make it. */
export function readKernelsFile(): Buffer {
  const url = new URL("../../build/kernels.wasm", import.meta.url);
  try {
    return readFileSync(url);
  } catch (e) {
    throw new Error(`cannot read ${url.pathname}: run 'npm run build' (${(e as Error).message})`);
  }
}

/** The one compile of a process (several main() calls in one process share it). */
let compiling: Promise<WebAssembly.Module | null> | null = null;

/**
 * Compile the kernels on V8's background threads (WebAssembly.compile), while the calling thread
 * goes on (the command line: loading the engine's modules, some 5 ms); null when the file cannot be
 * read or compiled, so that the engine's own compile reports why.
 */
export function compileKernelsFile(): Promise<WebAssembly.Module | null> {
  compiling ??= (() => {
    try {
      return WebAssembly.compile(readKernelsFile()).catch(() => null);
    } catch {
      return Promise.resolve(null);
    }
  })();
  return compiling;
}
