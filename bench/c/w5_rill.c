/* w5_rill.c - W5 on rill's thread pool (rill_run_in_thread) from a C
 * coroutine: keep `inflight` jobs outstanding, await the oldest. */
#define _POSIX_C_SOURCE 200809L
#include <rill.h>

#include "w5_common.h"

static w5_params P;
static long sum;

static void work(rill_work *w, void *arg) { rill_work_set_int(w, (int64_t)(intptr_t)arg + 1); }

static int main_coro(void *arg) {
  (void)arg;
  rill_loop *loop = rill_loop_current();
  rill_future **ring = calloc((size_t)P.inflight, sizeof *ring);
  long next = 0, done = 0;
  for (; next < P.inflight && next < P.jobs; next++)
    ring[next % P.inflight] = rill_run_in_thread(loop, work, (void *)(intptr_t)next, NULL);
  while (done < P.jobs) {
    rill_future *f = ring[done % P.inflight];
    int rc = rill_await(f);
    int64_t v = 0;
    if (rc != RILL_OK || rill_future_int(f, &v) != RILL_OK) return rc ? rc : RILL_ETYPE;
    sum += (long)v;
    rill_future_release(f);
    ring[done % P.inflight] = NULL;
    done++;
    if (next < P.jobs) {
      ring[(next) % P.inflight] = rill_run_in_thread(loop, work, (void *)(intptr_t)next, NULL);
      if (!ring[next % P.inflight]) return rill_last_error();
      next++;
    }
  }
  free(ring);
  return RILL_OK;
}

static int setup(void *arg) {
  (void)arg;
  rill_loop_set_thread_pool_size(rill_loop_current(), (int)P.threads);
  return main_coro(NULL);
}

int main(int argc, char **argv) {
  P = w5_parse(argc, argv);
  double t0 = w5_now();
  int rc = rill_run(setup, NULL);
  double wall = w5_now() - t0;
  if (rc != RILL_OK) {
    fprintf(stderr, "bench: FAILED: %s\n", rill_strerror(rc));
    return 1;
  }
  w5_result("rill-c", rill_version_string(), P, sum, wall);
  return 0;
}
