/* swig/ruby.i - the Ruby 3.1 binding of rill: module Rill::Ext, loaded by
 * bindings/ruby/lib/rill.rb.
 *
 * SWIG wraps the shared interface (swig/rill.i: the error table as
 * constants, the Loop and Future handle classes); the Ruby runtime (tasks
 * on Fibers, values, exceptions, Rill.run) is hand-written C in
 * bindings/ruby/src/, one file per concern, set up by rr_init. */
%module "rill::ext"

%{
#include "rill_ruby.h"
%}

/* The one exception raiser of rill.i's wrappers (bindings/ruby/src/errors.c). */
#define RILL_SWIG_RAISE(code) rb_exc_raise(rr_error_for(code))
%{
#define RILL_SWIG_RAISE(code) rb_exc_raise(rr_error_for(code))
%}

%include "rill.i"

%{
/* For Rill.attach_loop / Rill.wrap_future (bindings/ruby/src/embed.c). */
void *rr_swig_pointer(VALUE obj, int is_loop) {
  void *p = NULL;
  swig_type_info *type = is_loop ? SWIGTYPE_p_rill_loop : SWIGTYPE_p_rill_future;
  return SWIG_ConvertPtr(obj, &p, type, 0) == SWIG_OK ? p : NULL;
}
%}

%init %{
  rr_init(mExt);
%}
