/* run.c - rill_run (asyncio.run for C coroutines) and rill_loop_shutdown,
 * its ending: cancel what is left and run it down. */
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

int rill_loop_shutdown(rill_loop *loop) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (loop->running) return rill__fail(RILL_EBUSY, "cannot shut down a running loop");
  int n = loop->task_count;
  if (n <= 0) return rill__pool_shutdown(loop);
  rill_future **futs = malloc((size_t)n * sizeof *futs);
  if (!futs) return rill__fail(RILL_ENOMEM, "out of memory shutting down");
  int i = 0;
  for (rill_task *t = loop->tasks_head; t && i < n; t = t->next) futs[i++] = rill_future_retain(&t->fut);
  for (int k = 0; k < i; k++) rill_task_cancel((rill_task *)futs[k], NULL);
  rill_future *all = rill_gather(loop, (size_t)i, futs, RILL_GATHER_RETURN_ERRORS);
  if (all) {
    rill_loop_run_until(loop, all);
    for (int k = 0; k < i; k++) {
      if (futs[k]->state == RILL_FAILED) {
        rill__report(loop, futs[k], "unhandled failure of task %s during shutdown",
                     rill__task_name((rill_task *)futs[k]));
        rill__future_mark_retrieved(futs[k]);
      }
    }
    rill_future_release(all);
  }
  for (int k = 0; k < i; k++) rill_future_release(futs[k]);
  free(futs);
  /* One round, as asyncio.run: tasks started by the clean-up are left to
   * loop close, which reports and destroys them. */
  if (!all) return rill_last_error();
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
