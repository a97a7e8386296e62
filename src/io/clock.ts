/**
 * The host's monotonic clock, in milliseconds, for the phases a run reports (seconds.read, …).
 * process.hrtime rather than performance.now: Node loads perf_hooks (eleven of its own modules,
 * some 2 ms of every command's start here) for the first use of performance, and nothing else on
 * a forward or backward run needs them.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
