/* internal.h - structures shared by the core's files; never installed. */
#ifndef RILL_INTERNAL_H
#define RILL_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <ev.h>

#include "ctx.h"
#include "rill.h"

#define RILL__HIDDEN __attribute__((visibility("hidden")))
#define RILL__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define RILL__LIKELY(x) __builtin_expect(!!(x), 1)
#define RILL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- errors (error.c) ---- */
/* Records code + message as this thread's last error; returns code. */
RILL__HIDDEN int rill__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- ready-queue nodes ----
 * Everything that can become runnable (a handle, a task wake-up, a done
 * callback, a combinator's child notification) embeds a node. A future's
 * callbacks are a list of nodes; completing the future splices that list
 * onto the ready queue in O(1). run(node, 0) runs it; run(node, 1) drops it
 * without running (loop closing), releasing whatever it holds. */
typedef struct rill__node rill__node;
typedef void (*rill__run_fn)(rill__node *node, int discard);
struct rill__node {
  rill__node *next;
  rill__run_fn run;
};

typedef struct rill__queue {
  rill__node *head, *tail;
} rill__queue;

static inline void rill__queue_push(rill__queue *q, rill__node *n) {
  n->next = NULL;
  if (q->tail) q->tail->next = n;
  else q->head = n;
  q->tail = n;
}
static inline void rill__queue_splice(rill__queue *q, rill__queue *from) {
  if (!from->head) return;
  if (q->tail) q->tail->next = from->head;
  else q->head = from->head;
  q->tail = from->tail;
  from->head = from->tail = NULL;
}
/* Unlinks n from q; 1 if it was there. O(n), for rare paths only. */
RILL__HIDDEN int rill__queue_remove(rill__queue *q, rill__node *n);

/* ---- timers (timer.c): a binary heap ordered by (when, seq) ---- */
typedef struct rill__timer {
  double when;
  uint64_t seq;
  size_t heap_index; /* RILL__NOT_IN_HEAP when not scheduled */
  rill__node node;   /* pushed to the ready queue when due */
} rill__timer;
#define RILL__NOT_IN_HEAP ((size_t)-1)

/* ---- the loop ---- */
typedef struct rill__ts_item rill__ts_item;
typedef struct rill__arena rill__arena;

/* ---- allocation (alloc.c) ---- */
RILL__HIDDEN rill__arena *rill__arena_new(void);
RILL__HIDDEN void rill__arena_free(rill__arena *a);
/* Small objects of a loop; freed with the same size. */
#define RILL__ARENA_MAX_SMALL 1024 /* larger sizes: rill__alloc is malloc */
RILL__HIDDEN void *rill__alloc(rill_loop *loop, size_t size);
RILL__HIDDEN void rill__dealloc(rill_loop *loop, void *p, size_t size);
/* Large arrays (huge-page backed when big). */
RILL__HIDDEN void *rill__alloc_array(size_t size);
RILL__HIDDEN void rill__free_array(void *p, size_t size);

struct rill_loop {
  int refs; /* the owner's + one per live future/handle/timeout/group */
  int closed, running, stopping, debug;
  double slow_duration;
  struct ev_loop *ev;
  ev_timer wake_timer;
  ev_async async;
  double now;
  rill__queue ready;
  /* Run once the iteration's ready batch has: coalesced writes, so they
   * leave in the iteration that wrote them, without a second poll. */
  rill__queue late;
  rill__timer **heap;
  size_t heap_len, heap_cap;
  uint64_t timer_seq;
  int io_active; /* user ev watchers that need a poll each iteration */

  rill_task *tasks_head, *tasks_tail; /* pending tasks, oldest first */
  int task_count;
  uint64_t next_task_id;
  rill_future *futures; /* every live future, for close */
  rill_future *unretrieved; /* failed tasks nobody has read yet */
  rill_task *current_task;

  rill_poll_fn poll_fn;
  void *poll_arg;
  rill_free_fn poll_free;

  rill_exception_fn exc_fn;
  void *exc_arg;
  rill_free_fn exc_free;

  pthread_mutex_t ts_lock;
  rill__ts_item *ts_head, *ts_tail;
  atomic_int ts_pending;

  rill__stack_pool *stacks;
  size_t stack_size;
  /* 1.1 copy-stack coroutines (coro.c): the one stack they run on, and the
   * coroutine whose frames it holds now (NULL: none). */
  void *shared_stack;
  struct rill__coro *shared_owner;
  rill__arena *arena;
  /* stream.c: the callback face's read buffer, one per loop (RILL_STREAM_DATA
   * is borrowed for the call, so every stream can share it); lazy. */
  char *read_buf;

  /* 1.1: I/O, threads, signals, processes */
  struct rill__executor *executor; /* pool.c: this loop's side of its thread pool */
  struct rill__signals *signals;   /* signal.c: watchers, the SIGINT-cancelled task */
  _Atomic uint64_t sig_pending;    /* signal.c: bit signum-1 set by the handler */
  atomic_int intr_pending;         /* signal.c: a signal or rill_loop_interrupt came */
  rill_process *processes;         /* process.c: children not yet reaped */
  int backend_exposed;             /* embed.c: a host polls the backend fd itself */
  int host_polled;                 /* embed.c: rill_loop_backend_timeout polled and
                                    * found work; the next iteration polls no more */
  atomic_int wake_fd;              /* embed.c: eventfd every wake-up writes once exposed */
  ev_io wake_io;
  struct rill__binding *bindings; /* per-binding state and handlers (binding.c) */
  struct rill__io *io; /* fd watchers and open I/O objects (io.c), NULL until used */
  struct rill__sync *syncs; /* sync.c: live sync primitives, for close */
  struct rill__uring *uring; /* uring.c: batched reads and sends, NULL until used */
  int uring_off;             /* uring.c: no ring here (refused or disabled) */
  struct rill__uring_op *uring_head, *uring_tail; /* uring.c: queued, in order */
  unsigned uring_count;
  /* uring.c: where an iteration's callback-face reads land (one slot per
   * stream), and how many of those reads are not yet handed over. */
  char *read_arena;
  size_t read_arena_cap;
  unsigned read_arena_busy;
};

/* Bumped in a forked child (loop.c): a ring made before is the parent's. */
RILL__HIDDEN extern atomic_uint rill__fork_gen;

/* initial-exec: no __tls_get_addr call on the hot path. Kept to a few
 * words of static TLS (this, future.c's release list), well within what
 * glibc reserves for libraries loaded with dlopen. */
#define RILL__TLS_IE __attribute__((tls_model("initial-exec")))
RILL__HIDDEN extern _Thread_local rill_loop *rill__tls_loop RILL__TLS_IE;

/* ev_run, then the batched reads its callbacks queued (uring.c). */
RILL__HIDDEN void rill__ev_run(rill_loop *loop, int flags);
RILL__HIDDEN double rill__clock(void);
RILL__HIDDEN void rill__loop_retain(rill_loop *loop);
RILL__HIDDEN void rill__loop_release(rill_loop *loop);
/* Checks loop is usable; records the error. */
RILL__HIDDEN int rill__loop_check(const rill_loop *loop);
static inline void rill__schedule(rill_loop *loop, rill__node *node) {
  rill__queue_push(&loop->ready, node);
}
static inline void rill__schedule_late(rill_loop *loop, rill__node *node) {
  rill__queue_push(&loop->late, node);
}
RILL__HIDDEN int rill__timer_start(rill_loop *loop, rill__timer *t, double when);
RILL__HIDDEN void rill__timer_stop(rill_loop *loop, rill__timer *t);
RILL__HIDDEN rill__timer *rill__timer_peek(rill_loop *loop);
RILL__HIDDEN void rill__timer_pop(rill_loop *loop);
RILL__HIDDEN void rill__report(rill_loop *loop, rill_future *future, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- I/O (io.c): loop close removes watchers and aborts open objects ---- */
RILL__HIDDEN void rill__io_loop_close(rill_loop *loop);

/* ---- futures ---- */
/* A future's value, also kept outside futures (thread jobs, queued items). */
typedef union rill__value_u {
  int b;
  int64_t i;
  double d;
  struct {
    void *data;
    size_t len;
  } bytes;
  struct {
    void *p;
    rill_free_fn free_p;
    const void *tag;
  } ptr;
} rill__value_u;

typedef struct rill__future_type {
  const char *name;
  /* Cancel request; returns 1 if requested now, 0 if nothing to cancel.
   * NULL: the plain future's (complete CANCELLED at once). */
  int (*cancel)(rill_future *f, const char *msg);
  /* Frees what the subtype owns (not the future itself). */
  void (*destroy)(rill_future *f);
  /* Loop closing: drop references that could form cycles. */
  void (*close)(rill_future *f);
  /* Just completed (state set, callbacks scheduled). */
  void (*completed)(rill_future *f);
} rill__future_type;

struct rill_future {
  int refs;
  unsigned char state, kind;
  unsigned char unretrieved; /* failed, nobody has read the failure yet */
  unsigned char in_unretrieved_list : 1;
  unsigned char bytes_in_arena : 1; /* v.bytes.data from rill__alloc (set_bytes_raw) */
  uint32_t alloc_size; /* bytes, for rill__dealloc */
  int err;
  const rill__future_type *type;
  rill_loop *loop;
  rill_future *all_prev, *all_next;   /* loop->futures (a pending task: loop->tasks) */
  /* A future on loop->unretrieved (a failed task, its callbacks run) has
   * no callbacks: the list's links take their place. unr_next is also the
   * link of the futures being destroyed (refs 0). */
  union {
    rill__queue callbacks;
    struct {
      rill_future *unr_prev, *unr_next; /* loop->unretrieved */
    };
  };
  /* A future has a value (DONE) or a failure (any other state; set on a
   * pending future just before it fails), never both: they share memory.
   * Read the failure's fields through rill__future_failed only. */
  union {
    rill__value_u v;
    struct {
      char *err_msg;
      void *payload;
      rill_free_fn free_payload;
      const void *payload_tag;
    };
  };
  rill_future *source; /* retained: outcome (value or failure) read from it */
  const void *owner;   /* rill_future_set_owner: whose exception handler */
};

/* f, if its failure fields are valid (it is not DONE), else NULL. */
static inline const rill_future *rill__future_failed(const rill_future *f) {
  return f->state == RILL_DONE ? NULL : f;
}
/* A DONE future whose value was moved out reads CANCELLED (a sync wait
 * abandoned after its hand-off): the failure fields start empty. */
static inline void rill__future_done_to_cancelled(rill_future *f) {
  f->err_msg = NULL;
  f->payload = NULL;
  f->free_payload = NULL;
  f->payload_tag = NULL;
  f->state = RILL_CANCELLED;
  f->err = RILL_ECANCELLED;
}

extern const rill__future_type rill__plain_future_type;
/* Initialises a future embedded in a larger object (refs = 1). */
RILL__HIDDEN void rill__future_init(rill_future *f, rill_loop *loop, const rill__future_type *type);
RILL__HIDDEN rill_future *rill__future_alloc(rill_loop *loop, const rill__future_type *type,
                                            size_t size);
/* As rill__future_alloc, but on no list yet (a task is on loop->tasks
 * while pending): the caller links it with rill__future_link later. */
RILL__HIDDEN rill_future *rill__future_alloc_unlinked(rill_loop *loop,
                                                     const rill__future_type *type, size_t size);
RILL__HIDDEN void rill__future_link(rill_future *f);
/* Completes f: state DONE (value already stored), FAILED or CANCELLED;
 * schedules its callbacks. No checks. */
RILL__HIDDEN void rill__future_finish(rill_future *f, int state);
RILL__HIDDEN int rill__future_fail_msg(rill_future *f, int code, const char *msg);
/* Fails/cancels f with src's outcome (src retained as the error source). */
RILL__HIDDEN void rill__future_fail_from(rill_future *f, rill_future *src, int state);
/* Copies src's outcome (value or failure) into f and completes it. */
RILL__HIDDEN int rill__future_copy_outcome(rill_future *f, rill_future *src);
RILL__HIDDEN int rill__future_cancel_plain(rill_future *f, const char *msg);
RILL__HIDDEN int rill__future_outcome(rill_future *f); /* marks retrieved */
RILL__HIDDEN void rill__future_mark_retrieved(rill_future *f);
/* Registers an internal node on f's callbacks (never fails). If f is done
 * already, the node is scheduled at once. */
RILL__HIDDEN void rill__future_add_node(rill_future *f, rill__node *node);
RILL__HIDDEN int rill__future_remove_node(rill_future *f, rill__node *node);
RILL__HIDDEN int rill__future_check(const rill_future *f);
RILL__HIDDEN int rill__future_check_open(const rill_future *f);

/* ---- tasks ---- */
enum rill__task_wait { RILL__T_NEW, RILL__T_READY, RILL__T_FUTURE, RILL__T_TIMER, RILL__T_RUNNING,
                       RILL__T_DONE };

struct rill__coro;

/* What few tasks need, allocated on first use: a sleep's timer, a cancel
 * message, a name. Kept out of rill_task so that the memory a spawned
 * task touches stays small (spawning is bound by page faults). */
typedef struct rill__task_extra {
  rill__timer timer; /* rill_task_sleep; timer.node runs the task */
  rill_task *task;
  char *cancel_msg;
  char *name;
} rill__task_extra;

struct rill_task {
  rill_future fut; /* first: a task is a future */
  rill_step_fn step;
  void *arg;
  rill_free_fn free_arg;
  /* Pending, the task is on loop->tasks through fut.all_prev/all_next; it
   * moves to loop->futures once done (one pair of links, not two). */
  rill__node wake;        /* in awaited->callbacks or the ready queue */
  rill_future *awaiting;  /* retained while waiting */
  uint64_t id;
  rill__task_extra *extra; /* NULL until needed */
  int cancelling;
  unsigned char wait; /* enum rill__task_wait */
  /* A byte, not a bit: rill_task_cancel_flag hands out its address. */
  unsigned char deliver_cancel;
  unsigned must_cancel : 1, arranged : 1, in_list : 1;
  unsigned forwarding : 1; /* rill_task_cancel is passing a cancel on from it */
  unsigned skip_cancelled_start : 1; /* RILL_TASK_SKIP_CANCELLED_START, until the first step */
  unsigned is_coro : 1; /* a C coroutine: its rill__coro follows the task */
};

static inline struct rill__coro *rill__task_coro(const rill_task *t) {
  return t->is_coro ? (struct rill__coro *)(void *)((rill_task *)t + 1) : NULL;
}
/* The next pending task, oldest first (loop->tasks_head). */
static inline rill_task *rill__task_next(const rill_task *t) {
  return (rill_task *)t->fut.all_next;
}
static inline const char *rill__task_cancel_msg(const rill_task *t) {
  return t->extra ? t->extra->cancel_msg : NULL;
}

extern const rill__future_type rill__task_type;
RILL__HIDDEN rill_task *rill__task_new(rill_loop *loop, rill_step_fn step, void *arg,
                                      rill_free_fn free_arg, size_t extra);
/* Destroys a pending task at loop close. */
RILL__HIDDEN void rill__task_destroy_pending(rill_task *t);
RILL__HIDDEN const char *rill__task_name(rill_task *t);
static inline rill_task *rill__as_task(rill_future *f) {
  return f && f->type == &rill__task_type ? (rill_task *)f : NULL;
}

/* ---- C coroutines (coro.c) ---- */
RILL__HIDDEN void rill__coro_destroy(rill_task *t);
/* The function a C coroutine task runs (debug mode's slow-step report). */
RILL__HIDDEN rill_coro_fn rill__coro_fn(const rill_task *t);
RILL__HIDDEN void rill__task_run_step(rill_task *t);

/* ---- groups of children (gather.c) shared by gather and wait ---- */
RILL__HIDDEN size_t rill__multi_count(rill_future *f);
RILL__HIDDEN rill_future *rill__multi_child(rill_future *f, size_t i);

/* ---- reliability (rel-fixes): libev's allocator (alloc.c) ----
 * libev aborts when its allocator returns NULL. rill's allocator retries
 * once from a reserve instead, and records the failure for the calling
 * thread; rill_loop_new and the run functions take it and return
 * RILL_ENOMEM. Installed once per process by rill_loop_new. */
RILL__HIDDEN void rill__ev_allocator_install(void);
/* 1 if a libev allocation failed in this thread since the last call. */
RILL__HIDDEN int rill__ev_oom_take(void);

/* ---- 1.1: the thread pool (pool.c) ---- */
typedef struct rill__executor rill__executor;
/* rill_loop_shutdown: runs the loop until every thread job completed, then
 * joins the pool's threads. rill_loop_close: drops queued jobs, waits for
 * running ones, frees the loop's side of the pool. */
RILL__HIDDEN int rill__pool_shutdown(rill_loop *loop);
RILL__HIDDEN void rill__pool_close(rill_loop *loop);

/* ---- 1.1: signals (signal.c) ---- */
/* Loop thread, when intr_pending is set (drain of the thread-safe queue):
 * schedules the callbacks of the signals that came, cancels the task armed
 * with rill_loop_cancel_on_sigint on SIGINT. */
RILL__HIDDEN void rill__signal_dispatch(rill_loop *loop);
/* Loop close: stops every watcher, disarms the SIGINT cancel. */
RILL__HIDDEN void rill__signal_close(rill_loop *loop);

/* ---- 1.1: processes (process.c) ---- */
/* Loop close: kills (SIGKILL) and reaps every child still running. */
RILL__HIDDEN void rill__process_close(rill_loop *loop);
/* The longest a host may wait before the children need a look (the
 * waitpid poll without pidfd), or +inf. */
RILL__HIDDEN double rill__process_timeout(rill_loop *loop);

/* ---- 1.1: embedding (embed.c) ---- */
/* Wakes the loop from any thread or a signal handler: ev_async_send, plus
 * the eventfd a host polling the backend fd hears. */
RILL__HIDDEN void rill__loop_wake(rill_loop *loop);
RILL__HIDDEN void rill__embed_close(rill_loop *loop);
/* ---- per-binding state and exception handlers (binding.c) ---- */
struct rill__binding;
/* Passes a report to the handler of the binding owning future, if one is
 * set; 1 if it did, 0 if the loop's handler must take it. */
RILL__HIDDEN int rill__binding_report(rill_loop *loop, const char *message, rill_future *future);
/* Loop close: frees every binding's state and handler (after the reports). */
RILL__HIDDEN void rill__bindings_close(rill_loop *loop);

/* ---- 1.1: sync primitives (sync.c, queue.c) ---- */
/* Loop close: every waiter unlinked (the futures pass cancels them),
 * queued items freed. */
RILL__HIDDEN void rill__sync_loop_close(rill_loop *loop);
/* A task is about to see a cancel while the future it awaited is DONE: if
 * that future is a sync wait that was handed something (a lock, a unit,
 * an item), it is passed on and the future reads CANCELLED. */
RILL__HIDDEN void rill__sync_abandoned(rill_future *f);

#endif
