/* task.c - rill.Task and sleep: the step that drives a coroutine on a rill_task. */
#include "rillpy_int.h"

/* ------------------------------------------------------------------ */
/* sleep                                                                */

PySendResult sleep_am_send(PySleep *self, PyObject *arg, PyObject **result) {
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

PyObject *sleep_iternext(PySleep *self) {
  Py_INCREF(self);
  return (PyObject *)self;
}

void sleep_dealloc(PySleep *self) {
  Py_CLEAR(self->result);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyAsyncMethods sleep_async = {.am_await = self_iter, .am_send = (sendfunc)sleep_am_send};

PyTypeObject SleepType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rill._Sleep",
    .tp_basicsize = sizeof(PySleep),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What rill.sleep() returns: awaitable once, in a rill task.",
    .tp_dealloc = (destructor)sleep_dealloc,
    .tp_as_async = &sleep_async,
    .tp_iter = self_iter,
    .tp_iternext = (iternextfunc)sleep_iternext,
};

PyObject *mod_sleep(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
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

void task_unlink(PyTask *t) {
  if (!t->in_list) return;
  PyLoop *loop = t->base.loop;
  if (t->prev) t->prev->next = t->next;
  else loop->tasks = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = NULL;
  t->in_list = 0;
}

/* The rill_task's free_arg: the task is done (or destroyed at close). */
void task_free_arg(void *arg) {
  PyGILState_STATE gs;
  int ensured = gil_enter(&gs);
  PyTask *t = arg;
  task_unlink(t);
  Py_CLEAR(t->pending_exc);
  Py_CLEAR(t->waiter);
  if (!t->stepped && t->coro) { /* never started: close it, no "never awaited" warning */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    static PyObject *str_close;
    if (!str_close) str_close = PyUnicode_InternFromString("close");
    PyObject *r = str_close ? PyObject_CallMethodNoArgs(t->coro, str_close) : NULL;
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

PySendResult coro_throw(PyObject *coro, PyObject *exc, PyObject **result) {
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

void task_set_pending_exc(PyTask *t, PyObject *exc) {
  Py_XSETREF(t->pending_exc, exc);
}

/* The coroutine yielded y: arrange the next step. */
void task_handle_yield(PyTask *t, rill_task *rt, PyObject *y) {
  int rc;
  if (Py_IS_TYPE(y, &SleepType)) {
    double d = ((PySleep *)y)->delay;
    t->send_marker = 1;
    rc = d > 0 ? rill_task_sleep(rt, d) : rill_task_yield(rt);
  } else if (Py_IS_TYPE(y, &IOWaitType)) {
    /* a stream read, drain, connect ... that yielded itself (io.c): the
     * task waits on its core future; no rill.Future is made */
    PyFuture *pf = NULL;
    rill_future *f = iowait_core_future(y, &pf);
    if (!f) {
      task_set_pending_exc(t, PyObject_CallFunction(PyExc_RuntimeError, "s",
                                                    "Task got an I/O wait that is not pending"));
      rc = rill_task_yield(rt);
    } else {
      rc = rill_task_wait(rt, f);
      if (rc == 0 && pf) {
        Py_INCREF(pf);
        Py_XSETREF(t->waiter, pf);
      }
    }
  } else if (Future_Check(y)) {
    PyFuture *f = (PyFuture *)y;
    if (f == &t->base) {
      task_set_pending_exc(t, PyObject_CallFunction(PyExc_RuntimeError, "s",
                                                    "Task cannot await on itself"));
      rc = rill_task_yield(rt);
    } else {
      rc = rill_task_wait(rt, f->fut);
      if (rc == 0) {
        Py_INCREF(f);
        Py_XSETREF(t->waiter, f);
      }
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
  } else if (helper_adopt_foreign && PyObject_HasAttrString(y, "_asyncio_future_blocking")) {
    /* an asyncio future of this loop (asyncio.gather's ...): wait on a
     * rill.Future that follows it (loopio.c's helper) */
    PyObject *rf = PyObject_CallOneArg(helper_adopt_foreign, y);
    if (rf && Future_Check(rf)) {
      rc = rill_task_wait(rt, ((PyFuture *)rf)->fut);
      if (rc == 0) Py_XSETREF(t->waiter, (PyFuture *)rf);
      else Py_DECREF(rf);
    } else {
      Py_XDECREF(rf);
      if (rf) PyErr_SetString(PyExc_SystemError, "foreign future helper gave no rill.Future");
      task_set_pending_exc(t, fetch_exc());
      rc = rill_task_yield(rt);
    }
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

void task_handle_error(PyTask *t, rill_task *rt) {
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
  if (rc == 0 && rill_future_state(rill_task_future(rt)) == RILL_CANCELLED) {
    Py_INCREF(exc);
    Py_XSETREF(t->cancelled_exc, exc);
  }
  PyErr_Clear();
  /* asyncio re-raises these two only; any other BaseException is stored
   * in the task or reported, like an Exception */
  if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_KeyboardInterrupt) ||
      PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_SystemExit)) {
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

/* asyncio.current_task() (and so asyncio.timeout, asyncio.TaskGroup) reads
 * asyncio's {loop: task} dict, asyncio.tasks._current_tasks: on every rill
 * loop (rill.run's, EventLoop, a host's attached loop) a step enters its
 * task there and leaves it after, as asyncio's own step does with
 * _enter_task/_leave_task; the outer entry comes back when steps nest. The
 * two dict writes cost about 30 ns a step, 40 % of a bare step (libraries
 * written for asyncio ask asyncio.current_task()). */
static void asyncio_enter(PyTask *t) {
  if (PyDict_SetItem(asyncio_current_tasks, (PyObject *)t->base.loop, (PyObject *)t) < 0)
    PyErr_Clear();
}

static void asyncio_leave(PyTask *t, PyTask *outer) {
  PyObject *key = (PyObject *)t->base.loop;
  int rc = outer && outer->base.loop == t->base.loop
               ? PyDict_SetItem(asyncio_current_tasks, key, (PyObject *)outer)
               : PyDict_DelItem(asyncio_current_tasks, key);
  if (rc < 0) PyErr_Clear();
}

/* The step: one send (or throw) into the coroutine. */
void task_step(rill_task *rt, void *arg) {
  gil_take();
  PyTask *t = arg;
  PyObject *res = NULL;
  PySendResult sr;
  t->stepped = 1;
  Py_CLEAR(t->waiter); /* resumed: no longer waits */
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
  int in_asyncio = asyncio_current_tasks != NULL;
  if (in_asyncio) asyncio_enter(t);
  if (rill_task_cancel_requested(rt) == 1) {
    Py_CLEAR(t->pending_exc);
    t->send_marker = 0;
    PyObject *exc = make_cancelled_obj(t->base.cancel_msg, rill_task_cancel_message(rt));
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
  {
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (sr == PYGEN_ERROR) PyErr_Fetch(&et, &ev, &etb);
    if (in_asyncio) asyncio_leave(t, outer);
    if (t->ctx && PyContext_Exit(t->ctx) < 0) PyErr_Clear();
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

int is_coroutine(PyObject *o) {
  if (PyCoro_CheckExact(o)) return 1;
  if (!helper_iscoroutine) return 0;
  PyObject *r = PyObject_CallOneArg(helper_iscoroutine, o);
  if (!r) return -1;
  int b = PyObject_IsTrue(r);
  Py_DECREF(r);
  return b;
}

/* Debug mode's slow-step report (rill_step_set_describer): what the task
 * runs and where, as asyncio's Task repr says it: "main() running at
 * FILE:LINE" while its coroutine is suspended, "main() done, defined at
 * FILE:LINE" once it has finished. Runs on the loop's thread with the GIL
 * held (right after the step); an error on the way is swallowed. */
static int describe_code(PyObject *coro, char *buf, size_t cap) {
  PyObject *qualname = PyObject_GetAttrString(coro, "__qualname__");
  if (!qualname) return 0;
  PyObject *frame = PyObject_GetAttrString(coro, "cr_frame");
  if (!frame) {
    PyErr_Clear();
    frame = PyObject_GetAttrString(coro, "gi_frame");
  }
  PyObject *code = PyObject_GetAttrString(coro, "cr_code");
  if (!code) {
    PyErr_Clear();
    code = PyObject_GetAttrString(coro, "gi_code");
  }
  int ok = 0;
  const char *name = PyUnicode_Check(qualname) ? PyUnicode_AsUTF8(qualname) : NULL;
  PyObject *file = code ? PyObject_GetAttrString(code, "co_filename") : NULL;
  const char *f = file && PyUnicode_Check(file) ? PyUnicode_AsUTF8(file) : NULL;
  if (name && f) {
    if (frame && frame != Py_None) {
      int line = PyFrame_GetLineNumber((PyFrameObject *)frame);
      snprintf(buf, cap, "%s() running at %s:%d", name, f, line);
    } else {
      PyObject *first = PyObject_GetAttrString(code, "co_firstlineno");
      long line = first ? PyLong_AsLong(first) : -1;
      Py_XDECREF(first);
      snprintf(buf, cap, "%s() done, defined at %s:%ld", name, f, line);
    }
    ok = 1;
  }
  Py_XDECREF(file);
  Py_XDECREF(code);
  Py_XDECREF(frame);
  Py_DECREF(qualname);
  return ok;
}

static int task_describe(rill_task *rt, void *arg, char *buf, size_t cap) {
  (void)rt;
  PyTask *t = arg;
  if (!t || !t->coro) return 0;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  int ok = describe_code(t->coro, buf, cap);
  PyErr_Clear();
  PyErr_Restore(type, value, tb);
  return ok;
}

int rillpy_task_init(void) { return rill_step_set_describer(task_step, task_describe) == 0 ? 0 : -1; }

PyObject *task_create(PyLoop *loop, PyObject *coro, PyObject *name, PyObject *ctx) {
  if ((Py_IS_TYPE(coro, &SleepType) || Py_IS_TYPE(coro, &SyncWaitType)) && helper_wrap_awaitable) {
    /* rill.sleep() is not a coroutine function, asyncio.sleep() is:
     * create_task(sleep(d)) works in both; so do a queue's get() & co. */
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
  t->base.cancel_msg = NULL;
  t->base.weakreflist = NULL;
  t->base.kind = FK_PLAIN;
  t->base.cb_registered = 0;
  t->task = NULL;
  Py_INCREF(coro);
  t->coro = coro;
  t->pending_exc = NULL;
  t->waiter = NULL;
  t->cancelled_exc = NULL;
  t->prev = t->next = NULL;
  t->in_list = 0;
  t->send_marker = 0;
  t->ctx_untracked = 0;
  t->stepped = 0; /* PyObject_GC_New does not zero: an unset flag skipped task_free_arg's close */
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
  rill_future_set_owner(t->base.fut, PYTAG); /* its reports go to Python's handler */
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

PyObject *task_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
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

int task_traverse(PyTask *self, visitproc visit, void *arg) {
  Py_VISIT(self->coro);
  Py_VISIT(self->ctx);
  Py_VISIT(self->pending_exc);
  Py_VISIT(self->waiter);
  Py_VISIT(self->cancelled_exc);
  return future_traverse(&self->base, visit, arg);
}

int task_clear(PyTask *self) {
  /* Only a done task can be unreachable (a pending one is owned by the
   * loop), so its coroutine is finished and can go. */
  Py_CLEAR(self->coro);
  Py_CLEAR(self->ctx);
  Py_CLEAR(self->pending_exc);
  Py_CLEAR(self->waiter);
  Py_CLEAR(self->cancelled_exc);
  return future_clear_refs(&self->base);
}

void task_dealloc(PyTask *self) {
  PyObject_GC_UnTrack(self);
  if (self->ctx_untracked) {
    self->ctx_untracked = 0;
    PyObject_GC_Track(self->ctx);
  }
  if (self->base.weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  Py_CLEAR(self->coro);
  Py_CLEAR(self->ctx);
  Py_CLEAR(self->pending_exc);
  Py_CLEAR(self->waiter);
  Py_CLEAR(self->cancelled_exc);
  Py_CLEAR(self->base.callbacks);
  Py_CLEAR(self->base.cancel_msg);
  rill_task *rt = self->task;
  self->task = NULL;
  self->base.fut = NULL;
  rill_task_release(rt);
  Py_CLEAR(self->base.loop);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The core passed the task's cancel message on, as text, down the chain
 * of what it awaits (the future it waits on, or a task, and what that one
 * waits on ...): the object goes along where the core put this message. */
void cancel_msg_forward(PyTask *t) {
  PyObject *obj = t->base.cancel_msg;
  const char *text = t->task ? rill_task_cancel_message(t->task) : NULL;
  if (!obj || !text) return;
  PyTask *cur = t;
  for (int hops = 0; cur && hops < 10000; hops++) { /* bounded: a cycle stops at a set one */
    PyFuture *w = cur->waiter;
    if (!w || w->cancel_msg || !w->fut) return;
    if (Task_Check(w)) {
      PyTask *wt = (PyTask *)w;
      const char *m = wt->task ? rill_task_cancel_message(wt->task) : NULL;
      if (!m || strcmp(m, text) != 0) return;
      Py_INCREF(obj);
      w->cancel_msg = obj;
      cur = wt;
      continue;
    }
    if (rill_future_state(w->fut) == RILL_CANCELLED) {
      const char *m = rill_future_error_message(w->fut);
      if (m && strcmp(m, text) == 0) {
        Py_INCREF(obj);
        w->cancel_msg = obj;
      }
    }
    return;
  }
}

PyObject *task_cancel(PyTask *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames) {
  PyObject *m = msg_arg(args, nargs, kwnames), *text;
  if (!m || msg_text(m, &text) < 0) return NULL;
  int had_msg = rill_task_cancel_message(self->task) != NULL;
  int rc = rill_task_cancel(self->task, text ? PyUnicode_AsUTF8(text) : NULL); /* copies */
  Py_XDECREF(text);
  if (rc < 0) return rillpy_raise_code(rc);
  /* The core keeps the first message: so does the object. */
  if (rc == 1 && m != Py_None && !had_msg && !self->base.cancel_msg &&
      rill_task_cancel_message(self->task)) {
    Py_INCREF(m);
    self->base.cancel_msg = m;
  }
  cancel_msg_forward(self);
  return PyBool_FromLong(rc);
}

PyObject *task_cancelling(PyTask *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_task_cancelling(self->task));
}

PyObject *task_uncancel(PyTask *self, PyObject *unused) {
  (void)unused;
  return PyLong_FromLong(rill_task_uncancel(self->task));
}

PyObject *task_get_name(PyTask *self, PyObject *unused) {
  (void)unused;
  const char *n = rill_task_name(self->task);
  return PyUnicode_FromString(n ? n : "");
}

PyObject *task_set_name(PyTask *self, PyObject *name) {
  PyObject *s = PyObject_Str(name);
  const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
  if (u) rill_task_set_name(self->task, u);
  Py_XDECREF(s);
  if (!u) return NULL;
  Py_RETURN_NONE;
}

PyObject *task_get_coro(PyTask *self, PyObject *unused) {
  (void)unused;
  PyObject *c = self->coro ? self->coro : Py_None;
  Py_INCREF(c);
  return c;
}

PyObject *task_get_context(PyTask *self, PyObject *unused) {
  (void)unused;
  PyObject *c = self->ctx ? self->ctx : Py_None;
  Py_INCREF(c);
  return c;
}

PyObject *task_no_set(PyTask *self, PyObject *arg) {
  (void)self, (void)arg;
  PyErr_SetString(PyExc_RuntimeError, "Task does not support set_result/set_exception operations");
  return NULL;
}

PyObject *task_repr(PyTask *self) {
  PyObject *st = future_state_str(&self->base, NULL);
  if (!st) return NULL;
  const char *n = rill_task_name(self->task);
  PyObject *r = PyUnicode_FromFormat("<Task %U name='%s' coro=%R>", st, n ? n : "",
                                     self->coro ? self->coro : Py_None);
  Py_DECREF(st);
  return r;
}

/* asyncio.Task's _must_cancel, read by libraries (anyio's cancel scopes skip
 * a task whose cancel is still to be delivered): True while a cancel
 * request waits for the task's next step. */
static PyObject *task_get_must_cancel(PyTask *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(self->task && rill_task_cancel_requested(self->task) == 1);
}

static PyGetSetDef task_getset[] = {
    {"_must_cancel", (getter)task_get_must_cancel, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

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

PyTypeObject TaskType = {
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
    .tp_getset = task_getset,
};
