/* bench_common.h - argument parsing, clock and the RESULT line shared by the
 * C and C++ workload programs (BENCHMARKS.md W1-W3).
 *
 * Every program is called as
 *     prog W1|W2|W3 [tasks=N] [iters=N] [delay=SECONDS] [stack=BYTES]
 * and prints exactly one line on stdout:
 *     RESULT workload=W1 impl=... version=... tasks=N iters=N ops=N wall_s=... ns_per_op=...
 * after checking its own results; on any failure it prints why on stderr
 * and exits with status 1, so a broken implementation never looks fast. */
#ifndef RILL_BENCH_COMMON_H
#define RILL_BENCH_COMMON_H

/* C files define _POSIX_C_SOURCE 200809L before any include (clock_gettime
 * under -std=c11). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_params {
  const char *workload; /* "W1", "W2" or "W3" */
  long tasks;           /* concurrent tasks */
  long iters;           /* W1: sleep(0) per task */
  double delay;         /* W3: seconds each task sleeps */
  long stack;           /* rill C coroutines: stack size (0: rill's default) */
} bench_params;

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static inline void bench_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: FAILED: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static inline long bench_parse_long(const char *key, const char *text) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end != '\0' || v < 0)
    bench_fail("bad value for %s: '%s'", key, text);
  return v;
}

/* Defaults are BENCHMARKS.md's sizes; the runner always passes them
 * explicitly so that one table in bench/run decides them. */
static inline bench_params bench_parse_args(int argc, char **argv) {
  bench_params p;
  p.workload = NULL;
  p.tasks = -1;
  p.iters = 1000;
  p.delay = 0.05;
  p.stack = 0;
  if (argc < 2) bench_fail("usage: %s W1|W2|W3 [tasks=N] [iters=N] [delay=S] [stack=BYTES]", argv[0]);
  p.workload = argv[1];
  if (strcmp(p.workload, "W1") && strcmp(p.workload, "W2") && strcmp(p.workload, "W3"))
    bench_fail("unknown workload '%s' (W1, W2 or W3)", p.workload);
  for (int i = 2; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!eq) bench_fail("argument '%s' is not key=value", argv[i]);
    size_t klen = (size_t)(eq - argv[i]);
    const char *val = eq + 1;
    if (klen == 5 && !strncmp(argv[i], "tasks", 5)) {
      p.tasks = bench_parse_long("tasks", val);
    } else if (klen == 5 && !strncmp(argv[i], "iters", 5)) {
      p.iters = bench_parse_long("iters", val);
    } else if (klen == 5 && !strncmp(argv[i], "delay", 5)) {
      char *end = NULL;
      p.delay = strtod(val, &end);
      if (end == val || *end != '\0' || !(p.delay >= 0)) bench_fail("bad delay '%s'", val);
    } else if (klen == 5 && !strncmp(argv[i], "stack", 5)) {
      p.stack = bench_parse_long("stack", val);
    } else {
      bench_fail("unknown argument '%s'", argv[i]);
    }
  }
  if (p.tasks < 0) p.tasks = strcmp(p.workload, "W1") == 0 ? 1000 : 100000;
  if (p.tasks == 0) bench_fail("tasks must be > 0");
  if (!strcmp(p.workload, "W1") && p.iters == 0) bench_fail("W1 needs iters > 0");
  return p;
}

/* Operations the ns_per_op figure divides by: switches for W1, tasks else. */
static inline long bench_ops(const bench_params *p) {
  return strcmp(p->workload, "W1") == 0 ? p->tasks * p->iters : p->tasks;
}

static inline void bench_print_result(const bench_params *p, const char *impl,
                                      const char *version, double wall_s, const char *extra) {
  long ops = bench_ops(p);
  printf("RESULT workload=%s impl=%s version=%s tasks=%ld iters=%ld delay=%g ops=%ld "
         "wall_s=%.6f ns_per_op=%.2f%s%s\n",
         p->workload, impl, version, p->tasks, p->iters, p->delay, ops, wall_s,
         wall_s * 1e9 / (double)ops, extra && *extra ? " " : "", extra ? extra : "");
  fflush(stdout);
}

#endif
