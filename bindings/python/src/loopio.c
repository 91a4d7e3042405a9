/* loopio.c - asyncio's low-level loop I/O for rill.EventLoop: the core's
 * fd watchers (add_reader/add_writer), fd readiness waits (the sock_*
 * methods of rill/__init__.py), per-loop signal watchers
 * (add_signal_handler) and the adoption of asyncio futures a task awaits.
 *
 * A watcher's callback is a rill.Handle run as call_soon's are (its
 * context, exceptions to the loop's exception handler); the core owns one
 * reference to it, dropped (handle_free) when the watcher is removed,
 * replaced or the loop closes. */
#include "rillpy_int.h"

#include <errno.h>

PyObject *helper_adopt_foreign;

static PyLoop *loop_arg(PyObject *o) {
  if (!PyObject_TypeCheck(o, &LoopType)) {
    PyErr_SetString(PyExc_TypeError, "a rill loop was expected");
    return NULL;
  }
  PyLoop *loop = (PyLoop *)o;
  if (!loop->loop || rill_loop_is_closed(loop->loop) != 0) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  return loop;
}

/* A Handle of cb(*args) in the current context, with one extra reference
 * for the core (handle_free drops it). */
static PyHandle *watch_handle(PyLoop *loop, PyObject *cb, PyObject *args) {
  if (!PyCallable_Check(cb)) {
    PyErr_Format(PyExc_TypeError, "a callable object was expected, got %R", cb);
    return NULL;
  }
  PyHandle *h = PyObject_New(PyHandle, &HandleType);
  if (!h) return NULL;
  h->h = NULL;
  h->cancelled = 0;
  h->source_tb = NULL;
  Py_INCREF(cb);
  h->cb = cb;
  h->args = args && PyTuple_GET_SIZE(args) ? (Py_INCREF(args), args) : NULL;
  Py_INCREF(loop);
  h->loop = loop;
  h->ctx = PyContext_CopyCurrent();
  if (!h->ctx) {
    Py_DECREF(h);
    return NULL;
  }
  Py_INCREF(h);
  return h;
}

/* Runs a watcher's handle: like handle_run, but the callback may remove
 * its own watcher (handle_free runs then, inside the call), so the handle
 * and what it runs are held for the call. */
static void watch_run(void *arg) {
  gil_take();
  PyHandle *h = arg;
  if (h->cancelled || !h->cb) return;
  PyLoop *loop = h->loop;
  PyObject *cb = h->cb, *args = h->args, *ctx = h->ctx;
  Py_INCREF(h);
  Py_INCREF(loop);
  Py_INCREF(cb);
  Py_XINCREF(args);
  Py_XINCREF(ctx);
  run_callback(loop, cb, args, ctx, (PyObject *)h);
  Py_XDECREF(ctx);
  Py_XDECREF(args);
  Py_DECREF(cb);
  Py_DECREF(loop);
  Py_DECREF(h);
}

static PyObject *raise_fd_code(int code) {
  if (code == RILL_ECLOSED) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  if (code == RILL_EBADF) {
    errno = EBADF;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  return rillpy_raise_code(code ? code : RILL_EINVAL);
}

/* _fd_add(loop, fd, writer, callback, args): the handle */
PyObject *mod_fd_add(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *lo, *cb, *cbargs;
  int fd, writer;
  if (!PyArg_ParseTuple(args, "OipOO!", &lo, &fd, &writer, &cb, &PyTuple_Type, &cbargs)) return NULL;
  PyLoop *loop = loop_arg(lo);
  if (!loop) return NULL;
  PyHandle *h = watch_handle(loop, cb, cbargs);
  if (!h) return NULL;
  int rc = writer ? rill_fd_add_writer(loop->loop, fd, watch_run, h, handle_free)
                  : rill_fd_add_reader(loop->loop, fd, watch_run, h, handle_free);
  if (rc < 0) {
    Py_DECREF(h); /* the core's (free_arg not called on failure) */
    Py_DECREF(h);
    return raise_fd_code(rc);
  }
  return (PyObject *)h;
}

/* _fd_remove(loop, fd, writer): True if one was removed */
PyObject *mod_fd_remove(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *lo;
  int fd, writer;
  if (!PyArg_ParseTuple(args, "Oip", &lo, &fd, &writer)) return NULL;
  PyLoop *loop = (PyLoop *)lo;
  if (!PyObject_TypeCheck(lo, &LoopType)) return PyErr_Format(PyExc_TypeError, "a rill loop was expected");
  if (!loop->loop || rill_loop_is_closed(loop->loop) != 0) Py_RETURN_FALSE;
  int rc = writer ? rill_fd_remove_writer(loop->loop, fd) : rill_fd_remove_reader(loop->loop, fd);
  if (rc < 0) return raise_fd_code(rc);
  return PyBool_FromLong(rc);
}

/* _fd_wait(loop, fd, events): a rill.Future done (events ready) once fd is
 * ready; cancelling it stops the watch. */
PyObject *mod_fd_wait(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *lo;
  int fd, events;
  if (!PyArg_ParseTuple(args, "Oii", &lo, &fd, &events)) return NULL;
  PyLoop *loop = loop_arg(lo);
  if (!loop) return NULL;
  rill_future *f = rill_fd_wait(loop->loop, fd, events);
  if (!f) return raise_fd_code(rill_last_error());
  return (PyObject *)future_wrap(loop, f, FK_PLAIN);
}

/* ---- signals ---- */

static void signal_cb(rill_signal *sig, int signum, void *arg) {
  (void)sig, (void)signum;
  watch_run(arg);
}

static void signal_capsule_free(PyObject *cap) {
  rill_signal *sig = PyCapsule_GetPointer(cap, "rill_signal");
  if (sig) rill_signal_release(sig);
}

/* _signal_add(loop, signum, callback, args): a capsule of the watcher */
PyObject *mod_signal_add(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *lo, *cb, *cbargs;
  int signum;
  if (!PyArg_ParseTuple(args, "OiOO!", &lo, &signum, &cb, &PyTuple_Type, &cbargs)) return NULL;
  PyLoop *loop = loop_arg(lo);
  if (!loop) return NULL;
  PyHandle *h = watch_handle(loop, cb, cbargs);
  if (!h) return NULL;
  rill_signal *sig = rill_signal_start(loop->loop, signum, signal_cb, h, handle_free);
  if (!sig) {
    int code = rill_last_error();
    Py_DECREF(h);
    Py_DECREF(h);
    if (code == RILL_ECLOSED) return raise_fd_code(code);
    if (code == RILL_EINVAL) return PyErr_Format(PyExc_RuntimeError, "sig %d cannot be caught", signum);
    return rillpy_raise_code(code ? code : RILL_EINVAL);
  }
  PyObject *cap = PyCapsule_New(sig, "rill_signal", signal_capsule_free);
  if (!cap) {
    rill_signal_stop(sig);
    rill_signal_release(sig);
  }
  Py_DECREF(h);
  return cap;
}

/* _signal_stop(capsule) */
PyObject *mod_signal_stop(PyObject *mod, PyObject *cap) {
  (void)mod;
  rill_signal *sig = PyCapsule_GetPointer(cap, "rill_signal");
  if (!sig) return NULL;
  rill_signal_stop(sig);
  Py_RETURN_NONE;
}

/* ---- asyncio futures awaited by a rill task ---- */

/* _set_foreign_helper(fn): fn(future) returns a rill.Future that follows
 * an asyncio future of this loop (asyncio.gather's, asyncio.wrap_future's)
 * and cancels it when cancelled, or raises. */
PyObject *mod_set_foreign_helper(PyObject *mod, PyObject *fn) {
  (void)mod;
  Py_INCREF(fn);
  Py_XSETREF(helper_adopt_foreign, fn);
  Py_RETURN_NONE;
}

/* _set_foreign_wake_type(cls): the class of the done callback the helper
 * puts on the asyncio future; call_soon runs one at once (loop.c). */
PyObject *foreign_wake_type;

PyObject *mod_set_foreign_wake_type(PyObject *mod, PyObject *cls) {
  (void)mod;
  Py_INCREF(cls);
  Py_XSETREF(foreign_wake_type, cls);
  Py_RETURN_NONE;
}
