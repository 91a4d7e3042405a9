/* rillpy.c - the C half of the Python binding: asyncio's objects on rill.
 *
 * The core owns every semantic (scheduling, cancellation, gather, timeouts,
 * groups); this file converts values and errors and drives coroutines:
 *  - Task: a rill_task whose step sends into (or throws into) the
 *    coroutine and turns what it yielded into rill_task_wait / _yield /
 *    _sleep. The rill_task's arg owns the Python Task while it is pending.
 *  - Future: a rill_future; awaiting it yields the Future itself until it
 *    is done (am_send, no iterator object, no StopIteration object).
 *  - sleep(d): an awaitable that yields itself once; the step reads the
 *    delay from it (no future, no timer handle in Python).
 * The loop runs with the GIL held and releases it only around a poll that
 * may block (rill_loop_set_poll_hook), so a busy loop pays nothing for it;
 * every entry from the core also checks (gil_take) that it holds it. */
#include "rillpy.h"

#include <math.h>
#include <string.h>

#include "rill.h"

/* The tag of every value and payload this binding gives the core. */
static const char rillpy_tag = 'P';
#define PYTAG ((const void *)&rillpy_tag)

typedef struct PyLoop PyLoop;
typedef struct PyFuture PyFuture;
typedef struct PyTask PyTask;

static PyTypeObject LoopType, HandleType, FutureType, TaskType, SleepType, TimeoutType, GroupType;

static PyObject *CancelledError, *InvalidStateError, *RillError;
static PyObject *resume_marker; /* sent into a coroutine resumed after sleep */
static PyObject *sleep0;        /* the shared sleep(0) awaitable */
static PyObject *helper_iscoroutine, *helper_wrap_awaitable, *helper_default_handler;
static PyObject *str_throw, *str_call_exception_handler;

/* ------------------------------------------------------------------ */
/* Threads and the GIL                                                  */

/* Set while this thread's loop polls without the GIL. */
static _Thread_local PyThreadState *released_ts;
static _Thread_local PyLoop *running_loop;
static _Thread_local PyTask *current_task;

static inline void gil_take(void) {
  if (released_ts) {
    PyThreadState *ts = released_ts;
    released_ts = NULL;
    PyEval_RestoreThread(ts);
  }
}

/* Takes the GIL for a call from the core: 1 if it had to be ensured (give
 * it back with PyGILState_Release), 0 if this thread holds it now. */
static inline int gil_enter(PyGILState_STATE *s) {
  gil_take();
  if (PyGILState_Check()) return 0;
  *s = PyGILState_Ensure();
  return 1;
}

/* A rill_free_fn for a Python reference: any thread, any GIL state. */
static void decref_any(void *p) {
  if (!p) return;
  gil_take();
  if (PyGILState_Check()) {
    Py_DECREF((PyObject *)p);
    return;
  }
  if (!Py_IsInitialized()) return;
  PyGILState_STATE s = PyGILState_Ensure();
  Py_DECREF((PyObject *)p);
  PyGILState_Release(s);
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */

static PyObject *exc_class_for(int code) {
  switch (code) {
  case RILL_EINVAL: return PyExc_ValueError;
  case RILL_ESTATE: return InvalidStateError;
  case RILL_ECLOSED: return PyExc_RuntimeError;
  case RILL_ENOMEM: return PyExc_MemoryError;
  case RILL_ECANCELLED: return CancelledError;
  case RILL_ETIMEDOUT: return PyExc_TimeoutError;
  case RILL_EBUSY: return PyExc_RuntimeError;
  case RILL_ETYPE: return PyExc_TypeError;
  case RILL_EINTR: return PyExc_InterruptedError;
  case RILL_ESYS: return PyExc_OSError;
  default: return RillError;
  }
}

/* A new exception instance for code and message (NULL: the code's text). */
static PyObject *exc_for_code(int code, const char *message) {
  if (!message || !message[0]) message = rill_strerror(code);
  PyObject *cls = exc_class_for(code);
  PyObject *exc;
  if (cls == CancelledError) {
    exc = PyObject_CallNoArgs(cls);
  } else {
    exc = PyObject_CallFunction(cls, "s", message);
  }
  if (exc && cls == RillError) {
    PyObject *c = PyLong_FromLong(code);
    if (!c || PyObject_SetAttrString(exc, "code", c) < 0) Py_CLEAR(exc);
    Py_XDECREF(c);
  }
  return exc;
}

/* Raises exc (a reference stolen) with its own traceback. */
static void raise_exc(PyObject *exc) {
  PyObject *tb = PyException_GetTraceback(exc);
  PyObject *type = (PyObject *)Py_TYPE(exc);
  Py_INCREF(type);
  PyErr_Restore(type, exc, tb);
}

PyObject *rillpy_raise_code(int code) {
  const char *msg = rill_last_error() == code ? rill_last_error_message() : NULL;
  PyObject *exc = exc_for_code(code, msg);
  if (exc) raise_exc(exc);
  return NULL;
}

static PyObject *raise_last(void) {
  int code = rill_last_error();
  return rillpy_raise_code(code ? code : RILL_EINVAL);
}

/* The raised exception, normalized, with its traceback attached (new
 * reference; NULL if none). */
static PyObject *fetch_exc(void) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  if (!type) return NULL;
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  return value;
}

static PyObject *make_cancelled(const char *msg) {
  if (msg && msg[0]) return PyObject_CallFunction(CancelledError, "s", msg);
  return PyObject_CallNoArgs(CancelledError);
}

/* ------------------------------------------------------------------ */
/* Objects                                                              */

struct PyLoop {
  PyObject_HEAD
  rill_loop *loop;
  PyObject *fatal;  /* KeyboardInterrupt / SystemExit to re-raise from the driver */
  PyTask *tasks;    /* pending Python tasks (borrowed: each owns itself) */
  int stopping, in_dealloc;
  int borrowed;     /* attached to a host's rill_loop (_attach_loop): never closed or freed here */
  PyObject *weakreflist;
  /* Futures the exception handler retained while reading their failure;
   * released later (see core_exc_handler). */
  rill_future **deferred;
  size_t ndeferred, capdeferred;
};

static void flush_deferred(PyLoop *loop) {
  while (loop->ndeferred) rill_future_release(loop->deferred[--loop->ndeferred]);
}

enum { FK_PLAIN = 0, FK_GATHER = 1, FK_GATHER_RE = 2 };

struct PyFuture {
  PyObject_HEAD
  rill_future *fut;   /* owned (for a Task: borrowed from the task) */
  PyLoop *loop;
  PyObject *callbacks; /* list of (fn, context) or NULL */
  PyObject *core_obj;  /* borrowed: the value/payload we gave the core */
  PyObject *weakreflist;
  unsigned char kind, cb_registered;
};

struct PyTask {
  PyFuture base;
  rill_task *task;
  PyObject *coro, *ctx, *pending_exc;
  PyTask *prev, *next;
  unsigned char in_list, send_marker, ctx_untracked, stepped;
};

typedef struct {
  PyObject_HEAD
  rill_handle *h;
  PyObject *cb, *args, *ctx;
  PyLoop *loop;
  int cancelled;
} PyHandle;

typedef struct {
  PyObject_HEAD
  double delay;
  PyObject *result;
} PySleep;

typedef struct {
  PyObject_HEAD
  rill_timeout *t;
} PyTimeoutScope;

typedef struct {
  PyObject_HEAD
  rill_group *g;
  PyLoop *loop;
} PyGroup;

#define Future_Check(o) PyObject_TypeCheck((o), &FutureType)
#define Task_Check(o) PyObject_TypeCheck((o), &TaskType)

static PyLoop *get_running(void) {
  if (!running_loop) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
  return running_loop;
}

/* ------------------------------------------------------------------ */
/* Reporting to the loop's exception handler                            */

static void call_handler(PyLoop *loop, PyObject *context) {
  PyObject *r = NULL;
  if (loop && !loop->in_dealloc && Py_REFCNT(loop) > 0) {
    r = PyObject_CallMethodOneArg((PyObject *)loop, str_call_exception_handler, context);
  } else if (helper_default_handler) {
    r = PyObject_CallOneArg(helper_default_handler, context);
  } else {
    PyObject_Print(context, stderr, 0);
    fputc('\n', stderr);
    return;
  }
  if (!r) PyErr_WriteUnraisable(context);
  Py_XDECREF(r);
}

/* The core's exception handler: unretrieved failures, pending tasks
 * destroyed at close, slow callbacks, rill_loop_report. */
static void core_exc_handler(rill_loop *rl, const char *message, rill_future *fut, void *arg) {
  (void)rl;
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyLoop *loop = arg;
  PyObject *et, *ev, *etb;
  PyErr_Fetch(&et, &ev, &etb);
  PyObject *ctx = PyDict_New();
  if (ctx) {
    PyObject *m = PyUnicode_FromString(message);
    if (m) PyDict_SetItemString(ctx, "message", m);
    Py_XDECREF(m);
    if (fut) {
      int st = rill_future_state(fut);
      /* Reading the failure marks it retrieved, which can drop the core's
       * last reference while the core still uses fut after this handler
       * returns (future.c rill_future_release, loop close). Keep fut alive
       * and release it once the core is done with it. */
      if (st == RILL_FAILED && loop) {
        if (loop->ndeferred == loop->capdeferred) {
          size_t cap = loop->capdeferred ? loop->capdeferred * 2 : 8;
          rill_future **d = PyMem_Realloc(loop->deferred, cap * sizeof *d);
          if (d) {
            loop->deferred = d;
            loop->capdeferred = cap;
          }
        }
        if (loop->ndeferred < loop->capdeferred)
          loop->deferred[loop->ndeferred++] = rill_future_retain(fut);
        else
          st = RILL_PENDING; /* cannot keep it: do not touch the failure */
      }
      if (st == RILL_FAILED) {
        PyObject *payload = rill_future_error_payload(fut, PYTAG);
        if (payload) {
          PyDict_SetItemString(ctx, "exception", payload);
        } else {
          PyObject *e = exc_for_code(rill_future_error(fut), rill_future_error_message(fut));
          if (e) PyDict_SetItemString(ctx, "exception", e);
          Py_XDECREF(e);
        }
      }
    }
    PyErr_Clear();
    call_handler(loop, ctx);
    Py_DECREF(ctx);
  }
  PyErr_Restore(et, ev, etb);
  if (ensured) PyGILState_Release(gs);
}

/* A callback raised: KeyboardInterrupt/SystemExit stop the loop and leave
 * run_until_complete; anything else goes to the exception handler. */
static void report_callback_error(PyLoop *loop, PyObject *what, PyObject *handle) {
  PyObject *exc = fetch_exc();
  if (!exc) return;
  if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception) &&
      !PyObject_TypeCheck(exc, (PyTypeObject *)CancelledError)) {
    if (!loop->fatal) {
      loop->fatal = exc;
      exc = NULL;
    }
    if (loop->loop) rill_loop_stop(loop->loop);
    loop->stopping = 1;
    Py_XDECREF(exc);
    return;
  }
  PyObject *ctx = PyDict_New();
  PyObject *msg = PyUnicode_FromFormat("Exception in callback %R", what);
  if (ctx && msg) {
    PyDict_SetItemString(ctx, "message", msg);
    PyDict_SetItemString(ctx, "exception", exc);
    if (handle) PyDict_SetItemString(ctx, "handle", handle);
    call_handler(loop, ctx);
  }
  PyErr_Clear();
  Py_XDECREF(msg);
  Py_XDECREF(ctx);
  Py_DECREF(exc);
}

static void run_callback(PyLoop *loop, PyObject *cb, PyObject *args, PyObject *ctx,
                         PyObject *handle) {
  if (ctx && PyContext_Enter(ctx) < 0) {
    report_callback_error(loop, cb, handle);
    return;
  }
  PyObject *r = args ? PyObject_Call(cb, args, NULL) : PyObject_CallNoArgs(cb);
  PyObject *et = NULL, *ev = NULL, *etb = NULL;
  if (!r) PyErr_Fetch(&et, &ev, &etb);
  if (ctx) PyContext_Exit(ctx);
  if (!r) {
    PyErr_Restore(et, ev, etb);
    report_callback_error(loop, cb, handle);
  } else {
    Py_DECREF(r);
  }
}

/* ------------------------------------------------------------------ */
/* Values: Python object <-> rill_future                                */

/* Completes f with v (the kinds every language shares travel natively).
 * Returns the object handed to the core as a pointer (borrowed), or NULL. */
static int set_value(rill_future *f, PyObject *v, PyObject **core_obj) {
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
static PyObject *outcome_value(rill_future *f) {
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
static PyObject *outcome_exc(rill_future *f) {
  if (rill_future_state(f) == RILL_CANCELLED) return make_cancelled(rill_future_error_message(f));
  PyObject *payload = rill_future_error_payload(f, PYTAG);
  if (payload) {
    Py_INCREF(payload);
    return payload;
  }
  return exc_for_code(rill_future_error(f), rill_future_error_message(f));
}

static PyObject *future_value(PyFuture *self) {
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
static PyObject *future_result_or_raise(PyFuture *self) {
  switch (rill_future_state(self->fut)) {
  case RILL_DONE: return future_value(self);
  case RILL_FAILED:
  case RILL_CANCELLED: {
    PyObject *exc = outcome_exc(self->fut);
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

static PyFuture *future_wrap(PyLoop *loop, rill_future *f, int kind) {
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
  self->weakreflist = NULL;
  self->kind = (unsigned char)kind;
  self->cb_registered = 0;
  PyObject_GC_Track(self);
  return self;
}

static PyObject *future_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
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

static int future_traverse(PyFuture *self, visitproc visit, void *arg) {
  Py_VISIT(self->loop);
  Py_VISIT(self->callbacks);
  /* The core holds one reference to core_obj on this future's behalf, so
   * a cycle through a result or an exception (exception -> traceback ->
   * frame -> task) is collectable. tp_finalize, which the collector runs
   * before any tp_clear, gives that reference back by releasing the core
   * future; if something else still retains it (a gather), the object is
   * then seen as reachable again and is not cleared. */
  if (self->fut) Py_VISIT(self->core_obj);
  return 0;
}

static void future_finalize(PyFuture *self) {
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

static int future_clear_refs(PyFuture *self) {
  Py_CLEAR(self->callbacks);
  return 0;
}

static void future_dealloc(PyFuture *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  Py_CLEAR(self->callbacks);
  rill_future *f = self->fut;
  self->fut = NULL;
  rill_future_release(f);
  Py_CLEAR(self->loop);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The done callbacks registered with add_done_callback run here, all in
 * the call_soon the core scheduled, in registration order. */
static void future_done_cb(rill_future *f, void *arg) {
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

static PyObject *future_add_done_callback(PyFuture *self, PyObject *const *args, Py_ssize_t nargs,
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

static PyObject *future_remove_done_callback(PyFuture *self, PyObject *fn) {
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

static PyObject *future_result(PyFuture *self, PyObject *unused) {
  (void)unused;
  return future_result_or_raise(self);
}

static PyObject *future_exception(PyFuture *self, PyObject *unused) {
  (void)unused;
  switch (rill_future_state(self->fut)) {
  case RILL_DONE: Py_RETURN_NONE;
  case RILL_FAILED: return outcome_exc(self->fut);
  case RILL_CANCELLED: {
    PyObject *exc = outcome_exc(self->fut);
    if (exc) raise_exc(exc);
    return NULL;
  }
  case RILL_PENDING: PyErr_SetString(InvalidStateError, "Exception is not set."); return NULL;
  default: return raise_last();
  }
}

static PyObject *future_done(PyFuture *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_future_state(self->fut) != RILL_PENDING);
}

static PyObject *future_cancelled(PyFuture *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_future_state(self->fut) == RILL_CANCELLED);
}

/* The optional msg of cancel(msg=None) as a str (new reference), Py_None
 * for none, NULL on error. */
static PyObject *msg_arg(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *msg = Py_None;
  if (nargs > 1) goto bad;
  if (nargs == 1) msg = args[0];
  if (kwnames) {
    if (PyTuple_GET_SIZE(kwnames) != 1 || nargs == 1 ||
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "msg") != 0)
      goto bad;
    msg = args[nargs];
  }
  if (msg == Py_None || PyUnicode_Check(msg)) {
    Py_INCREF(msg);
    return msg;
  }
  return PyObject_Str(msg);
bad:
  PyErr_SetString(PyExc_TypeError, "cancel() takes an optional msg");
  return NULL;
}

static PyObject *future_cancel(PyFuture *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
  PyObject *m = msg_arg(args, nargs, kwnames);
  const char *msg = m && m != Py_None ? PyUnicode_AsUTF8(m) : NULL;
  if (!m || (m != Py_None && !msg)) {
    Py_XDECREF(m);
    return NULL;
  }
  int rc = rill_future_cancel_msg(self->fut, msg); /* copies msg */
  Py_DECREF(m);
  if (rc < 0) return rillpy_raise_code(rc);
  return PyBool_FromLong(rc);
}

static PyObject *future_set_result(PyFuture *self, PyObject *value) {
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
static int fail_with(rill_future *f, PyObject *exc, PyObject **core_obj) {
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

static PyObject *future_set_exception(PyFuture *self, PyObject *exc) {
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

static PyObject *future_get_loop(PyFuture *self, PyObject *unused) {
  (void)unused;
  Py_INCREF(self->loop);
  return (PyObject *)self->loop;
}

static PyObject *future_state_str(PyFuture *self, void *closure) {
  (void)closure;
  switch (rill_future_state(self->fut)) {
  case RILL_PENDING: return PyUnicode_FromString("PENDING");
  case RILL_CANCELLED: return PyUnicode_FromString("CANCELLED");
  default: return PyUnicode_FromString("FINISHED");
  }
}

static PyObject *future_get_blocking(PyFuture *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(rill_future_state(self->fut) == RILL_PENDING);
}

/* await: yields the future itself while it is pending; no iterator. */
static PySendResult future_am_send(PyFuture *self, PyObject *arg, PyObject **result) {
  (void)arg;
  if (rill_future_state(self->fut) == RILL_PENDING) {
    Py_INCREF(self);
    *result = (PyObject *)self;
    return PYGEN_NEXT;
  }
  *result = future_result_or_raise(self);
  return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

static PyObject *self_iter(PyObject *self) {
  Py_INCREF(self);
  return self;
}

static PyObject *future_iternext(PyFuture *self) {
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

static PyObject *future_repr(PyFuture *self) {
  PyObject *st = future_state_str(self, NULL);
  if (!st) return NULL;
  PyObject *r = PyUnicode_FromFormat("<%s %U>", Py_TYPE(self)->tp_name, st);
  Py_DECREF(st);
  return r;
}

/* Embedding: the address of the rill_future this object wraps (borrowed:
 * a host retains it with rill_future_retain to keep it past this object). */
static PyObject *future_address(PyFuture *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromVoidPtr(self->fut);
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
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL}};

/* asyncio's tasks reset the flag on what they were given; accepted, ignored. */
static int future_set_blocking(PyFuture *self, PyObject *v, void *closure) {
  (void)self, (void)v, (void)closure;
  return 0;
}

static PyGetSetDef future_getset[] = {
    {"_state", (getter)future_state_str, NULL, NULL, NULL},
    {"_asyncio_future_blocking", (getter)future_get_blocking, (setter)future_set_blocking, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyAsyncMethods future_async = {.am_await = self_iter, .am_send = (sendfunc)future_am_send};

static PyTypeObject FutureType = {
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

/* ------------------------------------------------------------------ */
/* sleep                                                                */

static PySendResult sleep_am_send(PySleep *self, PyObject *arg, PyObject **result) {
  if (arg == resume_marker) {
    PyObject *r = self->result ? self->result : Py_None;
    Py_INCREF(r);
    *result = r;
    return PYGEN_RETURN;
  }
  Py_INCREF(self);
  *result = (PyObject *)self;
  return PYGEN_NEXT;
}

static PyObject *sleep_iternext(PySleep *self) {
  Py_INCREF(self);
  return (PyObject *)self;
}

static void sleep_dealloc(PySleep *self) {
  Py_CLEAR(self->result);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyAsyncMethods sleep_async = {.am_await = self_iter, .am_send = (sendfunc)sleep_am_send};

static PyTypeObject SleepType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._Sleep",
    .tp_basicsize = sizeof(PySleep),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What rill.sleep() returns: awaitable once, in a rill task.",
    .tp_dealloc = (destructor)sleep_dealloc,
    .tp_as_async = &sleep_async,
    .tp_iter = self_iter,
    .tp_iternext = (iternextfunc)sleep_iternext,
};

static PyObject *mod_sleep(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
  (void)mod;
  PyObject *result = nargs > 1 ? args[1] : Py_None;
  if (nargs < 1 || nargs > 2) goto bad;
  if (kwnames) {
    if (PyTuple_GET_SIZE(kwnames) != 1 || nargs != 1 ||
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "result") != 0)
      goto bad;
    result = args[1];
  }
  double d;
  if (PyLong_CheckExact(args[0])) {
    d = PyLong_AsDouble(args[0]);
  } else {
    d = PyFloat_AsDouble(args[0]);
  }
  if (d == -1.0 && PyErr_Occurred()) return NULL;
  if (isnan(d)) {
    PyErr_SetString(PyExc_ValueError, "sleep() delay is NaN");
    return NULL;
  }
  if (d <= 0 && result == Py_None) {
    Py_INCREF(sleep0);
    return sleep0;
  }
  PySleep *s = PyObject_New(PySleep, &SleepType);
  if (!s) return NULL;
  s->delay = d;
  Py_INCREF(result);
  s->result = result;
  return (PyObject *)s;
bad:
  PyErr_SetString(PyExc_TypeError, "sleep(delay, result=None)");
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Task                                                                 */

static void task_unlink(PyTask *t) {
  if (!t->in_list) return;
  PyLoop *loop = t->base.loop;
  if (t->prev) t->prev->next = t->next;
  else loop->tasks = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = NULL;
  t->in_list = 0;
}

/* The rill_task's free_arg: the task is done (or destroyed at close). */
static void task_free_arg(void *arg) {
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyTask *t = arg;
  task_unlink(t);
  Py_CLEAR(t->pending_exc);
  if (!t->stepped && t->coro) { /* never started: close it, no "never awaited" warning */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *r = PyObject_CallMethod(t->coro, "close", NULL);
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
    PyErr_Restore(et, ev, etb);
  }
  /* A pending task is owned by the loop and can never be garbage, so the
   * collector only sees it from now on (fewer objects to traverse). */
  if (t->ctx_untracked) {
    t->ctx_untracked = 0;
    PyObject_GC_Track(t->ctx);
  }
  if (!PyObject_GC_IsTracked((PyObject *)t)) PyObject_GC_Track(t);
  Py_DECREF(t);
  if (ensured) PyGILState_Release(gs);
}

static PySendResult coro_throw(PyObject *coro, PyObject *exc, PyObject **result) {
  PyObject *r = PyObject_CallMethodOneArg(coro, str_throw, exc);
  if (r) {
    *result = r;
    return PYGEN_NEXT;
  }
  if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
    PyObject *e = fetch_exc();
    PyObject *v = e ? PyObject_GetAttrString(e, "value") : NULL;
    Py_XDECREF(e);
    if (!v) return PYGEN_ERROR;
    *result = v;
    return PYGEN_RETURN;
  }
  *result = NULL;
  return PYGEN_ERROR;
}

static void task_set_pending_exc(PyTask *t, PyObject *exc) {
  Py_XSETREF(t->pending_exc, exc);
}

/* The coroutine yielded y: arrange the next step. */
static void task_handle_yield(PyTask *t, rill_task *rt, PyObject *y) {
  int rc;
  if (Py_IS_TYPE(y, &SleepType)) {
    double d = ((PySleep *)y)->delay;
    t->send_marker = 1;
    rc = d > 0 ? rill_task_sleep(rt, d) : rill_task_yield(rt);
  } else if (Future_Check(y)) {
    PyFuture *f = (PyFuture *)y;
    if (f == &t->base) {
      task_set_pending_exc(t, PyObject_CallFunction(PyExc_RuntimeError, "s",
                                                    "Task cannot await on itself"));
      rc = rill_task_yield(rt);
    } else {
      rc = rill_task_wait(rt, f->fut);
      if (rc == RILL_EINVAL) {
        task_set_pending_exc(
            t, PyUnicode_FromFormat("Task got Future %R attached to a different loop", y));
        if (t->pending_exc)
          Py_SETREF(t->pending_exc, PyObject_CallOneArg(PyExc_RuntimeError, t->pending_exc));
        rc = rill_task_yield(rt);
      }
    }
  } else if (y == Py_None) {
    rc = rill_task_yield(rt); /* a bare yield: one iteration, as asyncio */
  } else {
    PyObject *msg;
    if (PyObject_HasAttrString(y, "_asyncio_future_blocking"))
      msg = PyUnicode_FromFormat(
          "rill task got a foreign future %R: futures of another event loop "
          "(e.g. asyncio's) cannot be awaited in a rill task",
          y);
    else
      msg = PyUnicode_FromFormat("Task got bad yield: %R", y);
    task_set_pending_exc(t, msg ? PyObject_CallOneArg(PyExc_RuntimeError, msg) : NULL);
    Py_XDECREF(msg);
    rc = rill_task_yield(rt);
  }
  if (!t->pending_exc) PyErr_Clear();
  if (rc < 0) {
    /* Cannot be resumed: fail the task with the core's error. */
    PyObject *exc = exc_for_code(rc, rill_last_error_message());
    PyObject *core_obj;
    if (exc) {
      fail_with(rt ? rill_task_future(rt) : NULL, exc, &core_obj);
      t->base.core_obj = core_obj;
      Py_DECREF(exc);
    }
    PyErr_Clear();
  }
}

static void task_handle_error(PyTask *t, rill_task *rt) {
  PyObject *exc = fetch_exc();
  if (!exc) exc = PyObject_CallFunction(PyExc_SystemError, "s", "task step failed without exception");
  if (!exc) {
    PyErr_Clear();
    rill_future_fail(rill_task_future(rt), RILL_ENOMEM, "out of memory", NULL, NULL, NULL);
    return;
  }
  PyObject *core_obj = NULL;
  int rc = fail_with(rill_task_future(rt), exc, &core_obj);
  if (rc == 0) t->base.core_obj = core_obj;
  PyErr_Clear();
  if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception) &&
      !PyObject_TypeCheck(exc, (PyTypeObject *)CancelledError)) {
    /* KeyboardInterrupt, SystemExit: leave the loop with it, as asyncio */
    PyLoop *loop = t->base.loop;
    if (!loop->fatal) {
      Py_INCREF(exc);
      loop->fatal = exc;
    }
    loop->stopping = 1;
    rill_loop_stop(loop->loop);
  }
  Py_DECREF(exc);
}

/* The step: one send (or throw) into the coroutine. */
static void task_step(rill_task *rt, void *arg) {
  gil_take();
  PyTask *t = arg;
  PyObject *res = NULL;
  PySendResult sr;
  t->stepped = 1;
  PyTask *outer = current_task;
  current_task = t;
  /* A loop driven by a host (an attached loop, rill._attach_loop): the
   * task's loop is the running loop for the step. */
  PyLoop *outer_loop = running_loop;
  if (!running_loop) running_loop = t->base.loop;
  if (t->ctx && PyContext_Enter(t->ctx) < 0) {
    current_task = outer;
    running_loop = outer_loop;
    task_handle_error(t, rt);
    return;
  }
  if (rill_task_cancel_requested(rt) == 1) {
    Py_CLEAR(t->pending_exc);
    t->send_marker = 0;
    PyObject *exc = make_cancelled(rill_task_cancel_message(rt));
    sr = exc ? coro_throw(t->coro, exc, &res) : PYGEN_ERROR;
    Py_XDECREF(exc);
  } else if (t->pending_exc) {
    PyObject *exc = t->pending_exc;
    t->pending_exc = NULL;
    t->send_marker = 0;
    sr = coro_throw(t->coro, exc, &res);
    Py_DECREF(exc);
  } else {
    PyObject *v = t->send_marker ? resume_marker : Py_None;
    t->send_marker = 0;
    sr = PyIter_Send(t->coro, v, &res);
  }
  if (t->ctx) {
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (sr == PYGEN_ERROR) PyErr_Fetch(&et, &ev, &etb);
    if (PyContext_Exit(t->ctx) < 0) PyErr_Clear();
    if (sr == PYGEN_ERROR) PyErr_Restore(et, ev, etb);
  }
  current_task = outer;
  running_loop = outer_loop;
  switch (sr) {
  case PYGEN_RETURN: {
    PyObject *core_obj;
    int rc = set_value(rill_task_future(rt), res, &core_obj);
    if (rc == 0) t->base.core_obj = core_obj;
    else PyErr_Clear();
    Py_DECREF(res);
    break;
  }
  case PYGEN_NEXT:
    task_handle_yield(t, rt, res);
    Py_DECREF(res);
    break;
  default: task_handle_error(t, rt); break;
  }
}

static int is_coroutine(PyObject *o) {
  if (PyCoro_CheckExact(o)) return 1;
  if (!helper_iscoroutine) return 0;
  PyObject *r = PyObject_CallOneArg(helper_iscoroutine, o);
  if (!r) return -1;
  int b = PyObject_IsTrue(r);
  Py_DECREF(r);
  return b;
}

static PyObject *task_create(PyLoop *loop, PyObject *coro, PyObject *name, PyObject *ctx) {
  if (Py_IS_TYPE(coro, &SleepType) && helper_wrap_awaitable) {
    /* rill.sleep() is not a coroutine function, asyncio.sleep() is:
     * create_task(sleep(d)) works in both. */
    PyObject *c = PyObject_CallOneArg(helper_wrap_awaitable, coro);
    if (!c) return NULL;
    PyObject *t = task_create(loop, c, name, ctx);
    Py_DECREF(c);
    return t;
  }
  int ok = is_coroutine(coro);
  if (ok < 0) return NULL;
  if (!ok) {
    PyErr_Format(PyExc_TypeError, "a coroutine was expected, got %R", coro);
    return NULL;
  }
  if (!loop->loop || rill_loop_is_closed(loop->loop) == 1) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  PyTask *t = PyObject_GC_New(PyTask, &TaskType);
  if (!t) return NULL;
  t->base.fut = NULL;
  Py_INCREF(loop);
  t->base.loop = loop;
  t->base.callbacks = NULL;
  t->base.core_obj = NULL;
  t->base.weakreflist = NULL;
  t->base.kind = FK_PLAIN;
  t->base.cb_registered = 0;
  t->task = NULL;
  Py_INCREF(coro);
  t->coro = coro;
  t->pending_exc = NULL;
  t->prev = t->next = NULL;
  t->in_list = 0;
  t->send_marker = 0;
  t->ctx_untracked = 0;
  if (ctx && ctx != Py_None) {
    Py_INCREF(ctx);
    t->ctx = ctx;
  } else {
    t->ctx = PyContext_CopyCurrent();
    if (!t->ctx) {
      Py_DECREF(t);
      return NULL;
    }
    /* While the task is pending, the task and its own context copy are
     * alive for sure (the loop owns the task): keep both out of the
     * collector's work until the task is done (task_free_arg tracks them
     * again). A context the caller passed may be shared: left alone. */
    if (PyObject_GC_IsTracked(t->ctx)) {
      PyObject_GC_UnTrack(t->ctx);
      t->ctx_untracked = 1;
    }
  }
  /* Cancelled before its first step, the core ends it without a step
   * (asyncio: the coroutine never runs); task_free_arg closes it. */
  rill_task *rt = rill_task_new_v2(loop->loop, task_step, t, task_free_arg,
                                   RILL_TASK_SKIP_CANCELLED_START);
  if (!rt) {
    Py_DECREF(t);
    return raise_last();
  }
  Py_INCREF(t); /* owned by the rill_task until it is done */
  t->task = rt;
  t->base.fut = rill_task_future(rt);
  t->next = loop->tasks;
  if (loop->tasks) loop->tasks->prev = t;
  loop->tasks = t;
  t->in_list = 1;
  if (name && name != Py_None) {
    PyObject *s = PyObject_Str(name);
    const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
    if (u) rill_task_set_name(rt, u);
    Py_XDECREF(s);
    if (!u) {
      Py_DECREF(t);
      return NULL;
    }
  }
  return (PyObject *)t; /* tracked by the collector once done (task_free_arg) */
}

static PyObject *task_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"coro", "loop", "name", "context", NULL};
  PyObject *coro, *loopobj = Py_None, *name = Py_None, *ctx = Py_None;
  if (type != &TaskType) {
    PyErr_SetString(PyExc_TypeError, "rill.Task cannot be subclassed");
    return NULL;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OOO", kwlist, &coro, &loopobj, &name, &ctx))
    return NULL;
  PyLoop *loop = loopobj == Py_None ? get_running() : (PyLoop *)loopobj;
  if (!loop) return NULL;
  if (!PyObject_TypeCheck(loop, &LoopType)) {
    PyErr_SetString(PyExc_TypeError, "loop must be a rill event loop");
    return NULL;
  }
  return task_create(loop, coro, name, ctx);
}

static int task_traverse(PyTask *self, visitproc visit, void *arg) {
  Py_VISIT(self->coro);
  Py_VISIT(self->ctx);
  Py_VISIT(self->pending_exc);
  return future_traverse(&self->base, visit, arg);
}

static int task_clear(PyTask *self) {
  /* Only a done task can be unreachable (a pending one is owned by the
   * loop), so its coroutine is finished and can go. */
  Py_CLEAR(self->coro);
  Py_CLEAR(self->ctx);
  Py_CLEAR(self->pending_exc);
  return future_clear_refs(&self->base);
}

static void task_dealloc(PyTask *self) {
  PyObject_GC_UnTrack(self);
  if (self->ctx_untracked) {
    self->ctx_untracked = 0;
    PyObject_GC_Track(self->ctx);
  }
  if (self->base.weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  Py_CLEAR(self->coro);
  Py_CLEAR(self->ctx);
  Py_CLEAR(self->pending_exc);
  Py_CLEAR(self->base.callbacks);
  rill_task *rt = self->task;
  self->task = NULL;
  self->base.fut = NULL;
  rill_task_release(rt);
  Py_CLEAR(self->base.loop);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *task_cancel(PyTask *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames) {
  PyObject *m = msg_arg(args, nargs, kwnames);
  const char *msg = m && m != Py_None ? PyUnicode_AsUTF8(m) : NULL;
  if (!m || (m != Py_None && !msg)) {
    Py_XDECREF(m);
    return NULL;
  }
  int rc = rill_task_cancel(self->task, msg); /* copies msg */
  Py_DECREF(m);
  if (rc < 0) return rillpy_raise_code(rc);
  return PyBool_FromLong(rc);
}

static PyObject *task_cancelling(PyTask *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_task_cancelling(self->task));
}

static PyObject *task_uncancel(PyTask *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_task_uncancel(self->task));
}

static PyObject *task_get_name(PyTask *self, PyObject *unused) {
  (void)unused;
  const char *n = rill_task_name(self->task);
  return PyUnicode_FromString(n ? n : "");
}

static PyObject *task_set_name(PyTask *self, PyObject *name) {
  PyObject *s = PyObject_Str(name);
  const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
  if (u) rill_task_set_name(self->task, u);
  Py_XDECREF(s);
  if (!u) return NULL;
  Py_RETURN_NONE;
}

static PyObject *task_get_coro(PyTask *self, PyObject *unused) {
  (void)unused;
  PyObject *c = self->coro ? self->coro : Py_None;
  Py_INCREF(c);
  return c;
}

static PyObject *task_get_context(PyTask *self, PyObject *unused) {
  (void)unused;
  PyObject *c = self->ctx ? self->ctx : Py_None;
  Py_INCREF(c);
  return c;
}

static PyObject *task_no_set(PyTask *self, PyObject *arg) {
  (void)self, (void)arg;
  PyErr_SetString(PyExc_RuntimeError, "Task does not support set_result/set_exception operations");
  return NULL;
}

static PyObject *task_repr(PyTask *self) {
  PyObject *st = future_state_str(&self->base, NULL);
  if (!st) return NULL;
  const char *n = rill_task_name(self->task);
  PyObject *r = PyUnicode_FromFormat("<Task %U name='%s' coro=%R>", st, n ? n : "",
                                     self->coro ? self->coro : Py_None);
  Py_DECREF(st);
  return r;
}

static PyMethodDef task_methods[] = {
    {"cancel", (PyCFunction)(void (*)(void))task_cancel, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"cancelling", (PyCFunction)task_cancelling, METH_NOARGS, NULL},
    {"uncancel", (PyCFunction)task_uncancel, METH_NOARGS, NULL},
    {"get_name", (PyCFunction)task_get_name, METH_NOARGS, NULL},
    {"set_name", (PyCFunction)task_set_name, METH_O, NULL},
    {"get_coro", (PyCFunction)task_get_coro, METH_NOARGS, NULL},
    {"get_context", (PyCFunction)task_get_context, METH_NOARGS, NULL},
    {"set_result", (PyCFunction)task_no_set, METH_O, NULL},
    {"set_exception", (PyCFunction)task_no_set, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject TaskType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill.Task",
    .tp_basicsize = sizeof(PyTask),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A coroutine driven by a rill task (asyncio.Task's API).",
    .tp_new = task_new,
    .tp_dealloc = (destructor)task_dealloc,
    .tp_traverse = (traverseproc)task_traverse,
    .tp_clear = (inquiry)task_clear,
    .tp_finalize = (destructor)future_finalize,
    .tp_repr = (reprfunc)task_repr,
    .tp_methods = task_methods,
};

/* ------------------------------------------------------------------ */
/* Handles (call_soon, call_later, call_at, call_soon_threadsafe)       */

static void handle_run(void *arg) {
  gil_take();
  PyHandle *h = arg;
  if (h->cancelled || !h->cb) return;
  run_callback(h->loop, h->cb, h->args, h->ctx, (PyObject *)h);
}

static void handle_free(void *arg) {
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyHandle *h = arg;
  Py_CLEAR(h->cb);
  Py_CLEAR(h->args);
  Py_CLEAR(h->ctx);
  Py_DECREF(h);
  if (ensured) PyGILState_Release(gs);
}

static void handle_dealloc(PyHandle *h) {
  rill_handle_release(h->h);
  h->h = NULL;
  Py_CLEAR(h->cb);
  Py_CLEAR(h->args);
  Py_CLEAR(h->ctx);
  Py_CLEAR(h->loop);
  Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *handle_cancel(PyHandle *h, PyObject *unused) {
  (void)unused;
  h->cancelled = 1;
  if (h->h) rill_handle_cancel(h->h);
  Py_RETURN_NONE;
}

static PyObject *handle_cancelled(PyHandle *h, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(h->cancelled);
}

static PyObject *handle_when(PyHandle *h, PyObject *unused) {
  (void)unused;
  return PyFloat_FromDouble(h->h ? rill_handle_when(h->h) : NAN);
}

static PyObject *handle_repr(PyHandle *h) {
  if (h->cb) return PyUnicode_FromFormat("<Handle %R>", h->cb);
  return PyUnicode_FromFormat("<Handle %s>", h->cancelled ? "cancelled" : "done");
}

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS, NULL},
    {"when", (PyCFunction)handle_when, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill.Handle",
    .tp_basicsize = sizeof(PyHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A scheduled callback (asyncio.Handle / TimerHandle).",
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_repr = (reprfunc)handle_repr,
    .tp_methods = handle_methods,
};

enum { SCHED_SOON, SCHED_LATER, SCHED_AT, SCHED_THREADSAFE };

static PyObject *tuple_from(PyObject *const *items, Py_ssize_t n) {
  PyObject *t = PyTuple_New(n);
  if (!t) return NULL;
  for (Py_ssize_t i = 0; i < n; i++) {
    Py_INCREF(items[i]);
    PyTuple_SET_ITEM(t, i, items[i]);
  }
  return t;
}

static PyObject *loop_schedule(PyLoop *self, int how, PyObject *const *args, Py_ssize_t nargs,
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
  if (how != SCHED_THREADSAFE && running_loop && running_loop != self) {
    /* fine: asyncio only checks this in debug mode */
  }
  PyHandle *h = PyObject_New(PyHandle, &HandleType);
  if (!h) return NULL;
  h->h = NULL;
  h->cancelled = 0;
  Py_INCREF(cb);
  h->cb = cb;
  h->args = nargs > nfixed + 1 ? tuple_from(args + nfixed + 1, nargs - nfixed - 1) : NULL;
  Py_INCREF(self);
  h->loop = self;
  h->ctx = ctx == Py_None ? PyContext_CopyCurrent() : (Py_INCREF(ctx), ctx);
  if (!h->ctx || (nargs > nfixed + 1 && !h->args)) {
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
static void loop_poll_hook(rill_loop *rl, int phase, void *arg) {
  (void)rl, (void)arg;
  if (phase == RILL_POLL_BEFORE) {
    if (!released_ts && PyGILState_Check()) released_ts = PyEval_SaveThread();
  } else {
    gil_take();
  }
}

static PyObject *loop_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
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
  return (PyObject *)self;
}

static void loop_dealloc(PyLoop *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  self->in_dealloc = 1;
  if (self->loop && !self->borrowed) {
    rill_loop_free(self->loop);
    self->loop = NULL;
  }
  flush_deferred(self);
  PyMem_Free(self->deferred);
  Py_CLEAR(self->fatal);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int loop_traverse(PyLoop *self, visitproc visit, void *arg) {
  Py_VISIT(self->fatal);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

static int loop_clear(PyLoop *self) {
  Py_CLEAR(self->fatal);
  return 0;
}

static PyObject *ensure_future_on(PyLoop *loop, PyObject *aw) {
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
static int loop_drive(PyLoop *self, PyFuture *fu) {
  if (running_loop) {
    PyErr_SetString(PyExc_RuntimeError, running_loop == self ? "This event loop is already running"
                                                             : "Cannot run the event loop while another loop is running");
    return -1;
  }
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return -1;
  }
  running_loop = self;
  self->stopping = 0;
  int rc = 0;
  while (!fu || rill_future_state(fu->fut) == RILL_PENDING) {
    if (self->stopping) break;
    int n = rill_loop_run_once(self->loop, 0.25); /* the poll hook releases the GIL */
    gil_take();
    if (self->ndeferred) flush_deferred(self);
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

static PyObject *loop_run_until_complete(PyLoop *self, PyObject *aw) {
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
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

static PyObject *loop_run_forever(PyLoop *self, PyObject *unused) {
  (void)unused;
  if (loop_drive(self, NULL) < 0) return NULL;
  Py_RETURN_NONE;
}

/* asyncio.run's ending, done by the core (rill_loop_shutdown): cancel every
 * pending task, run them down, report failures other than cancels. */
static PyObject *loop_shutdown(PyLoop *self, PyObject *unused) {
  (void)unused;
  if (running_loop) {
    PyErr_SetString(PyExc_RuntimeError, "Cannot shut down a running event loop");
    return NULL;
  }
  if (!self->loop || rill_loop_is_closed(self->loop) == 1) Py_RETURN_NONE;
  running_loop = self;
  int rc = rill_loop_shutdown(self->loop);
  gil_take();
  running_loop = NULL;
  flush_deferred(self);
  if (self->fatal) {
    PyObject *e = self->fatal;
    self->fatal = NULL;
    raise_exc(e);
    return NULL;
  }
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *loop_stop(PyLoop *self, PyObject *unused) {
  (void)unused;
  self->stopping = 1;
  if (self->loop) rill_loop_stop(self->loop);
  Py_RETURN_NONE;
}

static PyObject *loop_close(PyLoop *self, PyObject *unused) {
  (void)unused;
  if (running_loop == self) {
    PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
    return NULL;
  }
  if (self->borrowed) Py_RETURN_NONE; /* the host closes the loop it attached */
  if (self->loop && rill_loop_is_closed(self->loop) == 0) {
    int rc = rill_loop_close(self->loop);
    flush_deferred(self);
    if (rc < 0 && rc != RILL_ECLOSED) return rillpy_raise_code(rc);
  }
  Py_RETURN_NONE;
}

static PyObject *loop_is_closed(PyLoop *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(!self->loop || rill_loop_is_closed(self->loop) == 1);
}

static PyObject *loop_is_running(PyLoop *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(running_loop == self);
}

static PyObject *loop_time(PyLoop *self, PyObject *unused) {
  (void)unused;
  return PyFloat_FromDouble(rill_loop_time(self->loop));
}

static PyObject *loop_call_soon(PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return loop_schedule(self, SCHED_SOON, a, n, k);
}
static PyObject *loop_call_later(PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return loop_schedule(self, SCHED_LATER, a, n, k);
}
static PyObject *loop_call_at(PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return loop_schedule(self, SCHED_AT, a, n, k);
}
static PyObject *loop_call_soon_threadsafe(PyLoop *self, PyObject *const *a, Py_ssize_t n,
                                           PyObject *k) {
  return loop_schedule(self, SCHED_THREADSAFE, a, n, k);
}

static PyObject *loop_create_future(PyLoop *self, PyObject *unused) {
  (void)unused;
  return (PyObject *)future_wrap(self, rill_future_new(self->loop), FK_PLAIN);
}

static PyObject *loop_create_task(PyLoop *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"coro", "name", "context", NULL};
  PyObject *coro, *name = Py_None, *ctx = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OO", kwlist, &coro, &name, &ctx)) return NULL;
  return task_create(self, coro, name, ctx);
}

static PyObject *loop_tasks(PyLoop *self, PyObject *unused) {
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

static PyObject *loop_set_debug(PyLoop *self, PyObject *flag) {
  int b = PyObject_IsTrue(flag);
  if (b < 0) return NULL;
  int rc = rill_loop_set_debug(self->loop, b);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *loop_get_debug(PyLoop *self, PyObject *unused) {
  (void)unused;
  int rc = rill_loop_get_debug(self->loop);
  if (rc < 0) return rillpy_raise_code(rc);
  return PyBool_FromLong(rc);
}

static PyObject *loop_set_slow(PyLoop *self, PyObject *v) {
  double d = PyFloat_AsDouble(v);
  if (d == -1.0 && PyErr_Occurred()) return NULL;
  int rc = rill_loop_set_slow_duration(self->loop, d);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *loop_dump_tasks(PyLoop *self, PyObject *unused) {
  (void)unused;
  char *s = rill_loop_dump_tasks(self->loop);
  if (!s) return raise_last();
  PyObject *r = PyUnicode_FromString(s);
  rill_free(s);
  return r;
}

static PyObject *loop_report(PyLoop *self, PyObject *msg) {
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
    {"_tasks", (PyCFunction)loop_tasks, METH_NOARGS, NULL},
    {"set_debug", (PyCFunction)loop_set_debug, METH_O, NULL},
    {"get_debug", (PyCFunction)loop_get_debug, METH_NOARGS, NULL},
    {"_set_slow_callback_duration", (PyCFunction)loop_set_slow, METH_O, NULL},
    {"dump_tasks", (PyCFunction)loop_dump_tasks, METH_NOARGS, NULL},
    {"_report", (PyCFunction)loop_report, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject LoopType = {
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

/* ------------------------------------------------------------------ */
/* Timeout scope and task group                                         */

static double delay_arg(PyObject *o) {
  if (o == Py_None) return RILL_FOREVER;
  return PyFloat_AsDouble(o);
}

static PyObject *timeout_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
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

static void timeout_dealloc(PyTimeoutScope *self) {
  rill_timeout_release(self->t);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *timeout_exit(PyTimeoutScope *self, PyObject *rc) {
  long r = PyLong_AsLong(rc);
  if (r == -1 && PyErr_Occurred()) return NULL;
  return PyLong_FromLong(rill_timeout_exit(self->t, (int)r));
}

static PyObject *timeout_expired(PyTimeoutScope *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_timeout_expired(self->t) == 1);
}

static PyObject *timeout_reschedule(PyTimeoutScope *self, PyObject *delay) {
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

static PyTypeObject TimeoutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._TimeoutScope",
    .tp_basicsize = sizeof(PyTimeoutScope),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = timeout_new,
    .tp_dealloc = (destructor)timeout_dealloc,
    .tp_methods = timeout_methods,
};

static PyObject *group_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
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

static void group_dealloc(PyGroup *self) {
  rill_group_release(self->g);
  Py_CLEAR(self->loop);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *group_add(PyGroup *self, PyObject *task) {
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
static PyObject *group_exit(PyGroup *self, PyObject *rc) {
  long r = PyLong_AsLong(rc);
  if (r == -1 && PyErr_Occurred()) return NULL;
  rill_future *f = rill_group_exit(self->g, (int)r);
  if (!f) return raise_last();
  return (PyObject *)future_wrap(self->loop, rill_future_retain(f), FK_PLAIN);
}

/* result(await_rc, body_exc) -> (rc, errors): the core's outcome and its
 * ordered error list, the body's own entry being body_exc. */
static PyObject *group_result(PyGroup *self, PyObject *args) {
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

static PyTypeObject GroupType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._Group",
    .tp_basicsize = sizeof(PyGroup),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = group_new,
    .tp_dealloc = (destructor)group_dealloc,
    .tp_methods = group_methods,
};

/* ------------------------------------------------------------------ */
/* Module functions                                                     */

static PyObject *mod_get_running_loop(PyObject *mod, PyObject *unused) {
  (void)mod, (void)unused;
  PyLoop *l = get_running();
  Py_XINCREF(l);
  return (PyObject *)l;
}

static PyObject *mod_get_running_loop_or_none(PyObject *mod, PyObject *unused) {
  (void)mod, (void)unused;
  PyObject *l = running_loop ? (PyObject *)running_loop : Py_None;
  Py_INCREF(l);
  return l;
}

static PyObject *mod_current_task(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
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

static PyObject *mod_gather(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
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

static PyObject *mod_ensure_future(PyObject *mod, PyObject *aw) {
  (void)mod;
  if (Future_Check(aw)) {
    Py_INCREF(aw);
    return aw;
  }
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  return ensure_future_on(loop, aw);
}

static PyObject *mod_shield(PyObject *mod, PyObject *aw) {
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

static PyObject *mod_wait_for(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
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

static PyObject *mod_wait(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
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

static PyObject *mod_set_helpers(PyObject *mod, PyObject *args) {
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

static PyObject *mod_future_info(PyObject *mod, PyObject *f) {
  (void)mod;
  if (!Future_Check(f)) {
    PyErr_SetString(PyExc_TypeError, "a rill future is required");
    return NULL;
  }
  return PyLong_FromLong(rill_future_state(((PyFuture *)f)->fut));
}

/* Embedding: _attach_loop(cls, address) -> a cls (a LoopBase subclass)
 * over the host's rill_loop* at address, which it neither closes nor frees;
 * the host runs it (rill_loop_run & co, with the GIL held) and frees it
 * after the last Python object of it is gone or done. */
static PyObject *mod_attach_loop(PyObject *mod, PyObject *args) {
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
static PyObject *mod_wrap_future(PyObject *mod, PyObject *args) {
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

static PyMethodDef module_functions[] = {
    {"_attach_loop", (PyCFunction)mod_attach_loop, METH_VARARGS, NULL},
    {"_wrap_future", (PyCFunction)mod_wrap_future, METH_VARARGS, NULL},
    {"get_running_loop", (PyCFunction)mod_get_running_loop, METH_NOARGS,
     "The running rill loop; RuntimeError if none."},
    {"_get_running_loop", (PyCFunction)mod_get_running_loop_or_none, METH_NOARGS, NULL},
    {"current_task", (PyCFunction)(void (*)(void))mod_current_task, METH_FASTCALL,
     "The rill task running now, or None."},
    {"sleep", (PyCFunction)(void (*)(void))mod_sleep, METH_FASTCALL | METH_KEYWORDS,
     "sleep(delay, result=None): awaitable; delay <= 0 gives up one iteration."},
    {"gather", (PyCFunction)(void (*)(void))mod_gather, METH_FASTCALL | METH_KEYWORDS,
     "gather(*aws, return_exceptions=False) -> future of the results in order."},
    {"ensure_future", (PyCFunction)mod_ensure_future, METH_O, NULL},
    {"shield", (PyCFunction)mod_shield, METH_O, NULL},
    {"_wait_for", (PyCFunction)(void (*)(void))mod_wait_for, METH_FASTCALL, NULL},
    {"_wait", (PyCFunction)(void (*)(void))mod_wait, METH_FASTCALL, NULL},
    {"_set_helpers", (PyCFunction)mod_set_helpers, METH_VARARGS, NULL},
    {"_future_state", (PyCFunction)mod_future_info, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static int add_type(PyObject *m, PyTypeObject *t, const char *name) {
  if (PyType_Ready(t) < 0) return -1;
  Py_INCREF(t);
  if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
    Py_DECREF(t);
    return -1;
  }
  return 0;
}

int rillpy_init(PyObject *m) {
  PyObject *exc_mod = PyImport_ImportModule("asyncio.exceptions");
  if (!exc_mod) return -1;
  CancelledError = PyObject_GetAttrString(exc_mod, "CancelledError");
  InvalidStateError = PyObject_GetAttrString(exc_mod, "InvalidStateError");
  Py_DECREF(exc_mod);
  if (!CancelledError || !InvalidStateError) return -1;
  RillError = PyErr_NewExceptionWithDoc("rill.Error",
                                        "A rill status code without a closer Python exception; "
                                        "its code attribute is the RILL_E* value.",
                                        PyExc_RuntimeError, NULL);
  if (!RillError) return -1;
  str_throw = PyUnicode_InternFromString("throw");
  str_call_exception_handler = PyUnicode_InternFromString("call_exception_handler");
  resume_marker = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
  if (!str_throw || !str_call_exception_handler || !resume_marker) return -1;
  FutureType.tp_base = NULL;
  TaskType.tp_base = &FutureType;
  if (add_type(m, &FutureType, "PyFuture") < 0 || add_type(m, &TaskType, "PyTask") < 0 ||
      add_type(m, &HandleType, "Handle") < 0 || add_type(m, &SleepType, "_Sleep") < 0 ||
      add_type(m, &LoopType, "LoopBase") < 0 || add_type(m, &TimeoutType, "_TimeoutScope") < 0 ||
      add_type(m, &GroupType, "_Group") < 0)
    return -1;
  PySleep *s = PyObject_New(PySleep, &SleepType);
  if (!s) return -1;
  s->delay = 0;
  s->result = NULL;
  sleep0 = (PyObject *)s;
  if (PyModule_AddFunctions(m, module_functions) < 0) return -1;
  if (PyModule_AddStringConstant(m, "VERSION", rill_version_string()) < 0) return -1;
  Py_INCREF(CancelledError);
  Py_INCREF(InvalidStateError);
  Py_INCREF(RillError);
  if (PyModule_AddObject(m, "CancelledError", CancelledError) < 0 ||
      PyModule_AddObject(m, "InvalidStateError", InvalidStateError) < 0 ||
      PyModule_AddObject(m, "Error", RillError) < 0)
    return -1;
  /* The one error table, for Python: {code: (name, text)}. */
  PyObject *table = PyDict_New();
  if (!table) return -1;
#define RILLPY_ERR(name, code, text)                                          \
  {                                                                           \
    PyObject *k = PyLong_FromLong(code), *v = Py_BuildValue("(ss)", "RILL_" #name, text); \
    if (!k || !v || PyDict_SetItem(table, k, v) < 0) {                        \
      Py_XDECREF(k);                                                          \
      Py_XDECREF(v);                                                          \
      Py_DECREF(table);                                                       \
      return -1;                                                              \
    }                                                                         \
    Py_DECREF(k);                                                             \
    Py_DECREF(v);                                                             \
  }
  RILL_ERRNO_MAP(RILLPY_ERR)
#undef RILLPY_ERR
  if (PyModule_AddObject(m, "ERRORS", table) < 0) {
    Py_DECREF(table);
    return -1;
  }
  return 0;
}
