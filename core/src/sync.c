/* sync.c - Event, Lock, Semaphore, Condition, Barrier: FIFO lists of
 * waiter futures, and the hand-offs that complete them (asyncio's rules).
 * The Queue is in queue.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

/* ---------------------------------------------------------------- */
/* Primitives and waiters                                             */

void rill__sync_init(rill__sync *s, rill_loop *loop, size_t size, void (*close)(rill__sync *),
                     void (*destroy)(rill__sync *)) {
  memset(s, 0, size);
  s->refs = 1;
  s->alloc_size = (uint32_t)size;
  s->loop = loop;
  s->close = close;
  s->destroy = destroy;
  s->loop_next = loop->syncs;
  if (loop->syncs) loop->syncs->loop_prev = s;
  loop->syncs = s;
  rill__loop_retain(loop);
}

void rill__sync_retain(rill__sync *s) { s->refs++; }

void rill__sync_release(rill__sync *s) {
  if (--s->refs > 0) return;
  rill_loop *loop = s->loop;
  if (s->destroy) s->destroy(s);
  if (s->loop_prev) s->loop_prev->loop_next = s->loop_next;
  else loop->syncs = s->loop_next;
  if (s->loop_next) s->loop_next->loop_prev = s->loop_prev;
  rill__dealloc(loop, s, s->alloc_size);
  rill__loop_release(loop);
}

int rill__sync_check(const rill__sync *s, const char *what) {
  if (!s) return rill__fail(RILL_EINVAL, "%s is NULL", what);
  if (s->loop->closed) return rill__fail(RILL_ECLOSED, "the %s's loop is closed", what);
  return RILL_OK;
}

/* Alive primitives of a closing loop: unlink their waiters, drop items. */
void rill__sync_loop_close(rill_loop *loop) {
  for (rill__sync *s = loop->syncs; s; s = s->loop_next) s->refs++;
  for (rill__sync *s = loop->syncs, *next; s; s = next) {
    if (s->close) s->close(s);
    next = s->loop_next; /* retained above: outlives s's release */
    rill__sync_release(s);
  }
}

static const rill__future_type lock_acquire_type;
static void lock_forget(rill__waiter *w);

static void waiter_destroy(rill_future *f) {
  rill__waiter *w = (rill__waiter *)f;
  if (w->has_item) rill__value_free(&w->item.val);
  w->has_item = 0;
  if (f->type == &lock_acquire_type) lock_forget(w);
  rill__sync_release(w->prim);
}

/* Loop close: pending waiters were unlinked by rill__sync_loop_close; a
 * waiter still linked here is unlinked the same way. */
static void waiter_close(rill_future *f) {
  rill__waiter *w = (rill__waiter *)f;
  if (w->list) {
    rill__wlist_unlink(w);
    rill_future_release(f);
  }
}

rill__waiter *rill__waiter_new(rill__sync *prim, const rill__future_type *type) {
  rill__waiter *w =
      (rill__waiter *)rill__future_alloc(prim->loop, type, sizeof(rill__waiter));
  if (!w) return NULL;
  /* The fields read before they are set (item: only once has_item). */
  w->list = NULL;
  w->prev = w->next = NULL;
  w->notified = w->cancel_pending = w->has_item = 0;
  w->prim = prim;
  rill__sync_retain(prim);
  return w;
}

void rill__wlist_push(rill__wlist *list, rill__waiter *w) {
  w->fut.refs++;
  w->list = list;
  w->next = NULL;
  w->prev = list->tail;
  if (list->tail) list->tail->next = w;
  else list->head = w;
  list->tail = w;
  list->len++;
}

void rill__wlist_unlink(rill__waiter *w) {
  rill__wlist *list = w->list;
  if (!list) return;
  if (w->prev) w->prev->next = w->next;
  else list->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else list->tail = w->prev;
  w->prev = w->next = NULL;
  w->list = NULL;
  list->len--;
}

void rill__waiter_finish(rill__waiter *w, int state, int code, const char *msg) {
  int linked = w->list != NULL;
  rill__wlist_unlink(w);
  if (state == RILL_DONE) rill__future_finish(&w->fut, RILL_DONE);
  else rill__future_fail_msg(&w->fut, state == RILL_CANCELLED ? RILL_ECANCELLED : code, msg);
  if (linked) rill_future_release(&w->fut);
}

void rill__wlist_drop_all(rill__wlist *list) {
  rill__waiter *w;
  while ((w = list->head)) {
    rill__wlist_unlink(w);
    rill_future_release(&w->fut);
  }
}

/* ---------------------------------------------------------------- */
/* Values                                                             */

void rill__value_free(rill__value *v) {
  if (v->kind == RILL_BYTES) free(v->v.bytes.data);
  else if (v->kind == RILL_POINTER && v->v.ptr.free_p) v->v.ptr.free_p(v->v.ptr.p);
  v->kind = RILL_NONE;
}

void rill__value_to_future(rill__value *v, rill_future *f) {
  f->kind = (unsigned char)v->kind;
  switch (v->kind) {
  case RILL_BOOL: f->v.b = v->v.b; break;
  case RILL_INT: f->v.i = v->v.i; break;
  case RILL_DOUBLE: f->v.d = v->v.d; break;
  case RILL_BYTES:
    f->v.bytes.data = v->v.bytes.data;
    f->v.bytes.len = v->v.bytes.len;
    break;
  case RILL_POINTER:
    f->v.ptr.p = v->v.ptr.p;
    f->v.ptr.free_p = v->v.ptr.free_p;
    f->v.ptr.tag = v->v.ptr.tag;
    break;
  default: break;
  }
  v->kind = RILL_NONE;
}

/* Only for the sync primitives' own futures, whose bytes are malloc'ed
 * (never a read's, which may live in the loop's arena). */
void rill__value_from_future(rill_future *f, rill__value *v) {
  v->kind = f->kind;
  switch (f->kind) {
  case RILL_BOOL: v->v.b = f->v.b; break;
  case RILL_INT: v->v.i = f->v.i; break;
  case RILL_DOUBLE: v->v.d = f->v.d; break;
  case RILL_BYTES:
    /* A value is freed with free(): a read's bytes in the loop's arena
     * (rill__future_set_bytes_raw) must never get here. Only the queue's
     * own get futures do; anything else is a bug in the core, stopped
     * here rather than left to corrupt the heap later. */
    if (f->bytes_in_arena) {
      fputs("rill: internal error: a read's arena bytes moved into a queue value\n", stderr);
      abort();
    }
    v->v.bytes.data = f->v.bytes.data;
    v->v.bytes.len = f->v.bytes.len;
    break;
  case RILL_POINTER:
    v->v.ptr.p = f->v.ptr.p;
    v->v.ptr.free_p = f->v.ptr.free_p;
    v->v.ptr.tag = f->v.ptr.tag;
    break;
  default: break;
  }
  f->kind = RILL_NONE;
}

/* A DONE future whose wait was abandoned now reads CANCELLED. */
static void mark_cancelled(rill_future *f) { rill__future_done_to_cancelled(f); }

/* ---------------------------------------------------------------- */
/* Types                                                              */

static int waiter_cancel(rill_future *f, const char *msg);

static const rill__future_type lock_acquire_type = {"lock acquire", waiter_cancel,
                                                    waiter_destroy, waiter_close, NULL};
static const rill__future_type sem_acquire_type = {"semaphore acquire", waiter_cancel,
                                                   waiter_destroy, waiter_close, NULL};
static const rill__future_type event_wait_type = {"event wait", waiter_cancel, waiter_destroy,
                                                  waiter_close, NULL};
static const rill__future_type cond_wait_type = {"condition wait", waiter_cancel,
                                                 waiter_destroy, waiter_close, NULL};
static const rill__future_type barrier_wait_type = {"barrier wait", waiter_cancel,
                                                    waiter_destroy, waiter_close, NULL};

struct rill_event {
  rill__sync s;
  int set;
  rill__wlist waiters;
};

struct rill_lock {
  rill__sync s;
  int locked;
  rill__wlist waiters; /* acquires, and condition waits re-acquiring */
  rill__waiter *holder; /* the acquire future holding it (compared only), or NULL */
};

struct rill_semaphore {
  rill__sync s;
  int value, initial, bounded;
  rill__wlist waiters;
};

struct rill_condition {
  rill__sync s;
  rill_lock *lock; /* retained */
  rill__wlist waiters; /* not yet notified */
};

struct rill_barrier {
  rill__sync s;
  int parties, count, broken;
  rill__wlist waiters;
};

/* A new waiter future, DONE at once (uncontended) or to be linked. */
static rill__waiter *new_waiter(rill__sync *s, const rill__future_type *type) {
  return rill__waiter_new(s, type);
}

static rill__waiter *done_waiter(rill__sync *s, const rill__future_type *type) {
  rill__waiter *w = rill__waiter_new(s, type);
  if (w) rill__future_finish(&w->fut, RILL_DONE);
  return w;
}

/* ---------------------------------------------------------------- */
/* Lock                                                               */

static void cond_notify(rill_condition *c, int n, int *woken);
static int cond_granted(rill__waiter *w);

/* The lock is being given up: it goes to the first waiter that can take
 * it (FIFO, no barging), or becomes free. */
static void lock_pass(rill_lock *l) {
  rill__waiter *w;
  rill__sync_retain(&l->s);
  l->holder = NULL;
  while ((w = l->waiters.head)) {
    if (w->fut.type == &cond_wait_type) {
      if (cond_granted(w)) goto out;
      continue;
    }
    if (rill__waiter_orphan(w)) { /* nobody would ever unlock it */
      rill__waiter_finish(w, RILL_CANCELLED, 0, NULL);
      continue;
    }
    l->holder = w;
    rill__waiter_finish(w, RILL_DONE, 0, NULL);
    goto out;
  }
  l->locked = 0;
out:
  rill__sync_release(&l->s);
}

static void lock_forget(rill__waiter *w) {
  rill_lock *l = (rill_lock *)w->prim;
  if (l->holder == w) l->holder = NULL;
}

static void lock_close(rill__sync *s) { rill__wlist_drop_all(&((rill_lock *)s)->waiters); }

rill_lock *rill_lock_new(rill_loop *loop) {
  if (rill__loop_check(loop)) return NULL;
  rill_lock *l = rill__alloc(loop, sizeof *l);
  if (!l) {
    rill__fail(RILL_ENOMEM, "out of memory creating a lock");
    return NULL;
  }
  rill__sync_init(&l->s, loop, sizeof *l, lock_close, NULL);
  return l;
}

rill_lock *rill_lock_retain(rill_lock *l) {
  if (l) rill__sync_retain(&l->s);
  return l;
}

void rill_lock_release(rill_lock *l) {
  if (l) rill__sync_release(&l->s);
}

rill_future *rill_lock_acquire(rill_lock *l) {
  if (rill__sync_check(l ? &l->s : NULL, "lock")) return NULL;
  if (!l->locked) { /* free implies nobody waits */
    rill__waiter *w = done_waiter(&l->s, &lock_acquire_type);
    if (w) {
      l->locked = 1;
      l->holder = w;
    }
    return w ? &w->fut : NULL;
  }
  rill__waiter *w = new_waiter(&l->s, &lock_acquire_type);
  if (!w) return NULL;
  rill__wlist_push(&l->waiters, w);
  return &w->fut;
}

int rill_lock_try_acquire(rill_lock *l) {
  int rc = rill__sync_check(l ? &l->s : NULL, "lock");
  if (rc) return rc;
  if (l->locked) return 0;
  l->locked = 1;
  l->holder = NULL;
  return 1;
}

int rill_lock_unlock(rill_lock *l) {
  int rc = rill__sync_check(l ? &l->s : NULL, "lock");
  if (rc) return rc;
  if (!l->locked) return rill__fail(RILL_ENOTLOCKED, "Lock is not acquired.");
  l->holder = NULL;
  lock_pass(l);
  return RILL_OK;
}

int rill_lock_is_locked(const rill_lock *l) {
  int rc = rill__sync_check(l ? &l->s : NULL, "lock");
  return rc ? rc : l->locked;
}

/* ---------------------------------------------------------------- */
/* Semaphore                                                          */

/* A unit is given back: to the first waiter that can take it, else to the
 * value (RILL_ETOOMANY past a bounded semaphore's initial value). */
static int sem_pass(rill_semaphore *s, int check_bound) {
  rill__waiter *w;
  rill__sync_retain(&s->s);
  int rc = RILL_OK;
  while ((w = s->waiters.head)) {
    if (rill__waiter_orphan(w)) {
      rill__waiter_finish(w, RILL_CANCELLED, 0, NULL);
      continue;
    }
    rill__waiter_finish(w, RILL_DONE, 0, NULL);
    goto out;
  }
  if (check_bound && s->bounded && s->value >= s->initial)
    rc = rill__fail(RILL_ETOOMANY, "BoundedSemaphore released too many times");
  else
    s->value++;
out:
  rill__sync_release(&s->s);
  return rc;
}

static void sem_close(rill__sync *s) { rill__wlist_drop_all(&((rill_semaphore *)s)->waiters); }

rill_semaphore *rill_semaphore_new(rill_loop *loop, int value, int bounded) {
  if (rill__loop_check(loop)) return NULL;
  if (value < 0) {
    rill__fail(RILL_EINVAL, "Semaphore initial value must be >= 0");
    return NULL;
  }
  rill_semaphore *s = rill__alloc(loop, sizeof *s);
  if (!s) {
    rill__fail(RILL_ENOMEM, "out of memory creating a semaphore");
    return NULL;
  }
  rill__sync_init(&s->s, loop, sizeof *s, sem_close, NULL);
  s->value = s->initial = value;
  s->bounded = bounded ? 1 : 0;
  return s;
}

rill_semaphore *rill_semaphore_retain(rill_semaphore *s) {
  if (s) rill__sync_retain(&s->s);
  return s;
}

void rill_semaphore_release(rill_semaphore *s) {
  if (s) rill__sync_release(&s->s);
}

rill_future *rill_semaphore_acquire(rill_semaphore *s) {
  if (rill__sync_check(s ? &s->s : NULL, "semaphore")) return NULL;
  if (s->value > 0) { /* a free unit implies nobody waits */
    rill__waiter *w = done_waiter(&s->s, &sem_acquire_type);
    if (w) s->value--;
    return w ? &w->fut : NULL;
  }
  rill__waiter *w = new_waiter(&s->s, &sem_acquire_type);
  if (!w) return NULL;
  rill__wlist_push(&s->waiters, w);
  return &w->fut;
}

int rill_semaphore_try_acquire(rill_semaphore *s) {
  int rc = rill__sync_check(s ? &s->s : NULL, "semaphore");
  if (rc) return rc;
  if (s->value == 0) return 0;
  s->value--;
  return 1;
}

int rill_semaphore_post(rill_semaphore *s) {
  int rc = rill__sync_check(s ? &s->s : NULL, "semaphore");
  return rc ? rc : sem_pass(s, 1);
}

int rill_semaphore_value(const rill_semaphore *s) {
  int rc = rill__sync_check(s ? &s->s : NULL, "semaphore");
  return rc ? rc : s->value;
}

int rill_semaphore_is_locked(const rill_semaphore *s) {
  int rc = rill__sync_check(s ? &s->s : NULL, "semaphore");
  return rc ? rc : s->value == 0;
}

/* ---------------------------------------------------------------- */
/* Event                                                              */

static void event_close(rill__sync *s) { rill__wlist_drop_all(&((rill_event *)s)->waiters); }

rill_event *rill_event_new(rill_loop *loop) {
  if (rill__loop_check(loop)) return NULL;
  rill_event *e = rill__alloc(loop, sizeof *e);
  if (!e) {
    rill__fail(RILL_ENOMEM, "out of memory creating an event");
    return NULL;
  }
  rill__sync_init(&e->s, loop, sizeof *e, event_close, NULL);
  return e;
}

rill_event *rill_event_retain(rill_event *e) {
  if (e) rill__sync_retain(&e->s);
  return e;
}

void rill_event_release(rill_event *e) {
  if (e) rill__sync_release(&e->s);
}

int rill_event_set(rill_event *e) {
  int rc = rill__sync_check(e ? &e->s : NULL, "event");
  if (rc) return rc;
  if (e->set) return RILL_OK;
  e->set = 1;
  rill__sync_retain(&e->s);
  while (e->waiters.head) rill__waiter_finish(e->waiters.head, RILL_DONE, 0, NULL);
  rill__sync_release(&e->s);
  return RILL_OK;
}

int rill_event_clear(rill_event *e) {
  int rc = rill__sync_check(e ? &e->s : NULL, "event");
  if (rc) return rc;
  e->set = 0;
  return RILL_OK;
}

int rill_event_is_set(const rill_event *e) {
  int rc = rill__sync_check(e ? &e->s : NULL, "event");
  return rc ? rc : e->set;
}

rill_future *rill_event_wait(rill_event *e) {
  if (rill__sync_check(e ? &e->s : NULL, "event")) return NULL;
  if (e->set) {
    rill__waiter *w = done_waiter(&e->s, &event_wait_type);
    return w ? &w->fut : NULL;
  }
  rill__waiter *w = new_waiter(&e->s, &event_wait_type);
  if (!w) return NULL;
  rill__wlist_push(&e->waiters, w);
  return &w->fut;
}

/* ---------------------------------------------------------------- */
/* Condition                                                          */

/* A condition wait (notified or cancelled) queues for the lock; if the
 * lock is free it takes it now. */
static void cond_to_lock(rill__waiter *w, rill_lock *l) {
  rill__wlist_unlink(w);
  rill__wlist_push(&l->waiters, w);
  rill_future_release(&w->fut); /* the old list's reference */
  if (!l->locked) {
    l->locked = 1;
    lock_pass(l);
  }
}

/* The lock goes to condition wait w (at the head of the lock's list).
 * Returns 1 if w took it, 0 if w was dropped (nobody holds it). */
static int cond_granted(rill__waiter *w) {
  rill_condition *c = (rill_condition *)w->prim;
  int cancelled = w->cancel_pending || rill__waiter_orphan(w);
  int orphan = rill__waiter_orphan(w);
  rill__sync_retain(&c->s);
  rill__waiter_finish(w, cancelled ? RILL_CANCELLED : RILL_DONE, 0, NULL);
  /* A cancelled wait passes its wake-up on (asyncio 3.13: _notify(1)). */
  if (cancelled) cond_notify(c, 1, NULL);
  rill__sync_release(&c->s);
  return !orphan;
}

static void cond_notify(rill_condition *c, int n, int *woken) {
  int count = 0;
  rill__waiter *w;
  while (count < n && (w = c->waiters.head)) {
    if (rill__waiter_orphan(w)) {
      rill__waiter_finish(w, RILL_CANCELLED, 0, NULL);
      continue;
    }
    w->notified = 1;
    cond_to_lock(w, c->lock);
    count++;
  }
  if (woken) *woken = count;
}

static void cond_close(rill__sync *s) { rill__wlist_drop_all(&((rill_condition *)s)->waiters); }
static void cond_destroy(rill__sync *s) { rill_lock_release(((rill_condition *)s)->lock); }

rill_condition *rill_condition_new(rill_loop *loop, rill_lock *lock) {
  if (rill__loop_check(loop)) return NULL;
  if (lock && lock->s.loop != loop) {
    rill__fail(RILL_EINVAL, "the lock belongs to another loop");
    return NULL;
  }
  rill_lock *own = lock ? rill_lock_retain(lock) : rill_lock_new(loop);
  if (!own) return NULL;
  rill_condition *c = rill__alloc(loop, sizeof *c);
  if (!c) {
    rill_lock_release(own);
    rill__fail(RILL_ENOMEM, "out of memory creating a condition");
    return NULL;
  }
  rill__sync_init(&c->s, loop, sizeof *c, cond_close, cond_destroy);
  c->lock = own;
  return c;
}

rill_condition *rill_condition_retain(rill_condition *c) {
  if (c) rill__sync_retain(&c->s);
  return c;
}

void rill_condition_release(rill_condition *c) {
  if (c) rill__sync_release(&c->s);
}

rill_lock *rill_condition_lock(rill_condition *c) {
  if (!c) {
    rill__fail(RILL_EINVAL, "condition is NULL");
    return NULL;
  }
  return c->lock;
}

rill_future *rill_condition_wait(rill_condition *c) {
  if (rill__sync_check(c ? &c->s : NULL, "condition")) return NULL;
  if (!c->lock->locked) {
    rill__fail(RILL_ENOTLOCKED, "cannot wait on un-acquired lock");
    return NULL;
  }
  rill__waiter *w = new_waiter(&c->s, &cond_wait_type);
  if (!w) return NULL;
  rill__wlist_push(&c->waiters, w);
  lock_pass(c->lock);
  return &w->fut;
}

int rill_condition_notify(rill_condition *c, int n) {
  int rc = rill__sync_check(c ? &c->s : NULL, "condition");
  if (rc) return rc;
  if (n < 0) return rill__fail(RILL_EINVAL, "n must be >= 0");
  if (!c->lock->locked) return rill__fail(RILL_ENOTLOCKED, "cannot notify on un-acquired lock");
  int woken;
  rill__sync_retain(&c->s);
  cond_notify(c, n, &woken);
  rill__sync_release(&c->s);
  return woken;
}

int rill_condition_notify_all(rill_condition *c) {
  int rc = rill__sync_check(c ? &c->s : NULL, "condition");
  if (rc) return rc;
  size_t n = c->waiters.len;
  return rill_condition_notify(c, n > (size_t)0x7fffffff ? 0x7fffffff : (int)n);
}

/* ---------------------------------------------------------------- */
/* Barrier                                                            */

static void barrier_fail_all(rill_barrier *b) {
  rill__sync_retain(&b->s);
  while (b->waiters.head)
    rill__waiter_finish(b->waiters.head, RILL_FAILED, RILL_EBROKEN, "the barrier is broken");
  b->count = 0;
  rill__sync_release(&b->s);
}

static void barrier_close(rill__sync *s) { rill__wlist_drop_all(&((rill_barrier *)s)->waiters); }

rill_barrier *rill_barrier_new(rill_loop *loop, int parties) {
  if (rill__loop_check(loop)) return NULL;
  if (parties < 1) {
    rill__fail(RILL_EINVAL, "parties must be > 0");
    return NULL;
  }
  rill_barrier *b = rill__alloc(loop, sizeof *b);
  if (!b) {
    rill__fail(RILL_ENOMEM, "out of memory creating a barrier");
    return NULL;
  }
  rill__sync_init(&b->s, loop, sizeof *b, barrier_close, NULL);
  b->parties = parties;
  return b;
}

rill_barrier *rill_barrier_retain(rill_barrier *b) {
  if (b) rill__sync_retain(&b->s);
  return b;
}

void rill_barrier_release(rill_barrier *b) {
  if (b) rill__sync_release(&b->s);
}

rill_future *rill_barrier_wait(rill_barrier *b) {
  if (rill__sync_check(b ? &b->s : NULL, "barrier")) return NULL;
  rill__waiter *w = new_waiter(&b->s, &barrier_wait_type);
  if (!w) return NULL;
  if (b->broken) {
    rill__waiter_finish(w, RILL_FAILED, RILL_EBROKEN, "the barrier is broken");
    return &w->fut;
  }
  int index = b->count++;
  if (b->count < b->parties) {
    /* Kept aside until it passes: a pending future's value shares memory
     * with its failure (a cancel, a loop close). */
    w->item.prio = index;
    rill__wlist_push(&b->waiters, w);
    return &w->fut;
  }
  /* The last one: every waiter passes, FIFO; the count starts again. */
  b->count = 0;
  rill__waiter *x;
  while ((x = b->waiters.head)) {
    x->fut.kind = RILL_INT;
    x->fut.v.i = x->item.prio;
    rill__waiter_finish(x, RILL_DONE, 0, NULL);
  }
  w->fut.kind = RILL_INT;
  w->fut.v.i = index;
  rill__future_finish(&w->fut, RILL_DONE);
  return &w->fut;
}

int rill_barrier_abort(rill_barrier *b) {
  int rc = rill__sync_check(b ? &b->s : NULL, "barrier");
  if (rc) return rc;
  b->broken = 1;
  barrier_fail_all(b);
  return RILL_OK;
}

int rill_barrier_reset(rill_barrier *b) {
  int rc = rill__sync_check(b ? &b->s : NULL, "barrier");
  if (rc) return rc;
  barrier_fail_all(b);
  b->broken = 0;
  return RILL_OK;
}

int rill_barrier_is_broken(const rill_barrier *b) {
  int rc = rill__sync_check(b ? &b->s : NULL, "barrier");
  return rc ? rc : b->broken;
}

int rill_barrier_n_waiting(const rill_barrier *b) {
  int rc = rill__sync_check(b ? &b->s : NULL, "barrier");
  return rc ? rc : b->count;
}

int rill_barrier_parties(const rill_barrier *b) {
  int rc = rill__sync_check(b ? &b->s : NULL, "barrier");
  return rc ? rc : b->parties;
}

/* ---------------------------------------------------------------- */
/* Cancellation                                                       */

/* A pending wait cancelled: the waiter leaves its list. A condition wait
 * first takes the lock back and ends CANCELLED only then. */
static int waiter_cancel(rill_future *f, const char *msg) {
  rill__waiter *w = (rill__waiter *)f;
  rill__sync *prim = w->prim;
  rill__sync_retain(prim);
  int rc = 1;
  if (f->type == &cond_wait_type) {
    if (w->cancel_pending) {
      rc = 0;
    } else {
      w->cancel_pending = 1;
      if (!w->notified) {
        w->notified = 1;
        cond_to_lock(w, ((rill_condition *)prim)->lock);
      }
    }
  } else {
    if (f->type == &barrier_wait_type && w->list) ((rill_barrier *)prim)->count--;
    rill__waiter_finish(w, RILL_CANCELLED, 0, msg);
  }
  rill__sync_release(prim);
  return rc;
}

void rill__sync_abandoned(rill_future *f) {
  const rill__future_type *type = f->type;
  rill__waiter *w = (rill__waiter *)f;
  if (type == &lock_acquire_type) {
    /* Only while this wait still holds the lock (not after an unlock). */
    rill_lock *l = (rill_lock *)w->prim;
    if (l->holder != w) return;
    mark_cancelled(f);
    l->holder = NULL;
    lock_pass(l);
  } else if (type == &sem_acquire_type) {
    mark_cancelled(f);
    sem_pass((rill_semaphore *)w->prim, 0);
  } else if (type == &cond_wait_type) {
    /* The lock stays held (asyncio re-acquires before it raises); the
     * wake-up goes on to another waiter. */
    cond_notify((rill_condition *)w->prim, 1, NULL);
  } else {
    rill__queue_abandoned(f);
  }
}
