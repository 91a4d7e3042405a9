/* The seed example in C: two tasks that print, sleep one second, print
 * again, gathered by a main task. Finishes in about one second, not two. */
#include <stdio.h>

#include <rill.h>

static int task(void *arg) {
  const char *name = arg;
  printf("Task %s started\n", name);
  int rc = rill_sleep(1.0); /* yields control to the event loop */
  if (rc < 0) return rc;
  printf("Task %s finished\n", name);
  return RILL_OK;
}

static int main_task(void *arg) {
  (void)arg;
  rill_loop *loop = rill_loop_current();
  rill_task *a = rill_spawn(loop, task, "A");
  rill_task *b = rill_spawn(loop, task, "B");
  rill_future *both[] = {rill_task_future(a), rill_task_future(b)};
  rill_future *all = rill_gather(loop, 2, both, 0);
  int rc = rill_await(all);
  rill_future_release(all);
  rill_task_release(a);
  rill_task_release(b);
  return rc;
}

int main(void) {
  int rc = rill_run(main_task, NULL);
  if (rc < 0) fprintf(stderr, "seed: %s\n", rill_strerror(rc));
  return rc < 0 ? 1 : 0;
}
