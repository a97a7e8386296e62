/** Seeded random numbers for gradcheck (reproducible from --seed). */
import { type Pacer, PIECE } from "./pace.js";

const MULBERRY = 0x6d2b79f5;

/** mulberry32's output for state a: uniform in [0, 1). */
function mix(a: number): number {
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** mulberry32: uniform in [0, 1). */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + MULBERRY) >>> 0;
    return mix(a);
  };
}

/** The stream's state after `count` values (two uniforms each) from `state`. */
export function skip(state: number, count: number): number {
  return (state + Math.imul((2 * count) % 4294967296, MULBERRY)) >>> 0;
}

type Stored = Float32Array | Float64Array | Uint16Array | { length: number; [i: number]: number };

/**
 * One seeded stream of normal values (Box–Muller, two uniforms each), taken in order: each fill()
 * writes out[from, to) with the next values, each as `out` stores it (rounded to its element type,
 * after `store` when given). Filling an array in pieces gives exactly the values of filling it at once.
 */
class NormalStream {
  #a: number;
  constructor(seed: number, private readonly scale: number, private readonly offset: number, private readonly store: ((v: number) => number) | null) {
    this.#a = seed >>> 0;
  }

  fill(out: Stored, from: number, to: number): void {
    const { scale, offset, store } = this;
    let a = this.#a;
    for (let i = from; i < to; i++) {
      a = (a + MULBERRY) >>> 0;
      const r = Math.sqrt(-2 * Math.log(Math.max(mix(a), 1e-300)));
      a = (a + MULBERRY) >>> 0;
      const v = offset + scale * r * Math.cos(2 * Math.PI * mix(a));
      out[i] = store ? store(v) : v;
    }
    this.#a = a;
  }
}

/** Value i of the stream of `seed` into out[i] (as normalsInto would put it there). */
export function normalAt(out: Stored, i: number, seed: number, scale = 1, offset = 0, store: ((v: number) => number) | null = null): void {
  new NormalStream(skip(seed >>> 0, i), scale, offset, store).fill(out, i, i + 1);
}

/** Normal values (Box–Muller) into `out`, each as `out` stores it (rounded to its element type). */
export function normalsInto(out: Stored, seed: number, scale = 1, offset = 0, store: ((v: number) => number) | null = null): void {
  new NormalStream(seed, scale, offset, store).fill(out, 0, out.length);
}

/** normalsInto in pieces, letting the event loop run between them (the same values). */
export async function normalsIntoPaced(out: Stored, pacer: Pacer, seed: number, scale = 1, offset = 0, store: ((v: number) => number) | null = null): Promise<void> {
  const stream = new NormalStream(seed, scale, offset, store);
  for (let i = 0; i < out.length; i += PIECE) {
    stream.fill(out, i, Math.min(out.length, i + PIECE));
    await pacer.pace();
  }
}

/** Standard normal values (Box–Muller). */
export function normals(n: number, seed: number, scale = 1, offset = 0): Float64Array {
  const out = new Float64Array(n);
  normalsInto(out, seed, scale, offset);
  return out;
}

/** All of 0..n−1 when n ≤ k, else k distinct indices (sorted), reproducible from the seed. */
export function sampleIndices(n: number, k: number, seed: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  const u = uniform(seed ^ 0x9e3779b9);
  const chosen = new Set<number>();
  while (chosen.size < k) chosen.add(Math.floor(u() * n));
  return [...chosen].sort((a, b) => a - b);
}
