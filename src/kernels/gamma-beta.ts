/** The last step of the backward, on the caller's thread: the per-channel reduction over n. */
import { type Geometry, interleavedGroups } from "./plan.js";

/**
 * Gamma/beta backward: dγ_c = Σ_n rstd(n, g)·ds(n, c), dβ_c = Σ_n db(n, c), summed over n in order
 * (callers streaming slices along N continue the same running sums, so the order never changes).
 */
export function gammaBetaBackward(
  j: Geometry,
  ds: Float64Array,
  db: Float64Array,
  rstd: Float64Array,
  dgamma: Float64Array,
  dbeta: Float64Array,
): void {
  const interleaved = interleavedGroups(j);
  for (let n = 0; n < j.N; n++) {
    for (let c = 0; c < j.C; c++) {
      const g = interleaved ? c % j.G : Math.floor(c / j.D);
      dgamma[c] += rstd[n * j.G + g] * ds[n * j.C + c];
      dbeta[c] += db[n * j.C + c];
    }
  }
}
