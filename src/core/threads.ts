/** The most threads an engine takes (the pool's limit; checked by the CLI's --threads). */
export const MAX_THREADS = 256;
