/* transport.c - asyncio's socket transport in C on the core's streams
 * (issue 12, W4): the hot half of rill._transports._SocketTransport.
 *
 * _socket_transport_base(base, buffered_protocol) makes the heap type
 * _SocketTransportBase once: base is asyncio.transports._FlowControlMixin
 * (so instances are asyncio.Transport and _FlowControlMixin instances, as
 * asyncio's base_events.sendfile and sslproto check), and this file's
 * fields sit after the base's slots. rill/_transports.py subclasses it
 * with the rare parts (extra info, repr, __del__, connection_lost's
 * cleanup). The behaviour is asyncio's selector_events
 * _SelectorSocketTransport's; the buffers, watermarks, half-close and
 * closing are the core's stream (rill_stream_*): this file calls the
 * protocol and converts values.
 *
 * The stream owns a dup of the socket's fd, so the Python socket object
 * (get_extra_info('socket'), closed after connection_lost as asyncio does)
 * and the stream never close each other's descriptor. */
#include "rillpy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct {
  rill_stream *s;       /* a reference; NULL before _start and after connection_lost */
  PyLoop *loop;         /* NULL after connection_lost (asyncio's _loop = None) */
  PyObject *protocol;   /* NULL after connection_lost */
  PyObject *lost_exc;   /* connection_lost's exception when forced (_force_close) */
  PyObject *ctx;        /* the context the protocol's callbacks run in */
  PyObject *empty_waiter; /* asyncio's _empty_waiter (native sendfile) */
  Py_ssize_t high, low; /* write watermarks (the core's are the same) */
  int conn_lost, fd;
  unsigned char buffered, closing, eof, paused, protocol_paused, started, lost;
} TrCore;

static PyTypeObject *TransportBase;
static Py_ssize_t core_off;
static PyObject *buffered_cls, *logger;
static PyObject *s_data_received, *s_eof_received, *s_get_buffer, *s_buffer_updated,
    *s_pause_writing, *s_resume_writing, *s_fatal_error, *s_call_connection_lost, *s_minus1, *s_join;

#define CORE(o) ((TrCore *)((char *)(o) + core_off))

/* ------------------------------------------------------------------ */
/* Errors                                                               */

static int code_errno(int code) {
  switch (code) {
  case RILL_ECONNREFUSED: return ECONNREFUSED;
  case RILL_ECONNRESET: return ECONNRESET;
  case RILL_EPIPE: return EPIPE;
  case RILL_ECONNABORTED: return ECONNABORTED;
  case RILL_EHOSTUNREACH: return EHOSTUNREACH;
  case RILL_ENETUNREACH: return ENETUNREACH;
  case RILL_ETIMEDOUT: return ETIMEDOUT;
  case RILL_ENOTCONN: return ENOTCONN;
  case RILL_EBADF: return EBADF;
  default: return 0;
  }
}

/* The exception for a stream failure: OSError(errno, strerror), which
 * picks the errno's subclass (ConnectionResetError ...), as recv/send
 * raise in asyncio's transport. */
static PyObject *failure_exc(int code) {
  int e = code_errno(code);
  if (e) return PyObject_CallFunction(PyExc_OSError, "is", e, strerror(e));
  return exc_for_code(code, rill_strerror(code));
}

static int is_fatal_exc(PyObject *exc) {
  return PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_KeyboardInterrupt) ||
         PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_SystemExit);
}

/* A protocol callback raised: SystemExit/KeyboardInterrupt go to the loop
 * (they stop it, as they leave asyncio's handle), anything else is
 * self._fatal_error(exc, message) as asyncio does. */
static void protocol_failed(PyObject *self, const char *message) {
  TrCore *t = CORE(self);
  PyObject *exc = fetch_exc();
  if (!exc) return;
  if (is_fatal_exc(exc) || !t->loop) {
    raise_exc(exc);
    if (t->loop) report_callback_error(t->loop, self, NULL);
    else PyErr_WriteUnraisable(self);
    return;
  }
  PyObject *msg = PyUnicode_FromString(message);
  PyObject *r = msg ? PyObject_CallMethodObjArgs(self, s_fatal_error, exc, msg, NULL) : NULL;
  Py_XDECREF(msg);
  Py_DECREF(exc);
  if (!r) report_callback_error(t->loop, self, NULL);
  Py_XDECREF(r);
}

/* asyncio's loop.call_exception_handler({'message', 'exception',
 * 'transport', 'protocol'}) for a failed pause/resume_writing. */
static void report_flow_error(PyObject *self, const char *message) {
  TrCore *t = CORE(self);
  PyObject *exc = fetch_exc();
  if (!exc) return;
  if (is_fatal_exc(exc) || !t->loop) {
    raise_exc(exc);
    if (t->loop) report_callback_error(t->loop, self, NULL);
    else PyErr_WriteUnraisable(self);
    return;
  }
  PyObject *ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", message, "exception", exc,
                                "transport", self, "protocol",
                                t->protocol ? t->protocol : Py_None);
  if (ctx) call_handler(t->loop, ctx);
  else PyErr_Clear();
  Py_XDECREF(ctx);
  Py_DECREF(exc);
}

/* ------------------------------------------------------------------ */
/* Flow control (asyncio's _FlowControlMixin)                          */

static Py_ssize_t buffered_size(TrCore *t) {
  if (!t->s) return 0;
  long long n = rill_stream_write_buffered(t->s);
  return n > 0 ? (Py_ssize_t)n : 0;
}

/* 0, or -1 with SystemExit/KeyboardInterrupt raised */
static int maybe_pause(PyObject *self) {
  TrCore *t = CORE(self);
  if (t->protocol_paused || buffered_size(t) <= t->high || !t->protocol) return 0;
  t->protocol_paused = 1;
  PyObject *r = PyObject_CallMethodNoArgs(t->protocol, s_pause_writing);
  if (r) {
    Py_DECREF(r);
    return 0;
  }
  if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) || PyErr_ExceptionMatches(PyExc_SystemExit))
    return -1;
  report_flow_error(self, "protocol.pause_writing() failed");
  return 0;
}

static void maybe_resume(PyObject *self) {
  TrCore *t = CORE(self);
  if (!t->protocol_paused || buffered_size(t) > t->low || !t->protocol) return;
  t->protocol_paused = 0;
  PyObject *r = PyObject_CallMethodNoArgs(t->protocol, s_resume_writing);
  if (r) Py_DECREF(r);
  else report_flow_error(self, "protocol.resume_writing() failed");
}

/* ------------------------------------------------------------------ */
/* The stream's events                                                  */

static void on_data(PyObject *self, const char *data, size_t len) {
  TrCore *t = CORE(self);
  while (len && t->protocol && !t->conn_lost) {
    if (!t->buffered) {
      PyObject *b = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
      PyObject *r = b ? PyObject_CallMethodOneArg(t->protocol, s_data_received, b) : NULL;
      Py_XDECREF(b);
      if (r) Py_DECREF(r);
      else protocol_failed(self, "Fatal error: protocol.data_received() call failed.");
      return;
    }
    /* BufferedProtocol: get_buffer(-1), copy what fits, buffer_updated(n);
     * again while bytes remain (the core read them already) */
    PyObject *protocol = t->protocol;
    Py_INCREF(protocol);
    PyObject *buf = PyObject_CallMethodOneArg(protocol, s_get_buffer, s_minus1);
    Py_buffer view;
    if (buf && PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) == 0) {
      if (view.len <= 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
      } else {
        size_t n = (size_t)view.len < len ? (size_t)view.len : len;
        memcpy(view.buf, data, n);
        PyBuffer_Release(&view);
        Py_DECREF(buf);
        data += n;
        len -= n;
        PyObject *nb = PyLong_FromSize_t(n);
        PyObject *r = nb ? PyObject_CallMethodOneArg(protocol, s_buffer_updated, nb) : NULL;
        Py_XDECREF(nb);
        Py_DECREF(protocol);
        if (!r) {
          protocol_failed(self, "Fatal error: protocol.buffer_updated() call failed.");
          return;
        }
        Py_DECREF(r);
        continue;
      }
    }
    Py_XDECREF(buf);
    Py_DECREF(protocol);
    protocol_failed(self, "Fatal error: protocol.get_buffer() call failed.");
    return;
  }
}

static PyObject *tr_close(PyObject *self, PyObject *unused);

/* 1: the core keeps the write side (eof_received returned true, or the
 * transport is closed here) */
static int on_eof(PyObject *self) {
  TrCore *t = CORE(self);
  if (!t->protocol || t->conn_lost) return 1;
  PyObject *r = PyObject_CallMethodNoArgs(t->protocol, s_eof_received);
  if (!r) {
    protocol_failed(self, "Fatal error: protocol.eof_received() call failed.");
    return 1;
  }
  int keep = PyObject_IsTrue(r);
  Py_DECREF(r);
  if (keep < 0) {
    protocol_failed(self, "Fatal error: protocol.eof_received() call failed.");
    return 1;
  }
  if (!keep) {
    PyObject *c = tr_close(self, NULL);
    Py_XDECREF(c);
  }
  return 1;
}

static void on_lost(PyObject *self, int err) {
  TrCore *t = CORE(self);
  t->lost = 1;
  t->closing = 1;
  if (!t->conn_lost) t->conn_lost = 1;
  PyObject *exc = t->lost_exc;
  t->lost_exc = NULL;
  if (!exc) {
    if (err) {
      exc = failure_exc(err);
      if (!exc) {
        exc = Py_None;
        Py_INCREF(exc);
        PyErr_Clear();
      }
    } else {
      exc = Py_None;
      Py_INCREF(exc);
    }
  }
  PyLoop *loop = t->loop;
  Py_XINCREF(loop);
  PyObject *r = PyObject_CallMethodOneArg(self, s_call_connection_lost, exc);
  Py_DECREF(exc);
  if (r) Py_DECREF(r);
  else if (loop) report_callback_error(loop, self, NULL);
  else PyErr_WriteUnraisable(self);
  Py_XDECREF(loop);
}

static int tr_event(rill_stream *s, int event, const void *data, size_t len, int err, void *arg) {
  (void)s;
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyObject *self = arg;
  TrCore *t = CORE(self);
  int keep = 0;
  Py_INCREF(self);
  PyObject *ctx = t->ctx;
  Py_XINCREF(ctx);
  if (ctx && PyContext_Enter(ctx) < 0) {
    PyErr_Clear();
    Py_CLEAR(ctx);
  }
  switch (event) {
  case RILL_STREAM_DATA: on_data(self, data, len); break;
  case RILL_STREAM_EOF: keep = on_eof(self); break;
  case RILL_STREAM_LOST: on_lost(self, err); break;
  case RILL_STREAM_RESUME_WRITING: maybe_resume(self); break;
  default: break; /* PAUSE_WRITING: paused synchronously in write(), as asyncio */
  }
  if (ctx) {
    PyContext_Exit(ctx);
    Py_DECREF(ctx);
  }
  Py_DECREF(self);
  if (ensured) PyGILState_Release(gs);
  return keep;
}

/* ------------------------------------------------------------------ */
/* Methods                                                              */

static int set_protocol_obj(TrCore *t, PyObject *protocol) {
  int b = PyObject_IsInstance(protocol, buffered_cls);
  if (b < 0) return -1;
  Py_INCREF(protocol);
  Py_XSETREF(t->protocol, protocol);
  t->buffered = (unsigned char)b;
  return 0;
}

/* _start(loop, fd, protocol): opens the core's stream on a dup of fd and
 * starts reading (after the connection_made the caller schedules first). */
static PyObject *tr_start(PyObject *self, PyObject *args) {
  TrCore *t = CORE(self);
  PyObject *lo, *protocol;
  int fd;
  if (!PyArg_ParseTuple(args, "O!iO", &LoopType, &lo, &fd, &protocol)) return NULL;
  PyLoop *loop = (PyLoop *)lo;
  if (t->started) return PyErr_Format(PyExc_RuntimeError, "the transport is started already");
  if (!loop->loop || rill_loop_is_closed(loop->loop) != 0)
    return PyErr_Format(PyExc_RuntimeError, "Event loop is closed");
  if (set_protocol_obj(t, protocol) < 0) return NULL;
  int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dfd < 0) return PyErr_SetFromErrno(PyExc_OSError);
  rill_stream *s = rill_stream_open_fd(loop->loop, dfd);
  if (!s) {
    close(dfd);
    return raise_last();
  }
  PyObject *ctx = PyContext_CopyCurrent();
  if (!ctx) {
    rill_stream_abort(s);
    rill_stream_release(s);
    return NULL;
  }
  Py_INCREF(self); /* the callback's */
  if (rill_stream_set_callback(s, tr_event, self, decref_any) < 0) {
    Py_DECREF(self);
    Py_DECREF(ctx);
    rill_stream_abort(s);
    rill_stream_release(s);
    return raise_last();
  }
  t->s = s;
  t->ctx = ctx;
  Py_INCREF(loop);
  Py_XSETREF(t->loop, loop);
  t->fd = fd;
  t->high = 65536;
  t->low = 16384;
  rill_stream_set_write_watermarks(s, (size_t)t->high, (size_t)t->low);
  /* A protocol's writes of one loop iteration go out in one send (aiohttp
   * writes a response's headers and body apart), as uvloop's transports. */
  rill_stream_set_coalesce_writes(s, 1);
  t->started = 1;
  Py_RETURN_NONE;
}

/* _detach(): after connection_lost (asyncio clears _protocol and _loop):
 * releases the stream and breaks the protocol's cycle. */
static PyObject *tr_detach(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  rill_stream *s = t->s;
  t->s = NULL;
  Py_CLEAR(t->protocol);
  Py_CLEAR(t->loop);
  Py_CLEAR(t->ctx);
  Py_CLEAR(t->lost_exc);
  if (s) rill_stream_release(s);
  Py_RETURN_NONE;
}

static PyObject *logger_warning(const char *msg) {
  if (!logger) {
    PyObject *m = PyImport_ImportModule("asyncio.log");
    if (!m) return NULL;
    logger = PyObject_GetAttrString(m, "logger");
    Py_DECREF(m);
    if (!logger) return NULL;
  }
  return PyObject_CallMethod(logger, "warning", "s", msg);
}

static PyObject *write_bytes(PyObject *self, const char *p, Py_ssize_t n) {
  TrCore *t = CORE(self);
  if (t->eof) return PyErr_Format(PyExc_RuntimeError, "Cannot call write() after write_eof()");
  if (t->empty_waiter && t->empty_waiter != Py_None)
    return PyErr_Format(PyExc_RuntimeError, "unable to write; sendfile is in progress");
  if (!n) Py_RETURN_NONE;
  if (t->conn_lost || !t->s) {
    if (t->conn_lost >= 5) { /* asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES */
      PyObject *r = logger_warning("socket.send() raised exception.");
      if (!r) return NULL;
      Py_DECREF(r);
    }
    t->conn_lost++;
    Py_RETURN_NONE;
  }
  int rc = rill_stream_write(t->s, p, (size_t)n);
  if (rc < 0) {
    /* closing with a buffer (asyncio would still queue: the core no longer
     * takes writes), or the stream failed (asyncio's _fatal_error:
     * closing, connection_lost(exc) follows) */
    if (rc != RILL_ENOTCONN || rill_stream_is_closing(t->s) != 0) {
      t->conn_lost++;
      t->closing = 1;
    }
    Py_RETURN_NONE;
  }
  if (maybe_pause(self) < 0) return NULL;
  Py_RETURN_NONE;
}

static PyObject *tr_write(PyObject *self, PyObject *data) {
  if (PyBytes_CheckExact(data)) return write_bytes(self, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
  if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data))
    return PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.100s'",
                        Py_TYPE(data)->tp_name);
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
  PyObject *r = write_bytes(self, view.buf, view.len);
  PyBuffer_Release(&view);
  return r;
}

static PyObject *tr_writelines(PyObject *self, PyObject *lines) {
  PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
  PyObject *joined = empty ? PyObject_CallMethodOneArg(empty, s_join, lines) : NULL;
  Py_XDECREF(empty);
  if (!joined) return NULL;
  PyObject *r = tr_write(self, joined);
  Py_DECREF(joined);
  return r;
}

static PyObject *tr_write_eof(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  if (t->closing || t->eof) Py_RETURN_NONE;
  t->eof = 1;
  if (t->s) rill_stream_write_eof(t->s);
  Py_RETURN_NONE;
}

static PyObject *tr_can_write_eof(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  Py_RETURN_TRUE;
}

static void release_stream(void *arg) { rill_stream_release(arg); }

/* The buffer was flushed after close(): close, unless resume_writing
 * wrote more meanwhile (asyncio closes once its buffer is empty). */
static void flushed_close(rill_future *f, void *arg) {
  (void)f;
  rill_stream *s = arg;
  if (rill_stream_is_closing(s) != 0) return;
  if (rill_stream_write_buffered(s) > 0) {
    rill_future *again = rill_stream_drain(s);
    if (again && rill_future_on_done(again, flushed_close, rill_stream_retain(s), release_stream) == 0) {
      rill_future_release(again);
      return;
    }
    if (again) {
      rill_stream_release(s);
      rill_future_release(again);
    }
  }
  rill_stream_close(s);
}

/* asyncio's close(): reading stops; with a write buffer, writes are still
 * taken until it is flushed (asyncio's SSLProtocol writes after its
 * transport's close), so the core's close waits for an empty buffer (the
 * core's drain with a low watermark of 0); then connection_lost(None). */
static PyObject *tr_close(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  if (t->closing) Py_RETURN_NONE;
  /* asyncio resumes the protocol as soon as the buffer drains; the core's
   * event may still be queued: resume first (it may write more) */
  if (t->protocol_paused) maybe_resume(self);
  if (t->closing) Py_RETURN_NONE;
  t->closing = 1;
  rill_stream *s = t->s;
  if (!s) Py_RETURN_NONE;
  /* The bytes coalesced for this iteration's send go out now (asyncio's
   * write sent them already), so a flushed transport closes at once. */
  rill_stream_set_coalesce_writes(s, 0);
  if (!buffered_size(t)) {
    t->conn_lost++;
    rill_stream_close(s);
    Py_RETURN_NONE;
  }
  rill_stream_pause_reading(s);
  rill_stream_set_write_watermarks(s, (size_t)t->high, 0);
  rill_future *f = rill_stream_drain(s);
  rill_stream_retain(s);
  if (!f || rill_future_on_done(f, flushed_close, s, release_stream) < 0) {
    rill_stream_release(s);
    rill_stream_close(s); /* no memory: close now, flushing what is buffered */
  }
  if (f) rill_future_release(f);
  Py_RETURN_NONE;
}

/* _force_close(exc): asyncio's: drops the buffer, connection_lost(exc) */
static PyObject *tr_force_close(PyObject *self, PyObject *exc) {
  TrCore *t = CORE(self);
  if (t->conn_lost) Py_RETURN_NONE;
  t->closing = 1;
  t->conn_lost++;
  if (exc != Py_None) {
    Py_INCREF(exc);
    Py_XSETREF(t->lost_exc, exc);
  }
  if (t->s) rill_stream_abort(t->s);
  Py_RETURN_NONE;
}

static PyObject *tr_abort(PyObject *self, PyObject *unused) {
  (void)unused;
  return tr_force_close(self, Py_None);
}

static PyObject *tr_is_closing(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  /* the core closes a failed stream at once; connection_lost follows */
  return PyBool_FromLong(t->closing || (t->s && rill_stream_is_closing(t->s) == 1));
}

static PyObject *tr_is_reading(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  return PyBool_FromLong(!t->paused && !t->closing);
}

static PyObject *tr_pause_reading(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  if (t->paused || t->closing) Py_RETURN_NONE;
  t->paused = 1;
  if (t->s) rill_stream_pause_reading(t->s);
  Py_RETURN_NONE;
}

static PyObject *tr_resume_reading(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  if (t->closing || !t->paused) Py_RETURN_NONE;
  t->paused = 0;
  if (t->s) rill_stream_resume_reading(t->s);
  Py_RETURN_NONE;
}

static PyObject *tr_get_write_buffer_size(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromSsize_t(buffered_size(CORE(self)));
}

static PyObject *tr_get_write_buffer_limits(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  return Py_BuildValue("(nn)", t->low, t->high);
}

/* A drain done once the buffer is at the low watermark: resume_writing
 * for a pause the core's own watermark check did not see. */
static void resume_done(rill_future *f, void *arg) {
  (void)f;
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyObject *self = arg;
  TrCore *t = CORE(self);
  if (t->s && !t->conn_lost) maybe_resume(self);
  if (ensured) PyGILState_Release(gs);
}

/* set_write_buffer_limits(high=None, low=None), asyncio's checks */
static PyObject *tr_set_write_buffer_limits(PyObject *self, PyObject *args, PyObject *kw) {
  static char *names[] = {"high", "low", NULL};
  PyObject *ho = Py_None, *lo = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:set_write_buffer_limits", names, &ho, &lo))
    return NULL;
  TrCore *t = CORE(self);
  Py_ssize_t high, low;
  if (ho == Py_None) {
    if (lo == Py_None) high = 64 * 1024;
    else {
      low = PyNumber_AsSsize_t(lo, PyExc_OverflowError);
      if (low == -1 && PyErr_Occurred()) return NULL;
      high = 4 * low;
    }
  } else {
    high = PyNumber_AsSsize_t(ho, PyExc_OverflowError);
    if (high == -1 && PyErr_Occurred()) return NULL;
  }
  if (lo == Py_None) low = high / 4;
  else {
    low = PyNumber_AsSsize_t(lo, PyExc_OverflowError);
    if (low == -1 && PyErr_Occurred()) return NULL;
  }
  if (!(high >= low && low >= 0))
    return PyErr_Format(PyExc_ValueError, "high (%zd) must be >= low (%zd) must be >= 0", high, low);
  t->high = high;
  t->low = low;
  if (t->s) rill_stream_set_write_watermarks(t->s, (size_t)high, (size_t)low);
  int was_paused = t->protocol_paused;
  if (maybe_pause(self) < 0) return NULL;
  if (!was_paused && t->protocol_paused && t->s) {
    /* paused here, not by a write: the core posts no resume event for it */
    rill_future *f = rill_stream_drain(t->s);
    Py_INCREF(self);
    if (!f || rill_future_on_done(f, resume_done, self, decref_any) < 0) Py_DECREF(self);
    if (f) rill_future_release(f);
  }
  Py_RETURN_NONE;
}

static PyObject *tr_get_protocol(PyObject *self, PyObject *unused) {
  (void)unused;
  PyObject *p = CORE(self)->protocol;
  if (!p) Py_RETURN_NONE;
  Py_INCREF(p);
  return p;
}

static PyObject *tr_set_protocol(PyObject *self, PyObject *protocol) {
  if (set_protocol_obj(CORE(self), protocol) < 0) return NULL;
  Py_RETURN_NONE;
}

static PyObject *tr_maybe_pause(PyObject *self, PyObject *unused) {
  (void)unused;
  if (maybe_pause(self) < 0) return NULL;
  Py_RETURN_NONE;
}

static PyObject *tr_maybe_resume(PyObject *self, PyObject *unused) {
  (void)unused;
  maybe_resume(self);
  Py_RETURN_NONE;
}

/* _flushed(): a rill.Future done once the write buffer is empty (the
 * core's drain with a low watermark of 0 until _restore_watermarks) */
static PyObject *tr_flushed(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  if (!t->s || !t->loop) return PyErr_Format(PyExc_ConnectionError, "Connection is closed by peer");
  rill_stream_set_write_watermarks(t->s, (size_t)t->high, 0);
  rill_future *f = rill_stream_drain(t->s);
  if (!f) return raise_last();
  return (PyObject *)future_wrap(t->loop, f, FK_PLAIN);
}

static PyObject *tr_restore_watermarks(PyObject *self, PyObject *unused) {
  (void)unused;
  TrCore *t = CORE(self);
  if (t->s) rill_stream_set_write_watermarks(t->s, (size_t)t->high, (size_t)t->low);
  Py_RETURN_NONE;
}

static PyMethodDef tr_methods[] = {
    {"_flushed", tr_flushed, METH_NOARGS, NULL},
    {"_restore_watermarks", tr_restore_watermarks, METH_NOARGS, NULL},
    {"_start", tr_start, METH_VARARGS, NULL},
    {"_detach", tr_detach, METH_NOARGS, NULL},
    {"_force_close", tr_force_close, METH_O, NULL},
    {"_maybe_pause_protocol", tr_maybe_pause, METH_NOARGS, NULL},
    {"_maybe_resume_protocol", tr_maybe_resume, METH_NOARGS, NULL},
    {"write", tr_write, METH_O, "write(data): queue data (bytes-like) to send"},
    {"writelines", tr_writelines, METH_O, NULL},
    {"write_eof", tr_write_eof, METH_NOARGS, NULL},
    {"can_write_eof", tr_can_write_eof, METH_NOARGS, NULL},
    {"close", tr_close, METH_NOARGS, NULL},
    {"abort", tr_abort, METH_NOARGS, NULL},
    {"is_closing", tr_is_closing, METH_NOARGS, NULL},
    {"is_reading", tr_is_reading, METH_NOARGS, NULL},
    {"pause_reading", tr_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", tr_resume_reading, METH_NOARGS, NULL},
    {"get_write_buffer_size", tr_get_write_buffer_size, METH_NOARGS, NULL},
    {"get_write_buffer_limits", tr_get_write_buffer_limits, METH_NOARGS, NULL},
    {"set_write_buffer_limits", (PyCFunction)(void (*)(void))tr_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_protocol", tr_get_protocol, METH_NOARGS, NULL},
    {"set_protocol", tr_set_protocol, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

/* asyncio's private attributes other asyncio code and tests read */
static PyObject *get_loop(PyObject *self, void *c) {
  (void)c;
  PyObject *l = (PyObject *)CORE(self)->loop;
  if (!l) Py_RETURN_NONE;
  Py_INCREF(l);
  return l;
}
static PyObject *get_protocol(PyObject *self, void *c) { return tr_get_protocol(self, c); }
static PyObject *get_flag(PyObject *self, void *c) {
  TrCore *t = CORE(self);
  switch ((int)(intptr_t)c) {
  case 0: return PyBool_FromLong(t->closing);
  case 1: return PyBool_FromLong(t->paused);
  case 2: return PyBool_FromLong(t->eof);
  case 3: return PyBool_FromLong(t->protocol_paused);
  case 4: return PyLong_FromLong(t->conn_lost);
  case 5: return PyLong_FromLong(t->fd);
  case 6: return PyLong_FromSsize_t(t->high);
  case 7: return PyLong_FromSsize_t(t->low);
  default: Py_RETURN_NONE;
  }
}
static int set_protocol_paused(PyObject *self, PyObject *v, void *c) {
  (void)c;
  int b = v ? PyObject_IsTrue(v) : 0;
  if (b < 0) return -1;
  CORE(self)->protocol_paused = (unsigned char)b;
  return 0;
}

static PyObject *get_empty_waiter(PyObject *self, void *c) {
  (void)c;
  PyObject *w = CORE(self)->empty_waiter;
  if (!w) Py_RETURN_NONE;
  Py_INCREF(w);
  return w;
}
static int set_empty_waiter(PyObject *self, PyObject *v, void *c) {
  (void)c;
  Py_XINCREF(v);
  Py_XSETREF(CORE(self)->empty_waiter, v == Py_None ? (Py_XDECREF(v), NULL) : v);
  return 0;
}

static PyGetSetDef tr_getset[] = {
    {"_empty_waiter", get_empty_waiter, set_empty_waiter, NULL, NULL},
    {"_loop", get_loop, NULL, NULL, NULL},
    {"_protocol", get_protocol, NULL, NULL, NULL},
    {"_closing", get_flag, NULL, NULL, (void *)0},
    {"_paused", get_flag, NULL, NULL, (void *)1},
    {"_eof", get_flag, NULL, NULL, (void *)2},
    {"_protocol_paused", get_flag, set_protocol_paused, NULL, (void *)3},
    {"_conn_lost", get_flag, NULL, NULL, (void *)4},
    {"_sock_fd", get_flag, NULL, NULL, (void *)5},
    {"_high_water", get_flag, NULL, NULL, (void *)6},
    {"_low_water", get_flag, NULL, NULL, (void *)7},
    {NULL, NULL, NULL, NULL, NULL}};

/* ------------------------------------------------------------------ */
/* Lifetime: the base's slots are object pointers between the header and */
/* core_off (no __dict__ or __weakref__ above this type).                */

static int tr_traverse(PyObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  for (Py_ssize_t off = sizeof(PyObject); off + (Py_ssize_t)sizeof(PyObject *) <= core_off;
       off += sizeof(PyObject *))
    Py_VISIT(*(PyObject **)((char *)self + off));
  TrCore *t = CORE(self);
  Py_VISIT(t->loop);
  Py_VISIT(t->protocol);
  Py_VISIT(t->lost_exc);
  Py_VISIT(t->ctx);
  Py_VISIT(t->empty_waiter);
  return 0;
}

static int tr_clear(PyObject *self) {
  for (Py_ssize_t off = sizeof(PyObject); off + (Py_ssize_t)sizeof(PyObject *) <= core_off;
       off += sizeof(PyObject *))
    Py_CLEAR(*(PyObject **)((char *)self + off));
  TrCore *t = CORE(self);
  Py_CLEAR(t->protocol);
  Py_CLEAR(t->lost_exc);
  Py_CLEAR(t->ctx);
  Py_CLEAR(t->empty_waiter);
  /* the loop stays while the stream does (the stream's loop) */
  if (!t->s) Py_CLEAR(t->loop);
  return 0;
}

static void tr_dealloc(PyObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  TrCore *t = CORE(self);
  tr_clear(self);
  if (t->s) {
    rill_stream *s = t->s;
    t->s = NULL;
    if (rill_stream_is_closing(s) == 0) rill_stream_abort(s);
    rill_stream_release(s);
  }
  Py_CLEAR(t->loop);
  tp->tp_free(self);
  Py_DECREF(tp); /* a heap type's instance holds its type */
}

/* _socket_transport_base(base, BufferedProtocol) -> the type (made once) */
static PyObject *mod_socket_transport_base(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *base, *bcls;
  if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &base, &bcls)) return NULL;
  if (TransportBase) {
    Py_INCREF(TransportBase);
    return (PyObject *)TransportBase;
  }
  PyTypeObject *bt = (PyTypeObject *)base;
  if (bt->tp_dictoffset || bt->tp_weaklistoffset || bt->tp_itemsize)
    return PyErr_Format(PyExc_TypeError, "the base must have __slots__ only");
  core_off = bt->tp_basicsize;
  s_data_received = PyUnicode_InternFromString("data_received");
  s_eof_received = PyUnicode_InternFromString("eof_received");
  s_get_buffer = PyUnicode_InternFromString("get_buffer");
  s_buffer_updated = PyUnicode_InternFromString("buffer_updated");
  s_pause_writing = PyUnicode_InternFromString("pause_writing");
  s_resume_writing = PyUnicode_InternFromString("resume_writing");
  s_fatal_error = PyUnicode_InternFromString("_fatal_error");
  s_call_connection_lost = PyUnicode_InternFromString("_call_connection_lost");
  s_minus1 = PyLong_FromLong(-1);
  s_join = PyUnicode_InternFromString("join");
  if (!s_data_received || !s_eof_received || !s_get_buffer || !s_buffer_updated ||
      !s_pause_writing || !s_resume_writing || !s_fatal_error || !s_call_connection_lost ||
      !s_minus1 || !s_join)
    return NULL;
  PyType_Slot slots[] = {{Py_tp_dealloc, tr_dealloc},   {Py_tp_traverse, tr_traverse},
                         {Py_tp_clear, tr_clear},       {Py_tp_methods, tr_methods},
                         {Py_tp_getset, tr_getset},     {0, NULL}};
  PyType_Spec spec = {"rill._rill._SocketTransportBase", (int)(core_off + sizeof(TrCore)), 0,
                      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, slots};
  PyObject *bases = PyTuple_Pack(1, base);
  if (!bases) return NULL;
  PyObject *tp = PyType_FromSpecWithBases(&spec, bases);
  Py_DECREF(bases);
  if (!tp) return NULL;
  Py_INCREF(bcls);
  buffered_cls = bcls;
  TransportBase = (PyTypeObject *)tp;
  Py_INCREF(tp);
  return tp;
}

static PyMethodDef transport_functions[] = {
    {"_socket_transport_base", mod_socket_transport_base, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

int rillpy_transport_init(PyObject *m) { return PyModule_AddFunctions(m, transport_functions); }
