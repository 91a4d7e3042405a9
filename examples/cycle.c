/* Lesson 1, the loop's cycle, in C: a callback (call_soon), two timers
 * (call_later), a task that sleeps and a task that awaits a pipe's
 * readability, registered on one loop; each prints when the loop runs it.
 * call_soon callbacks and the first steps of new tasks run FIFO in the next
 * iteration, readiness is seen in the iteration after the write, timers run
 * in deadline order. Output: examples/lessons/cycle.txt; about 0.30 s. */
#include <stdio.h>
#include <unistd.h>

#include <rill.h>

static int pipe_fds[2]; /* [0] read end, [1] write end */

static void soon(void *arg) {
  (void)arg;
  printf("callback: call_soon ran\n");
}

static void late(void *fired) {
  printf("timer: call_later(0.30) fired\n");
  rill_future_set_none(fired); /* main awaits this */
}

static void release_future(void *future) { rill_future_release(future); }

static void write_x(void *arg) {
  (void)arg;
  if (write(pipe_fds[1], "x", 1) == 1) printf("timer: wrote 'x' to the pipe\n");
}

static int sleeper(void *arg) {
  (void)arg;
  printf("task: started\n");
  int rc = rill_sleep(0.15);
  if (rc < 0) return rc;
  printf("task: woke after sleep(0.15)\n");
  return RILL_OK;
}

static int reader(void *arg) {
  (void)arg;
  printf("reader: waiting for the pipe\n");
  rill_future *ready = rill_fd_wait(rill_loop_current(), pipe_fds[0], RILL_READABLE);
  if (!ready) return rill_last_error();
  int rc = rill_await(ready);
  rill_future_release(ready);
  if (rc < 0) return rc;
  char c = '?';
  if (read(pipe_fds[0], &c, 1) != 1) return RILL_ESYS;
  printf("reader: the pipe is readable, read '%c'\n", c);
  return RILL_OK;
}

static int main_task(void *arg) {
  (void)arg;
  rill_loop *loop = rill_loop_current();
  if (pipe(pipe_fds) != 0) return RILL_ESYS;
  rill_future *fired = rill_future_new(loop);
  /* Registered in this order; the transcript shows the order they run in. */
  rill_handle *h1 = rill_call_later(loop, 0.30, late, rill_future_retain(fired), release_future);
  rill_handle *h2 = rill_call_soon(loop, soon, NULL, NULL);
  rill_task *t = rill_spawn(loop, sleeper, NULL);
  rill_task *r = rill_spawn(loop, reader, NULL);
  rill_handle *h3 = rill_call_later(loop, 0.05, write_x, NULL, NULL);
  int rc = RILL_ENOMEM;
  if (fired && h1 && h2 && t && r && h3) {
    rill_future *all3[] = {rill_task_future(t), rill_task_future(r), fired};
    rill_future *all = rill_gather(loop, 3, all3, 0);
    rc = all ? rill_await(all) : rill_last_error();
    rill_future_release(all);
  }
  if (rc == RILL_OK) printf("main: done\n");
  rill_handle_release(h1);
  rill_handle_release(h2);
  rill_handle_release(h3);
  rill_task_release(t);
  rill_task_release(r);
  rill_future_release(fired);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return rc;
}

int main(void) {
  int rc = rill_run(main_task, NULL);
  if (rc < 0) fprintf(stderr, "cycle: %s\n", rill_strerror(rc));
  return rc < 0 ? 1 : 0;
}
