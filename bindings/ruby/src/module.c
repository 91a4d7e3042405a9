/* bindings/ruby/src/module.c - The module: classes, the GC registry of everything C holds, diagnostics, Init. */
#include "rill_ruby.h"

VALUE mRill, cTask, cFuture, cLoop, cHandle, cTimeout, cGroup;
VALUE eError, eCancelled, eTimeout, eFiberError;
ID id_call;
const char rr_tag = 'R';
rtask *pending_head;
rcb *cb_head;
rloop *loops_head;
VALUE report_exc = Qnil;
rr_report *deferred_reports;
static VALUE registry;

/* A task or callback of Rill::Loop.new's loop between two runs: marked by
 * that loop's object (loop.c), so that an abandoned loop can be collected.
 * Except a task suspended mid-body: its fiber must not die unwound (Ruby
 * cannot run it during GC, and a fiber dropped inside IO#read leaves its
 * node in the VM's list of fds being waited on, which then corrupts the
 * next close): it keeps its loop alive (task_mark) until #close. */
#define RR_LOOP_MARKS(lp) ((lp) && (lp)->owned && !(lp)->active)

static void registry_mark(void *p) {
  (void)p;
  for (rtask *rt = pending_head; rt; rt = rt->next)
    if (!RR_LOOP_MARKS(rt->lp) || (rt->started && !rt->finished)) rb_gc_mark_movable(rt->self);
  for (rcb *c = cb_head; c; c = c->next)
    if (!RR_LOOP_MARKS(c->lp)) rb_gc_mark_movable(c->proc);
  for (rloop *lp = loops_head; lp; lp = lp->next) rb_gc_mark_movable(lp->self);
  rb_gc_mark_movable(report_exc);
  for (rr_report *r = deferred_reports; r; r = r->next)
    if (r->lp) rb_gc_mark_movable(r->lp->self);
  for (long i = 0; i < idle_n; i++) rb_gc_mark_movable(idle_fibers[i]);
  rb_gc_mark_movable(idle_owner);
}
static void registry_compact(void *p) {
  (void)p;
  for (rtask *rt = pending_head; rt; rt = rt->next) rt->self = rb_gc_location(rt->self);
  for (rcb *c = cb_head; c; c = c->next) c->proc = rb_gc_location(c->proc);
  for (rloop *lp = loops_head; lp; lp = lp->next) lp->self = rb_gc_location(lp->self);
  report_exc = rb_gc_location(report_exc);
  for (rr_report *r = deferred_reports; r; r = r->next)
    if (r->lp) r->lp->self = rb_gc_location(r->lp->self);
  for (long i = 0; i < idle_n; i++) idle_fibers[i] = rb_gc_location(idle_fibers[i]);
  idle_owner = rb_gc_location(idle_owner);
}
static const rb_data_type_t registry_type = {
  .wrap_struct_name = "rill/registry",
  .function = {.dmark = registry_mark, .dfree = NULL, .dsize = NULL, .dcompact = registry_compact},
};

/* Diagnostics: live fibers, the cap, queued tasks. */
static VALUE m_fiber_stats(VALUE self) {
  (void)self;
  long q = 0;
  for (rloop *lp = loops_head; lp; lp = lp->next)
    for (rtask *rt = lp->slotq_head; rt; rt = rt->qnext) q++;
  VALUE h = rb_hash_new();
  rb_hash_aset(h, ID2SYM(rb_intern("live")), LONG2NUM(live_fibers));
  if (!fiber_cap) fiber_cap = rr_compute_fiber_cap();
  rb_hash_aset(h, ID2SYM(rb_intern("cap")), LONG2NUM(fiber_cap));
  rb_hash_aset(h, ID2SYM(rb_intern("queued")), LONG2NUM(q));
  rb_hash_aset(h, ID2SYM(rb_intern("idle")), LONG2NUM(idle_n));
  return h;
}
static VALUE m_set_fiber_cap(VALUE self, VALUE n) {
  (void)self;
  long v = NUM2LONG(n);
  if (v < 1) rb_raise(rb_eArgError, "the fiber cap must be >= 1");
  fiber_cap = v;
  return n;
}
static VALUE m_pending_count(VALUE self) {
  (void)self;
  long n = 0;
  for (rtask *rt = pending_head; rt; rt = rt->next) n++;
  long c = 0;
  for (rcb *cb = cb_head; cb; cb = cb->next) c++;
  return rb_assoc_new(LONG2NUM(n), LONG2NUM(c));
}

static VALUE m_strerror(VALUE self, VALUE code) {
  (void)self;
  return rb_str_new_cstr(rill_strerror(NUM2INT(code)));
}

void rr_init(VALUE mExtMod) {
  id_call = rb_intern("call");
  mRill = rb_define_module("Rill");
  eError = rb_define_class_under(mRill, "Error", rb_eStandardError);
  eCancelled = rb_define_class_under(mRill, "CancelledError", rb_eException);
  eTimeout = rb_define_class_under(mRill, "TimeoutError", rb_eStandardError);

  eFiberError = rb_const_get(rb_cObject, rb_intern("FiberError"));
  /* Non-NULL data: the GC skips dmark/dcompact of a T_DATA whose pointer is NULL. */
  static int registry_anchor;
  registry = TypedData_Wrap_Struct(rb_cObject, &registry_type, &registry_anchor);
  rb_gc_register_mark_object(registry);

  cTask = rb_define_class_under(mRill, "Task", rb_cObject);
  rb_undef_alloc_func(cTask);

  cFuture = rb_define_class_under(mRill, "Future", rb_cObject);
  rb_undef_alloc_func(cFuture);

  cLoop = rb_define_class_under(mRill, "Loop", rb_cObject);
  rb_undef_alloc_func(cLoop);

  cHandle = rb_define_class_under(mRill, "Handle", rb_cObject);
  rb_undef_alloc_func(cHandle);

  cTimeout = rb_define_class_under(mExtMod, "Timeout", rb_cObject);
  rb_undef_alloc_func(cTimeout);

  cGroup = rb_define_class_under(mExtMod, "Group", rb_cObject);
  rb_undef_alloc_func(cGroup);

  rb_define_const(mRill, "VERSION", rb_str_new_cstr(rill_version_string()));
  rb_define_module_function(mExtMod, "strerror", m_strerror, 1);
  rb_define_module_function(mExtMod, "fiber_stats", m_fiber_stats, 0);
  rb_define_module_function(mExtMod, "fiber_cap=", m_set_fiber_cap, 1);
  rb_define_module_function(mExtMod, "registry_counts", m_pending_count, 0);

  rr_init_embed(mExtMod);
  rr_init_errors(mExtMod);
  rr_init_future(mExtMod);
  rr_init_gather(mExtMod);
  rr_init_group(mExtMod);
  rr_init_loop(mExtMod);
  rr_init_scheduler(mExtMod);
  rr_init_sync(mExtMod);
  rr_init_task(mExtMod);
  rr_init_timeout(mExtMod);
}
