/* bindings/ruby/src/task.c - Rill::Task: a rill step task that resumes a Fiber; Rill.sleep and awaiting. */
#include "rill_ruby.h"

static void task_mark(void *p) {
  rtask *rt = p;
  if (rt->pending && rt->lp) rb_gc_mark_movable(rt->lp->self); /* open while it is pending */
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
/* rt lives inside the core task (rill_task_new_inline): dropping the
 * Task object's reference may free it, so nothing touches rt after. */
static void task_dfree(void *p) {
  rtask *rt = p;
  rill_task *t = rt->task;
  rt->self = rt->fiber = rt->block = rt->result = Qnil;
  rt->task = NULL;
  rill_task_release(t); /* never runs Ruby */
}
static size_t task_memsize(const void *p) { (void)p; return sizeof(rtask); }
const rb_data_type_t task_type = {
  .wrap_struct_name = "rill/task",
  .function = {.dmark = task_mark, .dfree = task_dfree, .dsize = task_memsize, .dcompact = task_compact},
};

/* A Task object whose spawn failed (rr_spawn makes the object first) has
 * no task; ObjectSpace could still hand it out: refused, not followed. */
rtask *rr_task_get(VALUE obj) {
  rtask *rt = rb_check_typeddata(obj, &task_type);
  if (!rt) rb_raise(eError, "this Rill::Task was never spawned (its spawn raised)");
  return rt;
}

/* The Ruby task running now, checked to be running on its own fiber. */
rtask *rr_current_rtask(const char *what) {
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
    default: /* rt is inside the task, which outlives its own future's value */
      rill_future_set_pointer(f, rt, NULL, RR_TAG);
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
  rill_future_fail(f, code, buf, rt, NULL, RR_TAG);
}

static VALUE rr_call_block(VALUE p) {
  rtask *rt = (rtask *)p;
  return rb_proc_call_with_block(rt->block, 0, NULL, Qnil);
}

/* Fiber-local variables (Thread.current[:x] on a task's fiber) of the
 * task that just ended: deleted, so that the next task on the same fiber
 * starts with none, as on a fresh Fiber. Thread#keys and Thread#[]= read
 * and write the current fiber's storage; the root fiber's and the
 * thread's own variables (thread_variable_set) are not touched. Runs as
 * the ensure of the task's block, inside its rb_protect: an exception
 * here (an interrupt delivered now) fails the task as one raised by the
 * block would, it is never swallowed. */
static VALUE rr_clear_fiber_locals(VALUE p) {
  rtask *rt = (rtask *)p;
  VALUE th = rb_thread_current();
  VALUE keys = rb_funcall(th, rb_intern("keys"), 0);
  if (RB_TYPE_P(keys, T_ARRAY))
    for (long i = 0; i < RARRAY_LEN(keys); i++) {
      VALUE k = RARRAY_AREF(keys, i);
      if (SYMBOL_P(k)) rb_thread_local_aset(th, rb_sym2id(k), Qnil); /* nil deletes */
    }
  rt->locals_cleared = 1;
  return Qnil;
}

static VALUE rr_run_block(VALUE p) { return rb_ensure(rr_call_block, p, rr_clear_fiber_locals, p); }

/* The body of every task fiber: runs tasks one after the other, parking
 * (yielding to the step) between two. A fiber is reused only after its
 * body caught the task's end (value, exception, cancel): the rescue is
 * rb_protect, so the fiber's own frames are back at this loop. */
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
    rt->locals_cleared = 0;
    volatile VALUE v = rb_protect(rr_run_block, (VALUE)rt, &state);
    rr_complete(rt, state, v);
    v = Qnil;
    /* the reset did not finish (a frozen Thread, an interrupt): this
     * fiber is not reused */
    if (!rt->locals_cleared) rt->drop_fiber = 1;
    rt->finished = 1;
    rt = NULL;
    rb_fiber_yield(0, NULL); /* parked until the next task starts on it */
  }
  return Qnil;
}

static VALUE rr_resume(VALUE fiber) { return rb_fiber_resume(fiber, 0, NULL); }
/* A non-blocking fiber (Fiber.new(blocking: false)): Ruby sends the
 * blocking operations made on it (I/O, sleep, Mutex, Queue) to the
 * thread's Fiber scheduler, Rill::Scheduler (scheduler.c). rb_fiber_new
 * makes blocking ones. */
static VALUE rr_new_fiber(VALUE unused) {
  (void)unused;
  VALUE opts = rb_hash_new();
  rb_hash_aset(opts, ID2SYM(rb_intern("blocking")), Qfalse);
  return rb_block_call_kw(rb_const_get(rb_cObject, rb_intern("Fiber")), rb_intern("new"), 1, &opts, fiber_body, Qnil, RB_PASS_KEYWORDS);
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
    if (rt->drop_fiber) rt->fiber = Qnil; /* abandoned, parked at its yield */
    /* debug mode's report (task_describe) may still ask where the block
     * was defined; ruby_task_done drops it right after */
    if (rill_loop_get_debug(rill_future_loop(rill_task_future(t))) != 1) rt->block = Qnil;
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
  if (rt->sync_wait) { /* destroyed while waiting on a primitive (sync.c) */
    rill_future_release(rt->sync_wait);
    rt->sync_wait = NULL;
  }
  if (rt->slot) {
    rill_future_release(rt->slot);
    rt->slot = NULL;
  }
  /* finished: parked already; destroyed mid-body: the fiber is abandoned
   * (collected by the GC without running its ensure clauses). */
  slot_release(rt);
  rt->fiber = Qnil;
  rt->block = Qnil;
  /* rt's memory goes with the task's last reference */
}

/* ---- debug mode's slow-step report (rill_step_set_describer) ----
 * "Executing <Task A (entry: TEXT)> took 1.001 seconds": TEXT says what
 * the task's Fiber runs, as asyncio's Task repr does for a coroutine:
 * "LABEL running at FILE:LINE" while it is suspended (the innermost frame
 * of its backtrace outside rill's own rill.rb), "LABEL done, defined at
 * FILE:LINE" once its block returned (the block's source_location). LABEL
 * is Ruby's own name for the frame or block ("block in main", "worker"). */
typedef struct { rtask *rt; char *buf; size_t cap; } describe_call;

static int own_frame(VALUE path) {
  if (!RB_TYPE_P(path, T_STRING)) return 1;
  const char *p = RSTRING_PTR(path);
  long n = RSTRING_LEN(path);
  static const char lib[] = "/rill.rb";
  long k = (long)sizeof lib - 1;
  return (n >= k && !memcmp(p + n - k, lib, (size_t)k)) || !strncmp(p, "<internal:", 10);
}

/* Ruby's label of a block ("block in main"), or "block". */
static VALUE block_label(VALUE block) {
  VALUE iseq_class = rb_path2class("RubyVM::InstructionSequence");
  VALUE iseq = rb_funcall(iseq_class, rb_intern("of"), 1, block);
  VALUE label = NIL_P(iseq) ? Qnil : rb_funcall(iseq, rb_intern("label"), 0);
  return RB_TYPE_P(label, T_STRING) ? label : rb_str_new_cstr(rb_proc_lambda_p(block) ? "lambda" : "block");
}

static VALUE describe_body(VALUE p) {
  describe_call *d = (describe_call *)p;
  rtask *rt = d->rt;
  if (rt->finished || NIL_P(rt->fiber)) {
    if (NIL_P(rt->block)) return Qfalse;
    VALUE loc = rb_funcall(rt->block, rb_intern("source_location"), 0);
    if (!RB_TYPE_P(loc, T_ARRAY) || RARRAY_LEN(loc) < 2) return Qfalse;
    VALUE file = rb_obj_as_string(RARRAY_AREF(loc, 0));
    VALUE label = block_label(rt->block);
    snprintf(d->buf, d->cap, "%s %s, defined at %s:%ld", StringValueCStr(label),
             rt->finished ? "done" : "not started", StringValueCStr(file), NUM2LONG(RARRAY_AREF(loc, 1)));
    return Qtrue;
  }
  VALUE locs = rb_funcall(rt->fiber, rb_intern("backtrace_locations"), 0);
  if (!RB_TYPE_P(locs, T_ARRAY)) return Qfalse;
  ID id_path = rb_intern("path"), id_lineno = rb_intern("lineno");
  long n = RARRAY_LEN(locs);
  for (long i = 0; i < n; i++) {
    VALUE path = rb_funcall(RARRAY_AREF(locs, i), id_path, 0);
    if (own_frame(path)) continue;
    VALUE line = rb_funcall(RARRAY_AREF(locs, i), id_lineno, 0);
    /* a C method (Kernel#sleep, IO#read) reports its caller's place:
     * name the Ruby frame that called it */
    while (i + 1 < n && rb_equal(rb_funcall(RARRAY_AREF(locs, i + 1), id_path, 0), path) &&
           rb_equal(rb_funcall(RARRAY_AREF(locs, i + 1), id_lineno, 0), line))
      i++;
    VALUE label = rb_obj_as_string(rb_funcall(RARRAY_AREF(locs, i), rb_intern("label"), 0));
    snprintf(d->buf, d->cap, "%s running at %s:%ld", StringValueCStr(label), StringValueCStr(path), NUM2LONG(line));
    return Qtrue;
  }
  return Qfalse;
}

/* Called by the core on the loop's thread, right after the slow step, with
 * the GVL held; never raises (Ruby's $! is kept as it was). */
static int task_describe(rill_task *t, void *arg, char *buf, size_t cap) {
  rtask *rt = arg;
  (void)t;
  if (!rt || rt->magic != RR_MAGIC || !ruby_native_thread_p() || rb_during_gc()) return 0;
  describe_call d = {rt, buf, cap};
  VALUE err = rb_errinfo();
  int state = 0;
  VALUE ok = rb_protect(describe_body, (VALUE)&d, &state);
  rb_set_errinfo(err);
  return !state && ok == Qtrue;
}

/* One allocation per task: rt is the core task's inline state. The Task
 * object is made first, empty (a failed allocation leaves no task behind),
 * and gets rt once the task exists; nothing below it can raise. */
VALUE rr_spawn(rloop *lp, VALUE block, VALUE name) {
  const char *cname = NIL_P(name) ? NULL : StringValueCStr(name);
  VALUE obj = TypedData_Wrap_Struct(cTask, &task_type, NULL);
  rill_task *t = rill_task_new_inline(lp->loop, ruby_step, sizeof(rtask), ruby_task_done,
                                      RILL_TASK_SKIP_CANCELLED_START);
  if (!t) rr_raise(rill_last_error());
  rtask *rt = rill_task_arg(t); /* zeroed */
  rt->magic = RR_MAGIC;
  rt->self = obj;
  rt->fiber = rt->result = Qnil;
  rt->block = block;
  rt->lp = lp;
  rt->task = t; /* the Task object's reference; the loop holds its own until done */
  DATA_PTR(obj) = rt;
  rill_future_set_owner(rill_task_future(t), RR_TAG); /* its reports: Ruby's handler */
  rt->pending = 1;
  rt->next = pending_head;
  if (pending_head) pending_head->prev = rt;
  pending_head = rt;
  if (cname) rill_task_set_name(t, cname);
  return obj;
}

/* Rill::Ext.spawn(block, name) */
static VALUE m_spawn(VALUE self, VALUE block, VALUE name) {
  (void)self;
  if (!rb_obj_is_proc(block)) rb_raise(rb_eArgError, "Rill.spawn needs a block");
  rloop *lp = rr_running_loop();
  return rr_spawn(lp, block, name);
}

/* Rill.spawn(name: nil) { ... } -> Task: in C, as it is called once per
 * task (a Ruby method in between costs a frame and a keyword parse). */
static VALUE m_rill_spawn(int argc, VALUE *argv, VALUE self) {
  (void)self;
  VALUE opts = Qnil, block = Qnil, name = Qnil;
  rb_scan_args(argc, argv, "0:&", &opts, &block);
  if (!NIL_P(opts)) {
    static ID kw[1];
    if (!kw[0]) kw[0] = rb_intern("name");
    VALUE v[1];
    rb_get_kwargs(opts, kw, 0, 1, v); /* unknown keywords raise */
    if (v[0] != Qundef) name = v[0];
  }
  if (NIL_P(block)) rb_raise(rb_eArgError, "Rill.spawn needs a block");
  return rr_spawn(rr_running_loop(), block, name);
}

/* Rill.sleep(seconds) */
static VALUE m_sleep(VALUE self, VALUE secs) {
  (void)self;
  double d = NUM2DBL(secs);
  if (isnan(d)) rb_raise(rb_eArgError, "sleep: seconds is NaN");
  rtask *rt = rr_current_rtask("Rill.sleep");
  /* The core counts d from the clock at this call: never early. */
  int rc = rill_task_sleep(rt->task, d); /* d <= 0: the next iteration */
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

/* Rill::Ext.current_task -> Task or nil */
static VALUE m_current_task(VALUE self) {
  (void)self;
  rill_task *t = rill_current_task();
  rtask *rt = t ? (rtask *)rill_task_arg(t) : NULL;
  if (!rt || rt->magic != RR_MAGIC || rt->task != t) return Qnil;
  return rt->self;
}

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

void rr_init_task(VALUE mExt) {
  rill_step_set_describer(ruby_step, task_describe);
  rb_define_method(cTask, "cancel", task_cancel, -1);
  rb_define_method(cTask, "done?", task_done_p, 0);
  rb_define_method(cTask, "cancelled?", task_cancelled_p, 0);
  rb_define_method(cTask, "name", task_name, 0);
  rb_define_method(cTask, "name=", task_set_name, 1);
  rb_define_method(cTask, "exception", task_exception, 0);
  rb_define_method(cTask, "cancelling", task_cancelling, 0);
  rb_define_method(cTask, "uncancel", task_uncancel, 0);
  rb_define_module_function(mExt, "spawn", m_spawn, 2);
  rb_define_module_function(mRill, "sleep", m_sleep, 1);
  rb_define_module_function(mRill, "spawn", m_rill_spawn, -1);
  rb_define_module_function(mExt, "await", m_await, 1);
  rb_define_module_function(mExt, "current_task", m_current_task, 0);
}
