/* bindings/ruby/src/timeout.c - Timeout scopes of the running task. */
#include "rill_ruby.h"

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

void rr_init_timeout(VALUE mExt) {
  rb_define_method(cTimeout, "exit", timeout_exit, 1);
  rb_define_method(cTimeout, "expired?", timeout_expired_p, 0);
  rb_define_method(cTimeout, "reschedule", timeout_reschedule, 1);
  rb_define_module_function(mExt, "timeout_new", m_timeout_new, 1);
}
