/* bindings/lua/src/evloop.c - The loop object a Lua program owns (rill.new_loop): run_until_complete, run_forever, stop, step, close, __gc. */
#include "rill_lua.h"

/* Each core.loops().* function takes the loop first: a loop object, or
 * nil for the loop running on this thread (rill.run's, through
 * rill.get_running_loop()). The object's context is a heap rl_ctx freed by
 * the core when the loop closes (rl_ctx_free); between runs its L is the
 * main state, during a run the state that runs it (as core.run's). */

static rl_owned *rl_checkowned(lua_State *L, int idx) {
  rl_owned *o = (rl_owned *)rl_testudata(L, idx, &RL_LOOP_MT);
  if (!o) rl_typeerror(L, idx, "rill loop");
  return o;
}

static int rl_raise(lua_State *L, int code, const char *message) {
  rill_lua_push_error(L, code, message);
  return lua_error(L);
}

static int rl_is_open(rl_owned *o) { return o->loop && rill_loop_is_closed(o->loop) == 0; }

/* The context of the loop at idx (nil: the running one); raises
 * RILL_ECLOSED if it is closed. */
static rl_ctx *rl_loop_ctx(lua_State *L, int idx, const char *what) {
  rl_owned *o;
  rl_ctx *c;
  if (lua_isnoneornil(L, idx)) return rl_need_ctx(L, what);
  o = rl_checkowned(L, idx);
  if (!rl_is_open(o) || !(c = rl_ctx_of(o->loop))) {
    lua_pushfstring(L, "loop:%s() on a closed loop", what);
    return (rl_raise(L, RILL_ECLOSED, lua_tostring(L, -1)), NULL);
  }
  return c;
}

/* Refuses to run c's loop while a loop runs on this thread (RILL_EBUSY, as
 * the core would, but before anything is scheduled). */
static void rl_loop_check_idle(lua_State *L, rl_ctx *c, const char *what) {
  rill_loop *running = rill_loop_current();
  if (running == c->loop) {
    lua_pushfstring(L, "loop:%s(): the loop is already running", what);
    rl_raise(L, RILL_EBUSY, lua_tostring(L, -1));
  }
  if (running) {
    lua_pushfstring(L, "loop:%s(): another loop is running in this thread", what);
    rl_raise(L, RILL_EBUSY, lua_tostring(L, -1));
  }
}

/* Around a run of c's loop: L drives every step, callback and handler of
 * it (as core.run's state does); between runs, the main state. */
static void rl_loop_enter(lua_State *L, rl_ctx *c) { c->L = L; }
static void rl_loop_leave(lua_State *L, rl_ctx *c) { c->L = rl_main(L); }

/* Ctrl+C while a loop object runs (run_until_complete, run_forever): the
 * interpreter's own handler would act only when the main state runs Lua
 * again, after the loop, so rill watches SIGINT meanwhile (unless it is
 * ignored): the loop stops, and the run raises rill.EINTR "interrupted",
 * its tasks left pending (asyncio's KeyboardInterrupt out of
 * run_until_complete). */
static void rl_on_sigint(rill_signal *sig, int signum, void *arg) {
  (void)sig, (void)signum;
  *(int *)arg = 1;
  rill_loop_stop(rill_loop_current());
}

static rill_signal *rl_sigint_watch(rill_loop *loop, int *hit) {
  *hit = 0;
  return rl_sigint_armable() ? rill_signal_start(loop, SIGINT, rl_on_sigint, hit, NULL) : NULL;
}

static void rl_sigint_unwatch(rill_signal *sig) {
  if (!sig) return;
  rill_signal_stop(sig);
  rill_signal_release(sig);
}

/* loops.new() -> a loop object */
static int rl_loop_new(lua_State *L) {
  rl_owned *o = (rl_owned *)lua_newuserdatauv(L, sizeof *o, 0);
  rl_ctx *c;
  o->loop = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_LOOP_MT);
  lua_setmetatable(L, -2); /* from here on __gc frees the loop */
  if (!(o->loop = rill_loop_new())) return rl_raise_last(L);
  if (!(c = (rl_ctx *)malloc(sizeof *c))) return luaL_error(L, "out of memory");
  rl_ctx_init(c, o->loop, rl_main(L), 0);
  rl_ctx_attach(L, c, rl_ctx_free); /* frees c if it fails */
  rill_loop_set_exception_handler(o->loop, rl_exception_handler, c, NULL);
  return 1;
}

/* __gc: a loop never closed is closed and freed here. Lua cannot run in
 * a finalizer, so its pending tasks are destroyed (reported on stderr,
 * "task ... was destroyed while pending"), not cancelled and run down. */
int rl_loop_gc(lua_State *L) {
  rl_owned *o = (rl_owned *)lua_touserdata(L, 1);
  if (o && o->loop) {
    if (rill_loop_is_closed(o->loop) == 0) /* reports to stderr, not a Lua handler */
      rill_loop_set_exception_handler(o->loop, NULL, NULL, NULL);
    rill_loop_free(o->loop);
    o->loop = NULL;
  }
  return 0;
}

/* loops.id(loop) -> the id rill.get_running_loop() sees while it runs */
static int rl_loop_id_of(lua_State *L) {
  const char *what = "id";
  lua_pushinteger(L, (lua_Integer)rl_loop_ctx(L, 1, what)->id);
  return 1;
}

/* loops.run_until(loop, task|future|fn, ...) -> the results, or raises the
 * error (a function is started as a task on the loop first). */
static int rl_loop_run_until(lua_State *L) {
  rl_ctx *c;
  rill_future *f;
  rill_signal *sig;
  int rc, fidx = 2, interrupted;
  const char *what = "run_until_complete";
  c = rl_loop_ctx(L, 1, what);
  rl_loop_check_idle(L, c, what);
  if (lua_type(L, 2) == LUA_TFUNCTION) {
    rl_spawn_at(L, c->loop, 2, lua_gettop(L) - 2);
    fidx = lua_gettop(L);
  } else if (!rl_testudata(L, 2, &RL_FUT_MT)) {
    return rl_typeerror(L, 2, "rill task, future or function");
  }
  f = rl_checkfut(L, fidx);
  sig = rl_sigint_watch(c->loop, &interrupted);
  rl_loop_enter(L, c);
  rc = rill_loop_run_until(c->loop, f);
  rl_loop_leave(L, c);
  rl_sigint_unwatch(sig);
  if (interrupted) return rl_raise(L, RILL_EINTR, "interrupted");
  if (rill_future_done(f) != 1) {
    if (rc == RILL_ESTATE) return rl_raise(L, rc, "the loop stopped before the future was done");
    return rl_raise(L, rc < 0 ? rc : RILL_ESTATE, rl_message_of(rc));
  }
  lua_settop(L, fidx);
  lua_pushcfunction(L, rl_result);
  lua_pushvalue(L, fidx);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L) - fidx;
}

/* loops.run_forever(loop): runs until loop:stop() (asyncio's run_forever:
 * a loop with nothing to do waits, for timers, I/O or other threads). */
static int rl_loop_run_forever(lua_State *L) {
  rl_ctx *c;
  rill_future *never;
  rill_signal *sig;
  int rc, interrupted;
  const char *what = "run_forever";
  c = rl_loop_ctx(L, 1, what);
  rl_loop_check_idle(L, c, what);
  if (!(never = rill_future_new(c->loop))) return rl_raise_last(L);
  sig = rl_sigint_watch(c->loop, &interrupted);
  rl_loop_enter(L, c);
  rc = rill_loop_run_until(c->loop, never); /* RILL_ESTATE: stopped */
  rl_loop_leave(L, c);
  rl_sigint_unwatch(sig);
  rill_future_release(never);
  if (interrupted) return rl_raise(L, RILL_EINTR, "interrupted");
  if (rc < 0 && rc != RILL_ESTATE) return rl_raise(L, rc, rl_message_of(rc));
  return 0;
}

/* loops.step(loop, timeout) -> true: one iteration, waiting at most
 * timeout seconds for work */
static int rl_loop_step(lua_State *L) {
  rl_ctx *c;
  double t = luaL_optnumber(L, 2, 0);
  int rc;
  const char *what = "step";
  c = rl_loop_ctx(L, 1, what);
  if (t != t || t < 0) t = 0;
  rl_loop_check_idle(L, c, what);
  rl_loop_enter(L, c);
  rc = rill_loop_run_once(c->loop, t);
  rl_loop_leave(L, c);
  if (rc < 0) return rl_raise(L, rc, rl_message_of(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* loops.stop(loop): the running loop returns after this iteration; a no-op
 * on a loop that is not running or is closed (asyncio's stop). */
static int rl_loop_stop(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    const char *what = "stop";
    rill_loop_stop(rl_loop_ctx(L, 1, what)->loop);
  } else {
    rl_owned *o = rl_checkowned(L, 1);
    if (rl_is_open(o)) rill_loop_stop(o->loop);
  }
  return 0;
}

/* loops.close(loop): as rill.run ends: the tasks left are cancelled and run
 * down, the thread pool is joined, then the loop is closed. A no-op on a
 * closed loop; RILL_EBUSY on a running one. */
static int rl_loop_close(lua_State *L) {
  rl_ctx *c;
  rill_loop *loop;
  int rc;
  const char *what = "close";
  if (!lua_isnoneornil(L, 1) && !rl_is_open(rl_checkowned(L, 1))) return 0;
  c = rl_loop_ctx(L, 1, what);
  loop = c->loop;
  if (rill_loop_current() == loop) return rl_raise(L, RILL_EBUSY, "loop:close(): cannot close a running loop");
  rl_loop_enter(L, c); /* the close's reports may call Lua's handler */
  if (!rill_loop_current()) rill_loop_shutdown(loop); /* (in another loop's task: close only) */
  rc = rill_loop_close(loop);
  if (rc < 0) { /* (c is freed by a close that succeeds) */
    rl_loop_leave(L, c);
    return rl_raise(L, rc, rl_message_of(rc));
  }
  return 0;
}

static int rl_loop_is_closed(lua_State *L) {
  lua_pushboolean(L, !rl_is_open(rl_checkowned(L, 1)));
  return 1;
}

static int rl_loop_is_running(lua_State *L) {
  rl_owned *o = rl_checkowned(L, 1);
  lua_pushboolean(L, o->loop && rill_loop_current() == o->loop);
  return 1;
}

/* loops.spawn(loop, fn, ...) -> task: starts on the loop's next iteration
 * (run_until_complete, run_forever or step) */
static int rl_loop_spawn(lua_State *L) {
  rl_ctx *c;
  const char *what = "create_task";
  c = rl_loop_ctx(L, 1, what);
  rl_spawn_at(L, c->loop, 2, lua_gettop(L) - 1);
  return 1;
}

/* loops.future(loop) -> a plain future of the loop */
static int rl_loop_future(lua_State *L) {
  const char *what = "create_future";
  rl_ctx *c = rl_loop_ctx(L, 1, what);
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_future_new(c->loop))) return rl_raise_last(L);
  return 1;
}

/* loops.call_soon(loop, fn) -> handle */
static int rl_loop_call_soon(lua_State *L) {
  rl_ctx *c;
  const char *what = "call_soon";
  c = rl_loop_ctx(L, 1, what);
  lua_settop(L, 2);
  rl_schedule(L, c, 0, 0);
  return 1;
}

/* loops.call_later(loop, delay, fn) -> handle */
static int rl_loop_call_later(lua_State *L) {
  rl_ctx *c;
  double d;
  const char *what = "call_later";
  c = rl_loop_ctx(L, 1, what);
  d = luaL_checknumber(L, 2);
  if (isnan(d)) return luaL_argerror(L, 2, "delay is NaN");
  lua_settop(L, 3);
  rl_schedule(L, c, 1, d);
  return 1;
}

static int rl_loop_time(lua_State *L) {
  const char *what = "time";
  lua_pushnumber(L, rill_loop_time(rl_loop_ctx(L, 1, what)->loop));
  return 1;
}

static int rl_loop_set_debug(lua_State *L) {
  const char *what = "set_debug";
  rill_loop_set_debug(rl_loop_ctx(L, 1, what)->loop, lua_toboolean(L, 2));
  return 0;
}

static int rl_loop_get_debug(lua_State *L) {
  const char *what = "get_debug";
  lua_pushboolean(L, rill_loop_get_debug(rl_loop_ctx(L, 1, what)->loop) == 1);
  return 1;
}

/* loops.set_slow_duration(loop, seconds): debug mode's threshold (asyncio's
 * slow_callback_duration), > 0 */
static int rl_loop_set_slow(lua_State *L) {
  rl_ctx *c;
  double s;
  int rc;
  const char *what = "set_slow_callback_duration";
  c = rl_loop_ctx(L, 1, what);
  s = luaL_checknumber(L, 2);
  if ((rc = rill_loop_set_slow_duration(c->loop, s)) < 0) return rl_raise(L, rc, rl_message_of(rc));
  return 0;
}

static int rl_loop_set_handler(lua_State *L) {
  const char *what = "set_exception_handler";
  return rl_ctx_set_handler(L, rl_loop_ctx(L, 1, what), 2);
}

static int rl_loop_task_count(lua_State *L) {
  const char *what = "task_count";
  lua_pushinteger(L, rill_loop_task_count(rl_loop_ctx(L, 1, what)->loop));
  return 1;
}

/* core.loops() -> the table of these functions */
int rl_loops(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"new", rl_loop_new}, {"id", rl_loop_id_of}, {"run_until", rl_loop_run_until},
    {"run_forever", rl_loop_run_forever}, {"step", rl_loop_step}, {"stop", rl_loop_stop},
    {"close", rl_loop_close}, {"is_closed", rl_loop_is_closed}, {"is_running", rl_loop_is_running},
    {"spawn", rl_loop_spawn}, {"future", rl_loop_future}, {"call_soon", rl_loop_call_soon}, {"call_later", rl_loop_call_later},
    {"time", rl_loop_time}, {"set_debug", rl_loop_set_debug}, {"get_debug", rl_loop_get_debug},
    {"set_slow_duration", rl_loop_set_slow}, {"set_exception_handler", rl_loop_set_handler},
    {"task_count", rl_loop_task_count}, {NULL, NULL}};
  const luaL_Reg *r;
  lua_newtable(L);
  for (r = fns; r->name; r++) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, -2, r->name);
  }
  return 1;
}
