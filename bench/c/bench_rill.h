/* bench_rill.h - checks shared by the two rill workload programs. */
#ifndef RILL_BENCH_RILL_H
#define RILL_BENCH_RILL_H

#include <rill.h>

#include "bench_common.h"

/* What the workers record, so that main can prove the work was done. */
typedef struct bench_state {
  bench_params p;
  long steps;            /* W1: resumes after a yield, summed over tasks */
  long finished;         /* workers that reached their end */
  double min_sleep_real; /* W3: shortest sleep seen on CLOCK_MONOTONIC */
  double min_sleep_loop; /* W3: the same on rill_loop_time's clock */
  int verified;          /* main checked every result */
} bench_state;

static inline void bench_state_init(bench_state *s, bench_params p) {
  memset(s, 0, sizeof *s);
  s->p = p;
  s->min_sleep_real = 1e300;
  s->min_sleep_loop = 1e300;
}

static inline void bench_note_sleep(bench_state *s, double real_s, double loop_s) {
  if (real_s < s->min_sleep_real) s->min_sleep_real = real_s;
  if (loop_s < s->min_sleep_loop) s->min_sleep_loop = loop_s;
}

/* Tolerance of the real-clock check of W3: the coarsest timer granularity
 * among the peers (libuv counts in milliseconds). The loop-clock check is
 * exact. */
#define BENCH_SLEEP_TOLERANCE_S 1e-3

/* Checks the gather g over n tasks: every child DONE with the int value
 * equal to its index, and the counters the workers kept. */
static inline void bench_verify(bench_state *s, rill_future *g, int await_rc) {
  const bench_params *p = &s->p;
  long n = p->tasks;
  if (await_rc != RILL_OK)
    bench_fail("gather ended with %s: %s", rill_strerror(await_rc),
               rill_future_error_message(g) ? rill_future_error_message(g) : "");
  if (rill_future_state(g) != RILL_DONE) bench_fail("gather not DONE after await");
  if (rill_gather_count(g) != (size_t)n)
    bench_fail("gather has %zu children, expected %ld", rill_gather_count(g), n);
  for (long i = 0; i < n; i++) {
    rill_future *child = rill_gather_child(g, (size_t)i);
    int64_t v = -1;
    if (!child || rill_future_state(child) != RILL_DONE || rill_future_int(child, &v) != RILL_OK ||
        v != i)
      bench_fail("child %ld: state %d value %lld, expected DONE with %ld", i,
                 child ? rill_future_state(child) : -1, (long long)v, i);
  }
  if (s->finished != n) bench_fail("%ld tasks finished, expected %ld", s->finished, n);
  if (!strcmp(p->workload, "W1") && s->steps != n * p->iters)
    bench_fail("%ld switches, expected %ld", s->steps, n * p->iters);
  if (!strcmp(p->workload, "W3")) {
    if (s->min_sleep_loop < p->delay)
      bench_fail("a sleep(%g) lasted %.6f s on the loop clock", p->delay, s->min_sleep_loop);
    if (s->min_sleep_real < p->delay - BENCH_SLEEP_TOLERANCE_S)
      bench_fail("a sleep(%g) lasted %.6f s on CLOCK_MONOTONIC", p->delay, s->min_sleep_real);
  }
  s->verified = 1;
}

/* The extra key=value fields of the RESULT line. */
static inline void bench_extra(const bench_state *s, char *buf, size_t cap) {
  if (!strcmp(s->p.workload, "W3"))
    snprintf(buf, cap, "min_sleep_s=%.6f min_sleep_loop_s=%.6f", s->min_sleep_real,
             s->min_sleep_loop);
  else
    buf[0] = '\0';
}

#endif
