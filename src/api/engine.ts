/**
 * Engines for library callers. An engine owns one shared WebAssembly memory and, for more than one
 * thread, a pool of worker threads; calls on one engine run one at a time, in order. The default
 * engines (one per thread count, made on first use) never keep the process alive: their workers are
 * unreferenced while idle, so a script that calls groupNorm once exits by itself. Callers who run
 * many calls, or want the workers gone at a known point, create their own with createEngine().
 */
import { availableParallelism } from "node:os";
import { InputError } from "../errors.js";
import { Engine, type EngineOptions as KernelEngineOptions } from "../kernels/engine.js";
import { MAX_THREADS } from "../kernels/pool/protocol.js";

export interface EngineOptions {
  /** Compute threads (default: the available cores); 1 computes on the calling thread. */
  threads?: number;
}


export function checkThreads(threads: number | undefined, what = "threads"): number {
  if (threads === undefined) return availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new InputError(`${what} must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  }
  return threads;
}

export class GroupNormEngine {
  readonly threads: number;
  readonly #engine: Engine;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** @internal Use createEngine(). */
  constructor(options: KernelEngineOptions & { threads: number }) {
    this.#engine = new Engine(options);
    this.threads = this.#engine.threads;
  }

  /** @internal Run `f` with this engine to itself (after every call queued before it). */
  use<T>(f: (engine: Engine) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("this groupnorm engine is closed"));
    const run = this.#queue.then(() => f(this.#engine));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Stop the worker threads (after the calls already queued); the engine takes no more calls. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await this.#engine.close();
  }
}

/** An engine with its own threads, kept until close(). */
export function createEngine(options: EngineOptions = {}): GroupNormEngine {
  return new GroupNormEngine({ threads: checkThreads(options.threads) });
}

const defaults = new Map<number, GroupNormEngine>();

/** The shared engine for a thread count: made on first use, never keeps the process alive. */
export function defaultEngine(threads?: number): GroupNormEngine {
  const t = checkThreads(threads);
  let e = defaults.get(t);
  if (!e) {
    e = new GroupNormEngine({ threads: t, unref: true });
    defaults.set(t, e);
  }
  return e;
}

/** Run `f` on the caller's engine, or on the default engine for `threads`. */
export function withEngine<T>(o: { engine?: GroupNormEngine; threads?: number }, f: (engine: Engine) => Promise<T>): Promise<T> {
  return (o.engine ?? defaultEngine(o.threads)).use(f);
}
