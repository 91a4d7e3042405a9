/* sync.c - the core's sync primitives for Python: _Event, _Lock,
 * _Semaphore, _Condition, _Barrier, _Queue (rill/__init__.py gives them
 * asyncio's names and coroutine methods).
 *
 * Every rule (FIFO wake-up, no barging, pass-on after a cancel, queue
 * shutdown) is the core's: a wait is the core's future wrapped as a
 * rill.Future, which a task awaits directly (rill_task_wait), so a
 * cancelled waiter's hand-off reaches the next one. This file converts
 * values, maps codes and holds references.
 *
 * As asyncio's primitives, an object made outside a running loop binds to
 * the running loop at its first use (the core handle needs a loop); one
 * made inside binds at once. */
#include "rillpy_int.h"

enum { SK_EVENT, SK_LOCK, SK_SEMAPHORE, SK_CONDITION, SK_BARRIER, SK_QUEUE };

typedef struct {
  PyObject_HEAD
  PyLoop *loop;    /* NULL until bound */
  void *h;         /* the core handle (a reference), NULL until bound */
  PyObject *lock;  /* _Condition: its _Lock */
  int param, param2; /* semaphore value/bounded, barrier parties, queue maxsize/kind */
  unsigned char kind;
  PyObject *weakreflist;
} PySync;

PyTypeObject EventType, LockType, SemaphoreType, ConditionType, BarrierType, QueueType;

/* Raises code's class (the one table) with asyncio's message for the
 * code expected here, else the core's. */
static PyObject *raise_as(int code, int expected, const char *message) {
  if (code != expected) return rillpy_raise_code(code);
  PyObject *exc = exc_for_code(code, message);
  if (exc) raise_exc(exc);
  return NULL;
}

static PyObject *raise_last_as(int expected, const char *message) {
  int code = rill_last_error();
  return raise_as(code ? code : RILL_EINVAL, expected, message);
}

/* Creates the core handle on the running loop (a condition: on its
 * lock's). 0, or -1 with an exception. */
static int sync_bind(PySync *s) {
  if (s->h) return 0;
  PyLoop *loop;
  if (s->kind == SK_CONDITION) {
    PySync *lock = (PySync *)s->lock;
    if (sync_bind(lock) < 0) return -1;
    loop = lock->loop;
  } else if (!(loop = get_running())) {
    return -1;
  }
  if (rill_loop_is_closed(loop->loop) != 0) {
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return -1;
  }
  void *h = NULL;
  switch (s->kind) {
  case SK_EVENT: h = rill_event_new(loop->loop); break;
  case SK_LOCK: h = rill_lock_new(loop->loop); break;
  case SK_SEMAPHORE: h = rill_semaphore_new(loop->loop, s->param, s->param2); break;
  case SK_CONDITION: h = rill_condition_new(loop->loop, ((PySync *)s->lock)->h); break;
  case SK_BARRIER: h = rill_barrier_new(loop->loop, s->param); break;
  case SK_QUEUE: h = rill_queue_new(loop->loop, s->param, s->param2); break;
  }
  if (!h) {
    raise_last();
    return -1;
  }
  s->h = h;
  Py_INCREF(loop);
  s->loop = loop;
  return 0;
}

#define BIND(s)                         \
  do {                                  \
    if (!(s)->h && sync_bind(s) < 0) return NULL; \
  } while (0)

/* ------------------------------------------------------------------ */
/* _SyncWait: what acquire(), wait(), put(), get() and join() return     */
/*                                                                      */
/* asyncio's are coroutines, so this starts the core's wait at its first */
/* send, not when it is made: a wait never awaited (a task cancelled    */
/* before it started) takes no lock, unit or item. Done at once (the    */
/* uncontended case) it returns without yielding or making a Future;    */
/* else it yields a rill.Future of the core future, which the task      */
/* waits on directly (rill_task_wait), so the core's cancel and pass-on */
/* rules hold. create_task wraps it in a coroutine, as it wraps sleep.  */

enum { OP_EVENT_WAIT, OP_LOCK_ACQUIRE, OP_SEM_ACQUIRE, OP_COND_WAIT, OP_BARRIER_WAIT, OP_PUT,
       OP_GET, OP_JOIN };

typedef struct {
  PyObject_HEAD
  PySync *prim;     /* until started */
  PyObject *item;   /* OP_PUT, until started */
  int64_t priority; /* OP_PUT */
  rill_future *f;   /* once started, until pf takes it over */
  PyFuture *pf;     /* made when the wait has to yield */
  PyLoop *loop;     /* once started */
  PyObject *result; /* returned instead of the future's value (True), or NULL */
  unsigned char op, started, finished;
} PySyncWait;

PyTypeObject SyncWaitType;

static rill_future *put_value(rill_queue *q, PyObject *v, int64_t prio, int nowait, int *rc);

/* A wait for op on s (item: what a put puts); result: what it returns
 * instead of the core future's value (NULL: that value). */
static PyObject *new_wait(PySync *s, int op, PyObject *item, int64_t priority, PyObject *result) {
  PySyncWait *w = PyObject_New(PySyncWait, &SyncWaitType);
  if (!w) return NULL;
  Py_INCREF(s);
  w->prim = s;
  Py_XINCREF(item);
  w->item = item;
  w->priority = priority;
  w->f = NULL;
  w->pf = NULL;
  w->loop = NULL;
  Py_XINCREF(result);
  w->result = result;
  w->op = (unsigned char)op;
  w->started = w->finished = 0;
  return (PyObject *)w;
}

/* Starts the core's wait: 0, or -1 with the exception set. */
static int wait_start(PySyncWait *w) {
  PySync *s = w->prim;
  w->started = 1;
  if (!s->h && sync_bind(s) < 0) return -1;
  rill_future *f = NULL;
  int rc;
  switch (w->op) {
  case OP_EVENT_WAIT: f = rill_event_wait(s->h); break;
  case OP_LOCK_ACQUIRE: f = rill_lock_acquire(s->h); break;
  case OP_SEM_ACQUIRE: f = rill_semaphore_acquire(s->h); break;
  case OP_COND_WAIT: f = rill_condition_wait(s->h); break;
  case OP_BARRIER_WAIT: f = rill_barrier_wait(s->h); break;
  case OP_PUT: f = put_value(s->h, w->item, w->priority, 0, &rc); break;
  case OP_GET: f = rill_queue_get(s->h); break;
  case OP_JOIN: f = rill_queue_join(s->h); break;
  }
  if (!f) {
    if (w->op == OP_COND_WAIT) raise_last_as(RILL_ENOTLOCKED, "cannot wait on un-acquired lock");
    else raise_last();
    return -1;
  }
  w->f = f;
  Py_INCREF(s->loop);
  w->loop = s->loop;
  w->prim = NULL; /* the core's wait keeps its primitive alive */
  Py_DECREF(s);
  Py_CLEAR(w->item);
  return 0;
}

static rill_future *wait_future(PySyncWait *w) { return w->pf ? w->pf->fut : w->f; }

static PySendResult syncwait_send(PySyncWait *w, PyObject *arg, PyObject **result) {
  (void)arg;
  *result = NULL;
  if (w->finished) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited wait");
    return PYGEN_ERROR;
  }
  if (!w->started && wait_start(w) < 0) {
    w->finished = 1;
    return PYGEN_ERROR;
  }
  rill_future *f = wait_future(w);
  int state = rill_future_state(f);
  if (state == RILL_PENDING) {
    if (!w->pf) {
      if (!(w->pf = future_wrap(w->loop, w->f, FK_PLAIN))) {
        w->f = NULL;
        w->finished = 1;
        return PYGEN_ERROR;
      }
      w->f = NULL;
    }
    Py_INCREF(w->pf);
    *result = (PyObject *)w->pf;
    return PYGEN_NEXT;
  }
  w->finished = 1;
  if (state == RILL_DONE) {
    if (w->result) {
      Py_INCREF(w->result);
      *result = w->result;
    } else {
      *result = outcome_value(f);
    }
  } else {
    PyObject *exc = w->pf ? future_exc(w->pf) : outcome_exc(f);
    if (exc) raise_exc(exc);
  }
  return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

static PyObject *syncwait_iternext(PySyncWait *w) {
  PyObject *r;
  PySendResult sr = syncwait_send(w, Py_None, &r);
  if (sr == PYGEN_NEXT) return r;
  if (sr == PYGEN_RETURN) {
    if (r != Py_None) { /* StopIteration(r), r wrapped even when it is a tuple */
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

static PyObject *syncwait_send_method(PySyncWait *w, PyObject *arg) {
  (void)arg;
  return syncwait_iternext(w);
}

/* Gives the wait up: not started, it never starts; pending, the core
 * removes the waiter. */
static void syncwait_give_up(PySyncWait *w) {
  if (!w->started) {
    w->started = w->finished = 1;
    Py_CLEAR(w->prim);
    Py_CLEAR(w->item);
    return;
  }
  w->finished = 1;
  rill_future *f = wait_future(w);
  if (f && rill_future_state(f) == RILL_PENDING) rill_future_cancel(f);
}

/* throw(exc): what a task or an awaiting coroutine raises at this await. */
static PyObject *syncwait_throw(PySyncWait *w, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
    return NULL;
  }
  syncwait_give_up(w);
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

static PyObject *syncwait_close(PySyncWait *w, PyObject *unused) {
  (void)unused;
  syncwait_give_up(w);
  Py_RETURN_NONE;
}

static void syncwait_dealloc(PySyncWait *w) {
  Py_CLEAR(w->prim);
  Py_CLEAR(w->item);
  rill_future *f = w->f;
  w->f = NULL;
  rill_future_release(f);
  Py_CLEAR(w->pf);
  Py_CLEAR(w->loop);
  Py_CLEAR(w->result);
  PyObject_Free(w);
}

static PyMethodDef syncwait_methods[] = {
    {"send", (PyCFunction)syncwait_send_method, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))syncwait_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)syncwait_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyAsyncMethods syncwait_async = {.am_await = self_iter,
                                        .am_send = (sendfunc)syncwait_send};

PyTypeObject SyncWaitType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._rill._SyncWait",
    .tp_basicsize = sizeof(PySyncWait),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A sync primitive's wait (acquire, wait, put, get, join): awaitable once.",
    .tp_dealloc = (destructor)syncwait_dealloc,
    .tp_as_async = &syncwait_async,
    .tp_iter = self_iter,
    .tp_iternext = (iternextfunc)syncwait_iternext,
    .tp_methods = syncwait_methods,
};

static PySync *sync_alloc(PyTypeObject *type, int kind) {
  PySync *s = (PySync *)type->tp_alloc(type, 0);
  if (s) s->kind = (unsigned char)kind;
  return s;
}

/* Binds at once inside a running loop; a new reference or NULL. */
static PyObject *sync_ready(PySync *s) {
  if (running_loop && sync_bind(s) < 0) {
    Py_DECREF(s);
    return NULL;
  }
  return (PyObject *)s;
}

static int sync_traverse(PySync *s, visitproc visit, void *arg) {
  Py_VISIT(s->loop);
  Py_VISIT(s->lock);
  return 0;
}

static void sync_release_handle(PySync *s) {
  void *h = s->h;
  s->h = NULL;
  if (!h) return;
  switch (s->kind) {
  case SK_EVENT: rill_event_release(h); break;
  case SK_LOCK: rill_lock_release(h); break;
  case SK_SEMAPHORE: rill_semaphore_release(h); break;
  case SK_CONDITION: rill_condition_release(h); break;
  case SK_BARRIER: rill_barrier_release(h); break;
  case SK_QUEUE: rill_queue_release(h); break; /* may DECREF queued items */
  }
}

static void sync_dealloc(PySync *s) {
  PyObject_GC_UnTrack(s);
  if (s->weakreflist) PyObject_ClearWeakRefs((PyObject *)s);
  sync_release_handle(s);
  Py_CLEAR(s->lock);
  Py_CLEAR(s->loop);
  /* A Python subclass's subtype_dealloc drops the reference to its type. */
  Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *sync_get_loop(PySync *s, void *closure) {
  (void)closure;
  PyObject *r = s->loop ? (PyObject *)s->loop : Py_None;
  Py_INCREF(r);
  return r;
}

/* An int argument in [lo, INT_MAX]: asyncio's TypeError for another type. */
static int int_arg(PyObject *o, const char *what, int *out) {
  if (!PyLong_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(o)->tp_name);
    return -1;
  }
  long v = PyLong_AsLong(o);
  if (v == -1 && PyErr_Occurred()) return -1;
  if (v > INT_MAX || v < INT_MIN) {
    PyErr_Format(PyExc_OverflowError, "%s is too large", what);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* A predicate's answer (1, 0 or a code) as a bool. */
static PyObject *predicate(int rc) {
  if (rc < 0) return rillpy_raise_code(rc);
  return PyBool_FromLong(rc);
}

#define SYNC_TYPE(var, name, doc, methods, getset, newfn)                          \
  PyTypeObject var = {                                                              \
      PyVarObject_HEAD_INIT(NULL, 0).tp_name = name,                                \
      .tp_basicsize = sizeof(PySync),                                               \
      .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,    \
      .tp_doc = doc,                                                                \
      .tp_new = newfn,                                                              \
      .tp_dealloc = (destructor)sync_dealloc,                                       \
      .tp_traverse = (traverseproc)sync_traverse,                                   \
      .tp_methods = methods,                                                        \
      .tp_getset = getset,                                                          \
      .tp_weaklistoffset = offsetof(PySync, weakreflist),                           \
  }

/* ------------------------------------------------------------------ */
/* Event                                                                */

static PyObject *event_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  if (!PyArg_ParseTuple(args, ":Event") || (kw && PyDict_GET_SIZE(kw))) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Event() takes no arguments");
    return NULL;
  }
  PySync *s = sync_alloc(type, SK_EVENT);
  return s ? sync_ready(s) : NULL;
}

static PyObject *event_wait(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_EVENT_WAIT, NULL, 0, Py_True);
}

static PyObject *event_set(PySync *s, PyObject *unused) {
  (void)unused;
  BIND(s);
  int rc = rill_event_set(s->h);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *event_clear(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) Py_RETURN_NONE;
  int rc = rill_event_clear(s->h);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *event_is_set(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) Py_RETURN_FALSE;
  return predicate(rill_event_is_set(s->h));
}

static PyMethodDef event_methods[] = {
    {"wait", (PyCFunction)event_wait, METH_NOARGS,
     "wait(): awaitable, True once the event is set (at once if it is)."},
    {"set", (PyCFunction)event_set, METH_NOARGS, "Set the event: every waiter wakes up, FIFO."},
    {"clear", (PyCFunction)event_clear, METH_NOARGS, "Reset the event to unset."},
    {"is_set", (PyCFunction)event_is_set, METH_NOARGS, "True if the event is set."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef sync_getset[] = {{"_loop", (getter)sync_get_loop, NULL, NULL, NULL},
                                    {NULL, NULL, NULL, NULL, NULL}};

SYNC_TYPE(EventType, "rill._rill._Event", "The C half of rill.Event (rill_event).",
          event_methods, sync_getset, event_new);

/* ------------------------------------------------------------------ */
/* Lock                                                                 */

static PyObject *lock_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  if (!PyArg_ParseTuple(args, ":Lock") || (kw && PyDict_GET_SIZE(kw))) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Lock() takes no arguments");
    return NULL;
  }
  PySync *s = sync_alloc(type, SK_LOCK);
  return s ? sync_ready(s) : NULL;
}

static PyObject *lock_acquire(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_LOCK_ACQUIRE, NULL, 0, NULL);
}

static PyObject *lock_acquire_true(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_LOCK_ACQUIRE, NULL, 0, Py_True);
}

static PyObject *lock_unlock(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) return raise_as(RILL_ENOTLOCKED, RILL_ENOTLOCKED, "Lock is not acquired.");
  int rc = rill_lock_unlock(s->h);
  if (rc < 0) return raise_as(rc, RILL_ENOTLOCKED, "Lock is not acquired.");
  Py_RETURN_NONE;
}

static PyObject *lock_locked(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) Py_RETURN_FALSE;
  return predicate(rill_lock_is_locked(s->h));
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)lock_acquire_true, METH_NOARGS,
     "acquire(): awaitable, True once the caller holds the lock (FIFO, no barging)."},
    {"_acquire", (PyCFunction)lock_acquire, METH_NOARGS, "acquire() giving None (__aenter__)."},
    {"release", (PyCFunction)lock_unlock, METH_NOARGS,
     "Release the lock (to the first waiter); RuntimeError if not locked."},
    {"locked", (PyCFunction)lock_locked, METH_NOARGS, "True if the lock is held."},
    {NULL, NULL, 0, NULL}};

SYNC_TYPE(LockType, "rill._rill._Lock", "The C half of rill.Lock (rill_lock).", lock_methods,
          sync_getset, lock_new);

/* ------------------------------------------------------------------ */
/* Semaphore and BoundedSemaphore                                       */

static PyObject *semaphore_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"value", "bounded", NULL};
  PyObject *value = NULL;
  int bounded = 0, v = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op:Semaphore", kwlist, &value, &bounded))
    return NULL;
  if (value && int_arg(value, "Semaphore initial value", &v) < 0) return NULL;
  if (v < 0) {
    PyErr_SetString(PyExc_ValueError, "Semaphore initial value must be >= 0");
    return NULL;
  }
  PySync *s = sync_alloc(type, SK_SEMAPHORE);
  if (!s) return NULL;
  s->param = v;
  s->param2 = bounded;
  return sync_ready(s);
}

static PyObject *semaphore_acquire(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_SEM_ACQUIRE, NULL, 0, NULL);
}

static PyObject *semaphore_acquire_true(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_SEM_ACQUIRE, NULL, 0, Py_True);
}

static PyObject *semaphore_post(PySync *s, PyObject *unused) {
  (void)unused;
  BIND(s);
  int rc = rill_semaphore_post(s->h);
  if (rc < 0) return raise_as(rc, RILL_ETOOMANY, "BoundedSemaphore released too many times");
  Py_RETURN_NONE;
}

static PyObject *semaphore_locked(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) return PyBool_FromLong(s->param == 0);
  return predicate(rill_semaphore_is_locked(s->h));
}

static PyObject *semaphore_value(PySync *s, void *closure) {
  (void)closure;
  if (!s->h) return PyLong_FromLong(s->param);
  int rc = rill_semaphore_value(s->h);
  return rc < 0 ? rillpy_raise_code(rc) : PyLong_FromLong(rc);
}

static PyMethodDef semaphore_methods[] = {
    {"acquire", (PyCFunction)semaphore_acquire_true, METH_NOARGS,
     "acquire(): awaitable, True once the caller holds a unit (FIFO)."},
    {"_acquire", (PyCFunction)semaphore_acquire, METH_NOARGS, "acquire() giving None (__aenter__)."},
    {"release", (PyCFunction)semaphore_post, METH_NOARGS,
     "Give a unit back; ValueError past a bounded semaphore's initial value."},
    {"locked", (PyCFunction)semaphore_locked, METH_NOARGS, "True if an acquire would wait."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef semaphore_getset[] = {
    {"_loop", (getter)sync_get_loop, NULL, NULL, NULL},
    {"_value", (getter)semaphore_value, NULL, "The free units.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

SYNC_TYPE(SemaphoreType, "rill._rill._Semaphore",
          "The C half of rill.Semaphore and BoundedSemaphore (rill_semaphore).",
          semaphore_methods, semaphore_getset, semaphore_new);

/* ------------------------------------------------------------------ */
/* Condition                                                            */

static PyObject *condition_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"lock", NULL};
  PyObject *lock;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O:Condition", kwlist, &lock)) return NULL;
  if (!PyObject_TypeCheck(lock, &LockType)) {
    PyErr_Format(PyExc_TypeError, "Condition's lock must be a rill.Lock, not %.100s",
                 Py_TYPE(lock)->tp_name);
    return NULL;
  }
  PySync *s = sync_alloc(type, SK_CONDITION);
  if (!s) return NULL;
  Py_INCREF(lock);
  s->lock = lock;
  if (((PySync *)lock)->h && sync_bind(s) < 0) {
    Py_DECREF(s);
    return NULL;
  }
  return sync_ready(s);
}

static PyObject *condition_wait(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_COND_WAIT, NULL, 0, Py_True);
}

static PyObject *condition_notify(PySync *s, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
  Py_ssize_t n = 1;
  if (nargs > 1 || (kwnames && (PyTuple_GET_SIZE(kwnames) != 1 || nargs ||
                                PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0),
                                                                 "n") != 0))) {
    PyErr_SetString(PyExc_TypeError, "notify(n=1)");
    return NULL;
  }
  PyObject *arg = nargs ? args[0] : kwnames ? args[0] : NULL;
  if (arg) {
    if (!PyLong_Check(arg)) {
      PyErr_Format(PyExc_TypeError, "n must be an int, not %.100s", Py_TYPE(arg)->tp_name);
      return NULL;
    }
    n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
  }
  if (!s->h && !((PySync *)s->lock)->h)
    return raise_as(RILL_ENOTLOCKED, RILL_ENOTLOCKED, "cannot notify on un-acquired lock");
  BIND(s);
  int rc = rill_condition_notify(s->h, n < 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n);
  if (rc < 0) return raise_as(rc, RILL_ENOTLOCKED, "cannot notify on un-acquired lock");
  Py_RETURN_NONE;
}

static PyObject *condition_notify_all(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h && !((PySync *)s->lock)->h)
    return raise_as(RILL_ENOTLOCKED, RILL_ENOTLOCKED, "cannot notify on un-acquired lock");
  BIND(s);
  int rc = rill_condition_notify_all(s->h);
  if (rc < 0) return raise_as(rc, RILL_ENOTLOCKED, "cannot notify on un-acquired lock");
  Py_RETURN_NONE;
}

static PyObject *condition_get_lock(PySync *s, void *closure) {
  (void)closure;
  Py_INCREF(s->lock);
  return s->lock;
}

static PyMethodDef condition_methods[] = {
    {"wait", (PyCFunction)condition_wait, METH_NOARGS,
     "wait(): release the lock; awaitable, True once notified and the lock is held "
     "again (also when cancelled, before it raises)."},
    {"notify", (PyCFunction)(void (*)(void))condition_notify, METH_FASTCALL | METH_KEYWORDS,
     "Wake up to n waiters (FIFO); the lock must be held."},
    {"notify_all", (PyCFunction)condition_notify_all, METH_NOARGS,
     "Wake every waiter; the lock must be held."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef condition_getset[] = {
    {"_loop", (getter)sync_get_loop, NULL, NULL, NULL},
    {"_lock", (getter)condition_get_lock, NULL, "The condition's Lock.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

SYNC_TYPE(ConditionType, "rill._rill._Condition", "The C half of rill.Condition (rill_condition).",
          condition_methods, condition_getset, condition_new);

/* ------------------------------------------------------------------ */
/* Barrier                                                              */

static PyObject *barrier_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"parties", NULL};
  PyObject *parties;
  int n;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O:Barrier", kwlist, &parties)) return NULL;
  if (int_arg(parties, "parties", &n) < 0) return NULL;
  if (n < 1) {
    PyErr_SetString(PyExc_ValueError, "parties must be > 0");
    return NULL;
  }
  PySync *s = sync_alloc(type, SK_BARRIER);
  if (!s) return NULL;
  s->param = n;
  return sync_ready(s);
}

static PyObject *barrier_wait(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_BARRIER_WAIT, NULL, 0, NULL);
}

static PyObject *barrier_abort(PySync *s, PyObject *unused) {
  (void)unused;
  BIND(s);
  int rc = rill_barrier_abort(s->h);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *barrier_reset(PySync *s, PyObject *unused) {
  (void)unused;
  BIND(s);
  int rc = rill_barrier_reset(s->h);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *barrier_parties(PySync *s, void *closure) {
  (void)closure;
  return PyLong_FromLong(s->param);
}

static PyObject *barrier_n_waiting(PySync *s, void *closure) {
  (void)closure;
  if (!s->h) return PyLong_FromLong(0);
  int rc = rill_barrier_n_waiting(s->h);
  return rc < 0 ? rillpy_raise_code(rc) : PyLong_FromLong(rc);
}

static PyObject *barrier_broken(PySync *s, void *closure) {
  (void)closure;
  if (!s->h) Py_RETURN_FALSE;
  return predicate(rill_barrier_is_broken(s->h));
}

static PyMethodDef barrier_methods[] = {
    {"wait", (PyCFunction)barrier_wait, METH_NOARGS,
     "A future of the caller's arrival index, done once parties tasks wait; "
     "BrokenBarrierError if the barrier breaks or is reset meanwhile."},
    {"_abort", (PyCFunction)barrier_abort, METH_NOARGS, NULL},
    {"_reset", (PyCFunction)barrier_reset, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef barrier_getset[] = {
    {"_loop", (getter)sync_get_loop, NULL, NULL, NULL},
    {"parties", (getter)barrier_parties, NULL, "The parties the barrier was made for.", NULL},
    {"n_waiting", (getter)barrier_n_waiting, NULL, "How many tasks wait now.", NULL},
    {"broken", (getter)barrier_broken, NULL, "True once aborted (until reset).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

SYNC_TYPE(BarrierType, "rill._rill._Barrier", "The C half of rill.Barrier (rill_barrier).",
          barrier_methods, barrier_getset, barrier_new);

/* ------------------------------------------------------------------ */
/* Queue                                                                */

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"maxsize", "kind", NULL};
  PyObject *maxsize = NULL;
  int n = 0, kind = RILL_QUEUE_FIFO;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|Oi:Queue", kwlist, &maxsize, &kind)) return NULL;
  if (maxsize && int_arg(maxsize, "maxsize", &n) < 0) return NULL;
  if (kind < RILL_QUEUE_FIFO || kind > RILL_QUEUE_PRIORITY) {
    PyErr_SetString(PyExc_ValueError, "unknown queue kind");
    return NULL;
  }
  PySync *s = sync_alloc(type, SK_QUEUE);
  if (!s) return NULL;
  s->param = n < 0 ? 0 : n;
  s->param2 = kind;
  return sync_ready(s);
}

/* The core's priority key of item: 0 for FIFO/LIFO; a PriorityQueue
 * orders by an int item itself or by the int first element of a tuple. */
static int item_priority(PySync *s, PyObject *item, int64_t *prio) {
  *prio = 0;
  if (s->param2 != RILL_QUEUE_PRIORITY) return 0;
  PyObject *key = item;
  if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) > 0) key = PyTuple_GET_ITEM(item, 0);
  if (!PyLong_Check(key)) {
    PyErr_Format(PyExc_TypeError,
                 "rill.PriorityQueue items are an int or a tuple whose first element is "
                 "an int priority, not %R",
                 item);
    return -1;
  }
  long long v = PyLong_AsLongLong(key);
  if (v == -1 && PyErr_Occurred()) return -1;
  *prio = v;
  return 0;
}

/* None, bool, int64, float and bytes travel as the core's kinds (other
 * languages see them natively); any other object as a reference the
 * queue owns (freed with decref_any). The _nowait form when f is NULL. */
static rill_future *put_value(rill_queue *q, PyObject *v, int64_t prio, int nowait, int *rc) {
  *rc = 0;
  if (v == Py_None)
    return nowait ? (*rc = rill_queue_put_nowait_none(q, prio), NULL) : rill_queue_put_none(q, prio);
  if (PyBool_Check(v)) {
    int b = v == Py_True;
    return nowait ? (*rc = rill_queue_put_nowait_bool(q, b, prio), NULL)
                  : rill_queue_put_bool(q, b, prio);
  }
  if (PyLong_CheckExact(v)) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (!overflow && !(x == -1 && PyErr_Occurred()))
      return nowait ? (*rc = rill_queue_put_nowait_int(q, x, prio), NULL)
                    : rill_queue_put_int(q, x, prio);
    PyErr_Clear(); /* a big int travels as an object */
  } else if (PyFloat_CheckExact(v)) {
    double d = PyFloat_AS_DOUBLE(v);
    return nowait ? (*rc = rill_queue_put_nowait_double(q, d, prio), NULL)
                  : rill_queue_put_double(q, d, prio);
  } else if (PyBytes_CheckExact(v)) {
    const char *p = PyBytes_AS_STRING(v);
    size_t len = (size_t)PyBytes_GET_SIZE(v);
    return nowait ? (*rc = rill_queue_put_nowait_bytes(q, p, len, prio), NULL)
                  : rill_queue_put_bytes(q, p, len, prio);
  }
  Py_INCREF(v);
  rill_future *f = NULL;
  if (nowait) *rc = rill_queue_put_nowait_pointer(q, v, decref_any, PYTAG, prio);
  else f = rill_queue_put_pointer(q, v, decref_any, PYTAG, prio);
  if (nowait ? *rc < 0 : !f) Py_DECREF(v); /* on failure the caller keeps it */
  return f;
}

static PyObject *queue_put(PySync *s, PyObject *item) {
  int64_t prio;
  if (item_priority(s, item, &prio) < 0) return NULL;
  return new_wait(s, OP_PUT, item, prio, NULL);
}

static PyObject *queue_put_nowait(PySync *s, PyObject *item) {
  int64_t prio;
  int rc;
  if (item_priority(s, item, &prio) < 0) return NULL;
  BIND(s);
  put_value(s->h, item, prio, 1, &rc);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *queue_get(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_GET, NULL, 0, NULL);
}

static PyObject *queue_get_nowait(PySync *s, PyObject *unused) {
  (void)unused;
  BIND(s);
  rill_future *f = rill_queue_get_nowait(s->h);
  if (!f) return raise_last();
  PyObject *v = outcome_value(f);
  rill_future_release(f);
  return v;
}

static PyObject *queue_qsize(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) return PyLong_FromLong(0);
  int rc = rill_queue_qsize(s->h);
  return rc < 0 ? rillpy_raise_code(rc) : PyLong_FromLong(rc);
}

static PyObject *queue_empty(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) Py_RETURN_TRUE;
  return predicate(rill_queue_is_empty(s->h));
}

static PyObject *queue_full(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) Py_RETURN_FALSE;
  return predicate(rill_queue_is_full(s->h));
}

static PyObject *queue_task_done(PySync *s, PyObject *unused) {
  (void)unused;
  if (!s->h) return raise_as(RILL_ETOOMANY, RILL_ETOOMANY, "task_done() called too many times");
  int rc = rill_queue_task_done(s->h);
  if (rc < 0) return raise_as(rc, RILL_ETOOMANY, "task_done() called too many times");
  Py_RETURN_NONE;
}

static PyObject *queue_join(PySync *s, PyObject *unused) {
  (void)unused;
  return new_wait(s, OP_JOIN, NULL, 0, NULL);
}

static PyObject *queue_shutdown(PySync *s, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"immediate", NULL};
  int immediate = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:shutdown", kwlist, &immediate)) return NULL;
  BIND(s);
  int rc = rill_queue_shutdown(s->h, immediate);
  if (rc < 0) return rillpy_raise_code(rc);
  Py_RETURN_NONE;
}

static PyObject *queue_is_shut_down(PySync *s, void *closure) {
  (void)closure;
  if (!s->h) Py_RETURN_FALSE;
  return predicate(rill_queue_is_shut_down(s->h));
}

static PyObject *queue_maxsize(PySync *s, void *closure) {
  (void)closure;
  return PyLong_FromLong(s->param);
}

/* Embedding: the rill_queue* (borrowed; a host keeps it with
 * rill_queue_retain). Binds the queue to the running loop if unbound. */
static PyObject *queue_address(PySync *s, PyObject *unused) {
  (void)unused;
  BIND(s);
  return PyLong_FromVoidPtr(s->h);
}

static PyMethodDef queue_methods[] = {
    {"put", (PyCFunction)queue_put, METH_O,
     "put(item): awaitable, done once item is in the queue (FIFO among putters)."},
    {"get", (PyCFunction)queue_get, METH_NOARGS,
     "get(): awaitable of the next item (FIFO among getters)."},
    {"put_nowait", (PyCFunction)queue_put_nowait, METH_O, "Put or raise QueueFull."},
    {"get_nowait", (PyCFunction)queue_get_nowait, METH_NOARGS, "Get or raise QueueEmpty."},
    {"qsize", (PyCFunction)queue_qsize, METH_NOARGS, "The number of items queued."},
    {"empty", (PyCFunction)queue_empty, METH_NOARGS, "True if no item is queued."},
    {"full", (PyCFunction)queue_full, METH_NOARGS, "True if maxsize items are queued."},
    {"task_done", (PyCFunction)queue_task_done, METH_NOARGS,
     "One item got earlier is processed; ValueError if called too many times."},
    {"join", (PyCFunction)queue_join, METH_NOARGS,
     "join(): awaitable, done once every item put has had its task_done()."},
    {"shutdown", (PyCFunction)(void (*)(void))queue_shutdown, METH_VARARGS | METH_KEYWORDS,
     "shutdown(immediate=False): puts and waiting getters raise QueueShutDown; "
     "immediate also drops the items left."},
    {"_rill_queue_address", (PyCFunction)queue_address, METH_NOARGS,
     "Embedding: the address of the wrapped rill_queue* (borrowed)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef queue_getset[] = {
    {"_loop", (getter)sync_get_loop, NULL, NULL, NULL},
    {"maxsize", (getter)queue_maxsize, NULL, "The maximum size (0: unbounded).", NULL},
    {"_is_shut_down", (getter)queue_is_shut_down, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

SYNC_TYPE(QueueType, "rill._rill._Queue",
          "The C half of rill.Queue, LifoQueue and PriorityQueue (rill_queue).", queue_methods,
          queue_getset, queue_new);

/* Embedding: _wrap_queue(classes, address, loop=None) (rill.wrap_queue) ->
 * an instance of classes[kind] (a tuple of three _Queue subclasses: FIFO,
 * LIFO, priority) holding its own reference to the rill_queue* at address,
 * made elsewhere (a C or C++ host). */
PyObject *mod_wrap_queue(PyObject *mod, PyObject *args) {
  (void)mod;
  PyObject *classes, *addr, *loopobj = Py_None;
  if (!PyArg_ParseTuple(args, "O!O|O", &PyTuple_Type, &classes, &addr, &loopobj)) return NULL;
  if (PyTuple_GET_SIZE(classes) != 3) {
    PyErr_SetString(PyExc_TypeError, "_wrap_queue: three Queue classes are required");
    return NULL;
  }
  if (loopobj != Py_None && !PyObject_TypeCheck(loopobj, &LoopType)) {
    PyErr_SetString(PyExc_TypeError, "wrap_queue: loop must be a rill event loop");
    return NULL;
  }
  rill_queue *q = PyLong_AsVoidPtr(addr);
  if (!q) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "wrap_queue: NULL queue address");
    return NULL;
  }
  int kind = rill_queue_kind(q); /* ECLOSED for a queue of a closed loop */
  if (kind < 0) return rillpy_raise_code(kind);
  if (kind > RILL_QUEUE_PRIORITY) {
    PyErr_SetString(PyExc_ValueError, "wrap_queue: a queue of an unknown kind");
    return NULL;
  }
  PyTypeObject *type = (PyTypeObject *)PyTuple_GET_ITEM(classes, kind);
  if (!PyType_Check(type) || !PyType_IsSubtype(type, &QueueType)) {
    PyErr_SetString(PyExc_TypeError, "_wrap_queue: a Queue class is required");
    return NULL;
  }
  rill_loop *rl = rill_queue_loop(q);
  PyLoop *loop = loopobj != Py_None ? (PyLoop *)loopobj : (PyLoop *)rill_loop_binding(rl, PYTAG);
  if (!loop) {
    PyErr_SetString(PyExc_ValueError, "wrap_queue: no Python loop on the queue's rill_loop "
                                      "(rill.attach_loop it first)");
    return NULL;
  }
  if (loop->loop != rl) {
    PyErr_SetString(PyExc_ValueError, "wrap_queue: the queue belongs to another loop");
    return NULL;
  }
  int maxsize = rill_queue_maxsize(q);
  if (maxsize < 0) return rillpy_raise_code(maxsize);
  PySync *s = sync_alloc(type, SK_QUEUE);
  if (!s) return NULL;
  s->h = rill_queue_retain(q);
  Py_INCREF(loop);
  s->loop = loop;
  s->param = maxsize;
  s->param2 = kind;
  return (PyObject *)s;
}

int rillpy_sync_init(PyObject *m) {
  if (add_type(m, &SyncWaitType, "_SyncWait") < 0 || add_type(m, &EventType, "_Event") < 0 || add_type(m, &LockType, "_Lock") < 0 ||
      add_type(m, &SemaphoreType, "_Semaphore") < 0 ||
      add_type(m, &ConditionType, "_Condition") < 0 || add_type(m, &BarrierType, "_Barrier") < 0 ||
      add_type(m, &QueueType, "_Queue") < 0)
    return -1;
  if (PyModule_AddIntConstant(m, "QUEUE_FIFO", RILL_QUEUE_FIFO) < 0 ||
      PyModule_AddIntConstant(m, "QUEUE_LIFO", RILL_QUEUE_LIFO) < 0 ||
      PyModule_AddIntConstant(m, "QUEUE_PRIORITY", RILL_QUEUE_PRIORITY) < 0)
    return -1;
  return 0;
}
