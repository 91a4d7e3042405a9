/* bindings/ruby/src/errors.c - Exceptions: the Ruby exception of a rill code or of a failed future. */
#include "rill_ruby.h"

VALUE rr_exc_new(VALUE klass, const char *msg) {
  if (msg && *msg) return rb_exc_new_cstr(klass, msg);
  return rb_exc_new_str(klass, rb_class_name(klass));
}

/* The exception for a rill status code, with the thread's last message
 * only if that message is about this code (rill_last_error() == code). */
VALUE rr_error_for(int code) {
  const char *msg = rill_last_error() == code ? rill_last_error_message() : NULL;
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

void rr_raise(int code) { rb_exc_raise(rr_error_for(code)); }

/* The exception for a done-but-not-DONE future f, of outcome code. */
VALUE rr_future_exception(rill_future *f, int code) {
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
