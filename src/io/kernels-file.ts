/**
 * The kernels' file, build/kernels.wasm (made from src/assembly by `npm install`), read and compiled.
 * Here, in the I/O layer and apart from the kernels, so that the command line can start compiling
 * it before it loads the engine (compileKernelsFile) and the engine compile it when nothing did.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * build/kernels.wasm's bytes; a missing file says how to make it. Found from this file's folder
 * (dist/io, or dist/bundle in the command line's bundle, where import.meta.dirname is __dirname):
 * by path rather than through a URL, whose first use costs every start most of a millisecond.
 */
export function readKernelsFile(): Buffer {
  // import.meta.dirname is Node 20.11's; before it, from the URL
  const path = join(import.meta.dirname ?? fileURLToPath(new URL(".", import.meta.url)), "../../build/kernels.wasm");
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: run 'npm run build' (${(e as Error).message})`);
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
