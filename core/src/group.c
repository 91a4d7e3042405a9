/* group.c - task groups: a parent owns its children; the first failure
 * cancels the rest and the parent's body; leaving waits for every child.
 * The cancel-count rules follow asyncio 3.12's TaskGroup. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct join_future {
  rill_future fut;
  rill_group *group;
  int cancel_requested;
} join_future;

typedef struct group_child {
  rill__node node;
  rill_group *group;
  rill_task *task;
} group_child;

struct rill_group {
  int refs; /* the caller's + one per child not yet done */
  rill_loop *loop;
  rill_task *parent;
  rill_task **children;
  size_t n, cap, pending;
  rill_task **errors;
  size_t nerr;
  int joined, finished, aborting, parent_cancel_requested, propagate_cancel, body_rc;
  join_future *join;
  int exiting, exit_rc; /* rill_group_exit: its join absorbs cancels; the outcome */
};

static int join_cancel(rill_future *f, const char *msg);
static const rill__future_type join_type = {"group join", join_cancel, NULL, NULL, NULL};

static void group_release_internal(rill_group *g) {
  if (--g->refs > 0) return;
  for (size_t i = 0; i < g->n; i++) rill_task_release(g->children[i]);
  free(g->children);
  free(g->errors);
  rill_task_release(g->parent);
  if (g->join) {
    g->join->group = NULL;
    rill_future_release(&g->join->fut);
  }
  rill_loop *loop = g->loop;
  free(g);
  rill__loop_release(loop);
}

rill_group *rill_group_new(rill_loop *loop, rill_task *parent) {
  if (rill__loop_check(loop)) return NULL;
  if (parent && rill_task_future(parent)->loop != loop) {
    rill__fail(RILL_EINVAL, "the parent task belongs to another loop");
    return NULL;
  }
  rill_group *g = calloc(1, sizeof *g);
  if (!g) {
    rill__fail(RILL_ENOMEM, "out of memory creating a group");
    return NULL;
  }
  g->refs = 1;
  g->loop = loop;
  rill__loop_retain(loop);
  g->parent = rill_task_retain(parent);
  return g;
}

static void abort_children(rill_group *g) {
  g->aborting = 1;
  for (size_t i = 0; i < g->n; i++)
    if (rill_task_future(g->children[i])->state == RILL_PENDING) rill_task_cancel(g->children[i], NULL);
}

static void maybe_complete_join(rill_group *g) {
  if (!g->join || g->pending || g->join->fut.state != RILL_PENDING) return;
  if (g->join->cancel_requested) rill__future_cancel_plain(&g->join->fut, NULL);
  else rill__future_finish(&g->join->fut, RILL_DONE);
}

static void child_done_run(rill__node *node, int discard) {
  group_child *c = RILL__CONTAINER(node, group_child, node);
  rill_group *g = c->group;
  if (!discard) {
    g->pending--;
    rill_future *f = rill_task_future(c->task);
    if (f->state == RILL_FAILED) {
      rill__future_mark_retrieved(f); /* the group reports it (RILL_EGROUP) */
      g->errors[g->nerr++] = c->task;
      if (!g->aborting && !g->parent_cancel_requested) {
        abort_children(g);
        if (g->parent && rill_task_future(g->parent)->state == RILL_PENDING) {
          g->parent_cancel_requested = 1;
          rill_task_cancel(g->parent, NULL);
        }
      }
    }
    maybe_complete_join(g);
  }
  free(c);
  group_release_internal(g);
}

int rill_group_add(rill_group *g, rill_task *child) {
  if (!g) return rill__fail(RILL_EINVAL, "group is NULL");
  if (!child) return rill__fail(RILL_EINVAL, "child is NULL");
  int rc = rill__loop_check(g->loop);
  if (rc) return rc;
  rill_future *f = rill_task_future(child);
  if (f->loop != g->loop) return rill__fail(RILL_EINVAL, "the child belongs to another loop");
  if (g->finished || (g->joined && !g->pending)) {
    rill_task_cancel(child, NULL);
    return rill__fail(RILL_ESTATE, "the task group is finished");
  }
  if (g->aborting) {
    rill_task_cancel(child, NULL);
    return rill__fail(RILL_ESTATE, "the task group is shutting down");
  }
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 8;
    rill_task **children = realloc(g->children, cap * sizeof *children);
    if (!children) return rill__fail(RILL_ENOMEM, "out of memory adding a child");
    g->children = children;
    rill_task **errors = realloc(g->errors, cap * sizeof *errors);
    if (!errors) return rill__fail(RILL_ENOMEM, "out of memory adding a child");
    g->errors = errors;
    g->cap = cap;
  }
  group_child *c = malloc(sizeof *c);
  if (!c) return rill__fail(RILL_ENOMEM, "out of memory adding a child");
  c->node.run = child_done_run;
  c->group = g;
  c->task = child;
  g->children[g->n++] = rill_task_retain(child);
  g->pending++;
  g->refs++;
  rill__future_add_node(f, &c->node);
  return RILL_OK;
}

rill_task *rill_group_spawn(rill_group *g, rill_coro_fn fn, void *arg) {
  if (!g) {
    rill__fail(RILL_EINVAL, "group is NULL");
    return NULL;
  }
  if (g->finished || (g->joined && !g->pending)) {
    rill__fail(RILL_ESTATE, "the task group is finished");
    return NULL;
  }
  if (g->aborting) {
    rill__fail(RILL_ESTATE, "the task group is shutting down");
    return NULL;
  }
  rill_task *t = rill_spawn(g->loop, fn, arg);
  if (!t) return NULL;
  if (rill_group_add(g, t) != RILL_OK) {
    int code = rill_last_error();
    rill_task_release(t);
    rill__fail(code, "%s", "could not add the task to the group");
    return NULL;
  }
  return t;
}

static int join_cancel(rill_future *f, const char *msg) {
  (void)msg;
  join_future *j = (join_future *)f;
  rill_group *g = j->group;
  if (g && g->exiting) { /* rill_group_exit: a cancel from outside, absorbed */
    if (!g->aborting) {
      g->propagate_cancel = 1;
      abort_children(g);
    }
    return 1;
  }
  j->cancel_requested = 1;
  if (g) {
    if (!g->aborting) {
      g->propagate_cancel = 1; /* cancelled from outside, not by the group */
      abort_children(g);
    }
    maybe_complete_join(g);
  }
  return 1;
}

rill_future *rill_group_join(rill_group *g, int body_rc) {
  if (!g) {
    rill__fail(RILL_EINVAL, "group is NULL");
    return NULL;
  }
  if (rill__loop_check(g->loop)) return NULL;
  if (body_rc > 0) {
    rill__fail(RILL_EINVAL, "body_rc must be 0 or a negative code");
    return NULL;
  }
  if (g->join) return &g->join->fut;
  join_future *j = (join_future *)rill__future_alloc(g->loop, &join_type, sizeof(join_future));
  if (!j) return NULL;
  j->group = g;
  j->cancel_requested = 0;
  g->join = j;
  g->joined = 1;
  g->body_rc = body_rc;
  if (body_rc == RILL_ECANCELLED) g->propagate_cancel = 1;
  if (body_rc != 0 && !g->aborting) abort_children(g);
  maybe_complete_join(g);
  return &j->fut;
}

int rill_group_finish(rill_group *g, int join_rc) {
  (void)join_rc; /* the group recorded why its join ended */
  if (!g) return rill__fail(RILL_EINVAL, "group is NULL");
  if (!g->joined || g->pending) return rill__fail(RILL_ESTATE, "the group's children are still running");
  if (g->finished) return rill__fail(RILL_ESTATE, "the group is finished already");
  g->finished = 1;
  int propagate = g->propagate_cancel;
  if (g->parent_cancel_requested && rill_task_uncancel(g->parent) == 0) propagate = 0;
  int body_failed = g->body_rc < 0 && g->body_rc != RILL_ECANCELLED;
  if (g->nerr || body_failed) return RILL_EGROUP;
  if (propagate) return RILL_ECANCELLED;
  return RILL_OK;
}

int rill_group_wait(rill_group *g, int body_rc) {
  rill_future *j = rill_group_join(g, body_rc);
  if (!j) return rill_last_error();
  int rc = rill_await(j);
  if (rc == RILL_ESTATE && j->state == RILL_PENDING) return rc; /* not in a coroutine */
  return rill_group_finish(g, rc);
}

size_t rill_group_error_count(rill_group *g) { return g ? g->nerr : 0; }

rill_task *rill_group_error_child(rill_group *g, size_t i) {
  if (!g || i >= g->nerr) {
    rill__fail(RILL_EINVAL, "index out of range");
    return NULL;
  }
  return g->errors[i];
}

size_t rill_group_count(rill_group *g) { return g ? g->n : 0; }

rill_task *rill_group_child(rill_group *g, size_t i) {
  if (!g || i >= g->n) {
    rill__fail(RILL_EINVAL, "index out of range");
    return NULL;
  }
  return g->children[i];
}

void rill_group_release(rill_group *g) {
  if (g) group_release_internal(g);
}

/* ---------------------------------------------------------------- */
/* Leaving a group in one rule (asyncio's TaskGroup.__aexit__)        */

rill_future *rill_group_exit(rill_group *g, int body_rc) {
  if (!g) {
    rill__fail(RILL_EINVAL, "group is NULL");
    return NULL;
  }
  if (rill__loop_check(g->loop)) return NULL;
  if (body_rc > 0) {
    rill__fail(RILL_EINVAL, "body_rc must be 0 or a negative code");
    return NULL;
  }
  if (g->joined || g->finished) {
    rill__fail(RILL_ESTATE, "the group has been left already");
    return NULL;
  }
  g->exiting = 1;
  return rill_group_join(g, body_rc);
}

int rill_group_exit_result(rill_group *g, int await_rc) {
  if (!g) return rill__fail(RILL_EINVAL, "group is NULL");
  if (await_rc > 0) return rill__fail(RILL_EINVAL, "await_rc must be 0 or a negative code");
  if (!g->exiting) return rill__fail(RILL_ESTATE, "rill_group_exit was not called");
  if (g->finished) return g->exit_rc;
  if (g->pending) return rill__fail(RILL_ESTATE, "the group's children are still running");
  /* A cancel delivered at the await point after the exit future was done
   * (asyncio: CancelledError out of `await on_completed_fut`). */
  if (await_rc == RILL_ECANCELLED && !g->aborting) {
    g->propagate_cancel = 1;
    abort_children(g); /* none left pending; only marks the group aborting */
  }
  g->exit_rc = rill_group_finish(g, 0);
  return g->exit_rc;
}

size_t rill_group_exit_error_count(rill_group *g) {
  if (!g || !g->exiting) return 0;
  return g->nerr + (g->body_rc < 0 && g->body_rc != RILL_ECANCELLED);
}

int rill_group_exit_error(rill_group *g, size_t i, rill_task **child) {
  if (!g) return rill__fail(RILL_EINVAL, "group is NULL");
  if (!child) return rill__fail(RILL_EINVAL, "child is NULL");
  *child = NULL;
  if (i >= rill_group_exit_error_count(g)) return rill__fail(RILL_EINVAL, "index out of range");
  if (i < g->nerr) {
    *child = g->errors[i];
    return 1;
  }
  return 0; /* after the children's: the body's own failure */
}

int rill_group_exit_await(rill_group *g, int body_rc) {
  rill_future *f = rill_group_exit(g, body_rc);
  if (!f) return rill_last_error();
  int rc = rill_await(f);
  if (rc == RILL_ESTATE && f->state == RILL_PENDING) return rc; /* not in a coroutine */
  return rill_group_exit_result(g, rc == RILL_ECANCELLED ? rc : 0);
}
