/* timeout.c - rill._TimeoutScope over rill_timeout (asyncio.timeout). */
#include "rillpy_int.h"

/* ------------------------------------------------------------------ */
/* Timeout scope and task group                                         */

double delay_arg(PyObject *o) {
  if (o == Py_None) return RILL_FOREVER;
  return PyFloat_AsDouble(o);
}

PyObject *timeout_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  PyObject *task, *delay;
  (void)kw;
  if (!PyArg_ParseTuple(args, "O!O", &TaskType, &task, &delay)) return NULL;
  double d = delay_arg(delay);
  if (d == -1.0 && PyErr_Occurred()) return NULL;
  rill_timeout *t = rill_timeout_new(((PyTask *)task)->task, d);
  if (!t) return raise_last();
  PyTimeoutScope *self = (PyTimeoutScope *)type->tp_alloc(type, 0);
  if (!self) {
    rill_timeout_release(t);
    return NULL;
  }
  self->t = t;
  return (PyObject *)self;
}

void timeout_dealloc(PyTimeoutScope *self) {
  rill_timeout_release(self->t);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

PyObject *timeout_exit(PyTimeoutScope *self, PyObject *rc) {
  long r = PyLong_AsLong(rc);
  if (r == -1 && PyErr_Occurred()) return NULL;
  return PyLong_FromLong(rill_timeout_exit(self->t, (int)r));
}

PyObject *timeout_expired(PyTimeoutScope *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_timeout_expired(self->t) == 1);
}

PyObject *timeout_reschedule(PyTimeoutScope *self, PyObject *delay) {
  double d = delay_arg(delay);
  if (d == -1.0 && PyErr_Occurred()) return NULL;
  int rc = rill_timeout_reschedule(self->t, d);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyMethodDef timeout_methods[] = {
    {"exit", (PyCFunction)timeout_exit, METH_O, NULL},
    {"expired", (PyCFunction)timeout_expired, METH_NOARGS, NULL},
    {"reschedule", (PyCFunction)timeout_reschedule, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject TimeoutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._TimeoutScope",
    .tp_basicsize = sizeof(PyTimeoutScope),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = timeout_new,
    .tp_dealloc = (destructor)timeout_dealloc,
    .tp_methods = timeout_methods,
};
