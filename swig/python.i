/* swig/python.i - the Python module rill._rill.
 *
 * SWIG wraps the shared interface (swig/rill.i: the error table as
 * constants, the Loop and Future handle classes, version and error names)
 * as builtin types. The objects asyncio code uses (EventLoop, Future,
 * Task, sleep, gather ...) and the task step are hand-written C in
 * bindings/python/src/rillpy.c, added to the same module at init, because
 * a SWIG proxy call per await would cost more than the whole step. */
%module(package="rill") rill

%{
#include "rillpy.h"
/* Raise the Python exception for a negative rill code and leave the
 * wrapper. The mapping is generated from RILL_ERRNO_MAP in rillpy.c. */
#define RILL_SWIG_RAISE(code) do { rillpy_raise_code(code); SWIG_fail; } while (0)
%}

%include "rill.i"

%init %{
  if (rillpy_init(m) < 0) return NULL;
%}
