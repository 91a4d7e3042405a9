/* bindings/ruby/src/rill_ruby.h - internal header of the Ruby binding (Rill::Ext).
 * Loaded by bindings/ruby/lib/rill.rb. swig/rill.i gives the status codes,
 * constants and the Loop/Future handle classes; the C in this directory
 * (one file per concern) drives Ruby tasks: each Rill::Task is a
 * rill_task (rill_task_new) whose step resumes a Fiber. Awaiting is done in
 * C from inside the task's Fiber: Rill.sleep / Task#value call
 * rill_task_sleep / rill_task_wait (we are inside the task's step, since
 * the step resumed us) and then rb_fiber_yield back to the step, which
 * returns to the loop. Semantics (cancellation, gather, timeouts, groups)
 * are the core's; this code only converts values and errors.
 *
 * Rules kept here:
 *  - Every Ruby call made from a rill callback (task step, call_soon
 *    trampoline, exception handler) is under rb_protect: no longjmp ever
 *    crosses libev or rill.
 *  - Every VALUE held by C is reachable from a Ruby object the binding
 *    owns: a pending task from the registry (one TypedData object held with
 *    rb_gc_register_mark_object), its fiber/block/result from the Task
 *    object; callbacks' procs and running loops from the registry. All are
 *    marked with rb_gc_mark_movable and updated with rb_gc_location (GC.compact).
 *  - Nothing runs Ruby from a non-Ruby thread: rill calls back only on the
 *    thread that runs the loop. Other Ruby threads reach a loop only through
 *    rill_call_soon_threadsafe (Loop#call_soon_threadsafe, the scheduler's
 *    unblock), with the GVL held, so the binding's lists need no lock.
 *  - Rill.run releases the GVL while the loop waits (loop.c drive).
 *  - Free functions called by rill (possibly during GC sweep, when a Task
 *    object's last rill reference goes) never call Ruby.
 */
#ifndef RILL_RUBY_H
#define RILL_RUBY_H

#include <ruby.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rill.h"
#include "rill_errors.h" /* bindings/common: the one exception table */



/* Defined in module.c (all names here are hidden: the module is built
 * with -fvisibility=hidden; Init_ext is SWIG's export). */
extern VALUE mRill, cTask, cFuture, cLoop, cHandle, cTimeout, cGroup;
extern VALUE eError, eCancelled, eTimeout, eFiberError;
extern ID id_call;

/* The tag of payloads/pointers only this binding unwraps (an rtask *). */
extern const char rr_tag;
#define RR_TAG ((const void *)&rr_tag)
#define RR_MAGIC 0x52525441u /* "RRTA" */

typedef struct rloop rloop;

/* One Ruby task: the inline state of its core task (rill_task_new_inline),
 * so it lives as long as the task does: while the Task object lives (it
 * holds a reference) or the loop holds the task (until done); the task's
 * future, whose value or failure payload may point at it, is part of the
 * same allocation. */
typedef struct rtask {
  unsigned magic;
  rill_task *task;       /* the Task object's reference (released when it dies) */
  rloop *lp;
  VALUE self;            /* the Rill::Task (Qnil once it died) */
  VALUE fiber;           /* Qnil before start and after the end */
  VALUE block;
  VALUE result;          /* the value, or the exception object */
  unsigned pending : 1;  /* in the registry's pending list */
  unsigned started : 1;
  unsigned finished : 1;
  unsigned has_slot : 1; /* counts in live_fibers */
  unsigned queued : 1;   /* waiting for a fiber slot */
  unsigned failed : 1;   /* result is an exception */
  unsigned ran : 1;      /* the fiber body started */
  unsigned drop_fiber : 1; /* finished, but its fiber must not be reused */
  unsigned locals_cleared : 1; /* the fiber-locals reset ran to its end */
  struct rtask *prev, *next;   /* pending list */
  struct rtask *qprev, *qnext; /* slot queue */
  rill_future *slot;           /* the future a queued task waits on */
  rill_future *sync_wait;      /* a sync primitive's wait (sync.c) while the fiber waits */
} rtask;

/* A scheduled Ruby callback (call_soon / call_later). */
typedef struct rcb {
  VALUE proc;
  rloop *lp;
  struct rcb *prev, *next;
} rcb;

/* A Rill::Loop. */
struct rloop {
  rill_loop *loop;  /* NULL once freed */
  VALUE self;
  VALUE handler;    /* the exception handler proc, or Qnil (default) */
  struct rloop *prev, *next; /* active loops (running Rill.run) */
  int active;
  struct rtask *slotq_head, *slotq_tail; /* tasks waiting for a fiber slot */
  int attached;         /* a host's loop (Rill.attach_loop) */
  int stopped;          /* Loop#stop while Rill.run drives it */
  int running;          /* inside Rill.run or a run_* of Rill::Loop.new's loop */
  int owned;            /* Rill::Loop.new's: between runs its own object marks
                         * its pending tasks and callbacks, not the registry,
                         * so an abandoned loop is collected (and closed) */
  double slow_duration; /* debug mode's threshold (rill_loop_set_slow_duration) */
};

/* The registry (module.c) marks everything on these lists. */
extern rtask *pending_head;
extern rcb *cb_head;
extern rloop *loops_head;
extern VALUE report_exc; /* handed from a report site to the handler */

/* Fiber slots: each started, unfinished task holds one fiber stack (two
 * memory maps: stack + guard page). Past the cap, tasks wait to start. */
extern long live_fibers;
extern VALUE *idle_fibers;
extern long idle_n;
extern VALUE idle_owner; /* the thread the idle fibers belong to */
extern long fiber_cap;   /* 0 until computed */

/* Reports made while Ruby cannot run (during GC), delivered later. */
/* (lp: the Rill::Loop at the time, kept alive by the registry: the core
 * loop itself may be freed before the report is delivered) */
typedef struct rr_report { char *msg; rloop *lp; struct rr_report *next; } rr_report;
extern rr_report *deferred_reports;

/* swig/ruby.i: the handle of a SWIG Rill::Ext::Loop (is_loop) or Future, else NULL */
void *rr_swig_pointer(VALUE obj, int is_loop);

/* embed.c */
void rr_init_embed(VALUE mExt);

/* errors.c */
VALUE rr_exception(int code, const char *msg);
void rr_init_errors(VALUE mExt);
VALUE rr_error_for(int code);
VALUE rr_exc_new(VALUE klass, const char *msg);
void rr_raise(int code);
VALUE rr_future_exception(rill_future *f, int code);

/* fiber.c */
long rr_compute_fiber_cap(void);
void slotq_remove(rtask *rt);
int idle_usable(void);
VALUE idle_pop(void);
void trim_idle(void);
void slot_release(rtask *rt);

/* future.c */
VALUE rr_fut_wrap(rill_future *f, VALUE src, VALUE kids);
rill_future *rr_future_of(VALUE obj);
void rr_wait(rill_future *f, const char *what);
VALUE rr_outcome(VALUE obj, rill_future *f, int raise_errors);
void rr_init_future(VALUE mExt);

/* gather.c */
void rr_init_gather(VALUE mExt);

/* group.c */
void rr_init_group(VALUE mExt);

/* loop.c */
rloop *rr_loop_wrap(rill_loop *loop, int attached);
void rr_loop_link(rloop *lp);
void rr_loop_unlink(rloop *lp);
rloop *rr_loop_of(rill_loop *loop);
rloop *rr_loop_get(VALUE obj);
rloop *rr_running_loop(void);
void rr_flush_reports(void);
void rr_init_loop(VALUE mExt);

/* module.c */
void rr_init(VALUE mExt);

/* scheduler.c */
void rr_init_scheduler(VALUE mExt);

/* sync.c */
void rr_init_sync(VALUE mExt);

/* task.c */
extern const rb_data_type_t task_type;
rtask *rr_task_get(VALUE obj);
rtask *rr_current_rtask(const char *what);
VALUE rr_spawn(rloop *lp, VALUE block, VALUE name);
void rr_init_task(VALUE mExt);

/* timeout.c */
void rr_init_timeout(VALUE mExt);
#endif
