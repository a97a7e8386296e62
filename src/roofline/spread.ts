/**
 * The spread of a timed figure over its runs: best, median, 90th percentile and coefficient of
 * variation, from the run times (seconds). Pure, so tests feed fixed timings.
 */

export interface Spread {
  runs: number;
  /** The figure from the fastest run (the headline, as STREAM reports). */
  best: number;
  median: number;
  /** The figure from the 90th-percentile run time: 90% of the runs did at least this well. */
  p90: number;
  /** Standard deviation of the run times over their mean (0 for one run). */
  cv: number;
}

/** The coefficient of variation above which a figure is called noisy (5%). */
export const NOISY_CV = 0.05;

/** Linear-interpolation percentile (NumPy's default) of `v`, q in [0, 1]. */
export function percentile(v: readonly number[], q: number): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const at = q * (s.length - 1), lo = Math.floor(at), hi = Math.ceil(at);
  return s[lo] + (s[hi] - s[lo]) * (at - lo);
}

/** Sample standard deviation over the mean; 0 for fewer than two runs. */
export function coefficientOfVariation(v: readonly number[]): number {
  if (v.length < 2) return 0;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1));
  return mean > 0 ? sd / mean : 0;
}

/** The spread of the run times themselves (seconds: best is the shortest, p90 the 90th percentile). */
export function timeSpread(seconds: readonly number[]): Spread {
  return { runs: seconds.length, best: Math.min(...seconds), median: percentile(seconds, 0.5), p90: percentile(seconds, 0.9), cv: coefficientOfVariation(seconds) };
}

/** The spread of a rate (work per second: GB/s for bytes/1e9, GFLOP/s) from the run times. */
export function rateSpread(work: number, seconds: readonly number[]): Spread {
  const t = timeSpread(seconds);
  return { runs: t.runs, best: work / t.best, median: work / t.median, p90: work / t.p90, cv: t.cv };
}

/** A rate with its spread. */
export interface Rate {
  /** The best run's figure (as before: what the tables and roofs show). */
  gbps: number;
  spread: Spread;
}

export function gbpsOf(bytes: number, seconds: readonly number[]): Rate {
  const spread = rateSpread(bytes / 1e9, seconds);
  return { gbps: spread.best, spread };
}

/** "noisy host" warning for the figures whose runs vary more than NOISY_CV, or null. */
export function noisyWarning(figures: Array<{ name: string; spread: Spread }>): string | null {
  const noisy = figures.filter((f) => f.spread.runs > 1 && f.spread.cv > NOISY_CV).sort((a, b) => b.spread.cv - a.spread.cv);
  if (noisy.length === 0) return null;
  const worst = noisy[0];
  const list = noisy.slice(0, 4).map((f) => `${f.name} ${(f.spread.cv * 100).toFixed(0)}%`).join(", ");
  return `noisy host: ${noisy.length} figure${noisy.length > 1 ? "s" : ""} vary by more than ${NOISY_CV * 100}% between runs (coefficient of variation: ${list}${noisy.length > 4 ? ", …" : ""}; ${worst.name}'s 90th-percentile run is ${((1 - worst.spread.p90 / worst.spread.best) * 100).toFixed(0)}% below its best): compare medians of several runs`;
}
