/** Seeded random numbers for gradcheck (reproducible from --seed). */

/** mulberry32: uniform in [0, 1). */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Normal values (Box–Muller) into `out`, each as `out` stores it (rounded to its element type). */
export function normalsInto(out: Float32Array | Float64Array | { length: number; [i: number]: number }, seed: number, scale = 1, offset = 0, store: (v: number) => number = (v) => v): void {
  const u = uniform(seed);
  for (let i = 0; i < out.length; i++) {
    const r = Math.sqrt(-2 * Math.log(Math.max(u(), 1e-300)));
    out[i] = store(offset + scale * r * Math.cos(2 * Math.PI * u()));
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
