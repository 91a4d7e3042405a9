/* future.c - futures: one-way state, values, failures, done callbacks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const rill__future_type rill__plain_future_type = {"future", NULL, NULL, NULL, NULL};

typedef struct done_cb {
  rill__node node;
  rill_future *fut;
  rill_done_fn cb;
  void *arg;
  rill_free_fn free_arg;
} done_cb;

/* ---------------------------------------------------------------- */

/* A freed future has its type cleared (destroy), a word that neither the
 * arena's nor malloc's free-list links overwrite: a double release or a
 * use after free is caught here, while the memory is not reused, with a
 * clear message instead of silent corruption. */
static void dead_future(const rill_future *f, const char *what) {
  fprintf(stderr, "rill: %s: future %p was already freed (double release or use after free)\n",
          what, (const void *)f);
  abort();
}
#define CHECK_ALIVE(f, what) \
  do { if (RILL__UNLIKELY(!(f)->type)) dead_future(f, what); } while (0)

int rill__future_check(const rill_future *f) {
  if (!f) return rill__fail(RILL_EINVAL, "future is NULL");
  CHECK_ALIVE(f, "rill_future_*");
  return RILL_OK;
}

int rill__future_check_open(const rill_future *f) {
  if (!f) return rill__fail(RILL_EINVAL, "future is NULL");
  CHECK_ALIVE(f, "rill_future_*");
  if (f->loop->closed) return rill__fail(RILL_ECLOSED, "the future's loop is closed");
  return RILL_OK;
}

static void init_unlinked(rill_future *f, rill_loop *loop, const rill__future_type *type) {
  memset(f, 0, sizeof *f);
  f->refs = 1;
  f->type = type;
  f->loop = loop;
  rill__loop_retain(loop);
}

void rill__future_link(rill_future *f) {
  rill_loop *loop = f->loop;
  f->all_prev = NULL;
  f->all_next = loop->futures;
  if (loop->futures) loop->futures->all_prev = f;
  loop->futures = f;
}

void rill__future_init(rill_future *f, rill_loop *loop, const rill__future_type *type) {
  init_unlinked(f, loop, type);
  rill__future_link(f);
}

rill_future *rill__future_alloc_unlinked(rill_loop *loop, const rill__future_type *type,
                                         size_t size) {
  rill_future *f = rill__alloc(loop, size);
  if (!f) {
    rill__fail(RILL_ENOMEM, "out of memory creating a %s", type->name);
    return NULL;
  }
  init_unlinked(f, loop, type);
  f->alloc_size = (uint32_t)size;
  return f;
}

rill_future *rill__future_alloc(rill_loop *loop, const rill__future_type *type, size_t size) {
  rill_future *f = rill__future_alloc_unlinked(loop, type, size);
  if (f) rill__future_link(f);
  return f;
}

rill_future *rill_future_new(rill_loop *loop) {
  if (rill__loop_check(loop)) return NULL;
  return rill__future_alloc(loop, &rill__plain_future_type, sizeof(rill_future));
}

rill_future *rill_future_retain(rill_future *f) {
  if (!f) return f;
  CHECK_ALIVE(f, "rill_future_retain");
  f->refs++;
  return f;
}

static void free_value(rill_future *f) {
  if (f->state != RILL_DONE || f->source) return;
  if (f->kind == RILL_BYTES) {
    if (f->bytes_in_arena) rill__dealloc(f->loop, f->v.bytes.data, f->v.bytes.len);
    else free(f->v.bytes.data);
  } else if (f->kind == RILL_POINTER && f->v.ptr.free_p) {
    f->v.ptr.free_p(f->v.ptr.p);
  }
}

static void destroy(rill_future *f) {
  rill_loop *loop = f->loop;
  if (f->type->destroy) f->type->destroy(f);
  if (f->state == RILL_DONE) {
    free_value(f);
  } else { /* the failure shares the value's memory */
    free(f->err_msg);
    if (f->free_payload) f->free_payload(f->payload);
  }
  if (f->source) rill_future_release(f->source);
  if (f->all_prev) f->all_prev->all_next = f->all_next;
  else loop->futures = f->all_next;
  if (f->all_next) f->all_next->all_prev = f->all_prev;
  f->type = NULL; /* dead: see CHECK_ALIVE */
  rill__dealloc(loop, f, f->alloc_size);
  rill__loop_release(loop);
}

/* Futures whose last reference went while another was being destroyed:
 * destroyed by the outermost release, one after the other, so a chain of
 * any depth (source, inner, awaited) costs no stack. Linked through
 * unr_next, unused once the last reference is gone. */
static _Thread_local rill_future *dying RILL__TLS_IE; /* every release that frees reads these */
static _Thread_local int destroying RILL__TLS_IE;

void rill_future_release(rill_future *f) {
  if (!f) return;
  CHECK_ALIVE(f, "rill_future_release");
  if (--f->refs == 0) {
    f->unr_next = dying;
    dying = f;
    if (destroying) return;
    destroying = 1;
    while (dying) {
      rill_future *g = dying;
      dying = g->unr_next;
      destroy(g);
    }
    destroying = 0;
  } else if (f->refs == 1 && f->in_unretrieved_list) {
    /* Only the unretrieved list holds it now: nobody can ever read the
     * failure, so this is the fixed point at which it is reported. */
    rill_task *t = rill__as_task(f);
    f->refs++; /* the handler may read (and so retrieve) the failure */
    rill__report(f->loop, f, "task %s failed and its failure was never retrieved",
                 t ? rill__task_name(t) : "?");
    rill__future_mark_retrieved(f);
    rill_future_release(f);
  }
}

rill_loop *rill_future_loop(const rill_future *f) {
  if (!f) {
    rill__fail(RILL_EINVAL, "future is NULL");
    return NULL;
  }
  return f->loop;
}

int rill_future_state(const rill_future *f) {
  int rc = rill__future_check(f);
  return rc ? rc : f->state;
}

int rill_future_done(const rill_future *f) {
  int rc = rill__future_check(f);
  return rc ? rc : f->state != RILL_PENDING;
}

/* ---------------------------------------------------------------- */
/* Completion                                                         */

void rill__future_finish(rill_future *f, int state) {
  f->state = (unsigned char)state;
  if (state == RILL_CANCELLED) f->err = RILL_ECANCELLED;
  rill__queue_splice(&f->loop->ready, &f->callbacks);
  if (f->type->completed) f->type->completed(f);
}

static int check_settable(rill_future *f) {
  int rc = rill__future_check_open(f);
  if (rc) return rc;
  if (f->state != RILL_PENDING) return rill__fail(RILL_ESTATE, "invalid state: the future is already done");
  rill_task *t = rill__as_task(f);
  if (t && t->fut.loop->current_task != t)
    return rill__fail(RILL_ESTATE, "a task's future is completed by the task's own step only");
  if (t && t->arranged)
    return rill__fail(RILL_ESTATE, "the task's resumption is arranged: it cannot complete in the same step");
  if (f->type != &rill__plain_future_type && !t)
    return rill__fail(RILL_ESTATE, "a %s completes by itself", f->type->name);
  return RILL_OK;
}

int rill_future_set_none(rill_future *f) {
  int rc = check_settable(f);
  if (rc) return rc;
  f->kind = RILL_NONE;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

int rill_future_set_bool(rill_future *f, int value) {
  int rc = check_settable(f);
  if (rc) return rc;
  f->kind = RILL_BOOL;
  f->v.b = value ? 1 : 0;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

int rill_future_set_int(rill_future *f, int64_t value) {
  int rc = check_settable(f);
  if (rc) return rc;
  f->kind = RILL_INT;
  f->v.i = value;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

int rill_future_set_double(rill_future *f, double value) {
  int rc = check_settable(f);
  if (rc) return rc;
  f->kind = RILL_DOUBLE;
  f->v.d = value;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

int rill_future_set_bytes(rill_future *f, const void *data, size_t len) {
  int rc = check_settable(f);
  if (rc) return rc;
  if (!data && len) return rill__fail(RILL_EINVAL, "data is NULL");
  void *copy = malloc(len ? len : 1);
  if (!copy) return rill__fail(RILL_ENOMEM, "out of memory copying %zu bytes", len);
  if (len) memcpy(copy, data, len);
  f->kind = RILL_BYTES;
  f->v.bytes.data = copy;
  f->v.bytes.len = len;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

int rill_future_set_pointer(rill_future *f, void *p, rill_free_fn free_p, const void *tag) {
  int rc = check_settable(f);
  if (rc) return rc;
  f->kind = RILL_POINTER;
  f->v.ptr.p = p;
  f->v.ptr.free_p = free_p;
  f->v.ptr.tag = tag;
  rill__future_finish(f, RILL_DONE);
  return RILL_OK;
}

static char *dup_message(const char *msg) {
  if (!msg) return NULL;
  size_t n = strlen(msg) + 1;
  char *copy = malloc(n);
  if (copy) memcpy(copy, msg, n);
  return copy;
}

int rill__future_fail_msg(rill_future *f, int code, const char *msg) {
  /* Completes f whatever happens: without its message if that cannot be
   * copied (the code is what matters; a task must not stay pending). */
  char *copy = msg ? dup_message(msg) : NULL;
  f->err = code;
  f->err_msg = copy;
  if (code == RILL_ECANCELLED) {
    rill__future_finish(f, RILL_CANCELLED);
  } else {
    rill__future_finish(f, RILL_FAILED);
  }
  return RILL_OK;
}

int rill_future_fail(rill_future *f, int code, const char *message, void *payload,
                     rill_free_fn free_payload, const void *tag) {
  int rc = check_settable(f);
  if (!rc && code >= 0) rc = rill__fail(RILL_EINVAL, "a failure code must be negative");
  char *copy = NULL;
  if (!rc && message && !(copy = dup_message(message)))
    rc = rill__fail(RILL_ENOMEM, "out of memory copying a message");
  if (!rc) {
    f->payload = payload;
    f->free_payload = free_payload;
    f->payload_tag = tag;
    f->err = code;
    f->err_msg = copy;
    rill__future_finish(f, code == RILL_ECANCELLED ? RILL_CANCELLED : RILL_FAILED);
  }
  if (rc && free_payload) free_payload(payload);
  return rc;
}

void rill__future_fail_from(rill_future *f, rill_future *src, int state) {
  f->source = rill_future_retain(src);
  f->err = src->state == RILL_CANCELLED ? RILL_ECANCELLED : src->err;
  rill__future_finish(f, state);
}

int rill__future_copy_outcome(rill_future *f, rill_future *src) {
  f->source = rill_future_retain(src);
  f->kind = src->kind;
  f->err = src->state == RILL_CANCELLED ? RILL_ECANCELLED : src->err;
  rill__future_finish(f, src->state);
  return RILL_OK;
}

int rill__future_cancel_plain(rill_future *f, const char *msg) {
  if (f->state != RILL_PENDING) return 0;
  if (msg && !(f->err_msg = dup_message(msg))) {
    rill__fail(RILL_ENOMEM, "out of memory copying a message");
  }
  rill__future_finish(f, RILL_CANCELLED);
  return 1;
}

int rill_future_cancel_msg(rill_future *f, const char *message) {
  int rc = rill__future_check_open(f);
  if (rc) return rc;
  if (f->state != RILL_PENDING) return 0;
  if (f->type->cancel) return f->type->cancel(f, message);
  return rill__future_cancel_plain(f, message);
}

int rill_future_cancel(rill_future *f) { return rill_future_cancel_msg(f, NULL); }

/* ---------------------------------------------------------------- */
/* Callbacks                                                          */

void rill__future_add_node(rill_future *f, rill__node *node) {
  if (f->state == RILL_PENDING) rill__queue_push(&f->callbacks, node);
  else rill__schedule(f->loop, node);
}

int rill__future_remove_node(rill_future *f, rill__node *node) {
  if (f->in_unretrieved_list) return 0; /* no callbacks: see unr_prev */
  return rill__queue_remove(&f->callbacks, node);
}

static void done_cb_run(rill__node *node, int discard) {
  done_cb *d = RILL__CONTAINER(node, done_cb, node);
  if (!discard) {
    rill_loop *loop = d->fut->loop;
    if (RILL__UNLIKELY(loop->debug)) {
      double t0 = rill__clock();
      d->cb(d->fut, d->arg);
      double dt = rill__clock() - t0;
      if (dt >= loop->slow_duration)
        rill__report(loop, NULL, "Executing done callback of a %s took %.3f seconds",
                     d->fut->type->name, dt);
    } else {
      d->cb(d->fut, d->arg);
    }
  }
  if (d->free_arg) d->free_arg(d->arg);
  rill_future *f = d->fut;
  rill__dealloc(f->loop, d, sizeof *d);
  rill_future_release(f);
}

int rill_future_on_done(rill_future *f, rill_done_fn cb, void *arg, rill_free_fn free_arg) {
  int rc = rill__future_check_open(f);
  if (rc) return rc;
  if (!cb) return rill__fail(RILL_EINVAL, "callback is NULL");
  done_cb *d = rill__alloc(f->loop, sizeof *d);
  if (!d) return rill__fail(RILL_ENOMEM, "out of memory adding a done callback");
  d->node.run = done_cb_run;
  d->fut = rill_future_retain(f);
  d->cb = cb;
  d->arg = arg;
  d->free_arg = free_arg;
  rill__future_add_node(f, &d->node);
  return RILL_OK;
}

int rill_future_remove_done(rill_future *f, rill_done_fn cb, void *arg) {
  int rc = rill__future_check(f);
  if (rc) return rc;
  if (!cb) return rill__fail(RILL_EINVAL, "callback is NULL");
  if (f->in_unretrieved_list) return 0; /* no callbacks: see unr_prev */
  int removed = 0;
  rill__node *prev = NULL;
  for (rill__node *n = f->callbacks.head, *next; n; n = next) {
    next = n->next;
    done_cb *d = RILL__CONTAINER(n, done_cb, node);
    if (n->run == done_cb_run && d->cb == cb && d->arg == arg) {
      if (prev) prev->next = next;
      else f->callbacks.head = next;
      if (f->callbacks.tail == n) f->callbacks.tail = prev;
      removed++;
      f->refs--; /* d's reference; f stays alive through the caller's */
      if (d->free_arg) d->free_arg(d->arg);
      rill__dealloc(f->loop, d, sizeof *d);
    } else {
      prev = n;
    }
  }
  return removed;
}

/* ---------------------------------------------------------------- */
/* Reading                                                            */

static const rill_future *resolve(const rill_future *f) {
  while (f->source) f = f->source;
  return f;
}

void rill__future_mark_retrieved(rill_future *f) {
  for (rill_future *it = f; it; it = it->source) {
    it->unretrieved = 0;
    if (it->in_unretrieved_list) {
      rill_loop *loop = it->loop;
      it->in_unretrieved_list = 0;
      if (it->unr_prev) it->unr_prev->unr_next = it->unr_next;
      else loop->unretrieved = it->unr_next;
      if (it->unr_next) it->unr_next->unr_prev = it->unr_prev;
      it->unr_prev = it->unr_next = NULL;
      rill_future_release(it); /* the list's reference; may free it */
      break;                   /* a listed future is a task: it has no source */
    }
  }
}

int rill__future_outcome(rill_future *f) {
  switch (f->state) {
  case RILL_PENDING: return rill__fail(RILL_ESTATE, "the future is not done");
  case RILL_DONE: return RILL_OK;
  default: {
    int code = f->err;
    rill__future_mark_retrieved(f);
    return code;
  }
  }
}

static int check_done_value(const rill_future *f, int kind) {
  int rc = rill__future_check(f);
  if (rc) return rc;
  if (f->state != RILL_DONE) return rill__fail(RILL_ESTATE, "the future has no value (not done)");
  if (resolve(f)->kind != kind) return rill__fail(RILL_ETYPE, "the future's value is of another kind");
  return RILL_OK;
}

int rill_future_kind(const rill_future *f) {
  int rc = rill__future_check(f);
  if (rc) return rc;
  if (f->state != RILL_DONE) return rill__fail(RILL_ESTATE, "the future has no value (not done)");
  return resolve(f)->kind;
}

int rill_future_bool(const rill_future *f, int *out) {
  int rc = check_done_value(f, RILL_BOOL);
  if (!rc && !out) rc = rill__fail(RILL_EINVAL, "out is NULL");
  if (!rc) *out = resolve(f)->v.b;
  return rc;
}

int rill_future_int(const rill_future *f, int64_t *out) {
  int rc = check_done_value(f, RILL_INT);
  if (!rc && !out) rc = rill__fail(RILL_EINVAL, "out is NULL");
  if (!rc) *out = resolve(f)->v.i;
  return rc;
}

int rill_future_double(const rill_future *f, double *out) {
  int rc = check_done_value(f, RILL_DOUBLE);
  if (!rc && !out) rc = rill__fail(RILL_EINVAL, "out is NULL");
  if (!rc) *out = resolve(f)->v.d;
  return rc;
}

const void *rill_future_bytes(const rill_future *f, size_t *len) {
  if (len) *len = 0;
  if (check_done_value(f, RILL_BYTES)) return NULL;
  const rill_future *r = resolve(f);
  if (len) *len = r->v.bytes.len;
  return r->v.bytes.data;
}

void *rill_future_pointer(const rill_future *f, const void *tag) {
  if (check_done_value(f, RILL_POINTER)) return NULL;
  const rill_future *r = resolve(f);
  if (r->v.ptr.tag != tag) {
    rill__fail(RILL_ETYPE, "the pointer carries another tag");
    return NULL;
  }
  return r->v.ptr.p;
}

int rill_future_error(rill_future *f) {
  int rc = rill__future_check(f);
  if (rc) return rc;
  return rill__future_outcome(f);
}

const char *rill_future_error_message(rill_future *f) {
  if (rill__future_check(f)) return NULL;
  if (f->state == RILL_PENDING || f->state == RILL_DONE) return NULL;
  rill__future_mark_retrieved(f);
  for (const rill_future *it = f; it; it = it->source)
    if (rill__future_failed(it) && it->err_msg) return it->err_msg;
  return "";
}

void *rill_future_error_payload(rill_future *f, const void *tag) {
  if (rill__future_check(f)) return NULL;
  if (f->state == RILL_PENDING || f->state == RILL_DONE) return NULL;
  rill__future_mark_retrieved(f);
  for (const rill_future *it = f; it; it = it->source)
    if (rill__future_failed(it) && it->payload) return it->payload_tag == tag ? it->payload : NULL;
  return NULL;
}
