/* task.c - tasks: futures driven by a step function, stepping and
 * cancellation, the loop's strong references, unretrieved failures. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int task_cancel_hook(rill_future *f, const char *msg);
static void task_destroy_hook(rill_future *f);
static void task_completed_hook(rill_future *f);

const rill__future_type rill__task_type = {"task", task_cancel_hook, task_destroy_hook, NULL,
                                           task_completed_hook};

static void wake_run(rill__node *node, int discard);
static void timer_run(rill__node *node, int discard);

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = malloc(n);
  if (copy) memcpy(copy, s, n);
  return copy;
}

/* The task's extra part, allocated on first use; NULL when out of memory
 * (nothing recorded). */
static rill__task_extra *task_extra(rill_task *t) {
  if (RILL__LIKELY(t->extra != NULL)) return t->extra;
  rill__task_extra *x = rill__alloc(t->fut.loop, sizeof *x);
  if (!x) return NULL;
  memset(x, 0, sizeof *x);
  x->timer.heap_index = RILL__NOT_IN_HEAP;
  x->timer.node.run = timer_run;
  x->task = t;
  t->extra = x;
  return x;
}

/* ---------------------------------------------------------------- */

rill_task *rill__task_new(rill_loop *loop, rill_step_fn step, void *arg, rill_free_fn free_arg,
                          size_t extra) {
  if (rill__loop_check(loop)) return NULL;
  if (!step) {
    rill__fail(RILL_EINVAL, "step is NULL");
    return NULL;
  }
  rill_task *t = (rill_task *)rill__future_alloc_unlinked(loop, &rill__task_type,
                                                          sizeof(rill_task) + extra);
  if (!t) return NULL;
  char *tail = (char *)t + sizeof(rill_future);
  memset(tail, 0, sizeof(rill_task) + extra - sizeof(rill_future));
  t->step = step;
  t->arg = arg;
  t->free_arg = free_arg;
  t->wake.run = wake_run;
  t->id = ++loop->next_task_id;
  t->fut.refs++; /* the loop's reference, dropped when the task is done */
  t->fut.all_prev = (rill_future *)loop->tasks_tail; /* the first member */
  if (loop->tasks_tail) loop->tasks_tail->fut.all_next = &t->fut;
  else loop->tasks_head = t;
  loop->tasks_tail = t;
  t->in_list = 1;
  loop->task_count++;
  t->wait = RILL__T_READY;
  rill__schedule(loop, &t->wake);
  return t;
}

rill_task *rill_task_new(rill_loop *loop, rill_step_fn step, void *arg, rill_free_fn free_arg) {
  return rill__task_new(loop, step, arg, free_arg, 0);
}

rill_task *rill_task_new_v2(rill_loop *loop, rill_step_fn step, void *arg, rill_free_fn free_arg,
                            unsigned flags) {
  if (flags & ~(unsigned)RILL_TASK_SKIP_CANCELLED_START) {
    rill__fail(RILL_EINVAL, "unknown task flags 0x%x", flags);
    return NULL;
  }
  rill_task *t = rill__task_new(loop, step, arg, free_arg, 0);
  if (t && (flags & RILL_TASK_SKIP_CANCELLED_START)) t->skip_cancelled_start = 1;
  return t;
}

/* The inline arg starts at the first 16-byte boundary after the task. */
#define INLINE_ARG_OFFSET ((sizeof(rill_task) + 15) & ~(size_t)15)

rill_task *rill_task_new_inline(rill_loop *loop, rill_step_fn step, size_t arg_size,
                                rill_free_fn free_arg, unsigned flags) {
  if (flags & ~(unsigned)RILL_TASK_SKIP_CANCELLED_START) {
    rill__fail(RILL_EINVAL, "unknown task flags 0x%x", flags);
    return NULL;
  }
  if (arg_size > UINT32_MAX / 2) {
    rill__fail(RILL_EINVAL, "arg_size is too large");
    return NULL;
  }
  size_t extra = arg_size ? INLINE_ARG_OFFSET - sizeof(rill_task) + arg_size : 0;
  rill_task *t = rill__task_new(loop, step, NULL, free_arg, extra); /* zeroes the extra */
  if (!t) return NULL;
  if (arg_size) t->arg = (char *)t + INLINE_ARG_OFFSET;
  if (flags & RILL_TASK_SKIP_CANCELLED_START) t->skip_cancelled_start = 1;
  return t;
}

static int check_task(const rill_task *t) {
  if (!t) return rill__fail(RILL_EINVAL, "task is NULL");
  return rill__future_check(&t->fut); /* aborts on a freed task */
}

static int check_task_open(const rill_task *t) {
  if (!t) return rill__fail(RILL_EINVAL, "task is NULL");
  rill__future_check(&t->fut); /* aborts on a freed task */
  if (t->fut.loop->closed) return rill__fail(RILL_ECLOSED, "the task's loop is closed");
  return RILL_OK;
}

rill_future *rill_task_future(rill_task *t) {
  if (check_task(t)) return NULL;
  return &t->fut;
}

rill_task *rill_task_from_future(rill_future *f) {
  if (rill__future_check(f)) return NULL;
  return rill__as_task(f);
}

rill_task *rill_task_retain(rill_task *t) {
  if (t) rill_future_retain(&t->fut);
  return t;
}

void rill_task_release(rill_task *t) {
  if (t) rill_future_release(&t->fut);
}

void *rill_task_arg(rill_task *t) {
  if (check_task(t)) return NULL;
  return t->arg;
}

/* Off the pending tasks, onto the loop's futures. */
static void unlink_pending(rill_task *t) {
  if (!t->in_list) return;
  rill_loop *loop = t->fut.loop;
  rill_task *prev = (rill_task *)t->fut.all_prev, *next = (rill_task *)t->fut.all_next;
  if (prev) prev->fut.all_next = (rill_future *)next;
  else loop->tasks_head = next;
  if (next) next->fut.all_prev = (rill_future *)prev;
  else loop->tasks_tail = prev;
  t->in_list = 0;
  loop->task_count--;
  rill__future_link(&t->fut);
}

static void task_completed_hook(rill_future *f) {
  rill_task *t = (rill_task *)f;
  t->wait = RILL__T_DONE;
  unlink_pending(t);
  if (f->state == RILL_FAILED) f->unretrieved = 1;
}

static void task_destroy_hook(rill_future *f) {
  rill_task *t = (rill_task *)f;
  if (t->awaiting) rill_future_release(t->awaiting);
  rill__task_extra *x = t->extra;
  if (x) {
    free(x->cancel_msg);
    free(x->name);
    rill__dealloc(f->loop, x, sizeof *x);
    t->extra = NULL;
  }
}

/* ---------------------------------------------------------------- */
/* Stepping                                                           */

/* After a failed task's done callbacks had their turn: if nobody but the
 * loop can read the failure any more, report it now; otherwise keep it in
 * the loop's unretrieved list until its last reference goes or the loop
 * closes. */
static void unretrieved_check_run(rill__node *node, int discard) {
  rill_task *t = RILL__CONTAINER(node, rill_task, wake);
  rill_loop *loop = t->fut.loop;
  if (!discard && t->fut.unretrieved) {
    if (t->fut.refs > 1) {
      t->fut.in_unretrieved_list = 1;
      t->fut.unr_prev = NULL; /* in place of the (run) callbacks */
      t->fut.unr_next = loop->unretrieved;
      if (loop->unretrieved) loop->unretrieved->unr_prev = &t->fut;
      loop->unretrieved = &t->fut;
      return; /* the list keeps the loop's reference */
    }
    rill__report(loop, &t->fut, "task %s failed and its failure was never retrieved",
                 rill__task_name(t));
    t->fut.unretrieved = 0;
  }
  rill_future_release(&t->fut);
}

static void finish_done_task(rill_task *t) {
  if (t->free_arg) {
    rill_free_fn f = t->free_arg;
    t->free_arg = NULL;
    f(t->arg);
  }
  if (t->fut.state == RILL_FAILED && !t->fut.loop->closed) {
    t->wake.run = unretrieved_check_run;
    rill__schedule(t->fut.loop, &t->wake);
  } else {
    rill_future_release(&t->fut); /* the loop's reference */
  }
}

/* Debug mode's name for the code a task runs: a C coroutine's function,
 * else the step function, when dladdr finds it among the exported symbols
 * (a program linked with -rdynamic); 0 if it has no name to give (a
 * binding's own step function, a static function): no address noise. */
static int describe_entry(const rill_task *t, char *buf, size_t cap) {
  union {
    rill_coro_fn coro;
    rill_step_fn step;
    void *p;
  } entry;
  if (t->is_coro) entry.coro = rill__coro_fn(t);
  else entry.step = t->step;
  Dl_info info;
  if (!entry.p || !dladdr(entry.p, &info) || !info.dli_sname || info.dli_saddr != entry.p) return 0;
  snprintf(buf, cap, "%s", info.dli_sname);
  return 1;
}

/* rill_step_set_describer's table: written at a binding's load, read only
 * by debug mode's report; a mutex keeps both simple. */
#define RILL__DESCRIBERS 32
static struct {
  rill_step_fn step;
  rill_describe_fn describe;
} describers[RILL__DESCRIBERS];
static pthread_mutex_t describers_lock = PTHREAD_MUTEX_INITIALIZER;

int rill_step_set_describer(rill_step_fn step, rill_describe_fn describe) {
  if (!step) return rill__fail(RILL_EINVAL, "rill_step_set_describer: step is NULL");
  int rc = 0;
  pthread_mutex_lock(&describers_lock);
  int slot = -1, empty = -1;
  for (int i = 0; i < RILL__DESCRIBERS; i++) {
    if (describers[i].step == step) slot = i;
    else if (!describers[i].step && empty < 0) empty = i;
  }
  if (slot >= 0) {
    describers[slot].describe = describe;
    if (!describe) describers[slot].step = NULL;
  } else if (describe) {
    if (empty < 0) rc = -1;
    else {
      describers[empty].step = step;
      describers[empty].describe = describe;
    }
  }
  pthread_mutex_unlock(&describers_lock);
  if (rc < 0) return rill__fail(RILL_ENOMEM, "rill_step_set_describer: 32 step functions already have one");
  return 0;
}

static int describe_by_binding(rill_task *t, char *buf, size_t cap) {
  if (t->is_coro || !t->step) return 0;
  rill_describe_fn describe = NULL;
  pthread_mutex_lock(&describers_lock);
  for (int i = 0; i < RILL__DESCRIBERS; i++)
    if (describers[i].step == t->step) describe = describers[i].describe;
  pthread_mutex_unlock(&describers_lock);
  if (!describe) return 0;
  buf[0] = '\0';
  int ok = describe(t, t->arg, buf, cap) == 1 && buf[0];
  buf[cap - 1] = '\0';
  return ok;
}

static void report_slow_step(rill_loop *loop, rill_task *t, double dt) {
  char entry[512];
  if (describe_by_binding(t, entry, sizeof entry) || describe_entry(t, entry, sizeof entry))
    rill__report(loop, NULL, "Executing <Task %s (entry: %s)> took %.3f seconds", rill__task_name(t),
                 entry, dt);
  else
    rill__report(loop, NULL, "Executing <Task %s> took %.3f seconds", rill__task_name(t), dt);
}

void rill__task_run_step(rill_task *t) {
  rill_loop *loop = t->fut.loop;
  if (t->awaiting) {
    /* Woken by the awaited future but about to be told of a cancel: the
     * failure counts as read by this task, as asyncio's wake-up reads the
     * result before it throws CancelledError in (no "never retrieved"). */
    if ((t->must_cancel || t->deliver_cancel) && t->awaiting->state == RILL_FAILED)
      rill__future_mark_retrieved(t->awaiting);
    /* 1.1: a sync wait handed its lock/item just before this cancel
     * passes it on (asyncio's acquire/get do so when cancelled). */
    if ((t->must_cancel || t->deliver_cancel) && t->awaiting->state == RILL_DONE)
      rill__sync_abandoned(t->awaiting);
    rill_future_release(t->awaiting);
    t->awaiting = NULL;
  }
  /* deliver_cancel set outside a step: a cancel that stopped the task's
   * timer is delivered even if uncancelled since (asyncio cancels the
   * sleep's future; timers never fire early). */
  if (t->must_cancel || t->deliver_cancel) {
    t->must_cancel = 0;
    t->deliver_cancel = 1;
  }
  if (RILL__UNLIKELY(t->skip_cancelled_start)) { /* the first step only */
    t->skip_cancelled_start = 0;
    if (t->deliver_cancel) { /* cancelled before it started: never runs */
      t->deliver_cancel = 0;
      if (rill__future_fail_msg(&t->fut, RILL_ECANCELLED, rill__task_cancel_msg(t)))
        rill__future_fail_msg(&t->fut, RILL_ECANCELLED, NULL); /* ENOMEM: no message */
      finish_done_task(t);
      return;
    }
  }
  t->wait = RILL__T_RUNNING;
  t->arranged = 0;
  rill_task *outer = loop->current_task;
  loop->current_task = t;
  if (RILL__UNLIKELY(loop->debug)) {
    double t0 = rill__clock();
    t->step(t, t->arg);
    double dt = rill__clock() - t0;
    if (dt >= loop->slow_duration) report_slow_step(loop, t, dt);
  } else {
    t->step(t, t->arg);
  }
  loop->current_task = outer;
  t->deliver_cancel = 0;
  if (t->fut.state == RILL_PENDING && !t->arranged) {
    rill__future_fail_msg(&t->fut, RILL_ESTATE,
                          "the task's step returned without completing or waiting");
  }
  if (t->fut.state != RILL_PENDING) finish_done_task(t);
}

static void wake_run(rill__node *node, int discard) {
  if (!discard) rill__task_run_step(RILL__CONTAINER(node, rill_task, wake));
}

static void timer_run(rill__node *node, int discard) {
  if (!discard) rill__task_run_step(RILL__CONTAINER(node, rill__task_extra, timer.node)->task);
}

static int check_arranging(rill_task *t) {
  int rc = check_task_open(t);
  if (rc) return rc;
  if (t->fut.loop->current_task != t || t->wait != RILL__T_RUNNING)
    return rill__fail(RILL_ESTATE, "only the task's own step can arrange its resumption");
  if (t->fut.state != RILL_PENDING) return rill__fail(RILL_ESTATE, "the task is done");
  if (t->arranged) return rill__fail(RILL_ESTATE, "the task's resumption is already arranged");
  return RILL_OK;
}

int rill_task_wait(rill_task *t, rill_future *awaited) {
  int rc = check_arranging(t);
  if (rc) return rc;
  if ((rc = rill__future_check(awaited))) return rc;
  if (awaited->loop != t->fut.loop) return rill__fail(RILL_EINVAL, "the future belongs to another loop");
  if (awaited == &t->fut) return rill__fail(RILL_EINVAL, "a task cannot await itself");
  t->arranged = 1;
  t->wait = RILL__T_FUTURE;
  t->awaiting = rill_future_retain(awaited);
  rill__future_add_node(awaited, &t->wake);
  /* A cancel requested during this step goes to the new future at once. */
  if (t->must_cancel && awaited->state == RILL_PENDING &&
      rill_future_cancel_msg(awaited, rill__task_cancel_msg(t)) == 1)
    t->must_cancel = 0;
  return RILL_OK;
}

int rill_task_yield(rill_task *t) {
  int rc = check_arranging(t);
  if (rc) return rc;
  t->arranged = 1;
  t->wait = RILL__T_READY;
  rill__schedule(t->fut.loop, &t->wake);
  return RILL_OK;
}

int rill_task_sleep(rill_task *t, double seconds) {
  if (isnan(seconds)) return rill__fail(RILL_EINVAL, "seconds is NaN");
  if (seconds <= 0 || (t && t->must_cancel)) return rill_task_yield(t);
  int rc = check_arranging(t);
  if (rc) return rc;
  rill_loop *loop = t->fut.loop;
  rill__task_extra *x = task_extra(t);
  if (!x) return rill__fail(RILL_ENOMEM, "out of memory for the task's timer");
  if ((rc = rill__timer_start(loop, &x->timer, rill__clock() + seconds))) return rc;
  t->arranged = 1;
  t->wait = RILL__T_TIMER;
  return RILL_OK;
}

/* ---------------------------------------------------------------- */
/* Cancellation                                                       */

/* Cancels t alone. If t awaits a pending task, returns 1 and sets *next
 * to it: the caller cancels that one next (no recursion, so a chain of
 * awaiting tasks of any depth costs no stack). */
static int cancel_one(rill_task *t, const char *message, rill_task **next) {
  *next = NULL;
  int rc = check_task_open(t);
  if (rc) return rc;
  if (t->fut.state != RILL_PENDING) return 0;
  if (t->forwarding && t->wait == RILL__T_FUTURE) {
    /* The cancel came back to a task it is being passed on from: t waits
     * on something that waits on t (a gather of itself, two tasks awaiting
     * each other). Passing it on again would never end, and the cycle
     * would never complete: t stops waiting and sees the cancel at its
     * await point now. Not a new request: the count stays. */
    t->deliver_cancel = 1;
    if (rill__future_remove_node(t->awaiting, &t->wake)) {
      t->wait = RILL__T_READY;
      rill__schedule(t->fut.loop, &t->wake);
    }
    return 1;
  }
  if (t->cancelling++ == 0 && message && !rill__task_cancel_msg(t)) {
    rill__task_extra *x = task_extra(t);
    if (!x || !(x->cancel_msg = dup_string(message))) {
      t->cancelling--;
      return rill__fail(RILL_ENOMEM, "out of memory copying the cancel message");
    }
  }
  switch (t->wait) {
  case RILL__T_FUTURE: {
    t->forwarding = 1;
    rill_task *inner = rill__as_task(t->awaiting);
    if (inner && t->awaiting->state == RILL_PENDING && !t->awaiting->loop->closed) {
      *next = inner;
      return 1;
    }
    if (rill_future_cancel_msg(t->awaiting, rill__task_cancel_msg(t)) == 1) return 1;
    t->must_cancel = 1;
    return 1;
  }
  case RILL__T_TIMER:
    t->must_cancel = 1;
    if (t->extra->timer.heap_index != RILL__NOT_IN_HEAP) { /* not yet fired: wake now */
      rill__timer_stop(t->fut.loop, &t->extra->timer);
      t->wait = RILL__T_READY;
      t->deliver_cancel = 1; /* committed: uncancel cannot undo it */
      rill__schedule(t->fut.loop, &t->wake);
    }
    return 1;
  default:
    t->must_cancel = 1;
    return 1;
  }
}

int rill_task_cancel(rill_task *t, const char *message) {
  rill_task *next, *first_task = t;
  int first = cancel_one(t, message, &next);
  while (next) {
    rill_task *outer = t;
    t = next;
    /* As rill_future_cancel_msg(awaited) would: if the awaited task cannot
     * take the cancel, the awaiting one gets it at its next step. */
    if (cancel_one(t, rill__task_cancel_msg(outer), &next) != 1) outer->must_cancel = 1;
  }
  /* Unmark the chain: the same awaiting links, up to the first task left
   * unmarked (where a cycle closed, or where the chain ended). */
  for (t = first_task; t && t->forwarding; t = rill__as_task(t->awaiting)) t->forwarding = 0;
  return first;
}

static int task_cancel_hook(rill_future *f, const char *msg) {
  return rill_task_cancel((rill_task *)f, msg);
}

__attribute__((noinline)) static int cancel_requested_slow(rill_task *t) {
  int rc = check_task(t);
  if (rc) return rc;
  if (t->fut.loop->current_task == t && t->wait == RILL__T_RUNNING) return t->deliver_cancel;
  return t->must_cancel || t->deliver_cancel; /* the latter: committed by a stopped timer */
}

int rill_task_cancel_requested(rill_task *t) {
  /* A binding asks this at every resumption (C++, Python, Lua and Ruby
   * steps): the common case, a live task asking during its own step, costs
   * no call. A freed task has no type and takes the slow path, which aborts. */
  if (RILL__LIKELY(t && t->fut.type && t->fut.loop->current_task == t && t->wait == RILL__T_RUNNING))
    return t->deliver_cancel;
  return cancel_requested_slow(t);
}

const unsigned char *rill_task_cancel_flag(rill_task *t) {
  if (check_task(t)) return NULL;
  return &t->deliver_cancel;
}

const char *rill_task_cancel_message(rill_task *t) {
  if (check_task(t)) return NULL;
  return rill__task_cancel_msg(t);
}

int rill_task_cancelling(rill_task *t) {
  int rc = check_task(t);
  return rc ? rc : t->cancelling;
}

int rill_task_uncancel(rill_task *t) {
  int rc = check_task(t);
  if (rc) return rc;
  if (t->cancelling > 0 && --t->cancelling == 0) t->must_cancel = 0;
  return t->cancelling;
}

/* ---------------------------------------------------------------- */
/* Names, the current task, loop close                                */

int rill_task_set_name(rill_task *t, const char *name) {
  int rc = check_task(t);
  if (rc) return rc;
  if (!name) return rill__fail(RILL_EINVAL, "name is NULL");
  rill__task_extra *x = task_extra(t);
  char *copy = x ? dup_string(name) : NULL;
  if (!copy) return rill__fail(RILL_ENOMEM, "out of memory copying the name");
  free(x->name);
  x->name = copy;
  return RILL_OK;
}

const char *rill__task_name(rill_task *t) {
  rill__task_extra *x = task_extra(t);
  if (!x) return "Task-?";
  if (!x->name) {
    char buf[32];
    snprintf(buf, sizeof buf, "Task-%llu", (unsigned long long)t->id);
    x->name = dup_string(buf);
    if (!x->name) return "Task-?";
  }
  return x->name;
}

const char *rill_task_name(rill_task *t) {
  if (check_task(t)) return NULL;
  return rill__task_name(t);
}

rill_task *rill_current_task(void) {
  rill_loop *loop = rill__tls_loop;
  return loop ? loop->current_task : NULL;
}

void rill__task_destroy_pending(rill_task *t) {
  rill_loop *loop = t->fut.loop;
  rill_task_retain(t); /* the handler may complete or cancel what it awaits */
  rill__report(loop, &t->fut, "task %s was destroyed while pending", rill__task_name(t));
  if (t->fut.state != RILL_PENDING) { /* the handler finished it (not possible today) */
    rill_task_release(t);
    return;
  }
  unlink_pending(t);
  /* Whatever the handler did may have scheduled the task's own nodes
   * (its awaited future completed, its timer stopped by a cancel): they
   * must not outlive it in the ready queue. */
  rill__queue_remove(&loop->ready, &t->wake);
  if (t->extra) {
    rill__timer_stop(loop, &t->extra->timer);
    rill__queue_remove(&loop->ready, &t->extra->timer.node);
  }
  if (t->awaiting) {
    rill__future_remove_node(t->awaiting, &t->wake);
    rill_future_release(t->awaiting);
    t->awaiting = NULL;
  }
  t->wait = RILL__T_DONE;
  t->fut.state = RILL_CANCELLED;
  t->fut.err = RILL_ECANCELLED;
  if (t->is_coro) rill__coro_destroy(t);
  if (t->free_arg) {
    rill_free_fn f = t->free_arg;
    t->free_arg = NULL;
    f(t->arg);
  }
  rill_future_release(&t->fut); /* the loop's reference */
  rill_task_release(t);
}

/* ---------------------------------------------------------------- */
/* Introspection                                                      */

int rill_loop_task_count(rill_loop *loop) {
  int rc = rill__loop_check(loop);
  return rc ? rc : loop->task_count;
}

int rill_loop_tasks(rill_loop *loop, rill_task **out, size_t cap) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (!out && cap) return rill__fail(RILL_EINVAL, "out is NULL");
  size_t n = 0;
  for (rill_task *t = loop->tasks_head; t && n < cap; t = rill__task_next(t)) out[n++] = t;
  return (int)n;
}
