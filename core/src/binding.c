/* binding.c - per-loop state of each language binding, keyed by a tag,
 * and each binding's own exception handler on a loop several languages
 * share: a report about a future a binding owns goes to that binding. */
#include <stdlib.h>

#include "internal.h"

typedef struct rill__binding {
  struct rill__binding *next;
  const void *tag;
  void *state;
  rill_free_fn free_state;
  rill_exception_fn exc_fn;
  void *exc_arg;
  rill_free_fn exc_free;
} rill__binding;

static rill__binding *find(const rill_loop *loop, const void *tag) {
  for (rill__binding *b = loop->bindings; b; b = b->next)
    if (b->tag == tag) return b;
  return NULL;
}

static rill__binding *find_or_add(rill_loop *loop, const void *tag) {
  rill__binding *b = find(loop, tag);
  if (b) return b;
  if (!(b = calloc(1, sizeof *b))) {
    rill__fail(RILL_ENOMEM, "out of memory recording a binding");
    return NULL;
  }
  b->tag = tag;
  b->next = loop->bindings;
  loop->bindings = b;
  return b;
}

static int check_tagged(rill_loop *loop, const void *tag) {
  int rc = rill__loop_check(loop);
  if (rc) return rc;
  if (!tag) return rill__fail(RILL_EINVAL, "tag is NULL");
  return RILL_OK;
}

int rill_loop_set_binding(rill_loop *loop, const void *tag, void *state, rill_free_fn free_state) {
  int rc = check_tagged(loop, tag);
  if (rc) return rc;
  rill__binding *b = state ? find_or_add(loop, tag) : find(loop, tag);
  if (!b) return state ? rill_last_error() : RILL_OK;
  rill_free_fn old_free = b->free_state;
  void *old = b->state;
  b->state = state;
  b->free_state = state ? free_state : NULL;
  if (old_free) old_free(old);
  return RILL_OK;
}

void *rill_loop_binding(rill_loop *loop, const void *tag) {
  if (!loop) {
    rill__fail(RILL_EINVAL, "loop is NULL");
    return NULL;
  }
  rill__binding *b = find(loop, tag);
  return b ? b->state : NULL;
}

int rill_loop_set_binding_exception_handler(rill_loop *loop, const void *tag, rill_exception_fn fn,
                                            void *arg, rill_free_fn free_arg) {
  int rc = check_tagged(loop, tag);
  if (rc) return rc;
  rill__binding *b = fn ? find_or_add(loop, tag) : find(loop, tag);
  if (!b) return fn ? rill_last_error() : RILL_OK;
  rill_free_fn old_free = b->exc_free;
  void *old_arg = b->exc_arg;
  b->exc_fn = fn;
  b->exc_arg = fn ? arg : NULL;
  b->exc_free = fn ? free_arg : NULL;
  if (old_free) old_free(old_arg);
  return RILL_OK;
}

int rill_future_set_owner(rill_future *f, const void *tag) {
  int rc = rill__future_check_open(f);
  if (rc) return rc;
  f->owner = tag;
  return RILL_OK;
}

const void *rill_future_owner(const rill_future *f) {
  if (rill__future_check(f)) return NULL;
  if (f->owner) return f->owner;
  for (const rill_future *it = f; it; it = it->source)
    if (rill__future_failed(it) && it->payload) return it->payload_tag;
  return NULL;
}

int rill__binding_report(rill_loop *loop, const char *message, rill_future *future) {
  if (!loop->bindings || !future) return 0;
  const void *owner = rill_future_owner(future);
  rill__binding *b = owner ? find(loop, owner) : NULL;
  if (!b || !b->exc_fn) return 0;
  /* The handler may read (and so retrieve) the failure: keep it alive. */
  rill_future_retain(future);
  b->exc_fn(loop, message, future, b->exc_arg);
  rill_future_release(future);
  return 1;
}

void rill__bindings_close(rill_loop *loop) {
  while (loop->bindings) {
    rill__binding *b = loop->bindings;
    loop->bindings = b->next;
    if (b->exc_free) b->exc_free(b->exc_arg);
    if (b->free_state) b->free_state(b->state);
    free(b);
  }
}
