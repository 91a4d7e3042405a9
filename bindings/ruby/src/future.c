/* bindings/ruby/src/future.c - Rill::Future: futures of combinators, values of done futures. */
#include "rill_ruby.h"

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

VALUE rr_fut_wrap(rill_future *f, VALUE src, VALUE kids) {
  rfut *r = calloc(1, sizeof *r);
  if (!r) { rill_future_release(f); rb_raise(rb_eNoMemError, "out of memory"); }
  r->src = src;
  r->kids = kids;
  VALUE obj = TypedData_Wrap_Struct(cFuture, &fut_type, r);
  r->f = f;
  return obj;
}

/* The rill future of a Task or Future object; TypeError otherwise. */
rill_future *rr_future_of(VALUE obj) {
  if (rb_typeddata_is_kind_of(obj, &task_type)) return rill_task_future(rr_task_get(obj)->task);
  if (rb_typeddata_is_kind_of(obj, &fut_type)) return ((rfut *)DATA_PTR(obj))->f;
  rb_raise(rb_eTypeError, "expected a Rill::Task or Rill::Future, got %s", rb_obj_classname(obj));
  return NULL;
}

/* Wait (from a task's fiber) until f is done. Raises CancelledError if the
 * task is cancelled meanwhile (the core cancels f too). */
void rr_wait(rill_future *f, const char *what) {
  if (rill_future_done(f) == 1) return; /* done: no yield */
  rtask *rt = rr_current_rtask(what);
  int rc = rill_task_wait(rt->task, f);
  if (rc) rr_raise(rc);
  rb_fiber_yield(0, NULL);
  if (rill_task_cancel_requested(rt->task) == 1)
    rb_exc_raise(rr_exc_new(eCancelled, rill_task_cancel_message(rt->task)));
}

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

/* The value of a done future f (obj: its Task/Future object or Qnil); for
 * a failure, the exception (raised if raise_errors). */
VALUE rr_outcome(VALUE obj, rill_future *f, int raise_errors) {
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

void rr_init_future(VALUE mExt) {
  rb_define_method(cFuture, "cancel", fut_cancel, -1);
  rb_define_method(cFuture, "done?", fut_done_p, 0);
  rb_define_method(cFuture, "cancelled?", fut_cancelled_p, 0);
}
