/* signal.c - signals: per-loop callbacks, asyncio.run's "SIGINT cancels
 * the main task", and rill_loop_interrupt.
 *
 * One process-wide slot per signal number names the loop that watches it
 * (one loop per signal, as libev allows). rill's handler is async-signal-
 * safe: it sets the signal's bit in loop->sig_pending, raises
 * loop->ts_pending and wakes the loop with ev_async_send (documented by
 * libev as safe from signal handlers). The loop thread sees ts_pending at
 * its next iteration (it polls it already; no extra system call when no
 * signal came) and rill__signal_dispatch turns the bits into callbacks on
 * the ready queue, and SIGINT into a cancel of the armed task. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RILL__NSIG 65 /* signals 1..64 */

struct rill_signal {
  int refs; /* the caller's + the loop's while active */
  rill_loop *loop;
  int signum, active, queued;
  rill_signal_fn fn;
  void *arg;
  rill_free_fn free_arg;
  rill_signal *next; /* loop's active watchers */
  rill__node node;
};

struct rill__signals {
  rill_signal *head;
  rill_task *sigint_task; /* retained while armed */
};

typedef struct sig_slot {
  _Atomic(rill_loop *) loop; /* who watches it, NULL if nobody */
  atomic_int cancel_armed;   /* SIGINT: a task is armed to be cancelled */
  atomic_int fired;          /* SIGINT deliveries since armed */
  atomic_int in_handler;     /* handlers between reading loop and done with it */
  int users;                 /* watchers + the armed cancel (slots_lock) */
  struct sigaction old;      /* the disposition to restore */
} sig_slot;

static sig_slot slots[RILL__NSIG];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- */
/* The async-signal-safe part                                         */

static void post(rill_loop *loop, uint64_t bits) {
  if (bits) atomic_fetch_or_explicit(&loop->sig_pending, bits, memory_order_release);
  atomic_store_explicit(&loop->intr_pending, 1, memory_order_release);
  atomic_store_explicit(&loop->ts_pending, 1, memory_order_release);
  rill__loop_wake(loop);
}

static void on_signal(int signum) {
  int saved = errno;
  sig_slot *s = &slots[signum];
  if (atomic_load_explicit(&s->cancel_armed, memory_order_acquire) &&
      atomic_fetch_add_explicit(&s->fired, 1, memory_order_acq_rel) >= 1) {
    /* The second SIGINT ends the program at once, as asyncio.run's. */
    signal(signum, SIG_DFL);
    raise(signum);
  }
  /* Counted while it uses the loop: slot_release waits for it, so the
   * loop is never freed under a handler running on another thread. */
  atomic_fetch_add_explicit(&s->in_handler, 1, memory_order_acq_rel);
  rill_loop *loop = atomic_load_explicit(&s->loop, memory_order_acquire);
  if (loop) post(loop, (uint64_t)1 << (signum - 1));
  atomic_fetch_sub_explicit(&s->in_handler, 1, memory_order_acq_rel);
  errno = saved;
}

void rill_loop_interrupt(rill_loop *loop) {
  if (loop) post(loop, 0);
}

/* ---------------------------------------------------------------- */
/* Slots (slots_lock)                                                 */

static int slot_acquire(rill_loop *loop, int signum) {
  sig_slot *s = &slots[signum];
  pthread_mutex_lock(&slots_lock);
  rill_loop *owner = atomic_load(&s->loop);
  if (owner && owner != loop) {
    pthread_mutex_unlock(&slots_lock);
    return rill__fail(RILL_ESIGBUSY, "signal %d is already watched by another loop", signum);
  }
  if (s->users == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    atomic_store(&s->loop, loop);
    if (sigaction(signum, &sa, &s->old) != 0) {
      int e = errno;
      atomic_store(&s->loop, NULL);
      pthread_mutex_unlock(&slots_lock);
      return rill__fail(RILL_ESYS, "sigaction(%d): %s", signum, strerror(e));
    }
  }
  s->users++;
  pthread_mutex_unlock(&slots_lock);
  return RILL_OK;
}

static void slot_release(int signum) {
  sig_slot *s = &slots[signum];
  pthread_mutex_lock(&slots_lock);
  if (--s->users == 0) {
    sigaction(signum, &s->old, NULL); /* the previous disposition */
    atomic_store(&s->loop, NULL);
    /* A handler already running on another thread may still hold the loop:
     * it is a few instructions away from done. */
    while (atomic_load_explicit(&s->in_handler, memory_order_acquire)) sched_yield();
  }
  pthread_mutex_unlock(&slots_lock);
}

static struct rill__signals *signals_get(rill_loop *loop) {
  if (!loop->signals) loop->signals = calloc(1, sizeof *loop->signals);
  return loop->signals;
}

/* ---------------------------------------------------------------- */
/* Watchers                                                           */

static void signal_unref(rill_signal *s) {
  if (--s->refs > 0) return;
  rill_loop *loop = s->loop;
  rill__dealloc(loop, s, sizeof *s);
  rill__loop_release(loop);
}

static void signal_run(rill__node *node, int discard) {
  rill_signal *s = RILL__CONTAINER(node, rill_signal, node);
  s->queued = 0;
  if (!discard && s->active) s->fn(s, s->signum, s->arg);
  signal_unref(s); /* the queue's */
}

rill_signal *rill_signal_start(rill_loop *loop, int signum, rill_signal_fn fn, void *arg,
                               rill_free_fn free_arg) {
  if (rill__loop_check(loop)) return NULL;
  if (!fn) {
    rill__fail(RILL_EINVAL, "fn is NULL");
    return NULL;
  }
  if (signum < 1 || signum >= RILL__NSIG || signum == SIGKILL || signum == SIGSTOP) {
    rill__fail(RILL_EINVAL, "%d is not a signal that can be caught", signum);
    return NULL;
  }
  struct rill__signals *st = signals_get(loop);
  rill_signal *s = st ? rill__alloc(loop, sizeof *s) : NULL;
  if (!s) {
    rill__fail(RILL_ENOMEM, "out of memory watching a signal");
    return NULL;
  }
  if (slot_acquire(loop, signum) != RILL_OK) {
    rill__dealloc(loop, s, sizeof *s);
    return NULL;
  }
  memset(s, 0, sizeof *s);
  s->refs = 2; /* the caller's and the loop's */
  s->loop = loop;
  s->signum = signum;
  s->active = 1;
  s->fn = fn;
  s->arg = arg;
  s->free_arg = free_arg;
  s->node.run = signal_run;
  s->next = st->head;
  st->head = s;
  rill__loop_retain(loop);
  return s;
}

int rill_signal_stop(rill_signal *s) {
  if (!s) return rill__fail(RILL_EINVAL, "signal watcher is NULL");
  if (!s->active) return RILL_OK;
  rill_loop *loop = s->loop;
  s->active = 0;
  for (rill_signal **p = &loop->signals->head; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      break;
    }
  }
  slot_release(s->signum);
  if (s->free_arg) {
    rill_free_fn f = s->free_arg;
    s->free_arg = NULL;
    f(s->arg);
  }
  signal_unref(s); /* the loop's */
  return RILL_OK;
}

int rill_signal_active(const rill_signal *s) {
  if (!s) return rill__fail(RILL_EINVAL, "signal watcher is NULL");
  return s->active;
}

void rill_signal_release(rill_signal *s) {
  if (s) signal_unref(s);
}

/* ---------------------------------------------------------------- */
/* SIGINT cancels a task                                               */

int rill_loop_cancel_on_sigint(rill_loop *loop, rill_task *task) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  struct rill__signals *st = signals_get(loop);
  if (!st) return rill__fail(RILL_ENOMEM, "out of memory");
  sig_slot *s = &slots[SIGINT];
  if (!task) { /* disarm: report how many SIGINTs came */
    if (!st->sigint_task) return 0;
    atomic_store(&s->cancel_armed, 0);
    int fired = atomic_exchange(&s->fired, 0);
    rill_task_release(st->sigint_task);
    st->sigint_task = NULL;
    slot_release(SIGINT);
    return fired;
  }
  if (rill_task_future(task)->loop != loop) return rill__fail(RILL_EINVAL, "the task belongs to another loop");
  if (st->sigint_task) {
    rill_task_retain(task);
    rill_task_release(st->sigint_task);
    st->sigint_task = task;
    atomic_store(&s->fired, 0);
    return RILL_OK;
  }
  if ((rc = slot_acquire(loop, SIGINT))) return rc;
  st->sigint_task = rill_task_retain(task);
  atomic_store(&s->fired, 0);
  atomic_store(&s->cancel_armed, 1);
  return RILL_OK;
}

/* Loop thread, from the iteration's thread-safe drain. */
void rill__signal_dispatch(rill_loop *loop) {
  atomic_store_explicit(&loop->intr_pending, 0, memory_order_relaxed);
  uint64_t bits = atomic_exchange_explicit(&loop->sig_pending, 0, memory_order_acq_rel);
  struct rill__signals *st = loop->signals;
  if (!bits || !st) return;
  if ((bits & ((uint64_t)1 << (SIGINT - 1))) && st->sigint_task)
    rill_task_cancel(st->sigint_task, "interrupted by SIGINT");
  for (rill_signal *s = st->head; s; s = s->next) {
    if (!(bits & ((uint64_t)1 << (s->signum - 1))) || s->queued) continue;
    s->queued = 1;
    s->refs++; /* the queue's */
    rill__schedule(loop, &s->node);
  }
}

/* Loop close: every watcher stopped, the SIGINT cancel disarmed. */
void rill__signal_close(rill_loop *loop) {
  struct rill__signals *st = loop->signals;
  if (!st) return;
  if (st->sigint_task) rill_loop_cancel_on_sigint(loop, NULL);
  while (st->head) rill_signal_stop(st->head);
  free(st);
  loop->signals = NULL;
}
