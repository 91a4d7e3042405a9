/* gather.c - module functions: running loop, current task, sleep, gather, wait, shield. */
#include "rillpy_int.h"

/* ------------------------------------------------------------------ */
/* Module functions                                                     */

PyObject *mod_get_running_loop(PyObject *mod, PyObject *unused) {
  (void)mod, (void)unused;
  PyLoop *l = get_running();
  Py_XINCREF(l);
  return (PyObject *)l;
}

PyObject *mod_get_running_loop_or_none(PyObject *mod, PyObject *unused) {
  (void)mod, (void)unused;
  PyObject *l = running_loop ? (PyObject *)running_loop : Py_None;
  Py_INCREF(l);
  return l;
}

PyObject *mod_current_task(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
  (void)mod, (void)args, (void)nargs;
  PyObject *t = current_task ? (PyObject *)current_task : Py_None;
  Py_INCREF(t);
  return t;
}

/* A small open-addressing map awaitable -> future, so that gather runs an
 * awaitable given twice once (borrowed pointers: each future made here is
 * a pending task, owned by its rill_task until it is done). */
typedef struct {
  PyObject *key;
  PyFuture *fu;
} seen_slot;

static PyFuture **seen_find(seen_slot *slots, size_t mask, int bits, PyObject *key) {
  size_t i = (size_t)(((uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
  for (;; i++) {
    seen_slot *sl = &slots[i & mask];
    if (!sl->key) {
      sl->key = key;
      return &sl->fu;
    }
    if (sl->key == key) return &sl->fu;
  }
}

PyObject *mod_gather(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
  (void)mod;
  int return_exceptions = 0;
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; i++) {
    if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "return_exceptions") != 0) {
      PyErr_Format(PyExc_TypeError, "gather() got an unexpected keyword argument %R",
                   PyTuple_GET_ITEM(kwnames, i));
      return NULL;
    }
    return_exceptions = PyObject_IsTrue(args[nargs + i]);
    if (return_exceptions < 0) return NULL;
  }
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  size_t cap = 16;
  int bits = 4;
  while (cap < (size_t)nargs * 2) {
    cap *= 2;
    bits++;
  }
  rill_future **futs = PyMem_Malloc(sizeof *futs * (size_t)(nargs ? nargs : 1));
  seen_slot *seen = nargs > 1 ? PyMem_Calloc(cap, sizeof *seen) : NULL;
  if (!futs || (nargs > 1 && !seen)) {
    PyMem_Free(futs);
    PyMem_Free(seen);
    return PyErr_NoMemory();
  }
  PyObject *result = NULL;
  for (Py_ssize_t i = 0; i < nargs; i++) {
    PyObject *a = args[i];
    PyFuture *fu;
    if (Future_Check(a)) {
      fu = (PyFuture *)a;
    } else {
      PyFuture **slot = seen ? seen_find(seen, cap - 1, bits, a) : NULL;
      if (slot && *slot) {
        fu = *slot;
      } else {
        fu = (PyFuture *)ensure_future_on(loop, a);
        if (!fu) goto done;
        /* the new task is pending: its rill_task keeps it alive */
        Py_DECREF(fu);
        if (slot) *slot = fu;
      }
    }
    if (fu->loop != loop) {
      PyErr_SetString(PyExc_ValueError, "futures are tied to different event loops");
      goto done;
    }
    futs[i] = fu->fut;
  }
  result = (PyObject *)future_wrap(loop,
                                   rill_gather(loop->loop, (size_t)nargs, futs,
                                               return_exceptions ? RILL_GATHER_RETURN_ERRORS : 0),
                                   return_exceptions ? FK_GATHER_RE : FK_GATHER);
done:
  PyMem_Free(futs);
  PyMem_Free(seen);
  return result;
}

PyObject *mod_ensure_future(PyObject *mod, PyObject *aw) {
  (void)mod;
  if (Future_Check(aw)) {
    Py_INCREF(aw);
    return aw;
  }
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  return ensure_future_on(loop, aw);
}

PyObject *mod_shield(PyObject *mod, PyObject *aw) {
  (void)mod;
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  PyFuture *inner = (PyFuture *)ensure_future_on(loop, aw);
  if (!inner) return NULL;
  if (rill_future_state(inner->fut) != RILL_PENDING) return (PyObject *)inner;
  PyObject *r = (PyObject *)future_wrap(loop, rill_shield(loop->loop, inner->fut), FK_PLAIN);
  Py_DECREF(inner);
  return r;
}

PyObject *mod_wait_for(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
  (void)mod;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_wait_for(aw, timeout)");
    return NULL;
  }
  double t = delay_arg(args[1]);
  if (t == -1.0 && PyErr_Occurred()) return NULL;
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  PyFuture *inner = (PyFuture *)ensure_future_on(loop, args[0]);
  if (!inner) return NULL;
  PyObject *r = (PyObject *)future_wrap(loop, rill_wait_for(loop->loop, inner->fut, t), FK_PLAIN);
  Py_DECREF(inner);
  return r;
}

PyObject *mod_wait(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
  (void)mod;
  if (nargs != 3 || !PyList_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "_wait(list_of_futures, mode, timeout)");
    return NULL;
  }
  long mode = PyLong_AsLong(args[1]);
  if (mode == -1 && PyErr_Occurred()) return NULL;
  double t = delay_arg(args[2]);
  if (t == -1.0 && PyErr_Occurred()) return NULL;
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  Py_ssize_t n = PyList_GET_SIZE(args[0]);
  rill_future **futs = PyMem_Malloc(sizeof *futs * (size_t)(n ? n : 1));
  if (!futs) return PyErr_NoMemory();
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *f = PyList_GET_ITEM(args[0], i);
    if (!Future_Check(f)) {
      PyMem_Free(futs);
      PyErr_SetString(PyExc_TypeError, "_wait() takes rill futures");
      return NULL;
    }
    futs[i] = ((PyFuture *)f)->fut;
  }
  PyObject *r = (PyObject *)future_wrap(loop, rill_wait(loop->loop, (size_t)n, futs, (int)mode, t),
                                        FK_PLAIN);
  PyMem_Free(futs);
  return r;
}

PyObject *mod_set_helpers(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *a, *b, *c;
  if (!PyArg_ParseTuple(args, "OOO", &a, &b, &c)) return NULL;
  Py_INCREF(a);
  Py_XSETREF(helper_iscoroutine, a);
  Py_INCREF(b);
  Py_XSETREF(helper_wrap_awaitable, b);
  Py_INCREF(c);
  Py_XSETREF(helper_default_handler, c);
  Py_RETURN_NONE;
}

PyObject *mod_future_info(PyObject *mod, PyObject *f) {
  (void)mod;
  if (!Future_Check(f)) {
    PyErr_SetString(PyExc_TypeError, "a rill future is required");
    return NULL;
  }
  return PyLong_FromLong(rill_future_state(((PyFuture *)f)->fut));
}
