/* bindings/ruby/src/embed.c - Embedding: a host's loop (attach_loop, spawn_on) and futures by address.
 *
 * The same shape as the Lua binding's (bindings/lua/README.md): a program
 * that owns a rill_loop (C, C++, or Ruby through Rill::Ext::Loop) lets Ruby
 * tasks run on it; it runs the loop itself, on a Ruby thread. */
#include "rill_ruby.h"

/* An address: an Integer, or this module's SWIG object (Rill::Ext::Loop /
 * Rill::Ext::Future). */
static void *rr_address(VALUE obj, int is_loop) {
  void *p = NULL;
  if (RB_INTEGER_TYPE_P(obj)) p = (void *)(uintptr_t)NUM2ULL(obj);
  else if (!(p = rr_swig_pointer(obj, is_loop)))
    rb_raise(rb_eTypeError, "expected an address (Integer) or a Rill::Ext::%s, got %s",
             is_loop ? "Loop" : "Future", rb_obj_classname(obj));
  if (!p) rb_raise(rb_eArgError, "NULL address");
  return p;
}

/* Rill.attach_loop(address) -> Rill::Loop: the host's rill_loop*, never
 * closed or freed here. The same Loop object for the same open loop. */
static VALUE m_attach_loop(VALUE self, VALUE address) {
  (void)self;
  rill_loop *loop = rr_address(address, 1);
  if (rill_loop_is_closed(loop) != 0) rb_raise(eError, "the loop is closed");
  rloop *lp = rr_loop_of(loop);
  if (!lp) lp = rr_loop_wrap(loop, 1);
  return lp->self;
}

/* Rill::Ext.spawn_on(loop, block, name) -> Rill::Task on that loop. */
static VALUE m_spawn_on(VALUE self, VALUE loop, VALUE block, VALUE name) {
  (void)self;
  if (!rb_obj_is_proc(block)) rb_raise(rb_eArgError, "Rill.spawn_on needs a block");
  return rr_spawn(rr_loop_get(loop), block, name);
}

/* Rill.future_address(task_or_future) -> Integer: its rill_future*
 * (borrowed: the host keeps it with rill_future_retain). */
static VALUE m_future_address(VALUE self, VALUE obj) {
  (void)self;
  return ULL2NUM((uintptr_t)rr_future_of(obj));
}

/* Rill.wrap_future(address) -> Rill::Future holding its own reference. */
static VALUE m_wrap_future(VALUE self, VALUE address) {
  (void)self;
  rill_future *f = rr_address(address, 0);
  return rr_fut_wrap(rill_future_retain(f), Qnil, Qnil);
}

void rr_init_embed(VALUE mExt) {
  (void)mExt;
  rb_define_module_function(mRill, "attach_loop", m_attach_loop, 1);
  rb_define_module_function(mExt, "spawn_on", m_spawn_on, 3);
  rb_define_module_function(mRill, "future_address", m_future_address, 1);
  rb_define_module_function(mRill, "wrap_future", m_wrap_future, 1);
}
