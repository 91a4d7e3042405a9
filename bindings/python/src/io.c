/* io.c - the core's streams, listeners, thread pool and processes for
 * Python: _Stream, _Listener, _Process and the _IOWait they return
 * (rill/streams.py gives them asyncio's StreamReader/StreamWriter/Server/
 * Process faces).
 *
 * Every rule (buffers, limits, watermarks, read_until, EOF, accept,
 * reaping) is the core's: a rill task awaits a wait's core future
 * directly (rill_task_wait); other drivers get a rill.Future of it. This file
 * converts values (bytes, addresses, the stream of a connect), maps codes
 * to asyncio's exceptions (the table's classes, with errno, .partial,
 * .consumed filled in) and holds references. */
#include "rillpy_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>

PyTypeObject StreamType, ListenerType, ProcessType, IOWaitType;

typedef struct {
  PyObject_HEAD
  rill_stream *s; /* a reference */
  PyLoop *loop;
  PyObject *weakreflist;
} PyStream;

typedef struct {
  PyObject_HEAD
  rill_listener *l; /* a reference */
  PyLoop *loop;
} PyListener;

typedef struct {
  PyObject_HEAD
  rill_process *p; /* a reference */
  PyLoop *loop;
} PyProcess;

static PyLoop *open_loop(void) {
  PyLoop *loop = get_running();
  if (!loop) return NULL;
  if (!loop->loop || rill_loop_is_closed(loop->loop) != 0) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return NULL;
  }
  return loop;
}

static PyObject *stream_wrap(PyLoop *loop, rill_stream *s) {
  PyStream *o = PyObject_New(PyStream, &StreamType);
  if (!o) {
    rill_stream_release(s);
    return NULL;
  }
  o->s = s;
  /* Writes leave once the iteration's ready callbacks have run: each
   * coalesced into one send, and the iteration's sends into one kernel
   * entry (the core's batch, as the loop's transports). */
  rill_stream_set_coalesce_writes(s, 1);
  Py_INCREF(loop);
  o->loop = loop;
  o->weakreflist = NULL;
  return (PyObject *)o;
}

/* The exception of a failed I/O future: the table's class; an OSError
 * subclass gets the errno behind the failure (as asyncio's socket calls
 * raise them); IncompleteReadError gets its partial bytes and expected
 * count, LimitOverrunError the bytes to consume (asyncio's offset). */
static PyObject *io_exc(rill_future *f, Py_ssize_t expected, PyStream *st, PyObject *sep) {
  if (rill_future_state(f) == RILL_CANCELLED) return make_cancelled(rill_future_error_message(f));
  int code = rill_future_error(f);
  const char *msg = rill_future_error_message(f);
  PyObject *cls = exc_class_for(code);
  if (code == RILL_EINCOMPLETE) {
    size_t len = 0;
    const void *p = rill_stream_error_partial(f, &len);
    PyObject *exp = expected >= 0 ? PyLong_FromSsize_t(expected) : (Py_INCREF(Py_None), Py_None);
    PyObject *e = exp ? PyObject_CallFunction(cls, "y#O", p ? p : "", (Py_ssize_t)len, exp) : NULL;
    Py_XDECREF(exp);
    return e;
  }
  if (code == RILL_ELIMIT && sep) {
    /* asyncio's consumed: where the separator starts when it is past the
     * limit, else what was searched (buffered + 1 - len(sep)) */
    size_t len = 0, seplen = (size_t)PyBytes_GET_SIZE(sep);
    const char *data = st ? rill_stream_peek(st->s, &len) : NULL;
    const char *hit = data && len >= seplen ? memmem(data, len, PyBytes_AS_STRING(sep), seplen) : NULL;
    if (hit)
      return PyObject_CallFunction(cls, "sn", "Separator is found, but chunk is longer than limit",
                                   (Py_ssize_t)(hit - data));
    Py_ssize_t consumed = (Py_ssize_t)len + 1 - (Py_ssize_t)seplen;
    return PyObject_CallFunction(cls, "sn", "Separator is not found, and chunk exceed the limit",
                                 consumed < 0 ? 0 : consumed);
  }
  if (rill_future_error_payload(f, PYTAG)) return outcome_exc(f);
  int err = rill_future_error_errno(f);
  if (err && PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)PyExc_OSError))
    return PyObject_CallFunction(cls, "is", err, msg && msg[0] ? msg : rill_strerror(code));
  return exc_for_code(code, msg);
}

/* Raises this thread's last failure as io_exc does (errno kept). */
static PyObject *raise_last_io(void) {
  int code = rill_last_error();
  int err = rill_last_error_errno();
  const char *msg = rill_last_error_message();
  if (!code) code = RILL_EINVAL;
  PyObject *cls = exc_class_for(code);
  if (err && PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)PyExc_OSError)) {
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", err, msg ? msg : rill_strerror(code));
    if (exc) raise_exc(exc); /* OSError(errno, ...) picks the errno's subclass */
    return NULL;
  }
  return rillpy_raise_code(code);
}

/* ------------------------------------------------------------------ */
/* _IOWait: what the reads, drain, connect, wait_closed and the process  */
/* wait return. Like sync.c's _SyncWait it starts the core's operation   */
/* at its first send (asyncio's are coroutines: one never awaited does   */
/* nothing), returns at once without a Future when the core is done at  */
/* once (data already buffered), else yields itself: a rill task waits   */
/* on its core future, an asyncio Task uses it as a future.              */

enum { OP_READ, OP_EXACTLY, OP_UNTIL, OP_READ_ALL, OP_DRAIN, OP_DRAIN_CLOSING, OP_WAIT_CLOSED, OP_TCP_CONNECT, OP_UNIX_CONNECT,
       OP_LISTENER_CLOSED, OP_PROCESS_WAIT, OP_THREAD, OP_NONE /* done at once with None: no core future */ };

typedef struct {
  PyObject_HEAD
  PyObject *owner;  /* _Stream, _Listener or _Process (or NULL) */
  PyObject *arg;    /* sep (bytes), host/path (str), the thread's callable,
                       read(-1)'s bytearray */
  Py_ssize_t n;     /* read size / limit / port */
  rill_future *f;   /* once started, until pf takes it over */
  PyFuture *pf;     /* made when the wait has to yield */
  PyLoop *loop;
  unsigned char op, started, finished;
  /* asyncio's _asyncio_future_blocking: NONE until the wait yields itself
   * pending (asyncio.isfuture() is then true), set to False by the
   * asyncio Task that takes it. */
  unsigned char blocking;
} PyIOWait;

enum { BLOCKING_NONE, BLOCKING_TRUE, BLOCKING_FALSE };

/* Freed waits kept for the next ones: a request of an echo server makes
 * two (the read, the drain). Only ever touched with the GIL held. */
#define IOWAIT_FREE_MAX 16
static PyIOWait *iowait_free[IOWAIT_FREE_MAX];
static int iowait_free_n;

static PyObject *new_iowait(PyLoop *loop, int op, PyObject *owner, PyObject *arg, Py_ssize_t n) {
  PyIOWait *w;
  if (iowait_free_n) {
    w = iowait_free[--iowait_free_n];
    _Py_NewReference((PyObject *)w);
  } else if (!(w = PyObject_GC_New(PyIOWait, &IOWaitType))) {
    return NULL;
  }
  Py_XINCREF(owner);
  w->owner = owner;
  Py_XINCREF(arg);
  w->arg = arg;
  w->n = n;
  w->f = NULL;
  w->pf = NULL;
  Py_INCREF(loop);
  w->loop = loop;
  w->op = (unsigned char)op;
  w->started = w->finished = 0;
  w->blocking = BLOCKING_NONE;
  PyObject_GC_Track(w);
  return (PyObject *)w;
}

static void thread_work(rill_work *work, void *arg);

static int iowait_start(PyIOWait *w) {
  w->started = 1;
  rill_future *f = NULL;
  rill_stream *s = w->owner && Py_TYPE(w->owner) == &StreamType ? ((PyStream *)w->owner)->s : NULL;
  switch (w->op) {
  case OP_READ:
    if (w->n == 0) { /* read(0): b'' at once, as asyncio */
      if ((f = rill_future_new(w->loop->loop))) rill_future_set_bytes(f, "", 0);
      break;
    }
    /* fallthrough */
  case OP_READ_ALL: f = rill_stream_read(s, (size_t)w->n); break;
  case OP_EXACTLY: f = rill_stream_read_exactly(s, (size_t)w->n); break;
  case OP_UNTIL:
    f = rill_stream_read_until(s, PyBytes_AS_STRING(w->arg), (size_t)PyBytes_GET_SIZE(w->arg),
                               (size_t)w->n);
    break;
  case OP_DRAIN: f = rill_stream_drain(s); break;
  case OP_DRAIN_CLOSING: f = rill_stream_wait_closed(s); break;
  case OP_WAIT_CLOSED: f = rill_stream_wait_closed(s); break;
  case OP_TCP_CONNECT:
    f = rill_tcp_connect(w->loop->loop, w->arg == Py_None ? NULL : PyUnicode_AsUTF8(w->arg),
                         (int)w->n, RILL_FOREVER);
    break;
  case OP_UNIX_CONNECT: f = rill_unix_connect(w->loop->loop, PyBytes_AS_STRING(w->arg), RILL_FOREVER); break;
  case OP_LISTENER_CLOSED: f = rill_listener_wait_closed(((PyListener *)w->owner)->l); break;
  case OP_PROCESS_WAIT: f = rill_process_wait(((PyProcess *)w->owner)->p); break;
  case OP_THREAD:
    Py_INCREF(w->arg);
    f = rill_run_in_thread(w->loop->loop, thread_work, w->arg, decref_any);
    if (!f) Py_DECREF(w->arg);
    break;
  }
  if (!f) {
    int code = rill_last_error();
    if (code == RILL_ESTATE && w->op <= OP_READ_ALL)
      PyErr_SetString(PyExc_RuntimeError,
                      "read() called while another coroutine is already waiting for incoming data");
    else if (code == RILL_ECLOSED)
      PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    else
      raise_last_io();
    return -1;
  }
  w->f = f;
  return 0;
}

static rill_future *iowait_future(PyIOWait *w) { return w->pf ? w->pf->fut : w->f; }

static PyObject *iowait_value(PyIOWait *w, rill_future *f) {
  if (w->op == OP_TCP_CONNECT || w->op == OP_UNIX_CONNECT) {
    rill_stream *s = rill_future_stream(f);
    return s ? stream_wrap(w->loop, s) : raise_last();
  }
  return outcome_value(f);
}

/* read(-1): appends a DONE read's bytes to the bytearray and starts the
 * next read. 1 if it did, 0 at EOF (the result is ready), -1 on error. */
static int read_all_next(PyIOWait *w, rill_future *f) {
  size_t len = 0;
  const void *p = rill_future_bytes(f, &len);
  if (!len) return 0;
  Py_ssize_t have = PyByteArray_GET_SIZE(w->arg);
  if (PyByteArray_Resize(w->arg, have + (Py_ssize_t)len) < 0) return -1;
  memcpy(PyByteArray_AS_STRING(w->arg) + have, p, len);
  if (w->pf) Py_CLEAR(w->pf);
  else rill_future_release(w->f);
  w->f = NULL;
  return iowait_start(w) < 0 ? -1 : 1;
}

/* The rill.Future of a started wait (made at the first call), for a
 * driver that is not a rill task; a new reference, or NULL with an error. */
static PyFuture *iowait_pf(PyIOWait *w) {
  if (!w->pf) {
    if (!w->f) {
      PyErr_SetString(PyExc_RuntimeError, "the I/O wait has no future");
      return NULL;
    }
    if (!(w->pf = future_wrap(w->loop, w->f, FK_PLAIN))) {
      w->f = NULL;
      return NULL;
    }
    w->f = NULL;
  }
  Py_INCREF(w->pf);
  return w->pf;
}

/* The core future a rill task waits on when the wait yielded itself
 * (task.c), or NULL if y is not a pending wait. */
rill_future *iowait_core_future(PyObject *y, PyFuture **pf) {
  PyIOWait *w = (PyIOWait *)y;
  if (!Py_IS_TYPE(y, &IOWaitType) || !w->started || w->finished) return NULL;
  *pf = w->pf;
  return iowait_future(w);
}

/* CancelledError for a wait whose core future was cancelled: with the
 * object given to cancel(msg) when the message is the one the core
 * passed on (through the rill.Future, or from the rill task that awaited
 * the wait itself). */
static PyObject *iowait_cancelled_exc(PyIOWait *w, rill_future *f) {
  if (w->pf) return future_exc(w->pf);
  const char *text = rill_future_error_message(f);
  PyTask *t = current_task;
  const char *tmsg = t && t->task ? rill_task_cancel_message(t->task) : NULL;
  if (t && t->base.cancel_msg && text && tmsg && strcmp(text, tmsg) == 0)
    return make_cancelled_obj(t->base.cancel_msg, text);
  return make_cancelled(text);
}

static PySendResult iowait_send(PyIOWait *w, PyObject *arg, PyObject **result) {
  (void)arg;
  *result = NULL;
  if (w->finished) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    return PYGEN_ERROR;
  }
  if (w->op == OP_NONE) {
    w->finished = 1;
    Py_INCREF(Py_None);
    *result = Py_None;
    return PYGEN_RETURN;
  }
  if (!w->started && iowait_start(w) < 0) {
    w->finished = 1;
    return PYGEN_ERROR;
  }
  rill_future *f = iowait_future(w);
  int state = rill_future_state(f);
  while (w->op == OP_READ_ALL && state == RILL_DONE) {
    int more = read_all_next(w, f);
    if (more < 0) {
      w->finished = 1;
      return PYGEN_ERROR;
    }
    if (!more) {
      w->finished = 1;
      *result = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(w->arg), PyByteArray_GET_SIZE(w->arg));
      return *result ? PYGEN_RETURN : PYGEN_ERROR;
    }
    f = iowait_future(w);
    state = rill_future_state(f);
  }
  if (state == RILL_PENDING) {
    /* The wait yields itself: a rill task waits on its core future
     * (iowait_core_future); any other driver (an asyncio Task) sees an
     * asyncio future, whose methods come from a rill.Future made then
     * (iowait_getattro). */
    w->blocking = BLOCKING_TRUE;
    Py_INCREF(w);
    *result = (PyObject *)w;
    return PYGEN_NEXT;
  }
  w->finished = 1;
  if (w->op == OP_DRAIN_CLOSING && state == RILL_DONE) {
    /* drain on a closing writer: asyncio raises once the connection is lost */
    PyErr_SetString(PyExc_ConnectionResetError, "Connection lost");
  } else if (state == RILL_DONE) {
    *result = iowait_value(w, f);
  } else {
    PyStream *st = w->owner && Py_TYPE(w->owner) == &StreamType ? (PyStream *)w->owner : NULL;
    Py_ssize_t expected = w->op == OP_EXACTLY ? w->n : -1;
    PyObject *exc = state == RILL_CANCELLED ? iowait_cancelled_exc(w, f)
                                            : io_exc(f, expected, st, w->op == OP_UNTIL ? w->arg : NULL);
    if (exc) raise_exc(exc);
  }
  return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

static PyObject *iowait_iternext(PyIOWait *w) {
  PyObject *r;
  PySendResult sr = iowait_send(w, Py_None, &r);
  if (sr == PYGEN_NEXT) return r;
  if (sr == PYGEN_RETURN) {
    if (r != Py_None) {
      PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, r);
      if (e) {
        PyErr_SetObject(PyExc_StopIteration, e);
        Py_DECREF(e);
      }
    } else {
      PyErr_SetNone(PyExc_StopIteration);
    }
    Py_DECREF(r);
  }
  return NULL;
}

static PyObject *iowait_send_method(PyIOWait *w, PyObject *arg) {
  (void)arg;
  return iowait_iternext(w);
}

/* Gives the wait up: not started, it never starts; pending, the core's
 * operation is cancelled (a read loses no data; a connect is dropped). */
static void iowait_give_up(PyIOWait *w) {
  if (!w->started) {
    w->started = w->finished = 1;
    return;
  }
  w->finished = 1;
  rill_future *f = iowait_future(w);
  if (f && rill_future_state(f) == RILL_PENDING) rill_future_cancel(f);
}

static PyObject *iowait_throw(PyIOWait *w, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
    return NULL;
  }
  iowait_give_up(w);
  PyObject *typ = args[0], *val = nargs > 1 ? args[1] : Py_None;
  if (PyExceptionInstance_Check(typ)) {
    PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
  } else if (PyExceptionClass_Check(typ)) {
    PyErr_SetObject(typ, val);
  } else {
    PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
  }
  return NULL;
}

static PyObject *iowait_close(PyIOWait *w, PyObject *unused) {
  (void)unused;
  iowait_give_up(w);
  Py_RETURN_NONE;
}

static int iowait_traverse(PyIOWait *w, visitproc visit, void *arg) {
  Py_VISIT(w->owner);
  Py_VISIT(w->arg);
  Py_VISIT(w->pf);
  Py_VISIT(w->loop);
  return 0;
}

static int iowait_clear(PyIOWait *w) {
  Py_CLEAR(w->owner);
  Py_CLEAR(w->arg);
  Py_CLEAR(w->pf);
  Py_CLEAR(w->loop);
  return 0;
}

static void iowait_dealloc(PyIOWait *w) {
  PyObject_GC_UnTrack(w);
  rill_future *f = w->f;
  w->f = NULL;
  if (f && rill_future_state(f) == RILL_PENDING) rill_future_cancel(f);
  rill_future_release(f);
  iowait_clear(w);
  if (iowait_free_n < IOWAIT_FREE_MAX) iowait_free[iowait_free_n++] = w;
  else PyObject_GC_Del(w);
}

/* An asyncio Task that got the wait (it yielded itself, pending) uses it
 * as an asyncio future: _asyncio_future_blocking here, every other
 * future attribute (add_done_callback, get_loop, result, cancel, ...)
 * from the wait's rill.Future. Before it yields, or once it is over, the
 * wait is a plain awaitable (asyncio.isfuture() is false). */
static PyObject *iowait_getattro(PyIOWait *w, PyObject *name) {
  PyObject *r = PyObject_GenericGetAttr((PyObject *)w, name);
  if (r || !w->started || w->finished || w->blocking == BLOCKING_NONE ||
      !PyErr_ExceptionMatches(PyExc_AttributeError))
    return r;
  PyErr_Clear();
  PyFuture *pf = iowait_pf(w);
  if (!pf) return NULL;
  r = PyObject_GetAttr((PyObject *)pf, name);
  Py_DECREF(pf);
  return r;
}

static PyObject *iowait_get_blocking(PyIOWait *w, void *c) {
  (void)c;
  if (w->blocking == BLOCKING_NONE || w->finished) Py_RETURN_NONE;
  return PyBool_FromLong(w->blocking == BLOCKING_TRUE);
}

static int iowait_set_blocking(PyIOWait *w, PyObject *v, void *c) {
  (void)c;
  int b = v ? PyObject_IsTrue(v) : 0;
  if (b < 0) return -1;
  if (w->blocking != BLOCKING_NONE) w->blocking = b ? BLOCKING_TRUE : BLOCKING_FALSE;
  return 0;
}

static PyGetSetDef iowait_getset[] = {
    {"_asyncio_future_blocking", (getter)iowait_get_blocking, (setter)iowait_set_blocking, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef iowait_methods[] = {
    {"send", (PyCFunction)iowait_send_method, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))iowait_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)iowait_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyAsyncMethods iowait_async = {.am_await = self_iter, .am_send = (sendfunc)iowait_send};

PyTypeObject IOWaitType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._rill._IOWait",
    .tp_basicsize = sizeof(PyIOWait),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An I/O wait (read, drain, connect, wait_closed, process wait, to_thread): "
              "awaitable once.",
    .tp_dealloc = (destructor)iowait_dealloc,
    .tp_traverse = (traverseproc)iowait_traverse,
    .tp_clear = (inquiry)iowait_clear,
    .tp_as_async = &iowait_async,
    .tp_iter = self_iter,
    .tp_iternext = (iternextfunc)iowait_iternext,
    .tp_methods = iowait_methods,
    .tp_getset = iowait_getset,
    .tp_getattro = (getattrofunc)iowait_getattro,
};

/* ------------------------------------------------------------------ */
/* _Stream                                                              */

/* read(n=-1): up to n bytes (b'' at EOF); n < 0: everything to EOF, read
 * in chunks of the read limit (limit, the second argument). */
static PyObject *stream_read(PyStream *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "read(n=-1)");
    return NULL;
  }
  Py_ssize_t n = nargs ? PyNumber_AsSsize_t(args[0], PyExc_OverflowError) : -1;
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n >= 0) return new_iowait(self->loop, OP_READ, (PyObject *)self, NULL, n);
  Py_ssize_t chunk = nargs > 1 ? PyLong_AsSsize_t(args[1]) : 65536;
  if (chunk == -1 && PyErr_Occurred()) return NULL;
  PyObject *buf = PyByteArray_FromStringAndSize(NULL, 0);
  if (!buf) return NULL;
  PyObject *w = new_iowait(self->loop, OP_READ_ALL, (PyObject *)self, buf, chunk > 0 ? chunk : 65536);
  Py_DECREF(buf);
  return w;
}

static PyObject *stream_readexactly(PyStream *self, PyObject *arg) {
  Py_ssize_t n = PyLong_AsSsize_t(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0) {
    PyErr_SetString(PyExc_ValueError, "readexactly size can not be less than zero");
    return NULL;
  }
  return new_iowait(self->loop, OP_EXACTLY, (PyObject *)self, NULL, n);
}

static PyObject *stream_readuntil(PyStream *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_readuntil(sep, limit)");
    return NULL;
  }
  PyObject *sep = PyBytes_FromObject(args[0]);
  if (!sep) return NULL;
  if (PyBytes_GET_SIZE(sep) == 0) {
    Py_DECREF(sep);
    PyErr_SetString(PyExc_ValueError, "Separator should be at least one-byte string");
    return NULL;
  }
  Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
  if (limit == -1 && PyErr_Occurred()) {
    Py_DECREF(sep);
    return NULL;
  }
  PyObject *w = new_iowait(self->loop, OP_UNTIL, (PyObject *)self, sep, limit < 0 ? 0 : limit);
  Py_DECREF(sep);
  return w;
}

/* write(data): copies; silent on a closing or failed stream (asyncio's
 * transport.write after close or loss; drain reports it). */
static PyObject *stream_write(PyStream *self, PyObject *arg) {
  Py_buffer b;
  if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) {
    PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.100s'",
                 Py_TYPE(arg)->tp_name);
    return NULL;
  }
  int rc = b.len ? rill_stream_write(self->s, b.buf, (size_t)b.len) : 0;
  PyBuffer_Release(&b);
  if (rc < 0 && rc != RILL_ENOTCONN && rc != RILL_EPIPE && rc != RILL_ECONNRESET &&
      rc != RILL_ECONNABORTED && rc != RILL_ESYS)
    return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

/* drain(): on a closing stream, ConnectionResetError once it is closed.
 * An open stream whose drain the core says is done at once (below its low
 * watermark) makes no core future: the common case. */
static PyObject *stream_drain(PyStream *self, PyObject *unused) {
  (void)unused;
  int closing = rill_stream_is_closing(self->s);
  if (closing == 0 && rill_stream_drain_ready(self->s) == 1)
    return new_iowait(self->loop, OP_NONE, NULL, NULL, 0);
  int op = closing == 1 ? OP_DRAIN_CLOSING : OP_DRAIN;
  return new_iowait(self->loop, op, (PyObject *)self, NULL, 0);
}

static PyObject *stream_wait_closed(PyStream *self, PyObject *unused) {
  (void)unused;
  return new_iowait(self->loop, OP_WAIT_CLOSED, (PyObject *)self, NULL, 0);
}

/* close, abort, write_eof: no-ops once closing, closed or failed, as
 * asyncio's transports. */
static PyObject *stream_rc(int rc) {
  if (rc == RILL_EINVAL) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *stream_write_eof(PyStream *self, PyObject *unused) {
  (void)unused;
  return stream_rc(rill_stream_write_eof(self->s));
}

static PyObject *stream_close(PyStream *self, PyObject *unused) {
  (void)unused;
  return stream_rc(rill_stream_close(self->s));
}

static PyObject *stream_abort(PyStream *self, PyObject *unused) {
  (void)unused;
  return stream_rc(rill_stream_abort(self->s));
}

static PyObject *stream_is_closing(PyStream *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_stream_is_closing(self->s) != 0);
}

static PyObject *stream_at_eof(PyStream *self, PyObject *unused) {
  (void)unused;
  return PyBool_FromLong(rill_stream_at_eof(self->s) == 1);
}

static PyObject *stream_buffered(PyStream *self, PyObject *unused) {
  (void)unused;
  size_t len = 0;
  const void *p = rill_stream_peek(self->s, &len);
  return PyBytes_FromStringAndSize(p ? p : "", (Py_ssize_t)len);
}

static PyObject *stream_consume(PyStream *self, PyObject *arg) {
  Py_ssize_t n = PyLong_AsSsize_t(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  int rc = rill_stream_consume(self->s, (size_t)n);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *stream_set_read_limit(PyStream *self, PyObject *arg) {
  Py_ssize_t n = PyLong_AsSsize_t(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n <= 0) {
    PyErr_SetString(PyExc_ValueError, "Limit cannot be <= 0");
    return NULL;
  }
  int rc = rill_stream_set_read_limit(self->s, (size_t)n);
  if (rc < 0 && rc != RILL_ENOTCONN) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *stream_write_buffered(PyStream *self, PyObject *unused) {
  (void)unused;
  long long n = rill_stream_write_buffered(self->s);
  return PyLong_FromLongLong(n < 0 ? 0 : n);
}

static PyObject *stream_name(PyStream *self, PyObject *peer) {
  char buf[512];
  int rc = PyObject_IsTrue(peer) ? rill_stream_peer_name(self->s, buf, sizeof buf)
                                 : rill_stream_local_name(self->s, buf, sizeof buf);
  if (rc < 0) Py_RETURN_NONE;
  return PyUnicode_DecodeFSDefault(buf);
}

static PyObject *stream_fileno(PyStream *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_stream_fd(self->s));
}

static void stream_dealloc(PyStream *self) {
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  rill_stream_release(self->s);
  Py_CLEAR(self->loop);
  PyObject_Free(self);
}

static PyMethodDef stream_methods[] = {
    {"read", (PyCFunction)(void (*)(void))stream_read, METH_FASTCALL,
     "read(n=-1): up to n bytes, b'' at EOF; n < 0: all to EOF"},
    {"readexactly", (PyCFunction)stream_readexactly, METH_O, NULL},
    {"readuntil", (PyCFunction)(void (*)(void))stream_readuntil, METH_FASTCALL, NULL},
    {"write", (PyCFunction)stream_write, METH_O, NULL},
    {"drain", (PyCFunction)stream_drain, METH_NOARGS, NULL},
    {"wait_closed", (PyCFunction)stream_wait_closed, METH_NOARGS, NULL},
    {"write_eof", (PyCFunction)stream_write_eof, METH_NOARGS, NULL},
    {"close", (PyCFunction)stream_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction)stream_abort, METH_NOARGS, NULL},
    {"is_closing", (PyCFunction)stream_is_closing, METH_NOARGS, NULL},
    {"at_eof", (PyCFunction)stream_at_eof, METH_NOARGS, NULL},
    {"buffered", (PyCFunction)stream_buffered, METH_NOARGS, NULL},
    {"consume", (PyCFunction)stream_consume, METH_O, NULL},
    {"set_read_limit", (PyCFunction)stream_set_read_limit, METH_O, NULL},
    {"write_buffered", (PyCFunction)stream_write_buffered, METH_NOARGS, NULL},
    {"name", (PyCFunction)stream_name, METH_O, "name(peer): the address as the core's text"},
    {"fileno", (PyCFunction)stream_fileno, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._rill._Stream",
    .tp_basicsize = sizeof(PyStream),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A core stream (TCP, Unix socket, pipe): the awaitable face.",
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_weaklistoffset = offsetof(PyStream, weakreflist),
    .tp_methods = stream_methods,
};

/* ------------------------------------------------------------------ */
/* Connect, listen                                                      */

/* _tcp_connect(host or None, port) / _unix_connect(path) -> _IOWait of a _Stream */
static PyObject *mod_tcp_connect(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *host;
  int port;
  if (!PyArg_ParseTuple(args, "Oi", &host, &port)) return NULL;
  if (host != Py_None && !PyUnicode_Check(host)) {
    PyErr_SetString(PyExc_TypeError, "host must be a str or None");
    return NULL;
  }
  if (port < 0 || port > 65535) {
    PyErr_SetString(PyExc_OverflowError, "port must be 0-65535.");
    return NULL;
  }
  PyLoop *loop = open_loop();
  return loop ? new_iowait(loop, OP_TCP_CONNECT, NULL, host, port) : NULL;
}

static PyObject *mod_unix_connect(PyObject *mod, PyObject *arg) {
  (void)mod;
  PyObject *path = NULL;
  if (!PyUnicode_FSConverter(arg, &path)) return NULL;
  PyLoop *loop = open_loop();
  PyObject *w = loop ? new_iowait(loop, OP_UNIX_CONNECT, NULL, path, 0) : NULL;
  Py_DECREF(path);
  return w;
}

/* The accept callback: on_accept(_Stream) from the ready queue. */
static void accept_cb(rill_listener *l, rill_stream *conn, void *arg) {
  (void)l;
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyObject *on_accept = arg;
  PyLoop *loop = running_loop;
  PyObject *st = loop ? stream_wrap(loop, rill_stream_retain(conn)) : NULL;
  if (st) {
    PyObject *r = PyObject_CallOneArg(on_accept, st);
    Py_DECREF(st);
    if (r) Py_DECREF(r);
  }
  if (PyErr_Occurred()) {
    if (loop) report_callback_error(loop, on_accept, NULL);
    else PyErr_WriteUnraisable(on_accept);
  }
  if (ensured) PyGILState_Release(gs);
}

/* _listen(host or None, port, backlog, reuse_port, on_accept) /
 * _listen_unix(path, backlog, on_accept) -> _Listener */
static PyObject *listener_start(PyLoop *loop, rill_listener *l, PyObject *on_accept) {
  if (!l) return raise_last_io();
  PyListener *o = PyObject_New(PyListener, &ListenerType);
  if (!o) {
    rill_listener_close(l);
    rill_listener_release(l);
    return NULL;
  }
  o->l = l;
  Py_INCREF(loop);
  o->loop = loop;
  Py_INCREF(on_accept);
  if (rill_listener_set_callback(l, accept_cb, on_accept, decref_any) < 0) {
    Py_DECREF(on_accept);
    Py_DECREF(o);
    return raise_last();
  }
  return (PyObject *)o;
}

static PyObject *mod_listen(PyObject *mod, PyObject *args) {
  (void)mod;
  const char *host;
  int port, backlog, reuse_port;
  PyObject *on_accept;
  if (!PyArg_ParseTuple(args, "ziipO", &host, &port, &backlog, &reuse_port, &on_accept))
    return NULL;
  PyLoop *loop = open_loop();
  if (!loop) return NULL;
  rill_listener *l = rill_tcp_listen(loop->loop, host, port, backlog,
                                     reuse_port ? RILL_LISTEN_REUSEPORT : 0);
  return listener_start(loop, l, on_accept);
}

static PyObject *mod_listen_unix(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *path = NULL, *on_accept;
  int backlog;
  if (!PyArg_ParseTuple(args, "O&iO", PyUnicode_FSConverter, &path, &backlog, &on_accept))
    return NULL;
  PyLoop *loop = open_loop();
  rill_listener *l = loop ? rill_unix_listen(loop->loop, PyBytes_AS_STRING(path), backlog) : NULL;
  Py_DECREF(path);
  if (!loop) return NULL;
  return listener_start(loop, l, on_accept);
}

/* close(): drops on_accept (the core's reference to it, a bound method of
 * the Server holding this listener, is a cycle the GC cannot see; a closed
 * listener refuses set_callback, hence first), then stops accepting (live
 * connections stay). */
static PyObject *listener_close(PyListener *self, PyObject *unused) {
  (void)unused;
  rill_listener_set_callback(self->l, NULL, NULL, NULL);
  rill_listener_close(self->l);
  Py_RETURN_NONE;
}

static PyObject *listener_wait_closed(PyListener *self, PyObject *unused) {
  (void)unused;
  return new_iowait(self->loop, OP_LISTENER_CLOSED, (PyObject *)self, NULL, 0);
}

static PyObject *listener_fileno(PyListener *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_listener_fd(self->l));
}

static PyObject *listener_port(PyListener *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_listener_port(self->l));
}

static void listener_dealloc(PyListener *self) {
  rill_listener_release(self->l);
  Py_CLEAR(self->loop);
  PyObject_Free(self);
}

static PyMethodDef listener_methods[] = {
    {"close", (PyCFunction)listener_close, METH_NOARGS, NULL},
    {"wait_closed", (PyCFunction)listener_wait_closed, METH_NOARGS, NULL},
    {"fileno", (PyCFunction)listener_fileno, METH_NOARGS, NULL},
    {"port", (PyCFunction)listener_port, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject ListenerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._rill._Listener",
    .tp_basicsize = sizeof(PyListener),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A core listener (TCP or Unix) calling on_accept(_Stream) per connection.",
    .tp_dealloc = (destructor)listener_dealloc,
    .tp_methods = listener_methods,
};

/* ------------------------------------------------------------------ */
/* to_thread: fn() on the core's pool, the GIL taken to call it          */

/* A pool thread keeps its Python thread state from one job to the next:
 * PyGILState_Ensure/Release alone would create and destroy one per job
 * (most of a to_thread round trip). The first job takes one extra
 * PyGILState_Ensure that is never released, so the state's counter stays
 * above zero between jobs. A thread's exit (the pool stops at loop close or
 * shutdown) must not take the GIL: the closing thread may hold it (a C host
 * closing the loop, rill_loop_shutdown). So the exit only queues the state;
 * rillpy_reap_pool_tstates, called with the GIL after a loop closes or
 * shuts down, deletes the queued ones, and the interpreter frees any left
 * at finalization. */
#if PY_VERSION_HEX >= 0x030D0000
#define rillpy_finalizing() Py_IsFinalizing()
#else
#define rillpy_finalizing() _Py_IsFinalizing()
#endif
static pthread_key_t pool_tstate_key;
static pthread_once_t pool_tstate_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dead_tstates_lock = PTHREAD_MUTEX_INITIALIZER;
static PyThreadState **dead_tstates;
static size_t dead_tstates_len, dead_tstates_cap;

static void pool_tstate_exit(void *ts) {
  pthread_mutex_lock(&dead_tstates_lock);
  if (dead_tstates_len == dead_tstates_cap) {
    size_t cap = dead_tstates_cap ? dead_tstates_cap * 2 : 16;
    PyThreadState **grown = realloc(dead_tstates, cap * sizeof *grown);
    if (grown) {
      dead_tstates = grown;
      dead_tstates_cap = cap;
    }
  }
  /* Out of memory: left to the interpreter's finalization. */
  if (dead_tstates_len < dead_tstates_cap) dead_tstates[dead_tstates_len++] = ts;
  pthread_mutex_unlock(&dead_tstates_lock);
}

void rillpy_reap_pool_tstates(void) {
  if (!dead_tstates_len) return; /* a racy peek: a state queued meanwhile waits for the next reap */
  pthread_mutex_lock(&dead_tstates_lock);
  PyThreadState **list = dead_tstates;
  size_t n = dead_tstates_len;
  dead_tstates = NULL;
  dead_tstates_len = dead_tstates_cap = 0;
  pthread_mutex_unlock(&dead_tstates_lock);
  for (size_t i = 0; i < n; i++) {
    PyThreadState_Clear(list[i]);
    PyThreadState_Delete(list[i]);
  }
  free(list);
}

static void pool_tstate_key_make(void) { (void)pthread_key_create(&pool_tstate_key, pool_tstate_exit); }

static void pool_tstate_keep(void) {
  (void)pthread_once(&pool_tstate_once, pool_tstate_key_make);
  if (pthread_getspecific(pool_tstate_key)) return;
  (void)PyGILState_Ensure(); /* released by nobody: the count that keeps it */
  if (pthread_setspecific(pool_tstate_key, PyThreadState_Get()) != 0) {
    PyGILState_Release(PyGILState_UNLOCKED); /* cannot keep it: per-job states */
    return;
  }
  (void)PyEval_SaveThread();
}

static void thread_work(rill_work *work, void *arg) {
  if (!Py_IsInitialized() || rillpy_finalizing()) {
    rill_work_fail(work, RILL_ECLOSED, "the interpreter is finalizing", NULL, NULL, NULL);
    return;
  }
  pool_tstate_keep();
  PyGILState_STATE gs = PyGILState_Ensure();
  PyObject *r = PyObject_CallNoArgs((PyObject *)arg);
  if (r) {
    if (rill_work_set_pointer(work, r, decref_any, PYTAG) < 0) Py_DECREF(r);
  } else {
    PyObject *exc = fetch_exc();
    if (exc) rill_work_fail(work, RILL_EEXCEPTION, "the thread's function raised", exc, decref_any, PYTAG);
    else rill_work_set_none(work);
  }
  PyGILState_Release(gs);
}

/* _run_in_thread(fn) -> _IOWait of fn()'s result */
static PyObject *mod_run_in_thread(PyObject *mod, PyObject *fn) {
  (void)mod;
  if (!PyCallable_Check(fn)) {
    PyErr_SetString(PyExc_TypeError, "func must be callable");
    return NULL;
  }
  PyLoop *loop = open_loop();
  return loop ? new_iowait(loop, OP_THREAD, NULL, fn, 0) : NULL;
}

/* ------------------------------------------------------------------ */
/* _Process                                                             */

/* _spawn(argv (list of bytes), env (list of bytes) or None, cwd (bytes) or
 * None, (mode0, mode1, mode2)) -> _Process */
static PyObject *mod_spawn(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *argv, *env, *cwd;
  int modes[3];
  if (!PyArg_ParseTuple(args, "O!OO(iii)", &PyList_Type, &argv, &env, &cwd, &modes[0], &modes[1],
                        &modes[2]))
    return NULL;
  PyLoop *loop = open_loop();
  if (!loop) return NULL;
  Py_ssize_t na = PyList_GET_SIZE(argv), ne = env == Py_None ? 0 : PyList_GET_SIZE(env);
  const char **av = PyMem_Calloc((size_t)na + 1, sizeof *av);
  const char **ev = PyMem_Calloc((size_t)ne + 1, sizeof *ev);
  PyObject *result = NULL;
  if (!av || !ev) {
    PyErr_NoMemory();
    goto done;
  }
  for (Py_ssize_t i = 0; i < na; i++)
    if (!(av[i] = PyBytes_AsString(PyList_GET_ITEM(argv, i)))) goto done;
  for (Py_ssize_t i = 0; i < ne; i++)
    if (!(ev[i] = PyBytes_AsString(PyList_GET_ITEM(env, i)))) goto done;
  const char *cwdp = NULL;
  if (cwd != Py_None && !(cwdp = PyBytes_AsString(cwd))) goto done;
  rill_process *p = rill_process_spawn(loop->loop, av, env == Py_None ? NULL : ev, cwdp, modes);
  if (!p) {
    raise_last_io(); /* asyncio raises exec's error: FileNotFoundError, ... */
    goto done;
  }
  PyProcess *o = PyObject_New(PyProcess, &ProcessType);
  if (!o) {
    rill_process_kill(p);
    rill_process_release(p);
    goto done;
  }
  o->p = p;
  Py_INCREF(loop);
  o->loop = loop;
  result = (PyObject *)o;
done:
  PyMem_Free(av);
  PyMem_Free(ev);
  return result;
}

static PyObject *process_pid(PyProcess *self, void *closure) {
  (void)closure;
  return PyLong_FromLong(rill_process_pid(self->p));
}

static PyObject *process_returncode(PyProcess *self, void *closure) {
  (void)closure;
  int rc = 0;
  if (rill_process_returncode(self->p, &rc) < 0) Py_RETURN_NONE;
  return PyLong_FromLong(rc);
}

static PyObject *process_stream(PyProcess *self, PyObject *arg) {
  int which = PyLong_AsLong(arg);
  if (which == -1 && PyErr_Occurred()) return NULL;
  rill_stream *s = rill_process_stream(self->p, which);
  if (!s) return raise_last_io();
  return stream_wrap(self->loop, s);
}

static PyObject *process_wait(PyProcess *self, PyObject *unused) {
  (void)unused;
  return new_iowait(self->loop, OP_PROCESS_WAIT, (PyObject *)self, NULL, 0);
}

/* send_signal(sig): ProcessLookupError once reaped, as asyncio. */
static PyObject *process_send_signal(PyProcess *self, PyObject *arg) {
  int sig = PyLong_AsLong(arg);
  if (sig == -1 && PyErr_Occurred()) return NULL;
  int rc = rill_process_send_signal(self->p, sig);
  if (rc == RILL_ESTATE) {
    PyErr_SetNone(PyExc_ProcessLookupError);
    return NULL;
  }
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static void process_dealloc(PyProcess *self) {
  rill_process_release(self->p);
  Py_CLEAR(self->loop);
  PyObject_Free(self);
}

static PyMethodDef process_methods[] = {
    {"stream", (PyCFunction)process_stream, METH_O, NULL},
    {"wait", (PyCFunction)process_wait, METH_NOARGS, NULL},
    {"send_signal", (PyCFunction)process_send_signal, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef process_getset[] = {
    {"pid", (getter)process_pid, NULL, NULL, NULL},
    {"returncode", (getter)process_returncode, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject ProcessType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._rill._Process",
    .tp_basicsize = sizeof(PyProcess),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A core child process.",
    .tp_dealloc = (destructor)process_dealloc,
    .tp_methods = process_methods,
    .tp_getset = process_getset,
};

static PyMethodDef io_functions[] = {
    {"_tcp_connect", (PyCFunction)mod_tcp_connect, METH_VARARGS, NULL},
    {"_unix_connect", (PyCFunction)mod_unix_connect, METH_O, NULL},
    {"_listen", (PyCFunction)mod_listen, METH_VARARGS, NULL},
    {"_listen_unix", (PyCFunction)mod_listen_unix, METH_VARARGS, NULL},
    {"_run_in_thread", (PyCFunction)mod_run_in_thread, METH_O, NULL},
    {"_spawn", (PyCFunction)mod_spawn, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

int rillpy_io_init(PyObject *m) {
  if (add_type(m, &IOWaitType, "_IOWait") < 0 || add_type(m, &StreamType, "_Stream") < 0 ||
      add_type(m, &ListenerType, "_Listener") < 0 || add_type(m, &ProcessType, "_Process") < 0)
    return -1;
  if (PyModule_AddIntConstant(m, "STDIO_INHERIT", RILL_STDIO_INHERIT) < 0 ||
      PyModule_AddIntConstant(m, "STDIO_PIPE", RILL_STDIO_PIPE) < 0 ||
      PyModule_AddIntConstant(m, "STDIO_DEVNULL", RILL_STDIO_DEVNULL) < 0 ||
      PyModule_AddIntConstant(m, "STDIO_STDOUT", RILL_STDIO_STDOUT) < 0)
    return -1;
  return PyModule_AddFunctions(m, io_functions);
}
