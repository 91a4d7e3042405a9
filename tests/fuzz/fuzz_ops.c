/* fuzz_ops.c - random sequences of public API calls, checked against the
 * contract's invariants (issue 17, item 3).
 *
 * One program is a byte string read as a sequence of operations on a small
 * pool of futures, tasks, coroutines and handles of one loop: create,
 * retain/release, complete, cancel/uncancel with messages, await, gather,
 * wait, wait_for, shield, sleep futures, timeout scopes, task groups,
 * handles, thread-safe calls, run_once, stop, close from inside a callback;
 * and from 1.1 jobs on the thread pool, DNS look-ups of localhost, signal
 * watchers with raise(), short child processes.
 * Callbacks and task steps read further operations from the same stream, so
 * the API is also exercised re-entrantly. At the end every task is told to
 * finish, the loop is shut down, closed and freed, and the pool released.
 *
 * Invariants checked (a violation prints and aborts):
 *  - every free function handed to rill runs exactly once, and nothing runs
 *    after its free function ran;
 *  - timers never fire early (call_later/call_at callbacks, task sleeps,
 *    coroutine sleeps, sleep futures), by the caller's own monotonic clock;
 *  - every task ends, and the loop closes and frees clean (under ASan/LSan
 *    or valgrind: no leak, no invalid access);
 *  - every call returns what the contract allows (a code, never a crash).
 *
 * Two front ends share the interpreter:
 *  - rill_fuzz_ops [--seed S] [--programs P] [--ops N] [--only K]: P programs
 *    of about N operations each from a seeded PRNG (what ctest runs,
 *    bounded); --only K replays program K of that seed (timers make a
 *    replay close to, not exactly, the first run);
 *  - LLVMFuzzerTestOneInput when built with -fsanitize=fuzzer (RILL_LIBFUZZER).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"

#define FUT_SLOTS 48
#define TASK_SLOTS 24
#define HANDLE_SLOTS 24
#define MAX_DEPTH 3

static void die(const char *what, long a) {
  fprintf(stderr, "fuzz_ops: invariant broken: %s (%ld)\n", what, a);
  fflush(stderr);
  abort();
}
#define CHECK(cond, what, a) \
  do {                       \
    if (!(cond)) die(what, (long)(a)); \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- */
/* The input stream                                                   */

static const uint8_t *in_data;
static size_t in_len, in_pos;

static unsigned next(unsigned n) { /* 0..n-1; 0 once the input is spent */
  if (in_pos >= in_len || n == 0) return 0;
  return in_data[in_pos++] % n;
}
static int spent(void) { return in_pos >= in_len; }

/* ---------------------------------------------------------------- */
/* Tracked args: every one is freed exactly once, never run after    */

typedef struct tracked {
  int runs, frees;
  int given;       /* handed to rill: rill must free it */
  int kind;        /* what it was given to (for messages) */
  double deadline; /* for timers: not to run before */
  struct tracked *next_all;
} tracked;

static tracked *all_tracked;
static long n_tracked, n_ops, n_nested;

static tracked *track_new(int kind) {
  tracked *t = calloc(1, sizeof *t);
  if (!t) die("calloc", 0);
  t->kind = kind;
  t->deadline = -INFINITY;
  t->next_all = all_tracked;
  all_tracked = t;
  n_tracked++;
  return t;
}
static void track_free(void *p) {
  tracked *t = p;
  CHECK(t->frees == 0, "a free function ran twice", t->frees);
  t->frees++;
}
static void track_run(tracked *t) {
  CHECK(t->frees == 0, "a callback ran after its free function", t->kind);
  t->runs++;
  CHECK(t->kind == 'T' || t->runs == 1, "a one-shot callback ran twice", t->kind);
}

/* ---------------------------------------------------------------- */
/* The pool                                                           */

typedef struct tstate tstate;
static rill_loop *loop;
static rill_future *futs[FUT_SLOTS];   /* one reference each */
/* Creation order of what each slot holds. A task mostly awaits futures
 * older than itself; in a program of cycles mode, one time in eight it
 * awaits any future, so wait cycles form (a task awaiting a gather of
 * itself, two tasks awaiting each other) and the end phase's cancel must
 * unwind them. A program either builds cycles or uses task groups, not
 * both: a cycle through a group's join never unwinds once the group is
 * aborting, in asyncio too (a second cancel of the join is not passed on
 * to the children), so such a program would hang by its own fault. */
static uint64_t fut_seq[FUT_SLOTS], seq_counter;
static unsigned char fut_join[FUT_SLOTS]; /* for the hang report */
static int cycles_mode;
static rill_task *tasks[TASK_SLOTS];   /* one reference each */
static rill_handle *handles[HANDLE_SLOTS];
static int finishing;                  /* end phase: tasks complete when stepped */
static int depth;
static long reports;

static int free_slot(void **slots, int n) {
  int start = (int)next((unsigned)n);
  for (int i = 0; i < n; i++)
    if (!slots[(start + i) % n]) return (start + i) % n;
  return -1;
}
static int used_slot(void **slots, int n) {
  int start = (int)next((unsigned)n);
  for (int i = 0; i < n; i++)
    if (slots[(start + i) % n]) return (start + i) % n;
  return -1;
}
static int some_slot(void) { return used_slot((void **)futs, FUT_SLOTS); }
static rill_future *some_future(void) {
  int i = some_slot();
  return i < 0 ? NULL : futs[i];
}
/* A pool future created before seq (see fut_seq), or NULL. */
static rill_future *older_future(uint64_t seq) {
  if (cycles_mode && next(8) == 0) return some_future();
  int start = (int)next(FUT_SLOTS);
  for (int k = 0; k < FUT_SLOTS; k++) {
    int i = (start + k) % FUT_SLOTS;
    if (futs[i] && fut_seq[i] < seq) return futs[i];
  }
  return NULL;
}
static void put_future_seq(rill_future *f, uint64_t seq) {
  if (!f) return;
  int i = free_slot((void **)futs, FUT_SLOTS);
  if (i < 0) {
    rill_future_release(f);
    return;
  }
  futs[i] = f;
  fut_seq[i] = seq;
  fut_join[i] = 0;
}
static void put_future(rill_future *f) { put_future_seq(f, ++seq_counter); }
static void put_join(rill_future *f) {
  int i = free_slot((void **)futs, FUT_SLOTS);
  if (i < 0) {
    rill_future_release(f);
    return;
  }
  futs[i] = f;
  fut_seq[i] = ++seq_counter;
  fut_join[i] = 1;
}

static void op(void);

static const double delays[] = {0.0, 0.0001, 0.0005, 0.001, 0.002, -1.0};
static double some_delay(void) { return delays[next(sizeof delays / sizeof *delays)]; }
static const char *const messages[] = {NULL, "", "why", "a longer cancel message"};
static const char *some_message(void) { return messages[next(4)]; }

/* ---------------------------------------------------------------- */
/* Callbacks                                                          */

static void handle_fn(void *arg) {
  tracked *t = arg;
  track_run(t);
  CHECK(now() >= t->deadline, "a timer callback ran early", 0);
  if (depth < MAX_DEPTH) {
    depth++;
    n_nested++;
    op();
    depth--;
  }
}

static void done_fn(rill_future *f, void *arg) {
  tracked *t = arg;
  track_run(t);
  CHECK(rill_future_done(f) == 1, "a done callback ran on a pending future", 0);
  if (next(2)) (void)rill_future_error(f); /* retrieve, sometimes */
  if (depth < MAX_DEPTH) {
    depth++;
    n_nested++;
    op();
    depth--;
  }
}

static void on_report(rill_loop *l, const char *message, rill_future *f, void *arg) {
  (void)l, (void)message, (void)f, (void)arg;
  reports++;
}

/* ---------------------------------------------------------------- */
/* Step tasks: a little script per task                               */

struct tstate {
  tracked *trk;
  double sleep_until; /* NaN when not sleeping */
  rill_timeout *scope;
  int steps;
  uint64_t seq; /* creation order: awaits only older futures */
};

static void tstate_free(void *p) {
  tstate *s = p;
  if (s->scope) rill_timeout_release(s->scope);
  track_free(s->trk);
  free(s);
}

static void step(rill_task *task, void *arg) {
  tstate *s = arg;
  track_run(s->trk);
  s->steps++;
  int cancel = rill_task_cancel_requested(task);
  CHECK(cancel == 0 || cancel == 1, "cancel_requested gave a code", cancel);
  if (!isnan(s->sleep_until) && !cancel)
    CHECK(now() >= s->sleep_until, "a task sleep ended early", s->steps);
  s->sleep_until = NAN;
  rill_future *self = rill_task_future(task);
  if (finishing || s->steps > 200) {
    int rc = cancel ? rill_future_fail(self, RILL_ECANCELLED, NULL, NULL, NULL, NULL)
                    : rill_future_set_none(self);
    CHECK(rc == 0, "a task could not complete its own future", rc);
    return;
  }
  if (depth < MAX_DEPTH && next(4) == 0) {
    depth++;
    n_nested++;
    op();
    depth--;
    /* The nested op ran inside this step, so it may have completed our own
     * future (the pool holds it too). */
    if (rill_future_done(self)) return;
  }
  int rc;
  switch (next(10)) {
  case 0: { /* await a pool future */
    rill_future *f = older_future(s->seq);
    if (f && f != self && rill_future_loop(f) == loop) {
      rc = rill_task_wait(task, f);
      if (rc == 0) return;
      CHECK(rc == RILL_EINVAL || rc == RILL_ESTATE, "task_wait code", rc);
    }
    rc = rill_task_yield(task);
    CHECK(rc == 0, "task_yield after a refused wait", rc);
    return;
  }
  case 1:
  case 2:
    rc = rill_task_yield(task);
    CHECK(rc == 0, "task_yield", rc);
    /* arranging twice is refused */
    CHECK(rill_task_yield(task) == RILL_ESTATE, "second arrange accepted", 0);
    return;
  case 3: {
    double d = some_delay();
    double t0 = now();
    rc = rill_task_sleep(task, d);
    CHECK(rc == 0, "task_sleep", rc);
    if (d > 0 && !rill_task_cancel_requested(task)) s->sleep_until = t0 + d;
    return;
  }
  case 4: /* a timeout scope around the next steps */
    if (!s->scope) {
      s->scope = rill_timeout_new(task, some_delay());
    } else {
      rc = rill_timeout_exit(s->scope, cancel ? RILL_ECANCELLED : 0);
      rill_timeout_release(s->scope);
      s->scope = NULL;
      if (rc == RILL_ETIMEDOUT) {
        CHECK(rill_future_fail(self, RILL_ETIMEDOUT, "scope", NULL, NULL, NULL) == 0,
              "fail after timeout", 0);
        return;
      }
    }
    CHECK(rill_task_yield(task) == 0, "yield in scope", 0);
    return;
  case 5:
    CHECK(rill_future_set_int(self, s->steps) == 0, "set_int on own task", 0);
    /* completing twice is refused */
    CHECK(rill_future_set_none(self) == RILL_ESTATE, "second completion accepted", 0);
    return;
  case 6:
    CHECK(rill_future_fail(self, -1000 - (int)next(5), "task failed", NULL, NULL, NULL) == 0,
          "fail own task", 0);
    return;
  case 7:
    if (cancel) {
      CHECK(rill_future_fail(self, RILL_ECANCELLED, rill_task_cancel_message(task), NULL, NULL,
                             NULL) == 0,
            "end cancelled", 0);
      return;
    }
    /* fallthrough */
  default: { /* await a fresh sleep future */
    double d = some_delay();
    rill_future *sf = rill_sleep_future(loop, d);
    if (!sf) {
      CHECK(isnan(d) || d < 0 || rill_last_error() == RILL_ENOMEM, "sleep_future", d);
      CHECK(rill_task_yield(task) == 0, "yield", 0);
      return;
    }
    CHECK(rill_task_wait(task, sf) == 0, "wait sleep future", 0);
    rill_future_release(sf);
    return;
  }
  }
}

/* ---------------------------------------------------------------- */
/* C coroutines                                                       */

typedef struct cstate {
  unsigned script[16];
  uint64_t seq;
  struct cstate *next_all;
} cstate;
/* rill_spawn takes no free function and a coroutine cancelled before its
 * first step never runs, so the states are freed at the end of a program. */
static cstate *all_cstates;

static int coro_body(cstate *c);
static int coro(void *arg) { return coro_body(arg); }
static int coro_body(cstate *c) {
  rill_task *self = rill_current_task();
  CHECK(self != NULL, "coroutine without a current task", 0);
  int rc = 0;
  for (int i = 0; i < 16 && !finishing; i++) {
    switch (c->script[i] % 5) {
    case 0:
      rc = rill_yield();
      break;
    case 1: {
      double d = delays[c->script[i] / 5 % 5];
      double t0 = now();
      rc = rill_sleep(d);
      if (rc == 0) CHECK(now() >= t0 + d, "a coroutine sleep ended early", i);
      break;
    }
    case 2: { /* await a pool future, retained for the await */
      rill_future *f = NULL;
      for (int k = 0; k < FUT_SLOTS && !f; k++) {
        int j = (int)((c->script[i] + (unsigned)k) % FUT_SLOTS);
        if (futs[j] && fut_seq[j] < c->seq && futs[j] != rill_task_future(self)) f = futs[j];
      }
      if (!f) break;
      rill_future_retain(f);
      rc = rill_await(f);
      rill_future_release(f);
      break;
    }
    case 3: { /* wait_for a sleep */
      rill_future *s = rill_sleep_future(rill_loop_current(), 0.002);
      if (!s) break;
      rill_future *w = rill_wait_for(rill_loop_current(), s, 0.001);
      rill_future_release(s);
      if (!w) break;
      rc = rill_await(w);
      CHECK(rc == 0 || rc == RILL_ETIMEDOUT || rc == RILL_ECANCELLED, "wait_for outcome", rc);
      rill_future_release(w);
      break;
    }
    default:
      if (c->script[i] & 32) return -1000 - (int)(c->script[i] % 7);
      break;
    }
    if (rc == RILL_ECANCELLED && (c->script[i] & 64)) return rc; /* propagate */
    rc = 0;                                                     /* or catch it */
  }
  return RILL_OK;
}

/* ---------------------------------------------------------------- */
/* Operations                                                         */

static void op_future_set(void) {
  rill_future *f = some_future();
  if (!f) return;
  int rc;
  switch (next(9)) {
  case 0: rc = rill_future_set_none(f); break;
  case 1: rc = rill_future_set_bool(f, (int)next(2)); break;
  case 2: rc = rill_future_set_int(f, (int64_t)next(256) - 128); break;
  case 3: rc = rill_future_set_double(f, 0.5 * next(8)); break;
  case 4: rc = rill_future_set_bytes(f, "bytes!", next(7)); break;
  case 5: {
    tracked *t = track_new('P');
    rc = rill_future_set_pointer(f, t, track_free, &in_pos);
    if (rc == 0) t->given = 1;
    else track_free(t); /* stays ours on failure */
    break;
  }
  case 6: {
    tracked *t = track_new('F');
    t->given = 1; /* freed at once on failure too */
    rc = rill_future_fail(f, next(2) ? -1000 : RILL_ETIMEDOUT, some_message(), t, track_free,
                          &in_pos);
    break;
  }
  case 7: rc = rill_future_cancel(f); CHECK(rc == 0 || rc == 1, "cancel code", rc); return;
  default: rc = rill_future_cancel_msg(f, some_message()); CHECK(rc == 0 || rc == 1, "cancel_msg code", rc); return;
  }
  CHECK(rc == 0 || rc == RILL_ESTATE || rc == RILL_ECLOSED, "setter code", rc);
}

static void op_read(void) {
  rill_future *f = some_future();
  if (!f) return;
  int st = rill_future_state(f);
  CHECK(st >= RILL_PENDING && st <= RILL_CANCELLED, "state", st);
  int64_t i;
  double d;
  int b;
  size_t len;
  (void)rill_future_int(f, &i);
  (void)rill_future_double(f, &d);
  (void)rill_future_bool(f, &b);
  (void)rill_future_bytes(f, &len);
  (void)rill_future_kind(f);
  if (next(2)) {
    int e = rill_future_error(f);
    const char *m = rill_future_error_message(f);
    if (st == RILL_FAILED || st == RILL_CANCELLED) CHECK(m != NULL && e < 0, "error of a failed future", e);
    (void)rill_future_error_payload(f, &in_pos);
  }
  (void)rill_gather_count(f);
  (void)rill_gather_child(f, next(4));
}

static void op_on_done(void) {
  rill_future *f = some_future();
  if (!f) return;
  tracked *t = track_new('D');
  int rc = rill_future_on_done(f, done_fn, t, track_free);
  if (rc == 0) t->given = 1;
  else {
    CHECK(rc == RILL_ECLOSED || rc == RILL_ENOMEM, "on_done code", rc);
    t->frees = 1; /* ours, never given */
  }
  if (rc == 0 && next(3) == 0) {
    int n = rill_future_remove_done(f, done_fn, t);
    CHECK(n == 0 || n == 1, "remove_done count", n);
  }
}

static void op_handle(void) {
  int slot = free_slot((void **)handles, HANDLE_SLOTS);
  if (slot < 0) {
    slot = used_slot((void **)handles, HANDLE_SLOTS);
    rill_handle_release(handles[slot]);
    handles[slot] = NULL;
  }
  tracked *t = track_new('H');
  rill_handle *h;
  unsigned kind = next(3);
  double d = some_delay();
  double t0 = now();
  if (kind == 0) h = rill_call_soon(loop, (rill_fn)handle_fn, t, track_free);
  else if (kind == 1) h = rill_call_later(loop, d, (rill_fn)handle_fn, t, track_free);
  else h = rill_call_at(loop, rill_loop_time(loop) + d, (rill_fn)handle_fn, t, track_free);
  if (!h) {
    t->frees = 1; /* not given */
    return;
  }
  t->given = 1;
  if (kind == 1 && d > 0) t->deadline = t0 + d;
  handles[slot] = h;
}

static void op_handle_cancel(void) {
  int slot = used_slot((void **)handles, HANDLE_SLOTS);
  if (slot < 0) return;
  rill_handle_cancel(handles[slot]);
  CHECK(rill_handle_cancelled(handles[slot]) >= 0, "cancelled", 0);
  if (next(2)) {
    rill_handle_release(handles[slot]);
    handles[slot] = NULL;
  }
}

static void op_task_new(void) {
  int slot = free_slot((void **)tasks, TASK_SLOTS);
  if (slot < 0) return;
  tstate *s = calloc(1, sizeof *s);
  if (!s) die("calloc", 0);
  s->trk = track_new('T');
  s->sleep_until = NAN;
  s->seq = ++seq_counter;
  rill_task *t = rill_task_new(loop, step, s, tstate_free);
  if (!t) {
    s->trk->frees = 1;
    free(s);
    return;
  }
  s->trk->given = 1;
  if (next(3) == 0) rill_task_set_name(t, "fuzzed");
  tasks[slot] = t;
  if (next(2)) put_future_seq(rill_future_retain(rill_task_future(t)), s->seq);
}

static void op_spawn(void) {
  int slot = free_slot((void **)tasks, TASK_SLOTS);
  if (slot < 0) return;
  cstate *c = malloc(sizeof *c);
  if (!c) die("malloc", 0);
  c->next_all = all_cstates;
  all_cstates = c;
  for (int i = 0; i < 16; i++) c->script[i] = next(256);
  c->seq = ++seq_counter;
  rill_task *t = rill_spawn(loop, coro, c);
  if (!t) return;
  tasks[slot] = t;
  if (next(2)) put_future_seq(rill_future_retain(rill_task_future(t)), c->seq);
}

static void op_task_cancel(void) {
  int slot = used_slot((void **)tasks, TASK_SLOTS);
  if (slot < 0) return;
  rill_task *t = tasks[slot];
  switch (next(4)) {
  case 0: {
    int rc = rill_task_cancel(t, some_message());
    CHECK(rc == 0 || rc == 1 || rc == RILL_ECLOSED, "task_cancel code", rc);
    break;
  }
  case 1: {
    int rc = rill_task_uncancel(t);
    CHECK(rc >= 0, "uncancel code", rc);
    break;
  }
  case 2:
    (void)rill_task_cancelling(t);
    (void)rill_task_cancel_message(t);
    (void)rill_task_name(t);
    break;
  default:
    rill_task_release(t);
    tasks[slot] = NULL;
  }
}

static void op_combinator(void) {
  rill_future *kids[4];
  size_t n = next(5);
  for (size_t i = 0; i < n; i++) {
    kids[i] = some_future();
    if (!kids[i]) n = i;
  }
  rill_future *f = NULL;
  switch (next(5)) {
  case 0: f = rill_gather(loop, n, kids, next(2) ? RILL_GATHER_RETURN_ERRORS : 0); break;
  case 1: if (n) f = rill_wait_for(loop, kids[0], next(3) ? some_delay() : RILL_FOREVER); break;
  case 2: if (n) f = rill_shield(loop, kids[0]); break;
  case 3: if (n) f = rill_wait(loop, n, kids, (int)next(3), next(2) ? some_delay() : RILL_FOREVER); break;
  default: {
    double d = some_delay();
    double t0 = now();
    f = rill_sleep_future(loop, d);
    if (f && d > 0) {
      tracked *t = track_new('S');
      t->deadline = t0 + d;
      if (rill_future_on_done(f, done_fn, t, track_free) == 0) t->given = 1;
      else t->frees = 1;
    }
  }
  }
  put_future(f);
}

static void op_group(void) {
  /* A group with a parent task of the pool, two step children, joined at
   * once with a body code: exercises add/join/finish/cancel paths. */
  if (cycles_mode) return;
  int slot = used_slot((void **)tasks, TASK_SLOTS);
  rill_task *parent = slot < 0 ? NULL : tasks[slot];
  rill_group *g = rill_group_new(loop, next(2) ? parent : NULL);
  if (!g) return;
  for (int i = 0, n = (int)next(3); i < n; i++) {
    tstate *s = calloc(1, sizeof *s);
    if (!s) die("calloc", 0);
    s->trk = track_new('T');
    s->sleep_until = NAN;
    s->seq = ++seq_counter;
    rill_task *c = rill_task_new(loop, step, s, tstate_free);
    if (!c) {
      s->trk->frees = 1;
      free(s);
      continue;
    }
    s->trk->given = 1;
    int rc = rill_group_add(g, c);
    CHECK(rc == 0 || rc == RILL_ESTATE, "group_add", rc);
    rill_task_release(c);
  }
  if (next(2)) {
    rill_future *j = rill_group_join(g, next(2) ? 0 : -1000);
    if (j) put_join(rill_future_retain(j)); /* borrowed: keep our own ref */
  }
  (void)rill_group_count(g);
  (void)rill_group_error_count(g);
  rill_group_release(g);
}

static void op_threadsafe(void) {
  tracked *t = track_new('X');
  int rc = rill_call_soon_threadsafe(loop, (rill_fn)handle_fn, t, track_free);
  if (rc == 0) t->given = 1;
  else t->frees = 1;
}

static void op_loop(void) {
  switch (next(6)) {
  case 0:
  case 1: {
    int rc = rill_loop_run_once(loop, 0);
    CHECK(rc >= 0 || rc == RILL_EBUSY, "run_once code", rc);
    break;
  }
  case 2: {
    int rc = rill_loop_run_once(loop, 0.001);
    CHECK(rc >= 0 || rc == RILL_EBUSY, "run_once(0.001) code", rc);
    break;
  }
  case 3:
    rill_loop_stop(loop);
    break;
  case 4: { /* close from inside the loop is refused */
    if (depth > 0) CHECK(rill_loop_close(loop) == RILL_EBUSY, "close inside the loop", 0);
    break;
  }
  default:
    (void)rill_loop_task_count(loop);
    (void)rill_loop_time(loop);
  }
}

/* ---- 1.1: the thread pool, DNS, signals, processes ---- */

static void work_fn(rill_work *w, void *arg) {
  tracked *t = arg;
  /* A pool thread: it only writes its outcome (never the loop). */
  switch (t->deadline > 0 ? 0 : 1) {
  case 0: rill_work_set_int(w, 42); break;
  default: rill_work_fail(w, -1000, "job failed", NULL, NULL, NULL);
  }
}

static void op_thread(void) {
  tracked *t = track_new('W');
  t->deadline = next(2) ? 1.0 : 0.0; /* which outcome (not a deadline here) */
  rill_future *f = rill_run_in_thread(loop, work_fn, t, track_free);
  if (!f) {
    t->frees = 1;
    return;
  }
  t->given = 1;
  if (next(3) == 0) rill_future_cancel(f);
  put_future(f);
}

static void op_dns(void) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = next(2) ? AI_NUMERICHOST : 0;
  rill_future *f = rill_getaddrinfo(loop, next(2) ? "127.0.0.1" : "localhost", "80", &hints);
  if (f && next(4) == 0) rill_future_cancel(f);
  put_future(f);
}

static rill_signal *sigs[4];
static void signal_fn(rill_signal *sig, int signum, void *arg) {
  (void)sig, (void)signum;
  track_run(arg);
  /* runs once per delivery batch: a one-shot count does not fit here */
  ((tracked *)arg)->runs = 0;
}

static void op_signal(void) {
  unsigned k = next(4);
  if (!sigs[k]) {
    tracked *t = track_new('G');
    sigs[k] = rill_signal_start(loop, k % 2 ? SIGUSR1 : SIGUSR2, signal_fn, t, track_free);
    if (sigs[k]) t->given = 1;
    else t->frees = 1;
  } else if (next(2)) {
    raise(k % 2 ? SIGUSR1 : SIGUSR2);
  } else {
    rill_signal_stop(sigs[k]);
    rill_signal_release(sigs[k]);
    sigs[k] = NULL;
  }
}

static void op_process(void) {
  if (next(16)) return; /* a fork is dear: one time in sixteen */
  static const char *const true_argv[] = {"/bin/true", NULL};
  static const char *const sleep_argv[] = {"/bin/sleep", "0.002", NULL};
  int stdio[3] = {RILL_STDIO_DEVNULL, RILL_STDIO_DEVNULL, RILL_STDIO_DEVNULL};
  rill_process *p = rill_process_spawn(loop, next(2) ? true_argv : sleep_argv, NULL, NULL, stdio);
  if (!p) return;
  if (next(3) == 0) rill_process_kill(p);
  if (next(2)) put_future(rill_process_wait(p));
  rill_process_release(p);
}

/* 1.1 sync primitives (no condition: a cancelled wait needs its lock
 * back, and a program may keep the lock forever, which would hang the
 * end phase as it would in asyncio). Their futures join the pool, so
 * tasks await, cancel and gather them; queued items are tracked. */
static rill_lock *s_lock;
static rill_semaphore *s_sem;
static rill_event *s_event;
static rill_queue *s_queue;
static rill_barrier *s_barrier;
static const char queue_tag = 0;

static void sync_release_all(void) {
  rill_lock_release(s_lock);
  rill_semaphore_release(s_sem);
  rill_event_release(s_event);
  rill_queue_release(s_queue);
  rill_barrier_release(s_barrier);
  s_lock = NULL;
  s_sem = NULL;
  s_event = NULL;
  s_queue = NULL;
  s_barrier = NULL;
}

static void op_sync(void) {
  if (!s_lock) {
    s_lock = rill_lock_new(loop);
    s_sem = rill_semaphore_new(loop, (int)next(3), (int)next(2));
    s_event = rill_event_new(loop);
    s_queue = rill_queue_new(loop, (int)next(3), (int)next(3));
    s_barrier = rill_barrier_new(loop, 1 + (int)next(3));
    CHECK(s_lock && s_sem && s_event && s_queue && s_barrier, "sync new", 0);
  }
  int rc;
  switch (next(16)) {
  case 0: put_future(rill_lock_acquire(s_lock)); break;
  case 1:
    rc = rill_lock_unlock(s_lock);
    CHECK(rc == 0 || rc == RILL_ENOTLOCKED, "lock unlock code", rc);
    break;
  case 2:
    rc = rill_lock_try_acquire(s_lock);
    CHECK(rc == 0 || rc == 1, "lock try_acquire code", rc);
    break;
  case 3: put_future(rill_semaphore_acquire(s_sem)); break;
  case 4:
    rc = rill_semaphore_post(s_sem);
    CHECK(rc == 0 || rc == RILL_ETOOMANY, "semaphore post code", rc);
    CHECK(rill_semaphore_value(s_sem) >= 0, "semaphore value", 0);
    break;
  case 5: put_future(rill_event_wait(s_event)); break;
  case 6: CHECK((next(2) ? rill_event_set(s_event) : rill_event_clear(s_event)) == 0, "event", 0); break;
  case 7: {
    tracked *t = track_new('Q');
    rill_future *f = rill_queue_put_pointer(s_queue, t, track_free, &queue_tag, (int64_t)next(4));
    if (f) {
      t->given = 1;
      put_future(f);
    } else {
      CHECK(rill_last_error() == RILL_ESHUTDOWN, "queue put code", rill_last_error());
    }
    break;
  }
  case 8:
    rc = rill_queue_put_nowait_int(s_queue, (int64_t)next(100), (int64_t)next(4));
    CHECK(rc == 0 || rc == RILL_EFULL || rc == RILL_ESHUTDOWN, "queue put_nowait code", rc);
    break;
  case 9: {
    rill_future *f = rill_queue_get(s_queue);
    CHECK(f || rill_last_error() == RILL_ESHUTDOWN, "queue get code", rill_last_error());
    put_future(f);
    break;
  }
  case 10: {
    rill_future *f = rill_queue_get_nowait(s_queue);
    CHECK(f || rill_last_error() == RILL_EEMPTY || rill_last_error() == RILL_ESHUTDOWN,
          "queue get_nowait code", rill_last_error());
    put_future(f);
    break;
  }
  case 11:
    rc = rill_queue_task_done(s_queue);
    CHECK(rc == 0 || rc == RILL_ETOOMANY, "queue task_done code", rc);
    break;
  case 12: put_future(rill_queue_join(s_queue)); break;
  case 13:
    if (next(8) == 0) CHECK(rill_queue_shutdown(s_queue, (int)next(2)) == 0, "queue shutdown", 0);
    CHECK(rill_queue_qsize(s_queue) >= 0, "queue qsize", 0);
    break;
  case 14: put_future(rill_barrier_wait(s_barrier)); break;
  default:
    CHECK((next(2) ? rill_barrier_abort(s_barrier) : rill_barrier_reset(s_barrier)) == 0, "barrier", 0);
    break;
  }
}

static void op(void) {
  if (spent()) return;
  n_ops++;
  switch (next(21)) {
  case 0: put_future(rill_future_new(loop)); break;
  case 1: op_future_set(); break;
  case 2: {
    int i = used_slot((void **)futs, FUT_SLOTS);
    if (i >= 0) {
      rill_future_release(futs[i]);
      futs[i] = NULL;
    }
    break;
  }
  case 3: {
    int i = some_slot();
    if (i >= 0 && fut_join[i]) put_join(rill_future_retain(futs[i]));
    else if (i >= 0) put_future_seq(rill_future_retain(futs[i]), fut_seq[i]);
    break;
  }
  case 4: op_on_done(); break;
  case 5: op_read(); break;
  case 6: op_handle(); break;
  case 7: op_handle_cancel(); break;
  case 8: op_task_new(); break;
  case 9: op_spawn(); break;
  case 10: op_task_cancel(); break;
  case 11: op_combinator(); break;
  case 12: op_group(); break;
  case 13: op_threadsafe(); break;
  case 14: op_thread(); break;
  case 15: op_dns(); break;
  case 16: op_signal(); break;
  case 17: op_process(); break;
  case 18: op_sync(); break;
  default: op_loop(); break;
  }
}

/* ---------------------------------------------------------------- */
/* One program                                                        */

static int run_program(const uint8_t *data, size_t len) {
  in_data = data;
  in_len = len;
  in_pos = 0;
  finishing = 0;
  depth = 0;
  loop = rill_loop_new();
  CHECK(loop != NULL, "loop_new", 0);
  CHECK(rill_loop_set_exception_handler(loop, on_report, NULL, NULL) == 0, "handler", 0);
  cycles_mode = next(4) == 0;
  while (!spent()) op();

  /* End phase: every task finishes when next stepped; shutdown cancels the
   * rest and runs until all are done. */
  finishing = 1;
  int rc = rill_loop_shutdown(loop);
  CHECK(rc == 0, "shutdown", rc);
  CHECK(rill_loop_task_count(loop) == 0, "tasks left after shutdown", rill_loop_task_count(loop));
  for (int i = 0; i < 1000 && rill_loop_run_once(loop, 0) > 0; i++) {
  }
  for (int i = 0; i < HANDLE_SLOTS; i++) {
    rill_handle_release(handles[i]);
    handles[i] = NULL;
  }
  for (int i = 0; i < 4; i++) {
    if (sigs[i]) rill_signal_stop(sigs[i]);
    rill_signal_release(sigs[i]);
    sigs[i] = NULL;
  }
  for (int i = 0; i < TASK_SLOTS; i++) {
    rill_task_release(tasks[i]);
    tasks[i] = NULL;
  }
  rill_loop_free(loop); /* closes: pending handles/futures dropped */
  sync_release_all();
  for (int i = 0; i < FUT_SLOTS; i++) {
    rill_future_release(futs[i]);
    futs[i] = NULL;
  }
  loop = NULL;

  while (all_cstates) {
    cstate *c = all_cstates;
    all_cstates = c->next_all;
    free(c);
  }
  /* Every tracked arg given to rill was freed exactly once. */
  while (all_tracked) {
    tracked *t = all_tracked;
    all_tracked = t->next_all;
    if (t->given) CHECK(t->frees == 1, "a free function never ran", t->runs);
    free(t);
  }
  return 0;
}

#ifdef RILL_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) size = 4096;
  return run_program(data, size);
}
#else
/* A program that runs longer than this has hung (every delay is <= 2 ms):
 * say what is pending, then fail. Diagnostics only, so not signal-safe. */
static const char *state_name(rill_future *f) {
  static const char *const names[] = {"pending", "done", "failed", "cancelled"};
  int st = rill_future_state(f);
  return st >= 0 && st <= 3 ? names[st] : "?";
}
static void on_hang(int sig) {
  (void)sig;
  fprintf(stderr, "fuzz_ops: invariant broken: a program hung; pending tasks:\n%s\n",
          loop ? rill_loop_dump_tasks(loop) : "(no loop)");
  for (int i = 0; i < FUT_SLOTS; i++) {
    rill_future *f = futs[i];
    if (!f || rill_future_state(f) != RILL_PENDING) continue;
    rill_task *t = rill_task_from_future(f);
    fprintf(stderr, "  pool[%d] %p pending%s%s%s, %zu children:", i, (void *)f, t ? " task " : "",
            t ? rill_task_name(t) : "", fut_join[i] ? " (join)" : "", rill_gather_count(f));
    for (size_t k = 0; k < rill_gather_count(f); k++) {
      rill_future *c = rill_gather_child(f, k);
      rill_task *ct = rill_task_from_future(c);
      fprintf(stderr, " %p %s%s%s", (void *)c, state_name(c), ct ? " " : "", ct ? rill_task_name(ct) : "");
    }
    fprintf(stderr, "\n");
  }
  abort();
}

static uint64_t rng_state;
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int main(int argc, char **argv) {
  unsigned long long seed = 1, programs = 100, ops = 1000, only = ~0ull;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--programs")) programs = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--ops")) ops = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--only")) only = strtoull(argv[i + 1], NULL, 10);
    else {
      fprintf(stderr, "usage: %s [--seed S] [--programs P] [--ops N] [--only K]\n", argv[0]);
      return 2;
    }
  }
  /* about 3 bytes per operation */
  size_t len = (size_t)ops * 3;
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return 2;
  double t0 = now();
  signal(SIGALRM, on_hang);
  for (unsigned long long p = 0; p < programs; p++) {
    alarm(getenv("RILL_FUZZ_ALARM") ? (unsigned)atoi(getenv("RILL_FUZZ_ALARM")) : 20);
    if (only != ~0ull && p != only) continue; /* replay one program */
    rng_state = seed * 1000003ull + p;
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng();
    if (getenv("RILL_FUZZ_VERBOSE")) fprintf(stderr, "program %llu (seed %llu)\n", p, seed);
    run_program(buf, len);
  }
  free(buf);
  printf("fuzz_ops: %llu programs, %ld operations (%ld nested in callbacks/steps), "
         "%ld tracked args, %ld reports, %.2f s: all invariants held\n",
         programs, n_ops, n_nested, n_tracked, reports, now() - t0);
  return 0;
}
#endif
