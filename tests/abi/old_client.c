/* old_client.c - a client of rill 1.0, compiled against the 1.0 header kept
 * in tests/abi/v1.0/rill.h (never against core/include) and run against the
 * freshly built librill.so.1: what a program built for 1.0 does must keep
 * working with every 1.x. It touches a broad slice of the API and checks
 * every result; it prints "old_client: OK" and exits 0, or names the first
 * check that failed and exits 1. Plain C99. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "old_client: %s:%d: check failed: %s\n", __FILE__,      \
              __LINE__, #cond);                                                \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* ---- events recorded in order ---- */
static char events[256];
static void note(const char *e) {
  if (strlen(events) + strlen(e) + 2 < sizeof events) {
    strcat(events, e);
    strcat(events, " ");
  }
}

/* ---- loop + callbacks ---- */
static int freed_args;
static void on_note(void *arg) { note((const char *)arg); }
static void count_free(void *arg) {
  (void)arg;
  freed_args++;
}

static void test_loop_and_callbacks(void) {
  rill_loop *loop = rill_loop_new();
  rill_handle *h1, *h2, *h3, *h4;
  CHECK(loop != NULL);
  events[0] = '\0';
  freed_args = 0;
  h1 = rill_call_later(loop, 0.02, on_note, "later", count_free);
  h2 = rill_call_soon(loop, on_note, "soon1", count_free);
  h3 = rill_call_soon(loop, on_note, "soon2", count_free);
  h4 = rill_call_soon(loop, on_note, "never", count_free);
  CHECK(h1 && h2 && h3 && h4);
  rill_handle_cancel(h4);
  CHECK(rill_handle_cancelled(h4) == 1);
  CHECK(rill_call_soon_threadsafe(loop, on_note, "ts", NULL) == RILL_OK);
  CHECK(rill_loop_run(loop) == RILL_OK);
  CHECK(strcmp(events, "soon1 soon2 ts later ") == 0);
  CHECK(freed_args == 4);
  CHECK(rill_loop_time(loop) > 0);
  CHECK(rill_loop_task_count(loop) == 0);
  rill_handle_release(h1);
  rill_handle_release(h2);
  rill_handle_release(h3);
  rill_handle_release(h4);
  CHECK(rill_loop_close(loop) == RILL_OK);
  CHECK(rill_loop_is_closed(loop) == 1);
  CHECK(rill_future_new(loop) == NULL && rill_last_error() == RILL_ECLOSED);
  rill_loop_free(loop);
}

/* ---- futures of each kind ---- */
static const char pointer_tag = 0;
static const char payload_tag = 0;
static int payload_freed;
static void free_payload(void *p) {
  payload_freed++;
  free(p);
}
static int done_calls;
static void on_done(rill_future *f, void *arg) {
  (void)arg;
  if (rill_future_done(f) == 1) done_calls++;
}

static void test_futures(void) {
  rill_loop *loop = rill_loop_new();
  rill_future *fn = rill_future_new(loop), *fb = rill_future_new(loop),
              *fi = rill_future_new(loop), *fd = rill_future_new(loop),
              *fy = rill_future_new(loop), *fp = rill_future_new(loop),
              *ff = rill_future_new(loop), *fc = rill_future_new(loop);
  int b = 0;
  int64_t i = 0;
  double d = 0;
  size_t len = 0;
  const void *bytes;
  static int pointee = 42;
  char *payload = malloc(8);

  CHECK(fn && fb && fi && fd && fy && fp && ff && fc && payload);
  done_calls = 0;
  payload_freed = 0;
  CHECK(rill_future_on_done(fi, on_done, NULL, NULL) == RILL_OK);
  CHECK(rill_future_state(fi) == RILL_PENDING && rill_future_done(fi) == 0);
  CHECK(rill_future_set_none(fn) == RILL_OK);
  CHECK(rill_future_set_bool(fb, 1) == RILL_OK);
  CHECK(rill_future_set_int(fi, -1234567890123LL) == RILL_OK);
  CHECK(rill_future_set_double(fd, 2.5) == RILL_OK);
  CHECK(rill_future_set_bytes(fy, "a\0b", 3) == RILL_OK);
  CHECK(rill_future_set_pointer(fp, &pointee, NULL, &pointer_tag) == RILL_OK);
  strcpy(payload, "boom");
  CHECK(rill_future_fail(ff, -1001, "application failure", payload, free_payload,
                         &payload_tag) == RILL_OK);
  CHECK(rill_future_cancel_msg(fc, "stop") == 1);
  CHECK(rill_future_set_int(fi, 1) == RILL_ESTATE); /* not pending any more */
  CHECK(done_calls == 0); /* done callbacks never run inline */
  CHECK(rill_loop_run(loop) == RILL_OK);
  CHECK(done_calls == 1);

  CHECK(rill_future_kind(fn) == RILL_NONE);
  CHECK(rill_future_kind(fb) == RILL_BOOL && rill_future_bool(fb, &b) == RILL_OK && b == 1);
  CHECK(rill_future_kind(fi) == RILL_INT && rill_future_int(fi, &i) == RILL_OK &&
        i == -1234567890123LL);
  CHECK(rill_future_double(fd, &d) == RILL_OK && d == 2.5);
  CHECK(rill_future_int(fd, &i) == RILL_ETYPE);
  bytes = rill_future_bytes(fy, &len);
  CHECK(bytes && len == 3 && memcmp(bytes, "a\0b", 3) == 0);
  CHECK(rill_future_pointer(fp, &pointer_tag) == &pointee);
  CHECK(rill_future_pointer(fp, &payload_tag) == NULL);
  CHECK(rill_future_state(ff) == RILL_FAILED && rill_future_error(ff) == -1001);
  CHECK(strcmp(rill_future_error_message(ff), "application failure") == 0);
  CHECK(rill_future_error_payload(ff, &payload_tag) == payload);
  CHECK(rill_future_error_payload(ff, &pointer_tag) == NULL);
  CHECK(rill_future_state(fc) == RILL_CANCELLED && rill_future_error(fc) == RILL_ECANCELLED);
  CHECK(strcmp(rill_future_error_message(fc), "stop") == 0);
  CHECK(rill_future_loop(fc) == loop);
  CHECK(rill_future_retain(fc) == fc);
  rill_future_release(fc);

  rill_future_release(fn);
  rill_future_release(fb);
  rill_future_release(fi);
  rill_future_release(fd);
  rill_future_release(fy);
  rill_future_release(fp);
  rill_future_release(ff);
  CHECK(payload_freed == 1);
  rill_future_release(fc);
  rill_loop_free(loop);
}

/* ---- a step task ---- */
typedef struct counter_task {
  int steps;
  int freed;
} counter_task;

static void counter_step(rill_task *task, void *arg) {
  counter_task *c = arg;
  if (++c->steps < 3) {
    rill_task_yield(task);
    return;
  }
  rill_future_set_int(rill_task_future(task), c->steps);
}
static void counter_free(void *arg) { ((counter_task *)arg)->freed = 1; }

static void test_step_task(void) {
  rill_loop *loop = rill_loop_new();
  counter_task c = {0, 0};
  rill_task *t = rill_task_new(loop, counter_step, &c, counter_free);
  int64_t v = 0;
  CHECK(t != NULL);
  CHECK(rill_task_arg(t) == &c);
  CHECK(rill_task_set_name(t, "counter") == RILL_OK);
  CHECK(strcmp(rill_task_name(t), "counter") == 0);
  CHECK(c.steps == 0); /* a task starts in the next iteration */
  CHECK(rill_loop_run_until(loop, rill_task_future(t)) == RILL_OK);
  CHECK(rill_future_int(rill_task_future(t), &v) == RILL_OK && v == 3);
  CHECK(c.freed == 1);
  CHECK(rill_task_from_future(rill_task_future(t)) == t);
  rill_task_release(t);
  rill_loop_free(loop);
}

/* ---- C coroutines through rill_run ---- */
static int child(void *arg) {
  const char *name = arg;
  int rc;
  note(name);
  if ((rc = rill_sleep(0.01)) < 0) return rc;
  note(name);
  return rill_future_set_int(rill_task_future(rill_current_task()), (int64_t)strlen(name));
}

static int failing(void *arg) {
  (void)arg;
  rill_yield();
  return -1002;
}

static int sleeper(void *arg) {
  (void)arg;
  return rill_sleep(10.0); /* cancelled by wait_for or by the main task */
}

static int catcher(void *arg) {
  int rc = rill_sleep(10.0);
  *(int *)arg = rc;
  return RILL_OK; /* caught: ends DONE */
}

static int main_coro(void *arg) {
  rill_loop *loop = rill_loop_current();
  rill_task *a, *b, *bad, *slow, *caught;
  rill_future *g, *g2, *w, *futs[2], *futs3[3];
  int64_t v;
  int caught_rc = 0, rc;
  (void)arg;

  CHECK(loop != NULL);
  CHECK(rill_current_task() != NULL);
  /* gather: results in argument order */
  a = rill_spawn(loop, child, "A");
  b = rill_spawn(loop, child, "BB");
  futs[0] = rill_task_future(a);
  futs[1] = rill_task_future(b);
  g = rill_gather(loop, 2, futs, 0);
  CHECK(rill_await(g) == RILL_OK);
  CHECK(rill_gather_count(g) == 2);
  CHECK(rill_future_int(rill_gather_child(g, 0), &v) == RILL_OK && v == 1);
  CHECK(rill_future_int(rill_gather_child(g, 1), &v) == RILL_OK && v == 2);

  /* gather with errors in place */
  bad = rill_spawn(loop, failing, NULL);
  futs3[0] = rill_task_future(a);
  futs3[1] = rill_task_future(bad);
  futs3[2] = rill_task_future(b);
  g2 = rill_gather(loop, 3, futs3, RILL_GATHER_RETURN_ERRORS);
  CHECK(rill_await(g2) == RILL_OK);
  CHECK(rill_future_error(rill_gather_child(g2, 1)) == -1002);

  /* wait_for: the inner task is cancelled, then ETIMEDOUT */
  slow = rill_spawn(loop, sleeper, NULL);
  w = rill_wait_for(loop, rill_task_future(slow), 0.01);
  rc = rill_await(w);
  CHECK(rc == RILL_ETIMEDOUT);
  CHECK(rill_future_state(rill_task_future(slow)) == RILL_CANCELLED);

  /* cancellation reaches the await point and can be caught */
  caught = rill_spawn(loop, catcher, &caught_rc);
  CHECK(rill_yield() == RILL_OK);
  CHECK(rill_task_cancel(caught, "enough") == 1);
  CHECK(rill_await(rill_task_future(caught)) == RILL_OK);
  CHECK(caught_rc == RILL_ECANCELLED);
  CHECK(rill_future_state(rill_task_future(caught)) == RILL_DONE);

  rill_future_release(g);
  rill_future_release(g2);
  rill_future_release(w);
  rill_task_release(a);
  rill_task_release(b);
  rill_task_release(bad);
  rill_task_release(slow);
  rill_task_release(caught);
  return rill_future_set_double(rill_task_future(rill_current_task()), 1.5);
}

static void test_coroutines(void) {
  events[0] = '\0';
  CHECK(rill_run(main_coro, NULL) == RILL_OK);
  CHECK(strcmp(events, "A BB A BB ") == 0);
  CHECK(rill_await(NULL) < 0); /* outside a coroutine */
  CHECK(rill_sleep(0) == RILL_ESTATE);
}

/* ---- errors ---- */
static void test_errors(void) {
  CHECK((rill_version() >> 16) == RILL_VERSION_MAJOR);
  CHECK(rill_version() >= (unsigned)RILL_VERSION_HEX);
  CHECK(strncmp(rill_version_string(), "1.", 2) == 0);
  CHECK(strcmp(rill_strerror(RILL_ETIMEDOUT), "operation timed out") == 0);
  CHECK(strcmp(rill_strerror(0), "success") == 0);
  CHECK(strcmp(rill_err_name(RILL_ECANCELLED), "RILL_ECANCELLED") == 0);
  CHECK(rill_err_name(-98) == NULL);
  CHECK(rill_future_state(NULL) == RILL_EINVAL);
  CHECK(rill_last_error() == RILL_EINVAL);
  CHECK(strlen(rill_last_error_message()) > 0);
  CHECK(rill_task_new(NULL, counter_step, NULL, NULL) == NULL);
  CHECK(rill_loop_current() == NULL);
  CHECK(isnan(rill_loop_time(NULL)));
  rill_future_release(NULL);
  rill_task_release(NULL);
  rill_loop_free(NULL);
}

int main(void) {
  printf("old_client: built against rill.h %s, running librill %s\n", RILL_VERSION_STRING,
         rill_version_string());
  test_errors();
  test_loop_and_callbacks();
  test_futures();
  test_step_task();
  test_coroutines();
  if (failures) {
    fprintf(stderr, "old_client: %d check(s) failed\n", failures);
    return 1;
  }
  printf("old_client: OK\n");
  return 0;
}
