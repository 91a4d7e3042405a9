/* bindings/ruby/src/scheduler.c - the waits of Rill::Scheduler (Ruby's Fiber::Scheduler, lib/rill.rb) on the core: fd readiness, block/unblock, DNS. */
#include "rill_ruby.h"
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

static VALUE cWaker;

/* Awaits f (the caller's reference) from the task rt, whose fiber is the
 * current one: returns f's state once it is done (the caller reads and
 * releases f); a cancel of the task releases f and raises CancelledError
 * (the core cancelled f: an fd watch stops, a wait_for ends). */
static int sched_await(rtask *rt, rill_future *f) {
  if (rill_future_done(f) == 1) return rill_future_state(f);
  int rc = rill_task_wait(rt->task, f);
  if (rc) {
    rill_future_cancel(f);
    rill_future_release(f);
    rr_raise(rc);
  }
  rt->sync_wait = f; /* released by ruby_task_done if the fiber never returns */
  rb_fiber_yield(0, NULL);
  rt->sync_wait = NULL;
  if (rill_task_cancel_requested(rt->task) == 1) {
    VALUE exc = rr_exc_new(eCancelled, rill_task_cancel_message(rt->task));
    rill_future_release(f);
    rb_exc_raise(exc);
  }
  return rill_future_state(f);
}

/* A failed f (released here) as its exception, unless it is code (then 0). */
static int fail_unless(rill_future *f, int code) {
  int got = rill_future_error(f); /* retrieved */
  if (got == code) return 0;
  VALUE exc = rr_exception(got, rill_future_error_message(f));
  rill_future_release(f);
  rb_exc_raise(exc);
  return got;
}

/* Ruby's IO event bits (IO::READABLE, IO::PRIORITY, IO::WRITABLE). */
enum { RB_IO_READABLE = 1, RB_IO_PRIORITY = 2, RB_IO_WRITABLE = 4 };

/* Rill::Ext.io_wait(fd, events, timeout_or_nil) -> the events ready, or
 * false when the timeout passed first (Fiber::Scheduler#io_wait). */
static VALUE m_io_wait(VALUE self, VALUE fdv, VALUE eventsv, VALUE timeout) {
  (void)self;
  int fd = NUM2INT(fdv), events = NUM2INT(eventsv);
  double secs = NIL_P(timeout) ? RILL_FOREVER : NUM2DBL(timeout);
  if (isnan(secs)) rb_raise(rb_eArgError, "io_wait: timeout is NaN");
  rtask *rt = rr_current_rtask("io_wait");
  rill_loop *loop = rt->lp->loop;
  int want = (events & (RB_IO_READABLE | RB_IO_PRIORITY) ? RILL_READABLE : 0) |
             (events & RB_IO_WRITABLE ? RILL_WRITABLE : 0);
  if (secs <= 0) { /* a probe (IO#wait_readable(0)): readiness now, no wait */
    struct pollfd pfd = {.fd = fd, .events = (short)((want & RILL_READABLE ? POLLIN : 0) |
                                                     (want & RILL_WRITABLE ? POLLOUT : 0)), .revents = 0};
    if (poll(&pfd, 1, 0) < 0) rb_sys_fail("poll");
    if (pfd.revents & POLLNVAL) rb_syserr_fail(EBADF, "io_wait");
    int ready = (pfd.revents & (POLLIN | POLLHUP | POLLERR) ? RILL_READABLE : 0) |
                (pfd.revents & (POLLOUT | POLLERR) ? RILL_WRITABLE : 0);
    int r = (ready & RILL_READABLE ? events & (RB_IO_READABLE | RB_IO_PRIORITY) : 0) |
            (ready & RILL_WRITABLE ? events & RB_IO_WRITABLE : 0);
    return r ? INT2NUM(r) : Qfalse;
  }
  rill_future *f = rill_fd_wait(loop, fd, want);
  if (!f) rr_raise(rill_last_error());
  if (!NIL_P(timeout)) {
    rill_future *g = rill_wait_for(loop, f, secs);
    rill_future_release(f);
    if (!g) rr_raise(rill_last_error());
    f = g;
  }
  int st = sched_await(rt, f);
  if (st != RILL_DONE) {
    fail_unless(f, RILL_ETIMEDOUT);
    rill_future_release(f);
    return Qfalse;
  }
  int64_t ready = 0;
  rill_future_int(f, &ready);
  rill_future_release(f);
  int r = (ready & RILL_READABLE ? events & (RB_IO_READABLE | RB_IO_PRIORITY) : 0) |
          (ready & RILL_WRITABLE ? events & RB_IO_WRITABLE : 0);
  return INT2NUM(r ? r : events);
}

/* ---- block / unblock ----
 * A Waker is the future one blocked fiber waits on. Fiber::Scheduler#unblock
 * may come from any thread (a Mutex unlocked, a Queue pushed, a Thread
 * ended there): the future is then completed on the loop's thread through
 * rill_call_soon_threadsafe. Every reference count here changes with the
 * GVL held (Ruby threads, the loop's callbacks, GC), so plain ints do. */
typedef struct rwaker {
  int refs;
  rill_future *f;
  rloop *lp;
  VALUE loop_obj; /* keeps lp */
} rwaker;

static void waker_unref(void *p) {
  rwaker *w = p;
  if (--w->refs > 0) return;
  rill_future_release(w->f);
  free(w);
}
static void waker_mark(void *p) { rb_gc_mark_movable(((rwaker *)p)->loop_obj); }
static void waker_compact(void *p) {
  rwaker *w = p;
  w->loop_obj = rb_gc_location(w->loop_obj);
}
static const rb_data_type_t waker_type = {
  .wrap_struct_name = "rill/waker",
  .function = {.dmark = waker_mark, .dfree = waker_unref, .dsize = NULL, .dcompact = waker_compact},
};

static void waker_fire(void *p) {
  rwaker *w = p;
  if (rill_future_done(w->f) == 0) rill_future_set_bool(w->f, 1);
}

/* Waker#wake: from any thread; true if the wake-up was sent. */
static VALUE waker_wake(VALUE self) {
  rwaker *w = rb_check_typeddata(self, &waker_type);
  if (!w->lp->loop) return Qfalse; /* the loop ended */
  if (rill_loop_current() == w->lp->loop) {
    waker_fire(w);
    return Qtrue;
  }
  w->refs++;
  if (rill_call_soon_threadsafe(w->lp->loop, waker_fire, w, waker_unref)) {
    w->refs--;
    return Qfalse;
  }
  return Qtrue;
}

/* Rill::Ext.block_wait(blocked, timeout_or_nil) -> true once woken, false
 * when the timeout passed first. The Waker goes into blocked (a Hash,
 * keyed by the current fiber) before anything can switch threads, so an
 * unblock that comes at once finds it. */
static VALUE m_block_wait(VALUE self, VALUE blocked, VALUE timeout) {
  (void)self;
  double secs = NIL_P(timeout) ? RILL_FOREVER : NUM2DBL(timeout);
  if (isnan(secs)) rb_raise(rb_eArgError, "block: timeout is NaN");
  Check_Type(blocked, T_HASH);
  rtask *rt = rr_current_rtask("Fiber scheduler block");
  rwaker *w = calloc(1, sizeof *w);
  if (!w) rb_raise(rb_eNoMemError, "out of memory");
  w->loop_obj = rt->lp->self;
  w->lp = rt->lp;
  w->refs = 1;
  VALUE wobj = TypedData_Wrap_Struct(cWaker, &waker_type, w);
  w->f = rill_future_new(rt->lp->loop);
  if (!w->f) rr_raise(rill_last_error());
  rill_future *g = NIL_P(timeout) ? rill_future_retain(w->f) : rill_wait_for(rt->lp->loop, w->f, secs);
  if (!g) rr_raise(rill_last_error());
  rb_hash_aset(blocked, rb_fiber_current(), wobj);
  int st = sched_await(rt, g);
  if (st != RILL_DONE) fail_unless(g, RILL_ETIMEDOUT);
  rill_future_release(g);
  RB_GC_GUARD(wobj);
  return st == RILL_DONE ? Qtrue : Qfalse;
}

/* Rill::Ext.address_resolve(host) -> ["addr", ...] (numeric, as
 * getaddrinfo orders them, without repeats), nil if the name does not
 * exist; resolved on the loop's thread pool (rill_getaddrinfo). */
static VALUE m_address_resolve(VALUE self, VALUE host) {
  (void)self;
  const char *name = StringValueCStr(host);
  rtask *rt = rr_current_rtask("address_resolve");
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rill_future *f = rill_getaddrinfo(rt->lp->loop, name, NULL, &hints);
  if (!f) rr_raise(rill_last_error());
  if (sched_await(rt, f) != RILL_DONE) {
    fail_unless(f, RILL_ENOHOST);
    rill_future_release(f);
    return Qnil;
  }
  VALUE list = rb_ary_new();
  for (const struct addrinfo *ai = rill_future_addrinfo(f); ai; ai = ai->ai_next) {
    char buf[NI_MAXHOST];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof buf, NULL, 0, NI_NUMERICHOST)) continue;
    VALUE s = rb_str_new_cstr(buf);
    if (!RTEST(rb_ary_includes(list, s))) rb_ary_push(list, s);
  }
  rill_future_release(f);
  return list;
}

void rr_init_scheduler(VALUE mExt) {
  cWaker = rb_define_class_under(mExt, "Waker", rb_cObject);
  rb_undef_alloc_func(cWaker);
  rb_define_method(cWaker, "wake", waker_wake, 0);
  rb_define_module_function(mExt, "io_wait", m_io_wait, 3);
  rb_define_module_function(mExt, "block_wait", m_block_wait, 2);
  rb_define_module_function(mExt, "address_resolve", m_address_resolve, 1);
}
