/* sync.h - what the sync primitives share (sync.c, queue.c): a waiter is a
 * future on a FIFO list of its primitive; completing it hands over what
 * it waited for. Never installed. */
#ifndef RILL_SYNC_H
#define RILL_SYNC_H

#include "internal.h"

typedef struct rill__sync rill__sync;
typedef struct rill__waiter rill__waiter;

/* A future value outside a future (a queued item). */
typedef struct rill__value {
  int kind;
  rill__value_u v;
} rill__value;

/* A queued item: its value and, for priority queues, its order. */
typedef struct rill__item {
  rill__value val;
  int64_t prio;
  uint64_t seq;
} rill__item;

/* A FIFO of waiters; each linked waiter holds one reference of the list. */
typedef struct rill__wlist {
  rill__waiter *head, *tail;
  size_t len;
} rill__wlist;

struct rill__sync {
  int refs;
  uint32_t alloc_size;
  rill_loop *loop; /* retained */
  rill__sync *loop_prev, *loop_next; /* the loop's live primitives */
  /* Loop close: unlink every waiter, drop queued items. */
  void (*close)(rill__sync *s);
  /* Last reference: free what the primitive owns (not s itself). */
  void (*destroy)(rill__sync *s);
};

struct rill__waiter {
  rill_future fut;   /* first: a waiter is a future */
  rill__sync *prim;  /* retained for the waiter's life */
  rill__wlist *list; /* the list it is on, NULL if none */
  rill__waiter *prev, *next;
  unsigned notified : 1;       /* a condition wait: notified (or cancelled) */
  unsigned cancel_pending : 1; /* a condition wait: cancelled, re-acquiring */
  unsigned has_item : 1;       /* a put waiter still owns item */
  rill__item item;             /* a put's item; a get's order (give-back) */
};

/* rill__sync_init: links s (allocated with rill__alloc(loop, size)) to the
 * loop; refs = 1. */
RILL__HIDDEN void rill__sync_init(rill__sync *s, rill_loop *loop, size_t size,
                                  void (*close)(rill__sync *), void (*destroy)(rill__sync *));
RILL__HIDDEN void rill__sync_retain(rill__sync *s);
RILL__HIDDEN void rill__sync_release(rill__sync *s);
/* NULL: RILL_EINVAL (what names it); loop closed: RILL_ECLOSED. */
RILL__HIDDEN int rill__sync_check(const rill__sync *s, const char *what);

/* A new waiter future of type on prim (retained); refs = 1 (the caller's).
 * NULL on ENOMEM (recorded). */
RILL__HIDDEN rill__waiter *rill__waiter_new(rill__sync *prim, const rill__future_type *type);
/* Appends w to list (taking a reference). */
RILL__HIDDEN void rill__wlist_push(rill__wlist *list, rill__waiter *w);
/* Unlinks w from its list; returns the list's reference for the caller to
 * drop (after it completed w). */
RILL__HIDDEN void rill__wlist_unlink(rill__waiter *w);
/* Completes a linked or unlinked waiter (state DONE with the value stored
 * already, FAILED with code, CANCELLED) and drops the list's reference. */
RILL__HIDDEN void rill__waiter_finish(rill__waiter *w, int state, int code, const char *msg);
/* 1 if nobody but its list holds w: handing it something would lose it. */
static inline int rill__waiter_orphan(const rill__waiter *w) { return w->fut.refs == 1; }
/* Loop close / destroy: unlinks every waiter of list (no completion). */
RILL__HIDDEN void rill__wlist_drop_all(rill__wlist *list);

/* Values. */
RILL__HIDDEN void rill__value_free(rill__value *v);
/* Moves v into the DONE future f (kind and value). */
RILL__HIDDEN void rill__value_to_future(rill__value *v, rill_future *f);
/* Moves the value of a DONE future f out into v (f keeps kind NONE). */
RILL__HIDDEN void rill__value_from_future(rill_future *f, rill__value *v);

/* queue.c: a DONE get whose task was cancelled before it resumed. */
RILL__HIDDEN int rill__queue_abandoned(rill_future *f);

#endif
