/* bindings/ruby/src/errors.c - Exceptions: the Ruby exception of a rill code or of a failed future. */
#include "rill_ruby.h"

VALUE rr_exc_new(VALUE klass, const char *msg) {
  if (msg && *msg) return rb_exc_new_cstr(klass, msg);
  return rb_exc_new_str(klass, rb_class_name(klass));
}

static VALUE rr_path2class(VALUE name) { return rb_path2class((const char *)name); }

/* The class the shared table (bindings/common/rill_errors.h) names for
 * code; Rill::Error if that class is not loaded. */
static VALUE rr_class_for(int code) {
  const char *name = rill_ruby_class(code);
  int state = 0;
  VALUE klass;
  if (code == RILL_ECANCELLED) return eCancelled; /* the frequent ones, without a lookup */
  if (!strcmp(name, RILL_RB_DEFAULT)) return eError;
  klass = rb_protect(rr_path2class, (VALUE)name, &state);
  if (state) {
    rb_set_errinfo(Qnil);
    return eError;
  }
  return klass;
}

/* The one mapping of a rill code to a Ruby exception (message: the
 * failure's text, or NULL for the table's). Rill::Error's message is
 * "RILL_<NAME>: text"; every exception but a cancel carries @code. */
VALUE rr_exception(int code, const char *msg) {
  VALUE klass = rr_class_for(code), e;
  const char *name = rill_err_name(code);
  if (!msg || !*msg) msg = code == RILL_ECANCELLED ? NULL : rill_strerror(code);
  if (klass == eCancelled) return rr_exc_new(eCancelled, msg);
  if (klass == eError)
    e = rb_exc_new_str(eError, rb_sprintf("%s: %s", name ? name : "application error", msg));
  else
    e = rb_exc_new_cstr(klass, msg);
  rb_iv_set(e, "@code", INT2FIX(code));
  return e;
}

/* The exception for a rill status code, with the thread's last message
 * only if that message is about this code (rill_last_error() == code). */
VALUE rr_error_for(int code) {
  return rr_exception(code, rill_last_error() == code ? rill_last_error_message() : NULL);
}

void rr_raise(int code) { rb_exc_raise(rr_error_for(code)); }

/* The exception for a done-but-not-DONE future f, of outcome code. */
VALUE rr_future_exception(rill_future *f, int code) {
  rtask *src = (rtask *)rill_future_error_payload(f, RR_TAG);
  if (src && src->failed && !NIL_P(src->result)) return src->result;
  return rr_exception(code, rill_future_error_message(f));
}

/* Rill::Ext.error_for(code [, message]): the exception of a code (tests);
 * without a message, as a failing call raises it (rr_error_for). */
static VALUE m_error_for(int argc, VALUE *argv, VALUE self) {
  (void)self;
  if (argc < 1 || argc > 2) rb_error_arity(argc, 1, 2);
  if (argc == 1) return rr_error_for(NUM2INT(argv[0]));
  return rr_exception(NUM2INT(argv[0]), NIL_P(argv[1]) ? NULL : StringValueCStr(argv[1]));
}

/* Rill::Ext.error_table -> [[code, "ENAME", "Class"], ...]: the shared
 * table's Ruby column, every code of RILL_ERRNO_MAP (tests). */
static VALUE m_error_table(VALUE self) {
  VALUE out = rb_ary_new();
  (void)self;
#define RILL_ERROR_ROW(name, code, text, py, lua, rb) \
  rb_ary_push(out, rb_ary_new_from_args(3, INT2FIX(code), rb_str_new_cstr(rill_err_name(code) + 5), \
                                        rb_str_new_cstr(rb)));
  RILL_ERRNO_MAP(RILL_BINDING_ERROR_ROW)
#undef RILL_ERROR_ROW
  return out;
}

void rr_init_errors(VALUE mExt) {
  rb_define_module_function(mExt, "error_for", m_error_for, -1);
  rb_define_module_function(mExt, "error_table", m_error_table, 0);
}
