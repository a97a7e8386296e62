/**
 * Long synchronous work in pieces that let the event loop run between them, so that a signal's
 * handler (which ends the run) runs within a few tens of milliseconds, however large the tensor.
 * A resolved promise is not enough: signals arrive through the event loop, not the microtask queue.
 */

/** Values a loop handles between two calls of `pace()`: a few milliseconds of work. */
export const PIECE = 1 << 16;
/**
 * …and through an activation, whose float64 reference costs up to ~100 times an affine step (gelu's
 * Φ from erfc's series or continued fraction: about 1 µs a value here), so that a piece stays a few
 * milliseconds too.
 */
export const ACTIVATION_PIECE = PIECE >> 5;

/** One turn of the event loop. */
export const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Pacer {
  #last = performance.now();
  constructor(private readonly ms = 20) {}

  /** Lets the event loop run when `ms` have passed since it last did; else resolves at once. */
  async pace(): Promise<void> {
    if (performance.now() - this.#last < this.ms) return;
    await breathe();
    this.#last = performance.now();
  }
}
