/** Seeded normal random numbers for tests (mulberry32 + Box–Muller). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u = Math.max(uniform(), 1e-300);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

export function randn(n: number, seed: number, scale = 1, offset = 0): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = offset + scale * r();
  return out;
}

/** max |a − b| / max |b| over finite entries; NaN positions must agree. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i]) || !Number.isFinite(b[i])) {
      if (Number.isFinite(a[i])) return Infinity;
      continue;
    }
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

/**
 * Normwise relative error over the entries `expected` has finite; where `expected` is NaN or ±Inf,
 * `actual` must be non-finite too (else Infinity is returned).
 */
export function compareFinite(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  return relError(actual, expected);
}
