/* run.c - rill_run (asyncio.run for C coroutines) and rill_loop_shutdown,
 * its ending: cancel what is left and run it down. */
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

/* The tasks a shutdown cancelled, and the future it completes once they
 * are all done and their failures reported. */
typedef struct shutdown_state {
  rill_future *out;
  int n;
  rill_future *futs[];
} shutdown_state;

static void shutdown_state_free(void *arg) {
  shutdown_state *st = arg;
  for (int k = 0; k < st->n; k++) rill_future_release(st->futs[k]);
  rill_future_release(st->out);
  free(st);
}

static void shutdown_tasks_done(rill_future *all, void *arg) {
  (void)all;
  shutdown_state *st = arg;
  rill_loop *loop = rill_future_loop(st->out);
  for (int k = 0; k < st->n; k++) {
    if (st->futs[k]->state == RILL_FAILED) {
      rill__report(loop, st->futs[k], "unhandled failure of task %s during shutdown",
                   rill__task_name((rill_task *)st->futs[k]));
      rill__future_mark_retrieved(st->futs[k]);
    }
  }
  rill_future_set_none(st->out);
}

rill_future *rill_loop_shutdown_tasks(rill_loop *loop) {
  if (rill__loop_check(loop)) return NULL;
  if (loop->running) { /* a task would cancel itself with the rest */
    rill__fail(RILL_EBUSY, "cannot shut down a running loop");
    return NULL;
  }
  rill_future *out = rill_future_new(loop);
  if (!out) return NULL;
  int n = loop->task_count;
  if (n <= 0) {
    rill_future_set_none(out);
    return out;
  }
  shutdown_state *st = malloc(sizeof *st + (size_t)n * sizeof st->futs[0]);
  if (!st) {
    rill_future_release(out);
    rill__fail(RILL_ENOMEM, "out of memory shutting down");
    return NULL;
  }
  st->out = rill_future_retain(out);
  st->n = 0;
  for (rill_task *t = loop->tasks_head; t && st->n < n; t = rill__task_next(t))
    st->futs[st->n++] = rill_future_retain(&t->fut);
  for (int k = 0; k < st->n; k++) rill_task_cancel((rill_task *)st->futs[k], NULL);
  rill_future *all = rill_gather(loop, (size_t)st->n, st->futs, RILL_GATHER_RETURN_ERRORS);
  if (!all || rill_future_on_done(all, shutdown_tasks_done, st, shutdown_state_free) != RILL_OK) {
    int rc = rill_last_error();
    rill_future_release(all);
    shutdown_state_free(st);
    rill_future_release(out);
    rill__fail(rc < 0 ? rc : RILL_ENOMEM, "out of memory shutting down");
    return NULL;
  }
  rill_future_release(all); /* its callback keeps what it needs */
  return out;
}

int rill_loop_shutdown(rill_loop *loop) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (loop->running) return rill__fail(RILL_EBUSY, "cannot shut down a running loop");
  if (loop->task_count > 0) {
    rill_future *done = rill_loop_shutdown_tasks(loop);
    if (!done) return rill_last_error();
    rill_loop_run_until(loop, done);
    rill_future_release(done);
  }
  /* One round, as asyncio.run: tasks started by the clean-up are left to
   * loop close, which reports and destroys them. */
  return rill__pool_shutdown(loop); /* 1.1: shutdown_default_executor */
}

int rill_run(rill_coro_fn fn, void *arg) {
  if (!fn) return rill__fail(RILL_EINVAL, "fn is NULL");
  if (rill__tls_loop) return rill__fail(RILL_EBUSY, "rill_run() cannot be called from a running loop");
  rill_loop *loop = rill_loop_new();
  if (!loop) return rill_last_error();
  rill_task *main_task = rill_spawn(loop, fn, arg);
  if (!main_task) {
    int rc = rill_last_error();
    rill_loop_free(loop);
    return rc;
  }
  rill_task_set_name(main_task, "main");
  /* 1.1: SIGINT cancels main (a second one ends the program), as
   * asyncio.run does when SIGINT has its default disposition. */
  struct sigaction cur;
  int armed = sigaction(SIGINT, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL &&
              !(cur.sa_flags & SA_SIGINFO) && rill_loop_cancel_on_sigint(loop, main_task) == RILL_OK;
  int rc = rill_loop_run_until(loop, &main_task->fut);
  if (armed && rill_loop_cancel_on_sigint(loop, NULL) > 0 && rc == RILL_ECANCELLED)
    rc = rill__fail(RILL_EINTR, "the main task was cancelled by SIGINT");
  rill_loop_shutdown(loop);
  rill_task_release(main_task);
  rill_loop_free(loop);
  return rc;
}
