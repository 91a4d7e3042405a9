/* Lesson 2, rill_run against the explicit loop, in C.
 * (a) rill_run(main) (asyncio.run): a new loop, main run to its end, the
 *     tasks left cancelled and run down, the loop closed and freed.
 * (b) the explicit path (asyncio's loop object): rill_loop_new, run until
 *     one task is done, run again so that a task started in the first run
 *     finishes in the second, stop rill_loop_run (run_forever) from a
 *     callback, close.
 * (c) misuse, each refused with a code.
 * Output: examples/lessons/lifecycle.txt (where C prints "returned 0":
 * rill_run returns main's code, RILL_OK, where the other languages return
 * main's value, 42). */
#include <stdio.h>

#include <rill.h>

/* -- (a) -- */

static int leftover(void *arg) {
  (void)arg;
  int rc = rill_sleep(10);
  if (rc == RILL_ECANCELLED) printf("run: leftover task cancelled at shutdown\n");
  return rc;
}

static int run_main(void *arg) {
  (void)arg;
  printf("run: main started\n");
  rill_task *t = rill_spawn(rill_loop_current(), leftover, NULL);
  if (!t) return rill_last_error();
  rill_task_release(t); /* the loop keeps its own reference */
  rill_yield();         /* let it start: a task cancelled before it starts never runs */
  printf("run: main returns\n");
  return RILL_OK;
}

/* -- (b) -- */

struct sleeper_spec {
  double seconds;
  int result;
};

static int sleeper(void *arg) {
  const struct sleeper_spec *spec = arg;
  int rc = rill_sleep(spec->seconds);
  if (rc < 0) return rc;
  return rill_future_set_int(rill_task_future(rill_current_task()), spec->result);
}

static int64_t result_of(rill_task *t) {
  int64_t v = -1;
  rill_future_int(rill_task_future(t), &v);
  return v;
}

static const char *yes_no(int b) { return b == 1 ? "yes" : "no"; }

static int stopped_by_callback;
static void stop_loop(void *loop) {
  stopped_by_callback = 1;
  rill_loop_stop(loop);
}

/* -- (c) -- */

static const char *name_of(int rc) {
  const char *n = rill_err_name(rc);
  return n ? n : (rc == 0 ? "RILL_OK (no error)" : "an unknown code");
}

static int misuse_inside(void *arg) {
  (void)arg;
  rill_loop *loop = rill_loop_current();
  printf("misuse: running a loop that already runs -> %s\n", name_of(rill_loop_run(loop)));
  printf("misuse: closing a running loop -> %s\n", name_of(rill_loop_close(loop)));
  return RILL_OK;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* (a) */
  int rc = rill_run(run_main, NULL);
  printf("run: returned %d, the loop is gone\n", rc);

  /* (b) */
  rill_loop *loop = rill_loop_new();
  if (!loop) return 1;
  printf("loop: created (running: %s, closed: %s)\n", yes_no(rill_loop_current() == loop),
         yes_no(rill_loop_is_closed(loop)));
  static const struct sleeper_spec first_spec = {0.05, 1}, slow_spec = {0.2, 2};
  rill_task *first = rill_spawn(loop, sleeper, (void *)&first_spec);
  rill_task *slow = rill_spawn(loop, sleeper, (void *)&slow_spec);
  if (!first || !slow) return 1;
  rill_loop_run_until(loop, rill_task_future(first));
  printf("loop: first -> %lld, slow still pending: %s\n", (long long)result_of(first),
         yes_no(!rill_future_done(rill_task_future(slow))));
  rill_loop_run_until(loop, rill_task_future(slow));
  printf("loop: slow -> %lld (started in the first run, finished in the second)\n",
         (long long)result_of(slow));
  rill_handle_release(rill_call_later(loop, 0.05, stop_loop, loop, NULL));
  rc = rill_loop_run(loop);
  if (rc == RILL_OK && stopped_by_callback) printf("loop: run_forever stopped by a callback\n");
  rill_loop_close(loop);
  printf("loop: closed (closed: %s)\n", yes_no(rill_loop_is_closed(loop)));

  /* (c) */
  printf("misuse: run_until on a closed loop -> %s\n",
         name_of(rill_loop_run_until(loop, rill_task_future(first))));
  rill_handle *h = rill_call_soon(loop, stop_loop, loop, NULL);
  printf("misuse: call_soon on a closed loop -> %s\n", h ? "accepted" : name_of(rill_last_error()));
  rill_handle_release(h);
  rill_task_release(first);
  rill_task_release(slow);
  rill_loop_free(loop);

  rill_loop *other = rill_loop_new();
  if (!other) return 1;
  rill_task *t = rill_spawn(other, misuse_inside, NULL);
  if (!t) return 1;
  rc = rill_loop_run_until(other, rill_task_future(t));
  rill_task_release(t);
  rill_loop_free(other);
  return rc < 0 ? 1 : 0;
}
