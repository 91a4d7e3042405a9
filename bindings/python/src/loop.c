/* loop.c - the event loop: handles, running, the poll hook and the GIL. */
#include "rillpy_int.h"

_Thread_local PyThreadState *released_ts RILLPY_TLS;
_Thread_local PyLoop *running_loop RILLPY_TLS;
_Thread_local PyTask *current_task RILLPY_TLS;

/* A forked child has no running loop (asyncio's rule, and the core's): it
 * may run a loop of its own, even when forked inside a callback. */
void rillpy_forget_running_loop(void) { running_loop = NULL; }

/* ------------------------------------------------------------------ */
/* Handles (call_soon, call_later, call_at, call_soon_threadsafe)       */

void handle_run(void *arg) {
  gil_take();
  PyHandle *h = arg;
  if (h->cancelled || !h->cb) return;
  run_callback(h->loop, h->cb, h->args, h->ctx, (PyObject *)h);
}

void handle_free(void *arg) {
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyHandle *h = arg;
  Py_CLEAR(h->cb);
  Py_CLEAR(h->args);
  Py_CLEAR(h->ctx);
  Py_DECREF(h);
  if (ensured) PyGILState_Release(gs);
}

void handle_dealloc(PyHandle *h) {
  rill_handle_release(h->h);
  h->h = NULL;
  Py_CLEAR(h->cb);
  Py_CLEAR(h->args);
  Py_CLEAR(h->ctx);
  Py_CLEAR(h->loop);
  Py_CLEAR(h->source_tb);
  Py_TYPE(h)->tp_free((PyObject *)h);
}

PyObject *handle_cancel(PyHandle *h, PyObject *unused) {
  (void)unused;
  h->cancelled = 1;
  if (h->h) rill_handle_cancel(h->h);
  Py_RETURN_NONE;
}

PyObject *handle_cancelled(PyHandle *h, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(h->cancelled);
}

PyObject *handle_when(PyHandle *h, PyObject *unused) {
  (void)unused;
  return PyFloat_FromDouble(h->h ? rill_handle_when(h->h) : NAN);
}

PyObject *handle_repr(PyHandle *h) {
  if (h->cb) return PyUnicode_FromFormat("<Handle %R>", h->cb);
  return PyUnicode_FromFormat("<Handle %s>", h->cancelled ? "cancelled" : "done");
}

static PyObject *handle_source_traceback(PyHandle *h, void *closure) {
  (void)closure;
  PyObject *tb = h->source_tb ? h->source_tb : Py_None;
  Py_INCREF(tb);
  return tb;
}

/* In debug mode, as asyncio's Handle: where the caller scheduled it
 * (asyncio.format_helpers.extract_stack of the calling frame). */
static int handle_record_source(PyHandle *h) {
  static PyObject *extract_stack;
  if (!extract_stack) {
    PyObject *m = PyImport_ImportModule("asyncio.format_helpers");
    if (!m) return -1;
    extract_stack = PyObject_GetAttrString(m, "extract_stack");
    Py_DECREF(m);
    if (!extract_stack) return -1;
  }
  PyFrameObject *f = PyEval_GetFrame(); /* borrowed: the caller's, a C method has none */
  h->source_tb = PyObject_CallOneArg(extract_stack, f ? (PyObject *)f : Py_None);
  return h->source_tb ? 0 : -1;
}

static PyGetSetDef handle_getset[] = {
    {"_source_traceback", (getter)handle_source_traceback, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS, NULL},
    {"when", (PyCFunction)handle_when, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill.Handle",
    .tp_basicsize = sizeof(PyHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A scheduled callback (asyncio.Handle / TimerHandle).",
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_repr = (reprfunc)handle_repr,
    .tp_methods = handle_methods,
    .tp_getset = handle_getset,
};

enum { SCHED_SOON, SCHED_LATER, SCHED_AT, SCHED_THREADSAFE };

PyObject *tuple_from(PyObject *const *items, Py_ssize_t n) {
  PyObject *t = PyTuple_New(n);
  if (!t) return NULL;
  for (Py_ssize_t i = 0; i < n; i++) {
    Py_INCREF(items[i]);
    PyTuple_SET_ITEM(t, i, items[i]);
  }
  return t;
}

PyObject *loop_schedule(PyLoop *self, int how, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
  Py_ssize_t nfixed = (how == SCHED_LATER || how == SCHED_AT) ? 1 : 0;
  double t = 0;
  if (nargs < nfixed + 1) {
    PyErr_SetString(PyExc_TypeError, "a callback is required");
    return NULL;
  }
  if (nfixed) {
    t = PyFloat_AsDouble(args[0]);
    if (t == -1.0 && PyErr_Occurred()) return NULL;
  }
  PyObject *cb = args[nfixed];
  PyObject *ctx = Py_None;
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; i++) {
    if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "context") != 0) {
      PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R", PyTuple_GET_ITEM(kwnames, i));
      return NULL;
    }
    ctx = args[nargs + i];
  }
  if (!PyCallable_Check(cb)) {
    PyErr_Format(PyExc_TypeError, "a callable object was expected, got %R", cb);
    return NULL;
  }
  if (how == SCHED_SOON && foreign_wake_type && (PyObject *)Py_TYPE(cb) == foreign_wake_type &&
      self->loop) {
    /* An asyncio future of this loop scheduling the wake-up of the rill
     * future a rill task waits on (loopio.py's _FromForeign): done at once,
     * the task's step is queued where asyncio's task wake-up would be, not
     * an iteration later. It only completes a rill future (no user code). */
    PyObject *r = PyObject_Vectorcall(cb, args + 1, nargs - 1, NULL);
    if (r) {
      Py_DECREF(r);
      Py_RETURN_NONE;
    }
    PyErr_Clear(); /* scheduled as any callback: the handler reports it */
  }
  PyHandle *h = PyObject_New(PyHandle, &HandleType);
  if (!h) return NULL;
  h->h = NULL;
  h->cancelled = 0;
  h->source_tb = NULL;
  Py_INCREF(cb);
  h->cb = cb;
  h->args = nargs > nfixed + 1 ? tuple_from(args + nfixed + 1, nargs - nfixed - 1) : NULL;
  Py_INCREF(self);
  h->loop = self;
  h->ctx = ctx == Py_None ? PyContext_CopyCurrent() : (Py_INCREF(ctx), ctx);
  if (!h->ctx || (nargs > nfixed + 1 && !h->args) ||
      (self->loop && rill_loop_get_debug(self->loop) == 1 && handle_record_source(h) < 0)) {
    Py_DECREF(h);
    return NULL;
  }
  Py_INCREF(h); /* the loop's, dropped by handle_free */
  if (!self->loop) {
    Py_DECREF(h);
    Py_DECREF(h);
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  int rc = 0;
  switch (how) {
  case SCHED_SOON: h->h = rill_call_soon(self->loop, handle_run, h, handle_free); break;
  case SCHED_LATER: h->h = rill_call_later(self->loop, t, handle_run, h, handle_free); break;
  case SCHED_AT: h->h = rill_call_at(self->loop, t, handle_run, h, handle_free); break;
  default: rc = rill_call_soon_threadsafe(self->loop, handle_run, h, handle_free); break;
  }
  if ((how != SCHED_THREADSAFE && !h->h) || rc < 0) {
    int code = rc < 0 ? rc : rill_last_error();
    Py_DECREF(h);
    Py_DECREF(h);
    if (code == RILL_ECLOSED) {
      PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
      return NULL;
    }
    return rillpy_raise_code(code ? code : RILL_EINVAL);
  }
  return (PyObject *)h;
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */

/* The core calls this right around a poll that may block: the GIL is
 * released only there, so other Python threads run while the loop waits
 * and a busy loop never pays for it. */
void loop_poll_hook(rill_loop *rl, int phase, void *arg) {
  (void)rl, (void)arg;
  if (phase == RILL_POLL_BEFORE) {
    if (!released_ts && PyGILState_Check()) released_ts = PyEval_SaveThread();
  } else {
    gil_take();
  }
}

PyObject *loop_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  (void)args, (void)kw;
  PyLoop *self = (PyLoop *)type->tp_alloc(type, 0);
  if (!self) return NULL;
  self->loop = rill_loop_new();
  if (!self->loop) {
    Py_DECREF(self);
    return raise_last();
  }
  rill_loop_set_exception_handler(self->loop, core_exc_handler, self, NULL);
  rill_loop_set_poll_hook(self->loop, loop_poll_hook, NULL, NULL);
  rill_loop_set_binding(self->loop, PYTAG, self, NULL); /* rill.wrap_future finds it */
  return (PyObject *)self;
}

void loop_dealloc(PyLoop *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  self->in_dealloc = 1;
  if (self->loop && rill_loop_binding(self->loop, PYTAG) == self) {
    rill_loop_set_binding(self->loop, PYTAG, NULL, NULL);
    rill_loop_set_binding_exception_handler(self->loop, PYTAG, NULL, NULL, NULL);
  }
  if (self->loop && !self->borrowed) {
    rill_loop_free(self->loop);
    self->loop = NULL;
    rillpy_reap_pool_tstates();
  }
  Py_CLEAR(self->fatal);
  Py_CLEAR(self->task_factory);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

int loop_traverse(PyLoop *self, visitproc visit, void *arg) {
  Py_VISIT(self->fatal);
  Py_VISIT(self->task_factory);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int loop_clear(PyLoop *self) {
  Py_CLEAR(self->fatal);
  Py_CLEAR(self->task_factory);
  return 0;
}

PyObject *ensure_future_on(PyLoop *loop, PyObject *aw) {
  if (Future_Check(aw)) {
    Py_INCREF(aw);
    return aw;
  }
  int c = PyCoro_CheckExact(aw) ? 1 : is_coroutine(aw);
  if (c < 0) return NULL;
  if (c) return task_create(loop, aw, NULL, NULL);
  if (helper_wrap_awaitable && PyObject_HasAttrString(aw, "__await__")) {
    PyObject *coro = PyObject_CallOneArg(helper_wrap_awaitable, aw);
    if (!coro) return NULL;
    PyObject *t = task_create(loop, coro, NULL, NULL);
    Py_DECREF(coro);
    return t;
  }
  PyErr_Format(PyExc_TypeError, "A rill.Future, a coroutine or an awaitable is required, got %R", aw);
  return NULL;
}

/* Drives the loop until fu is done (fu NULL: until stop()). The GIL is
 * released only while rill_loop_run_once may wait. */
static int check_not_running(PyLoop *self) {
  if (!running_loop) return 0;
  PyErr_SetString(PyExc_RuntimeError, running_loop == self ? "This event loop is already running"
                                                           : "Cannot run the event loop while another loop is running");
  return -1;
}

int loop_drive(PyLoop *self, PyFuture *fu) {
  if (check_not_running(self) < 0) return -1;
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return -1;
  }
  running_loop = self;
  self->stopping = 0;
  int rc = 0, last = 0;
  while (!self->stopping) {
    if (fu && rill_future_state(fu->fut) != RILL_PENDING) {
      /* asyncio stops from fu's done callback: the iteration after fu's
       * completes too (I/O polled, what is ready run), not waiting. */
      if (last) break;
      last = 1;
    }
    int n = rill_loop_run_once(self->loop, last ? 0. : 0.25); /* the poll hook releases the GIL */
    gil_take();
    if (n < 0) {
      rillpy_raise_code(n);
      rc = -1;
      break;
    }
    if (self->fatal) {
      PyObject *e = self->fatal;
      self->fatal = NULL;
      raise_exc(e);
      rc = -1;
      break;
    }
    if (PyErr_CheckSignals() < 0) {
      rc = -1;
      break;
    }
  }
  self->stopping = 0;
  running_loop = NULL;
  return rc;
}

PyObject *loop_run_until_complete(PyLoop *self, PyObject *aw) {
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  /* Before aw is wrapped, as asyncio: a coroutine refused here is never
   * awaited, and Python says so. */
  if (check_not_running(self) < 0) return NULL;
  PyFuture *fu = (PyFuture *)ensure_future_on(self, aw);
  if (!fu) return NULL;
  if (fu->loop != self) {
    Py_DECREF(fu);
    PyErr_SetString(PyExc_ValueError, "The future belongs to a different loop than the one specified");
    return NULL;
  }
  PyObject *r = NULL;
  if (loop_drive(self, fu) == 0) {
    if (rill_future_state(fu->fut) == RILL_PENDING)
      PyErr_SetString(PyExc_RuntimeError, "Event loop stopped before Future completed.");
    else
      r = future_result_or_raise(fu);
  }
  Py_DECREF(fu);
  return r;
}

PyObject *loop_run_forever(PyLoop *self, PyObject *unused) {
  (void)unused;
  if (loop_drive(self, NULL) < 0) return NULL;
  Py_RETURN_NONE;
}

/* asyncio.run's ending, done by the core (rill_loop_shutdown): cancel every
 * pending task, run them down, report failures other than cancels. */
PyObject *loop_shutdown(PyLoop *self, PyObject *unused) {
  (void)unused;
  if (running_loop) {
    PyErr_SetString(PyExc_RuntimeError, "Cannot shut down a running event loop");
    return NULL;
  }
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) Py_RETURN_NONE;
  running_loop = self;
  int rc = rill_loop_shutdown(self->loop);
  gil_take();
  rillpy_reap_pool_tstates(); /* the pool's threads have stopped */
  running_loop = NULL;
  if (self->fatal) {
    PyObject *e = self->fatal;
    self->fatal = NULL;
    raise_exc(e);
    return NULL;
  }
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

PyObject *loop_stop(PyLoop *self, PyObject *unused) {
  (void)unused;
  self->stopping = 1;
  if (self->loop) rill_loop_stop(self->loop);
  Py_RETURN_NONE;
}

PyObject *loop_close(PyLoop *self, PyObject *unused) {
  (void)unused;
  if (running_loop == self) {
    PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
    return NULL;
  }
  if (self->borrowed) Py_RETURN_NONE; /* the host closes the loop it attached */
  if (self->loop && rill_loop_is_closed(self->loop) == 0) {
    /* Without the GIL, as a poll: the close waits for the thread jobs still
     * running (to_thread), which need it to finish; every entry from the
     * core takes it back (gil_take). */
    if (!released_ts && PyGILState_Check()) released_ts = PyEval_SaveThread();
    int rc = rill_loop_close(self->loop);
    gil_take();
    rillpy_reap_pool_tstates();
      if (rc < 0 && rc != RILL_ECLOSED) return rillpy_raise_code(rc);
  }
  Py_RETURN_NONE;
}

PyObject *loop_is_closed(PyLoop *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(!self->loop || rill_loop_is_closed(self->loop) == 1);
}

PyObject *loop_is_running(PyLoop *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(running_loop == self);
}

PyObject *loop_time(PyLoop *self, PyObject *unused) {
  (void)unused;
  return PyFloat_FromDouble(rill_loop_time(self->loop));
}

PyObject *loop_call_soon(PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return loop_schedule(self, SCHED_SOON, a, n, k);
}
PyObject *loop_call_later(PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return loop_schedule(self, SCHED_LATER, a, n, k);
}
PyObject *loop_call_at(PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return loop_schedule(self, SCHED_AT, a, n, k);
}
PyObject *loop_call_soon_threadsafe(PyLoop *self, PyObject *const *a, Py_ssize_t n,
                                           PyObject *k) {
  return loop_schedule(self, SCHED_THREADSAFE, a, n, k);
}

PyObject *loop_create_future(PyLoop *self, PyObject *unused) {
  (void)unused;
  return (PyObject *)future_wrap(self, rill_future_new(self->loop), FK_PLAIN);
}

PyObject *loop_create_task(PyLoop *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"coro", "name", "context", NULL};
  PyObject *coro, *name = Py_None, *ctx = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OO", kwlist, &coro, &name, &ctx)) return NULL;
  if (!self->task_factory) return task_create(self, coro, name, ctx);
  /* asyncio's BaseEventLoop.create_task with a task factory:
   * factory(loop, coro[, context=ctx]), then the name is set */
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  PyObject *fargs = PyTuple_Pack(2, (PyObject *)self, coro);
  if (!fargs) return NULL;
  PyObject *fkw = NULL;
  if (ctx != Py_None && !(fkw = Py_BuildValue("{sO}", "context", ctx))) {
    Py_DECREF(fargs);
    return NULL;
  }
  PyObject *factory = self->task_factory;
  Py_INCREF(factory);
  PyObject *t = PyObject_Call(factory, fargs, fkw);
  Py_DECREF(factory);
  Py_DECREF(fargs);
  Py_XDECREF(fkw);
  if (t && name != Py_None) {
    PyObject *r = PyObject_CallMethod(t, "set_name", "O", name);
    if (!r) Py_CLEAR(t);
    Py_XDECREF(r);
  }
  return t;
}

static PyObject *loop_set_task_factory(PyLoop *self, PyObject *factory) {
  if (factory != Py_None && !PyCallable_Check(factory)) {
    PyErr_SetString(PyExc_TypeError, "task factory must be a callable or None");
    return NULL;
  }
  Py_XINCREF(factory == Py_None ? NULL : factory);
  Py_XSETREF(self->task_factory, factory == Py_None ? NULL : factory);
  Py_RETURN_NONE;
}

static PyObject *loop_get_task_factory(PyLoop *self, PyObject *unused) {
  (void)unused;
  PyObject *f = self->task_factory ? self->task_factory : Py_None;
  Py_INCREF(f);
  return f;
}

PyObject *loop_tasks(PyLoop *self, PyObject *unused) {
  (void)unused;
  PyObject *list = PyList_New(0);
  if (!list) return NULL;
  for (PyTask *t = self->tasks; t; t = t->next) {
    if (PyList_Append(list, (PyObject *)t) < 0) {
      Py_DECREF(list);
      return NULL;
    }
  }
  return list;
}

PyObject *loop_set_debug(PyLoop *self, PyObject *flag) {
  int b = PyObject_IsTrue(flag);
  if (b < 0) return NULL;
  int rc = rill_loop_set_debug(self->loop, b);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

PyObject *loop_get_debug(PyLoop *self, PyObject *unused) {
  (void)unused;
  int rc = rill_loop_get_debug(self->loop);
  if (rc < 0) return rillpy_raise_code(rc);
  return PyBool_FromLong(rc);
}

PyObject *loop_set_slow(PyLoop *self, PyObject *v) {
  double d = PyFloat_AsDouble(v);
  if (d == -1.0 && PyErr_Occurred()) return NULL;
  int rc = rill_loop_set_slow_duration(self->loop, d);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

PyObject *loop_dump_tasks(PyLoop *self, PyObject *unused) {
  (void)unused;
  char *s = rill_loop_dump_tasks(self->loop);
  if (!s) return raise_last();
  PyObject *r = PyUnicode_FromString(s);
  rill_free(s);
  return r;
}

PyObject *loop_report(PyLoop *self, PyObject *msg) {
  const char *m = PyUnicode_AsUTF8(msg);
  if (!m) return NULL;
  int rc = rill_loop_report(self->loop, m, NULL);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

#define FASTKW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS
static PyMethodDef loop_methods[] = {
    {"run_until_complete", (PyCFunction)loop_run_until_complete, METH_O, NULL},
    {"run_forever", (PyCFunction)loop_run_forever, METH_NOARGS, NULL},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, NULL},
    {"_shutdown", (PyCFunction)loop_shutdown, METH_NOARGS, NULL},
    {"close", (PyCFunction)loop_close, METH_NOARGS, NULL},
    {"is_closed", (PyCFunction)loop_is_closed, METH_NOARGS, NULL},
    {"is_running", (PyCFunction)loop_is_running, METH_NOARGS, NULL},
    {"time", (PyCFunction)loop_time, METH_NOARGS, NULL},
    {"call_soon", FASTKW(loop_call_soon), NULL},
    {"call_later", FASTKW(loop_call_later), NULL},
    {"call_at", FASTKW(loop_call_at), NULL},
    {"call_soon_threadsafe", FASTKW(loop_call_soon_threadsafe), NULL},
    {"create_future", (PyCFunction)loop_create_future, METH_NOARGS, NULL},
    {"create_task", (PyCFunction)(void (*)(void))loop_create_task, METH_VARARGS | METH_KEYWORDS, NULL},
    {"set_task_factory", (PyCFunction)loop_set_task_factory, METH_O,
     "asyncio's: create_task calls factory(loop, coro[, context=...]); None for rill.Task."},
    {"get_task_factory", (PyCFunction)loop_get_task_factory, METH_NOARGS, NULL},
    {"_tasks", (PyCFunction)loop_tasks, METH_NOARGS, NULL},
    {"set_debug", (PyCFunction)loop_set_debug, METH_O, NULL},
    {"get_debug", (PyCFunction)loop_get_debug, METH_NOARGS, NULL},
    {"_set_slow_callback_duration", (PyCFunction)loop_set_slow, METH_O, NULL},
    {"dump_tasks", (PyCFunction)loop_dump_tasks, METH_NOARGS, NULL},
    {"_report", (PyCFunction)loop_report, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._LoopBase",
    .tp_basicsize = sizeof(PyLoop),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C half of rill.EventLoop.",
    .tp_new = loop_new,
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_traverse = (traverseproc)loop_traverse,
    .tp_clear = (inquiry)loop_clear,
    .tp_methods = loop_methods,
    .tp_weaklistoffset = offsetof(PyLoop, weakreflist),
};
