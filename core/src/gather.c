/* gather.c - futures over many children: gather and wait.
 *
 * Each child gets a node on its callback list; the node holds a reference
 * to the parent future, so a gather outlives its caller's reference until
 * its children are done. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct multi multi;

/* A child's node; its index is its place in m->nodes (24 bytes a child,
 * not 32: gathers of many tasks are the common case). */
typedef struct multi_child {
  rill__node node;
  multi *m;
} multi_child;

struct multi {
  rill_future fut;
  size_t n, remaining;
  unsigned flags;
  int is_wait, mode;
  int cancel_requested;
  rill__timer timer; /* rill_wait's timeout */
  rill_future **children;
  multi_child *nodes;
};

static int gather_cancel(rill_future *f, const char *msg);
static void multi_destroy(rill_future *f);
static void wait_completed(rill_future *f);

static const rill__future_type gather_type = {"gather", gather_cancel, multi_destroy, NULL, NULL};
static const rill__future_type wait_type = {"wait", NULL, multi_destroy, NULL, wait_completed};

static multi *as_multi(rill_future *f) {
  return f && (f->type == &gather_type || f->type == &wait_type) ? (multi *)f : NULL;
}

size_t rill__multi_count(rill_future *f) {
  multi *m = as_multi(f);
  return m ? m->n : 0;
}

rill_future *rill__multi_child(rill_future *f, size_t i) {
  multi *m = as_multi(f);
  return m && i < m->n ? m->children[i] : NULL;
}

static void multi_destroy(rill_future *f) {
  multi *m = (multi *)f;
  for (size_t i = 0; i < m->n; i++) rill_future_release(m->children[i]);
  rill__free_array(m->children, m->n * sizeof *m->children);
  rill__free_array(m->nodes, m->n * sizeof *m->nodes);
}

/* ---------------------------------------------------------------- */

static void gather_child_done(multi *m, rill_future *child) {
  rill_future *g = &m->fut;
  m->remaining--;
  /* Once the gather has given up, a child's failure is left unretrieved
   * and so reported at its fixed point rather than silently dropped. */
  if (g->state != RILL_PENDING) return;
  if (!(m->flags & RILL_GATHER_RETURN_ERRORS) && child->state != RILL_DONE) {
    if (m->cancel_requested && child->state == RILL_CANCELLED) {
      if (m->remaining == 0) rill__future_fail_from(g, child, RILL_CANCELLED);
      return; /* a requested cancel ends the gather once all children stop */
    }
    /* The first failure (or a child cancelled from outside) reaches the
     * awaiter; the other children keep running. */
    rill__future_fail_from(g, child, RILL_FAILED);
    return;
  }
  if (m->remaining) return;
  if (m->cancel_requested) {
    rill__future_cancel_plain(g, NULL);
    return;
  }
  /* With RETURN_ERRORS the failures are results, read through the children. */
  for (size_t i = 0; i < m->n; i++)
    if (m->children[i]->state == RILL_FAILED) rill__future_mark_retrieved(m->children[i]);
  g->kind = RILL_NONE;
  rill__future_finish(g, RILL_DONE);
}

static void wait_child_done(multi *m, rill_future *child) {
  m->remaining--;
  if (m->fut.state != RILL_PENDING) return;
  int done = m->remaining == 0 || m->mode == RILL_WAIT_FIRST_COMPLETED ||
             (m->mode == RILL_WAIT_FIRST_ERROR && child->state == RILL_FAILED);
  if (done) {
    m->fut.kind = RILL_NONE;
    rill__future_finish(&m->fut, RILL_DONE);
  }
}

static void child_run(rill__node *node, int discard) {
  multi_child *c = RILL__CONTAINER(node, multi_child, node);
  multi *m = c->m;
  if (!discard) {
    rill_future *child = m->children[c - m->nodes];
    if (m->is_wait) wait_child_done(m, child);
    else gather_child_done(m, child);
  }
  rill_future_release(&m->fut);
}

static int gather_cancel(rill_future *f, const char *msg) {
  multi *m = (multi *)f;
  int any = 0;
  for (size_t i = 0; i < m->n; i++)
    if (m->children[i]->state == RILL_PENDING && rill_future_cancel_msg(m->children[i], msg) == 1)
      any = 1;
  if (any) m->cancel_requested = 1;
  return any;
}

static void wait_timer_run(rill__node *node, int discard) {
  multi *m = RILL__CONTAINER(node, multi, timer.node);
  if (!discard && m->fut.state == RILL_PENDING) {
    m->fut.kind = RILL_NONE;
    rill__future_finish(&m->fut, RILL_DONE);
  }
  rill_future_release(&m->fut); /* the timer's reference */
}

static void wait_completed(rill_future *f) {
  multi *m = (multi *)f;
  if (m->timer.heap_index != RILL__NOT_IN_HEAP) {
    rill__timer_stop(f->loop, &m->timer);
    f->refs--; /* the timer's reference; the completer holds another */
  }
}

static multi *multi_new(rill_loop *loop, size_t n, rill_future *const futs[], const rill__future_type *type) {
  if (rill__loop_check(loop)) return NULL;
  if (n && !futs) {
    rill__fail(RILL_EINVAL, "futs is NULL");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if (!futs[i]) {
      rill__fail(RILL_EINVAL, "future %zu is NULL", i);
      return NULL;
    }
    if (futs[i]->loop != loop) {
      rill__fail(RILL_EINVAL, "future %zu belongs to another loop", i);
      return NULL;
    }
  }
  multi *m = (multi *)rill__future_alloc(loop, type, sizeof(multi));
  if (!m) return NULL;
  memset((char *)m + sizeof(rill_future), 0, sizeof(multi) - sizeof(rill_future));
  m->timer.heap_index = RILL__NOT_IN_HEAP;
  if (n) {
    m->children = rill__alloc_array(n * sizeof *m->children);
    m->nodes = rill__alloc_array(n * sizeof *m->nodes);
    if (!m->children || !m->nodes) {
      rill__free_array(m->children, n * sizeof *m->children);
      rill__free_array(m->nodes, n * sizeof *m->nodes);
      m->children = NULL;
      m->nodes = NULL;
      rill_future_release(&m->fut);
      rill__fail(RILL_ENOMEM, "out of memory for %zu children", n);
      return NULL;
    }
  }
  m->n = m->remaining = n;
  m->is_wait = type == &wait_type;
  for (size_t i = 0; i < n; i++) {
    m->children[i] = rill_future_retain(futs[i]);
    m->nodes[i].node.run = child_run;
    m->nodes[i].m = m;
    m->fut.refs++; /* the node's reference */
    rill__future_add_node(futs[i], &m->nodes[i].node);
  }
  return m;
}

rill_future *rill_gather(rill_loop *loop, size_t n, rill_future *const futs[], unsigned flags) {
  if (flags & ~RILL_GATHER_RETURN_ERRORS) {
    rill__fail(RILL_EINVAL, "unknown gather flags 0x%x", flags);
    return NULL;
  }
  multi *m = multi_new(loop, n, futs, &gather_type);
  if (!m) return NULL;
  m->flags = flags;
  if (n == 0) rill__future_finish(&m->fut, RILL_DONE);
  return &m->fut;
}

rill_future *rill_wait(rill_loop *loop, size_t n, rill_future *const futs[], int mode,
                       double timeout_s) {
  if (n == 0) {
    rill__fail(RILL_EINVAL, "rill_wait needs at least one future");
    return NULL;
  }
  if (mode != RILL_WAIT_FIRST_COMPLETED && mode != RILL_WAIT_FIRST_ERROR && mode != RILL_WAIT_ALL) {
    rill__fail(RILL_EINVAL, "unknown wait mode %d", mode);
    return NULL;
  }
  if (isnan(timeout_s)) {
    rill__fail(RILL_EINVAL, "timeout is NaN");
    return NULL;
  }
  multi *m = multi_new(loop, n, futs, &wait_type);
  if (!m) return NULL;
  m->mode = mode;
  m->timer.node.run = wait_timer_run;
  if (!(isinf(timeout_s) && timeout_s > 0)) { /* -inf: expires at once, like wait_for */
    if (rill__timer_start(loop, &m->timer, rill__clock() + (timeout_s > 0 ? timeout_s : 0)) != RILL_OK) {
      rill_future_cancel(&m->fut);
      rill_future_release(&m->fut);
      return NULL;
    }
    m->fut.refs++;
  }
  return &m->fut;
}

size_t rill_gather_count(rill_future *f) {
  if (rill__future_check(f)) return 0;
  return rill__multi_count(f);
}

rill_future *rill_gather_child(rill_future *f, size_t i) {
  if (rill__future_check(f)) return NULL;
  rill_future *c = rill__multi_child(f, i);
  if (!c) rill__fail(RILL_EINVAL, "index %zu out of range", i);
  return c;
}
