/* embed.c - embedding: wrapping a host's rill_loop and rill_future. */
#include "rillpy_int.h"

/* Embedding: _attach_loop(cls, address) -> a cls (a LoopBase subclass)
 * over the host's rill_loop* at address, which it neither closes nor frees;
 * the host runs it (rill_loop_run & co, with the GIL held) and frees it
 * after the last Python object of it is gone or done. */
PyObject *mod_attach_loop(PyObject *mod, PyObject *args) {
  (void)mod;
  PyTypeObject *type;
  PyObject *addr;
  if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &type, &addr)) return NULL;
  if (!PyType_IsSubtype(type, &LoopType)) {
    PyErr_SetString(PyExc_TypeError, "_attach_loop: a LoopBase subclass is required");
    return NULL;
  }
  rill_loop *rl = PyLong_AsVoidPtr(addr);
  if (!rl) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "_attach_loop: NULL loop address");
    return NULL;
  }
  if (rill_loop_is_closed(rl) != 0) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  PyLoop *self = (PyLoop *)type->tp_alloc(type, 0);
  if (!self) return NULL;
  self->loop = rl;
  self->borrowed = 1;
  return (PyObject *)self;
}

/* Embedding: _wrap_future(address, loop) -> a rill.Future holding its own
 * reference to the rill_future* at address (a future of loop's rill_loop). */
PyObject *mod_wrap_future(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *addr, *loopobj;
  if (!PyArg_ParseTuple(args, "OO!", &addr, &LoopType, &loopobj)) return NULL;
  rill_future *f = PyLong_AsVoidPtr(addr);
  if (!f) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "_wrap_future: NULL future address");
    return NULL;
  }
  PyLoop *loop = (PyLoop *)loopobj;
  if (rill_future_loop(f) != loop->loop) {
    PyErr_SetString(PyExc_ValueError, "_wrap_future: the future belongs to another loop");
    return NULL;
  }
  return (PyObject *)future_wrap(loop, rill_future_retain(f), FK_PLAIN);
}
