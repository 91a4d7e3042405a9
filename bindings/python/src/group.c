/* group.c - rill._Group over the core's group exit (asyncio.TaskGroup). */
#include "rillpy_int.h"

PyObject *group_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  PyObject *loop, *parent;
  (void)kw;
  if (!PyArg_ParseTuple(args, "O!O", &LoopType, &loop, &parent)) return NULL;
  if (parent != Py_None && !Task_Check(parent)) {
    PyErr_SetString(PyExc_TypeError, "parent must be a rill.Task or None");
    return NULL;
  }
  rill_group *g = rill_group_new(((PyLoop *)loop)->loop, parent == Py_None ? NULL : ((PyTask *)parent)->task);
  if (!g) return raise_last();
  PyGroup *self = (PyGroup *)type->tp_alloc(type, 0);
  if (!self) {
    rill_group_release(g);
    return NULL;
  }
  self->g = g;
  Py_INCREF(loop);
  self->loop = (PyLoop *)loop;
  return (PyObject *)self;
}

void group_dealloc(PyGroup *self) {
  rill_group_release(self->g);
  Py_CLEAR(self->loop);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

PyObject *group_add(PyGroup *self, PyObject *task) {
  if (!Task_Check(task)) {
    PyErr_SetString(PyExc_TypeError, "a rill.Task is required");
    return NULL;
  }
  int rc = rill_group_add(self->g, ((PyTask *)task)->task);
  if (rc == RILL_ESTATE) {
    PyErr_SetString(PyExc_RuntimeError, rill_last_error_message());
    return NULL;
  }
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

/* exit(body_rc) -> the future to await once (rill_group_exit). */
PyObject *group_exit(PyGroup *self, PyObject *rc) {
  long r = PyLong_AsLong(rc);
  if (r == -1 && PyErr_Occurred()) return NULL;
  rill_future *f = rill_group_exit(self->g, (int)r);
  if (!f) return raise_last();
  return (PyObject *)future_wrap(self->loop, rill_future_retain(f), FK_PLAIN);
}

/* result(await_rc, body_exc) -> (rc, errors): the core's outcome and its
 * ordered error list, the body's own entry being body_exc. */
PyObject *group_result(PyGroup *self, PyObject *args) {
  int await_rc;
  PyObject *body_exc;
  if (!PyArg_ParseTuple(args, "iO", &await_rc, &body_exc)) return NULL;
  int rc = rill_group_exit_result(self->g, await_rc);
  if (rc == RILL_ESTATE || rc == RILL_EINVAL) return rillpy_raise_code(rc);
  size_t n = rill_group_exit_error_count(self->g);
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (!list) return NULL;
  for (size_t i = 0; i < n; i++) {
    rill_task *child = NULL;
    PyObject *e;
    if (rill_group_exit_error(self->g, i, &child) == 1) {
      e = outcome_exc(rill_task_future(child));
    } else {
      Py_INCREF(body_exc);
      e = body_exc;
    }
    if (!e) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, e);
  }
  return Py_BuildValue("(iN)", rc, list);
}

static PyMethodDef group_methods[] = {
    {"add", (PyCFunction)group_add, METH_O, NULL},
    {"exit", (PyCFunction)group_exit, METH_O, NULL},
    {"result", (PyCFunction)group_result, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject GroupType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._Group",
    .tp_basicsize = sizeof(PyGroup),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = group_new,
    .tp_dealloc = (destructor)group_dealloc,
    .tp_methods = group_methods,
};
