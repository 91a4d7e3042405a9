/* future.c - rill.Future: values across the core, the Future type, await. */
#include "rillpy_int.h"

/* ------------------------------------------------------------------ */
/* Values: Python object <-> rill_future                                */

/* Completes f with v (the kinds every language shares travel natively).
 * Returns the object handed to the core as a pointer (borrowed), or NULL. */
int set_value(rill_future *f, PyObject *v, PyObject **core_obj) {
  *core_obj = NULL;
  if (v == Py_None) return rill_future_set_none(f);
  if (PyBool_Check(v)) return rill_future_set_bool(f, v == Py_True);
  if (PyLong_CheckExact(v)) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (!overflow && !(x == -1 && PyErr_Occurred())) return rill_future_set_int(f, x);
    PyErr_Clear();
  } else if (PyFloat_CheckExact(v)) {
    return rill_future_set_double(f, PyFloat_AS_DOUBLE(v));
  } else if (PyBytes_CheckExact(v)) {
    return rill_future_set_bytes(f, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
  }
  Py_INCREF(v);
  int rc = rill_future_set_pointer(f, v, decref_any, PYTAG);
  if (rc < 0) Py_DECREF(v);
  else *core_obj = v;
  return rc;
}

/* The value of a DONE future (new reference). */
PyObject *outcome_value(rill_future *f) {
  switch (rill_future_kind(f)) {
  case RILL_NONE: Py_RETURN_NONE;
  case RILL_BOOL: {
    int b = 0;
    rill_future_bool(f, &b);
    return PyBool_FromLong(b);
  }
  case RILL_INT: {
    int64_t i = 0;
    rill_future_int(f, &i);
    return PyLong_FromLongLong(i);
  }
  case RILL_DOUBLE: {
    double d = 0;
    rill_future_double(f, &d);
    return PyFloat_FromDouble(d);
  }
  case RILL_BYTES: {
    size_t len = 0;
    const void *p = rill_future_bytes(f, &len);
    return PyBytes_FromStringAndSize(p ? p : "", (Py_ssize_t)len);
  }
  case RILL_POINTER: {
    PyObject *p = rill_future_pointer(f, PYTAG);
    if (!p) {
      PyErr_SetString(PyExc_TypeError, "the future holds a value of another language");
      return NULL;
    }
    Py_INCREF(p);
    return p;
  }
  default: return raise_last();
  }
}

/* The exception of a FAILED or CANCELLED future (new reference): the same
 * object that was raised in the task, or one made from the code. */
PyObject *outcome_exc(rill_future *f) {
  if (rill_future_state(f) == RILL_CANCELLED) return make_cancelled(rill_future_error_message(f));
  PyObject *payload = rill_future_error_payload(f, PYTAG);
  if (payload) {
    Py_INCREF(payload);
    return payload;
  }
  return exc_for_code(rill_future_error(f), rill_future_error_message(f));
}

/* The exception of this FAILED or CANCELLED future (new reference):
 * outcome_exc's, with the object given to cancel(msg) when the core has
 * only its text. */
PyObject *future_exc(PyFuture *self) {
  if (rill_future_state(self->fut) == RILL_CANCELLED) {
    if (Task_Check(self) && ((PyTask *)self)->cancelled_exc) {
      /* the CancelledError the task's coroutine raised (its args, its
       * traceback through the interrupted await), once; its message
       * object stays for later readers */
      PyTask *t = (PyTask *)self;
      PyObject *exc = t->cancelled_exc;
      t->cancelled_exc = NULL;
      PyObject *a = ((PyBaseExceptionObject *)exc)->args;
      if (!self->cancel_msg && a && PyTuple_GET_SIZE(a) > 0) {
        self->cancel_msg = PyTuple_GET_ITEM(a, 0);
        Py_INCREF(self->cancel_msg);
      }
      return exc;
    }
    if (self->cancel_msg) return make_cancelled_obj(self->cancel_msg, NULL);
  }
  return outcome_exc(self->fut);
}

PyObject *future_value(PyFuture *self) {
  if (self->kind == FK_PLAIN) return outcome_value(self->fut);
  size_t n = rill_gather_count(self->fut);
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (!list) return NULL;
  for (size_t i = 0; i < n; i++) {
    rill_future *c = rill_gather_child(self->fut, i);
    PyObject *v = rill_future_state(c) == RILL_DONE ? outcome_value(c) : outcome_exc(c);
    if (!v) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, v);
  }
  return list;
}

/* result() of a done future: the value, or raises. */
PyObject *future_result_or_raise(PyFuture *self) {
  switch (rill_future_state(self->fut)) {
  case RILL_DONE: return future_value(self);
  case RILL_FAILED:
  case RILL_CANCELLED: {
    PyObject *exc = future_exc(self);
    if (exc) raise_exc(exc);
    return NULL;
  }
  case RILL_PENDING:
    PyErr_SetString(InvalidStateError, "Result is not set.");
    return NULL;
  default: return raise_last();
  }
}

/* ------------------------------------------------------------------ */
/* Future                                                               */

PyFuture *future_wrap(PyLoop *loop, rill_future *f, int kind) {
  if (!f) return (PyFuture *)raise_last();
  PyFuture *self = PyObject_GC_New(PyFuture, &FutureType);
  if (!self) {
    rill_future_release(f);
    return NULL;
  }
  self->fut = f;
  Py_INCREF(loop);
  self->loop = loop;
  self->callbacks = NULL;
  self->core_obj = NULL;
  self->cancel_msg = NULL;
  self->weakreflist = NULL;
  self->kind = (unsigned char)kind;
  self->cb_registered = 0;
  PyObject_GC_Track(self);
  return self;
}

PyObject *future_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"loop", NULL};
  PyObject *loopobj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|$O", kwlist, &loopobj)) return NULL;
  PyLoop *loop = loopobj == Py_None ? get_running() : (PyLoop *)loopobj;
  if (!loop) return NULL;
  if (!PyObject_TypeCheck(loop, &LoopType)) {
    PyErr_SetString(PyExc_TypeError, "loop must be a rill event loop");
    return NULL;
  }
  rill_future *f = rill_future_new(loop->loop);
  if (!f) return raise_last();
  PyFuture *self = (PyFuture *)type->tp_alloc(type, 0);
  if (!self) {
    rill_future_release(f);
    return NULL;
  }
  self->fut = f;
  Py_INCREF(loop);
  self->loop = loop;
  return (PyObject *)self;
}

int future_traverse(PyFuture *self, visitproc visit, void *arg) {
  Py_VISIT(self->loop);
  Py_VISIT(self->callbacks);
  Py_VISIT(self->cancel_msg);
  /* The core holds one reference to core_obj on this future's behalf, so
   * a cycle through a result or an exception (exception -> traceback ->
   * frame -> task) is collectable. tp_finalize, which the collector runs
   * before any tp_clear, gives that reference back by releasing the core
   * future; if something else still retains it (a gather), the object is
   * then seen as reachable again and is not cleared. */
  if (self->fut) Py_VISIT(self->core_obj);
  return 0;
}

void future_finalize(PyFuture *self) {
  PyObject *et, *ev, *etb;
  PyErr_Fetch(&et, &ev, &etb);
  rill_future *f = self->fut;
  if (f && Py_IS_TYPE(self, &TaskType)) {
    PyTask *t = (PyTask *)self;
    if (rill_future_state(f) != RILL_PENDING) {
      rill_task *rt = t->task;
      t->task = NULL;
      self->fut = NULL;
      self->core_obj = NULL;
      rill_task_release(rt);
    }
  } else if (f) {
    self->fut = NULL;
    self->core_obj = NULL;
    rill_future_release(f);
  }
  PyErr_Restore(et, ev, etb);
}

int future_clear_refs(PyFuture *self) {
  Py_CLEAR(self->callbacks);
  Py_CLEAR(self->cancel_msg);
  return 0;
}

void future_dealloc(PyFuture *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  Py_CLEAR(self->callbacks);
  Py_CLEAR(self->cancel_msg);
  rill_future *f = self->fut;
  self->fut = NULL;
  rill_future_release(f);
  Py_CLEAR(self->loop);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The done callbacks registered with add_done_callback run here, all in
 * the call_soon the core scheduled, in registration order. */
void future_done_cb(rill_future *f, void *arg) {
  (void)f;
  gil_take();
  PyFuture *self = arg;
  self->cb_registered = 0;
  PyObject *cbs = self->callbacks;
  self->callbacks = NULL;
  if (!cbs) return;
  PyObject *args = PyTuple_Pack(1, (PyObject *)self);
  if (args) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cbs); i++) {
      PyObject *item = PyList_GET_ITEM(cbs, i);
      run_callback(self->loop, PyTuple_GET_ITEM(item, 0), args, PyTuple_GET_ITEM(item, 1),
                   (PyObject *)self);
    }
    Py_DECREF(args);
  } else {
    PyErr_Clear();
  }
  Py_DECREF(cbs);
}

PyObject *future_add_done_callback(PyFuture *self, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kwnames) {
  static const char *const kws[] = {"", "context", NULL};
  PyObject *fn = NULL, *ctx = Py_None;
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  if (nargs != 1) {
    PyErr_SetString(PyExc_TypeError, "add_done_callback() takes one positional argument");
    return NULL;
  }
  fn = args[0];
  for (Py_ssize_t i = 0; i < nkw; i++) {
    if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), kws[1]) == 0) {
      ctx = args[nargs + i];
    } else {
      PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R", PyTuple_GET_ITEM(kwnames, i));
      return NULL;
    }
  }
  PyObject *c = ctx == Py_None ? PyContext_CopyCurrent() : (Py_INCREF(ctx), ctx);
  if (!c) return NULL;
  PyObject *item = PyTuple_Pack(2, fn, c);
  Py_DECREF(c);
  if (!item) return NULL;
  if (!self->callbacks && !(self->callbacks = PyList_New(0))) {
    Py_DECREF(item);
    return NULL;
  }
  int rc = PyList_Append(self->callbacks, item);
  Py_DECREF(item);
  if (rc < 0) return NULL;
  if (!self->cb_registered) {
    Py_INCREF(self);
    rc = rill_future_on_done(self->fut, future_done_cb, self, decref_any);
    if (rc < 0) {
      Py_DECREF(self);
      return rillpy_raise_code(rc);
    }
    self->cb_registered = 1;
  }
  Py_RETURN_NONE;
}

PyObject *future_remove_done_callback(PyFuture *self, PyObject *fn) {
  Py_ssize_t removed = 0;
  if (self->callbacks) {
    PyObject *keep = PyList_New(0);
    if (!keep) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->callbacks); i++) {
      PyObject *item = PyList_GET_ITEM(self->callbacks, i);
      int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(item, 0), fn, Py_EQ);
      if (eq < 0) {
        Py_DECREF(keep);
        return NULL;
      }
      if (eq) removed++;
      else if (PyList_Append(keep, item) < 0) {
        Py_DECREF(keep);
        return NULL;
      }
    }
    Py_SETREF(self->callbacks, keep);
  }
  return PyLong_FromSsize_t(removed);
}

PyObject *future_result(PyFuture *self, PyObject *unused) {
  (void)unused;
  return future_result_or_raise(self);
}

PyObject *future_exception(PyFuture *self, PyObject *unused) {
  (void)unused;
  switch (rill_future_state(self->fut)) {
  case RILL_DONE: Py_RETURN_NONE;
  case RILL_FAILED: return outcome_exc(self->fut);
  case RILL_CANCELLED: {
    PyObject *exc = future_exc(self);
    if (exc) raise_exc(exc);
    return NULL;
  }
  case RILL_PENDING: PyErr_SetString(InvalidStateError, "Exception is not set."); return NULL;
  default: return raise_last();
  }
}

PyObject *future_done(PyFuture *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_future_state(self->fut) != RILL_PENDING);
}

PyObject *future_cancelled(PyFuture *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_future_state(self->fut) == RILL_CANCELLED);
}

/* The optional msg of cancel(msg=None) as given (borrowed; Py_None for
 * none), NULL on error. */
PyObject *msg_arg(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *msg = Py_None;
  if (nargs > 1) goto bad;
  if (nargs == 1) msg = args[0];
  if (kwnames) {
    if (PyTuple_GET_SIZE(kwnames) != 1 || nargs == 1 ||
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "msg") != 0)
      goto bad;
    msg = args[nargs];
  }
  return msg;
bad:
  PyErr_SetString(PyExc_TypeError, "cancel() takes an optional msg");
  return NULL;
}

/* The core's text of a cancel message: str(msg) in *text (a new
 * reference, NULL for None). -1 on error. */
int msg_text(PyObject *msg, PyObject **text) {
  *text = NULL;
  if (msg == Py_None) return 0;
  *text = PyObject_Str(msg);
  if (!*text || !PyUnicode_AsUTF8(*text)) {
    /* asyncio never asks str(msg): one that cannot say it is kept all
     * the same, the core gets a stand-in text */
    PyErr_Clear();
    Py_XSETREF(*text, PyUnicode_FromFormat("<%s object>", Py_TYPE(msg)->tp_name));
    if (!*text || !PyUnicode_AsUTF8(*text)) {
      Py_CLEAR(*text);
      return -1;
    }
  }
  return 0;
}

PyObject *future_cancel(PyFuture *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
  PyObject *m = msg_arg(args, nargs, kwnames), *text;
  if (!m || msg_text(m, &text) < 0) return NULL;
  const char *txt = text ? PyUnicode_AsUTF8(text) : NULL;
  int rc = rill_future_cancel_msg(self->fut, txt); /* copies */
  if (rc < 0) {
    Py_XDECREF(text);
    return rillpy_raise_code(rc);
  }
  if (rc == 1 && m != Py_None && !self->cancel_msg) {
    Py_INCREF(m);
    self->cancel_msg = m;
    if (self->kind != FK_PLAIN) {
      /* A gather passed the text on to its children: the object goes to
       * the Python tasks among them still pending (alive: the loop owns
       * them) that took this message, and on down what they await. */
      size_t n = rill_gather_count(self->fut);
      for (size_t i = 0; i < n; i++) {
        rill_future *c = rill_gather_child(self->fut, i);
        rill_task *rt = c && rill_future_state(c) == RILL_PENDING &&
                                rill_future_owner(c) == PYTAG
                            ? rill_task_from_future(c)
                            : NULL;
        PyTask *pt = rt ? rill_task_arg(rt) : NULL;
        const char *cm = rt ? rill_task_cancel_message(rt) : NULL;
        if (!pt || pt->base.cancel_msg || !cm || !txt || strcmp(cm, txt) != 0) continue;
        Py_INCREF(m);
        pt->base.cancel_msg = m;
        cancel_msg_forward(pt);
      }
    }
  }
  Py_XDECREF(text);
  return PyBool_FromLong(rc);
}

PyObject *future_set_result(PyFuture *self, PyObject *value) {
  if (rill_future_state(self->fut) != RILL_PENDING) {
    PyErr_SetString(InvalidStateError, "invalid state");
    return NULL;
  }
  PyObject *core_obj;
  int rc = set_value(self->fut, value, &core_obj);
  if (rc == RILL_ESTATE) {
    PyErr_SetString(InvalidStateError, "invalid state");
    return NULL;
  }
  if (rc < 0) return rillpy_raise_code(rc);
  self->core_obj = core_obj;
  Py_RETURN_NONE;
}

/* Fails f with exc (borrowed): CancelledError ends it CANCELLED. */
int fail_with(rill_future *f, PyObject *exc, PyObject **core_obj) {
  *core_obj = NULL;
  if (PyObject_TypeCheck(exc, (PyTypeObject *)CancelledError)) {
    const char *m = NULL;
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    PyObject *s = NULL;
    if (args && PyTuple_GET_SIZE(args) > 0) {
      s = PyObject_Str(PyTuple_GET_ITEM(args, 0));
      if (s) m = PyUnicode_AsUTF8(s);
      if (!m) PyErr_Clear();
    }
    int rc = rill_future_fail(f, RILL_ECANCELLED, m, NULL, NULL, NULL);
    Py_XDECREF(s);
    return rc;
  }
  PyObject *s = PyObject_Str(exc);
  const char *m = s ? PyUnicode_AsUTF8(s) : NULL;
  if (!m) PyErr_Clear();
  PyObject *msg = PyUnicode_FromFormat("%s: %s", Py_TYPE(exc)->tp_name, m ? m : "");
  Py_XDECREF(s);
  const char *mm = msg ? PyUnicode_AsUTF8(msg) : NULL;
  if (!mm) PyErr_Clear();
  Py_INCREF(exc);
  int rc = rill_future_fail(f, RILL_EEXCEPTION, mm, exc, decref_any, PYTAG);
  if (rc == 0) *core_obj = exc;
  Py_XDECREF(msg);
  return rc;
}

PyObject *future_set_exception(PyFuture *self, PyObject *exc) {
  if (rill_future_state(self->fut) != RILL_PENDING) {
    PyErr_SetString(InvalidStateError, "invalid state");
    return NULL;
  }
  PyObject *inst = exc;
  if (PyType_Check(exc)) {
    inst = PyObject_CallNoArgs(exc);
    if (!inst) return NULL;
  } else {
    Py_INCREF(inst);
  }
  if (!PyExceptionInstance_Check(inst)) {
    Py_DECREF(inst);
    PyErr_SetString(PyExc_TypeError, "invalid exception object");
    return NULL;
  }
  if (PyObject_TypeCheck(inst, (PyTypeObject *)PyExc_StopIteration)) {
    Py_DECREF(inst);
    PyErr_SetString(PyExc_TypeError,
                    "StopIteration interacts badly with generators and cannot be raised into a Future");
    return NULL;
  }
  PyObject *core_obj;
  int rc;
  if (PyObject_TypeCheck(inst, (PyTypeObject *)CancelledError)) {
    /* set_exception(CancelledError()) leaves the future failed, not cancelled */
    PyObject *s = PyObject_Str(inst);
    const char *m = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!m) PyErr_Clear();
    Py_INCREF(inst);
    rc = rill_future_fail(self->fut, RILL_EEXCEPTION, m, inst, decref_any, PYTAG);
    Py_XDECREF(s);
    core_obj = rc == 0 ? inst : NULL;
  } else {
    rc = fail_with(self->fut, inst, &core_obj);
  }
  Py_DECREF(inst);
  if (rc < 0) return rillpy_raise_code(rc);
  self->core_obj = core_obj;
  Py_RETURN_NONE;
}

PyObject *future_get_loop(PyFuture *self, PyObject *unused) {
  (void)unused;
  Py_INCREF(self->loop);
  return (PyObject *)self->loop;
}

PyObject *future_state_str(PyFuture *self, void *closure) {
  (void)closure;
  switch (rill_future_state(self->fut)) {
  case RILL_PENDING: return PyUnicode_FromString("PENDING");
  case RILL_CANCELLED: return PyUnicode_FromString("CANCELLED");
  default: return PyUnicode_FromString("FINISHED");
  }
}

PyObject *future_get_blocking(PyFuture *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(rill_future_state(self->fut) == RILL_PENDING);
}

/* await: yields the future itself while it is pending; no iterator. */
PySendResult future_am_send(PyFuture *self, PyObject *arg, PyObject **result) {
  (void)arg;
  if (rill_future_state(self->fut) == RILL_PENDING) {
    Py_INCREF(self);
    *result = (PyObject *)self;
    return PYGEN_NEXT;
  }
  *result = future_result_or_raise(self);
  return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

PyObject *self_iter(PyObject *self) {
  Py_INCREF(self);
  return self;
}

PyObject *future_iternext(PyFuture *self) {
  PyObject *r;
  PySendResult s = future_am_send(self, Py_None, &r);
  if (s == PYGEN_NEXT) return r;
  if (s == PYGEN_RETURN) {
    if (r != Py_None) {
      PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, r);
      if (e) {
        PyErr_SetObject(PyExc_StopIteration, e);
        Py_DECREF(e);
      }
    }
    Py_DECREF(r);
  }
  return NULL;
}

PyObject *future_repr(PyFuture *self) {
  PyObject *st = future_state_str(self, NULL);
  if (!st) return NULL;
  PyObject *r = PyUnicode_FromFormat("<%s %U>", Py_TYPE(self)->tp_name, st);
  Py_DECREF(st);
  return r;
}

/* Embedding: the address of the rill_future this object wraps (borrowed:
 * a host retains it with rill_future_retain to keep it past this object). */
PyObject *future_address(PyFuture *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromVoidPtr(self->fut);
}

/* asyncio.gather's callback asks a cancelled child for its CancelledError. */
static PyObject *future_make_cancelled_error(PyFuture *self, PyObject *unused) {
  (void)unused;
  if (self->fut && rill_future_state(self->fut) == RILL_CANCELLED) return future_exc(self);
  return make_cancelled(NULL);
}

static PyMethodDef future_methods[] = {
    {"_rill_future_address", (PyCFunction)future_address, METH_NOARGS,
     "Embedding: the address of the wrapped rill_future* (borrowed)."},
    {"result", (PyCFunction)future_result, METH_NOARGS, "The result, or raises."},
    {"exception", (PyCFunction)future_exception, METH_NOARGS, "The exception, or None."},
    {"done", (PyCFunction)future_done, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)future_cancelled, METH_NOARGS, NULL},
    {"cancel", (PyCFunction)(void (*)(void))future_cancel, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"set_result", (PyCFunction)future_set_result, METH_O, NULL},
    {"set_exception", (PyCFunction)future_set_exception, METH_O, NULL},
    {"add_done_callback", (PyCFunction)(void (*)(void))future_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"remove_done_callback", (PyCFunction)future_remove_done_callback, METH_O, NULL},
    {"get_loop", (PyCFunction)future_get_loop, METH_NOARGS, NULL},
    {"_make_cancelled_error", (PyCFunction)future_make_cancelled_error, METH_NOARGS, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL}};

/* asyncio's tasks reset the flag on what they were given; accepted, ignored. */
int future_set_blocking(PyFuture *self, PyObject *v, void *closure) {
  (void)self, (void)v, (void)closure;
  return 0;
}

/* asyncio.gather sets _log_destroy_pending on the tasks it makes (rill
 * never logs pending tasks at destruction): reads False, writes ignored. */
static PyObject *future_get_log_destroy(PyFuture *self, void *closure) {
  (void)self, (void)closure;
  Py_RETURN_FALSE;
}

/* Python 3.11's asyncio.gather(..., return_exceptions=True) reads a
 * cancelled child's message here (3.12 calls _make_cancelled_error). */
static PyObject *future_get_cancel_message(PyFuture *self, void *closure) {
  (void)closure;
  if (self->cancel_msg) {
    Py_INCREF(self->cancel_msg);
    return self->cancel_msg;
  }
  if (self->fut && rill_future_state(self->fut) == RILL_CANCELLED && Task_Check(self)) {
    /* a task whose coroutine raised CancelledError(obj): obj */
    PyObject *p = ((PyTask *)self)->cancelled_exc;
    if (p) {
      PyObject *a = ((PyBaseExceptionObject *)p)->args;
      PyObject *r = a && PyTuple_GET_SIZE(a) > 0 ? PyTuple_GET_ITEM(a, 0) : Py_None;
      Py_INCREF(r);
      return r;
    }
  }
  const char *msg = self->fut && rill_future_state(self->fut) == RILL_CANCELLED
                        ? rill_future_error_message(self->fut)
                        : NULL;
  if (!msg || !msg[0]) Py_RETURN_NONE; /* the core's "" is no message */
  return PyUnicode_FromString(msg);
}

static PyGetSetDef future_getset[] = {
    {"_cancel_message", (getter)future_get_cancel_message, NULL, NULL, NULL},
    {"_log_destroy_pending", (getter)future_get_log_destroy, (setter)future_set_blocking, NULL, NULL},
    {"_state", (getter)future_state_str, NULL, NULL, NULL},
    {"_asyncio_future_blocking", (getter)future_get_blocking, (setter)future_set_blocking, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyAsyncMethods future_async = {.am_await = self_iter, .am_send = (sendfunc)future_am_send};

PyTypeObject FutureType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill.Future",
    .tp_basicsize = sizeof(PyFuture),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A rill future: asyncio.Future's API on a rill_future.",
    .tp_new = future_new,
    .tp_dealloc = (destructor)future_dealloc,
    .tp_traverse = (traverseproc)future_traverse,
    .tp_clear = (inquiry)future_clear_refs,
    .tp_finalize = (destructor)future_finalize,
    .tp_as_async = &future_async,
    .tp_iter = self_iter,
    .tp_iternext = (iternextfunc)future_iternext,
    .tp_repr = (reprfunc)future_repr,
    .tp_methods = future_methods,
    .tp_getset = future_getset,
    .tp_weaklistoffset = offsetof(PyFuture, weakreflist),
};
