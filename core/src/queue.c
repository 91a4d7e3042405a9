/* queue.c - the Queue (FIFO, LIFO, priority): a ring or a heap of future
 * values, and FIFO lists of getters, putters and joiners. An item goes
 * straight into a waiting getter's future; a getter cancelled after it
 * was handed one gives it to the next getter or back to the front. */
#include <stdlib.h>
#include <string.h>

#include "sync.h"

struct rill_queue {
  rill__sync s;
  int kind, maxsize; /* maxsize 0: unbounded */
  rill__item *items; /* FIFO/LIFO: a ring from head; PRIORITY: a heap from 0 */
  size_t cap, head, len;
  uint64_t seq;
  size_t unfinished; /* put and not yet task_done */
  int shutdown, immediate;
  rill__wlist getters, putters, joiners;
};

static int queue_cancel(rill_future *f, const char *msg);
static void queue_waiter_destroy(rill_future *f);
static void queue_waiter_close(rill_future *f);

static const rill__future_type get_type = {"queue get", queue_cancel, queue_waiter_destroy,
                                           queue_waiter_close, NULL};
static const rill__future_type put_type = {"queue put", queue_cancel, queue_waiter_destroy,
                                           queue_waiter_close, NULL};
static const rill__future_type join_type = {"queue join", queue_cancel, queue_waiter_destroy,
                                            queue_waiter_close, NULL};

/* ---------------------------------------------------------------- */
/* The buffer                                                         */

static int grow(rill_queue *q) {
  if (q->len < q->cap) return RILL_OK;
  size_t cap = q->cap ? q->cap * 2 : 8;
  rill__item *a = malloc(cap * sizeof *a);
  if (!a) return rill__fail(RILL_ENOMEM, "out of memory growing a queue");
  for (size_t i = 0; i < q->len; i++) a[i] = q->items[(q->head + i) % (q->cap ? q->cap : 1)];
  free(q->items);
  q->items = a;
  q->cap = cap;
  q->head = 0;
  return RILL_OK;
}

static int before(const rill__item *a, const rill__item *b) {
  return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

static void heap_push(rill_queue *q, const rill__item *it) {
  size_t i = q->len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(it, &q->items[parent])) break;
    q->items[i] = q->items[parent];
    i = parent;
  }
  q->items[i] = *it;
}

static void heap_pop(rill_queue *q, rill__item *out) {
  *out = q->items[0];
  rill__item last = q->items[--q->len];
  size_t i = 0, n = q->len;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(&q->items[c + 1], &q->items[c])) c++;
    if (!before(&q->items[c], &last)) break;
    q->items[i] = q->items[c];
    i = c;
  }
  if (n) q->items[i] = last;
}

/* Adds it at its place (room checked by grow). */
static void store(rill_queue *q, const rill__item *it, int front) {
  if (q->kind == RILL_QUEUE_PRIORITY) {
    heap_push(q, it);
  } else if (front && q->kind == RILL_QUEUE_FIFO) {
    q->head = (q->head + q->cap - 1) % q->cap;
    q->items[q->head] = *it;
    q->len++;
  } else {
    q->items[(q->head + q->len) % q->cap] = *it;
    q->len++;
  }
}

static void take(rill_queue *q, rill__item *out) {
  if (q->kind == RILL_QUEUE_PRIORITY) {
    heap_pop(q, out);
  } else if (q->kind == RILL_QUEUE_LIFO) {
    *out = q->items[(q->head + q->len - 1) % q->cap];
    q->len--;
  } else {
    *out = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
  }
}

static void free_items(rill_queue *q) {
  rill__item it;
  while (q->len) {
    take(q, &it);
    rill__value_free(&it.val);
  }
}

static int is_full(const rill_queue *q) { return q->maxsize > 0 && q->len >= (size_t)q->maxsize; }

/* ---------------------------------------------------------------- */
/* Hand-offs                                                          */

/* Gives it to the first getter that can take it, else stores it (at the
 * front: an item given back). 0 or RILL_ENOMEM (it untouched). */
static int admit(rill_queue *q, rill__item *it, int front) {
  rill__waiter *g;
  while ((g = q->getters.head)) {
    if (rill__waiter_orphan(g)) { /* nobody would read it */
      rill__waiter_finish(g, RILL_CANCELLED, 0, NULL);
      continue;
    }
    g->item.prio = it->prio;
    g->item.seq = it->seq;
    rill__value_to_future(&it->val, &g->fut);
    rill__waiter_finish(g, RILL_DONE, 0, NULL);
    return RILL_OK;
  }
  int rc = grow(q);
  if (rc) return rc;
  store(q, it, front);
  return RILL_OK;
}

static void wake_joiners(rill_queue *q) {
  while (q->joiners.head) rill__waiter_finish(q->joiners.head, RILL_DONE, 0, NULL);
}

/* Room freed: waiting putters go in, FIFO. */
static void admit_putters(rill_queue *q) {
  rill__waiter *p;
  while (!is_full(q) && (p = q->putters.head)) {
    rill__item it = p->item;
    it.seq = q->seq++;
    if (admit(q, &it, 0)) break; /* ENOMEM: it stays the putter's */
    p->has_item = 0;
    q->unfinished++;
    rill__waiter_finish(p, RILL_DONE, 0, NULL);
  }
}

/* A get handed an item whose task was cancelled before it resumed: the
 * item goes to the next getter or back to the front; the get reads
 * CANCELLED. */
int rill__queue_abandoned(rill_future *f) {
  if (f->type != &get_type) return 0;
  rill__waiter *w = (rill__waiter *)f;
  rill_queue *q = (rill_queue *)w->prim;
  rill__item it = w->item;
  rill__value_from_future(f, &it.val);
  rill__future_done_to_cancelled(f);
  rill__sync_retain(&q->s);
  if (q->immediate || admit(q, &it, 1)) {
    /* Shut down immediately meanwhile (or no memory): dropped as the
     * shutdown drops items. */
    rill__value_free(&it.val);
    if (q->unfinished > 0 && --q->unfinished == 0) wake_joiners(q);
  }
  rill__sync_release(&q->s);
  return 1;
}

/* ---------------------------------------------------------------- */
/* Waiters                                                            */

static int queue_cancel(rill_future *f, const char *msg) {
  rill__waiter *w = (rill__waiter *)f;
  if (w->has_item) rill__value_free(&w->item.val); /* a put never made */
  w->has_item = 0;
  rill__waiter_finish(w, RILL_CANCELLED, 0, msg);
  return 1;
}

static void queue_waiter_destroy(rill_future *f) {
  rill__waiter *w = (rill__waiter *)f;
  if (w->has_item) rill__value_free(&w->item.val);
  w->has_item = 0;
  rill__sync_release(w->prim);
}

static void queue_waiter_close(rill_future *f) {
  rill__waiter *w = (rill__waiter *)f;
  if (w->list) {
    rill__wlist_unlink(w);
    rill_future_release(f);
  }
}

/* ---------------------------------------------------------------- */
/* The queue                                                          */

static void queue_close(rill__sync *s) {
  rill_queue *q = (rill_queue *)s;
  rill__wlist_drop_all(&q->getters);
  rill__wlist_drop_all(&q->putters);
  rill__wlist_drop_all(&q->joiners);
  free_items(q);
}

static void queue_destroy(rill__sync *s) {
  rill_queue *q = (rill_queue *)s;
  free_items(q);
  free(q->items);
}

rill_queue *rill_queue_new(rill_loop *loop, int maxsize, int kind) {
  if (rill__loop_check(loop)) return NULL;
  if (kind != RILL_QUEUE_FIFO && kind != RILL_QUEUE_LIFO && kind != RILL_QUEUE_PRIORITY) {
    rill__fail(RILL_EINVAL, "unknown queue kind %d", kind);
    return NULL;
  }
  rill_queue *q = rill__alloc(loop, sizeof *q);
  if (!q) {
    rill__fail(RILL_ENOMEM, "out of memory creating a queue");
    return NULL;
  }
  rill__sync_init(&q->s, loop, sizeof *q, queue_close, queue_destroy);
  q->kind = kind;
  q->maxsize = maxsize > 0 ? maxsize : 0;
  return q;
}

rill_queue *rill_queue_retain(rill_queue *q) {
  if (q) rill__sync_retain(&q->s);
  return q;
}

void rill_queue_release(rill_queue *q) {
  if (q) rill__sync_release(&q->s);
}

static int check(const rill_queue *q) { return rill__sync_check(q ? &q->s : NULL, "queue"); }

/* put: the queue owns v once a future is returned; on NULL v stays the
 * caller's. */
static rill_future *put(rill_queue *q, rill__value *v, int64_t prio) {
  if (check(q)) return NULL;
  if (q->shutdown) {
    rill__fail(RILL_ESHUTDOWN, "the queue is shut down");
    return NULL;
  }
  rill__waiter *w = rill__waiter_new(&q->s, &put_type);
  if (!w) return NULL;
  rill__item it = {*v, prio, 0};
  if (is_full(q) || q->putters.head) {
    w->item = it;
    w->has_item = 1;
    rill__wlist_push(&q->putters, w);
    return &w->fut;
  }
  rill__sync_retain(&q->s);
  it.seq = q->seq++;
  int rc = admit(q, &it, 0);
  if (!rc) {
    q->unfinished++;
    rill__future_finish(&w->fut, RILL_DONE);
  }
  rill__sync_release(&q->s);
  if (rc) {
    rill_future_release(&w->fut);
    return NULL;
  }
  return &w->fut;
}

static int put_nowait(rill_queue *q, rill__value *v, int64_t prio) {
  int rc = check(q);
  if (rc) return rc;
  if (q->shutdown) return rill__fail(RILL_ESHUTDOWN, "the queue is shut down");
  if (is_full(q) || q->putters.head) return rill__fail(RILL_EFULL, "the queue is full");
  rill__item it = {*v, prio, q->seq};
  rill__sync_retain(&q->s);
  if (!(rc = admit(q, &it, 0))) {
    q->seq++;
    q->unfinished++;
  }
  rill__sync_release(&q->s);
  return rc;
}

/* Copies bytes for a put; frees the copy if the put failed. */
static int bytes_value(rill__value *v, const void *data, size_t len) {
  if (!data && len) return rill__fail(RILL_EINVAL, "data is NULL");
  void *copy = malloc(len ? len : 1);
  if (!copy) return rill__fail(RILL_ENOMEM, "out of memory copying %zu bytes", len);
  if (len) memcpy(copy, data, len);
  v->kind = RILL_BYTES;
  v->v.bytes.data = copy;
  v->v.bytes.len = len;
  return RILL_OK;
}

rill_future *rill_queue_put_none(rill_queue *q, int64_t priority) {
  rill__value v = {.kind = RILL_NONE};
  return put(q, &v, priority);
}

rill_future *rill_queue_put_bool(rill_queue *q, int value, int64_t priority) {
  rill__value v = {.kind = RILL_BOOL, .v.b = value ? 1 : 0};
  return put(q, &v, priority);
}

rill_future *rill_queue_put_int(rill_queue *q, int64_t value, int64_t priority) {
  rill__value v = {.kind = RILL_INT, .v.i = value};
  return put(q, &v, priority);
}

rill_future *rill_queue_put_double(rill_queue *q, double value, int64_t priority) {
  rill__value v = {.kind = RILL_DOUBLE, .v.d = value};
  return put(q, &v, priority);
}

rill_future *rill_queue_put_bytes(rill_queue *q, const void *data, size_t len,
                                  int64_t priority) {
  if (check(q)) return NULL;
  rill__value v;
  if (bytes_value(&v, data, len)) return NULL;
  rill_future *f = put(q, &v, priority);
  if (!f) free(v.v.bytes.data);
  return f;
}

rill_future *rill_queue_put_pointer(rill_queue *q, void *p, rill_free_fn free_p,
                                    const void *tag, int64_t priority) {
  rill__value v = {.kind = RILL_POINTER};
  v.v.ptr.p = p;
  v.v.ptr.free_p = free_p;
  v.v.ptr.tag = tag;
  return put(q, &v, priority);
}

int rill_queue_put_nowait_none(rill_queue *q, int64_t priority) {
  rill__value v = {.kind = RILL_NONE};
  return put_nowait(q, &v, priority);
}

int rill_queue_put_nowait_bool(rill_queue *q, int value, int64_t priority) {
  rill__value v = {.kind = RILL_BOOL, .v.b = value ? 1 : 0};
  return put_nowait(q, &v, priority);
}

int rill_queue_put_nowait_int(rill_queue *q, int64_t value, int64_t priority) {
  rill__value v = {.kind = RILL_INT, .v.i = value};
  return put_nowait(q, &v, priority);
}

int rill_queue_put_nowait_double(rill_queue *q, double value, int64_t priority) {
  rill__value v = {.kind = RILL_DOUBLE, .v.d = value};
  return put_nowait(q, &v, priority);
}

int rill_queue_put_nowait_bytes(rill_queue *q, const void *data, size_t len, int64_t priority) {
  int rc = check(q);
  if (rc) return rc;
  if (q->shutdown) return rill__fail(RILL_ESHUTDOWN, "the queue is shut down");
  if (is_full(q) || q->putters.head) return rill__fail(RILL_EFULL, "the queue is full");
  rill__value v;
  if ((rc = bytes_value(&v, data, len))) return rc;
  if ((rc = put_nowait(q, &v, priority))) free(v.v.bytes.data);
  return rc;
}

int rill_queue_put_nowait_pointer(rill_queue *q, void *p, rill_free_fn free_p, const void *tag,
                                  int64_t priority) {
  rill__value v = {.kind = RILL_POINTER};
  v.v.ptr.p = p;
  v.v.ptr.free_p = free_p;
  v.v.ptr.tag = tag;
  return put_nowait(q, &v, priority);
}

/* A DONE get future with the next item; room freed for the putters. */
static rill_future *get_now(rill_queue *q) {
  rill__waiter *w = rill__waiter_new(&q->s, &get_type);
  if (!w) return NULL;
  rill__item it;
  take(q, &it);
  w->item.prio = it.prio;
  w->item.seq = it.seq;
  rill__value_to_future(&it.val, &w->fut);
  rill__future_finish(&w->fut, RILL_DONE);
  rill__sync_retain(&q->s);
  admit_putters(q);
  rill__sync_release(&q->s);
  return &w->fut;
}

rill_future *rill_queue_get(rill_queue *q) {
  if (check(q)) return NULL;
  if (q->len) return get_now(q);
  if (q->shutdown) {
    rill__fail(RILL_ESHUTDOWN, "the queue is shut down");
    return NULL;
  }
  rill__waiter *w = rill__waiter_new(&q->s, &get_type);
  if (!w) return NULL;
  rill__wlist_push(&q->getters, w);
  return &w->fut;
}

rill_future *rill_queue_get_nowait(rill_queue *q) {
  if (check(q)) return NULL;
  if (q->len) return get_now(q);
  if (q->shutdown) rill__fail(RILL_ESHUTDOWN, "the queue is shut down");
  else rill__fail(RILL_EEMPTY, "the queue is empty");
  return NULL;
}

int rill_queue_qsize(const rill_queue *q) {
  int rc = check(q);
  return rc ? rc : (int)(q->len > 0x7fffffff ? 0x7fffffff : q->len);
}

int rill_queue_maxsize(const rill_queue *q) {
  int rc = check(q);
  return rc ? rc : q->maxsize;
}

int rill_queue_kind(const rill_queue *q) {
  int rc = check(q);
  return rc ? rc : q->kind;
}

rill_loop *rill_queue_loop(const rill_queue *q) {
  if (!q) {
    rill__fail(RILL_EINVAL, "queue is NULL");
    return NULL;
  }
  return q->s.loop;
}

int rill_queue_is_empty(const rill_queue *q) {
  int rc = check(q);
  return rc ? rc : q->len == 0;
}

int rill_queue_is_full(const rill_queue *q) {
  int rc = check(q);
  return rc ? rc : is_full(q);
}

int rill_queue_task_done(rill_queue *q) {
  int rc = check(q);
  if (rc) return rc;
  if (q->unfinished == 0) return rill__fail(RILL_ETOOMANY, "task_done() called too many times");
  if (--q->unfinished == 0) {
    rill__sync_retain(&q->s);
    wake_joiners(q);
    rill__sync_release(&q->s);
  }
  return RILL_OK;
}

rill_future *rill_queue_join(rill_queue *q) {
  if (check(q)) return NULL;
  rill__waiter *w = rill__waiter_new(&q->s, &join_type);
  if (!w) return NULL;
  if (q->unfinished == 0) rill__future_finish(&w->fut, RILL_DONE);
  else rill__wlist_push(&q->joiners, w);
  return &w->fut;
}

int rill_queue_shutdown(rill_queue *q, int immediate) {
  int rc = check(q);
  if (rc) return rc;
  rill__sync_retain(&q->s);
  q->shutdown = 1;
  if (immediate) {
    q->immediate = 1;
    rill__item it;
    while (q->len) {
      take(q, &it);
      rill__value_free(&it.val);
      if (q->unfinished > 0) q->unfinished--;
    }
    if (q->unfinished == 0) wake_joiners(q);
  }
  while (q->getters.head)
    rill__waiter_finish(q->getters.head, RILL_FAILED, RILL_ESHUTDOWN, "the queue is shut down");
  rill__waiter *p;
  while ((p = q->putters.head)) {
    rill__value_free(&p->item.val);
    p->has_item = 0;
    rill__waiter_finish(p, RILL_FAILED, RILL_ESHUTDOWN, "the queue is shut down");
  }
  rill__sync_release(&q->s);
  return RILL_OK;
}

int rill_queue_is_shut_down(const rill_queue *q) {
  int rc = check(q);
  return rc ? rc : q->shutdown;
}
