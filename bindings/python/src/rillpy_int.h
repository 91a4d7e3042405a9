/* rillpy_int.h - what the files of the Python binding share: the object
 * layouts, the module's globals and every function of one file another
 * uses. Never installed; all hidden (the module exports only PyInit__rill). */
#ifndef RILLPY_INT_H
#define RILLPY_INT_H

#include "rillpy.h"

#include <math.h>
#include <string.h>

#include "rill.h"

/* The tag of every value and payload this binding gives the core. */
extern const char rillpy_tag;
#define PYTAG ((const void *)&rillpy_tag)

typedef struct PyLoop PyLoop;
typedef struct PyFuture PyFuture;
typedef struct PyTask PyTask;

extern PyTypeObject LoopType, HandleType, FutureType, TaskType, SleepType, TimeoutType, GroupType;
extern PyTypeObject SyncWaitType; /* sync.c: what acquire/wait/put/get/join return */
extern PyTypeObject IOWaitType;   /* io.c: what a stream's reads, drain, connect ... return */

extern PyObject *CancelledError, *InvalidStateError, *RillError, *QueueShutDown;
extern PyObject *resume_marker; /* sent into a coroutine resumed after sleep */
extern PyObject *sleep0;        /* the shared sleep(0) awaitable */
extern PyObject *helper_iscoroutine, *helper_wrap_awaitable, *helper_default_handler;
extern PyObject *helper_adopt_foreign; /* loopio.c */
extern PyObject *foreign_wake_type;    /* loopio.c */
extern PyObject *asyncio_current_tasks; /* asyncio.tasks._current_tasks (task.c) */
extern PyObject *str_throw, *str_call_exception_handler;

/* ------------------------------------------------------------------ */
/* Threads and the GIL                                                  */

/* Read on every task step: initial-exec TLS, so no __tls_get_addr call
 * (three words of the static TLS glibc keeps for dlopen'ed modules). */
#define RILLPY_TLS __attribute__((tls_model("initial-exec")))
/* Set while this thread's loop polls without the GIL. */
extern _Thread_local PyThreadState *released_ts RILLPY_TLS;
extern _Thread_local PyLoop *running_loop RILLPY_TLS;
void rillpy_forget_running_loop(void); /* pthread_atfork's child handler */
extern _Thread_local PyTask *current_task RILLPY_TLS;

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
static inline void decref_any(void *p) {
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
/* Objects                                                              */

struct PyLoop {
  PyObject_HEAD
  rill_loop *loop;
  PyObject *fatal;  /* KeyboardInterrupt / SystemExit to re-raise from the driver */
  PyObject *task_factory; /* set_task_factory's callable, or NULL */
  PyTask *tasks;    /* pending Python tasks (borrowed: each owns itself) */
  int stopping, in_dealloc;
  int borrowed;     /* attached to a host's rill_loop (_attach_loop): never closed or freed here */
  PyObject *weakreflist;
};


enum { FK_PLAIN = 0, FK_GATHER = 1, FK_GATHER_RE = 2 };

struct PyFuture {
  PyObject_HEAD
  rill_future *fut;   /* owned (for a Task: borrowed from the task) */
  PyLoop *loop;
  PyObject *callbacks; /* list of (fn, context) or NULL */
  PyObject *core_obj;  /* borrowed: the value/payload we gave the core */
  /* The msg object of cancel(msg) (owned; NULL: none, or cancelled by the
   * core or from C): the core keeps the message as text, asyncio gives
   * the object itself back in CancelledError's args (cancel(5) -> (5,)).
   * Set only where the core took this very message (the first one). */
  PyObject *cancel_msg;
  PyObject *weakreflist;
  unsigned char kind, cb_registered;
};

struct PyTask {
  PyFuture base;
  rill_task *task;
  PyObject *coro, *ctx, *pending_exc;
  PyFuture *waiter; /* the rill.Future the coroutine awaits (asyncio's _fut_waiter), while it waits */
  /* The CancelledError the coroutine ended with (asyncio's _cancelled_exc):
   * given back once, as asyncio does, so its traceback (frames, their
   * locals, often this task) does not outlive its first reader. */
  PyObject *cancelled_exc;
  PyTask *prev, *next;
  unsigned char in_list, send_marker, ctx_untracked, stepped;
};

typedef struct {
  PyObject_HEAD
  rill_handle *h;
  PyObject *cb, *args, *ctx;
  PyLoop *loop;
  int cancelled;
  PyObject *source_tb; /* asyncio's _source_traceback: in debug mode, else NULL */
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

static inline PyLoop *get_running(void) {
  if (!running_loop) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
  return running_loop;
}

/* ---- functions (one file each, see the file names) ---- */
PyObject *exc_class_for (int code);
PyObject *exc_for_code (int code, const char *message);
void raise_exc (PyObject *exc);
extern PyObject *rillpy_raise_code (int code);
PyObject *raise_last (void);
PyObject *fetch_exc (void);
PyObject *make_cancelled (const char *msg);
PyObject *make_cancelled_obj (PyObject *msg_obj, const char *msg);
PyObject *future_exc (PyFuture *self);
void cancel_msg_forward (PyTask *t);
PyLoop *get_running (void);
void call_handler (PyLoop *loop, PyObject *context);
void core_exc_handler (rill_loop *rl, const char *message, rill_future *fut, void *arg);
void report_callback_error (PyLoop *loop, PyObject *what, PyObject *handle);
void run_callback (PyLoop *loop, PyObject *cb, PyObject *args, PyObject *ctx, PyObject *handle);
int set_value (rill_future *f, PyObject *v, PyObject **core_obj);
void rillpy_reap_pool_tstates(void); /* io.c: deletes exited pool threads' states (GIL held) */
PyObject *outcome_value (rill_future *f);
PyObject *outcome_exc (rill_future *f);
PyObject *future_value (PyFuture *self);
PyObject *future_result_or_raise (PyFuture *self);
PyFuture *future_wrap (PyLoop *loop, rill_future *f, int kind);
PyObject *future_new (PyTypeObject *type, PyObject *args, PyObject *kw);
int future_traverse (PyFuture *self, visitproc visit, void *arg);
void future_finalize (PyFuture *self);
int future_clear_refs (PyFuture *self);
void future_dealloc (PyFuture *self);
void future_done_cb (rill_future *f, void *arg);
PyObject *future_add_done_callback (PyFuture *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *future_remove_done_callback (PyFuture *self, PyObject *fn);
PyObject *future_result (PyFuture *self, PyObject *unused);
PyObject *future_exception (PyFuture *self, PyObject *unused);
PyObject *future_done (PyFuture *self, PyObject *unused);
PyObject *future_cancelled (PyFuture *self, PyObject *unused);
PyObject *msg_arg (PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
int msg_text (PyObject *msg, PyObject **text);
PyObject *future_cancel (PyFuture *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *future_set_result (PyFuture *self, PyObject *value);
int fail_with (rill_future *f, PyObject *exc, PyObject **core_obj);
PyObject *future_set_exception (PyFuture *self, PyObject *exc);
PyObject *future_get_loop (PyFuture *self, PyObject *unused);
PyObject *future_state_str (PyFuture *self, void *closure);
PyObject *future_get_blocking (PyFuture *self, void *closure);
PySendResult future_am_send (PyFuture *self, PyObject *arg, PyObject **result);
PyObject *self_iter (PyObject *self);
rill_future *iowait_core_future (PyObject *y, PyFuture **pf);
PyObject *future_iternext (PyFuture *self);
PyObject *future_repr (PyFuture *self);
PyObject *future_address (PyFuture *self, PyObject *unused);
int future_set_blocking (PyFuture *self, PyObject *v, void *closure);
PySendResult sleep_am_send (PySleep *self, PyObject *arg, PyObject **result);
PyObject *sleep_iternext (PySleep *self);
void sleep_dealloc (PySleep *self);
PyObject *mod_sleep (PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
void task_unlink (PyTask *t);
void task_free_arg (void *arg);
PySendResult coro_throw (PyObject *coro, PyObject *exc, PyObject **result);
void task_set_pending_exc (PyTask *t, PyObject *exc);
void task_handle_yield (PyTask *t, rill_task *rt, PyObject *y);
void task_handle_error (PyTask *t, rill_task *rt);
void task_step (rill_task *rt, void *arg);
/* Registers the tasks' describer for debug mode's slow-step report. */
int rillpy_task_init (void);
int is_coroutine (PyObject *o);
PyObject *task_create (PyLoop *loop, PyObject *coro, PyObject *name, PyObject *ctx);
PyObject *task_new (PyTypeObject *type, PyObject *args, PyObject *kw);
int task_traverse (PyTask *self, visitproc visit, void *arg);
int task_clear (PyTask *self);
void task_dealloc (PyTask *self);
PyObject *task_cancel (PyTask *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *task_cancelling (PyTask *self, PyObject *unused);
PyObject *task_uncancel (PyTask *self, PyObject *unused);
PyObject *task_get_name (PyTask *self, PyObject *unused);
PyObject *task_set_name (PyTask *self, PyObject *name);
PyObject *task_get_coro (PyTask *self, PyObject *unused);
PyObject *task_get_context (PyTask *self, PyObject *unused);
PyObject *task_no_set (PyTask *self, PyObject *arg);
PyObject *task_repr (PyTask *self);
void handle_run (void *arg);
void handle_free (void *arg);
void handle_dealloc (PyHandle *h);
PyObject *handle_cancel (PyHandle *h, PyObject *unused);
PyObject *handle_cancelled (PyHandle *h, PyObject *unused);
PyObject *handle_when (PyHandle *h, PyObject *unused);
PyObject *handle_repr (PyHandle *h);
PyObject *tuple_from (PyObject *const *items, Py_ssize_t n);
PyObject *loop_schedule (PyLoop *self, int how, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
void loop_poll_hook (rill_loop *rl, int phase, void *arg);
PyObject *loop_new (PyTypeObject *type, PyObject *args, PyObject *kw);
void loop_dealloc (PyLoop *self);
int loop_traverse (PyLoop *self, visitproc visit, void *arg);
int loop_clear (PyLoop *self);
PyObject *ensure_future_on (PyLoop *loop, PyObject *aw);
int loop_drive (PyLoop *self, PyFuture *fu);
PyObject *loop_run_until_complete (PyLoop *self, PyObject *aw);
PyObject *loop_run_forever (PyLoop *self, PyObject *unused);
PyObject *loop_shutdown (PyLoop *self, PyObject *unused);
PyObject *loop_stop (PyLoop *self, PyObject *unused);
PyObject *loop_close (PyLoop *self, PyObject *unused);
PyObject *loop_is_closed (PyLoop *self, PyObject *unused);
PyObject *loop_is_running (PyLoop *self, PyObject *unused);
PyObject *loop_time (PyLoop *self, PyObject *unused);
PyObject *loop_call_soon (PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k);
PyObject *loop_call_later (PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k);
PyObject *loop_call_at (PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k);
PyObject *loop_call_soon_threadsafe (PyLoop *self, PyObject *const *a, Py_ssize_t n, PyObject *k);
PyObject *loop_create_future (PyLoop *self, PyObject *unused);
PyObject *loop_create_task (PyLoop *self, PyObject *args, PyObject *kw);
PyObject *loop_tasks (PyLoop *self, PyObject *unused);
PyObject *loop_set_debug (PyLoop *self, PyObject *flag);
PyObject *loop_get_debug (PyLoop *self, PyObject *unused);
PyObject *loop_set_slow (PyLoop *self, PyObject *v);
PyObject *loop_dump_tasks (PyLoop *self, PyObject *unused);
PyObject *loop_report (PyLoop *self, PyObject *msg);
double delay_arg (PyObject *o);
PyObject *timeout_new (PyTypeObject *type, PyObject *args, PyObject *kw);
void timeout_dealloc (PyTimeoutScope *self);
PyObject *timeout_exit (PyTimeoutScope *self, PyObject *rc);
PyObject *timeout_expired (PyTimeoutScope *self, PyObject *unused);
PyObject *timeout_reschedule (PyTimeoutScope *self, PyObject *delay);
PyObject *group_new (PyTypeObject *type, PyObject *args, PyObject *kw);
void group_dealloc (PyGroup *self);
PyObject *group_add (PyGroup *self, PyObject *task);
PyObject *group_exit (PyGroup *self, PyObject *rc);
PyObject *group_result (PyGroup *self, PyObject *args);
PyObject *mod_get_running_loop (PyObject *mod, PyObject *unused);
PyObject *mod_get_running_loop_or_none (PyObject *mod, PyObject *unused);
PyObject *mod_current_task (PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_gather (PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *mod_ensure_future (PyObject *mod, PyObject *aw);
PyObject *mod_shield (PyObject *mod, PyObject *aw);
PyObject *mod_wait_for (PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_wait (PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_set_helpers (PyObject *mod, PyObject *args);
PyObject *mod_fd_add (PyObject *mod, PyObject *args);
PyObject *mod_fd_remove (PyObject *mod, PyObject *args);
PyObject *mod_fd_wait (PyObject *mod, PyObject *args);
PyObject *mod_signal_add (PyObject *mod, PyObject *args);
PyObject *mod_signal_stop (PyObject *mod, PyObject *cap);
PyObject *mod_set_foreign_helper (PyObject *mod, PyObject *fn);
PyObject *mod_set_foreign_wake_type (PyObject *mod, PyObject *cls);
PyObject *mod_future_info (PyObject *mod, PyObject *f);
PyObject *mod_attach_loop (PyObject *mod, PyObject *args);
PyObject *mod_wrap_future (PyObject *mod, PyObject *args);
int add_type (PyObject *m, PyTypeObject *t, const char *name);
extern int rillpy_init (PyObject *m);

/* errors.c: resolves the table's Python column; adds ERROR_CLASSES. */
int rillpy_errors_init(PyObject *module);
PyObject *mod_exception_for_code(PyObject *mod, PyObject *args);

/* sync.c: the sync primitives' types (_Event ... _Queue) and rill._wrap_queue. */
int rillpy_sync_init(PyObject *module);
PyObject *mod_wrap_queue(PyObject *mod, PyObject *args);

/* io.c: _Stream, _Listener, _Process, _IOWait; _tcp_connect, _listen,
 * _run_in_thread, _spawn ... (rill/streams.py gives them asyncio's faces). */
int rillpy_io_init(PyObject *module);

/* transport.c: _socket_transport_base (asyncio's socket transport on the
 * core's streams; rill/_transports.py subclasses it). */
int rillpy_transport_init(PyObject *module);

#endif
