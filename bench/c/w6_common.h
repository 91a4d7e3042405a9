/* w6_common.h - W6 (queue): ITEMS integers 1..ITEMS through a queue of
 * MAXSIZE items (1: every put waits for the consumer) from one producer
 * task to one consumer task, on one thread. Every program is called as
 *     prog W6 [items=N] [maxsize=N]
 * checks the consumer's sum and prints one RESULT line (bench/w6/run_w6.sh). */
#ifndef RILL_BENCH_W6_H
#define RILL_BENCH_W6_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct w6_params {
  long items, maxsize;
} w6_params;

static inline double w6_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void w6_fail(const char *what) {
  fprintf(stderr, "bench: FAILED: %s\n", what);
  exit(1);
}

static inline w6_params w6_parse(int argc, char **argv) {
  w6_params p = {1000000, 1};
  if (argc < 2 || strcmp(argv[1], "W6") != 0) {
    fprintf(stderr, "usage: %s W6 [items=N] [maxsize=N]\n", argv[0]);
    exit(1);
  }
  for (int i = 2; i < argc; i++) {
    long *dst = !strncmp(argv[i], "items=", 6)     ? &p.items
                : !strncmp(argv[i], "maxsize=", 8) ? &p.maxsize
                                                   : NULL;
    if (!dst) {
      fprintf(stderr, "bench: FAILED: unknown argument '%s'\n", argv[i]);
      exit(1);
    }
    *dst = atol(strchr(argv[i], '=') + 1);
  }
  if (p.items < 1 || p.maxsize < 1) w6_fail("items and maxsize must be >= 1");
  return p;
}

static inline long long w6_expected_sum(long items) { return (long long)items * (items + 1) / 2; }

static inline void w6_result(const char *impl, const char *version, w6_params p, long long sum,
                             double wall) {
  if (sum != w6_expected_sum(p.items)) {
    fprintf(stderr, "bench: FAILED: sum %lld, expected %lld\n", sum, w6_expected_sum(p.items));
    exit(1);
  }
  printf("RESULT workload=W6 impl=%s version=%s items=%ld maxsize=%ld ops=%ld wall_s=%.6f "
         "ns_per_op=%.1f\n",
         impl, version, p.items, p.maxsize, p.items, wall, wall * 1e9 / (double)p.items);
}

#endif
