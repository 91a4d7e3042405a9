/* pool.c - the thread pool: run a C function off the loop and get its
 * outcome as a future (asyncio's to_thread / run_in_executor).
 *
 * A job is a future subtype. The loop thread queues it on the pool; a
 * worker runs fn(work, arg), which writes its outcome into the job's
 * rill_work; the worker moves the job to its loop's done list and, if that
 * list was empty, posts one drain callback with rill_call_soon_threadsafe.
 * The drain runs on the loop thread and completes every finished job at
 * once: one wake-up per batch of completions.
 *
 * The pool's mutex guards the job queue and queued/running states; each
 * loop's done list has its own mutex. The job's future, refs and free_arg are touched on the
 * loop thread only, so free_arg (and a binding's reference drop) never runs
 * on a worker. Threads start lazily, up to max_threads, with every signal
 * blocked; they are joined by rill_loop_shutdown and by the release of the
 * pool's last loop. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

enum { JOB_QUEUED, JOB_RUNNING, JOB_REMOVED };

struct rill_work {
  atomic_int cancelled;
  int set, failed, kind;
  rill__value_u v;
  int err;
  char *msg;
  void *payload;
  rill_free_fn free_payload;
  const void *payload_tag;
};

typedef struct pool_job pool_job;
struct pool_job {
  rill_future fut; /* first: a job is a future */
  pool_job *prev, *next; /* the pool's queue, or its loop's done list */
  rill__executor *exec;
  rill_work_fn fn;
  void *arg;
  rill_free_fn free_arg;
  int state; /* JOB_*, under the pool's lock */
  rill_work work;
};

typedef struct rill__pool {
  pthread_mutex_t lock;
  pthread_cond_t work_cond; /* workers wait for jobs */
  int refs;                 /* loops using the pool */
  pool_job *head, *tail;
  size_t queued;
  int idle, max_threads, stopping;
  size_t nthreads, cap;
  pthread_t *threads;
} rill__pool;

struct rill__executor {
  rill_loop *loop;
  rill__pool *pool;    /* NULL until the first job (or a share) */
  int max_threads;     /* for a pool not yet made */
  /* Completions have their own lock (as libuv's per-loop wq_mutex), so
   * workers handing results back do not contend with submissions. */
  pthread_mutex_t done_lock;
  pthread_cond_t idle_cond; /* a closing loop waits for its running jobs */
  atomic_int running;       /* taken by a worker (under pool->lock), not yet done */
  /* under done_lock */
  pool_job *done_head, *done_tail;
  int wake_posted, closing;
  /* loop thread only */
  int inflight; /* submitted, not yet completed on the loop thread */
  rill_future *idle_future;
};

static int job_cancel(rill_future *f, const char *msg);
static const rill__future_type job_type = {"thread job", job_cancel, NULL, NULL, NULL};

/* ---------------------------------------------------------------- */
/* Outcomes written by the work function                              */

static int work_check(rill_work *w) {
  if (!w) return rill__fail(RILL_EINVAL, "work is NULL");
  if (w->set) return rill__fail(RILL_ESTATE, "the work's outcome is already set");
  return RILL_OK;
}

int rill_work_set_none(rill_work *w) {
  int rc = work_check(w);
  if (rc) return rc;
  w->set = 1;
  w->kind = RILL_NONE;
  return RILL_OK;
}

int rill_work_set_bool(rill_work *w, int value) {
  int rc = work_check(w);
  if (rc) return rc;
  w->set = 1;
  w->kind = RILL_BOOL;
  w->v.b = value ? 1 : 0;
  return RILL_OK;
}

int rill_work_set_int(rill_work *w, int64_t value) {
  int rc = work_check(w);
  if (rc) return rc;
  w->set = 1;
  w->kind = RILL_INT;
  w->v.i = value;
  return RILL_OK;
}

int rill_work_set_double(rill_work *w, double value) {
  int rc = work_check(w);
  if (rc) return rc;
  w->set = 1;
  w->kind = RILL_DOUBLE;
  w->v.d = value;
  return RILL_OK;
}

int rill_work_set_bytes(rill_work *w, const void *data, size_t len) {
  int rc = work_check(w);
  if (rc) return rc;
  if (!data && len) return rill__fail(RILL_EINVAL, "data is NULL");
  void *copy = malloc(len ? len : 1);
  if (!copy) return rill__fail(RILL_ENOMEM, "out of memory copying %zu bytes", len);
  if (len) memcpy(copy, data, len);
  w->set = 1;
  w->kind = RILL_BYTES;
  w->v.bytes.data = copy;
  w->v.bytes.len = len;
  return RILL_OK;
}

int rill_work_set_pointer(rill_work *w, void *p, rill_free_fn free_p, const void *tag) {
  int rc = work_check(w);
  if (rc) return rc;
  w->set = 1;
  w->kind = RILL_POINTER;
  w->v.ptr.p = p;
  w->v.ptr.free_p = free_p;
  w->v.ptr.tag = tag;
  return RILL_OK;
}

int rill_work_fail(rill_work *w, int code, const char *message, void *payload,
                   rill_free_fn free_payload, const void *tag) {
  int rc = work_check(w);
  if (!rc && code >= 0) rc = rill__fail(RILL_EINVAL, "a failure code must be negative");
  char *copy = NULL;
  if (!rc && message) {
    size_t n = strlen(message) + 1;
    if (!(copy = malloc(n))) rc = rill__fail(RILL_ENOMEM, "out of memory copying a message");
    else memcpy(copy, message, n);
  }
  if (rc) {
    if (free_payload) free_payload(payload);
    return rc;
  }
  w->set = 1;
  w->failed = 1;
  w->err = code;
  w->msg = copy;
  w->payload = payload;
  w->free_payload = free_payload;
  w->payload_tag = tag;
  return RILL_OK;
}

int rill_work_cancelled(const rill_work *w) {
  if (!w) return rill__fail(RILL_EINVAL, "work is NULL");
  return atomic_load_explicit(&((rill_work *)w)->cancelled, memory_order_relaxed) ? 1 : 0;
}

/* Frees an outcome nobody will read. */
static void work_drop(rill_work *w) {
  if (!w->set) return;
  if (w->failed) {
    free(w->msg);
    if (w->free_payload) w->free_payload(w->payload);
  } else if (w->kind == RILL_BYTES) {
    free(w->v.bytes.data);
  } else if (w->kind == RILL_POINTER && w->v.ptr.free_p) {
    w->v.ptr.free_p(w->v.ptr.p);
  }
  w->set = 0;
}

/* Moves the outcome into the (pending) future and completes it. */
static void work_deliver(rill_work *w, rill_future *f) {
  if (!w->set) {
    f->kind = RILL_NONE;
    rill__future_finish(f, RILL_DONE);
    return;
  }
  w->set = 0;
  if (w->failed) {
    f->err = w->err;
    f->err_msg = w->msg;
    f->payload = w->payload;
    f->free_payload = w->free_payload;
    f->payload_tag = w->payload_tag;
    rill__future_finish(f, w->err == RILL_ECANCELLED ? RILL_CANCELLED : RILL_FAILED);
    return;
  }
  f->kind = (unsigned char)w->kind;
  switch (w->kind) {
  case RILL_BOOL: f->v.b = w->v.b; break;
  case RILL_INT: f->v.i = w->v.i; break;
  case RILL_DOUBLE: f->v.d = w->v.d; break;
  case RILL_BYTES:
    f->v.bytes.data = w->v.bytes.data;
    f->v.bytes.len = w->v.bytes.len;
    break;
  case RILL_POINTER:
    f->v.ptr.p = w->v.ptr.p;
    f->v.ptr.free_p = w->v.ptr.free_p;
    f->v.ptr.tag = w->v.ptr.tag;
    break;
  default: break;
  }
  rill__future_finish(f, RILL_DONE);
}

/* ---------------------------------------------------------------- */
/* The pool                                                           */

static int default_max_threads(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  return cores + 4 < 32 ? (int)cores + 4 : 32;
}

static rill__pool *pool_new(int max_threads) {
  rill__pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (pthread_mutex_init(&p->lock, NULL) != 0) goto fail_lock;
  if (pthread_cond_init(&p->work_cond, NULL) != 0) goto fail_work;
  p->refs = 1;
  p->max_threads = max_threads;
  return p;
fail_work:
  pthread_mutex_destroy(&p->lock);
fail_lock:
  free(p);
  return NULL;
}

static void queue_unlink(rill__pool *p, pool_job *j) {
  if (j->prev) j->prev->next = j->next;
  else p->head = j->next;
  if (j->next) j->next->prev = j->prev;
  else p->tail = j->prev;
  j->prev = j->next = NULL;
  p->queued--;
}

static void exec_drain(void *arg);

static void *worker_main(void *arg) {
  rill__pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->head && !p->stopping) {
      p->idle++;
      pthread_cond_wait(&p->work_cond, &p->lock);
      p->idle--;
    }
    if (!p->head) break; /* stopping, nothing left */
    pool_job *j = p->head;
    queue_unlink(p, j);
    j->state = JOB_RUNNING;
    atomic_fetch_add_explicit(&j->exec->running, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);

    j->fn(&j->work, j->arg);

    rill__executor *e = j->exec;
    pthread_mutex_lock(&e->done_lock);
    j->prev = e->done_tail;
    j->next = NULL;
    if (e->done_tail) e->done_tail->next = j;
    else e->done_head = j;
    e->done_tail = j;
    if (!e->wake_posted && !e->closing) {
      /* Under done_lock: a closing loop waits for running == 0 under this
       * same lock, so the loop is open while we post. */
      e->wake_posted = rill_call_soon_threadsafe(e->loop, exec_drain, e, NULL) == RILL_OK;
    }
    if (atomic_fetch_sub_explicit(&e->running, 1, memory_order_acq_rel) == 1 && e->closing)
      pthread_cond_broadcast(&e->idle_cond);
    pthread_mutex_unlock(&e->done_lock);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* Under p->lock: starts one more worker. */
static int pool_spawn_locked(rill__pool *p) {
  if (p->nthreads == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 8;
    pthread_t *t = realloc(p->threads, cap * sizeof *t);
    if (!t) return RILL_ENOMEM;
    p->threads = t;
    p->cap = cap;
  }
  /* Workers never take a signal: signals go to the loop's thread (or
   * whichever thread the program chose), never to a job mid-flight. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return RILL_ESYS;
  p->nthreads++;
  return RILL_OK;
}

/* Joins every worker; the pool can start new ones afterwards. Called only
 * when no other loop can submit (the caller holds the only reference). */
static void pool_join(rill__pool *p) {
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->work_cond);
  size_t n = p->nthreads;
  pthread_mutex_unlock(&p->lock);
  for (size_t i = 0; i < n; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_lock(&p->lock);
  p->nthreads = 0;
  p->stopping = 0;
  pthread_mutex_unlock(&p->lock);
}

static void pool_release(rill__pool *p) {
  pthread_mutex_lock(&p->lock);
  int last = --p->refs == 0;
  pthread_mutex_unlock(&p->lock);
  if (!last) return;
  pool_join(p);
  free(p->threads);
  pthread_cond_destroy(&p->work_cond);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static void exec_free(rill__executor *e) {
  pthread_cond_destroy(&e->idle_cond);
  pthread_mutex_destroy(&e->done_lock);
  free(e);
}

/* ---------------------------------------------------------------- */
/* A loop's side                                                      */

static rill__executor *exec_get(rill_loop *loop) {
  if (loop->executor) return loop->executor;
  rill__executor *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  if (pthread_mutex_init(&e->done_lock, NULL) != 0) {
    free(e);
    return NULL;
  }
  if (pthread_cond_init(&e->idle_cond, NULL) != 0) {
    pthread_mutex_destroy(&e->done_lock);
    free(e);
    return NULL;
  }
  atomic_init(&e->running, 0);
  e->loop = loop;
  e->max_threads = default_max_threads();
  loop->executor = e;
  return e;
}

static rill__pool *exec_pool(rill__executor *e) {
  if (!e->pool) e->pool = pool_new(e->max_threads);
  return e->pool;
}

/* Loop thread: the job is finished or removed; completes its future (or
 * drops its outcome), runs free_arg, drops the job's reference. */
static void job_complete(pool_job *j, int deliver) {
  rill__executor *e = j->exec;
  rill_future *f = &j->fut;
  if (deliver && f->state == RILL_PENDING) work_deliver(&j->work, f);
  else work_drop(&j->work);
  if (j->free_arg) {
    rill_free_fn fr = j->free_arg;
    j->free_arg = NULL;
    fr(j->arg);
  }
  e->inflight--;
  j->exec = NULL; /* the executor may go before the future (loop close) */
  rill_future_release(f);
  if (e->inflight == 0 && e->idle_future) rill_future_set_none(e->idle_future);
}

static void exec_drain(void *arg) {
  rill__executor *e = arg;
  pthread_mutex_lock(&e->done_lock);
  pool_job *j = e->done_head;
  e->done_head = e->done_tail = NULL;
  e->wake_posted = 0;
  pthread_mutex_unlock(&e->done_lock);
  while (j) {
    pool_job *next = j->next;
    job_complete(j, 1);
    j = next;
  }
}

static int job_cancel(rill_future *f, const char *msg) {
  pool_job *j = (pool_job *)f;
  if (!j->exec) { /* its pool already let it go: a loop closing */
    rill__future_cancel_plain(f, msg);
    return 1;
  }
  rill__pool *p = j->exec->pool;
  pthread_mutex_lock(&p->lock);
  int removed = j->state == JOB_QUEUED;
  if (removed) {
    queue_unlink(p, j);
    j->state = JOB_REMOVED;
  } else {
    atomic_store_explicit(&j->work.cancelled, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&p->lock);
  rill__future_cancel_plain(f, msg);
  /* Not started: it never will. Started: its outcome is dropped when it
   * ends (job_complete sees the future done). */
  if (removed) job_complete(j, 0);
  return 1;
}

rill_future *rill_run_in_thread(rill_loop *loop, rill_work_fn fn, void *arg,
                                rill_free_fn free_arg) {
  if (rill__loop_check(loop)) return NULL;
  if (!fn) {
    rill__fail(RILL_EINVAL, "fn is NULL");
    return NULL;
  }
  rill__executor *e = exec_get(loop);
  rill__pool *p = e ? exec_pool(e) : NULL;
  if (!p) {
    rill__fail(RILL_ENOMEM, "out of memory creating the thread pool");
    return NULL;
  }
  pool_job *j = (pool_job *)rill__future_alloc(loop, &job_type, sizeof *j);
  if (!j) return NULL;
  memset((char *)j + sizeof(rill_future), 0, sizeof *j - sizeof(rill_future));
  atomic_init(&j->work.cancelled, 0);
  j->exec = e;
  j->fn = fn;
  j->arg = arg;
  j->free_arg = free_arg;
  j->fut.refs++; /* the job's own, until it completes on the loop thread */

  pthread_mutex_lock(&p->lock);
  if (p->idle <= (int)p->queued && p->nthreads < (size_t)p->max_threads) {
    int rc = pool_spawn_locked(p);
    if (rc && p->nthreads == 0) {
      pthread_mutex_unlock(&p->lock);
      j->free_arg = NULL; /* on failure free_arg stays the caller's */
      j->fut.refs = 1;
      rill__future_cancel_plain(&j->fut, NULL);
      rill_future_release(&j->fut);
      rill__fail(rc, "could not start a pool thread");
      return NULL;
    }
    /* else: the threads we have will get to it */
  }
  j->state = JOB_QUEUED;
  j->prev = p->tail;
  if (p->tail) p->tail->next = j;
  else p->head = j;
  p->tail = j;
  p->queued++;
  if (p->idle > 0) pthread_cond_signal(&p->work_cond);
  pthread_mutex_unlock(&p->lock);
  e->inflight++;
  return &j->fut;
}

int rill_loop_set_thread_pool_size(rill_loop *loop, int max_threads) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (max_threads < 1 || max_threads > 1024)
    return rill__fail(RILL_EINVAL, "max_threads must be 1..1024");
  rill__executor *e = exec_get(loop);
  if (!e) return rill__fail(RILL_ENOMEM, "out of memory");
  e->max_threads = max_threads;
  if (e->pool) {
    pthread_mutex_lock(&e->pool->lock);
    e->pool->max_threads = max_threads;
    pthread_mutex_unlock(&e->pool->lock);
  }
  return RILL_OK;
}

int rill_loop_share_thread_pool(rill_loop *loop, rill_loop *with) {
  int rc = rill__loop_check(loop);
  if (!rc) rc = rill__loop_check(with);
  if (rc) return rc;
  if (loop == with) return rill__fail(RILL_EINVAL, "a loop cannot share with itself");
  rill__executor *e = exec_get(loop);
  rill__executor *w = e ? exec_get(with) : NULL;
  rill__pool *p = w ? exec_pool(w) : NULL;
  if (!p) return rill__fail(RILL_ENOMEM, "out of memory");
  if (e->pool == p) return RILL_OK;
  if (e->inflight) return rill__fail(RILL_ESTATE, "the loop has thread jobs in flight");
  pthread_mutex_lock(&p->lock);
  p->refs++;
  pthread_mutex_unlock(&p->lock);
  if (e->pool) pool_release(e->pool);
  e->pool = p;
  return RILL_OK;
}

/* rill_loop_shutdown's part: run the loop until every job has completed,
 * then join the pool's threads (unless another loop shares them). */
int rill__pool_shutdown(rill_loop *loop) {
  rill__executor *e = loop->executor;
  if (!e || !e->pool) return RILL_OK;
  int rc = RILL_OK;
  if (e->inflight > 0) {
    e->idle_future = rill_future_new(loop);
    if (!e->idle_future) return rill_last_error();
    rc = rill_loop_run_until(loop, e->idle_future);
    rill_future_release(e->idle_future);
    e->idle_future = NULL;
    if (rc) return rc;
  }
  pthread_mutex_lock(&e->pool->lock);
  int alone = e->pool->refs == 1;
  pthread_mutex_unlock(&e->pool->lock);
  if (alone) pool_join(e->pool);
  return RILL_OK;
}

/* Loop close: queued jobs of this loop never run; running ones are waited
 * for; every job's free_arg runs here, its outcome is dropped and its
 * future left pending for close to cancel. */
void rill__pool_close(rill_loop *loop) {
  rill__executor *e = loop->executor;
  if (!e) return;
  rill__pool *p = e->pool;
  if (p) {
    pool_job *removed = NULL;
    pthread_mutex_lock(&p->lock);
    for (pool_job *j = p->head, *next; j; j = next) {
      next = j->next;
      if (j->exec != e) continue;
      queue_unlink(p, j);
      j->state = JOB_REMOVED;
      j->next = removed;
      removed = j;
    }
    pthread_mutex_unlock(&p->lock);
    /* A job taken before the removal above counted itself in running
     * under the pool's lock: wait for those. */
    pthread_mutex_lock(&e->done_lock);
    e->closing = 1;
    while (atomic_load(&e->running)) pthread_cond_wait(&e->idle_cond, &e->done_lock);
    pool_job *done = e->done_head;
    e->done_head = e->done_tail = NULL;
    pthread_mutex_unlock(&e->done_lock);
    for (pool_job *j = removed, *next; j; j = next) {
      next = j->next;
      job_complete(j, 0);
    }
    for (pool_job *j = done, *next; j; j = next) {
      next = j->next;
      job_complete(j, 0);
    }
    pool_release(p);
  }
  exec_free(e);
  loop->executor = NULL;
}
