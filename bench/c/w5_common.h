/* w5_common.h - W5 (threads): JOBS round trips of a trivial function to a
 * thread pool of THREADS threads, INFLIGHT of them outstanding at a time
 * (1: each job is submitted once the previous one came back, so the figure
 * is the full loop -> pool -> loop latency). Every program is called as
 *     prog W5 [jobs=N] [threads=N] [inflight=N]
 * checks the sum of the results and prints one RESULT line (bench/run). */
#ifndef RILL_BENCH_W5_H
#define RILL_BENCH_W5_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct w5_params {
  long jobs, threads, inflight;
} w5_params;

static inline double w5_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline w5_params w5_parse(int argc, char **argv) {
  w5_params p = {100000, 4, 1};
  if (argc < 2 || strcmp(argv[1], "W5") != 0) {
    fprintf(stderr, "usage: %s W5 [jobs=N] [threads=N] [inflight=N]\n", argv[0]);
    exit(1);
  }
  for (int i = 2; i < argc; i++) {
    long *dst = !strncmp(argv[i], "jobs=", 5)       ? &p.jobs
                : !strncmp(argv[i], "threads=", 8)  ? &p.threads
                : !strncmp(argv[i], "inflight=", 9) ? &p.inflight
                                                     : NULL;
    if (!dst) {
      fprintf(stderr, "bench: FAILED: unknown argument '%s'\n", argv[i]);
      exit(1);
    }
    *dst = atol(strchr(argv[i], '=') + 1);
  }
  if (p.jobs < 1 || p.threads < 1 || p.inflight < 1) {
    fprintf(stderr, "bench: FAILED: jobs, threads and inflight must be >= 1\n");
    exit(1);
  }
  return p;
}

/* The trivial function: job i gives i + 1. */
static inline long w5_expected_sum(long jobs) { return jobs * (jobs + 1) / 2; }

static inline void w5_result(const char *impl, const char *version, w5_params p, long sum,
                             double wall) {
  if (sum != w5_expected_sum(p.jobs)) {
    fprintf(stderr, "bench: FAILED: sum %ld, expected %ld\n", sum, w5_expected_sum(p.jobs));
    exit(1);
  }
  printf("RESULT workload=W5 impl=%s version=%s jobs=%ld threads=%ld inflight=%ld ops=%ld "
         "wall_s=%.6f ns_per_op=%.1f\n",
         impl, version, p.jobs, p.threads, p.inflight, p.jobs, wall, wall * 1e9 / (double)p.jobs);
}

#endif
