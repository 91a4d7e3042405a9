/* rill_coro.c - W1/W2/W3 with rill's stackful C coroutines: rill_run,
 * rill_spawn, rill_yield / rill_sleep, rill_gather + rill_await.
 * Built twice: bench_rill_coro (a stack per coroutine, impl=rill-c-coro)
 * and, with BENCH_COPY_STACK, bench_rill_coro_copy (the workers are
 * copy-stack coroutines, rill_spawn_v2 with RILL_SPAWN_COPY_STACK,
 * impl=rill-c-copy; main stays a rill_run coroutine).
 * See bench_common.h for the command line and the RESULT line. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "bench_rill.h"

#ifdef BENCH_COPY_STACK
#define BENCH_SPAWN(loop, fn, arg) rill_spawn_v2(loop, fn, arg, RILL_SPAWN_COPY_STACK)
#define BENCH_IMPL "rill-c-copy"
#else
#define BENCH_SPAWN(loop, fn, arg) rill_spawn(loop, fn, arg)
#define BENCH_IMPL "rill-c-coro"
#endif

typedef struct worker {
  bench_state *state;
  long index;
} worker;

static int finish(worker *w) {
  w->state->finished++;
  return rill_future_set_int(rill_task_future(rill_current_task()), w->index);
}

static int w1_switch(void *arg) {
  worker *w = arg;
  for (long i = 0; i < w->state->p.iters; i++) {
    int rc = rill_yield();
    if (rc != RILL_OK) return rc;
    w->state->steps++;
  }
  return finish(w);
}

static int w2_spawn(void *arg) { return finish(arg); }

static int w3_timers(void *arg) {
  worker *w = arg;
  rill_loop *loop = rill_loop_current();
  double t0 = bench_now(), l0 = rill_loop_time(loop);
  int rc = rill_sleep(w->state->p.delay);
  if (rc != RILL_OK) return rc;
  bench_note_sleep(w->state, bench_now() - t0, rill_loop_time(loop) - l0);
  return finish(w);
}

static int bench_main(void *arg) {
  bench_state *s = arg;
  rill_loop *loop = rill_loop_current();
  long n = s->p.tasks;
  rill_coro_fn fn = !strcmp(s->p.workload, "W1")   ? w1_switch
                    : !strcmp(s->p.workload, "W2") ? w2_spawn
                                                   : w3_timers;
  if (s->p.stack > 0 && rill_loop_set_stack_size(loop, (size_t)s->p.stack) != RILL_OK)
    bench_fail("rill_loop_set_stack_size: %s", rill_last_error_message());
  worker *workers = malloc(sizeof *workers * (size_t)n);
  rill_task **tasks = malloc(sizeof *tasks * (size_t)n);
  rill_future **futs = malloc(sizeof *futs * (size_t)n);
  if (!workers || !tasks || !futs) bench_fail("out of memory");
  for (long i = 0; i < n; i++) {
    workers[i].state = s;
    workers[i].index = i;
    tasks[i] = BENCH_SPAWN(loop, fn, &workers[i]);
    if (!tasks[i]) bench_fail("rill_spawn #%ld: %s", i, rill_last_error_message());
    futs[i] = rill_task_future(tasks[i]);
  }
  rill_future *g = rill_gather(loop, (size_t)n, futs, 0);
  if (!g) bench_fail("rill_gather: %s", rill_last_error_message());
  bench_verify(s, g, rill_await(g));
  rill_future_release(g);
  for (long i = 0; i < n; i++) rill_task_release(tasks[i]);
  free(futs);
  free(tasks);
  free(workers);
  return RILL_OK;
}

int main(int argc, char **argv) {
  bench_params p = bench_parse_args(argc, argv);
  bench_state s;
  bench_state_init(&s, p);
  double t0 = bench_now();
  int rc = rill_run(bench_main, &s);
  double wall = bench_now() - t0;
  if (rc != RILL_OK) bench_fail("rill_run: %s (%s)", rill_strerror(rc), rill_last_error_message());
  if (!s.verified) bench_fail("main coroutine did not finish its checks");
  char extra[128];
  bench_extra(&s, extra, sizeof extra);
  bench_print_result(&p, BENCH_IMPL, rill_version_string(), wall, extra);
  return 0;
}
