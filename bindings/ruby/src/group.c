/* bindings/ruby/src/group.c - Task groups of the running task. */
#include "rill_ruby.h"

typedef struct { rill_group *g; VALUE kids; } rgroup;
static void group_mark(void *p) { rb_gc_mark_movable(((rgroup *)p)->kids); }
static void group_compact(void *p) { rgroup *r = p; r->kids = rb_gc_location(r->kids); }
static void group_free(void *p) { rgroup *r = p; rill_group_release(r->g); free(r); }
static const rb_data_type_t group_type = {
  .wrap_struct_name = "rill/group",
  .function = {.dmark = group_mark, .dfree = group_free, .dsize = NULL, .dcompact = group_compact},
};

/* Rill::Ext.group_new -> Group (parent: the current task) */
static VALUE m_group_new(VALUE self) {
  (void)self;
  rtask *rt = rr_current_rtask("Rill.task_group");
  rgroup *r = calloc(1, sizeof *r);
  if (!r) rb_raise(rb_eNoMemError, "out of memory");
  r->kids = Qnil;
  VALUE obj = TypedData_Wrap_Struct(cGroup, &group_type, r);
  r->kids = rb_ary_new();
  r->g = rill_group_new(rill_future_loop(rill_task_future(rt->task)), rt->task);
  if (!r->g) rr_raise(rill_last_error());
  return obj;
}
static VALUE group_add(VALUE self, VALUE task) {
  rgroup *r = rb_check_typeddata(self, &group_type);
  rtask *rt = rr_task_get(task);
  rb_ary_push(r->kids, task);
  int rc = rill_group_add(r->g, rt->task);
  if (rc) rr_raise(rc);
  return task;
}
/* Leaves the group (asyncio's TaskGroup.__aexit__, the core's rule):
 * the body's code in, the group's outcome out (0, ECANCELLED or EGROUP). */
static VALUE group_exit(VALUE self, VALUE body_rc) {
  rgroup *r = rb_check_typeddata(self, &group_type);
  rill_future *x = rill_group_exit(r->g, NUM2INT(body_rc));
  if (!x) rr_raise(rill_last_error());
  int await_rc = 0;
  if (rill_future_done(x) != 1) { /* awaited once: a cancel never ends it early */
    rtask *rt = rr_current_rtask("task group exit");
    int rc = rill_task_wait(rt->task, x);
    if (rc) rr_raise(rc);
    rb_fiber_yield(0, NULL);
    if (rill_task_cancel_requested(rt->task) == 1) await_rc = RILL_ECANCELLED;
  }
  return INT2NUM(rill_group_exit_result(r->g, await_rc));
}

/* The exit's errors in the core's order; the body's own is body_error. */
static VALUE group_errors(VALUE self, VALUE body_error) {
  rgroup *r = rb_check_typeddata(self, &group_type);
  size_t n = rill_group_exit_error_count(r->g);
  VALUE out = rb_ary_new();
  for (size_t i = 0; i < n; i++) {
    rill_task *t = NULL;
    if (rill_group_exit_error(r->g, i, &t) < 0) continue;
    rtask *rt = t ? (rtask *)rill_task_arg(t) : NULL;
    if (!t) rb_ary_push(out, body_error);
    else if (rt && rt->magic == RR_MAGIC && rt->failed) rb_ary_push(out, rt->result);
    else rb_ary_push(out, rr_future_exception(rill_task_future(t), rill_future_error(rill_task_future(t))));
  }
  return out;
}

void rr_init_group(VALUE mExt) {
  rb_define_method(cGroup, "add", group_add, 1);
  rb_define_method(cGroup, "exit", group_exit, 1);
  rb_define_method(cGroup, "errors", group_errors, 1);
  rb_define_module_function(mExt, "group_new", m_group_new, 0);
}
