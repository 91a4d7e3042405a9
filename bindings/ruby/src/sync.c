/* bindings/ruby/src/sync.c - Rill::Event, Mutex, Semaphore, Condition, Barrier and the queues: TypedData over the core's sync primitives. */
#include "rill_ruby.h"

/* Each object holds one reference to its core primitive, taken on the
 * running loop by #initialize (the primitive belongs to that loop) and
 * dropped by the free function. A wait asks the core for a future, which
 * is DONE at once when uncontended (no yield); otherwise the task's fiber
 * waits on it with rill_task_wait, as Rill.sleep / Task#value do. Every
 * asyncio rule (FIFO, no barging, hand-offs passed on by a cancelled
 * waiter, shutdown) is the core's. */

VALUE cEvent, cMutex, cSemaphore, cBoundedSemaphore, cCondition, cBarrier;
VALUE cQueue, cLimitedQueue, cLifoQueue, cPriorityQueue, eBrokenBarrier;

/* ---- Ruby objects travelling through a queue ---- */

/* nil, true/false, Integer (int64), Float and String travel as the core's
 * native kinds (so other languages read them); any other object as a
 * pointer to a box with this tag, kept alive by the list below until the
 * core frees the box (a get future, a dropped item, a closed queue). */
static const char box_tag = 'B';
#define BOX_TAG ((const void *)&box_tag)
typedef struct rbox {
  VALUE obj;
  struct rbox *prev, *next;
} rbox;
static rbox *box_head;
static long box_count;

/* free_p of a boxed item: never calls Ruby (may run during GC sweep). */
static void box_free(void *p) {
  rbox *b = p;
  if (b->prev) b->prev->next = b->next;
  else box_head = b->next;
  if (b->next) b->next->prev = b->prev;
  box_count--;
  free(b);
}
static rbox *box_new(VALUE obj) {
  rbox *b = malloc(sizeof *b);
  if (!b) rb_raise(rb_eNoMemError, "out of memory");
  b->obj = obj;
  b->prev = NULL;
  b->next = box_head;
  if (box_head) box_head->prev = b;
  box_head = b;
  box_count++;
  return b;
}
static void boxes_mark(void *p) {
  (void)p;
  for (rbox *b = box_head; b; b = b->next) rb_gc_mark_movable(b->obj);
}
static void boxes_compact(void *p) {
  (void)p;
  for (rbox *b = box_head; b; b = b->next) b->obj = rb_gc_location(b->obj);
}
static const rb_data_type_t boxes_type = {
  .wrap_struct_name = "rill/sync-values",
  .function = {.dmark = boxes_mark, .dfree = NULL, .dsize = NULL, .dcompact = boxes_compact},
};

/* A Ruby value as a queue item. */
typedef struct rval {
  int kind;
  int64_t i;
  double d;
  const char *bytes;
  size_t len;
  rbox *box;
} rval;

static void val_from_ruby(VALUE v, rval *out) {
  memset(out, 0, sizeof *out);
  switch (TYPE(v)) {
  case T_NIL: out->kind = RILL_NONE; return;
  case T_TRUE: out->kind = RILL_BOOL; out->i = 1; return;
  case T_FALSE: out->kind = RILL_BOOL; out->i = 0; return;
  case T_FIXNUM: out->kind = RILL_INT; out->i = (int64_t)FIX2LONG(v); return;
  case T_BIGNUM: {
    int64_t i = 0;
    /* outside int64: boxed, so it comes back as the same Integer */
    int sign = rb_integer_pack(v, &i, 1, sizeof i, 0, INTEGER_PACK_NATIVE_BYTE_ORDER | INTEGER_PACK_2COMP);
    if (sign == 2 || sign == -2) break;
    out->kind = RILL_INT;
    out->i = i;
    return;
  }
  case T_FLOAT: out->kind = RILL_DOUBLE; out->d = RFLOAT_VALUE(v); return;
  case T_STRING:
    out->kind = RILL_BYTES;
    out->bytes = RSTRING_PTR(v);
    out->len = (size_t)RSTRING_LEN(v);
    return;
  default: break;
  }
  out->kind = RILL_POINTER;
  out->box = box_new(v);
}

/* The value of a DONE get future (which owns it). */
static VALUE val_to_ruby(rill_future *f) {
  switch (rill_future_kind(f)) {
  case RILL_NONE: return Qnil;
  case RILL_BOOL: { int b = 0; rill_future_bool(f, &b); return b ? Qtrue : Qfalse; }
  case RILL_INT: { int64_t i = 0; rill_future_int(f, &i); return LL2NUM(i); }
  case RILL_DOUBLE: { double d = 0; rill_future_double(f, &d); return DBL2NUM(d); }
  case RILL_BYTES: {
    size_t n = 0;
    const void *p = rill_future_bytes(f, &n);
    return rb_str_new(p, (long)n); /* binary (ASCII-8BIT) */
  }
  case RILL_POINTER: {
    rbox *b = rill_future_pointer(f, BOX_TAG);
    if (b) return b->obj;
    return Qundef;
  }
  default: return Qundef;
  }
}

/* ---- the objects ---- */

typedef struct rsync {
  void *h;    /* the core primitive (a reference), NULL before #initialize */
  VALUE lock; /* a Condition's Rill::Mutex, else Qnil */
} rsync;

static void sync_mark(void *p) { rb_gc_mark_movable(((rsync *)p)->lock); }
static void sync_compact(void *p) { rsync *s = p; s->lock = rb_gc_location(s->lock); }
static size_t sync_memsize(const void *p) { (void)p; return sizeof(rsync); }

/* The free functions drop the core reference; the core never calls Ruby
 * back from a release (a boxed item's free is box_free). */
#define RR_SYNC_TYPE(name, release)                                                        \
  static void name##_free(void *p) {                                                       \
    rsync *s = p;                                                                          \
    release(s->h);                                                                         \
    free(s);                                                                               \
  }                                                                                        \
  static const rb_data_type_t name##_type = {                                              \
    .wrap_struct_name = "rill/" #name,                                                     \
    .function = {.dmark = sync_mark, .dfree = name##_free, .dsize = sync_memsize,         \
                 .dcompact = sync_compact},                                                \
  };                                                                                       \
  static VALUE name##_alloc(VALUE klass) {                                                 \
    rsync *s = calloc(1, sizeof *s);                                                       \
    if (!s) rb_raise(rb_eNoMemError, "out of memory");                                     \
    s->lock = Qnil;                                                                        \
    return TypedData_Wrap_Struct(klass, &name##_type, s);                                  \
  }                                                                                        \
  static void *name##_of(VALUE self) {                                                     \
    rsync *s = rb_check_typeddata(self, &name##_type);                                     \
    if (!s->h) rb_raise(eError, "%s is not initialized", rb_obj_classname(self));          \
    return s->h;                                                                           \
  }

RR_SYNC_TYPE(event, rill_event_release)
RR_SYNC_TYPE(mutex, rill_lock_release)
RR_SYNC_TYPE(semaphore, rill_semaphore_release)
RR_SYNC_TYPE(condition, rill_condition_release)
RR_SYNC_TYPE(barrier, rill_barrier_release)
RR_SYNC_TYPE(queue, rill_queue_release)

/* The running loop for a new primitive; raises outside Rill.run. */
static rill_loop *new_on_loop(VALUE self, rsync *s) {
  if (s->h) rb_raise(eError, "%s is already initialized", rb_obj_classname(self));
  rill_loop *loop = rill_loop_current();
  if (!loop) rb_raise(eError, "%s.new outside Rill.run (a primitive belongs to a running loop)",
                      rb_obj_classname(self));
  return loop;
}
static void check_new(void *h) {
  if (!h) rr_raise(rill_last_error());
}

/* A non-negative count from an Integer (TypeError for other classes). */
static int count_arg(VALUE v, const char *what) {
  if (!RB_INTEGER_TYPE_P(v)) rb_raise(rb_eTypeError, "%s must be an Integer, got %s", what, rb_obj_classname(v));
  return NUM2INT(v);
}

static VALUE check_rc(int rc) {
  if (rc < 0) rr_raise(rc);
  return Qnil;
}

/* Gives up f: a wait that will not be awaited leaves its queue. */
static void drop_wait(rill_future *f) {
  rill_future_cancel(f);
  rill_future_release(f);
}

/* Awaits f (a reference handed to us) from the current task: returns f
 * DONE (the caller reads and releases it), or releases it and raises:
 * CancelledError if the task was cancelled (what the wait was handed is
 * passed on by the core), else the failure's exception. */
static rill_future *await_sync(rill_future *f, const char *what) {
  if (!f) rr_raise(rill_last_error());
  if (rill_future_done(f) != 1) {
    rill_task *t = rill_current_task();
    rtask *rt = t ? (rtask *)rill_task_arg(t) : NULL;
    if (!rt || rt->magic != RR_MAGIC || rt->task != t || rt->fiber != rb_fiber_current()) {
      drop_wait(f);
      rr_current_rtask(what); /* raises why */
      rb_raise(eError, "%s outside a Rill task", what);
    }
    int rc = rill_task_wait(t, f);
    if (rc) {
      drop_wait(f);
      rr_raise(rc);
    }
    rt->sync_wait = f; /* released by ruby_task_done if the fiber never returns */
    rb_fiber_yield(0, NULL);
    rt->sync_wait = NULL;
    if (rill_task_cancel_requested(t) == 1) {
      VALUE exc = rr_exc_new(eCancelled, rill_task_cancel_message(t));
      rill_future_release(f);
      rb_exc_raise(exc);
    }
  }
  int st = rill_future_state(f);
  if (st == RILL_DONE) return f;
  int code = rill_future_error(f);
  VALUE exc = rr_exception(code, rill_future_error_message(f));
  rill_future_release(f);
  rb_exc_raise(exc);
  return NULL;
}
static void await_done(rill_future *f, const char *what) { rill_future_release(await_sync(f, what)); }

/* ---- Event ---- */

static VALUE event_init(VALUE self) {
  rsync *s = rb_check_typeddata(self, &event_type);
  rill_loop *loop = new_on_loop(self, s);
  check_new(s->h = rill_event_new(loop));
  return self;
}
static VALUE event_set(VALUE self) { check_rc(rill_event_set(event_of(self))); return Qnil; }
static VALUE event_clear(VALUE self) { check_rc(rill_event_clear(event_of(self))); return Qnil; }
static VALUE event_set_p(VALUE self) {
  int rc = rill_event_is_set(event_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE event_wait(VALUE self) {
  await_done(rill_event_wait(event_of(self)), "Rill::Event#wait");
  return Qtrue;
}

/* ---- Mutex ---- */

static VALUE mutex_init(VALUE self) {
  rsync *s = rb_check_typeddata(self, &mutex_type);
  rill_loop *loop = new_on_loop(self, s);
  check_new(s->h = rill_lock_new(loop));
  return self;
}
static VALUE mutex_lock(VALUE self) {
  await_done(rill_lock_acquire(mutex_of(self)), "Rill::Mutex#lock");
  return self;
}
static VALUE mutex_try_lock(VALUE self) {
  int rc = rill_lock_try_acquire(mutex_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE mutex_unlock(VALUE self) { check_rc(rill_lock_unlock(mutex_of(self))); return self; }
static VALUE mutex_locked_p(VALUE self) {
  int rc = rill_lock_is_locked(mutex_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}

/* ---- Semaphore / BoundedSemaphore ---- */

static VALUE semaphore_init(int argc, VALUE *argv, VALUE self) {
  rsync *s = rb_check_typeddata(self, &semaphore_type);
  if (argc > 1) rb_error_arity(argc, 0, 1);
  int value = argc ? count_arg(argv[0], "the semaphore's value") : 1;
  if (value < 0) rb_raise(rb_eArgError, "the semaphore's value must be >= 0, got %d", value);
  rill_loop *loop = new_on_loop(self, s);
  int bounded = rb_obj_is_kind_of(self, cBoundedSemaphore) ? 1 : 0;
  check_new(s->h = rill_semaphore_new(loop, value, bounded));
  return self;
}
/* Without a block: takes a unit (waiting FIFO) and returns true. With a
 * block: takes a unit, yields, gives it back (even on an exception). */
static VALUE semaphore_release(VALUE self);
static VALUE semaphore_acquire(VALUE self) {
  await_done(rill_semaphore_acquire(semaphore_of(self)), "Rill::Semaphore#acquire");
  if (!rb_block_given_p()) return Qtrue;
  return rb_ensure(rb_yield, Qnil, semaphore_release, self);
}
static VALUE semaphore_release(VALUE self) { check_rc(rill_semaphore_post(semaphore_of(self))); return Qnil; }
static VALUE semaphore_locked_p(VALUE self) {
  int rc = rill_semaphore_is_locked(semaphore_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE semaphore_value(VALUE self) {
  int rc = rill_semaphore_value(semaphore_of(self));
  check_rc(rc);
  return INT2NUM(rc);
}

/* ---- Condition ---- */

static VALUE condition_init(int argc, VALUE *argv, VALUE self) {
  rsync *s = rb_check_typeddata(self, &condition_type);
  if (argc > 1) rb_error_arity(argc, 0, 1);
  VALUE lock = argc ? argv[0] : Qnil;
  if (NIL_P(lock)) lock = rb_class_new_instance(0, NULL, cMutex);
  else if (!rb_obj_is_kind_of(lock, cMutex))
    rb_raise(rb_eTypeError, "the lock must be a Rill::Mutex, got %s", rb_obj_classname(lock));
  rill_lock *l = mutex_of(lock);
  rill_loop *loop = new_on_loop(self, s);
  s->lock = lock;
  check_new(s->h = rill_condition_new(loop, l));
  return self;
}
static VALUE condition_lock(VALUE self) {
  condition_of(self);
  return ((rsync *)DATA_PTR(self))->lock;
}
/* Releases the lock, waits to be notified, takes the lock back (also when
 * cancelled: the lock is held when CancelledError arrives). */
static VALUE condition_wait(VALUE self) {
  await_done(rill_condition_wait(condition_of(self)), "Rill::Condition#wait");
  return Qtrue;
}
static VALUE condition_signal(int argc, VALUE *argv, VALUE self) {
  if (argc > 1) rb_error_arity(argc, 0, 1);
  int n = argc ? count_arg(argv[0], "n") : 1;
  int rc = rill_condition_notify(condition_of(self), n);
  check_rc(rc);
  return INT2NUM(rc);
}
static VALUE condition_broadcast(VALUE self) {
  int rc = rill_condition_notify_all(condition_of(self));
  check_rc(rc);
  return INT2NUM(rc);
}

/* ---- Barrier ---- */

static VALUE barrier_init(VALUE self, VALUE parties) {
  rsync *s = rb_check_typeddata(self, &barrier_type);
  int n = count_arg(parties, "parties");
  if (n < 1) rb_raise(rb_eArgError, "parties must be >= 1, got %d", n);
  rill_loop *loop = new_on_loop(self, s);
  check_new(s->h = rill_barrier_new(loop, n));
  return self;
}
static VALUE barrier_wait(VALUE self) {
  rill_future *f = await_sync(rill_barrier_wait(barrier_of(self)), "Rill::Barrier#wait");
  int64_t i = 0;
  rill_future_int(f, &i);
  rill_future_release(f);
  return LL2NUM(i);
}
static VALUE barrier_abort(VALUE self) { check_rc(rill_barrier_abort(barrier_of(self))); return Qnil; }
static VALUE barrier_reset(VALUE self) { check_rc(rill_barrier_reset(barrier_of(self))); return Qnil; }
static VALUE barrier_broken_p(VALUE self) {
  int rc = rill_barrier_is_broken(barrier_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE barrier_n_waiting(VALUE self) {
  int rc = rill_barrier_n_waiting(barrier_of(self));
  check_rc(rc);
  return INT2NUM(rc);
}
static VALUE barrier_parties(VALUE self) {
  int rc = rill_barrier_parties(barrier_of(self));
  check_rc(rc);
  return INT2NUM(rc);
}

/* ---- Queues ---- */

/* Rill::Queue#initialize(limit = nil): the kind from the class; limit nil
 * or 0 is unbounded. LimitedQueue.new(limit) insists on a limit >= 1. */
static VALUE queue_init(int argc, VALUE *argv, VALUE self) {
  rsync *s = rb_check_typeddata(self, &queue_type);
  if (argc > 1) rb_error_arity(argc, 0, 1);
  VALUE limit = argc ? argv[0] : Qnil;
  int limited = rb_obj_is_kind_of(self, cLimitedQueue) ? 1 : 0;
  if (limited && argc == 0) rb_error_arity(argc, 1, 1);
  int max = 0;
  if (!NIL_P(limit) || limited) {
    max = count_arg(limit, "the queue's limit");
    if (max < (limited ? 1 : 0))
      rb_raise(rb_eArgError, "the queue's limit must be >= %d, got %d", limited ? 1 : 0, max);
  }
  int kind = rb_obj_is_kind_of(self, cPriorityQueue) ? RILL_QUEUE_PRIORITY
             : rb_obj_is_kind_of(self, cLifoQueue)   ? RILL_QUEUE_LIFO
                                                     : RILL_QUEUE_FIFO;
  rill_loop *loop = new_on_loop(self, s);
  check_new(s->h = rill_queue_new(loop, max, kind));
  return self;
}

static rill_future *put_future(rill_queue *q, rval *v, int64_t prio) {
  switch (v->kind) {
  case RILL_NONE: return rill_queue_put_none(q, prio);
  case RILL_BOOL: return rill_queue_put_bool(q, (int)v->i, prio);
  case RILL_INT: return rill_queue_put_int(q, v->i, prio);
  case RILL_DOUBLE: return rill_queue_put_double(q, v->d, prio);
  case RILL_BYTES: return rill_queue_put_bytes(q, v->bytes, v->len, prio);
  default: return rill_queue_put_pointer(q, v->box, box_free, BOX_TAG, prio);
  }
}
static int put_nowait(rill_queue *q, rval *v, int64_t prio) {
  switch (v->kind) {
  case RILL_NONE: return rill_queue_put_nowait_none(q, prio);
  case RILL_BOOL: return rill_queue_put_nowait_bool(q, (int)v->i, prio);
  case RILL_INT: return rill_queue_put_nowait_int(q, v->i, prio);
  case RILL_DOUBLE: return rill_queue_put_nowait_double(q, v->d, prio);
  case RILL_BYTES: return rill_queue_put_nowait_bytes(q, v->bytes, v->len, prio);
  default: return rill_queue_put_nowait_pointer(q, v->box, box_free, BOX_TAG, prio);
  }
}

/* (item, priority: 0): the priority only orders a PriorityQueue. */
static VALUE push_args(int argc, VALUE *argv, int64_t *prio) {
  VALUE item, opts = Qnil;
  rb_scan_args(argc, argv, "1:", &item, &opts);
  *prio = 0;
  if (!NIL_P(opts)) {
    ID kw = rb_intern("priority");
    VALUE p = Qundef;
    rb_get_kwargs(opts, &kw, 0, 1, &p);
    if (p != Qundef) {
      if (!RB_INTEGER_TYPE_P(p)) rb_raise(rb_eTypeError, "priority must be an Integer, got %s", rb_obj_classname(p));
      *prio = NUM2LL(p);
    }
  }
  return item;
}

/* Puts an item, waiting (FIFO among putters) while the queue is full;
 * ClosedQueueError once it is shut down. Returns self. */
static VALUE queue_push(int argc, VALUE *argv, VALUE self) {
  rill_queue *q = queue_of(self);
  int64_t prio;
  VALUE item = push_args(argc, argv, &prio);
  rval v;
  val_from_ruby(item, &v);
  rill_future *f = put_future(q, &v, prio);
  if (!f && v.box) box_free(v.box); /* refused: the box stays ours */
  await_done(f, "Rill::Queue#push");
  return self;
}
static VALUE queue_shovel(VALUE self, VALUE item) { return queue_push(1, &item, self); }
/* Without waiting: ThreadError (queue full), ClosedQueueError. */
static VALUE queue_push_nowait(int argc, VALUE *argv, VALUE self) {
  rill_queue *q = queue_of(self);
  int64_t prio;
  VALUE item = push_args(argc, argv, &prio);
  rval v;
  val_from_ruby(item, &v);
  int rc = put_nowait(q, &v, prio);
  if (rc) {
    if (v.box) box_free(v.box);
    rr_raise(rc);
  }
  return self;
}
static VALUE item_of(rill_future *f) {
  VALUE v = val_to_ruby(f);
  rill_future_release(f); /* frees a box: v is on our stack */
  if (v == Qundef) rb_raise(eError, "the queue item is a value of another language");
  return v;
}
/* Takes the next item, waiting (FIFO among getters) while empty;
 * ClosedQueueError once shut down and empty. */
static VALUE queue_pop(VALUE self) {
  return item_of(await_sync(rill_queue_get(queue_of(self)), "Rill::Queue#pop"));
}
/* Without waiting: ThreadError (empty), ClosedQueueError. */
static VALUE queue_pop_nowait(VALUE self) {
  rill_future *f = rill_queue_get_nowait(queue_of(self));
  if (!f) rr_raise(rill_last_error());
  return item_of(f);
}
static VALUE queue_size(VALUE self) {
  int rc = rill_queue_qsize(queue_of(self));
  check_rc(rc);
  return INT2NUM(rc);
}
static VALUE queue_empty_p(VALUE self) {
  int rc = rill_queue_is_empty(queue_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}
static VALUE queue_full_p(VALUE self) {
  int rc = rill_queue_is_full(queue_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}
/* The limit, nil for an unbounded queue. */
static VALUE queue_limit(VALUE self) {
  int rc = rill_queue_maxsize(queue_of(self));
  check_rc(rc);
  return rc > 0 ? INT2NUM(rc) : Qnil;
}
static VALUE queue_task_done(VALUE self) { check_rc(rill_queue_task_done(queue_of(self))); return Qnil; }
static VALUE queue_join(VALUE self) {
  await_done(rill_queue_join(queue_of(self)), "Rill::Queue#join");
  return Qnil;
}
/* shutdown(immediate: false): puts fail from now on; waiting putters and
 * getters get ClosedQueueError; immediate also drops the items left. */
static VALUE queue_shutdown(int argc, VALUE *argv, VALUE self) {
  VALUE opts = Qnil, imm = Qundef;
  rb_scan_args(argc, argv, "0:", &opts);
  if (!NIL_P(opts)) {
    ID kw = rb_intern("immediate");
    rb_get_kwargs(opts, &kw, 0, 1, &imm);
  }
  check_rc(rill_queue_shutdown(queue_of(self), imm != Qundef && RTEST(imm)));
  return self;
}
static VALUE queue_closed_p(VALUE self) {
  int rc = rill_queue_is_shut_down(queue_of(self));
  check_rc(rc);
  return rc ? Qtrue : Qfalse;
}

/* Rill::Ext.sync_values: Ruby objects held for queue items now (tests). */
static VALUE m_sync_values(VALUE self) {
  (void)self;
  return LONG2NUM(box_count);
}

void rr_init_sync(VALUE mExt) {
  static int boxes_anchor; /* non-NULL data, so the GC calls dmark */
  rb_gc_register_mark_object(TypedData_Wrap_Struct(rb_cObject, &boxes_type, &boxes_anchor));
  rb_define_module_function(mExt, "sync_values", m_sync_values, 0);

  eBrokenBarrier = rb_define_class_under(mRill, "BrokenBarrierError", eError);

  cEvent = rb_define_class_under(mRill, "Event", rb_cObject);
  rb_define_alloc_func(cEvent, event_alloc);
  rb_define_method(cEvent, "initialize", event_init, 0);
  rb_define_method(cEvent, "set", event_set, 0);
  rb_define_method(cEvent, "clear", event_clear, 0);
  rb_define_method(cEvent, "set?", event_set_p, 0);
  rb_define_method(cEvent, "wait", event_wait, 0);

  cMutex = rb_define_class_under(mRill, "Mutex", rb_cObject);
  rb_define_alloc_func(cMutex, mutex_alloc);
  rb_define_method(cMutex, "initialize", mutex_init, 0);
  rb_define_method(cMutex, "lock", mutex_lock, 0);
  rb_define_method(cMutex, "acquire", mutex_lock, 0);
  rb_define_method(cMutex, "unlock", mutex_unlock, 0);
  rb_define_method(cMutex, "release", mutex_unlock, 0);
  rb_define_method(cMutex, "try_lock", mutex_try_lock, 0);
  rb_define_method(cMutex, "locked?", mutex_locked_p, 0);
  rb_define_const(mRill, "Lock", cMutex);

  cSemaphore = rb_define_class_under(mRill, "Semaphore", rb_cObject);
  rb_define_alloc_func(cSemaphore, semaphore_alloc);
  rb_define_method(cSemaphore, "initialize", semaphore_init, -1);
  rb_define_method(cSemaphore, "acquire", semaphore_acquire, 0);
  rb_define_method(cSemaphore, "release", semaphore_release, 0);
  rb_define_method(cSemaphore, "locked?", semaphore_locked_p, 0);
  rb_define_method(cSemaphore, "value", semaphore_value, 0);
  cBoundedSemaphore = rb_define_class_under(mRill, "BoundedSemaphore", cSemaphore);

  cCondition = rb_define_class_under(mRill, "Condition", rb_cObject);
  rb_define_alloc_func(cCondition, condition_alloc);
  rb_define_method(cCondition, "initialize", condition_init, -1);
  rb_define_method(cCondition, "lock", condition_lock, 0);
  rb_define_method(cCondition, "wait", condition_wait, 0);
  rb_define_method(cCondition, "signal", condition_signal, -1);
  rb_define_method(cCondition, "notify", condition_signal, -1);
  rb_define_method(cCondition, "broadcast", condition_broadcast, 0);
  rb_define_method(cCondition, "notify_all", condition_broadcast, 0);

  cBarrier = rb_define_class_under(mRill, "Barrier", rb_cObject);
  rb_define_alloc_func(cBarrier, barrier_alloc);
  rb_define_method(cBarrier, "initialize", barrier_init, 1);
  rb_define_method(cBarrier, "wait", barrier_wait, 0);
  rb_define_method(cBarrier, "abort", barrier_abort, 0);
  rb_define_method(cBarrier, "reset", barrier_reset, 0);
  rb_define_method(cBarrier, "broken?", barrier_broken_p, 0);
  rb_define_method(cBarrier, "n_waiting", barrier_n_waiting, 0);
  rb_define_method(cBarrier, "parties", barrier_parties, 0);

  cQueue = rb_define_class_under(mRill, "Queue", rb_cObject);
  rb_define_alloc_func(cQueue, queue_alloc);
  rb_define_method(cQueue, "initialize", queue_init, -1);
  rb_define_method(cQueue, "push", queue_push, -1);
  rb_define_method(cQueue, "enqueue", queue_push, -1);
  rb_define_method(cQueue, "<<", queue_shovel, 1);
  rb_define_method(cQueue, "push_nowait", queue_push_nowait, -1);
  rb_define_method(cQueue, "pop", queue_pop, 0);
  rb_define_method(cQueue, "dequeue", queue_pop, 0);
  rb_define_method(cQueue, "pop_nowait", queue_pop_nowait, 0);
  rb_define_method(cQueue, "size", queue_size, 0);
  rb_define_method(cQueue, "length", queue_size, 0);
  rb_define_method(cQueue, "empty?", queue_empty_p, 0);
  rb_define_method(cQueue, "full?", queue_full_p, 0);
  rb_define_method(cQueue, "limit", queue_limit, 0);
  rb_define_method(cQueue, "task_done", queue_task_done, 0);
  rb_define_method(cQueue, "join", queue_join, 0);
  rb_define_method(cQueue, "shutdown", queue_shutdown, -1);
  rb_define_method(cQueue, "close", queue_shutdown, -1);
  rb_define_method(cQueue, "closed?", queue_closed_p, 0);
  cLimitedQueue = rb_define_class_under(mRill, "LimitedQueue", cQueue);
  cLifoQueue = rb_define_class_under(mRill, "LifoQueue", cQueue);
  cPriorityQueue = rb_define_class_under(mRill, "PriorityQueue", cQueue);
}
