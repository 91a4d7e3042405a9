/* swig/rill.i - the SWIG interface shared by every language.
 *
 * Opaque handles become classes (Loop, Future, Task, Handle) with %extend;
 * status codes become exceptions. Each language file (swig/python.i,
 * swig/lua.i, swig/ruby.i) declares its %module, then defines
 *
 *   RILL_SWIG_RAISE(code)   a C statement that raises the language's
 *                           exception for the negative code (using
 *                           rill_err_name / rill_last_error_message) and
 *                           leaves the wrapper (SWIG_fail or rb_raise),
 *
 * then does %include "rill.i". Everything here is language-neutral: values
 * that need a language's objects (callbacks, arbitrary results, the task
 * step) are the language file's job, in hand-written C.
 */

%{
#include "rill.h"
typedef int rill_rc;
%}

#define RILL_API
%include "stdint.i"
/* Wrapped functions of rill.h that need no class; declared before the
 * %import below, which would otherwise mark them as imported (unwrapped). */
unsigned rill_version(void);
const char *rill_version_string(void);
const char *rill_strerror(int code);
const char *rill_err_name(int code);

/* The header's macros (the error table) without wrapping its declarations. */
%import "rill.h"

/* A status: >= 0 is a result, < 0 raises. */
typedef int rill_rc;
%typemap(ret) rill_rc %{
  if ($1 < 0) RILL_SWIG_RAISE($1);
%}

/* Constants from the one table in rill.h. */
%define RILL__ERR_CONST(name, code, text)
%constant int name = code;
%enddef
RILL_ERRNO_MAP(RILL__ERR_CONST)
%constant int PENDING = RILL_PENDING;
%constant int DONE = RILL_DONE;
%constant int FAILED = RILL_FAILED;
%constant int CANCELLED = RILL_CANCELLED;
%constant int KIND_NONE = RILL_NONE;
%constant int KIND_BOOL = RILL_BOOL;
%constant int KIND_INT = RILL_INT;
%constant int KIND_DOUBLE = RILL_DOUBLE;
%constant int KIND_BYTES = RILL_BYTES;
%constant int KIND_POINTER = RILL_POINTER;
%constant int GATHER_RETURN_ERRORS = RILL_GATHER_RETURN_ERRORS;
%constant int WAIT_FIRST_COMPLETED = RILL_WAIT_FIRST_COMPLETED;
%constant int WAIT_FIRST_ERROR = RILL_WAIT_FIRST_ERROR;
%constant int WAIT_ALL = RILL_WAIT_ALL;


/* %extend methods are written m_name so the C helpers SWIG generates
 * (struct_method) cannot collide with the real rill_* functions. */
%rename("%(strip:[m_])s", regextarget=1) "^m_";

/* A language whose runtime has its own Loop and Future types (Python's
 * rillpy) defines RILL_SWIG_OWN_HANDLES: no duplicate classes then. */
#ifndef RILL_SWIG_OWN_HANDLES
/* Constructors give NULL on failure: raise instead of returning nil/None. */
%exception rill_loop::rill_loop {
  $action
  if (!result) RILL_SWIG_RAISE(rill_last_error());
}
%exception rill_future::rill_future {
  $action
  if (!result) RILL_SWIG_RAISE(rill_last_error());
}

/* ---- Loop ---- */
%rename(Loop) rill_loop;
%nodefaultctor rill_loop;
%nodefaultdtor rill_loop;
typedef struct rill_loop {} rill_loop;
%newobject rill_loop::m_dump_tasks;
%extend rill_loop {
  rill_loop() {
    rill_loop *loop = rill_loop_new();
    return loop;
  }
  ~rill_loop() { rill_loop_free($self); }
  rill_rc m_close() { return rill_loop_close($self); }
  rill_rc m_is_closed() { return rill_loop_is_closed($self); }
  rill_rc m_run_once(double max_wait_s = 0.0) { return rill_loop_run_once($self, max_wait_s); }
  void m_stop() { rill_loop_stop($self); }
  double m_time() { return rill_loop_time($self); }
  rill_rc m_set_debug(int enabled) { return rill_loop_set_debug($self, enabled); }
  rill_rc m_get_debug() { return rill_loop_get_debug($self); }
  rill_rc m_set_slow_duration(double seconds) { return rill_loop_set_slow_duration($self, seconds); }
  rill_rc m_task_count() { return rill_loop_task_count($self); }
  char *m_dump_tasks() { return rill_loop_dump_tasks($self); }
}

/* ---- Future (the value kinds that every language shares) ---- */
%rename(Future) rill_future;
%nodefaultctor rill_future;
%nodefaultdtor rill_future;
typedef struct rill_future {} rill_future;
%extend rill_future {
  rill_future(rill_loop *loop) { return rill_future_new(loop); }
  ~rill_future() { rill_future_release($self); }
  rill_rc m_state() { return rill_future_state($self); }
  rill_rc m_done() { return rill_future_done($self); }
  rill_rc m_cancel(const char *message = NULL) { return rill_future_cancel_msg($self, message); }
  rill_rc m_kind() { return rill_future_kind($self); }
  rill_rc m_set_none() { return rill_future_set_none($self); }
  rill_rc m_set_bool(int value) { return rill_future_set_bool($self, value); }
  rill_rc m_set_int(int64_t value) { return rill_future_set_int($self, value); }
  rill_rc m_set_double(double value) { return rill_future_set_double($self, value); }
  rill_rc m_fail(int code, const char *message = NULL) {
    return rill_future_fail($self, code, message, NULL, NULL, NULL);
  }
  /* The outcome code: 0 done, the failure code, RILL_ECANCELLED. */
  int m_error() { return rill_future_error($self); }
  const char *m_error_message() { return rill_future_error_message($self); }
}
#endif /* RILL_SWIG_OWN_HANDLES */
