/* loop.c - the loop: iterations, the ready queue, handles, thread-safe
 * submission, the exception handler.
 *
 * One iteration: poll (only when something needs polling: user I/O, or
 * nothing is ready and we must wait), read the clock once, move due timers
 * to the ready queue, then run the ready batch as it stood. Work scheduled
 * while the batch runs goes to the next iteration. There is no system call
 * between two callbacks of a batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "io_internal.h"

_Thread_local rill_loop *rill__tls_loop RILL__TLS_IE;

struct rill_handle {
  int refs; /* the caller's + the loop's while scheduled */
  rill_loop *loop;
  rill_fn fn;
  void *arg;
  rill_free_fn free_arg;
  int cancelled, finished, is_timer;
  int running; /* fn is executing: a cancel from inside defers free_arg */
  rill__timer timer; /* timer.node is the ready-queue node for both kinds */
};

struct rill__ts_item {
  rill__ts_item *next;
  rill__node node;
  rill_fn fn;
  void *arg;
  rill_free_fn free_arg;
};

double rill__clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int rill__queue_remove(rill__queue *q, rill__node *n) {
  rill__node *prev = NULL;
  for (rill__node *it = q->head; it; prev = it, it = it->next) {
    if (it != n) continue;
    if (prev) prev->next = it->next;
    else q->head = it->next;
    if (q->tail == it) q->tail = prev;
    it->next = NULL;
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- */

static void default_handler(rill_loop *loop, const char *message, rill_future *future,
                            void *arg) {
  (void)loop;
  (void)arg;
  if (future && future->state == RILL_FAILED) {
    rill_future *src = future;
    while (src->source) src = src->source;
    const char *msg = rill__future_failed(src) ? src->err_msg : NULL;
    fprintf(stderr, "rill: %s: %s (%s)\n", message, msg ? msg : "",
            rill_err_name(src->err) ? rill_err_name(src->err) : "application error");
  } else {
    fprintf(stderr, "rill: %s\n", message);
  }
}

void rill__report(rill_loop *loop, rill_future *future, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (rill__binding_report(loop, buf, future)) return;
  /* The core's own reference for the call: a handler reading the failure
   * (which retrieves it) never frees the future under anyone's view. */
  rill_future_retain(future);
  if (loop->exc_fn) loop->exc_fn(loop, buf, future, loop->exc_arg);
  else default_handler(loop, buf, future, NULL);
  rill_future_release(future);
}

static void async_cb(struct ev_loop *ev, ev_async *w, int revents) {
  (void)ev, (void)w, (void)revents; /* the queue is drained by the iteration */
}
static void wake_timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev, (void)w, (void)revents; /* only ends the wait */
}

/* A forked child has no running loop (asyncio's rule too): it may start
 * one of its own, even when the fork happened inside a callback. */
static void forget_running_loop(void) {
  rill__tls_loop = NULL;
  atomic_fetch_add_explicit(&rill__fork_gen, 1, memory_order_relaxed);
}
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_install(void) { pthread_atfork(NULL, NULL, forget_running_loop); }

rill_loop *rill_loop_new(void) {
  pthread_once(&atfork_once, atfork_install);
  rill_loop *loop = calloc(1, sizeof *loop);
  if (!loop) {
    rill__fail(RILL_ENOMEM, "out of memory creating a loop");
    return NULL;
  }
  rill__ev_allocator_install();
  rill__ev_oom_take();
  loop->ev = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
  if (loop->ev && rill__ev_oom_take()) { /* libev ran out of memory inside */
    ev_loop_destroy(loop->ev);
    free(loop);
    rill__fail(RILL_ENOMEM, "out of memory creating a loop (libev)");
    return NULL;
  }
  if (!loop->ev) {
    free(loop);
    rill__fail(RILL_ESYS, "ev_loop_new failed");
    return NULL;
  }
  if (!(loop->arena = rill__arena_new())) {
    ev_loop_destroy(loop->ev);
    free(loop);
    rill__fail(RILL_ENOMEM, "out of memory creating a loop");
    return NULL;
  }
  if (pthread_mutex_init(&loop->ts_lock, NULL) != 0) {
    rill__arena_free(loop->arena);
    ev_loop_destroy(loop->ev);
    free(loop);
    rill__fail(RILL_ESYS, "pthread_mutex_init failed");
    return NULL;
  }
  loop->refs = 1;
  loop->slow_duration = 0.1;
  loop->stack_size = 256 * 1024;
  ev_async_init(&loop->async, async_cb);
  ev_async_start(loop->ev, &loop->async);
  ev_init(&loop->wake_timer, wake_timer_cb);
  /* Let libev size its watcher arrays now, so an iteration seldom needs to
   * allocate; a failure here is this function's ENOMEM. */
  ev_timer_set(&loop->wake_timer, 3600., 0.);
  ev_timer_start(loop->ev, &loop->wake_timer);
  ev_timer_stop(loop->ev, &loop->wake_timer);
  if (rill__ev_oom_take()) {
    ev_async_stop(loop->ev, &loop->async);
    ev_loop_destroy(loop->ev);
    pthread_mutex_destroy(&loop->ts_lock);
    rill__arena_free(loop->arena);
    free(loop);
    rill__fail(RILL_ENOMEM, "out of memory creating a loop (libev)");
    return NULL;
  }
  loop->now = rill__clock();
  const char *dbg = getenv("RILL_DEBUG");
  loop->debug = dbg && dbg[0] == '1';
  const char *uring = getenv("RILL_IO_URING"); /* 0: no batched reads and sends */
  loop->uring_off = uring && uring[0] == '0';
  return loop;
}

void rill__loop_retain(rill_loop *loop) { loop->refs++; }

void rill__loop_release(rill_loop *loop) {
  if (--loop->refs > 0) return;
  pthread_mutex_destroy(&loop->ts_lock);
  rill__arena_free(loop->arena);
  free(loop);
}

int rill__loop_check(const rill_loop *loop) {
  if (!loop) return rill__fail(RILL_EINVAL, "loop is NULL");
  if (loop->closed) return rill__fail(RILL_ECLOSED, "the loop is closed");
  return RILL_OK;
}

int rill_loop_is_closed(const rill_loop *loop) {
  if (!loop) return rill__fail(RILL_EINVAL, "loop is NULL");
  return loop->closed ? 1 : 0;
}

/* Takes the queue and runs its nodes (those they schedule wait for the
 * next call); the number run. */
static int run_queue(rill__queue *q, int discard) {
  rill__queue batch = *q;
  q->head = q->tail = NULL;
  int count = 0;
  for (rill__node *n = batch.head, *next; n; n = next) {
    next = n->next;
    n->run(n, discard);
    count++;
  }
  return count;
}

/* Runs every node of the ready and late queues with discard set. */
static void discard_ready(rill_loop *loop) {
  while (loop->ready.head || loop->late.head) {
    run_queue(&loop->ready, 1);
    run_queue(&loop->late, 1);
  }
}

int rill_loop_close(rill_loop *loop) {
  if (!loop) return rill__fail(RILL_EINVAL, "loop is NULL");
  if (loop->closed) return rill__fail(RILL_ECLOSED, "the loop is already closed");
  if (loop->running) return rill__fail(RILL_EBUSY, "cannot close a running loop");
  rill__loop_retain(loop); /* keep the shell while objects die */
  rill__pool_close(loop);  /* 1.1: no thread job runs for a closed loop */
  rill__signal_close(loop); /* 1.1: signal handlers restored */
  rill__process_close(loop); /* 1.1: children killed and reaped: no zombie */
  rill__embed_close(loop);   /* 1.1: the embedding wake-up fd */

  /* Drop the ready batch first: it may hold a pending task's wake node,
   * and destroying the task below can free it. */
  discard_ready(loop);
  /* Pending tasks are destroyed: reported, never stepped again. */
  while (loop->tasks_head) rill__task_destroy_pending(loop->tasks_head);
  /* Watchers removed, open streams/listeners aborted (fds closed). */
  if (loop->io) rill__io_loop_close(loop);
  /* 1.1: sync waiters unlinked (cancelled below), queued items freed. */
  if (loop->syncs) rill__sync_loop_close(loop);

  /* Timers: stop each; their nodes are dropped like queued ones. */
  while (loop->heap_len) {
    rill__timer *t = loop->heap[0];
    rill__timer_pop(loop);
    rill__schedule(loop, &t->node);
  }
  /* Futures: cancel pending ones (no callbacks run), drop callback lists
   * and subtype references so cycles (gather <-> child) are broken. */
  for (rill_future *f = loop->futures; f; f = f->all_next) rill_future_retain(f);
  for (rill_future *f = loop->futures, *next; f; f = next) {
    if (f->state == RILL_PENDING) {
      f->state = RILL_CANCELLED;
      f->err = RILL_ECANCELLED;
    }
    if (!f->in_unretrieved_list) rill__queue_splice(&loop->ready, &f->callbacks);
    if (f->type->close) f->type->close(f);
    discard_ready(loop);
    next = f->all_next; /* retained above, so it outlives f's release */
    rill_future_release(f);
  }
  discard_ready(loop);

  /* Thread-safe submissions that never ran. */
  pthread_mutex_lock(&loop->ts_lock);
  rill__ts_item *ts = loop->ts_head;
  loop->ts_head = loop->ts_tail = NULL;
  loop->closed = 1;
  pthread_mutex_unlock(&loop->ts_lock);
  while (ts) {
    rill__ts_item *next = ts->next;
    if (ts->free_arg) ts->free_arg(ts->arg);
    free(ts);
    ts = next;
  }

  /* Unretrieved failures: report each once, then let them go. */
  while (loop->unretrieved) {
    rill_future *f = rill_future_retain(loop->unretrieved);
    rill_task *t = rill__as_task(f);
    rill__report(loop, f, "task %s failed and its failure was never retrieved",
                 t ? rill__task_name(t) : "?");
    rill__future_mark_retrieved(f);
    rill_future_release(f);
  }

  ev_async_stop(loop->ev, &loop->async);
  ev_timer_stop(loop->ev, &loop->wake_timer);
  ev_loop_destroy(loop->ev);
  loop->ev = NULL;
  free(loop->read_buf);
  loop->read_buf = NULL;
  rill__uring_free(loop);
  rill__free_array(loop->heap, loop->heap_cap * sizeof *loop->heap);
  loop->heap = NULL;
  loop->heap_cap = 0;
  if (loop->stacks) rill__stack_pool_free(loop->stacks); /* the shared stack too */
  loop->stacks = NULL;
  loop->shared_stack = NULL;
  loop->shared_owner = NULL;
  if (loop->exc_free) loop->exc_free(loop->exc_arg);
  loop->exc_fn = NULL;
  loop->exc_free = NULL;
  if (loop->poll_free) loop->poll_free(loop->poll_arg);
  loop->poll_fn = NULL;
  loop->poll_free = NULL;
  rill__bindings_close(loop);
  rill__loop_release(loop);
  return RILL_OK;
}

/* A rill_loop_free called from inside a run of this thread's loop: the
 * run function closes and frees the loop just before it returns. */
static _Thread_local rill_loop *free_after_run;

void rill_loop_free(rill_loop *loop) {
  if (!loop) return;
  if (loop->running) {
    if (loop == rill__tls_loop) {
      /* Deferred (documented in rill.h): stop now, free when the run ends. */
      free_after_run = loop;
      loop->stopping = 1;
      return;
    }
    fprintf(stderr, "rill: rill_loop_free: the loop is running in another thread; not freed\n");
    rill__fail(RILL_EBUSY, "the loop is running in another thread");
    return;
  }
  if (!loop->closed && rill_loop_close(loop) != RILL_OK) return;
  rill__loop_release(loop);
}

/* The end of every run function: a free requested while it ran. */
static void end_run(rill_loop *loop) {
  if (free_after_run != loop) return;
  free_after_run = NULL;
  rill_loop_free(loop);
}

/* ---------------------------------------------------------------- */
/* Iterations                                                         */

/* The callbacks other threads posted, onto the ready queue in their order. */
static void take_posted(rill_loop *loop) {
  pthread_mutex_lock(&loop->ts_lock);
  rill__ts_item *it = loop->ts_head;
  loop->ts_head = loop->ts_tail = NULL;
  pthread_mutex_unlock(&loop->ts_lock);
  for (; it; it = it->next) rill__schedule(loop, &it->node);
}

static void drain_threadsafe(rill_loop *loop) {
  pthread_mutex_lock(&loop->ts_lock);
  rill__ts_item *it = loop->ts_head;
  loop->ts_head = loop->ts_tail = NULL;
  atomic_store_explicit(&loop->ts_pending, 0, memory_order_relaxed);
  pthread_mutex_unlock(&loop->ts_lock);
  for (; it; it = it->next) rill__schedule(loop, &it->node);
  /* 1.1: a signal or rill_loop_interrupt raised ts_pending too. */
  if (atomic_load_explicit(&loop->intr_pending, memory_order_acquire)) rill__signal_dispatch(loop);
}

void rill__ev_run(rill_loop *loop, int flags) {
  if (loop->io && (loop->io->nfresh || loop->io->fresh_lost) && rill__io_check_new_fds(loop))
    flags = EVRUN_NOWAIT;
  ev_run(loop->ev, flags);
  rill__uring_submit(loop); /* the reads libev's callbacks queued, in one go */
}

static int has_work(const rill_loop *loop) {
  return loop->ready.head || loop->late.head || loop->heap_len || loop->io_active ||
         atomic_load_explicit(&loop->ts_pending, memory_order_relaxed);
}

static int iterate(rill_loop *loop, double max_wait) {
  int host_polled = loop->host_polled; /* embed.c: polled just before */
  loop->host_polled = 0;
  if (atomic_load_explicit(&loop->ts_pending, memory_order_relaxed)) drain_threadsafe(loop);
  if (!loop->ready.head && !loop->late.head) {
    double wait = max_wait;
    rill__timer *next = rill__timer_peek(loop);
    if (next) {
      double until = next->when - rill__clock();
      if (until < wait) wait = until;
    }
    if (wait > 0) {
      if (isfinite(wait)) {
        /* libev measures the wait from its own cached time, which may be
         * stale by now: refresh it, or the wake-up comes early and
         * run_once returns before a timer that falls due within max_wait. */
        ev_now_update(loop->ev);
        ev_timer_set(&loop->wake_timer, wait, 0.);
        ev_timer_start(loop->ev, &loop->wake_timer);
      }
      if (loop->poll_fn) loop->poll_fn(loop, RILL_POLL_BEFORE, loop->poll_arg);
      rill__ev_run(loop, EVRUN_ONCE);
      if (loop->poll_fn) loop->poll_fn(loop, RILL_POLL_AFTER, loop->poll_arg);
      ev_timer_stop(loop->ev, &loop->wake_timer);
    } else if (loop->io_active || loop->backend_exposed) {
      rill__ev_run(loop, EVRUN_NOWAIT);
    }
    if (atomic_load_explicit(&loop->ts_pending, memory_order_relaxed)) drain_threadsafe(loop);
  } else if ((loop->io_active || loop->backend_exposed) && !host_polled) {
    rill__ev_run(loop, EVRUN_NOWAIT);
  }
  loop->now = rill__clock();
  rill__timer *t;
  while ((t = rill__timer_peek(loop)) && t->when <= loop->now) {
    rill__timer_pop(loop);
    rill__schedule(loop, &t->node);
  }
  int count = run_queue(&loop->ready, 0);
  /* Late nodes scheduled by the batch (or outside the loop) run now, in
   * this iteration: coalesced writes leave with no poll in between. */
  while (loop->late.head) {
    count += run_queue(&loop->late, 0);
    rill__uring_submit(loop); /* the sends those nodes queued, in one go */
  }
  return count;
}

static int enter(rill_loop *loop) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (loop->running || rill__tls_loop)
    return rill__fail(RILL_EBUSY, "a loop is already running in this thread");
  loop->running = 1;
  loop->stopping = 0;
  rill__tls_loop = loop;
  return RILL_OK;
}

static void leave(rill_loop *loop) {
  loop->running = 0;
  loop->stopping = 0;
  rill__tls_loop = NULL;
}

/* libev could not allocate inside the iteration (it recovered through the
 * reserve, see alloc.c): the run stops with RILL_ENOMEM, the loop intact. */
static int ev_oom_stop(void) {
  return rill__ev_oom_take() ? rill__fail(RILL_ENOMEM, "out of memory inside libev") : RILL_OK;
}

int rill_loop_run(rill_loop *loop) {
  int rc = enter(loop);
  if (rc) return rc;
  while (!loop->stopping && has_work(loop)) {
    iterate(loop, INFINITY);
    if ((rc = ev_oom_stop())) break;
  }
  leave(loop);
  end_run(loop);
  return rc;
}

int rill_loop_run_until(rill_loop *loop, rill_future *future) {
  int rc = rill__future_check(future);
  if (rc) return rc;
  if (future->loop != loop) return rill__fail(RILL_EINVAL, "the future belongs to another loop");
  rill_future_retain(future);
  rc = enter(loop);
  if (rc) {
    rill_future_release(future);
    return rc;
  }
  int oom = 0;
  while (!loop->stopping && future->state == RILL_PENDING) {
    iterate(loop, INFINITY);
    /* Taken every iteration; it ends the run only if the future is not
     * done (then its outcome is the answer). */
    if (rill__ev_oom_take() && future->state == RILL_PENDING) {
      oom = 1;
      break;
    }
  }
  leave(loop);
  if (oom) rc = rill__fail(RILL_ENOMEM, "out of memory inside libev");
  else if (future->state == RILL_PENDING) rc = rill__fail(RILL_ESTATE, "the loop stopped before the future was done");
  else rc = rill__future_outcome(future);
  rill_future_release(future);
  end_run(loop);
  return rc;
}

int rill_loop_run_once(rill_loop *loop, double max_wait_s) {
  if (isnan(max_wait_s) || max_wait_s < 0) return rill__fail(RILL_EINVAL, "max_wait_s must be >= 0");
  int rc = enter(loop);
  if (rc) return rc;
  int n = iterate(loop, max_wait_s);
  if ((rc = ev_oom_stop())) n = rc;
  leave(loop);
  end_run(loop);
  return n;
}

void rill_loop_stop(rill_loop *loop) {
  if (loop && loop->running) loop->stopping = 1;
}

double rill_loop_time(rill_loop *loop) {
  if (!loop) {
    rill__fail(RILL_EINVAL, "loop is NULL");
    return NAN;
  }
  if (!loop->running) loop->now = rill__clock(); /* idle: the clock moves on */
  return loop->now;
}

rill_loop *rill_loop_current(void) { return rill__tls_loop; }

/* ---------------------------------------------------------------- */
/* Settings                                                           */

int rill_loop_set_exception_handler(rill_loop *loop, rill_exception_fn fn, void *arg,
                                    rill_free_fn free_arg) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  rill_free_fn old_free = loop->exc_free;
  void *old_arg = loop->exc_arg;
  loop->exc_fn = fn;
  loop->exc_arg = fn ? arg : NULL;
  loop->exc_free = fn ? free_arg : NULL;
  if (old_free) old_free(old_arg);
  return RILL_OK;
}

int rill_loop_set_poll_hook(rill_loop *loop, rill_poll_fn fn, void *arg, rill_free_fn free_arg) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  rill_free_fn old_free = loop->poll_free;
  void *old_arg = loop->poll_arg;
  loop->poll_fn = fn;
  loop->poll_arg = fn ? arg : NULL;
  loop->poll_free = fn ? free_arg : NULL;
  if (old_free) old_free(old_arg);
  return RILL_OK;
}

int rill_loop_report(rill_loop *loop, const char *message, rill_future *future) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (!message) return rill__fail(RILL_EINVAL, "message is NULL");
  if (future && future->loop != loop) return rill__fail(RILL_EINVAL, "the future belongs to another loop");
  rill__report(loop, future, "%s", message);
  return RILL_OK;
}

int rill_loop_set_debug(rill_loop *loop, int enabled) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (enabled != 0 && enabled != 1) return rill__fail(RILL_EINVAL, "enabled must be 0 or 1");
  loop->debug = enabled;
  return RILL_OK;
}

int rill_loop_get_debug(const rill_loop *loop) {
  int rc = rill__loop_check(loop);
  return rc ? rc : loop->debug;
}

int rill_loop_set_slow_duration(rill_loop *loop, double seconds) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (!(seconds > 0) || !isfinite(seconds)) return rill__fail(RILL_EINVAL, "seconds must be > 0");
  loop->slow_duration = seconds;
  return RILL_OK;
}

int rill_loop_set_stack_size(rill_loop *loop, size_t bytes) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (bytes < 16 * 1024) return rill__fail(RILL_EINVAL, "stack size must be at least 16 KiB");
  if (bytes > ((size_t)1 << 30)) return rill__fail(RILL_EINVAL, "stack size must be at most 1 GiB");
  /* Compare as the pool rounds (to whole pages), so a size accepted once
   * is accepted again. */
  long page = sysconf(_SC_PAGESIZE);
  size_t ps = page > 0 ? (size_t)page : 4096;
  size_t rounded = (bytes + ps - 1) & ~(ps - 1);
  if (loop->stacks && rill__stack_pool_stack_size(loop->stacks) != rounded) {
    /* New coroutines take stacks from a fresh pool once the old one is
     * idle; keep it simple: only allowed before the first coroutine. */
    return rill__fail(RILL_ESTATE, "the stack size is fixed once a coroutine has run");
  }
  loop->stack_size = bytes;
  return RILL_OK;
}

void rill_free(void *p) { free(p); }

/* ---------------------------------------------------------------- */
/* Handles                                                            */

/* As futures (future.c): a freed handle has fn cleared, a word the
 * free-list links leave alone, so a double release or a use after free
 * is reported while the memory is not reused. */
static void check_handle_alive(const rill_handle *h, const char *what) {
  if (RILL__LIKELY(h->fn != NULL)) return;
  fprintf(stderr, "rill: %s: handle %p was already freed (double release or use after free)\n",
          what, (const void *)h);
  abort();
}

static void handle_release_internal(rill_handle *h) {
  if (--h->refs > 0) return;
  rill_loop *loop = h->loop;
  h->fn = NULL; /* dead: see check_handle_alive */
  rill__dealloc(loop, h, sizeof *h);
  rill__loop_release(loop);
}

static void handle_finish(rill_handle *h) {
  h->finished = 1;
  if (h->free_arg) {
    rill_free_fn f = h->free_arg;
    h->free_arg = NULL;
    f(h->arg);
  }
}

static void handle_run(rill__node *node, int discard) {
  rill_handle *h = RILL__CONTAINER(node, rill_handle, timer.node);
  if (!discard && !h->cancelled) {
    rill_loop *loop = h->loop;
    h->running = 1;
    if (RILL__UNLIKELY(loop->debug)) {
      double t0 = rill__clock();
      h->fn(h->arg);
      double dt = rill__clock() - t0;
      if (dt >= loop->slow_duration)
        rill__report(loop, NULL, "Executing callback %p took %.3f seconds", (void *)h, dt);
    } else {
      h->fn(h->arg);
    }
    h->running = 0;
  }
  handle_finish(h);
  handle_release_internal(h); /* the loop's reference */
}

static rill_handle *handle_new(rill_loop *loop, rill_fn fn, void *arg, rill_free_fn free_arg) {
  if (rill__loop_check(loop)) return NULL;
  if (!fn) {
    rill__fail(RILL_EINVAL, "fn is NULL");
    return NULL;
  }
  rill_handle *h = rill__alloc(loop, sizeof *h);
  if (!h) {
    rill__fail(RILL_ENOMEM, "out of memory scheduling a callback");
    return NULL;
  }
  h->refs = 2; /* the caller's and the loop's */
  h->loop = loop;
  h->fn = fn;
  h->arg = arg;
  h->free_arg = free_arg;
  h->cancelled = h->finished = h->is_timer = h->running = 0;
  h->timer.heap_index = RILL__NOT_IN_HEAP;
  h->timer.when = NAN;
  h->timer.node.run = handle_run;
  rill__loop_retain(loop);
  return h;
}

rill_handle *rill_call_soon(rill_loop *loop, rill_fn fn, void *arg, rill_free_fn free_arg) {
  rill_handle *h = handle_new(loop, fn, arg, free_arg);
  if (!h) return NULL;
  /* One FIFO, as asyncio's: what other threads posted before this call
   * goes first (ts_pending stays up: signals are left to the iteration). */
  if (atomic_load_explicit(&loop->ts_pending, memory_order_relaxed)) take_posted(loop);
  rill__schedule(loop, &h->timer.node);
  return h;
}

rill_handle *rill_call_at(rill_loop *loop, double when, rill_fn fn, void *arg,
                          rill_free_fn free_arg) {
  if (isnan(when)) {
    rill__fail(RILL_EINVAL, "when is NaN");
    return NULL;
  }
  rill_handle *h = handle_new(loop, fn, arg, free_arg);
  if (!h) return NULL;
  h->is_timer = 1;
  if (rill__timer_start(loop, &h->timer, when) != RILL_OK) {
    h->free_arg = NULL; /* not our job on failure */
    h->refs = 1;
    handle_release_internal(h);
    return NULL;
  }
  return h;
}

rill_handle *rill_call_later(rill_loop *loop, double delay_s, rill_fn fn, void *arg,
                             rill_free_fn free_arg) {
  if (isnan(delay_s)) {
    rill__fail(RILL_EINVAL, "delay is NaN");
    return NULL;
  }
  if (rill__loop_check(loop)) return NULL;
  if (delay_s < 0) delay_s = 0;
  /* From the clock now, not the iteration's cached time: a long batch must
   * not make a timer fire early by the caller's own measure. */
  return rill_call_at(loop, rill__clock() + delay_s, fn, arg, free_arg);
}

void rill_handle_cancel(rill_handle *h) {
  if (h) check_handle_alive(h, "rill_handle_cancel");
  if (!h || h->cancelled || h->finished) return;
  h->cancelled = 1;
  if (h->running) return; /* its own callback: free_arg once it returns */
  if (h->timer.heap_index != RILL__NOT_IN_HEAP) {
    rill__timer_stop(h->loop, &h->timer);
    handle_finish(h);
    handle_release_internal(h); /* the loop's reference */
    return;
  }
  /* In the ready queue: skipped when its turn comes; free arg now. */
  handle_finish(h);
}

int rill_handle_cancelled(const rill_handle *h) {
  if (!h) return rill__fail(RILL_EINVAL, "handle is NULL");
  check_handle_alive(h, "rill_handle_cancelled");
  return h->cancelled ? 1 : 0;
}

double rill_handle_when(const rill_handle *h) {
  if (!h) {
    rill__fail(RILL_EINVAL, "handle is NULL");
    return NAN;
  }
  return h->is_timer ? h->timer.when : NAN;
}

void rill_handle_release(rill_handle *h) {
  if (!h) return;
  check_handle_alive(h, "rill_handle_release");
  handle_release_internal(h);
}

/* ---------------------------------------------------------------- */
/* Thread-safe submission                                             */

static void ts_run(rill__node *node, int discard) {
  rill__ts_item *it = RILL__CONTAINER(node, rill__ts_item, node);
  if (!discard) it->fn(it->arg);
  if (it->free_arg) it->free_arg(it->arg);
  free(it);
}

int rill_call_soon_threadsafe(rill_loop *loop, rill_fn fn, void *arg, rill_free_fn free_arg) {
  if (!loop) return rill__fail(RILL_EINVAL, "loop is NULL");
  if (!fn) return rill__fail(RILL_EINVAL, "fn is NULL");
  rill__ts_item *it = malloc(sizeof *it);
  if (!it) return rill__fail(RILL_ENOMEM, "out of memory queueing a callback");
  it->next = NULL;
  it->node.run = ts_run;
  it->fn = fn;
  it->arg = arg;
  it->free_arg = free_arg;
  pthread_mutex_lock(&loop->ts_lock);
  if (loop->closed) {
    pthread_mutex_unlock(&loop->ts_lock);
    free(it);
    return rill__fail(RILL_ECLOSED, "the loop is closed");
  }
  if (loop->ts_tail) loop->ts_tail->next = it;
  else loop->ts_head = it;
  loop->ts_tail = it;
  atomic_store_explicit(&loop->ts_pending, 1, memory_order_relaxed);
  /* ev_async_send coalesces; every wake-up drains the whole queue. */
  rill__loop_wake(loop); /* 1.1: ev_async_send, + the host's fd when embedded */
  pthread_mutex_unlock(&loop->ts_lock);
  return RILL_OK;
}
