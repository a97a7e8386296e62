/* A STREAM-style bandwidth probe (copy, add, triad, read) for `npm run bench`: OpenMP threads,
 * float64 arrays of 4x the last-level cache or more, best of repeated runs, GB/s = 1e9 bytes/s
 * counted as STREAM does (copy 2 arrays, add/triad 3, read 1). Not part of the tool itself.
 * usage: stream [elements per array] [repetitions] */
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

static double now(void) { return omp_get_wtime(); }

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 40L * 1000 * 1000;
  int reps = argc > 2 ? atoi(argv[2]) : 20;
  double *a = aligned_alloc(64, n * sizeof(double));
  double *b = aligned_alloc(64, n * sizeof(double));
  double *c = aligned_alloc(64, n * sizeof(double));
  if (!a || !b || !c) { fprintf(stderr, "stream: out of memory\n"); return 1; }
#pragma omp parallel for
  for (long i = 0; i < n; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.0; }
  double best[4] = {1e30, 1e30, 1e30, 1e30};
  volatile double sink = 0;
  for (int r = 0; r < reps; r++) {
    double t = now();
#pragma omp parallel for
    for (long i = 0; i < n; i++) c[i] = a[i];
    t = now() - t; if (t < best[0]) best[0] = t;
    t = now();
#pragma omp parallel for
    for (long i = 0; i < n; i++) c[i] = a[i] + b[i];
    t = now() - t; if (t < best[1]) best[1] = t;
    t = now();
#pragma omp parallel for
    for (long i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
    t = now() - t; if (t < best[2]) best[2] = t;
    t = now();
    double s = 0;
#pragma omp parallel for reduction(+:s)
    for (long i = 0; i < n; i++) s += a[i];
    t = now() - t; if (t < best[3]) best[3] = t;
    sink += s;
  }
  double bytes = (double)n * sizeof(double);
  printf("{\"threads\": %d, \"elements\": %ld, \"copy_gbps\": %.3f, \"add_gbps\": %.3f, \"triad_gbps\": %.3f, \"read_gbps\": %.3f}\n",
         omp_get_max_threads(), n, 2 * bytes / best[0] / 1e9, 3 * bytes / best[1] / 1e9, 3 * bytes / best[2] / 1e9,
         bytes / best[3] / 1e9);
  return sink == 42.0;
}
