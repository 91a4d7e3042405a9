/*
 * rill.h - the public C API of rill, an asyncio-style event loop on libev.
 *
 * Plain C99. Every type is opaque: no struct layout is part of the ABI, so
 * a program built against rill 1.0 keeps working with every rill 1.x.
 *
 * Conventions (they hold for every function below unless its comment says
 * otherwise):
 *  - Status: functions returning int give 0 (RILL_OK) or a negative RILL_E*
 *    code. Functions returning a pointer give NULL on failure. Either way
 *    the failing call records the code and a message, readable with
 *    rill_last_error() / rill_last_error_message() on the same thread.
 *  - NULL handles are rejected with RILL_EINVAL, never a crash. Use after
 *    rill_loop_close() gives RILL_ECLOSED. Allocation failure gives
 *    RILL_ENOMEM and leaves state as it was.
 *  - Ownership: a function documented "returns a reference" hands the
 *    caller one reference, given back with the matching _release / _free.
 *    Releasing or freeing NULL is a no-op. "Borrowed" results stay valid
 *    while the object they came from is alive.
 *  - Callbacks are a function pointer plus a void *arg and an optional
 *    rill_free_fn for arg, called exactly once when the callback can no
 *    longer run (after it ran, or when it was cancelled or dropped).
 *  - Threads: a loop and its objects are used from one thread. The only
 *    exception is rill_call_soon_threadsafe().
 *  - Borrowed views of a future (rill_future_bytes, _pointer, _error_message,
 *    _error_payload) stay valid while the caller holds a reference to the
 *    future or to an object holding one (a gather, a group, an awaiting
 *    task), and inside a callback or exception handler given the future
 *    until it returns. Reading a failure marks it retrieved but never drops
 *    a reference anyone can see: the core holds its own around every
 *    handler call, so a binding need not defer its releases.
 *
 * Naming (from 1.1; 1.0 names stay as aliases):
 *  - rill_<noun>_<verb>, the noun being the first argument's type.
 *  - Predicates rill_<noun>_is_<adjective> (1, 0 or a code); getters
 *    rill_<noun>_<property> without "get"; setters rill_<noun>_set_<property>.
 *  - "error" is spelled out; the current object is rill_<noun>_current.
 *  - Constants carry their enum's name: RILL_STATE_*, RILL_KIND_*,
 *    RILL_WAIT_*, RILL_POLL_*, RILL_TASK_* (flags); codes are RILL_E*.
 *  - "await": a C coroutine suspends until a future is done; "resume_*": a
 *    step task arranges its next step; "wait": asyncio.wait (rill_wait)
 *    only; "run_until": the loop runs until a future is done; "sleep": a
 *    coroutine sleeps (rill_sleep) or a future is done later
 *    (rill_sleep_future).
 */
#ifndef RILL_H
#define RILL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(RILL_BUILDING)
#    define RILL_API __declspec(dllexport)
#  else
#    define RILL_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define RILL_API __attribute__((visibility("default")))
#else
#  define RILL_API
#endif

/* ------------------------------------------------------------------ */
/* Version                                                              */
/* ------------------------------------------------------------------ */

#define RILL_VERSION_MAJOR 1
#define RILL_VERSION_MINOR 1
#define RILL_VERSION_PATCH 0
#define RILL_VERSION_HEX \
  ((RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) | RILL_VERSION_PATCH)
#define RILL_VERSION_STRING "1.1.0"

/* The library's RILL_VERSION_HEX, to compare with the header's. */
RILL_API unsigned rill_version(void);
/* The library's version as "MAJOR.MINOR.PATCH"; static storage. */
RILL_API const char *rill_version_string(void);

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* The one table of status codes. It generates the enum below,
 * rill_strerror() and rill_err_name(), and each binding's exceptions.
 * Codes may be added in later 1.x releases; callers must treat an unknown
 * negative code as a failure. Library codes are -1..-99; applications use
 * -1000 and below for their own failures (rill_future_fail). */
#define RILL_ERRNO_MAP(XX)                                                   \
  XX(EINVAL, -1, "invalid argument")                                         \
  XX(ESTATE, -2, "operation not valid in the current state")                 \
  XX(ECLOSED, -3, "the loop is closed")                                      \
  XX(ENOMEM, -4, "out of memory")                                            \
  XX(ECANCELLED, -5, "operation was cancelled")                              \
  XX(ETIMEDOUT, -6, "operation timed out")                                   \
  XX(EBUSY, -7, "a loop is already running in this thread")                  \
  XX(ETYPE, -8, "the value is of another kind")                              \
  XX(EEXCEPTION, -9, "a task raised a language exception (see the payload)") \
  XX(EINTR, -10, "interrupted by a signal")                                  \
  XX(ESYS, -11, "a system call failed")                                      \
  XX(EGROUP, -12, "one or more tasks of a group failed")                     \
  /* 1.1, I/O: -13.. (-20 unused: no such host is RILL_ENOHOST, -40) */     \
  XX(ECONNREFUSED, -13, "connection refused")                                \
  XX(ECONNRESET, -14, "connection reset by peer")                            \
  XX(EPIPE, -15, "broken pipe (the peer closed the connection)")             \
  XX(EADDRINUSE, -16, "address already in use")                              \
  XX(EADDRNOTAVAIL, -17, "address not available")                            \
  XX(EHOSTUNREACH, -18, "host unreachable")                                  \
  XX(ENETUNREACH, -19, "network unreachable")                                \
  XX(EMFILE, -21, "too many open files")                                     \
  XX(ECONNABORTED, -22, "connection aborted")                                \
  XX(ENOTCONN, -23, "the stream is not connected (closed or closing)")       \
  XX(EBADF, -24, "bad file descriptor")                                      \
  XX(EINCOMPLETE, -25, "end of stream before the expected bytes")            \
  XX(ELIMIT, -26, "separator not found within the limit")                   \
  XX(EACCES, -27, "permission denied")                                       \
  XX(ENOENT, -28, "no such file or directory")                                \
  /* 1.1: -40.. (DNS, signals, processes) */                                 \
  XX(ENOHOST, -40, "no such host")                                          \
  XX(EDNS, -41, "name resolution failed")                                   \
  XX(ESIGBUSY, -42, "the signal is already watched by another loop")        \
  XX(ESPAWN, -43, "the process could not be started")                     \
  /* 1.1: sync primitives -50.. */                                          \
  XX(EBROKEN, -50, "the barrier is broken (aborted or reset)")             \
  XX(EEMPTY, -51, "the queue is empty")                                     \
  XX(EFULL, -52, "the queue is full")                                       \
  XX(ESHUTDOWN, -53, "the queue is shut down")                              \
  XX(ENOTLOCKED, -54, "the lock is not acquired")                          \
  XX(ETOOMANY, -55, "released or marked done more times than acquired or put")

enum rill_status {
  RILL_OK = 0,
#define RILL__ERR_ENUM(name, code, text) RILL_##name = (code),
  RILL_ERRNO_MAP(RILL__ERR_ENUM)
#undef RILL__ERR_ENUM
  RILL__ERR_LAST = -99
};

/* A description of code ("success" for 0, "unknown error" otherwise for
 * unknown codes); static storage, never NULL. */
RILL_API const char *rill_strerror(int code);
/* The symbolic name of code, e.g. "RILL_ETIMEDOUT"; NULL if unknown. */
RILL_API const char *rill_err_name(int code);
/* The code of this thread's most recent failing rill call (0 if none). */
RILL_API int rill_last_error(void);
/* Its message, more precise than rill_strerror(); valid until the next
 * failing call on this thread; never NULL. */
RILL_API const char *rill_last_error_message(void);

/* ------------------------------------------------------------------ */
/* Types                                                                */
/* ------------------------------------------------------------------ */

typedef struct rill_loop rill_loop;
typedef struct rill_handle rill_handle;
typedef struct rill_future rill_future;
typedef struct rill_task rill_task;
typedef struct rill_timeout rill_timeout;
typedef struct rill_group rill_group;

typedef void (*rill_fn)(void *arg);
typedef int (*rill_coro_fn)(void *arg); /* RILL_OK or a negative code */
typedef void (*rill_step_fn)(rill_task *task, void *arg);
typedef void (*rill_done_fn)(rill_future *future, void *arg);
typedef void (*rill_free_fn)(void *arg);
/* message: what happened; future: the failed future concerned, or NULL.
 * Both are borrowed for the duration of the call. */
typedef void (*rill_exception_fn)(rill_loop *loop, const char *message,
                                  rill_future *future, void *arg);
/* phase: RILL_POLL_BEFORE or RILL_POLL_AFTER (rill_loop_set_poll_hook). */
typedef void (*rill_poll_fn)(rill_loop *loop, int phase, void *arg);

/* Future states (rill_future_state). */
enum rill_state { RILL_PENDING = 0, RILL_DONE = 1, RILL_FAILED = 2, RILL_CANCELLED = 3 };
/* Value kinds of a DONE future (rill_future_kind). */
enum rill_kind {
  RILL_NONE = 0, RILL_BOOL = 1, RILL_INT = 2, RILL_DOUBLE = 3, RILL_BYTES = 4, RILL_POINTER = 5
};
/* rill_gather flags. */
#define RILL_GATHER_RETURN_ERRORS 1u
/* rill_wait modes. */
enum rill_wait_mode { RILL_WAIT_FIRST_COMPLETED = 0, RILL_WAIT_FIRST_ERROR = 1, RILL_WAIT_ALL = 2 };
/* Poll hook phases. */
enum rill_poll_phase { RILL_POLL_BEFORE = 0, RILL_POLL_AFTER = 1 };
/* A timeout meaning "no deadline" (a positive infinity). */
#define RILL_FOREVER (1e300 * 1e300)

/* ------------------------------------------------------------------ */
/* The loop                                                             */
/* ------------------------------------------------------------------ */

/* A new loop (its own libev loop). Returns a reference freed with
 * rill_loop_free(); NULL on ENOMEM/ESYS. Debug mode is on when the
 * environment has RILL_DEBUG=1. */
RILL_API rill_loop *rill_loop_new(void);
/* Closes the loop if it is open (see rill_loop_close) and drops the
 * caller's reference. Futures and tasks still referenced stay readable;
 * the loop pointer itself must not be used again. NULL is a no-op. */
RILL_API void rill_loop_free(rill_loop *loop);
/* Closes the loop: pending tasks are destroyed (each reported to the
 * exception handler as "task destroyed while pending", its step never runs
 * again, its free_arg is called), pending futures are cancelled without
 * running their callbacks, scheduled handles are dropped, unretrieved task
 * failures are reported. Afterwards every call on the loop or its objects
 * that needs the loop gives RILL_ECLOSED. 0, RILL_EBUSY while running,
 * RILL_ECLOSED if already closed, RILL_EINVAL. */
RILL_API int rill_loop_close(rill_loop *loop);
/* 1 if closed, 0 if open, RILL_EINVAL. */
RILL_API int rill_loop_is_closed(const rill_loop *loop);

/* Runs until no work is left (no ready callback, timer or watcher) or
 * rill_loop_stop(). RILL_OK, RILL_EBUSY (a loop already runs on this
 * thread), RILL_ECLOSED, RILL_EINVAL. */
RILL_API int rill_loop_run(rill_loop *loop);
/* Runs until future is done (asyncio's run_until_complete) and returns its
 * outcome as rill_await() does; RILL_ESTATE if the loop stopped first.
 * While future is pending the loop waits for other threads too
 * (rill_call_soon_threadsafe), even when it has no other work. */
RILL_API int rill_loop_run_until(rill_loop *loop, rill_future *future);
/* One iteration, for hosts that pump the loop from their own frame loop:
 * polls (waiting up to max_wait_s when nothing is ready; 0 = never block),
 * moves due timers and I/O to the ready batch, runs that batch (then the
 * coalesced writes it made, rill_stream_set_coalesce_writes). Returns
 * the number of callbacks and task steps run (>= 0), or a code. */
RILL_API int rill_loop_run_once(rill_loop *loop, double max_wait_s);
/* asyncio.run's ending, for hosts and bindings that run the loop
 * themselves: cancels every pending task, runs the loop until all of them
 * are done, and reports each failure other than a cancel to the exception
 * handler ("unhandled failure ... during shutdown"). The loop stays open.
 * 0, RILL_EBUSY while running, RILL_ECLOSED, RILL_EINVAL. */
RILL_API int rill_loop_shutdown(rill_loop *loop);
/* (1.1) rill_loop_shutdown's first half, for a caller that runs the loop
 * itself (a binding that releases its interpreter lock while the loop
 * waits): cancels every pending task and returns a future (a reference)
 * that is DONE once all of them are done and each failure other than a
 * cancel was reported. Run the loop until it is done, then call
 * rill_loop_shutdown, which only joins the thread pool then. A future
 * already DONE if no task is pending; NULL on bad input, RILL_EBUSY
 * while running (call it between iterations), RILL_ECLOSED, RILL_ENOMEM. */
RILL_API rill_future *rill_loop_shutdown_tasks(rill_loop *loop);
/* Makes a running loop return after the current iteration. Safe from
 * callbacks and tasks of that loop; a no-op on NULL or an idle loop. */
RILL_API void rill_loop_stop(rill_loop *loop);
/* The loop's monotonic time in seconds (CLOCK_MONOTONIC), read once per
 * iteration while the loop runs, fresh when it is idle. A timer fires in
 * the first iteration whose time is at or past its deadline. NaN on NULL. */
RILL_API double rill_loop_time(rill_loop *loop);
/* The loop running on this thread, or NULL. Borrowed. In a child forked
 * while a loop ran, NULL: the child may run a loop of its own. */
RILL_API rill_loop *rill_loop_current(void);

/* The handler that receives failures nobody else can: callbacks reported
 * with rill_loop_report, unretrieved task failures, tasks destroyed while
 * pending, slow callbacks in debug mode. NULL restores the default handler
 * (one line on stderr). The previous handler's free_arg is called. */
RILL_API int rill_loop_set_exception_handler(rill_loop *loop, rill_exception_fn fn,
                                             void *arg, rill_free_fn free_arg);
/* Passes message (and the future, may be NULL) to the exception handler;
 * for bindings whose callback raised. 0, RILL_EINVAL, RILL_ECLOSED. */
RILL_API int rill_loop_report(rill_loop *loop, const char *message, rill_future *future);

/* fn(loop, RILL_POLL_BEFORE, arg) runs right before the loop may block in
 * the kernel waiting for events, fn(loop, RILL_POLL_AFTER, arg) right after;
 * never around a poll that cannot block. A binding releases its
 * interpreter lock there (Python's GIL, Ruby's GVL). The hook must not call
 * into the loop. NULL removes it; the previous free_arg runs. */
RILL_API int rill_loop_set_poll_hook(rill_loop *loop, rill_poll_fn fn, void *arg,
                                     rill_free_fn free_arg);

/* Debug mode: every callback or task step that runs longer than the slow
 * duration (default 0.1 s) is reported with the task's name and the time
 * it took. A task step's report reads "Executing <Task NAME (entry:
 * ENTRY)> took N.NNN seconds" (from 1.1), ENTRY being the task's code: the
 * function given to rill_spawn, or the step of rill_task_new, by its symbol
 * name when dladdr finds it (a program's own functions need -rdynamic and
 * default visibility); without a name the report has no "(entry: ...)"
 * part, unless the binding describes its tasks (rill_step_set_describer:
 * Python, Lua, Ruby and rill.hpp name the coroutine and the file:line it
 * is suspended at). enabled: 0 or 1. */
RILL_API int rill_loop_set_debug(rill_loop *loop, int enabled);
/* 1 if debug mode is on, 0 if off, or a code. */
RILL_API int rill_loop_get_debug(const rill_loop *loop);
/* The threshold of debug mode's slow-callback report, in seconds (> 0). */
RILL_API int rill_loop_set_slow_duration(rill_loop *loop, double seconds);
/* A text listing every pending task: name, state, what it awaits. Returns
 * a string the caller frees with rill_free(); NULL on bad input/ENOMEM. */
RILL_API char *rill_loop_dump_tasks(rill_loop *loop);
/* Frees memory that rill allocated for the caller (rill_loop_dump_tasks). */
RILL_API void rill_free(void *p);
/* Number of pending tasks of the loop (asyncio's all_tasks), or a code. */
RILL_API int rill_loop_task_count(rill_loop *loop);
/* Writes up to cap pending tasks (borrowed) into out, oldest first;
 * returns how many it wrote, or a code. */
RILL_API int rill_loop_tasks(rill_loop *loop, rill_task **out, size_t cap);
/* Stack size in bytes for C coroutines started after this call (rounded
 * up to the page size, at least 16 KiB; default 256 KiB, of which only the
 * pages a coroutine touches take memory). */
RILL_API int rill_loop_set_stack_size(rill_loop *loop, size_t bytes);

/* ------------------------------------------------------------------ */
/* Callbacks                                                            */
/* ------------------------------------------------------------------ */

/* Schedules fn(arg) for the next iteration; FIFO among call_soon.
 * Returns a reference (rill_handle_release); NULL on bad input/ENOMEM/
 * ECLOSED, in which case free_arg(arg) has NOT been called. */
RILL_API rill_handle *rill_call_soon(rill_loop *loop, rill_fn fn, void *arg,
                                     rill_free_fn free_arg);
/* Schedules fn(arg) once delay_s (>= 0, clamped) has passed; never early,
 * also by the caller's own clock: the deadline is the monotonic clock at
 * the call plus delay_s. Equal deadlines run in the order they were set.
 * Returns a reference, as rill_call_soon. */
RILL_API rill_handle *rill_call_later(rill_loop *loop, double delay_s, rill_fn fn,
                                      void *arg, rill_free_fn free_arg);
/* As rill_call_later with an absolute deadline on rill_loop_time's clock. */
RILL_API rill_handle *rill_call_at(rill_loop *loop, double when, rill_fn fn, void *arg,
                                   rill_free_fn free_arg);
/* The one call safe from any thread: queues fn(arg) to run on the loop's
 * thread in a coming iteration and wakes the loop. FIFO per calling
 * thread, and with rill_call_soon: a callback posted before a
 * rill_call_soon call (by any thread) runs before that one. 0, RILL_EINVAL, RILL_ECLOSED, RILL_ENOMEM (free_arg not called
 * on failure). The loop must not be freed concurrently. */
RILL_API int rill_call_soon_threadsafe(rill_loop *loop, rill_fn fn, void *arg,
                                       rill_free_fn free_arg);
/* Stops a scheduled callback from running (its free_arg runs now). A no-op
 * on a handle that already ran, was cancelled, or NULL. */
RILL_API void rill_handle_cancel(rill_handle *handle);
/* 1 if cancelled, 0 if not, RILL_EINVAL. */
RILL_API int rill_handle_cancelled(const rill_handle *handle);
/* Deadline of a timer handle on the loop clock (NaN for call_soon). */
RILL_API double rill_handle_when(const rill_handle *handle);
/* Drops the caller's reference; does not cancel. */
RILL_API void rill_handle_release(rill_handle *handle);

/* ------------------------------------------------------------------ */
/* Futures                                                              */
/* ------------------------------------------------------------------ */

/* A pending future on loop. Returns a reference; NULL on error. */
RILL_API rill_future *rill_future_new(rill_loop *loop);
/* Adds a reference; returns future (NULL stays NULL). */
RILL_API rill_future *rill_future_retain(rill_future *future);
/* Drops a reference. Dropping the last one of a failed task whose failure
 * nobody read reports it to the exception handler first (a fixed point). */
RILL_API void rill_future_release(rill_future *future);
/* The loop the future belongs to (borrowed), NULL on NULL. */
RILL_API rill_loop *rill_future_loop(const rill_future *future);
/* RILL_PENDING, RILL_DONE, RILL_FAILED, RILL_CANCELLED, or RILL_EINVAL. */
RILL_API int rill_future_state(const rill_future *future);
/* 1 if not pending, 0 if pending, RILL_EINVAL. */
RILL_API int rill_future_done(const rill_future *future);

/* Requests cancellation. A plain future is CANCELLED at once; a task, a
 * gather or a group join forward the request and end CANCELLED when their
 * work has stopped. 1 if a cancel was requested now (repeat calls on a
 * task not yet done too), 0 if already done, < 0 on bad input. */
RILL_API int rill_future_cancel(rill_future *future);
/* The same with a message, readable with rill_future_error_message() and
 * carried to whoever awaits (asyncio's cancel(msg)); NULL = no message. */
RILL_API int rill_future_cancel_msg(rill_future *future, const char *message);

/* Registers cb(future, arg) to run once the future is done. It never runs
 * inline: completion (or registering on a done future) schedules it with
 * call_soon, in registration order. free_arg(arg) runs after cb ran or
 * when it can no longer run. 0, RILL_EINVAL, RILL_ENOMEM, RILL_ECLOSED. */
RILL_API int rill_future_on_done(rill_future *future, rill_done_fn cb, void *arg,
                                 rill_free_fn free_arg);
/* Removes every registration of (cb, arg) not yet scheduled; returns how
 * many were removed (their free_arg runs), or a code. */
RILL_API int rill_future_remove_done(rill_future *future, rill_done_fn cb, void *arg);

/* Completing. Each returns 0, RILL_ESTATE if the future is not pending
 * (or it is a task's future and the caller is not that task's own step),
 * RILL_EINVAL, RILL_ENOMEM. set_bytes copies the bytes. */
RILL_API int rill_future_set_none(rill_future *future);
RILL_API int rill_future_set_bool(rill_future *future, int value);
RILL_API int rill_future_set_int(rill_future *future, int64_t value);
RILL_API int rill_future_set_double(rill_future *future, double value);
RILL_API int rill_future_set_bytes(rill_future *future, const void *data, size_t len);
/* A value only the owner of tag understands (tag: the address of a
 * binding-owned constant). free_p(p) runs when the future is freed; if the
 * call fails, free_p is not called and p stays the caller's. */
RILL_API int rill_future_set_pointer(rill_future *future, void *p, rill_free_fn free_p,
                                     const void *tag);
/* Fails the future with code (< 0; RILL_ECANCELLED makes it CANCELLED),
 * a message (copied; may be NULL) and an optional payload that only tag's
 * owner unwraps (free_payload(payload) runs when the future is freed, or
 * at once if the call fails). */
RILL_API int rill_future_fail(rill_future *future, int code, const char *message,
                              void *payload, rill_free_fn free_payload, const void *tag);

/* Reading. Value getters give 0 and *out, RILL_ESTATE if not DONE,
 * RILL_ETYPE if the value is of another kind, RILL_EINVAL. */
RILL_API int rill_future_kind(const rill_future *future); /* or RILL_ESTATE */
RILL_API int rill_future_bool(const rill_future *future, int *out);
RILL_API int rill_future_int(const rill_future *future, int64_t *out);
RILL_API int rill_future_double(const rill_future *future, double *out);
/* Borrowed bytes (valid while the future is) and their length; NULL with
 * *len = 0 if not DONE with bytes. */
RILL_API const void *rill_future_bytes(const rill_future *future, size_t *len);
/* The pointer if DONE with a pointer of this tag, else NULL. */
RILL_API void *rill_future_pointer(const rill_future *future, const void *tag);
/* The outcome as rill_await reports it: 0 if DONE, the failure code if
 * FAILED, RILL_ECANCELLED if CANCELLED, RILL_ESTATE if pending. Reading
 * it marks the failure as retrieved (no unretrieved-failure report). */
RILL_API int rill_future_error(rill_future *future);
/* The failure or cancel message (borrowed; "" if none), NULL if DONE or
 * pending. Marks the failure retrieved. */
RILL_API const char *rill_future_error_message(rill_future *future);
/* The failure payload if it carries this tag, else NULL. Marks the failure
 * retrieved. A future that failed because another did (gather, wait_for,
 * shield) reports that future's code, message and payload. */
RILL_API void *rill_future_error_payload(rill_future *future, const void *tag);

/* ------------------------------------------------------------------ */
/* Tasks: futures driven by a step function                             */
/* ------------------------------------------------------------------ */

/* A task on loop whose first step runs in the next iteration (never
 * inside its creator). step(task, arg) runs each time the task is resumed
 * and must, before it returns, either complete the task's future (a setter
 * or rill_future_fail on rill_task_future) or arrange to be resumed
 * (rill_task_wait / rill_task_yield / rill_task_sleep); a step that does
 * neither fails the task with RILL_ESTATE. free_arg(arg) runs when the task
 * is done (or destroyed by loop close). The loop holds its own reference
 * until the task is done, so releasing yours neither cancels nor frees it.
 * Returns a reference (rill_task_release); NULL on error. */
RILL_API rill_task *rill_task_new(rill_loop *loop, rill_step_fn step, void *arg,
                                  rill_free_fn free_arg);
/* The task's future (borrowed, valid while the task is). */
RILL_API rill_future *rill_task_future(rill_task *task);
/* The task whose future this is, or NULL if it is no task's (borrowed). */
RILL_API rill_task *rill_task_from_future(rill_future *future);
RILL_API rill_task *rill_task_retain(rill_task *task);
RILL_API void rill_task_release(rill_task *task);
/* The arg given to rill_task_new (NULL for C coroutines). */
RILL_API void *rill_task_arg(rill_task *task);

/* From the task's own step: resume the task once awaited is done (the next
 * iteration after it completes; at once-next-iteration if it is done
 * already). A task waits on at most one future. 0, RILL_ESTATE (not inside
 * this task's step, or already arranged), RILL_EINVAL (other loop). */
RILL_API int rill_task_wait(rill_task *task, rill_future *awaited);
/* From the task's own step: resume in the next iteration (sleep(0)). */
RILL_API int rill_task_yield(rill_task *task);
/* From the task's own step: resume once seconds have passed (<= 0: as
 * rill_task_yield). 0, RILL_EINVAL (NaN), RILL_ESTATE (as rill_task_wait),
 * RILL_ENOMEM (a task's first sleep allocates its timer). */
RILL_API int rill_task_sleep(rill_task *task, double seconds);

/* Requests cancellation (asyncio's Task.cancel(msg)): the future the task
 * awaits is cancelled at once; the task sees the cancel at its await point
 * (its next step has rill_task_cancel_requested() == 1, or the awaited
 * future reports RILL_ECANCELLED). A task cancelled before its first step
 * is told so in that step (C coroutines then never run their body). The
 * first message wins. 1 if not done (each call counts, see
 * rill_task_cancelling), 0 if done, < 0 on bad input. */
RILL_API int rill_task_cancel(rill_task *task, const char *message);
/* During a step: 1 if this step must deliver a cancellation to the task's
 * code (which may catch it), else 0. Outside a step: 1 if a cancel is
 * pending delivery. < 0 on bad input. */
RILL_API int rill_task_cancel_requested(rill_task *task);
/* The first cancel message (borrowed), NULL if none. */
RILL_API const char *rill_task_cancel_message(rill_task *task);
/* How many cancel requests are outstanding (asyncio's cancelling()). */
RILL_API int rill_task_cancelling(rill_task *task);
/* Decrements that count and returns the new value; reaching 0 drops a
 * cancel not yet delivered (asyncio 3.13's uncancel). */
RILL_API int rill_task_uncancel(rill_task *task);
/* Name for debug output and task dumps (copied). Default "Task-N". */
RILL_API int rill_task_set_name(rill_task *task, const char *name);
RILL_API const char *rill_task_name(rill_task *task); /* borrowed */
/* The task whose step runs now on this thread, or NULL (borrowed). */
RILL_API rill_task *rill_current_task(void);

/* ------------------------------------------------------------------ */
/* Stackful C coroutines on those tasks                                 */
/* ------------------------------------------------------------------ */

/* asyncio.run for C: a new loop, fn(arg) as its main task, run to the end;
 * then every task left is cancelled and run to completion, failures are
 * reported, the loop closed and freed. Returns fn's code (RILL_EBUSY if a
 * loop is already running on this thread). A coroutine gives its task a
 * value with the setters on rill_task_future(rill_current_task()) and
 * returns RILL_OK; returning a negative code fails the task with it;
 * RILL_ECANCELLED ends it CANCELLED. From 1.1, while fn runs, SIGINT (when
 * it has its default disposition) cancels main and a second SIGINT ends
 * the program; if main then ends cancelled, rill_run returns RILL_EINTR
 * (see rill_loop_cancel_on_sigint). */
RILL_API int rill_run(rill_coro_fn fn, void *arg);
/* A C coroutine task running fn(arg) on its own stack from the next
 * iteration. Returns a reference (rill_task_release); NULL on error. */
RILL_API rill_task *rill_spawn(rill_loop *loop, rill_coro_fn fn, void *arg);
/* Suspends the current coroutine until future is done; returns RILL_OK
 * (done), the failure code (failed), RILL_ECANCELLED (the future was
 * cancelled, or the awaiting task was). A done future returns at once
 * without yielding. Outside a coroutine: RILL_ESTATE. */
RILL_API int rill_await(rill_future *future);
/* Suspends the current coroutine for seconds (<= 0: exactly one
 * iteration). RILL_OK, RILL_ECANCELLED, RILL_ESTATE outside a coroutine. */
RILL_API int rill_sleep(double seconds);
/* Gives up one iteration: rill_sleep(0). */
RILL_API int rill_yield(void);

/* ------------------------------------------------------------------ */
/* Combinators                                                          */
/* ------------------------------------------------------------------ */

/* A future that is DONE (none) after seconds. Returns a reference. */
RILL_API rill_future *rill_sleep_future(rill_loop *loop, double seconds);
/* A future over n futures (retained; the same one may appear twice).
 * Without flags it fails with the first failure (the others keep running)
 * or is DONE (none) when all are; with RILL_GATHER_RETURN_ERRORS it is DONE
 * when all are, whatever their outcome. Results: rill_gather_child(g, i),
 * in argument order. Cancelling it cancels every child not done and it
 * ends CANCELLED once they are. n == 0 gives a future already DONE.
 * Returns a reference; NULL on bad input (NULL child, other loop). */
RILL_API rill_future *rill_gather(rill_loop *loop, size_t n, rill_future *const futs[],
                                  unsigned flags);
/* Number of children of a gather or wait future (0 for other futures). */
RILL_API size_t rill_gather_count(rill_future *gather);
/* Child i (borrowed) of a gather or wait future, NULL if out of range. */
RILL_API rill_future *rill_gather_child(rill_future *gather, size_t index);
/* A future with inner's outcome, or, when timeout_s passes first, one that
 * cancels inner, waits for it to finish, then fails with RILL_ETIMEDOUT
 * (or has inner's outcome if inner finished regardless). timeout_s <= 0
 * times out at once unless inner is done; RILL_FOREVER never. Cancelling
 * it cancels inner. Returns a reference. */
RILL_API rill_future *rill_wait_for(rill_loop *loop, rill_future *inner, double timeout_s);
/* A future with inner's outcome whose cancellation does not reach inner.
 * Returns a reference. */
RILL_API rill_future *rill_shield(rill_loop *loop, rill_future *inner);
/* A future DONE (none) when, among the n futures: one is done
 * (RILL_WAIT_FIRST_COMPLETED), one failed or all are done
 * (RILL_WAIT_FIRST_ERROR), all are done (RILL_WAIT_ALL), or timeout_s
 * passed (RILL_FOREVER: no timeout). It never fails and never cancels the
 * futures; read them with rill_gather_count/child and their states.
 * n == 0 is RILL_EINVAL. Returns a reference. */
RILL_API rill_future *rill_wait(rill_loop *loop, size_t n, rill_future *const futs[],
                                int mode, double timeout_s);

/* A timeout scope (asyncio.timeout): when delay_s passes (on the loop
 * clock; RILL_FOREVER = none) the task is cancelled. Returns a reference
 * (rill_timeout_release); NULL on error. */
RILL_API rill_timeout *rill_timeout_new(rill_task *task, double delay_s);
/* Moves the deadline to delay_s from now (RILL_FOREVER disables it).
 * RILL_ESTATE once expired or exited. */
RILL_API int rill_timeout_reschedule(rill_timeout *timeout, double delay_s);
/* 1 if the deadline passed and the scope cancelled its task, else 0. */
RILL_API int rill_timeout_expired(const rill_timeout *timeout);
/* Leaves the scope with the code the body ended with; disarms it. Returns
 * RILL_ETIMEDOUT if rc is RILL_ECANCELLED caused by this scope's own
 * expiry (and no other cancel is outstanding), else rc. */
RILL_API int rill_timeout_exit(rill_timeout *timeout, int rc);
RILL_API void rill_timeout_release(rill_timeout *timeout);

/* A task group owning its children (asyncio.TaskGroup / a libdill bundle).
 * parent is the task running the body (may be NULL): the first child
 * failure (other than a cancel) cancels every other child and the parent.
 * Returns a reference (rill_group_release); NULL on error. */
RILL_API rill_group *rill_group_new(rill_loop *loop, rill_task *parent);
/* Adds child to the group (retained). RILL_ESTATE once the group is
 * finished or shutting down (then the child is cancelled). */
RILL_API int rill_group_add(rill_group *group, rill_task *child);
/* A C coroutine child: rill_spawn + rill_group_add. Returns a reference. */
RILL_API rill_task *rill_group_spawn(rill_group *group, rill_coro_fn fn, void *arg);
/* Starts leaving the group with the body's code (0, or its failure code,
 * which also cancels the children). Returns a future (borrowed, valid
 * while the group is) that completes once every child is done; cancelling
 * it (e.g. by cancelling the parent) cancels the children and it ends
 * CANCELLED when they have all finished. Await it, then call
 * rill_group_finish with what the await returned. */
RILL_API rill_future *rill_group_join(rill_group *group, int body_rc);
/* The group's outcome once joined: 0; RILL_EGROUP if children failed or
 * the body failed (see rill_group_error_count/child); RILL_ECANCELLED if
 * the parent was cancelled from outside. Undoes the group's own cancel of
 * the parent. RILL_ESTATE if children are still running. */
RILL_API int rill_group_finish(rill_group *group, int join_rc);
/* For C coroutines: join, await, finish in one call. */
RILL_API int rill_group_wait(rill_group *group, int body_rc);
/* The failed children (not cancelled ones), in order of failure. */
RILL_API size_t rill_group_error_count(rill_group *group);
RILL_API rill_task *rill_group_error_child(rill_group *group, size_t index);
/* The number of children added, and child i (borrowed) in order added. */
RILL_API size_t rill_group_count(rill_group *group);
RILL_API rill_task *rill_group_child(rill_group *group, size_t index);
RILL_API void rill_group_release(rill_group *group);

/* ------------------------------------------------------------------ */
/* Reliability notes (1.1): behaviours the functions above guarantee    */
/* ------------------------------------------------------------------ */
/* - rill_loop_free called from inside a callback, task or coroutine of
 *   the running loop (same thread) is deferred: the loop stops after the
 *   current batch, and the run function closes and frees it just before
 *   it returns (rill_loop_run_until then returns RILL_ESTATE if its
 *   future is still pending). The loop pointer is invalid once that run
 *   function returns. From another thread it is refused (RILL_EBUSY, and
 *   a line on stderr). rill_loop_close from inside is RILL_EBUSY.
 * - Out of memory inside libev: rill_loop_new installs (once per process,
 *   ev_set_allocator) an allocator that, instead of libev's abort, frees
 *   a 256 KiB reserve, retries, and records the failure; rill_loop_new
 *   then returns NULL with RILL_ENOMEM, and rill_loop_run / _run_until /
 *   _run_once return RILL_ENOMEM (the loop intact: run it again or close
 *   it). Only if the retry fails too does the process abort, with a
 *   message. An application that installs its own libev allocator later
 *   replaces rill's.
 * - Delays and timeouts (call_later/call_at, sleeps, sleep futures,
 *   rill_wait, wait_for, timeout scopes): -inf, like any negative value,
 *   means "now"; +inf (RILL_FOREVER) means never; NaN is RILL_EINVAL.
 * - A task woken from a sleep by a cancel gets the cancel even if it is
 *   uncancelled before it runs (asyncio cancels the sleep's future);
 *   a sleep never ends early with RILL_OK.
 * - A step that arranged its resumption (rill_task_wait/_yield/_sleep)
 *   cannot complete its own future in the same step: RILL_ESTATE.
 * - rill_handle_cancel from inside the handle's own callback: the
 *   callback's free_arg runs after the callback returns.
 * - Double release / use after free of a future, task or handle aborts
 *   with "rill: <function>: ... was already freed (double release or use
 *   after free)" as long as its memory has not been reused (always on:
 *   one load of a word the free lists leave alone).
 * - C coroutine stack overflow: every switch out checks the saved stack
 *   pointer; in debug mode (RILL_DEBUG=1 or rill_loop_set_debug) the
 *   64-byte canary and a 4 KiB guard pattern at the low end of the stack
 *   are checked at every switch out too, and an overflow aborts with
 *   "rill: stack overflow in coroutine task NAME". Outside debug mode the
 *   canary is checked only when the coroutine ends, and an overflow that
 *   returned before switching out may go unseen. Trade-off: there are no
 *   guard pages (a PROT_NONE page per stack is a VMA each, and
 *   vm.max_map_count = 65530 would cap a process near 32,000
 *   coroutines), and reading a cold cache line at every switch is kept
 *   for debug mode.
 * - Cancelling through a chain of awaiting tasks, and releasing chains of
 *   futures (sources, inners), use no stack per level: any depth is fine
 *   from a coroutine with a small stack.
 * - The small-object arena gives memory back: once two of its 2 MiB
 *   chunks are empty they are unmapped. */

/* ------------------------------------------------------------------ */
/* 1.1: the thread pool (to_thread / run_in_executor)                   */
/* ------------------------------------------------------------------ */

/* Where a work function writes its outcome (opaque; valid during the
 * call only). */
typedef struct rill_work rill_work;
/* Runs on a pool thread: must not touch the loop or its objects; gives its
 * outcome with the rill_work_* setters (none set = RILL_NONE). */
typedef void (*rill_work_fn)(rill_work *work, void *arg);

/* Runs fn(work, arg) on the loop's thread pool and returns a future (a
 * reference) that gets the outcome fn wrote. Cancelling the future before
 * fn started means fn never runs; after it started, fn runs to its end
 * (rill_work_cancelled tells it) and its outcome is dropped. free_arg(arg)
 * runs on the loop's thread once fn ran or never will (also at loop
 * close). NULL on bad input, RILL_ECLOSED, RILL_ENOMEM, RILL_ESYS (then
 * free_arg is not called). */
RILL_API rill_future *rill_run_in_thread(rill_loop *loop, rill_work_fn fn, void *arg,
                                         rill_free_fn free_arg);
/* From the work function: its outcome, as the rill_future_set_* and
 * rill_future_fail setters (bytes and the message are copied; a pointer
 * or payload is freed with its free function if nobody reads it). One
 * outcome per job: RILL_ESTATE if already set (then the caller keeps p;
 * rill_work_fail frees its payload on any failure). RILL_EINVAL on NULL. */
RILL_API int rill_work_set_none(rill_work *work);
RILL_API int rill_work_set_bool(rill_work *work, int value);
RILL_API int rill_work_set_int(rill_work *work, int64_t value);
RILL_API int rill_work_set_double(rill_work *work, double value);
RILL_API int rill_work_set_bytes(rill_work *work, const void *data, size_t len);
RILL_API int rill_work_set_pointer(rill_work *work, void *p, rill_free_fn free_p,
                                   const void *tag);
RILL_API int rill_work_fail(rill_work *work, int code, const char *message, void *payload,
                            rill_free_fn free_payload, const void *tag);
/* From the work function: 1 if its future was cancelled (the outcome will
 * be dropped; a long job may stop early), 0 if not, RILL_EINVAL. */
RILL_API int rill_work_cancelled(const rill_work *work);
/* The most threads the loop's pool runs at once (1..1024; default
 * min(32, cores + 4)). Threads start lazily, one per job that finds none
 * idle; lowering the size does not stop threads already started. */
RILL_API int rill_loop_set_thread_pool_size(rill_loop *loop, int max_threads);
/* loop's jobs go to with's pool from now on (each loop has its own pool by
 * default). Both loops must be open and owned by the calling thread when
 * it is called; RILL_ESTATE if loop has jobs in flight. The pool's threads
 * are joined when the last loop sharing it closes. */
RILL_API int rill_loop_share_thread_pool(rill_loop *loop, rill_loop *with);
/* (rill_loop_shutdown, 1.1: after the tasks, it also runs the loop until
 * every thread job has completed and joins the pool's threads, as
 * asyncio's shutdown_default_executor; rill_loop_close drops jobs not yet
 * started and waits for running ones.) */

/* ------------------------------------------------------------------ */
/* 1.1: DNS (getaddrinfo / getnameinfo on the thread pool)              */
/* ------------------------------------------------------------------ */

struct addrinfo;
struct sockaddr;

/* Resolves host and/or service (as getaddrinfo(3); hints may be NULL and
 * may set only ai_flags/family/socktype/protocol) on the loop's thread
 * pool. Returns a future (a reference) whose value is the addrinfo list,
 * read with rill_future_addrinfo and freed (freeaddrinfo) with the future.
 * It fails with RILL_ENOHOST (the name does not exist), RILL_EDNS (the
 * resolution failed: no server, unknown service, ...; the message says
 * which, naming host and service) or RILL_ENOMEM. Cancelling it drops the
 * result. NULL on bad input (both NULL), RILL_ECLOSED, RILL_ENOMEM. */
RILL_API rill_future *rill_getaddrinfo(rill_loop *loop, const char *host, const char *service,
                                       const struct addrinfo *hints);
/* The addrinfo list of a DONE rill_getaddrinfo future (borrowed, valid
 * while the future is); NULL if the future is not such a result. */
RILL_API const struct addrinfo *rill_future_addrinfo(const rill_future *future);
/* getnameinfo(3) of addr (copied; addrlen bytes, at most a
 * sockaddr_storage) with NI_* flags, on the pool. Returns a future (a
 * reference) read with rill_future_nameinfo; failures as rill_getaddrinfo.
 * NULL on bad input, RILL_ECLOSED, RILL_ENOMEM. */
RILL_API rill_future *rill_getnameinfo(rill_loop *loop, const struct sockaddr *addr,
                                       size_t addrlen, int flags);
/* Host and service names of a DONE rill_getnameinfo future (borrowed,
 * valid while the future is; either out pointer may be NULL). 0,
 * RILL_ESTATE if not DONE, RILL_ETYPE if not such a result, RILL_EINVAL. */
RILL_API int rill_future_nameinfo(const rill_future *future, const char **host,
                                  const char **service);

/* ------------------------------------------------------------------ */
/* 1.1: signals                                                         */
/* ------------------------------------------------------------------ */

typedef struct rill_signal rill_signal;
typedef void (*rill_signal_fn)(rill_signal *sig, int signum, void *arg);

/* Calls fn(sig, signum, arg) on the loop's thread, in the iteration after
 * signum arrives (deliveries before it runs are coalesced into one call),
 * until rill_signal_stop. A signal is watched by one loop at a time
 * (RILL_ESIGBUSY if another loop watches it); a loop may have several
 * watchers of one signal. The first watcher installs rill's handler, the
 * last one stopped restores the previous disposition. An active watcher
 * does not keep rill_loop_run going. Returns a reference
 * (rill_signal_release; releasing does not stop it); NULL on bad input
 * (SIGKILL, SIGSTOP, out of range), RILL_ECLOSED, RILL_ENOMEM, RILL_ESYS. */
RILL_API rill_signal *rill_signal_start(rill_loop *loop, int signum, rill_signal_fn fn,
                                        void *arg, rill_free_fn free_arg);
/* Stops the watcher (free_arg runs now); a no-op if stopped already. Loop
 * close stops every watcher. 0 or RILL_EINVAL. */
RILL_API int rill_signal_stop(rill_signal *sig);
/* 1 while the watcher is started, 0 once stopped, RILL_EINVAL. */
RILL_API int rill_signal_active(const rill_signal *sig);
RILL_API void rill_signal_release(rill_signal *sig);

/* asyncio.run's Ctrl+C, once for every language's run: while armed, the
 * first SIGINT cancels task (message "interrupted by SIGINT") within one
 * wake-up of the loop, waiting or busy; a second SIGINT ends the process
 * at once by SIGINT's default action. Arming installs rill's SIGINT
 * handler whatever the current one is (callers check that first, as
 * asyncio does); task == NULL disarms, restores the previous disposition
 * and returns how many SIGINTs came while armed (0 = none). Arming again
 * replaces the task. 0 (armed), RILL_ESIGBUSY (another loop watches
 * SIGINT), RILL_EINVAL, RILL_ECLOSED. rill_run arms it for its main
 * task when SIGINT has its default disposition, and returns RILL_EINTR
 * when SIGINT cancelled main and main ended cancelled. */
RILL_API int rill_loop_cancel_on_sigint(rill_loop *loop, rill_task *task);
/* Wakes the loop: a wait in progress (rill_loop_run_once, or the poll of
 * run/run_until) ends and the poll hook's RILL_POLL_AFTER runs, so a
 * binding can check its language's pending signals. Async-signal-safe and
 * callable from any thread while the loop is alive; NULL is a no-op. */
RILL_API void rill_loop_interrupt(rill_loop *loop);

/* ------------------------------------------------------------------ */
/* 1.1: processes                                                       */
/* ------------------------------------------------------------------ */

typedef struct rill_process rill_process;
/* What a child's stdin/stdout/stderr is (rill_process_spawn's stdio). */
enum rill_stdio_mode {
  RILL_STDIO_INHERIT = 0, /* the parent's */
  RILL_STDIO_PIPE = 1,    /* a pipe; the parent's end: rill_process_fd */
  RILL_STDIO_DEVNULL = 2, /* /dev/null */
  RILL_STDIO_STDOUT = 3   /* stderr only: where stdout goes */
};

/* Starts argv[0] (searched in PATH when it has no '/') with argv, the
 * environment envp (NULL: the parent's), in cwd (NULL: the parent's), with
 * stdio[0..2] (NULL: all inherited). The child starts with no signal
 * blocked and every signal at its default action; it inherits no fd rill
 * made. Pipe ends of the parent are non-blocking and close-on-exec. It is
 * reaped by pid (a pidfd where the kernel has one), on any loop, never
 * with waitpid(-1); a running child counts as loop work for rill_loop_run.
 * Loop close kills (SIGKILL) and reaps children still running. Returns a
 * reference (rill_process_release); NULL on bad input (no argv[0], a bad
 * mode), RILL_ECLOSED, RILL_ESPAWN (the program could not start: the
 * message names it and the errno text), RILL_ESYS, RILL_ENOMEM. */
RILL_API rill_process *rill_process_spawn(rill_loop *loop, const char *const argv[],
                                          const char *const envp[], const char *cwd,
                                          const int stdio[3]);
/* The child's pid, or RILL_EINVAL. */
RILL_API int rill_process_pid(const rill_process *process);
/* The parent's end of pipe which (0 stdin, 1 stdout, 2 stderr), owned by
 * the process object (closed when it is freed): borrowed. RILL_ESTATE if
 * that stdio is not a pipe or was taken, RILL_EINVAL. */
RILL_API int rill_process_fd(const rill_process *process, int which);
/* The same fd, now the caller's to close (e.g. to wrap it in a stream). */
RILL_API int rill_process_take_fd(rill_process *process, int which);
/* Pipe which (0 stdin, 1 stdout, 2 stderr) as a stream (a reference,
 * rill_stream_release): the fd moves from the process to the stream, so
 * the child's output is read (read, read_until, the callback face) and its
 * input written (write, drain, write_eof) like a socket's. NULL on the
 * codes of rill_process_take_fd and rill_stream_open_fd (the fd then stays
 * the process's). */
RILL_API struct rill_stream *rill_process_stream(rill_process *process, int which);
/* A future (a reference) DONE with the exit status as an INT: the exit
 * code, or -N if signal N ended the child (asyncio's returncode).
 * Cancelling it cancels only this wait, never the process or other
 * waits. NULL on bad input. */
RILL_API rill_future *rill_process_wait(rill_process *process);
/* The exit status (as above) once the child was reaped: 0 and *out,
 * RILL_ESTATE while it runs, RILL_EINVAL. */
RILL_API int rill_process_returncode(const rill_process *process, int *out);
/* Sends signum (0 only checks) to the child (through its pidfd where there
 * is one: never to a recycled pid). 0, RILL_ESTATE once it was reaped,
 * RILL_EINVAL, RILL_ESYS. */
RILL_API int rill_process_send_signal(rill_process *process, int signum);
/* rill_process_send_signal(process, SIGKILL). */
RILL_API int rill_process_kill(rill_process *process);
/* Drops the caller's reference; a running child stays watched (and is
 * reaped) by its loop. */
RILL_API void rill_process_release(rill_process *process);

/* ------------------------------------------------------------------ */
/* 1.1: embedding in a host's poll set                                  */
/* ------------------------------------------------------------------ */

/* The loop's pollable backend fd (libev's epoll/kqueue fd; borrowed: the
 * loop closes it). It is readable when the loop has I/O, a thread-safe
 * call, a signal or an interrupt to handle; a host adds it to its own poll
 * set, waits at most rill_loop_backend_timeout(), then calls
 * rill_loop_run_once(loop, 0). From this call on every iteration also
 * collects pending events without blocking. RILL_ESYS if the backend has
 * no fd, RILL_EINVAL, RILL_ECLOSED. */
RILL_API int rill_loop_backend_fd(rill_loop *loop);
/* How long the host may wait on the backend fd before calling
 * rill_loop_run_once: 0 when work is ready, the time to the next timer,
 * RILL_FOREVER when only I/O can wake the loop. Call it right before
 * each wait: it also hands libev's pending fd changes to the kernel (and
 * collects events already there). When that collection leaves work ready
 * (0 returned), the next rill_loop_run_once runs it without polling again.
 * NaN on bad input. */
RILL_API double rill_loop_backend_timeout(rill_loop *loop);

/* ------------------------------------------------------------------ */
/* 1.1: semantics the bindings share                                    */
/* ------------------------------------------------------------------ */

/* rill_task_new_v2 flags. SKIP_CANCELLED_START: a task cancelled before
 * its first step ends CANCELLED (with the cancel message) in that step
 * without calling step, as a coroutine cancelled before it starts; its
 * free_arg runs. Without it, the step is told (rill_task_cancel). */
#define RILL_TASK_SKIP_CANCELLED_START 1u
/* rill_task_new with flags (RILL_TASK_*); RILL_EINVAL on unknown flags. */
RILL_API rill_task *rill_task_new_v2(rill_loop *loop, rill_step_fn step, void *arg,
                                     rill_free_fn free_arg, unsigned flags);
/* rill_task_new_v2 whose arg is arg_size bytes of zeroed memory inside the
 * task's own allocation (aligned for any scalar or pointer) instead of a
 * pointer the caller allocates: a binding's per-task state without an
 * allocation of its own (spawning many tasks is bound by the pages it
 * touches). step, free_arg, the describer and rill_task_arg get its
 * address; free_arg(arg) releases what the state holds when the task is
 * done, and the memory itself goes with the task's last reference.
 * arg_size 0 gives arg NULL. NULL with RILL_EINVAL on unknown flags. */
RILL_API rill_task *rill_task_new_inline(rill_loop *loop, rill_step_fn step, size_t arg_size,
                                         rill_free_fn free_arg, unsigned flags);
/* For a binding that checks for a cancel at every resumption: the address
 * of a byte that, read during the task's own step, is what
 * rill_task_cancel_requested returns there (1: this step must deliver a
 * cancellation), so the check costs a load instead of a call. Outside the
 * task's steps its value means nothing. Valid while the task is (hold a
 * reference or be its step); NULL on bad input. */
RILL_API const unsigned char *rill_task_cancel_flag(rill_task *task);

/* rill_spawn_v2 flags.
 *
 * RILL_SPAWN_COPY_STACK: a copy-stack coroutine (after libaco's shared
 * stacks). Every copy-stack coroutine of a loop runs on one stack of the
 * loop's stack size; when it suspends and another one runs, the part of
 * the stack it used is copied to a heap buffer of its own and copied back
 * before it resumes. A suspended copy-stack coroutine costs the bytes its
 * frames used (typically a few hundred) instead of the 4 KiB pages of its
 * own stack it touched (at least two), and all of them share one hot
 * stack; each switch between two of them copies both frames (the deeper
 * the stack at the suspension, the dearer). The trade-off: while it is
 * suspended, its stack is not where its locals live, so a pointer into
 * its stack (the address of a local, a buffer on the stack) handed to
 * anything that uses it while the coroutine is suspended (another task, a
 * callback, a thread, a future's value) reads or writes another
 * coroutine's frames. Pass such data in heap memory instead. Everything
 * else behaves as rill_spawn: await, sleep, cancel, debug mode, overflow
 * checks (the stack size is the loop's, rill_loop_set_stack_size). Where
 * the context switch cannot copy frames (the ucontext fallback: TSan
 * builds, architectures without an assembly switch), the coroutine runs on
 * a stack of its own instead, which keeps the same promises. */
#define RILL_SPAWN_COPY_STACK 1u
/* rill_spawn with flags (RILL_SPAWN_*); flags 0 is rill_spawn. NULL with
 * RILL_EINVAL on unknown flags or a NULL fn. */
RILL_API rill_task *rill_spawn_v2(rill_loop *loop, rill_coro_fn fn, void *arg, unsigned flags);

/* Debug mode's slow-step report for a binding's tasks. A binding runs
 * every task of its language through one step function (rill_task_new);
 * describe(task, arg, buf, cap) is asked, for a task whose step is step,
 * what the task is running and where, e.g. "main() running at app.py:12"
 * (asyncio's "coro=<main() running at app.py:12>"), and writes it into buf
 * (cap bytes, NUL-terminated) and returns 1, or returns 0 for no text. The
 * report then reads "Executing <Task NAME (entry: TEXT)> took N.NNN
 * seconds". It is called on the loop's thread, right after the slow step,
 * only in debug mode. Process-wide, one describer per step function (up to
 * 32 step functions); describe NULL removes step's. 0, RILL_EINVAL (step
 * NULL), RILL_ENOMEM (table full). */
typedef int (*rill_describe_fn)(rill_task *task, void *arg, char *buf, size_t cap);
RILL_API int rill_step_set_describer(rill_step_fn step, rill_describe_fn describe);

/* Leaving a task group, asyncio's TaskGroup.__aexit__ as one rule.
 * rill_group_exit starts it with the body's outcome (0, RILL_ECANCELLED,
 * or a failure code; a failure or cancel also cancels the children) and
 * returns a future (borrowed, valid while the group is) that is DONE once
 * every child is done. Cancelling it (a cancel of the task awaiting it)
 * never ends it early: the cancel counts as one from outside, reaches the
 * children, and the future completes DONE when they have finished, so it
 * is awaited once. NULL: RILL_EINVAL, RILL_ECLOSED, RILL_ESTATE (already
 * left through rill_group_exit or rill_group_join). */
RILL_API rill_future *rill_group_exit(rill_group *group, int body_rc);
/* The group's outcome once the exit future is done. await_rc: what the
 * await of that future gave (RILL_ECANCELLED if a cancel was delivered
 * there, else 0). Returns RILL_OK: leave normally (a cancel of the body
 * caused by the group itself is swallowed); RILL_ECANCELLED: propagate a
 * cancel (the body's own, if the body was cancelled); RILL_EGROUP: raise
 * the errors of rill_group_exit_error together, in their order. The same
 * value on later calls. RILL_ESTATE if not exited or children still run. */
RILL_API int rill_group_exit_result(rill_group *group, int await_rc);
/* The exit's errors in asyncio's order: the children's failures in order
 * of failure, then the body's own failure (body_rc other than 0 and
 * RILL_ECANCELLED). 0 before rill_group_exit. */
RILL_API size_t rill_group_exit_error_count(rill_group *group);
/* Entry index of that list: 1 with *child = the failed child (borrowed),
 * 0 with *child = NULL for the body's failure, RILL_EINVAL (NULL, out of
 * range). */
RILL_API int rill_group_exit_error(rill_group *group, size_t index, rill_task **child);
/* For C coroutines: rill_group_exit, rill_await, rill_group_exit_result. */
RILL_API int rill_group_exit_await(rill_group *group, int body_rc);

/* Per-loop state of a binding (several languages can share one loop),
 * keyed by tag (the address of a binding-owned constant). Replacing or
 * clearing it (state NULL) runs the previous free_state; rill_loop_close
 * runs the last one after its final reports. 0, RILL_EINVAL, RILL_ECLOSED,
 * RILL_ENOMEM (free_state not called). */
RILL_API int rill_loop_set_binding(rill_loop *loop, const void *tag, void *state,
                                   rill_free_fn free_state);
/* The state set for tag (borrowed), NULL if none (also once closed). */
RILL_API void *rill_loop_binding(rill_loop *loop, const void *tag);
/* An exception handler for the reports about futures owned by tag (see
 * rill_future_owner); other reports go to the loop's handler. NULL fn
 * removes it. The previous free_arg runs; rill_loop_close runs the last. */
RILL_API int rill_loop_set_binding_exception_handler(rill_loop *loop, const void *tag,
                                                     rill_exception_fn fn, void *arg,
                                                     rill_free_fn free_arg);
/* Marks the binding that owns future (a task a language created, say).
 * 0, RILL_EINVAL, RILL_ECLOSED. */
RILL_API int rill_future_set_owner(rill_future *future, const void *tag);
/* The owner set with rill_future_set_owner, else the tag of the failure's
 * payload (rill_future_fail), else NULL. */
RILL_API const void *rill_future_owner(const rill_future *future);

/* ------------------------------------------------------------------ */
/* 1.1 names (the rules at the top); the 1.0 names remain               */
/* ------------------------------------------------------------------ */

enum rill_state_name {
  RILL_STATE_PENDING = RILL_PENDING, RILL_STATE_DONE = RILL_DONE,
  RILL_STATE_FAILED = RILL_FAILED, RILL_STATE_CANCELLED = RILL_CANCELLED
};
enum rill_kind_name {
  RILL_KIND_NONE = RILL_NONE, RILL_KIND_BOOL = RILL_BOOL, RILL_KIND_INT = RILL_INT,
  RILL_KIND_DOUBLE = RILL_DOUBLE, RILL_KIND_BYTES = RILL_BYTES, RILL_KIND_POINTER = RILL_POINTER
};

/* = rill_future_done. */
RILL_API int rill_future_is_done(const rill_future *future);
/* = rill_handle_cancelled. */
RILL_API int rill_handle_is_cancelled(const rill_handle *handle);
/* = rill_timeout_expired. */
RILL_API int rill_timeout_is_expired(const rill_timeout *timeout);
/* = rill_task_cancel_requested. */
RILL_API int rill_task_is_cancel_requested(rill_task *task);
/* = rill_loop_get_debug. */
RILL_API int rill_loop_debug(const rill_loop *loop);
/* = rill_current_task. */
RILL_API rill_task *rill_task_current(void);
/* = rill_err_name. */
RILL_API const char *rill_error_name(int code);
/* = rill_task_wait (resume once awaited is done). */
RILL_API int rill_task_resume_on(rill_task *task, rill_future *awaited);
/* = rill_task_yield (resume in the next iteration). */
RILL_API int rill_task_resume_soon(rill_task *task);
/* = rill_task_sleep (resume once seconds have passed). */
RILL_API int rill_task_resume_after(rill_task *task, double seconds);
/* = rill_gather_count: children of a gather or wait future. */
RILL_API size_t rill_future_child_count(rill_future *future);
/* = rill_gather_child. */
RILL_API rill_future *rill_future_child(rill_future *future, size_t index);

/* ------------------------------------------------------------------ */
/* I/O (1.1): fd readiness, streams, listeners, datagrams               */
/* ------------------------------------------------------------------ */
/* System failures are the named codes above (RILL_ECONNREFUSED, ...), or
 * RILL_ESYS for the rest; the errno behind a failure stays readable with
 * rill_future_error_errno() / rill_last_error_errno(). Messages name the
 * address concerned. Every I/O object is used from its loop's thread.
 * Closing the loop removes every watcher (free_arg runs) and aborts every
 * stream, listener and datagram endpoint still open (closing their fds). */

typedef struct rill_stream rill_stream;
typedef struct rill_listener rill_listener;
typedef struct rill_udp rill_udp;

/* Readiness events (rill_fd_wait, its DONE value as an int). */
enum rill_io_events { RILL_READABLE = 1, RILL_WRITABLE = 2 };

/* The errno behind a failed future (walking to the failure it came from),
 * 0 if it has none (not failed, or not a system failure). Marks retrieved. */
RILL_API int rill_future_error_errno(rill_future *future);
/* The errno behind this thread's last failing rill call, 0 if none. */
RILL_API int rill_last_error_errno(void);
/* The rill code for an errno value (RILL_ESYS if it has no name). */
RILL_API int rill_code_from_errno(int errno_value);

/* -- fd readiness (asyncio's add_reader / add_writer) -- */
/* Calls fn(arg) from the ready queue in each iteration in which fd (any fd
 * the caller owns; rill never closes it) is readable, until removed. One
 * reader per fd per loop: a second call replaces the first (whose free_arg
 * runs), as asyncio does. 0, RILL_EINVAL, RILL_EBADF, RILL_ECLOSED,
 * RILL_ENOMEM (free_arg not called on failure). Remove the watcher before
 * closing fd: one whose fd is closed before the loop next polls stops
 * quietly (fn never runs; removing it still frees arg), and one whose fd
 * is closed later no longer hears of it (the kernel drops a closed fd). */
RILL_API int rill_fd_add_reader(rill_loop *loop, int fd, rill_fn fn, void *arg,
                                rill_free_fn free_arg);
/* The same for writability. */
RILL_API int rill_fd_add_writer(rill_loop *loop, int fd, rill_fn fn, void *arg,
                                rill_free_fn free_arg);
/* Stops the watcher (its free_arg runs; a run already queued is skipped).
 * 1 if one was removed, 0 if there was none, RILL_EINVAL, RILL_ECLOSED. */
RILL_API int rill_fd_remove_reader(rill_loop *loop, int fd);
RILL_API int rill_fd_remove_writer(rill_loop *loop, int fd);
/* A future DONE (int: the RILL_READABLE|RILL_WRITABLE bits ready) once fd
 * is ready for one of events. Cancelling it stops the watch; use
 * rill_wait_for for a timeout. Returns a reference; NULL on bad input
 * (RILL_EINVAL, RILL_EBADF for a negative fd or one past RLIMIT_NOFILE
 * that is not open, RILL_ECLOSED, RILL_ENOMEM). Whether fd is open is
 * checked when the loop next polls, for all of an iteration's new waits
 * in one syscall: a wait on an fd that is not open then (never opened, or
 * closed meanwhile) fails with RILL_EBADF (errno EBADF). */
RILL_API rill_future *rill_fd_wait(rill_loop *loop, int fd, int events);

/* -- streams: TCP (IPv4/IPv6), Unix sockets, pipes -- */
/* A stream is alive while its fd is open (the loop holds a reference) and
 * while someone holds a reference; rill_stream_release never closes it.
 * Read with the callback face or the awaitable face, not both. */

/* Stream events (rill_stream_fn). */
enum rill_stream_event {
  RILL_STREAM_DATA = 1,   /* data, len: bytes received (borrowed for the call) */
  RILL_STREAM_EOF = 2,    /* the peer finished writing; return 1 to keep the write
                             side open (half-close), 0 to close */
  RILL_STREAM_LOST = 3,   /* the stream is closed; err: 0 or the failure code; last */
  RILL_STREAM_PAUSE_WRITING = 4,  /* the write buffer went above the high watermark */
  RILL_STREAM_RESUME_WRITING = 5  /* ... and is back at or below the low watermark */
};
/* The callback face (asyncio's protocol), run from the ready queue. The
 * return value matters for RILL_STREAM_EOF only. RILL_STREAM_DATA's bytes
 * are borrowed for the call: copy what you keep. On Linux the sockets made
 * ready in one poll are read together, in one io_uring_enter (as with
 * rill_stream_set_coalesce_writes; RILL_IO_URING=0 turns it off), into
 * slots of a per-loop arena (up to 4 MiB, kept until the loop closes),
 * before their callbacks run; a stream paused, or left without a callback, by an
 * earlier callback of that batch keeps its bytes for when it resumes, or
 * for its awaitable reads; one closed by it drops them, as it would have
 * dropped any bytes that came after the close. */
typedef int (*rill_stream_fn)(rill_stream *stream, int event, const void *data, size_t len,
                              int err, void *arg);

/* Wraps an fd the caller has (a connected socket, a pipe end; made
 * non-blocking, owned by the stream from now on: closing the stream closes
 * it). Returns a reference; NULL on RILL_EINVAL, RILL_EBADF, RILL_ECLOSED,
 * RILL_ENOMEM (then the fd stays the caller's). */
RILL_API rill_stream *rill_stream_open_fd(rill_loop *loop, int fd);
/* Connects to host:port over TCP. host is a numeric address, a comma
 * separated list of them ("::1,127.0.0.1"), or one host name, resolved
 * with rill_getaddrinfo on the loop's pool (every address it gives is
 * tried); the addresses are tried in order; NULL means 127.0.0.1;
 * timeout_s bounds the whole attempt, resolution included (RILL_FOREVER:
 * none); cancelling the future cancels the resolution. The future is DONE
 * with the stream (rill_future_stream) or fails with the last attempt's
 * code (RILL_ECONNREFUSED, RILL_ETIMEDOUT, RILL_ENOHOST for a name that
 * does not exist, RILL_EDNS, ...) and a message naming the address.
 * Returns a reference; NULL on bad input (RILL_ENOHOST for a malformed
 * address list). */
RILL_API rill_future *rill_tcp_connect(rill_loop *loop, const char *host, int port,
                                       double timeout_s);
/* The same for a Unix socket path. */
RILL_API rill_future *rill_unix_connect(rill_loop *loop, const char *path, double timeout_s);
/* The stream of a DONE connect or accept future: a new reference, or NULL
 * (RILL_ESTATE if not DONE, RILL_ETYPE if not a stream future). */
RILL_API rill_stream *rill_future_stream(rill_future *future);
RILL_API rill_stream *rill_stream_retain(rill_stream *stream);
RILL_API void rill_stream_release(rill_stream *stream);
/* The loop of the stream (borrowed), NULL on NULL. */
RILL_API rill_loop *rill_stream_loop(rill_stream *stream);
/* The stream's fd, or a code (RILL_ENOTCONN once closed). */
RILL_API int rill_stream_fd(rill_stream *stream);

/* Sets the callback face: from the next iteration, data read is given to
 * fn(stream, RILL_STREAM_DATA, ...) and the other events follow. NULL
 * removes it. The previous free_arg runs. 0, RILL_EINVAL, RILL_ENOTCONN. */
RILL_API int rill_stream_set_callback(rill_stream *stream, rill_stream_fn fn, void *arg,
                                      rill_free_fn free_arg);
/* Stops / restarts reading (asyncio's pause_reading). 0 or a code. */
RILL_API int rill_stream_pause_reading(rill_stream *stream);
RILL_API int rill_stream_resume_reading(rill_stream *stream);

/* The awaitable face. Each read returns a reference to a future DONE with
 * bytes; one read may be pending at a time (else RILL_ESTATE); a read of
 * data already buffered is DONE at once. They fail with the stream's
 * failure (RILL_ECONNRESET, ...), or RILL_ENOTCONN if the stream was closed
 * locally, meanwhile. Cancelling a read loses no data. */
/* Up to n (> 0) bytes, at least 1; empty bytes at end of stream. */
RILL_API rill_future *rill_stream_read(rill_stream *stream, size_t n);
/* Exactly n bytes; at an early end of stream fails with RILL_EINCOMPLETE,
 * the bytes received given by rill_stream_error_partial(). */
RILL_API rill_future *rill_stream_read_exactly(rill_stream *stream, size_t n);
/* Bytes up to and including sep (seplen > 0). If limit (0: the stream's
 * read limit) bytes pass without sep: fails with RILL_ELIMIT and the data
 * stays buffered and readable. End of stream first: RILL_EINCOMPLETE with
 * the partial data. */
RILL_API rill_future *rill_stream_read_until(rill_stream *stream, const void *sep,
                                             size_t seplen, size_t limit);
/* DONE (none) once data is buffered or the stream ended; then read it
 * without copies with rill_stream_peek / rill_stream_consume. */
RILL_API rill_future *rill_stream_wait_readable(rill_stream *stream);
/* Borrowed pointer to the buffered bytes (valid until the next call on the
 * stream or the next iteration), their count in *len; NULL with *len = 0
 * if none. */
RILL_API const void *rill_stream_peek(rill_stream *stream, size_t *len);
/* Drops n buffered bytes (n <= buffered). 0, RILL_EINVAL. */
RILL_API int rill_stream_consume(rill_stream *stream, size_t n);
/* 1 once the peer's end of stream was received and nothing is buffered. */
RILL_API int rill_stream_at_eof(rill_stream *stream);
/* The partial data of a RILL_EINCOMPLETE read (borrowed), NULL otherwise. */
RILL_API const void *rill_stream_error_partial(rill_future *future, size_t *len);
/* Read buffer limit (default 64 KiB): reading pauses while twice this is
 * buffered and unread; read_until's default limit. */
RILL_API int rill_stream_set_read_limit(rill_stream *stream, size_t limit);

/* Writes (copies) data: sent at once when possible, the rest buffered and
 * sent as the fd allows. Never blocks. 0, RILL_ENOTCONN (closing/closed,
 * write EOF sent), the stream's failure code, RILL_EINVAL, RILL_ENOMEM. */
RILL_API int rill_stream_write(rill_stream *stream, const void *data, size_t len);
/* 1.1. Coalesced writes (off by default): rill_stream_write only buffers,
 * and the writes made while the loop runs a batch of ready callbacks go
 * out in one send once that batch has run, in the same iteration (no poll
 * between), as uvloop does per loop iteration (a response written as
 * headers then body is one packet, one syscall). The bytes count in
 * rill_stream_write_buffered until then (drain waits for them as for any
 * buffered bytes); write_eof, close and turning coalescing off send them
 * first, at once, and so does a write that takes them past the high
 * watermark (writing pauses only on what the fd refuses). On Linux the
 * iteration's coalesced sends on sockets (every stream's) leave in one
 * io_uring_enter, each non-blocking, the loop's ring made on first use;
 * where io_uring is unavailable, in a child forked after the ring was
 * made, or with RILL_IO_URING=0 in the environment when the loop would
 * make it, each stream sends by itself: the bytes, their order and the
 * errors are the same either way. 0; RILL_ENOTCONN on a closing or
 * closed stream. */
RILL_API int rill_stream_set_coalesce_writes(rill_stream *stream, int on);
/* A future DONE once the write buffer is at or below the low watermark
 * (at once if it is); fails if the stream fails first. A reference. */
RILL_API rill_future *rill_stream_drain(rill_stream *stream);
/* Bytes in the write buffer, or a code. */
RILL_API long long rill_stream_write_buffered(rill_stream *stream);
/* Write watermarks (default 64 KiB / 16 KiB; low <= high). */
RILL_API int rill_stream_set_write_watermarks(rill_stream *stream, size_t high, size_t low);
/* 1.1. The write watermarks into *high and *low (either may be NULL).
 * 0, RILL_EINVAL, RILL_ECLOSED. */
RILL_API int rill_stream_write_watermarks(rill_stream *stream, size_t *high, size_t *low);
/* 1.1. Whether rill_stream_drain would be DONE at once: 1 while the stream
 * has not failed and rill_stream_write_buffered() is at or below the low
 * watermark (a binding can then skip making the future), 0 when the drain
 * would wait or fail; RILL_EINVAL, RILL_ECLOSED (closed loop). */
RILL_API int rill_stream_drain_ready(rill_stream *stream);
/* Shuts the write side once the buffer is flushed (half-close). */
RILL_API int rill_stream_write_eof(rill_stream *stream);
/* Stops reading, flushes the write buffer, then closes the fd. 0, or
 * RILL_ENOTCONN if already closing. */
RILL_API int rill_stream_close(rill_stream *stream);
/* Closes at once, discarding buffers. 0, RILL_ENOTCONN if already closed. */
RILL_API int rill_stream_abort(rill_stream *stream);
/* A future DONE once the stream is closed (asyncio's wait_closed). */
RILL_API rill_future *rill_stream_wait_closed(rill_stream *stream);
/* 1 if closing or closed, 0 if open. */
RILL_API int rill_stream_is_closing(rill_stream *stream);

/* TCP_NODELAY (on by default for TCP). RILL_EINVAL for a non-TCP stream. */
RILL_API int rill_stream_set_nodelay(rill_stream *stream, int on);
/* SO_KEEPALIVE with the idle time before the first probe (<= 0: the
 * system's). */
RILL_API int rill_stream_set_keepalive(rill_stream *stream, int on, int idle_s);
/* The peer's / the local address as text ("127.0.0.1:80", "[::1]:80", a
 * Unix path, "" for a pipe) in buf (cap bytes). 0 or a code. */
RILL_API int rill_stream_peer_name(rill_stream *stream, char *buf, size_t cap);
RILL_API int rill_stream_local_name(rill_stream *stream, char *buf, size_t cap);

/* -- listeners -- */
#define RILL_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: several loops share a port */
#define RILL_LISTEN_V6ONLY 2u
/* The accept callback: conn is borrowed (the loop keeps it while open;
 * retain it to keep it longer). */
typedef void (*rill_accept_fn)(rill_listener *listener, rill_stream *conn, void *arg);
/* Listens on host:port (a numeric address; NULL = 127.0.0.1; port 0 picks
 * one, see rill_listener_port) with SO_REUSEADDR, backlog (<= 0: 511).
 * Returns a reference (rill_listener_release); NULL on RILL_EADDRINUSE,
 * RILL_EACCES, RILL_ENOHOST, RILL_EINVAL, ... */
RILL_API rill_listener *rill_tcp_listen(rill_loop *loop, const char *host, int port,
                                        int backlog, unsigned flags);
/* The same on a Unix socket path (an existing socket file is an error). */
RILL_API rill_listener *rill_unix_listen(rill_loop *loop, const char *path, int backlog);
/* Accepts connections and calls fn for each (NULL: stop). On EMFILE and
 * the like it reports to the exception handler and pauses accepting for a
 * second, never spinning. 0, RILL_EINVAL, RILL_ENOTCONN (closed). */
RILL_API int rill_listener_set_callback(rill_listener *listener, rill_accept_fn fn, void *arg,
                                        rill_free_fn free_arg);
/* A future DONE with the next connection (rill_future_stream); FIFO among
 * accepts. Fails with RILL_ENOTCONN when the listener closes. A reference. */
RILL_API rill_future *rill_listener_accept(rill_listener *listener);
/* The bound port (TCP), or a code. */
RILL_API int rill_listener_port(rill_listener *listener);
RILL_API int rill_listener_fd(rill_listener *listener);
/* Stops accepting and closes the listening fd; live connections stay. The
 * accept callback is dropped and its free_arg runs (at once, or once a
 * running callback returns), as asyncio's Server.close drops its protocol
 * factory. 0, RILL_ENOTCONN if already closed. */
RILL_API int rill_listener_close(rill_listener *listener);
/* A future DONE once the listener is closed and every connection it
 * accepted is closed (asyncio's Server.wait_closed). A reference. */
RILL_API rill_future *rill_listener_wait_closed(rill_listener *listener);
RILL_API void rill_listener_release(rill_listener *listener);


/* -- datagrams (UDP) -- */
/* A datagram callback: data/len and the sender's numeric host and port are
 * borrowed for the call. */
typedef void (*rill_datagram_fn)(rill_udp *udp, const void *data, size_t len,
                                 const char *host, int port, void *arg);
/* A UDP endpoint bound to host:port (NULL host: 127.0.0.1; port 0: any;
 * flags: 0 or RILL_LISTEN_REUSEPORT). Returns a reference
 * (rill_udp_release); the loop keeps it while open. NULL on error. */
RILL_API rill_udp *rill_udp_open(rill_loop *loop, const char *host, int port, unsigned flags);
/* Sets the default peer (connect(2)); sends without a host go there. */
RILL_API int rill_udp_connect(rill_udp *udp, const char *host, int port);
/* Sends one datagram to host:port (NULL host: the connected peer).
 * Never blocks: RILL_ESYS (errno EAGAIN) if the socket buffer is full. */
RILL_API int rill_udp_sendto(rill_udp *udp, const void *data, size_t len, const char *host,
                             int port);
/* A future DONE with the next datagram's bytes; the sender with
 * rill_udp_sender(). FIFO among receives. A reference. */
RILL_API rill_future *rill_udp_recvfrom(rill_udp *udp);
/* The sender of a DONE rill_udp_recvfrom future as "host:port" text in buf. */
RILL_API int rill_udp_sender(rill_future *future, char *buf, size_t cap);
/* Calls fn for each datagram (NULL: stop). */
RILL_API int rill_udp_set_callback(rill_udp *udp, rill_datagram_fn fn, void *arg,
                                   rill_free_fn free_arg);
/* The bound port, or a code. */
RILL_API int rill_udp_port(rill_udp *udp);
/* Closes the socket; pending receives fail with RILL_ENOTCONN. */
RILL_API int rill_udp_close(rill_udp *udp);
RILL_API void rill_udp_release(rill_udp *udp);

/* ------------------------------------------------------------------ */
/* Sync primitives (1.1): Event, Lock, Semaphore, Condition, Barrier,   */
/* Queue, with asyncio's rules                                          */
/* ------------------------------------------------------------------ */
/* Every wait returns a future (a reference) that a step task
 * (rill_task_wait), a C coroutine (rill_await) or a binding awaits; it is
 * DONE at once when the operation is uncontended (rill_await then returns
 * without yielding; a step task or binding checks rill_future_is_done
 * before arranging a wait, so it does not yield either). Waiters are
 * served FIFO; each hand-off (the lock, a semaphore unit, a queue item)
 * happens when the future completes, so nobody can barge in between.
 * Cancelling a pending wait's future removes the waiter (it ends
 * CANCELLED). A task cancelled after its wait was handed something but
 * before it resumed sees RILL_ECANCELLED at its await point, and what it
 * was handed is passed on: the lock or unit to the next waiter, the item
 * to the next getter or back to the queue's front (the future then reads
 * CANCELLED). This pass-on applies to the sync future a task awaits
 * directly, not through rill_wait_for / rill_shield / a gather. A lock,
 * semaphore, condition or get wait whose future nobody holds any more
 * (the caller released it) is skipped likewise; a put still happens (fire
 * and forget). The primitives are reference counted (_retain/_release;
 * the lock's and semaphore's own release is _unlock / _post); a pending waiter
 * keeps its primitive alive. Closing the loop cancels every pending wait
 * (no callbacks run) and frees the items still queued. Calls on a
 * primitive of a closed loop give RILL_ECLOSED. */

typedef struct rill_event rill_event;
typedef struct rill_lock rill_lock;
typedef struct rill_semaphore rill_semaphore;
typedef struct rill_condition rill_condition;
typedef struct rill_barrier rill_barrier;
typedef struct rill_queue rill_queue;

/* -- Event -- */
/* A new event, not set. Returns a reference; NULL on error. */
RILL_API rill_event *rill_event_new(rill_loop *loop);
RILL_API rill_event *rill_event_retain(rill_event *event);
RILL_API void rill_event_release(rill_event *event);
/* Sets the event: every current waiter is woken (DONE, none), in the order
 * they started waiting; a clear before they run does not stop them. */
RILL_API int rill_event_set(rill_event *event);
/* Clears the event. 0 or a code. */
RILL_API int rill_event_clear(rill_event *event);
/* 1 if set, 0 if not, or a code. */
RILL_API int rill_event_is_set(const rill_event *event);
/* A future DONE (none) once the event is set (at once if it is). */
RILL_API rill_future *rill_event_wait(rill_event *event);

/* -- Lock (asyncio.Lock: no owner, FIFO, no barging) -- */
/* A new unlocked lock. Returns a reference; NULL on error. */
RILL_API rill_lock *rill_lock_new(rill_loop *loop);
RILL_API rill_lock *rill_lock_retain(rill_lock *lock);
RILL_API void rill_lock_release(rill_lock *lock);
/* A future DONE (none) when the caller holds the lock: at once if it is
 * free, else when a release hands it over (FIFO). */
RILL_API rill_future *rill_lock_acquire(rill_lock *lock);
/* Takes the lock if free: 1 taken, 0 locked, or a code. */
RILL_API int rill_lock_try_acquire(rill_lock *lock);
/* Releases the lock (asyncio's release; _release drops a reference),
 * handing it to the first waiter if any. 0,
 * RILL_ENOTLOCKED if it is not locked. */
RILL_API int rill_lock_unlock(rill_lock *lock);
/* 1 if locked, 0 if not, or a code. */
RILL_API int rill_lock_is_locked(const rill_lock *lock);

/* -- Semaphore and BoundedSemaphore -- */
/* A semaphore with value units (>= 0); bounded (1): a release past the
 * initial value is RILL_ETOOMANY. Returns a reference; NULL on error. */
RILL_API rill_semaphore *rill_semaphore_new(rill_loop *loop, int value, int bounded);
RILL_API rill_semaphore *rill_semaphore_retain(rill_semaphore *sem);
RILL_API void rill_semaphore_release(rill_semaphore *sem);
/* A future DONE (none) once the caller holds a unit: at once if the value
 * is above 0, else FIFO as units are given back. */
RILL_API rill_future *rill_semaphore_acquire(rill_semaphore *sem);
/* Takes a unit if one is free: 1 taken, 0 none, or a code. */
RILL_API int rill_semaphore_try_acquire(rill_semaphore *sem);
/* Gives a unit back (asyncio's release; _release drops a reference):
 * to the first waiter if any. 0, RILL_ETOOMANY
 * (bounded, already at its initial value). */
RILL_API int rill_semaphore_post(rill_semaphore *sem);
/* The number of free units (>= 0), or a code. */
RILL_API int rill_semaphore_value(const rill_semaphore *sem);
/* 1 if no unit is free (an acquire would wait), 0 if not, or a code. */
RILL_API int rill_semaphore_is_locked(const rill_semaphore *sem);

/* -- Condition -- */
/* A condition over lock (retained; NULL: a lock of its own, same loop
 * else RILL_EINVAL). Returns a reference; NULL on error. */
RILL_API rill_condition *rill_condition_new(rill_loop *loop, rill_lock *lock);
RILL_API rill_condition *rill_condition_retain(rill_condition *cond);
RILL_API void rill_condition_release(rill_condition *cond);
/* The condition's lock (borrowed, valid while the condition is). */
RILL_API rill_lock *rill_condition_lock(rill_condition *cond);
/* Releases the lock (which must be locked: else NULL, RILL_ENOTLOCKED)
 * and returns a future that completes once notified AND the lock is held
 * again: DONE (none), or CANCELLED if it was cancelled, also then only
 * with the lock held again (asyncio's rule); a cancelled wait notifies
 * one other waiter in its place (asyncio 3.13). Whatever its outcome, the
 * caller holds the lock when it is done. */
RILL_API rill_future *rill_condition_wait(rill_condition *cond);
/* Wakes up to n (>= 0) waiters, FIFO; each queues for the lock at once
 * (in asyncio when its task next runs: a task acquiring in between may
 * come first there, never here). Returns how many it woke,
 * RILL_ENOTLOCKED if the lock is not held. */
RILL_API int rill_condition_notify(rill_condition *cond, int n);
/* Wakes every waiter; the count woken, or a code. */
RILL_API int rill_condition_notify_all(rill_condition *cond);

/* -- Barrier (asyncio 3.11) -- */
/* A barrier for parties (>= 1) tasks. Returns a reference; NULL on error. */
RILL_API rill_barrier *rill_barrier_new(rill_loop *loop, int parties);
RILL_API rill_barrier *rill_barrier_retain(rill_barrier *barrier);
RILL_API void rill_barrier_release(rill_barrier *barrier);
/* A future DONE with an INT, the caller's arrival index (0 .. parties-1),
 * once parties tasks wait (at once for the last); it fails with
 * RILL_EBROKEN if the barrier is or becomes broken (abort) or is reset
 * while it waits. A cancelled waiter leaves (n_waiting drops). */
RILL_API rill_future *rill_barrier_wait(rill_barrier *barrier);
/* Breaks the barrier: waiters and later waits fail with RILL_EBROKEN. */
RILL_API int rill_barrier_abort(rill_barrier *barrier);
/* Back to empty and not broken; current waiters fail with RILL_EBROKEN. */
RILL_API int rill_barrier_reset(rill_barrier *barrier);
/* 1 if broken, 0 if not, or a code. */
RILL_API int rill_barrier_is_broken(const rill_barrier *barrier);
/* How many wait now, or a code. */
RILL_API int rill_barrier_n_waiting(const rill_barrier *barrier);
/* The parties given to rill_barrier_new, or a code. */
RILL_API int rill_barrier_parties(const rill_barrier *barrier);

/* -- Queue (asyncio.Queue / LifoQueue / PriorityQueue, 3.13) -- */
/* Queue kinds. PRIORITY: the smallest priority first, FIFO among equal
 * ones (the other kinds ignore priority). */
enum rill_queue_kinds { RILL_QUEUE_FIFO = 0, RILL_QUEUE_LIFO = 1, RILL_QUEUE_PRIORITY = 2 };
/* A queue holding at most maxsize items (<= 0: unbounded). Returns a
 * reference; NULL on error. Items are future values of every kind; a get
 * future carries the kind that was put. */
RILL_API rill_queue *rill_queue_new(rill_loop *loop, int maxsize, int kind);
RILL_API rill_queue *rill_queue_retain(rill_queue *queue);
/* Drops a reference; the last one frees the items still queued (a
 * pointer's free_p runs once). */
RILL_API void rill_queue_release(rill_queue *queue);
/* Puts an item: returns a future DONE (none) once it is in the queue (at
 * once if there is room, else FIFO among putters as room frees); it fails
 * with RILL_ESHUTDOWN if the queue is shut down while it waits. The queue
 * owns the value once a future is returned (bytes are copied; a pointer is
 * freed with free_p when the queue or a cancelled put drops it). NULL on
 * bad input, RILL_ECLOSED, RILL_ESHUTDOWN (then p stays the caller's). */
RILL_API rill_future *rill_queue_put_none(rill_queue *queue, int64_t priority);
RILL_API rill_future *rill_queue_put_bool(rill_queue *queue, int value, int64_t priority);
RILL_API rill_future *rill_queue_put_int(rill_queue *queue, int64_t value, int64_t priority);
RILL_API rill_future *rill_queue_put_double(rill_queue *queue, double value, int64_t priority);
RILL_API rill_future *rill_queue_put_bytes(rill_queue *queue, const void *data, size_t len,
                                           int64_t priority);
RILL_API rill_future *rill_queue_put_pointer(rill_queue *queue, void *p, rill_free_fn free_p,
                                             const void *tag, int64_t priority);
/* The same without waiting: 0 (the queue owns the value), RILL_EFULL,
 * RILL_ESHUTDOWN (then p stays the caller's), or another code. */
RILL_API int rill_queue_put_nowait_none(rill_queue *queue, int64_t priority);
RILL_API int rill_queue_put_nowait_bool(rill_queue *queue, int value, int64_t priority);
RILL_API int rill_queue_put_nowait_int(rill_queue *queue, int64_t value, int64_t priority);
RILL_API int rill_queue_put_nowait_double(rill_queue *queue, double value, int64_t priority);
RILL_API int rill_queue_put_nowait_bytes(rill_queue *queue, const void *data, size_t len,
                                         int64_t priority);
RILL_API int rill_queue_put_nowait_pointer(rill_queue *queue, void *p, rill_free_fn free_p,
                                           const void *tag, int64_t priority);
/* A future DONE with the next item (read it with rill_future_kind and the
 * value getters; it owns the value): at once if the queue has one, else
 * FIFO among getters. Fails with RILL_ESHUTDOWN if the queue is shut down
 * while it waits. NULL on bad input, RILL_ECLOSED, RILL_ESHUTDOWN (shut
 * down and empty). */
RILL_API rill_future *rill_queue_get(rill_queue *queue);
/* A future already DONE with the next item, or NULL: RILL_EEMPTY,
 * RILL_ESHUTDOWN (shut down and empty), bad input. */
RILL_API rill_future *rill_queue_get_nowait(rill_queue *queue);
/* Items queued (>= 0), or a code. May exceed maxsize by the items a
 * cancelled getter gave back. */
RILL_API int rill_queue_qsize(const rill_queue *queue);
/* The maxsize given (0 for unbounded), or a code. */
RILL_API int rill_queue_maxsize(const rill_queue *queue);
/* The kind given (RILL_QUEUE_FIFO, _LIFO, _PRIORITY), or a code. For a
 * binding wrapping a queue made elsewhere (a host's). */
RILL_API int rill_queue_kind(const rill_queue *queue);
/* The loop the queue belongs to (borrowed, also once closed), NULL on NULL. */
RILL_API rill_loop *rill_queue_loop(const rill_queue *queue);
/* 1 if no item is queued / if maxsize items are, 0 if not, or a code. */
RILL_API int rill_queue_is_empty(const rill_queue *queue);
RILL_API int rill_queue_is_full(const rill_queue *queue);
/* One item taken earlier is processed (asyncio's task_done). 0,
 * RILL_ETOOMANY if called more times than items were put. */
RILL_API int rill_queue_task_done(rill_queue *queue);
/* A future DONE (none) once every item put has had its task_done (at once
 * if so already). */
RILL_API rill_future *rill_queue_join(rill_queue *queue);
/* Shuts the queue down (asyncio 3.13): puts fail with RILL_ESHUTDOWN from
 * now on, waiting putters fail with it (their items freed), waiting
 * getters fail with it; gets still take the items left. immediate (1):
 * the items left are dropped too (freed, each counting as task_done). */
RILL_API int rill_queue_shutdown(rill_queue *queue, int immediate);
/* 1 once shut down, 0 if not, or a code. */
RILL_API int rill_queue_is_shut_down(const rill_queue *queue);

#ifdef __cplusplus
}
#endif
#endif /* RILL_H */
