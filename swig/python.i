/* swig/python.i - the Python module rill._rill.
 *
 * SWIG wraps the shared interface (swig/rill.i: the error table as
 * constants, version and error names, the rill_rc typemap). The objects
 * asyncio code uses (EventLoop, Future, Task, sleep, gather ...) and the
 * task step are hand-written C in bindings/python/src/ (one file per
 * concern), added to the same module at init, because a SWIG proxy call
 * per await would cost more than the whole step. */
%module(package="rill") rill

%{
#include "rillpy.h"
/* Raise the Python exception for a negative rill code and leave the
 * wrapper. The mapping is bindings/common/rill_errors.h's Python column (errors.c). */
#define RILL_SWIG_RAISE(code) do { rillpy_raise_code(code); SWIG_fail; } while (0)
%}

/* Python's Loop and Future are rillpy's own types (LoopBase, PyFuture):
 * the shared interface's handle classes would be unused duplicates. */
#define RILL_SWIG_OWN_HANDLES

%include "rill.i"

%init %{
  if (rillpy_init(m) < 0) return NULL;
%}
