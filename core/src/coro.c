/* coro.c - stackful C coroutines: a task whose step switches to the
 * coroutine's own stack and back. rill_await/rill_sleep arrange the task's
 * resumption with the step primitives, then switch out.
 *
 * 1.1 copy-stack coroutines (rill_spawn_v2, RILL_SPAWN_COPY_STACK), after
 * libaco: they all run on one stack per loop (loop->shared_stack, of the
 * loop's stack size). The coroutine whose frames are on it is its owner;
 * when another one is stepped, the owner's used part [sp, top) is copied
 * to a heap buffer of its own and the newcomer's copied back to the same
 * addresses, so its saved stack pointer stays valid. A suspended one costs
 * what it used (a few hundred bytes) instead of the pages it touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct rill__coro {
  rill_coro_fn fn;
  void *arg;
  rill__ctx ctx;    /* the coroutine */
  rill__ctx caller; /* whoever stepped it this time */
  void *stack;
  int started, finished;
  int guarded; /* debug mode when it started: the guard page is filled */
  rill_future *held; /* rill_await's reference while suspended on it */
  int copy;           /* copy-stack: runs on loop->shared_stack */
  char *saved;        /* copy-stack: its frames while another owns the stack */
  size_t saved_len, saved_cap;
} rill__coro;

static void release_stack(rill_task *t) {
  rill__coro *co = rill__task_coro(t);
  rill_loop *loop = t->fut.loop;
  free(co->saved);
  co->saved = NULL;
  co->saved_len = co->saved_cap = 0;
  if (!co->stack) return;
  rill__ctx_destroy(&co->ctx);
  if (co->copy) {
    if (loop->shared_owner == co) loop->shared_owner = NULL;
  } else {
    rill__stack_put(loop->stacks, co->stack);
  }
  co->stack = NULL;
}

/* Copy-stack: makes co the shared stack's owner, first copying out the
 * frames of the coroutine that owns it. 0, or a code (the stack stays
 * with its owner). */
static int take_shared_stack(rill_loop *loop, rill__coro *co) {
  rill__coro *owner = loop->shared_owner;
  if (owner == co) return 0;
  char *lo = loop->shared_stack;
  char *top = lo + rill__stack_pool_stack_size(loop->stacks);
  char *here = __builtin_frame_address(0);
  if (RILL__UNLIKELY(here >= lo && here < top))
    /* Stepped from code running on the shared stack (no path in rill
     * does this): its live frames cannot be moved. */
    return rill__fail(RILL_ESTATE, "a copy-stack coroutine cannot be stepped from another one");
  if (owner) {
    char *sp = owner->ctx.sp;
    size_t len = (size_t)(top - sp);
    if (len > owner->saved_cap) {
      size_t cap = (len + 63) & ~(size_t)63;
      char *buf = realloc(owner->saved, cap);
      if (!buf) return rill__fail(RILL_ENOMEM, "out of memory saving a coroutine's stack");
      owner->saved = buf;
      owner->saved_cap = cap;
    }
    rill__ctx_copy_prepare(sp, len, 0);
    memcpy(owner->saved, sp, len);
    owner->saved_len = len;
  }
  loop->shared_owner = co;
  if (co->started) {
    char *sp = co->ctx.sp;
    rill__ctx_copy_prepare(sp, co->saved_len, 1);
    memcpy(sp, co->saved, co->saved_len);
    co->saved_len = 0;
  }
  return 0;
}

/* Completes the task with fn's outcome. Out of line: its message buffer
 * would otherwise sit in coro_entry's frame, under every other frame of
 * the coroutine for its whole life, and be copied at every switch of a
 * copy-stack coroutine. */
__attribute__((noinline)) static void coro_complete(rill_task *t, int rc) {
  if (t->fut.state != RILL_PENDING) return;
  if (rc >= 0) {
    rill_future_set_none(&t->fut);
  } else if (rc == RILL_ECANCELLED) {
    rill__future_fail_msg(&t->fut, RILL_ECANCELLED, rill__task_cancel_msg(t));
  } else {
    char buf[64];
    const char *msg = rill_last_error() == rc ? rill_last_error_message() : rill_strerror(rc);
    if (!rill_err_name(rc) && rill_last_error() != rc) {
      snprintf(buf, sizeof buf, "coroutine failed with code %d", rc);
      msg = buf;
    }
    rill__future_fail_msg(&t->fut, rc, msg);
  }
}

static void coro_entry(void *p) {
  rill_task *t = p;
  rill__coro *co = rill__task_coro(t);
  coro_complete(t, co->fn(co->arg));
  co->finished = 1;
  rill__ctx_switch_final(&co->ctx, &co->caller);
  abort(); /* never resumed */
}

static void coro_step(rill_task *t, void *arg) {
  (void)arg;
  rill__coro *co = rill__task_coro(t);
  if (!co->started) {
    rill_loop *loop = t->fut.loop;
    if (t->deliver_cancel) { /* cancelled before its first step: body never runs */
      rill__future_fail_msg(&t->fut, RILL_ECANCELLED, rill__task_cancel_msg(t));
      return;
    }
    if (!loop->stacks && !(loop->stacks = rill__stack_pool_new(loop->stack_size))) {
      rill__future_fail_msg(&t->fut, RILL_ENOMEM, "out of memory for a coroutine stack pool");
      return;
    }
    size_t size = rill__stack_pool_stack_size(loop->stacks);
    if (co->copy) {
      /* The shared stack is taken once and kept until the loop is freed. */
      if (!loop->shared_stack && !(loop->shared_stack = rill__stack_get(loop->stacks))) {
        rill__future_fail_msg(&t->fut, RILL_ENOMEM, "out of memory for a coroutine stack");
        return;
      }
      if (take_shared_stack(loop, co) != 0) {
        rill__future_fail_msg(&t->fut, rill_last_error(), rill_last_error_message());
        return;
      }
      co->stack = loop->shared_stack;
    } else if (!(co->stack = rill__stack_get(loop->stacks))) {
      rill__future_fail_msg(&t->fut, RILL_ENOMEM, "out of memory for a coroutine stack");
      return;
    }
    if (rill__ctx_make(&co->ctx, co->stack, size, coro_entry, t) != 0) {
      if (co->copy) loop->shared_owner = NULL;
      else rill__stack_put(loop->stacks, co->stack);
      co->stack = NULL;
      rill__future_fail_msg(&t->fut, RILL_ENOMEM, "out of memory for a coroutine context");
      return;
    }
    co->started = 1;
    if (loop->debug) {
      rill__stack_fill_page(co->stack);
      co->guarded = 1;
    }
  } else if (co->copy && t->fut.loop->shared_owner != co &&
             take_shared_stack(t->fut.loop, co) != 0) {
    /* Its frames stay saved; the task fails without resuming (ENOMEM). */
    rill__future_fail_msg(&t->fut, rill_last_error(), rill_last_error_message());
    rill__coro_destroy(t);
    return;
  }
  rill__ctx_switch(&co->caller, &co->ctx);
  /* Overflow check: the saved stack pointer on every switch (free), the
   * canary at the stack's low end when it ends or in debug mode (it is a
   * cold cache line per coroutine, too dear for every switch). */
  int overflow = co->ctx.sp && (char *)co->ctx.sp < (char *)co->stack + 4096;
  if (co->finished || t->fut.loop->debug)
    overflow |= !rill__stack_ok(t->fut.loop->stacks, co->stack, t->fut.loop->debug);
  if (co->guarded) overflow |= !rill__stack_page_ok(co->stack);
  if (RILL__UNLIKELY(overflow)) {
    fprintf(stderr, "rill: stack overflow in coroutine task %s (stack size %zu bytes)\n",
            rill__task_name(t), rill__stack_pool_stack_size(t->fut.loop->stacks));
    abort();
  }
  if (co->finished) release_stack(t);
}

rill_coro_fn rill__coro_fn(const rill_task *t) { return t->is_coro ? rill__task_coro(t)->fn : NULL; }

void rill__coro_destroy(rill_task *t) {
  /* Destroyed while suspended (loop close): it never resumes to drop it. */
  if (rill__task_coro(t)->held) rill_future_release(rill__task_coro(t)->held);
  rill__task_coro(t)->held = NULL;
  release_stack(t);
}

static rill_task *spawn(rill_loop *loop, rill_coro_fn fn, void *arg, unsigned flags) {
  if (rill__loop_check(loop)) return NULL;
  if (!fn) {
    rill__fail(RILL_EINVAL, "fn is NULL");
    return NULL;
  }
  if (flags & ~(unsigned)RILL_SPAWN_COPY_STACK) {
    rill__fail(RILL_EINVAL, "unknown spawn flags 0x%x", flags);
    return NULL;
  }
  rill_task *t = rill__task_new(loop, coro_step, NULL, NULL, sizeof(rill__coro));
  if (!t) return NULL;
  rill__coro *co = (rill__coro *)(t + 1);
  co->fn = fn;
  co->arg = arg;
  /* Without a copyable switch (ucontext) it runs on a stack of its own,
   * which keeps every promise a copy-stack coroutine makes. */
  co->copy = (flags & RILL_SPAWN_COPY_STACK) && rill__ctx_can_copy();
  t->is_coro = 1;
  return t;
}

rill_task *rill_spawn(rill_loop *loop, rill_coro_fn fn, void *arg) {
  return spawn(loop, fn, arg, 0);
}

rill_task *rill_spawn_v2(rill_loop *loop, rill_coro_fn fn, void *arg, unsigned flags) {
  return spawn(loop, fn, arg, flags);
}

/* The running coroutine's task, or NULL with RILL_ESTATE recorded. */
static rill_task *current_coro(const char *what) {
  rill_task *t = rill_current_task();
  if (!t || !t->is_coro || t->wait != RILL__T_RUNNING) {
    rill__fail(RILL_ESTATE, "%s called outside a rill coroutine", what);
    return NULL;
  }
  return t;
}

static void suspend(rill_task *t) {
  rill__coro *co = rill__task_coro(t);
  rill__ctx_switch(&co->ctx, &co->caller);
}

int rill_await(rill_future *f) {
  rill_task *t = current_coro("rill_await");
  if (!t) return RILL_ESTATE;
  int rc = rill__future_check(f);
  if (rc) return rc;
  if (f->state != RILL_PENDING) return rill__future_outcome(f);
  rill_future_retain(f);
  if ((rc = rill_task_wait(t, f))) {
    rill_future_release(f);
    return rc;
  }
  rill__task_coro(t)->held = f;
  suspend(t);
  rill__task_coro(t)->held = NULL;
  rc = t->deliver_cancel ? RILL_ECANCELLED : rill__future_outcome(f);
  if (t->deliver_cancel && f->state != RILL_PENDING && f->state != RILL_DONE)
    rill__future_mark_retrieved(f);
  rill_future_release(f);
  return rc;
}

int rill_sleep(double seconds) {
  rill_task *t = current_coro("rill_sleep");
  if (!t) return RILL_ESTATE;
  int rc = rill_task_sleep(t, seconds);
  if (rc) return rc;
  suspend(t);
  return t->deliver_cancel ? RILL_ECANCELLED : RILL_OK;
}

int rill_yield(void) { return rill_sleep(0); }
