/* Lesson 3, blocking against non-blocking, in C: the seed's two tasks, A
 * and B, each "work for 1 s", gathered, three ways:
 *   - A blocks in nanosleep: the whole loop stops with it, B's one second
 *     starts after A's: 2 s;
 *   - both await rill_sleep: the loop runs the other meanwhile: 1 s;
 *   - A moves its blocking work to the thread pool (rill_run_in_thread)
 *     and awaits it: 1 s.
 * With RILL_DEBUG=1 (or rill_loop_set_debug) the blocked step is reported
 * on stderr once: "Executing <Task A (entry: blocking_worker)> took 1.001
 * seconds" (threshold: rill_loop_set_slow_duration, 0.1 s by default; the
 * entry's name resolves because the program is linked with -rdynamic).
 * Output: examples/lessons/blocking.txt, times within 0.3 s. */
#include <stdio.h>
#include <time.h>

#include <rill.h>

static void block_for_one_second(void) {
  struct timespec one = {1, 0};
  while (nanosleep(&one, &one) != 0) {
  }
}

/* The worker of each way (external linkage: the debug report names it). */
int blocking_worker(void *arg) {
  (void)arg;
  block_for_one_second(); /* the loop cannot run anything meanwhile */
  return RILL_OK;
}

int sleeping_worker(void *arg) {
  (void)arg;
  return rill_sleep(1.0); /* yields to the loop for one second */
}

static void block_in_thread(rill_work *work, void *arg) {
  (void)work;
  (void)arg;
  block_for_one_second(); /* on a pool thread: the loop goes on */
}

int threaded_worker(void *arg) {
  (void)arg;
  rill_future *done = rill_run_in_thread(rill_loop_current(), block_in_thread, NULL, NULL);
  if (!done) return rill_last_error();
  int rc = rill_await(done);
  rill_future_release(done);
  return rc;
}

struct way {
  const char *label;
  rill_coro_fn worker_of_a;
};

static int gather_a_and_b(void *arg) {
  const struct way *way = arg;
  rill_loop *loop = rill_loop_current();
  rill_loop_set_slow_duration(loop, 0.5); /* report steps longer than 0.5 s */
  rill_task *a = rill_spawn(loop, way->worker_of_a, NULL);
  rill_task *b = rill_spawn(loop, sleeping_worker, NULL);
  int rc = RILL_ENOMEM;
  if (a && b) {
    rill_task_set_name(a, "A");
    rill_task_set_name(b, "B");
    rill_future *both[] = {rill_task_future(a), rill_task_future(b)};
    rill_future *all = rill_gather(loop, 2, both, 0);
    rc = all ? rill_await(all) : rill_last_error();
    rill_future_release(all);
  }
  rill_task_release(a);
  rill_task_release(b);
  return rc;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int timed(const struct way *way) {
  double t0 = now();
  int rc = rill_run(gather_a_and_b, (void *)way);
  if (rc < 0) {
    fprintf(stderr, "blocking: %s: %s\n", way->label, rill_strerror(rc));
    return 1;
  }
  printf("%s: %.1f s\n", way->label, now() - t0);
  fflush(stdout);
  return 0;
}

int main(void) {
  static const struct way ways[] = {
      {"blocking (nanosleep in a task)", blocking_worker},
      {"non-blocking (rill_sleep)", sleeping_worker},
      {"thread pool (rill_run_in_thread)", threaded_worker},
  };
  int failed = 0;
  for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) failed |= timed(&ways[i]);
  return failed;
}
