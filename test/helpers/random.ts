/** Seeded normal random numbers (the production generator of gradcheck, src/checks/random.ts) and error measures for tests. */
export { normals as randn } from "../../src/checks/random.js";

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
