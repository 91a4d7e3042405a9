/* timeout.c - deadlines: wait_for, the timeout scope, and shield (a future
 * whose cancellation stops at itself). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---------------------------------------------------------------- */
/* wait_for                                                           */

typedef struct wait_for {
  rill_future fut;
  rill_future *inner;
  rill__node inner_node; /* on inner's callbacks; holds a reference */
  rill__timer timer;     /* holds a reference while scheduled */
  int timed_out, cancel_requested;
} wait_for;

static int wait_for_cancel(rill_future *f, const char *msg);
static void wait_for_destroy(rill_future *f);
static void wait_for_completed(rill_future *f);
static const rill__future_type wait_for_type = {"wait_for", wait_for_cancel, wait_for_destroy,
                                                NULL, wait_for_completed};

static void wait_for_destroy(rill_future *f) { rill_future_release(((wait_for *)f)->inner); }

static void wait_for_completed(rill_future *f) {
  wait_for *w = (wait_for *)f;
  if (w->timer.heap_index != RILL__NOT_IN_HEAP) {
    rill__timer_stop(f->loop, &w->timer);
    f->refs--; /* the timer's; the completer holds another */
  }
}

static void inner_done_run(rill__node *node, int discard) {
  wait_for *w = RILL__CONTAINER(node, wait_for, inner_node);
  if (!discard && w->fut.state == RILL_PENDING) {
    rill_future *inner = w->inner;
    if (w->cancel_requested) {
      rill__future_cancel_plain(&w->fut, NULL);
    } else if (w->timed_out && inner->state == RILL_CANCELLED) {
      rill__future_mark_retrieved(inner);
      rill__future_fail_msg(&w->fut, RILL_ETIMEDOUT, "timed out");
    } else {
      rill__future_copy_outcome(&w->fut, inner);
    }
  }
  rill_future_release(&w->fut);
}

static void wait_for_timer_run(rill__node *node, int discard) {
  wait_for *w = RILL__CONTAINER(node, wait_for, timer.node);
  if (!discard && w->fut.state == RILL_PENDING) {
    w->timed_out = 1;
    rill_future_cancel(w->inner);
  }
  rill_future_release(&w->fut);
}

static int wait_for_cancel(rill_future *f, const char *msg) {
  wait_for *w = (wait_for *)f;
  w->cancel_requested = 1;
  /* Kept for the wait_for's own cancellation (as gather keeps it); if it
   * cannot be copied the cancel still goes through, without it. */
  if (msg && !f->err_msg) {
    size_t n = strlen(msg) + 1;
    if ((f->err_msg = malloc(n))) memcpy(f->err_msg, msg, n);
  }
  rill_future_cancel_msg(w->inner, msg);
  return 1; /* ends CANCELLED once inner has finished */
}

rill_future *rill_wait_for(rill_loop *loop, rill_future *inner, double timeout_s) {
  if (rill__loop_check(loop) || rill__future_check(inner)) return NULL;
  if (inner->loop != loop) {
    rill__fail(RILL_EINVAL, "the future belongs to another loop");
    return NULL;
  }
  if (isnan(timeout_s)) {
    rill__fail(RILL_EINVAL, "timeout is NaN");
    return NULL;
  }
  wait_for *w = (wait_for *)rill__future_alloc(loop, &wait_for_type, sizeof(wait_for));
  if (!w) return NULL;
  w->inner = rill_future_retain(inner);
  w->inner_node.run = inner_done_run;
  w->timer.node.run = wait_for_timer_run;
  w->timer.heap_index = RILL__NOT_IN_HEAP;
  w->timed_out = w->cancel_requested = 0;
  if (inner->state != RILL_PENDING) { /* done already: its outcome, whatever the timeout */
    rill__future_copy_outcome(&w->fut, inner);
    return &w->fut;
  }
  if (isfinite(timeout_s) && timeout_s > 0 &&
      rill__timer_start(loop, &w->timer, rill__clock() + timeout_s) != RILL_OK) {
    rill_future_release(&w->fut);
    return NULL;
  }
  if (w->timer.heap_index != RILL__NOT_IN_HEAP) w->fut.refs++;
  w->fut.refs++; /* inner_node's */
  rill__future_add_node(inner, &w->inner_node);
  if (timeout_s <= 0) {
    w->timed_out = 1;
    rill_future_cancel(inner);
  }
  return &w->fut;
}

/* ---------------------------------------------------------------- */
/* shield                                                             */

typedef struct shield {
  rill_future fut;
  rill_future *inner;
  rill__node node;
} shield;

static void shield_destroy(rill_future *f) { rill_future_release(((shield *)f)->inner); }
static const rill__future_type shield_type = {"shield", NULL, shield_destroy, NULL, NULL};

static void shield_inner_run(rill__node *node, int discard) {
  shield *s = RILL__CONTAINER(node, shield, node);
  /* If the outer was cancelled, the inner's failure stays unretrieved and
   * is reported at its fixed point. */
  if (!discard && s->fut.state == RILL_PENDING) rill__future_copy_outcome(&s->fut, s->inner);
  rill_future_release(&s->fut);
}

rill_future *rill_shield(rill_loop *loop, rill_future *inner) {
  if (rill__loop_check(loop) || rill__future_check(inner)) return NULL;
  if (inner->loop != loop) {
    rill__fail(RILL_EINVAL, "the future belongs to another loop");
    return NULL;
  }
  shield *s = (shield *)rill__future_alloc(loop, &shield_type, sizeof(shield));
  if (!s) return NULL;
  s->inner = rill_future_retain(inner);
  s->node.run = shield_inner_run;
  if (inner->state != RILL_PENDING) {
    rill__future_copy_outcome(&s->fut, inner);
  } else {
    s->fut.refs++;
    rill__future_add_node(inner, &s->node);
  }
  return &s->fut;
}

/* ---------------------------------------------------------------- */
/* The timeout scope                                                  */

enum { TO_ARMED, TO_EXPIRED, TO_EXITED };

struct rill_timeout {
  int refs; /* the caller's + the timer's while scheduled */
  rill_loop *loop;
  rill_task *task;
  rill__timer timer;
  int state, expired, cancelling_at_enter;
};

static void timeout_release_internal(rill_timeout *to) {
  if (--to->refs > 0) return;
  rill_loop *loop = to->loop;
  rill_task_release(to->task);
  free(to);
  rill__loop_release(loop);
}

static void timeout_timer_run(rill__node *node, int discard) {
  rill_timeout *to = RILL__CONTAINER(node, rill_timeout, timer.node);
  if (!discard && to->state == TO_ARMED) {
    to->state = TO_EXPIRED;
    to->expired = 1;
    rill_task_cancel(to->task, NULL);
  }
  timeout_release_internal(to);
}

static void timeout_disarm(rill_timeout *to) {
  if (to->timer.heap_index == RILL__NOT_IN_HEAP) return;
  rill__timer_stop(to->loop, &to->timer);
  to->refs--; /* the timer's; the caller holds another */
}

static int timeout_arm(rill_timeout *to, double delay_s) {
  if (isinf(delay_s) && delay_s > 0) return RILL_OK; /* RILL_FOREVER; -inf: at once */
  double when = rill__clock() + (delay_s > 0 ? delay_s : 0);
  int rc = rill__timer_start(to->loop, &to->timer, when);
  if (!rc) to->refs++;
  return rc;
}

rill_timeout *rill_timeout_new(rill_task *task, double delay_s) {
  if (!task) {
    rill__fail(RILL_EINVAL, "task is NULL");
    return NULL;
  }
  if (isnan(delay_s)) {
    rill__fail(RILL_EINVAL, "delay is NaN");
    return NULL;
  }
  rill_loop *loop = rill_task_future(task)->loop;
  if (rill__loop_check(loop)) return NULL;
  if (rill_future_done(rill_task_future(task))) {
    rill__fail(RILL_ESTATE, "the task is done");
    return NULL;
  }
  rill_timeout *to = calloc(1, sizeof *to);
  if (!to) {
    rill__fail(RILL_ENOMEM, "out of memory creating a timeout");
    return NULL;
  }
  to->refs = 1;
  to->loop = loop;
  rill__loop_retain(loop);
  to->task = rill_task_retain(task);
  to->timer.heap_index = RILL__NOT_IN_HEAP;
  to->timer.node.run = timeout_timer_run;
  to->state = TO_ARMED;
  to->cancelling_at_enter = rill_task_cancelling(task);
  if (timeout_arm(to, delay_s) != RILL_OK) {
    timeout_release_internal(to);
    return NULL;
  }
  return to;
}

int rill_timeout_reschedule(rill_timeout *to, double delay_s) {
  if (!to) return rill__fail(RILL_EINVAL, "timeout is NULL");
  if (isnan(delay_s)) return rill__fail(RILL_EINVAL, "delay is NaN");
  int rc = rill__loop_check(to->loop);
  if (rc) return rc;
  if (to->state != TO_ARMED) return rill__fail(RILL_ESTATE, "the timeout has expired or exited");
  timeout_disarm(to);
  return timeout_arm(to, delay_s);
}

int rill_timeout_expired(const rill_timeout *to) {
  if (!to) return rill__fail(RILL_EINVAL, "timeout is NULL");
  return to->expired;
}

int rill_timeout_exit(rill_timeout *to, int rc) {
  if (!to) return rill__fail(RILL_EINVAL, "timeout is NULL");
  if (to->state == TO_EXITED) return rill__fail(RILL_ESTATE, "the timeout was exited already");
  timeout_disarm(to);
  int was_expiring = to->state == TO_EXPIRED;
  to->state = TO_EXITED;
  if (was_expiring && rill_task_uncancel(to->task) <= to->cancelling_at_enter &&
      rc == RILL_ECANCELLED)
    return RILL_ETIMEDOUT;
  return rc;
}

void rill_timeout_release(rill_timeout *to) {
  if (to) timeout_release_internal(to);
}

/* ---------------------------------------------------------------- */
/* sleep as a future                                                  */

typedef struct sleep_future {
  rill_future fut;
  rill__timer timer; /* holds a reference while scheduled */
} sleep_future;

static void sleep_completed(rill_future *f) {
  sleep_future *s = (sleep_future *)f;
  if (s->timer.heap_index != RILL__NOT_IN_HEAP) {
    rill__timer_stop(f->loop, &s->timer);
    f->refs--; /* the timer's; the canceller holds another */
  }
}
static const rill__future_type sleep_type = {"sleep", NULL, NULL, NULL, sleep_completed};

static void sleep_timer_run(rill__node *node, int discard) {
  sleep_future *s = RILL__CONTAINER(node, sleep_future, timer.node);
  if (!discard && s->fut.state == RILL_PENDING) rill__future_finish(&s->fut, RILL_DONE);
  rill_future_release(&s->fut);
}

rill_future *rill_sleep_future(rill_loop *loop, double seconds) {
  if (rill__loop_check(loop)) return NULL;
  if (isnan(seconds)) {
    rill__fail(RILL_EINVAL, "seconds is NaN");
    return NULL;
  }
  sleep_future *s = (sleep_future *)rill__future_alloc(loop, &sleep_type, sizeof(sleep_future));
  if (!s) return NULL;
  s->timer.heap_index = RILL__NOT_IN_HEAP;
  s->timer.node.run = sleep_timer_run;
  if (isinf(seconds) && seconds > 0) return &s->fut; /* RILL_FOREVER: never, until cancelled */
  if (rill__timer_start(loop, &s->timer, rill__clock() + (seconds > 0 ? seconds : 0)) != RILL_OK) {
    rill_future_release(&s->fut);
    return NULL;
  }
  s->fut.refs++;
  return &s->fut;
}
