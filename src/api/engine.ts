/**
 * Engines for library callers. An engine owns one shared WebAssembly memory and, for more than one
 * thread, a pool of worker threads; calls on one engine run one at a time, in order. The default
 * engines (one per thread count, made on first use) never keep the process alive: their workers are
 * unreferenced while idle, so a script that calls groupNorm once exits by itself. Callers who run
 * many calls, or want the workers gone at a known point, create their own with createEngine().
 */
import { availableParallelism } from "node:os";
import { InputError } from "../errors.js";
import { addressSpaceLimit, virtualSize } from "../io/limits.js";
import { Engine, type EngineOptions as KernelEngineOptions, type PoolUse } from "../kernels/engine.js";
import { MAX_THREADS } from "../core/threads.js";
export { adoptKernelModule } from "../kernels/wasm.js";

export type { PoolUse };

export interface EngineOptions {
  /**
   * The most compute threads a call uses (default: the available cores); 1 computes on the calling
   * thread. With more, a call too small to gain from them computes on the calling thread all the
   * same, and the worker threads start at the first call large enough (see `pool`).
   */
  threads?: number;
  /**
   * "auto" (default): worker threads only for the work a single thread would finish later (the
   * crossover measured in docs/performance.md); "always": every call on `threads` worker threads,
   * started with the engine. Results are bitwise the same either way.
   */
  pool?: PoolUse;
}


/**
 * Address space an engine reserves: V8 reserves 10 GiB for every WebAssembly memory (its guard
 * regions) and about 0.6 GiB for each worker thread (measured: 11.0 GiB for one thread, 15.6 for 8).
 */
const WASM_RESERVATION = 10 * 2 ** 30 + 100 * 2 ** 20;
const PER_WORKER = 620 * 2 ** 20;

function reservation(threads: number): number {
  return WASM_RESERVATION + (threads > 1 ? threads * PER_WORKER : 0);
}

/**
 * The thread count to use: `threads` checked (1 to 256; default the available cores), and checked
 * against an address-space limit (ulimit -v), under which V8 would abort the process. A default
 * count is lowered to what fits; an explicit one that does not fit is refused, saying what would.
 */
export function checkThreads(threads: number | undefined, what = "threads", limit = addressSpaceLimit(), usedNow?: number): number {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    throw new InputError(`${what} must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  }
  const wanted = threads ?? availableParallelism();
  if (limit === null) return wanted;
  const used = usedNow ?? virtualSize() ?? 0; // /proc/self/status, read only under a limit
  if (used + reservation(wanted) <= limit) return wanted;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  let fits = 0;
  for (let t = wanted - 1; t >= 1 && !fits; t--) if (used + reservation(t) <= limit) fits = t;
  if (threads === undefined && fits) return fits;
  const why = `the address space is limited to ${gib(limit)} (ulimit -v) and ${gib(used)} is in use; a WebAssembly memory reserves 10 GiB of it, and each worker thread about 0.6 GiB`;
  if (!fits) throw new InputError(`${why}: groupnorm needs about ${gib(used + reservation(1))}; raise ulimit -v`);
  throw new InputError(`${why}: ${what} ${wanted} needs about ${gib(used + reservation(wanted))}; use ${what} ${fits}${fits === 1 ? "" : " or fewer"}, or raise ulimit -v`);
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
  if (options.pool !== undefined && options.pool !== "auto" && options.pool !== "always") throw new InputError(`pool must be "auto" or "always", got ${JSON.stringify(options.pool)}`);
  return new GroupNormEngine({ threads: checkThreads(options.threads), pool: options.pool });
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
