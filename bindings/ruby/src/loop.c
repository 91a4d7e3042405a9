/* bindings/ruby/src/loop.c - Rill::Loop: Rill.run, Rill::Loop.new's explicit loop, the exception handler, call_soon/call_later. */
#include "rill_ruby.h"
#include <poll.h>
#include <ruby/thread.h>

static void loop_mark(void *p) {
  rloop *lp = p;
  rb_gc_mark_movable(lp->handler);
  if (lp->owned && !lp->active) { /* between runs: its tasks and callbacks (module.c) */
    for (rtask *rt = pending_head; rt; rt = rt->next)
      if (rt->lp == lp) rb_gc_mark_movable(rt->self);
    for (rcb *c = cb_head; c; c = c->next)
      if (c->lp == lp) rb_gc_mark_movable(c->proc);
  }
}
static void loop_compact(void *p) {
  rloop *lp = p;
  lp->handler = rb_gc_location(lp->handler);
  lp->self = rb_gc_location(lp->self); /* moved itself (the registry marks only active loops) */
}
static void rr_loop_closed(void *p);
static void loop_free(void *p) {
  rloop *lp = p;
  /* A running loop is marked (registry, and the stack of its run), so it
   * is never freed here while running; a loop whose Rill.run ended, or
   * that was closed, has lp->loop == NULL; a host's loop is the host's. */
  if (lp->loop && !lp->attached) {
    /* Rill::Loop.new's loop collected without #close (during GC or at
     * exit): closed here in plain C. Its pending tasks are destroyed
     * without Ruby and the reports go to the core's default handler
     * (stderr), since Ruby cannot run now. During GC none of them is
     * suspended mid-body (such a task keeps its loop alive: module.c);
     * at exit Ruby frees no fiber, so dropping theirs is harmless. */
    rill_loop *loop = lp->loop;
    for (rtask *rt = pending_head; rt; rt = rt->next)
      if (rt->lp == lp) rt->fiber = Qnil;
    rill_loop_set_exception_handler(loop, NULL, NULL, NULL);
    rill_loop_set_binding(loop, RR_TAG, NULL, NULL); /* runs rr_loop_closed */
    lp->loop = NULL;
    rill_loop_free(loop);
  }
  free(lp);
}
static size_t loop_memsize(const void *p) { (void)p; return sizeof(rloop); }
static const rb_data_type_t loop_type = {
  .wrap_struct_name = "rill/loop",
  .function = {.dmark = loop_mark, .dfree = loop_free, .dsize = loop_memsize, .dcompact = loop_compact},
  /* freed in the sweep that finds it dead, before any other marking: its
   * tasks (dead with it) leave the pending list at once */
  .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

/* A new Rill::Loop for loop, linked among the active loops (marked by the
 * registry); attached: a host's loop, never closed or freed here. */
/* The core's free_state of a loop's binding state: the loop is closing
 * (maybe from a GC free: plain C only). */
static void rr_loop_closed(void *p) {
  rloop *lp = p;
  rr_loop_unlink(lp);
  if (lp->attached) lp->loop = NULL; /* the host frees it */
}

rloop *rr_loop_wrap(rill_loop *loop, int attached) {
  rloop *lp = calloc(1, sizeof *lp);
  if (!lp) rb_raise(rb_eNoMemError, "out of memory");
  lp->self = lp->handler = Qnil;
  lp->self = TypedData_Wrap_Struct(cLoop, &loop_type, lp);
  lp->loop = loop;
  lp->attached = attached;
  lp->slow_duration = 0.1; /* the core's default */
  int rc = rill_loop_set_binding(loop, RR_TAG, lp, rr_loop_closed);
  if (rc < 0) rr_raise(rc); /* lp: the Loop object's (GC) */
  rr_loop_link(lp);
  return lp;
}

/* On the active list: marked by the registry (while it runs, or while a
 * host's loop is open). */
void rr_loop_link(rloop *lp) {
  if (lp->active) return;
  lp->active = 1;
  lp->prev = NULL;
  lp->next = loops_head;
  if (loops_head) loops_head->prev = lp;
  loops_head = lp;
}

/* Off the active list: the loop is closed (Rill.run's end, or the host's),
 * or Rill::Loop.new's loop between two runs (collectable then). */
void rr_loop_unlink(rloop *lp) {
  if (!lp->active) return;
  if (lp->prev) lp->prev->next = lp->next;
  else loops_head = lp->next;
  if (lp->next) lp->next->prev = lp->prev;
  lp->prev = lp->next = NULL;
  lp->active = 0;
}

/* The Rill::Loop of a core loop: the binding state Ruby keeps on it. */
rloop *rr_loop_of(rill_loop *loop) { return loop ? rill_loop_binding(loop, RR_TAG) : NULL; }

rloop *rr_loop_get(VALUE obj) {
  rloop *lp = rb_check_typeddata(obj, &loop_type);
  if (!lp->loop) rb_exc_raise(rr_exception(RILL_ECLOSED, "the loop is closed"));
  return lp;
}

/* The running loop of this thread (as a rloop), or raise Rill::Error. */
rloop *rr_running_loop(void) {
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
      r->lp = rr_loop_of(loop);
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

/* A report without a future (a callback's exception, in report_exc): on
 * a host's loop where Ruby set a handler, to it; else the loop's. */
static void rr_report_to(rloop *lp, const char *message) {
  if (lp->attached && !NIL_P(lp->handler)) loop_exception_fn(lp->loop, message, NULL, NULL);
  else rill_loop_report(lp->loop, message, NULL);
}

void rr_flush_reports(void) {
  while (deferred_reports) {
    rr_report *r = deferred_reports;
    deferred_reports = r->next;
    rloop *lp = r->lp;
    rr_call_handler(lp, r->msg, Qnil);
    free(r->msg);
    free(r);
  }
}

/* Rill::Ext.running_loop -> Loop or nil */
static VALUE m_running_loop(VALUE self) {
  (void)self;
  rill_loop *loop = rill_loop_current();
  rloop *lp = loop ? rr_loop_of(loop) : NULL;
  return lp ? lp->self : Qnil;
}

/* ---- Rill.run ---- */

/* Loops of this process with the core's SIGINT cancel armed: while one
 * is, SIGINT's disposition is the core's (rill.rb must not probe it). */
static int sigint_armed;

typedef struct {
  rloop *lp;
  VALUE block;
  VALUE main;
  int rc;
  int main_done;   /* the main task finished before the loop returned */
  int sigint;      /* arm the core's Ctrl+C (SIGINT has Ruby's default handler) */
  int armed;
  int interrupted; /* SIGINTs that came while armed */
  rill_task *main_task;
  int halt;            /* a second interrupt: leave the loop now */
  VALUE pending;       /* what another thread or a signal raised into this one */
} run_ctx;

/* ---- driving the loop with the GVL released while it waits ----
 * Ruby has no public pair to release the GVL in the core's poll hook and
 * take it back in the next one, only rb_thread_call_without_gvl around a
 * function. So Rill.run drives the loop as a host does (rill_loop_backend_fd,
 * rill.h "embedding"): wait on the backend fd without the GVL for at most
 * rill_loop_backend_timeout(), then rill_loop_run_once(loop, 0) with it.
 * Other Ruby threads run while the loop waits; Ruby's unblocking function
 * (Thread#raise, Thread#kill, a signal with a Ruby handler) wakes the wait
 * with rill_loop_interrupt, and the interrupt is checked at once. */
typedef struct { int fd; double timeout; } backend_wait;
static void *wait_backend(void *p) {
  backend_wait *w = p;
  struct pollfd pfd = {.fd = w->fd, .events = POLLIN, .revents = 0};
  int ms = !isfinite(w->timeout) || w->timeout > 86400.0 ? -1 : (int)ceil(w->timeout * 1000.0);
  (void)poll(&pfd, 1, ms);
  return NULL;
}
static void wake_loop(void *loop) { rill_loop_interrupt(loop); }

static VALUE rr_check_ints(VALUE unused) {
  (void)unused;
  rb_thread_check_ints();
  return Qnil;
}
/* Ruby's pending interrupts (Thread#raise, Thread#kill, exit from another
 * thread, Interrupt/SignalException from a signal with Ruby's handler, trap
 * handlers run here). As asyncio.run does with an interrupt, the first one
 * cancels the main task and Rill.run re-raises it once the loop is done;
 * a second one (or one while no main task runs: the shutdown of leftover
 * tasks) leaves the loop at once. */
static void check_interrupts(run_ctx *c) {
  int state = 0;
  rb_protect(rr_check_ints, Qnil, &state);
  if (!state) return;
  VALUE e = rb_errinfo();
  rb_set_errinfo(Qnil);
  VALUE what = NIL_P(e) ? Qfalse : e; /* Qfalse: Thread#kill (no exception object) */
  if (NIL_P(c->pending) && c->main_task && rill_future_done(rill_task_future(c->main_task)) != 1) {
    c->pending = what;
    rill_task_cancel(c->main_task, "interrupted");
  } else {
    if (NIL_P(c->pending)) c->pending = what;
    c->halt = 1;
  }
}

/* Runs iterations until f is done (f NULL: forever), Loop#stop or a
 * second interrupt (an interrupt when no main task runs).
 * 0, RILL_ESTATE (stopped first), or a code of rill_loop_run_once. */
static int drive(run_ctx *c, rill_future *f) {
  rill_loop *loop = c->lp->loop;
  int fd = rill_loop_backend_fd(loop);
  if (fd < 0) { /* no pollable backend: the GVL stays held */
    if (f) return rill_loop_run_until(loop, f);
    rill_future *never = rill_future_new(loop); /* run_forever: until stop */
    if (!never) return rill_last_error();
    int rc = rill_loop_run_until(loop, never);
    rill_future_cancel(never);
    rill_future_release(never);
    return rc;
  }
  c->lp->stopped = 0;
  VALUE th = rb_thread_current();
  for (;;) {
    if (f && rill_future_done(f) == 1) return 0;
    if (c->lp->stopped || c->halt) return RILL_ESTATE;
    double t = rill_loop_backend_timeout(loop);
    if (t > 0) {
      backend_wait w = {fd, t};
      rb_thread_call_without_gvl2(wait_backend, &w, wake_loop, loop);
      check_interrupts(c);
      if (c->halt) return RILL_ESTATE;
    } else if (rb_thread_interrupted(th)) {
      check_interrupts(c); /* a busy loop sees them too */
    }
    int rc = rill_loop_run_once(loop, 0);
    if (rc < 0) return rc;
  }
}

/* asyncio.run's epilogue: the core's rill_loop_shutdown_tasks cancels the
 * tasks left and reports their failures; this drives the loop until that
 * is done, with the GVL released while it waits (an interrupt ends it too);
 * then rill_loop_shutdown joins the thread pool. */
static void shutdown_leftovers(run_ctx *c) {
  rill_loop *loop = c->lp->loop;
  if (c->halt) return;
  rill_future *done = rill_loop_shutdown_tasks(loop);
  int rc = done ? drive(c, done) : rill_last_error();
  rill_future_release(done);
  /* One round, as asyncio.run: tasks the clean-up started are left to
   * rill_loop_close (rill_loop_shutdown would run them with the GVL held). */
  if (rc == 0 && !c->halt && rill_loop_task_count(loop) == 0) rill_loop_shutdown(loop);
}

static VALUE run_body(VALUE p) {
  run_ctx *c = (run_ctx *)p;
  c->main = rr_spawn(c->lp, c->block, rb_str_new_cstr("main"));
  rtask *rt = DATA_PTR(c->main);
  rill_future *f = rill_task_future(rt->task);
  /* asyncio.run's Ctrl+C, the core's: the first SIGINT cancels main at
   * once (the loop is woken), a second one ends the process */
  c->armed = c->sigint && rill_loop_cancel_on_sigint(c->lp->loop, rt->task) == 0;
  sigint_armed += c->armed;
  c->main_task = rt->task;
  c->rc = drive(c, f);
  c->main_task = NULL;
  if (c->armed) c->interrupted = rill_loop_cancel_on_sigint(c->lp->loop, NULL);
  sigint_armed -= c->armed;
  c->armed = 0;
  c->main_done = rill_future_done(f) == 1;
  if (c->main_done) rill_future_error(f); /* retrieved: run returns/raises it */
  /* from here SIGINT is Ruby's again: Interrupt ends a shutdown that hangs */
  shutdown_leftovers(c);
  rr_flush_reports();
  return Qnil;
}

/* The end of Rill.run and of Loop#close: closes and frees the core loop. */
static void close_loop(rloop *lp) {
  lp->running = 0;
  rill_loop_close(lp->loop); /* reports pending/unretrieved through the handler */
  rr_flush_reports();
  rr_loop_unlink(lp);
  rill_loop_free(lp->loop);
  lp->loop = NULL;
  trim_idle();
}

static VALUE run_ensure(VALUE p) {
  run_ctx *c = (run_ctx *)p;
  rloop *lp = c->lp;
  if (c->armed) { /* left by a raise */
    rill_loop_cancel_on_sigint(lp->loop, NULL);
    sigint_armed--;
  }
  c->main_task = NULL;
  close_loop(lp);
  return Qnil;
}

/* Rill::Ext.run(block, debug, sigint) -> the block's value; Interrupt if
 * a SIGINT (sigint: armed) cancelled the main task. */
static VALUE m_run(VALUE self, VALUE block, VALUE debug, VALUE sigint) {
  (void)self;
  if (!rb_obj_is_proc(block)) rb_raise(rb_eArgError, "Rill.run needs a block");
  if (rill_loop_current()) rb_raise(eError, "Rill.run cannot be called from a running loop");
  rill_loop *loop = rill_loop_new();
  if (!loop) rr_raise(rill_last_error());
  rloop *lp = rr_loop_wrap(loop, 0);
  VALUE lobj = lp->self;
  rill_loop_set_exception_handler(lp->loop, loop_exception_fn, NULL, NULL);
  if (RTEST(debug)) rill_loop_set_debug(lp->loop, 1);
  run_ctx c = {lp, block, Qnil, 0, 0, RTEST(sigint), 0, 0, NULL, 0, Qnil};
  lp->running = 1;
  rb_ensure(run_body, (VALUE)&c, run_ensure, (VALUE)&c);
  if (c.pending == Qfalse) rb_thread_kill(rb_thread_current()); /* killed while it ran */
  if (!NIL_P(c.pending)) rb_exc_raise(c.pending);
  VALUE main = c.main;
  rtask *rt = DATA_PTR(main);
  rill_future *f = rill_task_future(rt->task);
  if (c.interrupted > 0 && rill_future_state(f) == RILL_CANCELLED) rb_raise(rb_eInterrupt, "%s", "");
  if (!c.main_done) rb_raise(eError, "the loop stopped before the main task finished");
  VALUE v = rr_outcome(main, f, 1);
  RB_GC_GUARD(lobj);
  RB_GC_GUARD(main);
  return v;
}

/* Rill::Ext.sigint_armed? */
static VALUE m_sigint_armed(VALUE self) {
  (void)self;
  return sigint_armed > 0 ? Qtrue : Qfalse;
}

/* ---- Rill::Loop.new: the explicit loop (asyncio's loop object) ----
 * run_until_complete / run_forever / close drive the core loop with the
 * same drive() as Rill.run (GVL released while it waits); between two
 * runs the loop keeps its tasks, which go on in the next run. rill.rb
 * sets the thread's Fiber scheduler around each call. */

/* Rill::Ext.loop_new(debug) -> Rill::Loop, open, not running. */
static VALUE m_loop_new(VALUE self, VALUE debug) {
  (void)self;
  rill_loop *loop = rill_loop_new();
  if (!loop) rr_raise(rill_last_error());
  rloop *lp = rr_loop_wrap(loop, 0);
  lp->owned = 1;
  rr_loop_unlink(lp); /* collectable while it does not run: loop_free closes it */
  rill_loop_set_exception_handler(loop, loop_exception_fn, NULL, NULL);
  if (RTEST(debug)) rill_loop_set_debug(loop, 1);
  return lp->self;
}

/* The loop of a run: open, its own (not a host's), not running, and no
 * other loop running on this thread (asyncio's RuntimeErrors). */
static rloop *loop_for_run(VALUE obj) {
  rloop *lp = rb_check_typeddata(obj, &loop_type);
  if (!lp->loop) rb_exc_raise(rr_exception(RILL_ECLOSED, "the loop is closed"));
  if (lp->attached) rb_raise(eError, "the host runs this loop (Rill.attach_loop), not Ruby");
  if (lp->running) rb_exc_raise(rr_exception(RILL_EBUSY, "the loop is already running"));
  if (rill_loop_current())
    rb_exc_raise(rr_exception(RILL_EBUSY, "another loop is running on this thread"));
  return lp;
}

typedef struct { run_ctx c; rill_future *until; int closing; } loop_run;

static VALUE loop_run_body(VALUE p) {
  loop_run *r = (loop_run *)p;
  if (r->closing) shutdown_leftovers(&r->c); /* as Rill.run ends */
  else r->c.rc = drive(&r->c, r->until);
  rr_flush_reports();
  return Qnil;
}
static VALUE loop_run_ensure(VALUE p) {
  loop_run *r = (loop_run *)p;
  if (r->closing) {
    close_loop(r->c.lp);
  } else {
    r->c.lp->running = 0;
    r->c.lp->stopped = 0;
    rr_loop_unlink(r->c.lp);
  }
  return Qnil;
}

/* Runs lp until until is done (NULL: until Loop#stop), or reaps its tasks
 * and closes it (closing); an interrupt (Thread#raise, a signal's
 * exception) leaves at once and is raised here, the loop still usable. */
static int loop_drive(rloop *lp, rill_future *until, int closing) {
  loop_run r;
  memset(&r, 0, sizeof r);
  r.c.lp = lp;
  r.c.block = r.c.main = r.c.pending = Qnil;
  r.until = until;
  r.closing = closing;
  lp->running = 1;
  rr_loop_link(lp); /* marked while it runs */
  rb_ensure(loop_run_body, (VALUE)&r, loop_run_ensure, (VALUE)&r);
  if (r.c.pending == Qfalse) rb_thread_kill(rb_thread_current()); /* killed while it ran */
  if (!NIL_P(r.c.pending)) rb_exc_raise(r.c.pending);
  return r.c.rc;
}

/* Rill::Ext.loop_run_until(loop, task_or_future) -> its value (raises its
 * exception); Rill::Error if the loop stopped first. */
static VALUE m_loop_run_until(VALUE self, VALUE lobj, VALUE obj) {
  (void)self;
  rloop *lp = loop_for_run(lobj);
  rill_future *f = rr_future_of(obj);
  if (rill_future_loop(f) != lp->loop) rb_raise(rb_eArgError, "the task or future belongs to another loop");
  int rc = loop_drive(lp, f, 0);
  if (rill_future_done(f) != 1) {
    if (rc < 0 && rc != RILL_ESTATE) rr_raise(rc);
    rb_raise(eError, "the loop stopped before the task completed");
  }
  VALUE v = rr_outcome(obj, f, 1);
  RB_GC_GUARD(lobj);
  RB_GC_GUARD(obj);
  return v;
}

/* Rill::Ext.loop_run_forever(loop): until Loop#stop. nil. */
static VALUE m_loop_run_forever(VALUE self, VALUE lobj) {
  (void)self;
  rloop *lp = loop_for_run(lobj);
  int rc = loop_drive(lp, NULL, 0);
  if (rc < 0 && rc != RILL_ESTATE) rr_raise(rc);
  RB_GC_GUARD(lobj);
  return Qnil;
}

/* Rill::Ext.loop_close(loop): as Rill.run ends, the tasks left are
 * cancelled and run to their end (they see CancelledError), then the loop
 * is closed. A closed loop: nothing; a running one: RILL_EBUSY. */
static VALUE m_loop_close(VALUE self, VALUE lobj) {
  (void)self;
  rloop *lp = rb_check_typeddata(lobj, &loop_type);
  if (!lp->loop) return Qnil;
  if (lp->running) rb_exc_raise(rr_exception(RILL_EBUSY, "cannot close a running loop"));
  if (lp->attached) rb_raise(eError, "the host closes this loop (Rill.attach_loop), not Ruby");
  if (rill_loop_current()) { /* another loop runs: this one cannot run its tasks' ends */
    lp->running = 1;
    rr_loop_link(lp);
    close_loop(lp); /* its pending tasks are destroyed and reported */
  } else {
    loop_drive(lp, NULL, 1);
  }
  RB_GC_GUARD(lobj);
  return Qnil;
}

static VALUE loop_running_p(VALUE self) {
  rloop *lp = rb_check_typeddata(self, &loop_type);
  return lp->running || (lp->loop && rill_loop_current() == lp->loop) ? Qtrue : Qfalse;
}
static VALUE loop_debug_p(VALUE self) {
  int rc = rill_loop_get_debug(rr_loop_get(self)->loop);
  if (rc < 0) rr_raise(rc);
  return rc ? Qtrue : Qfalse;
}
/* asyncio's slow_callback_duration: debug mode reports a callback or task
 * step that runs at least this long (seconds, > 0; 0.1 by default). */
static VALUE loop_set_slow(VALUE self, VALUE secs) {
  rloop *lp = rr_loop_get(self);
  double d = NUM2DBL(secs);
  int rc = rill_loop_set_slow_duration(lp->loop, d);
  if (rc) rr_raise(rc);
  lp->slow_duration = d;
  return secs;
}
static VALUE loop_get_slow(VALUE self) { return DBL2NUM(((rloop *)rb_check_typeddata(self, &loop_type))->slow_duration); }

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
    if (c->lp->loop) rr_report_to(c->lp, buf);
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

enum { RR_SOON, RR_LATER, RR_AT, RR_THREADSAFE };

/* Schedules proc on the loop; a Rill::Handle (nil for RR_THREADSAFE). */
static VALUE rr_schedule(VALUE self, int kind, double delay, VALUE proc) {
  rloop *lp = rr_loop_get(self);
  if (!rb_obj_is_proc(proc)) rb_raise(rb_eArgError, "a block is required");
  if (isnan(delay)) rb_raise(rb_eArgError, "delay is NaN");
  rhandle *rh = kind == RR_THREADSAFE ? NULL : calloc(1, sizeof *rh);
  rcb *c = calloc(1, sizeof *c);
  if ((kind != RR_THREADSAFE && !rh) || !c) { free(rh); free(c); rb_raise(rb_eNoMemError, "out of memory"); }
  VALUE hobj = rh ? TypedData_Wrap_Struct(cHandle, &handle_type, rh) : Qnil;
  c->proc = proc;
  c->lp = lp;
  c->next = cb_head;
  if (cb_head) cb_head->prev = c;
  cb_head = c;
  int failed;
  switch (kind) {
  case RR_SOON: failed = !(rh->h = rill_call_soon(lp->loop, cb_run, c, cb_free)); break;
  case RR_LATER: failed = !(rh->h = rill_call_later(lp->loop, delay, cb_run, c, cb_free)); break;
  case RR_AT: failed = !(rh->h = rill_call_at(lp->loop, delay, cb_run, c, cb_free)); break;
  default: failed = rill_call_soon_threadsafe(lp->loop, cb_run, c, cb_free) != 0; break;
  }
  if (failed) {
    int code = rill_last_error();
    cb_free(c);
    rr_raise(code);
  }
  return hobj;
}
static VALUE loop_call_soon(VALUE self) { return rr_schedule(self, RR_SOON, 0, rb_block_proc()); }
static VALUE loop_call_later(VALUE self, VALUE delay) {
  double d = NUM2DBL(delay);
  return rr_schedule(self, RR_LATER, d, rb_block_proc());
}
/* Loop#call_at(when) { }: at the loop's time when (Loop#time's clock). */
static VALUE loop_call_at(VALUE self, VALUE when) {
  double d = NUM2DBL(when);
  return rr_schedule(self, RR_AT, d, rb_block_proc());
}
/* Loop#call_soon_threadsafe { }: from any Ruby thread (a trap handler
 * too); the block runs on the loop's thread, which is woken. nil. */
static VALUE loop_call_soon_threadsafe(VALUE self) {
  return rr_schedule(self, RR_THREADSAFE, 0, rb_block_proc());
}
static VALUE loop_time(VALUE self) { return DBL2NUM(rill_loop_time(rr_loop_get(self)->loop)); }
static VALUE loop_stop(VALUE self) {
  rloop *lp = rr_loop_get(self);
  lp->stopped = 1; /* Rill.run drives the loop one iteration at a time */
  rill_loop_stop(lp->loop);
  return Qnil;
}
static VALUE loop_task_count(VALUE self) { return INT2NUM(rill_loop_task_count(rr_loop_get(self)->loop)); }
static VALUE loop_set_handler(VALUE self, VALUE handler) {
  rloop *lp = rb_check_typeddata(self, &loop_type);
  if (!NIL_P(handler) && !rb_respond_to(handler, id_call))
    rb_raise(rb_eTypeError, "the exception handler must respond to #call");
  if (lp->attached && lp->loop) {
    /* a host's loop: Ruby's handler gets the reports of Ruby's tasks only */
    int rc = rill_loop_set_binding_exception_handler(lp->loop, RR_TAG,
                                                     NIL_P(handler) ? NULL : loop_exception_fn, NULL, NULL);
    if (rc) rr_raise(rc);
  }
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

void rr_init_loop(VALUE mExt) {
  rb_define_method(cLoop, "call_soon", loop_call_soon, 0);
  rb_define_method(cLoop, "call_later", loop_call_later, 1);
  rb_define_method(cLoop, "call_at", loop_call_at, 1);
  rb_define_method(cLoop, "call_soon_threadsafe", loop_call_soon_threadsafe, 0);
  rb_define_method(cLoop, "time", loop_time, 0);
  rb_define_method(cLoop, "stop", loop_stop, 0);
  rb_define_method(cLoop, "task_count", loop_task_count, 0);
  rb_define_method(cLoop, "exception_handler=", loop_set_handler, 1);
  rb_define_method(cLoop, "exception_handler", loop_get_handler, 0);
  rb_define_method(cLoop, "debug=", loop_set_debug, 1);
  rb_define_method(cLoop, "dump_tasks", loop_dump_tasks, 0);
  rb_define_method(cLoop, "closed?", loop_closed_p, 0);
  rb_define_method(cLoop, "running?", loop_running_p, 0);
  rb_define_method(cLoop, "debug?", loop_debug_p, 0);
  rb_define_method(cLoop, "slow_callback_duration=", loop_set_slow, 1);
  rb_define_method(cLoop, "slow_callback_duration", loop_get_slow, 0);
  rb_define_method(cHandle, "cancel", handle_cancel, 0);
  rb_define_method(cHandle, "cancelled?", handle_cancelled_p, 0);
  rb_define_module_function(mExt, "run", m_run, 3);
  rb_define_module_function(mExt, "sigint_armed?", m_sigint_armed, 0);
  rb_define_module_function(mExt, "running_loop", m_running_loop, 0);
  rb_define_module_function(mExt, "loop_new", m_loop_new, 1);
  rb_define_module_function(mExt, "loop_run_until", m_loop_run_until, 2);
  rb_define_module_function(mExt, "loop_run_forever", m_loop_run_forever, 1);
  rb_define_module_function(mExt, "loop_close", m_loop_close, 1);
}
