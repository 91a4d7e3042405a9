/* errors.c - exceptions: codes to Python exceptions (bindings/common/rill_errors.h)
 * and reports to the loop's exception handler. */
#include "rillpy_int.h"
#include "rill_errors.h"

/* ------------------------------------------------------------------ */
/* Errors                                                               */

/* The Python column of the one table (bindings/common/rill_errors.h),
 * resolved once at import: code -> class. */
#define RILL_ERROR_ROW(name, code, text, py, lua, rb) {code, py},
static const struct {
  int code;
  const char *py;
} error_table[] = {RILL_ERRNO_MAP(RILL_BINDING_ERROR_ROW)};
#define RILLPY_NERRORS (sizeof error_table / sizeof error_table[0])
static PyObject *error_classes[RILLPY_NERRORS];

/* "module.attr" or a builtin's name; "rill.Error" is this module's. */
static PyObject *resolve_class(const char *name) {
  if (strcmp(name, "rill.Error") == 0) {
    Py_INCREF(RillError);
    return RillError;
  }
  if (strcmp(name, "rill.QueueShutDown") == 0) {
    Py_INCREF(QueueShutDown);
    return QueueShutDown;
  }
  const char *dot = strrchr(name, '.');
  PyObject *mod;
  if (dot) {
    PyObject *mname = PyUnicode_FromStringAndSize(name, dot - name);
    mod = mname ? PyImport_Import(mname) : NULL;
    Py_XDECREF(mname);
  } else {
    mod = PyImport_ImportModule("builtins");
  }
  if (!mod) return NULL;
  PyObject *cls = PyObject_GetAttrString(mod, dot ? dot + 1 : name);
  Py_DECREF(mod);
  return cls;
}

int rillpy_errors_init(PyObject *module) {
  PyObject *columns = PyDict_New();
  if (!columns) return -1;
  for (size_t i = 0; i < RILLPY_NERRORS; i++) {
    if (!(error_classes[i] = resolve_class(error_table[i].py))) goto fail;
    PyObject *k = PyLong_FromLong(error_table[i].code);
    PyObject *v = PyUnicode_FromString(error_table[i].py);
    int rc = k && v ? PyDict_SetItem(columns, k, v) : -1;
    Py_XDECREF(k);
    Py_XDECREF(v);
    if (rc < 0) goto fail;
  }
  /* The table's Python column, for the tests: {code: "module.Class"}. */
  if (PyModule_AddObject(module, "ERROR_CLASSES", columns) < 0) goto fail;
  return 0;
fail:
  Py_DECREF(columns);
  return -1;
}

PyObject *exc_class_for(int code) {
  for (size_t i = 0; i < RILLPY_NERRORS; i++)
    if (error_table[i].code == code && error_classes[i]) return error_classes[i];
  return RillError;
}

/* A new exception instance for code and message (NULL: the code's text). */
PyObject *exc_for_code(int code, const char *message) {
  if (!message || !message[0]) message = rill_strerror(code);
  PyObject *cls = exc_class_for(code);
  PyObject *exc;
  if (cls == CancelledError) {
    exc = PyObject_CallNoArgs(cls);
  } else if (code == RILL_EINCOMPLETE && cls != RillError) {
    /* asyncio.IncompleteReadError(partial, expected): the reader that has
     * the partial bytes sets them on the instance it raises. */
    exc = PyObject_CallFunction(cls, "yO", "", Py_None);
  } else if (code == RILL_ELIMIT && cls != RillError) {
    exc = PyObject_CallFunction(cls, "si", message, 0); /* LimitOverrunError(message, consumed) */
  } else {
    exc = PyObject_CallFunction(cls, "s", message);
    if (!exc && PyErr_ExceptionMatches(PyExc_TypeError)) {
      /* A class that needs more than a message (IncompleteReadError):
       * its binding code raises it; here it is a rill.Error. */
      PyErr_Clear();
      cls = RillError;
      exc = PyObject_CallFunction(cls, "s", message);
    }
  }
  if (exc && cls == RillError) {
    PyObject *c = PyLong_FromLong(code);
    if (!c || PyObject_SetAttrString(exc, "code", c) < 0) Py_CLEAR(exc);
    Py_XDECREF(c);
  }
  return exc;
}

/* Raises exc (a reference stolen) with its own traceback. */
void raise_exc(PyObject *exc) {
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

PyObject *raise_last(void) {
  int code = rill_last_error();
  return rillpy_raise_code(code ? code : RILL_EINVAL);
}

/* The raised exception, normalized, with its traceback attached (new
 * reference; NULL if none). */
PyObject *fetch_exc(void) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  if (!type) return NULL;
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  return value;
}

PyObject *make_cancelled(const char *msg) {
  if (msg && msg[0]) return PyObject_CallFunction(CancelledError, "s", msg);
  return PyObject_CallNoArgs(CancelledError);
}

/* CancelledError(msg_obj) for the object given to cancel(msg), else the
 * one make_cancelled makes from the core's text. */
PyObject *make_cancelled_obj(PyObject *msg_obj, const char *msg) {
  if (msg_obj) return PyObject_CallOneArg(CancelledError, msg_obj);
  return make_cancelled(msg);
}

/* ------------------------------------------------------------------ */
/* Reporting to the loop's exception handler                            */

void call_handler(PyLoop *loop, PyObject *context) {
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
void core_exc_handler(rill_loop *rl, const char *message, rill_future *fut, void *arg) {
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
      /* The view is borrowed for this call: the core holds its own
       * reference around every handler call (rill.h conventions). */
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
void report_callback_error(PyLoop *loop, PyObject *what, PyObject *handle) {
  PyObject *exc = fetch_exc();
  if (!exc) return;
  /* asyncio re-raises these two only; any other BaseException is stored
   * in the task or reported, like an Exception */
  if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_KeyboardInterrupt) ||
      PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_SystemExit)) {
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

void run_callback(PyLoop *loop, PyObject *cb, PyObject *args, PyObject *ctx,
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

/* _exception_for_code(code, message=None) -> the exception the binding
 * raises for code (for the tests of the table). */
PyObject *mod_exception_for_code(PyObject *mod, PyObject *args) {
  (void)mod;
  int code;
  const char *message = NULL;
  if (!PyArg_ParseTuple(args, "i|z", &code, &message)) return NULL;
  return exc_for_code(code, message);
}
