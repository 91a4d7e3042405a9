/* w6_rill.c - W6 on rill's core queue (rill_queue_put_int / rill_queue_get),
 * with step tasks (impl rill-c-step, the default) or stackful C coroutines
 * (impl=coro as the last argument: rill-c-coro). An uncontended put or get
 * is DONE at once and costs no iteration, as asyncio's. See w6_common.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <rill.h>

#include "w6_common.h"

typedef struct state {
  w6_params p;
  rill_queue *q;
  long next;             /* producer: the next item */
  long got;              /* consumer: items taken */
  long long sum;
  rill_future *put, *get; /* awaited (a reference) across a step */
} state;

/* ---- step tasks ---- */

static void producer_step(rill_task *t, void *arg) {
  state *s = arg;
  if (s->put) { /* resumed: the put went in */
    if (rill_future_error(s->put) != RILL_OK) w6_fail("put failed");
    rill_future_release(s->put);
    s->put = NULL;
  }
  while (s->next <= s->p.items) {
    rill_future *f = rill_queue_put_int(s->q, s->next++, 0);
    if (!f) w6_fail(rill_last_error_message());
    if (rill_future_is_done(f) != 1) {
      s->put = f;
      rill_task_wait(t, f);
      return;
    }
    rill_future_release(f);
  }
  rill_future_set_none(rill_task_future(t));
}

static void take(state *s, rill_future *f) {
  int64_t v;
  if (rill_future_int(f, &v) != RILL_OK) w6_fail("get gave no int");
  s->sum += v;
  s->got++;
  rill_future_release(f);
}

static void consumer_step(rill_task *t, void *arg) {
  state *s = arg;
  if (s->get) {
    rill_future *f = s->get;
    s->get = NULL;
    take(s, f);
  }
  while (s->got < s->p.items) {
    rill_future *f = rill_queue_get(s->q);
    if (!f) w6_fail(rill_last_error_message());
    if (rill_future_is_done(f) != 1) {
      s->get = f;
      rill_task_wait(t, f);
      return;
    }
    take(s, f);
  }
  rill_future_set_none(rill_task_future(t));
}

/* ---- C coroutines ---- */

static int producer_coro(void *arg) {
  state *s = arg;
  for (long i = 1; i <= s->p.items; i++) {
    rill_future *f = rill_queue_put_int(s->q, i, 0);
    if (!f) return rill_last_error();
    int rc = rill_await(f);
    rill_future_release(f);
    if (rc) return rc;
  }
  return RILL_OK;
}

static int consumer_coro(void *arg) {
  state *s = arg;
  while (s->got < s->p.items) {
    rill_future *f = rill_queue_get(s->q);
    if (!f) return rill_last_error();
    int rc = rill_await(f);
    if (rc) return rc;
    take(s, f);
  }
  return RILL_OK;
}

int main(int argc, char **argv) {
  int coro = 0, n = 0;
  char *args[64];
  for (int i = 0; i < argc && n < 64; i++) {
    if (!strcmp(argv[i], "impl=coro")) coro = 1;
    else args[n++] = argv[i];
  }
  w6_params p = w6_parse(n, args);
  state s = {p, NULL, 1, 0, 0, NULL, NULL};
  rill_loop *loop = rill_loop_new();
  if (!loop) w6_fail("rill_loop_new");
  s.q = rill_queue_new(loop, (int)p.maxsize, RILL_QUEUE_FIFO);
  double t0 = w6_now();
  rill_task *prod, *cons;
  if (coro) {
    prod = rill_spawn(loop, producer_coro, &s);
    cons = rill_spawn(loop, consumer_coro, &s);
  } else {
    prod = rill_task_new(loop, producer_step, &s, NULL);
    cons = rill_task_new(loop, consumer_step, &s, NULL);
  }
  if (!prod || !cons || rill_loop_run(loop) != RILL_OK) w6_fail(rill_last_error_message());
  double wall = w6_now() - t0;
  if (rill_future_error(rill_task_future(prod)) || rill_future_error(rill_task_future(cons)))
    w6_fail("a task failed");
  rill_task_release(prod);
  rill_task_release(cons);
  rill_queue_release(s.q);
  rill_loop_free(loop);
  w6_result(coro ? "rill-c-coro" : "rill-c-step", rill_version_string(), p, s.sum, wall);
  return 0;
}
