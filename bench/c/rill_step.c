/* rill_step.c - W1/W2/W3 with rill's step-function tasks (rill_task_new,
 * rill_task_yield / rill_task_sleep / rill_task_wait), the stackless
 * primitive the Python, Lua and Ruby bindings drive. A main step task
 * spawns the workers and waits on their gather, as the bindings' run()
 * does. See bench_common.h for the command line and the RESULT line. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "bench_rill.h"

typedef struct worker {
  bench_state *state;
  long index;
  long remaining; /* W1: yields still to do */
  int resumed;    /* 0 in the first step */
  double t0, l0;  /* W3: when the sleep began (real clock, loop clock) */
} worker;

typedef struct main_state {
  bench_state *state;
  rill_loop *loop;
  worker *workers;
  rill_task **tasks;
  rill_future **futs;
  rill_future *gather;
} main_state;

static void fail_task(rill_task *task, int rc, const char *what) {
  /* Fails the task so that the gather, and then main, report it. */
  rill_future_fail(rill_task_future(task), rc < 0 ? rc : RILL_ESTATE, what, NULL, NULL, NULL);
}

static void finish(rill_task *task, worker *w) {
  w->state->finished++;
  int rc = rill_future_set_int(rill_task_future(task), w->index);
  if (rc != RILL_OK) fail_task(task, rc, "rill_future_set_int failed");
}

static void w1_switch(rill_task *task, void *arg) {
  worker *w = arg;
  if (w->resumed) w->state->steps++;
  w->resumed = 1;
  if (w->remaining > 0) {
    w->remaining--;
    int rc = rill_task_yield(task);
    if (rc != RILL_OK) fail_task(task, rc, "rill_task_yield failed");
    return;
  }
  finish(task, w);
}

static void w2_spawn(rill_task *task, void *arg) { finish(task, arg); }

static void w3_timers(rill_task *task, void *arg) {
  worker *w = arg;
  if (!w->resumed) {
    w->resumed = 1;
    w->t0 = bench_now();
    w->l0 = rill_loop_time(rill_future_loop(rill_task_future(task)));
    int rc = rill_task_sleep(task, w->state->p.delay);
    if (rc != RILL_OK) fail_task(task, rc, "rill_task_sleep failed");
    return;
  }
  if (rill_task_cancel_requested(task) == 1) {
    fail_task(task, RILL_ECANCELLED, "cancelled");
    return;
  }
  bench_note_sleep(w->state, bench_now() - w->t0,
                   rill_loop_time(rill_future_loop(rill_task_future(task))) - w->l0);
  finish(task, w);
}

static void main_step(rill_task *task, void *arg) {
  main_state *m = arg;
  bench_state *s = m->state;
  long n = s->p.tasks;
  if (!m->gather) {
    rill_step_fn fn = !strcmp(s->p.workload, "W1")   ? w1_switch
                      : !strcmp(s->p.workload, "W2") ? w2_spawn
                                                     : w3_timers;
    m->workers = malloc(sizeof *m->workers * (size_t)n);
    m->tasks = malloc(sizeof *m->tasks * (size_t)n);
    m->futs = malloc(sizeof *m->futs * (size_t)n);
    if (!m->workers || !m->tasks || !m->futs) bench_fail("out of memory");
    for (long i = 0; i < n; i++) {
      worker *w = &m->workers[i];
      memset(w, 0, sizeof *w);
      w->state = s;
      w->index = i;
      w->remaining = s->p.iters;
      m->tasks[i] = rill_task_new(m->loop, fn, w, NULL);
      if (!m->tasks[i]) bench_fail("rill_task_new #%ld: %s", i, rill_last_error_message());
      m->futs[i] = rill_task_future(m->tasks[i]);
    }
    m->gather = rill_gather(m->loop, (size_t)n, m->futs, 0);
    if (!m->gather) bench_fail("rill_gather: %s", rill_last_error_message());
    int rc = rill_task_wait(task, m->gather);
    if (rc != RILL_OK) bench_fail("rill_task_wait: %s", rill_strerror(rc));
    return;
  }
  bench_verify(s, m->gather, rill_future_error(m->gather));
  rill_future_release(m->gather);
  for (long i = 0; i < n; i++) rill_task_release(m->tasks[i]);
  free(m->futs);
  free(m->tasks);
  free(m->workers);
  int rc = rill_future_set_none(rill_task_future(task));
  if (rc != RILL_OK) bench_fail("rill_future_set_none(main): %s", rill_strerror(rc));
}

int main(int argc, char **argv) {
  bench_params p = bench_parse_args(argc, argv);
  bench_state s;
  bench_state_init(&s, p);
  main_state m;
  memset(&m, 0, sizeof m);
  m.state = &s;

  double t0 = bench_now();
  m.loop = rill_loop_new();
  if (!m.loop) bench_fail("rill_loop_new: %s", rill_last_error_message());
  rill_task *main_task = rill_task_new(m.loop, main_step, &m, NULL);
  if (!main_task) bench_fail("rill_task_new(main): %s", rill_last_error_message());
  int rc = rill_loop_run_until(m.loop, rill_task_future(main_task));
  rill_task_release(main_task);
  rill_loop_free(m.loop);
  double wall = bench_now() - t0;

  if (rc != RILL_OK) bench_fail("rill_loop_run_until: %s (%s)", rill_strerror(rc), rill_last_error_message());
  if (!s.verified) bench_fail("main task did not finish its checks");
  char extra[128];
  bench_extra(&s, extra, sizeof extra);
  bench_print_result(&p, "rill-c-step", rill_version_string(), wall, extra);
  return 0;
}
