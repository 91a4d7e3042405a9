/* swig/ruby.i - the Ruby 3.1 binding of rill (module Rill::Ext, loaded by
 * bindings/ruby/lib/rill.rb).
 *
 * The shared rill.i gives the status codes, constants and the Loop/Future
 * wrappers. The hand-written C below drives Ruby tasks: each Rill::Task is a
 * rill_task (rill_task_new) whose step resumes a Fiber. Awaiting is done in
 * C from inside the task's Fiber: Rill.sleep / Task#value call
 * rill_task_sleep / rill_task_wait (we are inside the task's step, since
 * the step resumed us) and then rb_fiber_yield back to the step, which
 * returns to the loop. Semantics (cancellation, gather, timeouts, groups)
 * are the core's; this file only converts values and errors.
 *
 * Rules kept here:
 *  - Every Ruby call made from a rill callback (task step, call_soon
 *    trampoline, exception handler) is under rb_protect: no longjmp ever
 *    crosses libev or rill.
 *  - Every VALUE held by C is reachable from a Ruby object the binding
 *    owns: a pending task from the registry (one TypedData object held with
 *    rb_gc_register_mark_object), its fiber/block/result from the Task
 *    object; callbacks' procs and running loops from the registry. All are
 *    marked with rb_gc_mark_movable and updated with rb_gc_location (GC.compact).
 *  - Nothing runs Ruby from a non-Ruby thread: rill calls back only on the
 *    thread that runs the loop (rill_call_soon_threadsafe is not exposed).
 *  - Free functions called by rill (possibly during GC sweep, when a Task
 *    object's last rill reference goes) never call Ruby.
 */
%module "rill::ext"

%{
#include <ruby.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rill.h"

static VALUE rr_error_for(int code);
#define RILL_SWIG_RAISE(code) rb_exc_raise(rr_error_for(code))
%}

/* The one exception raiser of rill.i's wrappers. */
#define RILL_SWIG_RAISE(code) rb_exc_raise(rr_error_for(code))

%include "rill.i"

%{
/* ================================================================== */
/* Classes, tags, globals                                               */
/* ================================================================== */

static VALUE mRill, cTask, cFuture, cLoop, cHandle, cTimeout, cGroup;
static VALUE eError, eCancelled, eTimeout, eFiberError;
static ID id_call, id_message, id_new;

/* The tag of payloads/pointers only this binding unwraps (an rtask *). */
static const char rr_tag = 'R';
#define RR_TAG ((const void *)&rr_tag)
#define RR_MAGIC 0x52525441u /* "RRTA" */

typedef struct rloop rloop;

/* One Ruby task. Lives while the Task object lives or rill holds it
 * (task arg until done, result pointer / failure payload until the
 * future is freed): refcounted. */
typedef struct rtask {
  unsigned magic;
  int refs;
  rill_task *task;       /* our reference (released when the Task object dies) */
  rloop *lp;
  VALUE self;            /* the Rill::Task (Qnil once it died) */
  VALUE fiber;           /* Qnil before start and after the end */
  VALUE block;
  VALUE result;          /* the value, or the exception object */
  unsigned pending : 1;  /* in the registry's pending list */
  unsigned started : 1;
  unsigned finished : 1;
  unsigned has_slot : 1; /* counts in live_fibers */
  unsigned queued : 1;   /* waiting for a fiber slot */
  unsigned failed : 1;   /* result is an exception */
  unsigned ran : 1;      /* the fiber body started */
  struct rtask *prev, *next;   /* pending list */
  struct rtask *qprev, *qnext; /* slot queue */
  rill_future *slot;           /* the future a queued task waits on */
} rtask;

/* A scheduled Ruby callback (call_soon / call_later). */
typedef struct rcb {
  VALUE proc;
  rloop *lp;
  struct rcb *prev, *next;
} rcb;

/* A Rill::Loop. */
struct rloop {
  rill_loop *loop;  /* NULL once freed */
  VALUE self;
  VALUE handler;    /* the exception handler proc, or Qnil (default) */
  struct rloop *prev, *next; /* active loops (running Rill.run) */
  int active;
  struct rtask *slotq_head, *slotq_tail; /* tasks waiting for a fiber slot */
  rill_task *main_task; /* borrowed while Rill.run runs */
  VALUE interrupt;      /* an Interrupt/SignalException caught by the watchdog */
  int watch;            /* the interrupt watchdog is armed */
};

static rtask *pending_head;
static rcb *cb_head;
static rloop *loops_head;
static VALUE registry;       /* marks everything above */
static VALUE report_exc = Qnil; /* handed from a report site to the handler */

/* Fiber slots: each started, unfinished task holds one fiber stack (two
 * memory maps: stack + guard page). Past the cap, tasks wait to start. */
static long live_fibers;
static VALUE *idle_fibers;
static long idle_n, idle_capa;
static VALUE idle_owner = Qnil; /* the thread the idle fibers belong to */
static long fiber_cap;       /* 0 until computed */

/* Reports made while Ruby cannot run (during GC), delivered later. */
typedef struct rr_report { char *msg; rill_loop *loop; struct rr_report *next; } rr_report;
static rr_report *deferred_reports;

static void rr_flush_reports(void);

/* ================================================================== */
/* Errors                                                               */
/* ================================================================== */

static VALUE rr_exc_new(VALUE klass, const char *msg) {
  if (msg && *msg) return rb_exc_new_cstr(klass, msg);
  return rb_exc_new_str(klass, rb_class_name(klass));
}

/* The exception for a rill status code (uses the thread's last message). */
static VALUE rr_error_for(int code) {
  const char *msg = rill_last_error_message();
  const char *name = rill_err_name(code);
  VALUE e;
  if (code == RILL_ECANCELLED) return rr_exc_new(eCancelled, msg);
  if (code == RILL_ETIMEDOUT) return rr_exc_new(eTimeout, msg && *msg ? msg : "timed out");
  if (code == RILL_EINVAL) e = rb_exc_new_str(rb_eArgError, rb_sprintf("%s", msg && *msg ? msg : rill_strerror(code)));
  else if (code == RILL_ETYPE) e = rb_exc_new_str(rb_eTypeError, rb_sprintf("%s", msg && *msg ? msg : rill_strerror(code)));
  else if (code == RILL_ENOMEM) return rb_exc_new_cstr(rb_eNoMemError, msg && *msg ? msg : rill_strerror(code));
  else {
    e = rb_exc_new_str(eError, rb_sprintf("%s: %s", name ? name : "rill error",
                                          msg && *msg ? msg : rill_strerror(code)));
    rb_iv_set(e, "@code", INT2FIX(code));
  }
  return e;
}

static void rr_raise(int code) { rb_exc_raise(rr_error_for(code)); }

/* The exception for a done-but-not-DONE future f, of outcome code. */
static VALUE rr_future_exception(rill_future *f, int code) {
  rtask *src = (rtask *)rill_future_error_payload(f, RR_TAG);
  if (src && src->failed && !NIL_P(src->result)) return src->result;
  const char *msg = rill_future_error_message(f);
  if (code == RILL_ECANCELLED) return rr_exc_new(eCancelled, msg);
  if (code == RILL_ETIMEDOUT) return rr_exc_new(eTimeout, msg && *msg ? msg : "timed out");
  VALUE e = rb_exc_new_str(eError, rb_sprintf("%s: %s", rill_err_name(code) ? rill_err_name(code) : "application error",
                                              msg && *msg ? msg : rill_strerror(code)));
  rb_iv_set(e, "@code", INT2FIX(code));
  return e;
}

/* ================================================================== */
/* The registry: marks pending tasks, callbacks, running loops          */
/* ================================================================== */

static void registry_mark(void *p) {
  (void)p;
  for (rtask *rt = pending_head; rt; rt = rt->next) rb_gc_mark_movable(rt->self);
  for (rcb *c = cb_head; c; c = c->next) rb_gc_mark_movable(c->proc);
  for (rloop *lp = loops_head; lp; lp = lp->next) rb_gc_mark_movable(lp->self);
  rb_gc_mark_movable(report_exc);
  for (long i = 0; i < idle_n; i++) rb_gc_mark_movable(idle_fibers[i]);
  rb_gc_mark_movable(idle_owner);
}
static void registry_compact(void *p) {
  (void)p;
  for (rtask *rt = pending_head; rt; rt = rt->next) rt->self = rb_gc_location(rt->self);
  for (rcb *c = cb_head; c; c = c->next) c->proc = rb_gc_location(c->proc);
  for (rloop *lp = loops_head; lp; lp = lp->next) lp->self = rb_gc_location(lp->self);
  report_exc = rb_gc_location(report_exc);
  for (long i = 0; i < idle_n; i++) idle_fibers[i] = rb_gc_location(idle_fibers[i]);
  idle_owner = rb_gc_location(idle_owner);
}
static const rb_data_type_t registry_type = {
  .wrap_struct_name = "rill/registry",
  .function = {.dmark = registry_mark, .dfree = NULL, .dsize = NULL, .dcompact = registry_compact},
};

/* ================================================================== */
/* Loops                                                                */
/* ================================================================== */

static void loop_mark(void *p) {
  rloop *lp = p;
  rb_gc_mark_movable(lp->handler);
  rb_gc_mark_movable(lp->interrupt);
}
static void loop_compact(void *p) {
  rloop *lp = p;
  lp->handler = rb_gc_location(lp->handler);
  lp->interrupt = rb_gc_location(lp->interrupt);
}
static void loop_free(void *p) {
  rloop *lp = p;
  /* An active loop is marked by the registry, so it is never freed here
   * while running; a loop whose Rill.run ended has lp->loop == NULL. */
  if (lp->loop) {
    /* Never reached from Rill.run; a bare Rill::Loop.new is not allowed. */
    lp->loop = NULL;
  }
  free(lp);
}
static size_t loop_memsize(const void *p) { (void)p; return sizeof(rloop); }
static const rb_data_type_t loop_type = {
  .wrap_struct_name = "rill/loop",
  .function = {.dmark = loop_mark, .dfree = loop_free, .dsize = loop_memsize, .dcompact = loop_compact},
};

static rloop *rr_loop_of(rill_loop *loop) {
  for (rloop *lp = loops_head; lp; lp = lp->next)
    if (lp->loop == loop) return lp;
  return NULL;
}

static rloop *rr_loop_get(VALUE obj) {
  rloop *lp = rb_check_typeddata(obj, &loop_type);
  if (!lp->loop) rb_raise(eError, "the loop is closed");
  return lp;
}

/* The running loop of this thread (as a rloop), or raise Rill::Error. */
static rloop *rr_running_loop(void) {
  rill_loop *loop = rill_loop_current();
  rloop *lp = loop ? rr_loop_of(loop) : NULL;
  if (!lp) rb_raise(eError, "no running Rill loop (call this inside Rill.run)");
  return lp;
}

/* ---- the exception handler ---- */

typedef struct { VALUE handler; VALUE msg; VALUE exc; } handler_call;
static VALUE handler_invoke(VALUE p) {
  handler_call *hc = (handler_call *)p;
  return rb_funcall(hc->handler, id_call, 2, hc->msg, hc->exc);
}
static VALUE default_handler_invoke(VALUE p) {
  handler_call *hc = (handler_call *)p;
  return rb_funcall(mRill, rb_intern("default_exception_handler"), 2, hc->msg, hc->exc);
}

static void rr_call_handler(rloop *lp, const char *message, VALUE exc) {
  handler_call hc;
  int state = 0;
  hc.handler = lp ? lp->handler : Qnil;
  hc.msg = rb_str_new_cstr(message);
  hc.exc = exc;
  if (NIL_P(hc.handler)) rb_protect(default_handler_invoke, (VALUE)&hc, &state);
  else rb_protect(handler_invoke, (VALUE)&hc, &state);
  if (state) {
    VALUE err = rb_errinfo();
    rb_set_errinfo(Qnil);
    /* The handler itself raised: last resort, stderr. */
    VALUE s = rb_protect(rb_inspect, err, &state);
    if (state) rb_set_errinfo(Qnil);
    fprintf(stderr, "rill: %s (the exception handler raised %s)\n", message,
            (!state && RB_TYPE_P(s, T_STRING)) ? StringValueCStr(s) : "?");
  }
  RB_GC_GUARD(hc.msg);
}

static void loop_exception_fn(rill_loop *loop, const char *message, rill_future *future, void *arg) {
  (void)arg;
  if (rb_during_gc()) {
    /* Reached from a free during GC (a failed task's last reference):
     * Ruby cannot run now; deliver the text at the next safe point. */
    rr_report *r = malloc(sizeof *r);
    const char *detail = future ? rill_future_error_message(future) : NULL;
    size_t n = strlen(message) + (detail ? strlen(detail) : 0) + 4;
    if (r && (r->msg = malloc(n))) {
      snprintf(r->msg, n, detail && *detail ? "%s: %s" : "%s", message, detail ? detail : "");
      r->loop = loop;
      r->next = deferred_reports;
      deferred_reports = r;
    } else {
      free(r);
      fprintf(stderr, "rill: %s\n", message);
    }
    return;
  }
  VALUE exc = report_exc;
  report_exc = Qnil;
  if (NIL_P(exc) && future) {
    int st = rill_future_state(future);
    if (st == RILL_FAILED || st == RILL_CANCELLED) {
      rtask *src = (rtask *)rill_future_error_payload(future, RR_TAG);
      if (src && src->failed) exc = src->result;
      else if (st == RILL_FAILED) exc = rr_future_exception(future, rill_future_error(future));
    }
  }
  rr_call_handler(rr_loop_of(loop), message, exc);
}

static void rr_flush_reports(void) {
  while (deferred_reports) {
    rr_report *r = deferred_reports;
    deferred_reports = r->next;
    rloop *lp = rr_loop_of(r->loop);
    rr_call_handler(lp, r->msg, Qnil);
    free(r->msg);
    free(r);
  }
}

/* ================================================================== */
/* Tasks                                                                */
/* ================================================================== */

static void rt_unref(void *p) {
  rtask *rt = p;
  if (--rt->refs == 0) free(rt);
}

static void task_mark(void *p) {
  rtask *rt = p;
  rb_gc_mark_movable(rt->fiber);
  rb_gc_mark_movable(rt->block);
  rb_gc_mark_movable(rt->result);
}
static void task_compact(void *p) {
  rtask *rt = p;
  rt->fiber = rb_gc_location(rt->fiber);
  rt->block = rb_gc_location(rt->block);
  rt->result = rb_gc_location(rt->result);
}
static void task_dfree(void *p) {
  rtask *rt = p;
  rill_task *t = rt->task;
  rt->self = rt->fiber = rt->block = rt->result = Qnil;
  rt->task = NULL;
  rt->refs++;           /* keep rt while rill lets go of it */
  rill_task_release(t); /* may run rt_unref (payload): never Ruby */
  rt->refs -= 2;        /* that extra and the Task object's */
  if (rt->refs == 0) free(rt);
}
static size_t task_memsize(const void *p) { (void)p; return sizeof(rtask); }
static const rb_data_type_t task_type = {
  .wrap_struct_name = "rill/task",
  .function = {.dmark = task_mark, .dfree = task_dfree, .dsize = task_memsize, .dcompact = task_compact},
};

static rtask *rr_task_get(VALUE obj) { return rb_check_typeddata(obj, &task_type); }

/* The Ruby task running now, checked to be running on its own fiber. */
static rtask *rr_current_rtask(const char *what) {
  rill_task *t = rill_current_task();
  rtask *rt = t ? (rtask *)rill_task_arg(t) : NULL;
  if (!rt || rt->magic != RR_MAGIC || rt->task != t) {
    if (!rill_loop_current()) rb_raise(eError, "%s outside Rill.run", what);
    rb_raise(eError, "%s outside a Rill task (e.g. in a callback)", what);
  }
  if (rt->fiber != rb_fiber_current())
    rb_raise(eError, "%s from a Fiber that is not the task's own", what);
  return rt;
}

/* ---- fiber slots ---- */

static long rr_compute_fiber_cap(void) {
  const char *env = getenv("RILL_RUBY_MAX_FIBERS");
  if (env && atol(env) > 0) return atol(env);
  long max_maps = 65530, used = 0;
  FILE *fp = fopen("/proc/sys/vm/max_map_count", "r");
  if (fp) {
    if (fscanf(fp, "%ld", &max_maps) != 1) max_maps = 65530;
    fclose(fp);
  }
  fp = fopen("/proc/self/maps", "r");
  if (fp) {
    int c;
    while ((c = fgetc(fp)) != EOF)
      if (c == '\n') used++;
    fclose(fp);
  }
  /* Two maps per fiber stack; Ruby's fiber pool grows by up to 1024
   * stacks at once; keep room for the rest of the process. */
  long cap = (max_maps - used - 2 * 1024 - 3000) / 2;
  return cap < 64 ? 64 : cap;
}

static void slotq_remove(rtask *rt) {
  if (!rt->queued) return;
  rloop *lp = rt->lp;
  if (rt->qprev) rt->qprev->qnext = rt->qnext;
  else lp->slotq_head = rt->qnext;
  if (rt->qnext) rt->qnext->qprev = rt->qprev;
  else lp->slotq_tail = rt->qprev;
  rt->qprev = rt->qnext = NULL;
  rt->queued = 0;
}

/* Idle fibers: a task's fiber, once its block is done, parks (yields)
 * and is reused by the next task that starts; this avoids Ruby's costly
 * fiber creation (stack mmap/munmap and page faults) per task. */
#define RR_IDLE_MAX 1024

/* Fibers cannot be resumed across threads: the idle list serves one thread. */
static int idle_usable(void) { return idle_n > 0 && rb_thread_current() == idle_owner; }
static VALUE idle_pop(void) { return idle_fibers[--idle_n]; }

static int idle_push(VALUE fib) {
  if (idle_n == 0) idle_owner = rb_thread_current();
  else if (idle_owner != rb_thread_current()) return 0;
  if (idle_n == idle_capa) {
    long nc = idle_capa ? idle_capa * 2 : 64;
    VALUE *p = realloc(idle_fibers, (size_t)nc * sizeof *p);
    if (!p) return 0;
    idle_fibers = p;
    idle_capa = nc;
  }
  idle_fibers[idle_n++] = fib;
  return 1;
}

/* Give freed room (a fiber slot, or an idle fiber) to the waiting tasks. */
static void grant_slots(rloop *lp) {
  while (lp->slotq_head && (idle_usable() || live_fibers + idle_n < fiber_cap)) {
    rtask *w = lp->slotq_head;
    slotq_remove(w);
    if (!w->slot || rill_future_set_none(w->slot) != 0) continue;
    w->has_slot = 1;
    live_fibers++;
    if (idle_usable()) w->fiber = idle_pop();
  }
}

/* A parked fiber (its task is done, or it was never used): to the idle
 * list, from which waiting tasks of this loop get it at once. */
static void park_fiber(rloop *lp, VALUE fib) {
  /* Kept even past RR_IDLE_MAX while the loop runs: ending a fiber now
   * costs a syscall (its stack goes back to Ruby's pool with madvise);
   * Rill.run trims the list when it returns. */
  if (!idle_push(fib)) {
    /* another thread's list, or no memory: drop it (the GC reclaims it) */
  }
  grant_slots(lp);
}

/* At the end of Rill.run: keep RR_IDLE_MAX idle fibers, let the GC have
 * the others. */
static void trim_idle(void) {
  if (idle_n > RR_IDLE_MAX) {
    for (long i = RR_IDLE_MAX; i < idle_n; i++) idle_fibers[i] = Qnil;
    idle_n = RR_IDLE_MAX;
  }
}

/* The task gives back its slot: its fiber is parked (finished or never
 * started) or abandoned (suspended mid-body when the task is destroyed). */
static void slot_release(rtask *rt) {
  VALUE fib = rt->fiber;
  rt->fiber = Qnil;
  if (!rt->has_slot) return;
  rt->has_slot = 0;
  live_fibers--;
  if (!NIL_P(fib) && (rt->finished || !rt->started)) park_fiber(rt->lp, fib);
  else grant_slots(rt->lp);
}

/* ---- results ---- */

static void rr_complete(rtask *rt, int state, VALUE v) {
  rill_future *f = rill_task_future(rt->task);
  if (!state) {
    rt->result = v;
    rt->failed = 0;
    switch (TYPE(v)) {
    case T_NIL: rill_future_set_none(f); return;
    case T_TRUE: rill_future_set_bool(f, 1); return;
    case T_FALSE: rill_future_set_bool(f, 0); return;
    case T_FIXNUM: rill_future_set_int(f, (int64_t)FIX2LONG(v)); return;
    case T_FLOAT: rill_future_set_double(f, RFLOAT_VALUE(v)); return;
    case T_STRING: rill_future_set_bytes(f, RSTRING_PTR(v), (size_t)RSTRING_LEN(v)); return;
    default:
      rt->refs++;
      if (rill_future_set_pointer(f, rt, rt_unref, RR_TAG)) rt->refs--;
      return;
    }
  }
  /* failed */
  VALUE exc = rb_errinfo();
  rb_set_errinfo(Qnil);
  if (!rb_obj_is_kind_of(exc, rb_eException))
    exc = rb_exc_new_cstr(eError, "the task's block left by throw/break");
  rt->result = exc;
  rt->failed = 1;
  int code = rb_obj_is_kind_of(exc, eCancelled) ? RILL_ECANCELLED : RILL_EEXCEPTION;
  /* The message foreign readers see: "Class: message". */
  char buf[256];
  const char *cls = rb_obj_classname(exc);
  int st = 0;
  VALUE m = rb_protect(rb_obj_as_string, exc, &st);
  if (st) rb_set_errinfo(Qnil);
  if (code == RILL_ECANCELLED)
    snprintf(buf, sizeof buf, "%s", (!st && RB_TYPE_P(m, T_STRING) && strcmp(StringValueCStr(m), cls)) ? StringValueCStr(m) : "");
  else
    snprintf(buf, sizeof buf, "%s: %s", cls, (!st && RB_TYPE_P(m, T_STRING)) ? StringValueCStr(m) : "?");
  rt->refs++;
  rill_future_fail(f, code, buf, rt, rt_unref, RR_TAG);
}

static VALUE rr_call_block(VALUE p) {
  rtask *rt = (rtask *)p;
  return rb_proc_call_with_block(rt->block, 0, NULL, Qnil);
}

/* The body of every task fiber: runs tasks one after the other, parking
 * (yielding to the step) between two. */
static VALUE fiber_body(RB_BLOCK_CALL_FUNC_ARGLIST(yielded, cbarg)) {
  (void)yielded;
  (void)cbarg;
  (void)argc;
  (void)argv;
  (void)blockarg;
  for (;;) {
    rill_task *t = rill_current_task();
    rtask *rt = (rtask *)rill_task_arg(t);
    int state = 0;
    rt->ran = 1;
    volatile VALUE v = rb_protect(rr_call_block, (VALUE)rt, &state);
    rr_complete(rt, state, v);
    v = Qnil;
    rt->finished = 1;
    rt = NULL;
    rb_fiber_yield(0, NULL); /* parked until the next task starts on it */
  }
  return Qnil;
}

static VALUE rr_resume(VALUE fiber) { return rb_fiber_resume(fiber, 0, NULL); }
static VALUE rr_new_fiber(VALUE unused) {
  (void)unused;
  return rb_fiber_new(fiber_body, Qnil);
}

static void rr_fail_cancelled(rill_task *t) {
  rill_future_fail(rill_task_future(t), RILL_ECANCELLED, rill_task_cancel_message(t), NULL, NULL, NULL);
}

static void slotq_append(rtask *rt) {
  rloop *lp = rt->lp;
  rt->queued = 1;
  rt->qprev = lp->slotq_tail;
  rt->qnext = NULL;
  if (lp->slotq_tail) lp->slotq_tail->qnext = rt;
  else lp->slotq_head = rt;
  lp->slotq_tail = rt;
}

/* The step of every Ruby task: start (or resume) its fiber. */
static void ruby_step(rill_task *t, void *arg) {
  rtask *rt = arg;
  int state = 0;
  if (!rt->started) {
    if (rt->slot) { /* woken from the slot queue (granted, or cancelled there) */
      int st = rill_future_state(rt->slot);
      rill_future_release(rt->slot);
      rt->slot = NULL;
      if (st == RILL_CANCELLED) {
        slot_release(rt);
        rr_fail_cancelled(t);
        return;
      }
    }
    if (rill_task_cancel_requested(t) == 1) { /* never started: the body never runs */
      slot_release(rt);
      rr_fail_cancelled(t);
      return;
    }
    if (!rt->has_slot) {
      if (!fiber_cap) fiber_cap = rr_compute_fiber_cap();
      if (!idle_usable() && live_fibers + idle_n >= fiber_cap) goto wait_slot;
      rt->has_slot = 1;
      live_fibers++;
    }
    if (NIL_P(rt->fiber)) {
      if (idle_usable()) {
        rt->fiber = idle_pop();
      } else {
        VALUE fib = rb_protect(rr_new_fiber, Qnil, &state);
        if (state) goto start_failed;
        rt->fiber = fib;
      }
    }
    rt->started = 1;
  }
  rb_protect(rr_resume, rt->fiber, &state);
  if (state) {
    /* The body never lets an exception out, so the resume itself failed:
     * before the body ran, it is a start failure (no fiber stack). */
    if (!rt->ran) {
      rt->started = 0;
      rt->fiber = Qnil; /* a fiber that cannot start is dropped */
      goto start_failed;
    }
    if (!rt->finished && rill_future_state(rill_task_future(t)) == RILL_PENDING) {
      rr_complete(rt, 1, Qnil);
      rt->finished = 1;
      rt->fiber = Qnil; /* not parked: never reuse it */
    } else {
      rb_set_errinfo(Qnil);
    }
  }
  if (rt->finished) {
    rt->block = Qnil;
    slot_release(rt); /* parks the fiber for the next task */
  }
  if (deferred_reports) rr_flush_reports();
  return;

start_failed: {
    VALUE err = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (rt->has_slot) {
      rt->has_slot = 0;
      live_fibers--;
    }
    if (live_fibers > 0 && rb_obj_is_kind_of(err, eFiberError)) {
      fiber_cap = live_fibers + idle_n; /* the real limit of this process */
      goto wait_slot;
    }
    rb_set_errinfo(err);
    rr_complete(rt, 1, Qnil);
    rt->finished = 1;
    return;
  }
wait_slot:
  rt->slot = rill_future_new(rill_future_loop(rill_task_future(t)));
  if (!rt->slot || rill_task_wait(t, rt->slot)) {
    rill_future_release(rt->slot);
    rt->slot = NULL;
    rill_future_fail(rill_task_future(t), RILL_ENOMEM, "cannot queue the task for a fiber", NULL, NULL, NULL);
    return;
  }
  slotq_append(rt);
}

/* free_arg of rill_task_new: the task is done (or destroyed by loop
 * close). Never calls Ruby code. */
static void ruby_task_done(void *arg) {
  rtask *rt = arg;
  if (rt->pending) {
    if (rt->prev) rt->prev->next = rt->next;
    else pending_head = rt->next;
    if (rt->next) rt->next->prev = rt->prev;
    rt->prev = rt->next = NULL;
    rt->pending = 0;
  }
  slotq_remove(rt);
  if (rt->slot) {
    rill_future_release(rt->slot);
    rt->slot = NULL;
  }
  /* finished: parked already; destroyed mid-body: the fiber is abandoned
   * (collected by the GC without running its ensure clauses). */
  slot_release(rt);
  rt->fiber = Qnil;
  rt->block = Qnil;
  rt_unref(rt);
}

static VALUE rr_spawn(rloop *lp, VALUE block, VALUE name) {
  rtask *rt = calloc(1, sizeof *rt);
  if (!rt) rb_raise(rb_eNoMemError, "out of memory");
  rt->magic = RR_MAGIC;
  rt->refs = 1; /* the Task object's */
  rt->self = rt->fiber = rt->block = rt->result = Qnil;
  rt->lp = lp;
  VALUE obj = TypedData_Wrap_Struct(cTask, &task_type, rt);
  rt->self = obj;
  rt->block = block;
  const char *cname = NIL_P(name) ? NULL : StringValueCStr(name);
  rill_task *t = rill_task_new(lp->loop, ruby_step, rt, ruby_task_done);
  if (!t) rr_raise(rill_last_error());
  rt->task = t;
  rt->refs++; /* rill's (the arg, until ruby_task_done) */
  rt->pending = 1;
  rt->next = pending_head;
  if (pending_head) pending_head->prev = rt;
  pending_head = rt;
  if (cname) rill_task_set_name(t, cname);
  return obj;
}

/* ================================================================== */
/* Futures (gather, shield, wait_for, wait, group join)                 */
/* ================================================================== */

typedef struct rfut {
  rill_future *f;
  VALUE src;  /* the Task/Future whose value this future carries, or Qnil */
  VALUE kids; /* Array of children (gather/wait), or Qnil */
  unsigned gather : 1, wait : 1;
} rfut;
static void fut_mark(void *p) { rfut *r = p; rb_gc_mark_movable(r->src); rb_gc_mark_movable(r->kids); }
static void fut_compact(void *p) { rfut *r = p; r->src = rb_gc_location(r->src); r->kids = rb_gc_location(r->kids); }
static void fut_free(void *p) { rfut *r = p; rill_future_release(r->f); free(r); }
static size_t fut_memsize(const void *p) { (void)p; return sizeof(rfut); }
static const rb_data_type_t fut_type = {
  .wrap_struct_name = "rill/future",
  .function = {.dmark = fut_mark, .dfree = fut_free, .dsize = fut_memsize, .dcompact = fut_compact},
};

static VALUE rr_fut_wrap(rill_future *f, VALUE src, VALUE kids) {
  rfut *r = calloc(1, sizeof *r);
  if (!r) { rill_future_release(f); rb_raise(rb_eNoMemError, "out of memory"); }
  r->src = src;
  r->kids = kids;
  VALUE obj = TypedData_Wrap_Struct(cFuture, &fut_type, r);
  r->f = f;
  return obj;
}

/* The rill future of a Task or Future object; TypeError otherwise. */
static rill_future *rr_future_of(VALUE obj) {
  if (rb_typeddata_is_kind_of(obj, &task_type)) {
    rtask *rt = DATA_PTR(obj);
    return rill_task_future(rt->task);
  }
  if (rb_typeddata_is_kind_of(obj, &fut_type)) return ((rfut *)DATA_PTR(obj))->f;
  rb_raise(rb_eTypeError, "expected a Rill::Task or Rill::Future, got %s", rb_obj_classname(obj));
  return NULL;
}

/* Wait (from a task's fiber) until f is done. Raises CancelledError if the
 * task is cancelled meanwhile (the core cancels f too). */
static void rr_wait(rill_future *f, const char *what) {
  if (rill_future_done(f) == 1) return; /* done: no yield */
  rtask *rt = rr_current_rtask(what);
  int rc = rill_task_wait(rt->task, f);
  if (rc) rr_raise(rc);
  rb_fiber_yield(0, NULL);
  if (rill_task_cancel_requested(rt->task) == 1)
    rb_exc_raise(rr_exc_new(eCancelled, rill_task_cancel_message(rt->task)));
}

/* The value of a done future f (obj: its Task/Future object or Qnil); for
 * a failure, the exception (raised if raise_errors). */
static VALUE rr_outcome(VALUE obj, rill_future *f, int raise_errors);

static VALUE rr_native_value(rill_future *f) {
  int kind = rill_future_kind(f);
  switch (kind) {
  case RILL_NONE: return Qnil;
  case RILL_BOOL: { int b = 0; rill_future_bool(f, &b); return b ? Qtrue : Qfalse; }
  case RILL_INT: { int64_t i = 0; rill_future_int(f, &i); return LL2NUM(i); }
  case RILL_DOUBLE: { double d = 0; rill_future_double(f, &d); return DBL2NUM(d); }
  case RILL_BYTES: { size_t n = 0; const void *p = rill_future_bytes(f, &n); return rb_str_new(p, (long)n); }
  case RILL_POINTER: {
    rtask *src = rill_future_pointer(f, RR_TAG);
    if (src) return src->result;
    rb_raise(eError, "the future holds a value of another language");
  }
  default: rr_raise(kind);
  }
  return Qnil;
}

static VALUE rr_outcome(VALUE obj, rill_future *f, int raise_errors) {
  int st = rill_future_state(f);
  if (st == RILL_DONE) {
    if (!NIL_P(obj) && rb_typeddata_is_kind_of(obj, &task_type)) {
      rtask *rt = DATA_PTR(obj);
      return rt->result;
    }
    if (!NIL_P(obj) && rb_typeddata_is_kind_of(obj, &fut_type)) {
      rfut *r = DATA_PTR(obj);
      if (!NIL_P(r->src)) return rr_outcome(r->src, rr_future_of(r->src), raise_errors);
    }
    return rr_native_value(f);
  }
  if (st == RILL_PENDING) rb_raise(eError, "the task is not done");
  int code = rill_future_error(f); /* marks it retrieved */
  VALUE exc = rr_future_exception(f, code);
  if (raise_errors) rb_exc_raise(exc);
  return exc;
}

/* ================================================================== */
/* Module functions                                                     */
/* ================================================================== */

/* Rill::Ext.spawn(block, name) */
static VALUE m_spawn(VALUE self, VALUE block, VALUE name) {
  (void)self;
  if (!rb_obj_is_proc(block)) rb_raise(rb_eArgError, "Rill.spawn needs a block");
  rloop *lp = rr_running_loop();
  return rr_spawn(lp, block, name);
}

/* Rill.sleep(seconds) */
static VALUE m_sleep(VALUE self, VALUE secs) {
  (void)self;
  double d = NUM2DBL(secs);
  if (isnan(d)) rb_raise(rb_eArgError, "sleep: seconds is NaN");
  rtask *rt = rr_current_rtask("Rill.sleep");
  /* The core counts d from the clock at this call: never early. */
  int rc = d > 0 ? rill_task_sleep(rt->task, d) : rill_task_yield(rt->task);
  if (rc) rr_raise(rc);
  rb_fiber_yield(0, NULL);
  if (rill_task_cancel_requested(rt->task) == 1)
    rb_exc_raise(rr_exc_new(eCancelled, rill_task_cancel_message(rt->task)));
  return Qnil;
}

/* Rill::Ext.await(task_or_future) -> value (raises its exception) */
static VALUE m_await(VALUE self, VALUE obj) {
  (void)self;
  rill_future *f = rr_future_of(obj);
  if (rill_future_done(f) != 1) {
    if (!rill_current_task() && !rill_loop_current())
      rb_raise(eError, "Task#value on a pending task outside Rill.run");
    rr_wait(f, "Task#value");
  }
  return rr_outcome(obj, f, 1);
}

/* Rill::Ext.gather(array, return_exceptions) -> Array */
static VALUE m_gather(VALUE self, VALUE ary, VALUE ret_exc) {
  (void)self;
  Check_Type(ary, T_ARRAY);
  long n = RARRAY_LEN(ary);
  if (n == 0) return rb_ary_new();
  rloop *lp = rr_running_loop();
  VALUE kids = rb_ary_dup(ary);
  VALUE tmp;
  rill_future **futs = ALLOCV_N(rill_future *, tmp, n);
  for (long i = 0; i < n; i++) futs[i] = rr_future_of(RARRAY_AREF(kids, i));
  rill_future *g = rill_gather(lp->loop, (size_t)n, futs, RTEST(ret_exc) ? RILL_GATHER_RETURN_ERRORS : 0);
  ALLOCV_END(tmp);
  if (!g) rr_raise(rill_last_error());
  VALUE gobj = rr_fut_wrap(g, Qnil, kids);
  rr_wait(g, "Rill.gather");
  int st = rill_future_state(g);
  if (st != RILL_DONE) {
    int code = rill_future_error(g);
    rb_exc_raise(rr_future_exception(g, code));
  }
  VALUE out = rb_ary_new_capa(n);
  for (long i = 0; i < n; i++) {
    VALUE k = RARRAY_AREF(kids, i);
    rb_ary_push(out, rr_outcome(k, rr_future_of(k), 0));
  }
  RB_GC_GUARD(gobj);
  return out;
}

/* Rill::Ext.wait_for(task, timeout_or_nil) -> value */
static VALUE m_wait_for(VALUE self, VALUE task, VALUE timeout) {
  (void)self;
  rill_future *inner = rr_future_of(task);
  double d = NIL_P(timeout) ? RILL_FOREVER : NUM2DBL(timeout);
  if (isnan(d)) rb_raise(rb_eArgError, "wait_for: timeout is NaN");
  rloop *lp = rr_running_loop();
  rill_future *w = rill_wait_for(lp->loop, inner, d);
  if (!w) rr_raise(rill_last_error());
  VALUE wobj = rr_fut_wrap(w, task, Qnil);
  rr_wait(w, "Rill.wait_for");
  return rr_outcome(wobj, w, 1);
}

/* Rill::Ext.shield(task) -> Future */
static VALUE m_shield(VALUE self, VALUE task) {
  (void)self;
  rill_future *inner = rr_future_of(task);
  rloop *lp = rr_running_loop();
  rill_future *s = rill_shield(lp->loop, inner);
  if (!s) rr_raise(rill_last_error());
  return rr_fut_wrap(s, task, Qnil);
}

/* Rill::Ext.wait(array, mode, timeout_or_nil) -> [done, pending] */
static VALUE m_wait(VALUE self, VALUE ary, VALUE mode, VALUE timeout) {
  (void)self;
  Check_Type(ary, T_ARRAY);
  long n = RARRAY_LEN(ary);
  if (n == 0) rb_raise(rb_eArgError, "Rill.wait: the set of tasks is empty");
  double d = NIL_P(timeout) ? RILL_FOREVER : NUM2DBL(timeout);
  if (isnan(d)) rb_raise(rb_eArgError, "wait: timeout is NaN");
  rloop *lp = rr_running_loop();
  VALUE kids = rb_ary_dup(ary);
  VALUE tmp;
  rill_future **futs = ALLOCV_N(rill_future *, tmp, n);
  for (long i = 0; i < n; i++) futs[i] = rr_future_of(RARRAY_AREF(kids, i));
  rill_future *w = rill_wait(lp->loop, (size_t)n, futs, NUM2INT(mode), d);
  ALLOCV_END(tmp);
  if (!w) rr_raise(rill_last_error());
  VALUE wobj = rr_fut_wrap(w, Qnil, kids);
  rr_wait(w, "Rill.wait");
  if (rill_future_state(w) != RILL_DONE) rb_exc_raise(rr_future_exception(w, rill_future_error(w)));
  VALUE done = rb_ary_new(), pending = rb_ary_new();
  for (long i = 0; i < n; i++) {
    VALUE k = RARRAY_AREF(kids, i);
    rb_ary_push(rill_future_done(rr_future_of(k)) == 1 ? done : pending, k);
  }
  RB_GC_GUARD(wobj);
  return rb_assoc_new(done, pending);
}

/* Rill::Ext.current_task -> Task or nil */
static VALUE m_current_task(VALUE self) {
  (void)self;
  rill_task *t = rill_current_task();
  rtask *rt = t ? (rtask *)rill_task_arg(t) : NULL;
  if (!rt || rt->magic != RR_MAGIC || rt->task != t) return Qnil;
  return rt->self;
}

/* Rill::Ext.running_loop -> Loop or nil */
static VALUE m_running_loop(VALUE self) {
  (void)self;
  rill_loop *loop = rill_loop_current();
  rloop *lp = loop ? rr_loop_of(loop) : NULL;
  return lp ? lp->self : Qnil;
}

/* ---- Rill.run ---- */

/* The interrupt watchdog: while the loop waits in its poll (holding the
 * GVL), Ruby cannot act on Ctrl+C; this timer lets it, every 0.2 s. As in
 * asyncio, the first interrupt cancels the main task and Rill.run raises
 * it once the loop is done; a second one stops the loop. */
#define RR_WATCHDOG_S 0.2
static VALUE rr_check_ints(VALUE unused) {
  (void)unused;
  rb_thread_check_ints();
  return Qnil;
}
static void watchdog_run(void *arg) {
  rloop *lp = arg;
  int state = 0;
  if (!lp->watch || !lp->loop) return;
  rb_protect(rr_check_ints, Qnil, &state);
  if (state) {
    VALUE e = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (NIL_P(lp->interrupt)) {
      lp->interrupt = e;
      if (lp->main_task) rill_task_cancel(lp->main_task, "interrupted");
    } else {
      rill_loop_stop(lp->loop);
    }
  }
  rill_handle_release(rill_call_later(lp->loop, RR_WATCHDOG_S, watchdog_run, lp, NULL));
}

typedef struct {
  rloop *lp;
  VALUE block;
  VALUE main;
  int rc;
  int main_done; /* the main task finished before the loop returned */
} run_ctx;

static VALUE run_body(VALUE p) {
  run_ctx *c = (run_ctx *)p;
  c->main = rr_spawn(c->lp, c->block, rb_str_new_cstr("main"));
  rtask *rt = DATA_PTR(c->main);
  rill_future *f = rill_task_future(rt->task);
  c->lp->main_task = rt->task;
  c->lp->watch = 1;
  rill_handle_release(rill_call_later(c->lp->loop, RR_WATCHDOG_S, watchdog_run, c->lp, NULL));
  c->rc = rill_loop_run_until(c->lp->loop, f);
  c->main_done = rill_future_done(f) == 1;
  if (c->main_done) rill_future_error(f); /* retrieved: run returns/raises it */
  rill_loop_shutdown(c->lp->loop); /* asyncio.run's epilogue, done by the core */
  c->lp->watch = 0;
  c->lp->main_task = NULL;
  rr_flush_reports();
  return Qnil;
}

static VALUE run_ensure(VALUE p) {
  run_ctx *c = (run_ctx *)p;
  rloop *lp = c->lp;
  lp->watch = 0;
  lp->main_task = NULL;
  rill_loop_close(lp->loop); /* reports pending/unretrieved through the handler */
  rr_flush_reports();
  if (lp->prev) lp->prev->next = lp->next;
  else loops_head = lp->next;
  if (lp->next) lp->next->prev = lp->prev;
  lp->prev = lp->next = NULL;
  lp->active = 0;
  rill_loop_free(lp->loop);
  lp->loop = NULL;
  trim_idle();
  return Qnil;
}

/* Rill::Ext.run(block, debug) -> the block's value */
static VALUE m_run(VALUE self, VALUE block, VALUE debug) {
  (void)self;
  if (!rb_obj_is_proc(block)) rb_raise(rb_eArgError, "Rill.run needs a block");
  if (rill_loop_current()) rb_raise(eError, "Rill.run cannot be called from a running loop");
  rloop *lp = calloc(1, sizeof *lp);
  if (!lp) rb_raise(rb_eNoMemError, "out of memory");
  lp->self = lp->handler = lp->interrupt = Qnil;
  VALUE lobj = TypedData_Wrap_Struct(cLoop, &loop_type, lp);
  lp->self = lobj;
  lp->loop = rill_loop_new();
  if (!lp->loop) rr_raise(rill_last_error());
  rill_loop_set_exception_handler(lp->loop, loop_exception_fn, NULL, NULL);
  if (RTEST(debug)) rill_loop_set_debug(lp->loop, 1);
  lp->active = 1;
  lp->prev = NULL;
  lp->next = loops_head;
  if (loops_head) loops_head->prev = lp;
  loops_head = lp;
  run_ctx c = {lp, block, Qnil, 0, 0};
  rb_ensure(run_body, (VALUE)&c, run_ensure, (VALUE)&c);
  if (!NIL_P(lp->interrupt)) rb_exc_raise(lp->interrupt);
  VALUE main = c.main;
  rtask *rt = DATA_PTR(main);
  rill_future *f = rill_task_future(rt->task);
  if (!c.main_done) rb_raise(eError, "the loop stopped before the main task finished");
  VALUE v = rr_outcome(main, f, 1);
  RB_GC_GUARD(lobj);
  RB_GC_GUARD(main);
  return v;
}

/* ================================================================== */
/* Task methods                                                         */
/* ================================================================== */

static VALUE task_cancel(int argc, VALUE *argv, VALUE self) {
  rtask *rt = rr_task_get(self);
  VALUE msg = argc > 0 ? argv[0] : Qnil;
  if (argc > 1) rb_error_arity(argc, 0, 1);
  if (!NIL_P(msg)) StringValue(msg);
  if (rill_future_done(rill_task_future(rt->task)) == 1) return Qfalse;
  int rc = rill_task_cancel(rt->task, NIL_P(msg) ? NULL : StringValueCStr(msg));
  if (rc < 0) rr_raise(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE task_done_p(VALUE self) {
  return rill_future_done(rill_task_future(rr_task_get(self)->task)) == 1 ? Qtrue : Qfalse;
}
static VALUE task_cancelled_p(VALUE self) {
  return rill_future_state(rill_task_future(rr_task_get(self)->task)) == RILL_CANCELLED ? Qtrue : Qfalse;
}
static VALUE task_name(VALUE self) {
  return rb_str_new_cstr(rill_task_name(rr_task_get(self)->task));
}
static VALUE task_set_name(VALUE self, VALUE name) {
  rtask *rt = rr_task_get(self);
  int rc = rill_task_set_name(rt->task, StringValueCStr(name));
  if (rc) rr_raise(rc);
  return name;
}
/* nil if it succeeded, the exception if it failed; raises CancelledError
 * if cancelled, Rill::Error if pending. */
static VALUE task_exception(VALUE self) {
  rtask *rt = rr_task_get(self);
  rill_future *f = rill_task_future(rt->task);
  int st = rill_future_state(f);
  if (st == RILL_PENDING) rb_raise(eError, "the task is not done");
  if (st == RILL_DONE) return Qnil;
  VALUE e = rr_outcome(self, f, 0);
  if (st == RILL_CANCELLED) rb_exc_raise(e);
  return e;
}
static VALUE task_cancelling(VALUE self) { return INT2NUM(rill_task_cancelling(rr_task_get(self)->task)); }
static VALUE task_uncancel(VALUE self) { return INT2NUM(rill_task_uncancel(rr_task_get(self)->task)); }

/* Future methods (Task has its own) */
static rfut *rr_fut_get(VALUE obj) { return rb_check_typeddata(obj, &fut_type); }
static VALUE fut_cancel(int argc, VALUE *argv, VALUE self) {
  rfut *r = rr_fut_get(self);
  VALUE msg = argc > 0 ? argv[0] : Qnil;
  if (argc > 1) rb_error_arity(argc, 0, 1);
  if (!NIL_P(msg)) StringValue(msg);
  if (rill_future_done(r->f) == 1) return Qfalse;
  int rc = rill_future_cancel_msg(r->f, NIL_P(msg) ? NULL : StringValueCStr(msg));
  if (rc < 0) rr_raise(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE fut_done_p(VALUE self) { return rill_future_done(rr_fut_get(self)->f) == 1 ? Qtrue : Qfalse; }
static VALUE fut_cancelled_p(VALUE self) {
  return rill_future_state(rr_fut_get(self)->f) == RILL_CANCELLED ? Qtrue : Qfalse;
}

/* ================================================================== */
/* Loop methods, callbacks                                              */
/* ================================================================== */

typedef struct { rill_handle *h; } rhandle;
static void handle_free(void *p) { rhandle *r = p; rill_handle_release(r->h); free(r); }
static const rb_data_type_t handle_type = {
  .wrap_struct_name = "rill/handle",
  .function = {.dmark = NULL, .dfree = handle_free, .dsize = NULL, .dcompact = NULL},
};

static VALUE cb_call(VALUE proc) { return rb_proc_call_with_block(proc, 0, NULL, Qnil); }
static void cb_run(void *arg) {
  rcb *c = arg;
  int state = 0;
  rb_protect(cb_call, c->proc, &state);
  if (state) {
    VALUE exc = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (!rb_obj_is_kind_of(exc, rb_eException)) exc = Qnil;
    report_exc = exc;
    char buf[300];
    snprintf(buf, sizeof buf, "Exception in callback %s", NIL_P(exc) ? "(throw/break)" : rb_obj_classname(exc));
    if (c->lp->loop) rill_loop_report(c->lp->loop, buf, NULL);
    report_exc = Qnil;
  }
  if (deferred_reports) rr_flush_reports();
}
static void cb_free(void *arg) {
  rcb *c = arg;
  if (c->prev) c->prev->next = c->next;
  else cb_head = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c);
}

static VALUE rr_schedule(VALUE self, int later, double delay, VALUE proc) {
  rloop *lp = rr_loop_get(self);
  if (!rb_obj_is_proc(proc)) rb_raise(rb_eArgError, "a block is required");
  if (isnan(delay)) rb_raise(rb_eArgError, "delay is NaN");
  rhandle *rh = calloc(1, sizeof *rh);
  rcb *c = calloc(1, sizeof *c);
  if (!rh || !c) { free(rh); free(c); rb_raise(rb_eNoMemError, "out of memory"); }
  VALUE hobj = TypedData_Wrap_Struct(cHandle, &handle_type, rh);
  c->proc = proc;
  c->lp = lp;
  c->next = cb_head;
  if (cb_head) cb_head->prev = c;
  cb_head = c;
  rh->h = later ? rill_call_later(lp->loop, delay, cb_run, c, cb_free)
                : rill_call_soon(lp->loop, cb_run, c, cb_free);
  if (!rh->h) {
    int code = rill_last_error();
    cb_free(c);
    rr_raise(code);
  }
  return hobj;
}
static VALUE loop_call_soon(VALUE self) { return rr_schedule(self, 0, 0, rb_block_proc()); }
static VALUE loop_call_later(VALUE self, VALUE delay) {
  double d = NUM2DBL(delay);
  return rr_schedule(self, 1, d, rb_block_proc());
}
static VALUE loop_time(VALUE self) { return DBL2NUM(rill_loop_time(rr_loop_get(self)->loop)); }
static VALUE loop_stop(VALUE self) { rill_loop_stop(rr_loop_get(self)->loop); return Qnil; }
static VALUE loop_task_count(VALUE self) { return INT2NUM(rill_loop_task_count(rr_loop_get(self)->loop)); }
static VALUE loop_set_handler(VALUE self, VALUE handler) {
  rloop *lp = rb_check_typeddata(self, &loop_type);
  if (!NIL_P(handler) && !rb_respond_to(handler, id_call))
    rb_raise(rb_eTypeError, "the exception handler must respond to #call");
  lp->handler = handler;
  return handler;
}
static VALUE loop_get_handler(VALUE self) { return ((rloop *)rb_check_typeddata(self, &loop_type))->handler; }
static VALUE loop_set_debug(VALUE self, VALUE on) {
  int rc = rill_loop_set_debug(rr_loop_get(self)->loop, RTEST(on));
  if (rc) rr_raise(rc);
  return on;
}
static VALUE loop_dump_tasks(VALUE self) {
  char *s = rill_loop_dump_tasks(rr_loop_get(self)->loop);
  if (!s) rr_raise(rill_last_error());
  VALUE str = rb_str_new_cstr(s);
  rill_free(s);
  return str;
}
static VALUE loop_closed_p(VALUE self) { return ((rloop *)rb_check_typeddata(self, &loop_type))->loop ? Qfalse : Qtrue; }

static VALUE handle_cancel(VALUE self) {
  rhandle *rh = rb_check_typeddata(self, &handle_type);
  rill_handle_cancel(rh->h);
  return Qnil;
}
static VALUE handle_cancelled_p(VALUE self) {
  rhandle *rh = rb_check_typeddata(self, &handle_type);
  return rill_handle_cancelled(rh->h) == 1 ? Qtrue : Qfalse;
}

/* ================================================================== */
/* Timeout scopes, task groups                                          */
/* ================================================================== */

typedef struct { rill_timeout *to; } rtimeout;
static void timeout_free(void *p) { rtimeout *r = p; rill_timeout_release(r->to); free(r); }
static const rb_data_type_t timeout_type = {
  .wrap_struct_name = "rill/timeout",
  .function = {.dmark = NULL, .dfree = timeout_free, .dsize = NULL, .dcompact = NULL},
};

/* Rill::Ext.timeout_new(delay_or_nil) -> Timeout (scope on the current task) */
static VALUE m_timeout_new(VALUE self, VALUE delay) {
  (void)self;
  double d = NIL_P(delay) ? RILL_FOREVER : NUM2DBL(delay);
  if (isnan(d)) rb_raise(rb_eArgError, "timeout: delay is NaN");
  rtask *rt = rr_current_rtask("Rill.timeout");
  rtimeout *r = calloc(1, sizeof *r);
  if (!r) rb_raise(rb_eNoMemError, "out of memory");
  VALUE obj = TypedData_Wrap_Struct(cTimeout, &timeout_type, r);
  r->to = rill_timeout_new(rt->task, d);
  if (!r->to) rr_raise(rill_last_error());
  return obj;
}
static VALUE timeout_exit(VALUE self, VALUE rc) {
  rtimeout *r = rb_check_typeddata(self, &timeout_type);
  return INT2NUM(rill_timeout_exit(r->to, NUM2INT(rc)));
}
static VALUE timeout_expired_p(VALUE self) {
  rtimeout *r = rb_check_typeddata(self, &timeout_type);
  return rill_timeout_expired(r->to) == 1 ? Qtrue : Qfalse;
}
static VALUE timeout_reschedule(VALUE self, VALUE delay) {
  rtimeout *r = rb_check_typeddata(self, &timeout_type);
  double d = NIL_P(delay) ? RILL_FOREVER : NUM2DBL(delay);
  int rc = rill_timeout_reschedule(r->to, d);
  if (rc) rr_raise(rc);
  return Qnil;
}

typedef struct { rill_group *g; VALUE kids; } rgroup;
static void group_mark(void *p) { rb_gc_mark_movable(((rgroup *)p)->kids); }
static void group_compact(void *p) { rgroup *r = p; r->kids = rb_gc_location(r->kids); }
static void group_free(void *p) { rgroup *r = p; rill_group_release(r->g); free(r); }
static const rb_data_type_t group_type = {
  .wrap_struct_name = "rill/group",
  .function = {.dmark = group_mark, .dfree = group_free, .dsize = NULL, .dcompact = group_compact},
};

/* Rill::Ext.group_new -> Group (parent: the current task) */
static VALUE m_group_new(VALUE self) {
  (void)self;
  rtask *rt = rr_current_rtask("Rill.task_group");
  rgroup *r = calloc(1, sizeof *r);
  if (!r) rb_raise(rb_eNoMemError, "out of memory");
  r->kids = Qnil;
  VALUE obj = TypedData_Wrap_Struct(cGroup, &group_type, r);
  r->kids = rb_ary_new();
  r->g = rill_group_new(rill_future_loop(rill_task_future(rt->task)), rt->task);
  if (!r->g) rr_raise(rill_last_error());
  return obj;
}
static VALUE group_add(VALUE self, VALUE task) {
  rgroup *r = rb_check_typeddata(self, &group_type);
  rtask *rt = rr_task_get(task);
  rb_ary_push(r->kids, task);
  int rc = rill_group_add(r->g, rt->task);
  if (rc) rr_raise(rc);
  return task;
}
/* Joins with the body's code, waits for the children; returns finish's code. */
static VALUE group_join(VALUE self, VALUE body_rc) {
  rgroup *r = rb_check_typeddata(self, &group_type);
  rill_future *j = rill_group_join(r->g, NUM2INT(body_rc));
  if (!j) rr_raise(rill_last_error());
  int join_rc;
  if (rill_future_done(j) != 1) {
    rtask *rt = rr_current_rtask("task group join");
    int rc = rill_task_wait(rt->task, j);
    if (rc) rr_raise(rc);
    rb_fiber_yield(0, NULL);
    if (rill_task_cancel_requested(rt->task) == 1) {
      /* cancelled while the join was done already: wait for the children */
      join_rc = RILL_ECANCELLED;
      if (rill_future_done(j) != 1) {
        rill_future_cancel(j);
        rc = rill_task_wait(rt->task, j);
        if (rc) rr_raise(rc);
        rb_fiber_yield(0, NULL);
      }
    } else {
      join_rc = rill_future_error(j);
    }
  } else {
    join_rc = rill_future_error(j);
  }
  return INT2NUM(rill_group_finish(r->g, join_rc));
}
static VALUE group_errors(VALUE self) {
  rgroup *r = rb_check_typeddata(self, &group_type);
  size_t n = rill_group_error_count(r->g);
  VALUE out = rb_ary_new();
  for (size_t i = 0; i < n; i++) {
    rill_task *t = rill_group_error_child(r->g, i);
    rtask *rt = t ? (rtask *)rill_task_arg(t) : NULL;
    if (rt && rt->magic == RR_MAGIC && rt->failed) rb_ary_push(out, rt->result);
    else if (t) rb_ary_push(out, rr_future_exception(rill_task_future(t), rill_future_error(rill_task_future(t))));
  }
  return out;
}

/* Diagnostics: live fibers, the cap, queued tasks. */
static VALUE m_fiber_stats(VALUE self) {
  (void)self;
  long q = 0;
  for (rloop *lp = loops_head; lp; lp = lp->next)
    for (rtask *rt = lp->slotq_head; rt; rt = rt->qnext) q++;
  VALUE h = rb_hash_new();
  rb_hash_aset(h, ID2SYM(rb_intern("live")), LONG2NUM(live_fibers));
  if (!fiber_cap) fiber_cap = rr_compute_fiber_cap();
  rb_hash_aset(h, ID2SYM(rb_intern("cap")), LONG2NUM(fiber_cap));
  rb_hash_aset(h, ID2SYM(rb_intern("queued")), LONG2NUM(q));
  rb_hash_aset(h, ID2SYM(rb_intern("idle")), LONG2NUM(idle_n));
  return h;
}
static VALUE m_set_fiber_cap(VALUE self, VALUE n) {
  (void)self;
  long v = NUM2LONG(n);
  if (v < 1) rb_raise(rb_eArgError, "the fiber cap must be >= 1");
  fiber_cap = v;
  return n;
}
static VALUE m_pending_count(VALUE self) {
  (void)self;
  long n = 0;
  for (rtask *rt = pending_head; rt; rt = rt->next) n++;
  long c = 0;
  for (rcb *cb = cb_head; cb; cb = cb->next) c++;
  return rb_assoc_new(LONG2NUM(n), LONG2NUM(c));
}

static VALUE m_strerror(VALUE self, VALUE code) {
  (void)self;
  return rb_str_new_cstr(rill_strerror(NUM2INT(code)));
}

static void rr_init(VALUE mExtMod) {
  id_call = rb_intern("call");
  id_message = rb_intern("message");
  id_new = rb_intern("new");
  mRill = rb_define_module("Rill");
  eError = rb_define_class_under(mRill, "Error", rb_eStandardError);
  eCancelled = rb_define_class_under(mRill, "CancelledError", rb_eException);
  eTimeout = rb_define_class_under(mRill, "TimeoutError", rb_eStandardError);

  eFiberError = rb_const_get(rb_cObject, rb_intern("FiberError"));
  /* Non-NULL data: the GC skips dmark/dcompact of a T_DATA whose pointer is NULL. */
  static int registry_anchor;
  registry = TypedData_Wrap_Struct(rb_cObject, &registry_type, &registry_anchor);
  rb_gc_register_mark_object(registry);

  cTask = rb_define_class_under(mRill, "Task", rb_cObject);
  rb_undef_alloc_func(cTask);
  rb_define_method(cTask, "cancel", task_cancel, -1);
  rb_define_method(cTask, "done?", task_done_p, 0);
  rb_define_method(cTask, "cancelled?", task_cancelled_p, 0);
  rb_define_method(cTask, "name", task_name, 0);
  rb_define_method(cTask, "name=", task_set_name, 1);
  rb_define_method(cTask, "exception", task_exception, 0);
  rb_define_method(cTask, "cancelling", task_cancelling, 0);
  rb_define_method(cTask, "uncancel", task_uncancel, 0);

  cFuture = rb_define_class_under(mRill, "Future", rb_cObject);
  rb_undef_alloc_func(cFuture);
  rb_define_method(cFuture, "cancel", fut_cancel, -1);
  rb_define_method(cFuture, "done?", fut_done_p, 0);
  rb_define_method(cFuture, "cancelled?", fut_cancelled_p, 0);

  cLoop = rb_define_class_under(mRill, "Loop", rb_cObject);
  rb_undef_alloc_func(cLoop);
  rb_define_method(cLoop, "call_soon", loop_call_soon, 0);
  rb_define_method(cLoop, "call_later", loop_call_later, 1);
  rb_define_method(cLoop, "time", loop_time, 0);
  rb_define_method(cLoop, "stop", loop_stop, 0);
  rb_define_method(cLoop, "task_count", loop_task_count, 0);
  rb_define_method(cLoop, "exception_handler=", loop_set_handler, 1);
  rb_define_method(cLoop, "exception_handler", loop_get_handler, 0);
  rb_define_method(cLoop, "debug=", loop_set_debug, 1);
  rb_define_method(cLoop, "dump_tasks", loop_dump_tasks, 0);
  rb_define_method(cLoop, "closed?", loop_closed_p, 0);

  cHandle = rb_define_class_under(mRill, "Handle", rb_cObject);
  rb_undef_alloc_func(cHandle);
  rb_define_method(cHandle, "cancel", handle_cancel, 0);
  rb_define_method(cHandle, "cancelled?", handle_cancelled_p, 0);

  cTimeout = rb_define_class_under(mExtMod, "Timeout", rb_cObject);
  rb_undef_alloc_func(cTimeout);
  rb_define_method(cTimeout, "exit", timeout_exit, 1);
  rb_define_method(cTimeout, "expired?", timeout_expired_p, 0);
  rb_define_method(cTimeout, "reschedule", timeout_reschedule, 1);

  cGroup = rb_define_class_under(mExtMod, "Group", rb_cObject);
  rb_undef_alloc_func(cGroup);
  rb_define_method(cGroup, "add", group_add, 1);
  rb_define_method(cGroup, "join", group_join, 1);
  rb_define_method(cGroup, "errors", group_errors, 0);

  rb_define_const(mRill, "VERSION", rb_str_new_cstr(rill_version_string()));
  rb_define_module_function(mExtMod, "strerror", m_strerror, 1);
  rb_define_module_function(mExtMod, "run", m_run, 2);
  rb_define_module_function(mExtMod, "spawn", m_spawn, 2);
  rb_define_module_function(mRill, "sleep", m_sleep, 1);
  rb_define_module_function(mExtMod, "await", m_await, 1);
  rb_define_module_function(mExtMod, "gather", m_gather, 2);
  rb_define_module_function(mExtMod, "wait_for", m_wait_for, 2);
  rb_define_module_function(mExtMod, "shield", m_shield, 1);
  rb_define_module_function(mExtMod, "wait", m_wait, 3);
  rb_define_module_function(mExtMod, "current_task", m_current_task, 0);
  rb_define_module_function(mExtMod, "running_loop", m_running_loop, 0);
  rb_define_module_function(mExtMod, "timeout_new", m_timeout_new, 1);
  rb_define_module_function(mExtMod, "group_new", m_group_new, 0);
  rb_define_module_function(mExtMod, "fiber_stats", m_fiber_stats, 0);
  rb_define_module_function(mExtMod, "fiber_cap=", m_set_fiber_cap, 1);
  rb_define_module_function(mExtMod, "registry_counts", m_pending_count, 0);
}
%}

%init %{
  rr_init(mExt);
%}
