/* embed.c - embedding: wrapping a host's rill_loop and rill_future.
 * The public shape is the same in Python and Lua: rill.attach_loop(address),
 * rill.future_address(f), rill.wrap_future(address). Each Python loop is
 * the per-loop state of this binding on its rill_loop (rill_loop_binding,
 * tag PYTAG), so a future's address is enough to find its loop, and an
 * attached loop's reports about Python's futures reach Python's handler
 * (rill_loop_set_binding_exception_handler) while other languages keep
 * theirs. */
#include "rillpy_int.h"

/* Embedding: _attach_loop(cls, address) (rill.attach_loop) -> a cls (a LoopBase subclass)
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
  if (rill_loop_binding(rl, PYTAG)) {
    PyErr_SetString(PyExc_RuntimeError, "attach_loop: this rill_loop already has a Python loop");
    return NULL;
  }
  PyLoop *self = (PyLoop *)type->tp_alloc(type, 0);
  if (!self) return NULL;
  self->loop = rl;
  self->borrowed = 1;
  if (rill_loop_set_binding(rl, PYTAG, self, NULL) < 0 ||
      rill_loop_set_binding_exception_handler(rl, PYTAG, core_exc_handler, self, NULL) < 0) {
    self->loop = NULL;
    Py_DECREF(self);
    return raise_last();
  }
  return (PyObject *)self;
}

/* Embedding: _wrap_future(address, loop=None) (rill.wrap_future) -> a rill.Future holding its own
 * reference to the rill_future* at address (a future of loop's rill_loop). */
PyObject *mod_wrap_future(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *addr, *loopobj = NULL;
  if (!PyArg_ParseTuple(args, "O|O!", &addr, &LoopType, &loopobj)) return NULL;
  rill_future *f = PyLong_AsVoidPtr(addr);
  if (!f) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "_wrap_future: NULL future address");
    return NULL;
  }
  PyLoop *loop = loopobj ? (PyLoop *)loopobj : rill_loop_binding(rill_future_loop(f), PYTAG);
  if (!loop) {
    PyErr_SetString(PyExc_ValueError, "wrap_future: no Python loop on the future's rill_loop "
                                      "(rill.attach_loop it first)");
    return NULL;
  }
  if (rill_future_loop(f) != loop->loop) {
    PyErr_SetString(PyExc_ValueError, "_wrap_future: the future belongs to another loop");
    return NULL;
  }
  return (PyObject *)future_wrap(loop, rill_future_retain(f), FK_PLAIN);
}
