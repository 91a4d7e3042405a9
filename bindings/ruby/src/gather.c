/* bindings/ruby/src/gather.c - Combinators: gather, wait_for, shield, wait. */
#include "rill_ruby.h"

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

void rr_init_gather(VALUE mExt) {
  rb_define_module_function(mExt, "gather", m_gather, 2);
  rb_define_module_function(mExt, "wait_for", m_wait_for, 2);
  rb_define_module_function(mExt, "shield", m_shield, 1);
  rb_define_module_function(mExt, "wait", m_wait, 3);
}
