/* rillpy.h - the hand-written part of the Python binding: the C types the
 * package `rill` is built on (event loop, Future, Task, sleep, handles) and
 * the task step that drives a coroutine on a rill_task. The SWIG module
 * (swig/python.i) calls rillpy_init() from its init function and
 * rillpy_raise_code() for RILL_SWIG_RAISE. */
#ifndef RILLPY_H
#define RILLPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Adds the types and functions to the extension module; -1 on error. */
int rillpy_init(PyObject *module);
/* Sets the Python exception for a negative rill code, with the core's
 * last error message when it belongs to this code. Returns NULL. */
PyObject *rillpy_raise_code(int code);

#endif
