/* module.c - the C half of the Python binding (rill._rill): asyncio's
 * objects on rill. This file: the module's functions, types and constants.
 *
 * One file per concern, mirroring the core: errors.c, future.c, task.c,
 * loop.c, timeout.c, group.c, gather.c, embed.c, sync.c, io.c; shared layouts in
 * rillpy_int.h.
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
#include "rillpy_int.h"
#include <pthread.h>

const char rillpy_tag = 'P';
PyObject *CancelledError, *InvalidStateError, *RillError, *QueueShutDown;
PyObject *resume_marker; /* sent into a coroutine resumed after sleep */
PyObject *sleep0;        /* the shared sleep(0) awaitable */
PyObject *helper_iscoroutine, *helper_wrap_awaitable, *helper_default_handler;
PyObject *str_throw, *str_call_exception_handler;
PyObject *asyncio_current_tasks;

static PyMethodDef module_functions[] = {
    {"_attach_loop", (PyCFunction)mod_attach_loop, METH_VARARGS, NULL},
    {"_wrap_future", (PyCFunction)mod_wrap_future, METH_VARARGS, NULL},
    {"_wrap_queue", (PyCFunction)mod_wrap_queue, METH_VARARGS, NULL},
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
    {"_fd_add", (PyCFunction)mod_fd_add, METH_VARARGS, NULL},
    {"_fd_remove", (PyCFunction)mod_fd_remove, METH_VARARGS, NULL},
    {"_fd_wait", (PyCFunction)mod_fd_wait, METH_VARARGS, NULL},
    {"_signal_add", (PyCFunction)mod_signal_add, METH_VARARGS, NULL},
    {"_signal_stop", (PyCFunction)mod_signal_stop, METH_O, NULL},
    {"_set_foreign_helper", (PyCFunction)mod_set_foreign_helper, METH_O, NULL},
    {"_set_foreign_wake_type", (PyCFunction)mod_set_foreign_wake_type, METH_O, NULL},
    {"_future_state", (PyCFunction)mod_future_info, METH_O, NULL},
    {"_exception_for_code", (PyCFunction)mod_exception_for_code, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

int add_type(PyObject *m, PyTypeObject *t, const char *name) {
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
  /* asyncio's QueueShutDown (3.13) where it exists, else ours by that name. */
  exc_mod = PyImport_ImportModule("asyncio");
  if (!exc_mod) return -1;
  QueueShutDown = PyObject_GetAttrString(exc_mod, "QueueShutDown");
  Py_DECREF(exc_mod);
  if (!QueueShutDown) {
    PyErr_Clear();
    QueueShutDown = PyErr_NewExceptionWithDoc(
        "rill.QueueShutDown", "Raised by a queue's put or get once it is shut down (asyncio 3.13).",
        PyExc_Exception, NULL);
    if (!QueueShutDown) return -1;
  }
  /* The dict asyncio.current_task() reads (the C one when _asyncio is
   * there): a rill task's step on a loop made for asyncio enters itself in
   * it (task.c). */
  exc_mod = PyImport_ImportModule("asyncio.tasks");
  if (!exc_mod) return -1;
  asyncio_current_tasks = PyObject_GetAttrString(exc_mod, "_current_tasks");
  Py_DECREF(exc_mod);
  if (!asyncio_current_tasks) return -1;
  if (!PyDict_Check(asyncio_current_tasks)) Py_CLEAR(asyncio_current_tasks);
  pthread_atfork(NULL, NULL, rillpy_forget_running_loop);
  if (rillpy_errors_init(m) < 0) return -1;
  if (rillpy_task_init() < 0) return -1;
  str_throw = PyUnicode_InternFromString("throw");
  str_call_exception_handler = PyUnicode_InternFromString("call_exception_handler");
  resume_marker = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
  if (!str_throw || !str_call_exception_handler || !resume_marker) return -1;
  FutureType.tp_base = NULL;
  TaskType.tp_base = &FutureType;
  if (add_type(m, &FutureType, "PyFuture") < 0 || add_type(m, &TaskType, "PyTask") < 0 ||
      add_type(m, &HandleType, "Handle") < 0 || add_type(m, &SleepType, "_Sleep") < 0 ||
      add_type(m, &LoopType, "LoopBase") < 0 || add_type(m, &TimeoutType, "_TimeoutScope") < 0 ||
      add_type(m, &GroupType, "_Group") < 0 || rillpy_sync_init(m) < 0 ||
      rillpy_io_init(m) < 0 || rillpy_transport_init(m) < 0)
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
  Py_INCREF(QueueShutDown);
  if (PyModule_AddObject(m, "QueueShutDown", QueueShutDown) < 0) return -1;
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
