/* bindings/lua/src/loop.c - Callbacks (call_soon/call_later), the exception handler and rill.run. */
#include "rill_lua.h"

int rl_handle_gc(lua_State *L) {
  rl_handle *u = (rl_handle *)lua_touserdata(L, 1);
  if (u && u->h) { rill_handle_release(u->h); u->h = NULL; }
  return 0;
}

static rl_handle *rl_checkhandle(lua_State *L) {
  rl_handle *u = (rl_handle *)rl_testudata(L, 1, &RL_HANDLE_MT);
  if (!u || !u->h) rl_typeerror(L, 1, "rill handle");
  return u;
}

int rl_handle_cancel(lua_State *L) {
  rill_handle_cancel(rl_checkhandle(L)->h);
  return 0;
}

int rl_handle_cancelled(lua_State *L) {
  lua_pushboolean(L, rill_handle_cancelled(rl_checkhandle(L)->h) == 1);
  return 1;
}

int rl_handle_when(lua_State *L) {
  lua_pushnumber(L, rill_handle_when(rl_checkhandle(L)->h));
  return 1;
}


/* A report with the error value at idx of L (0: none) to Lua's handler of
 * this loop: the loop's own (core.run) or, on a host's loop where Lua set
 * one, Lua's; else the host's handler. */
static void rl_report_to(rl_ctx *c, const char *message, lua_State *L, int idx) {
  int saved = c->err_idx;
  lua_State *saved_L = c->err_L;
  c->err_idx = idx;
  c->err_L = L;
  if (c->attached && c->handler_ref != LUA_NOREF) rl_exception_handler(c->loop, message, NULL, c);
  else rill_loop_report(c->loop, message, NULL);
  c->err_idx = saved;
  c->err_L = saved_L;
}

static void rl_report_value(rl_ctx *c, const char *prefix, int idx) {
  lua_State *L = c->L;
  char buf[480];
  idx = lua_absindex(L, idx);
  snprintf(buf, sizeof buf, "%s: %s", prefix, rl_safe_tostring(L, idx));
  lua_pop(L, 1);
  rl_report_to(c, buf, L, idx);
}

static void rl_callback(void *arg) {
  rl_box *b = (rl_box *)arg;
  rl_ctx *c = rl_ctx_current();
  lua_State *L;
  if (!c) return;
  L = c->L;
  if (!lua_checkstack(L, 4)) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    rl_report_value(c, "Exception in callback", -1);
    lua_pop(L, 1);
  }
}

/* Schedules the function on the top of L's stack on c's loop; pushes the
 * handle. */
rill_handle *rl_schedule(lua_State *L, rl_ctx *c, int later, double when) {
  rl_handle *u;
  rl_box *b;
  rill_handle *h;
  luaL_checktype(L, -1, LUA_TFUNCTION);
  u = (rl_handle *)lua_newuserdatauv(L, sizeof *u, 0);
  u->h = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_HANDLE_MT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -2);
  if (!(b = rl_box_new(L))) luaL_error(L, "out of memory");
  h = later ? rill_call_later(c->loop, when, rl_callback, b, rl_box_free)
            : rill_call_soon(c->loop, rl_callback, b, rl_box_free);
  if (!h) {
    rl_box_free(b);
    rl_raise_last(L);
  }
  u->h = h;
  return h;
}

/* core.call_soon(fn) -> handle (rill.lua binds the arguments) */
int rl_call_soon(lua_State *L) {
  lua_settop(L, 1);
  rl_schedule(L, rl_need_ctx(L, "call_soon"), 0, 0);
  return 1;
}

/* core.call_later(delay, fn) -> handle */
int rl_call_later(lua_State *L) {
  double d = luaL_checknumber(L, 1);
  if (isnan(d)) return luaL_argerror(L, 1, "delay is NaN");
  lua_settop(L, 2);
  rl_schedule(L, rl_need_ctx(L, "call_later"), 1, d);
  return 1;
}

/* lua_pcall'ed: handler(message, err) with (ctx, message, future) as light
 * userdata, so that nothing here can raise outside a protected call. */
static int rl_call_handler(lua_State *L) {
  rl_ctx *c = (rl_ctx *)lua_touserdata(L, 1);
  int nargs = lua_gettop(L); /* 4: the callback's error value is the fourth */
  const char *message = (const char *)lua_touserdata(L, 2);
  rill_future *future = (rill_future *)lua_touserdata(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->handler_ref);
  lua_pushstring(L, message);
  if (nargs >= 4) lua_pushvalue(L, 4);
  else if (future && (rill_future_state(future) == RILL_FAILED || rill_future_state(future) == RILL_CANCELLED)) {
    rl_box *b = (rl_box *)rill_future_error_payload(future, &RL_ERROR_TAG);
    if (b) lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
    else lua_pushstring(L, rill_future_error_message(future));
  } else lua_pushnil(L);
  lua_call(L, 2, 0);
  return 0;
}

void rl_exception_handler(rill_loop *loop, const char *message, rill_future *future, void *arg) {
  rl_ctx *c = (rl_ctx *)arg;
  int nargs;
  lua_State *L = c->L;
  (void)loop;
  if (c->handler_ref == LUA_NOREF || !lua_checkstack(L, 6)) { /* as the core's default */
    int s = future ? rill_future_state(future) : RILL_PENDING;
    if (s == RILL_FAILED) {
      int code = rill_future_error(future);
      fprintf(stderr, "rill: %s: %s (%s)\n", message, rill_future_error_message(future),
              rill_err_name(code) ? rill_err_name(code) : "application error");
    } else {
      fprintf(stderr, "rill: %s\n", message);
    }
    return;
  }
  lua_pushcfunction(L, rl_call_handler);
  lua_pushlightuserdata(L, c);
  lua_pushlightuserdata(L, (void *)message);
  lua_pushlightuserdata(L, future);
  nargs = 3;
  if (c->err_idx && c->err_L) {
    lua_pushvalue(c->err_L, c->err_idx);
    if (c->err_L != L) lua_xmove(c->err_L, L, 1);
    nargs = 4;
  }
  if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
    fprintf(stderr, "rill: the exception handler raised: %s (while reporting: %s)\n",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)", message);
    lua_pop(L, 1);
  }
}

/* Sets (fn) or removes (nil) Lua's exception handler of c's loop. On a
 * host's loop it is the core's handler for Lua's reports (RL_TAG): the
 * host's own handler keeps the others. */
int rl_ctx_set_handler(lua_State *L, rl_ctx *c, int idx) {
  if (!lua_isnoneornil(L, idx)) luaL_checktype(L, idx, LUA_TFUNCTION);
  if (c->handler_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, c->handler_ref);
  c->handler_ref = LUA_NOREF;
  if (!lua_isnoneornil(L, idx)) {
    lua_pushvalue(L, idx);
    c->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (c->attached) {
    int rc = rill_loop_set_binding_exception_handler(
        c->loop, &RL_TAG, c->handler_ref == LUA_NOREF ? NULL : rl_exception_handler, c, NULL);
    if (rc < 0) {
      rill_lua_push_error(L, rc, rl_message_of(rc));
      return lua_error(L);
    }
  }
  return 0;
}

/* core.set_exception_handler(fn|nil) for the running loop */
int rl_set_exception_handler(lua_State *L) {
  return rl_ctx_set_handler(L, rl_need_ctx(L, "set_exception_handler"), 1);
}

/* core.report(message [, err]) to the exception handler */
int rl_report(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "report");
  const char *msg = luaL_checkstring(L, 1);
  rl_report_to(c, msg, L, lua_isnoneornil(L, 2) ? 0 : 2);
  return 0;
}

int rl_time(lua_State *L) {
  lua_pushnumber(L, rill_loop_time(rl_need_ctx(L, "time")->loop));
  return 1;
}

/* Loop:time as a C closure (upvalues: the Loop class, the Lua function
 * for every other case, the keys "_l" and "id"): the loop object of the running rill.run reads
 * the loop's clock here, without a Lua frame (a task's coroutine keeps the
 * deepest frame count it reached: W3 checks loop:time around its sleep). */
static int rl_loop_time_c(lua_State *L) {
  rl_ctx *c = rl_ctx_current();
  if (c && lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    int fast = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (fast) { /* the object's own fields (Loop has neither): raw reads */
      lua_pushvalue(L, lua_upvalueindex(3)); /* "_l" */
      lua_rawget(L, 1);
      fast = lua_isnil(L, -1);
      lua_pushvalue(L, lua_upvalueindex(4)); /* "id" */
      lua_rawget(L, 1);
      fast = fast && rl_isinteger(L, -1) && lua_tointeger(L, -1) == (lua_Integer)c->id;
      lua_pop(L, 2);
      if (fast) {
        lua_pushnumber(L, rill_loop_time(c->loop));
        return 1;
      }
    }
  }
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* core.loop_time_method(Loop, slow) -> Loop:time */
int rl_loop_time_method(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_pushliteral(L, "_l");
  lua_pushliteral(L, "id");
  lua_pushcclosure(L, rl_loop_time_c, 4);
  return 1;
}

/* core.loop_id(): the running run's id, or nil */
int rl_loop_id(lua_State *L) {
  rl_ctx *c = rl_ctx_current();
  if (!c) return 0;
  lua_pushinteger(L, (lua_Integer)c->id);
  return 1;
}

int rl_task_count(lua_State *L) {
  lua_pushinteger(L, rill_loop_task_count(rl_need_ctx(L, "task_count")->loop));
  return 1;
}

int rl_set_debug(lua_State *L) {
  rill_loop_set_debug(rl_need_ctx(L, "set_debug")->loop, lua_toboolean(L, 1));
  return 0;
}

int rl_dump_tasks(lua_State *L) {
  char *s = rill_loop_dump_tasks(rl_need_ctx(L, "dump_tasks")->loop);
  lua_pushstring(L, s ? s : "");
  rill_free(s);
  return 1;
}

/* core.run(fn, ...): a new loop, fn(...) as its main task, run to the end;
 * leftovers cancelled; the loop closed. Returns fn's results or raises
 * its error (the same value). */
/* Ctrl+C in core.run is the core's (rill_loop_cancel_on_sigint) unless
 * SIGINT is ignored: it replaces the interpreter's handler (lua.c's only
 * acts at the next Lua instruction, after the poll) and restores it. */
int rl_sigint_armable(void) {
  struct sigaction sa;
  return sigaction(SIGINT, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN;
}

/* lua_pcall'ed by core.run: (loop, fn, ...) -> the main task */
static int rl_spawn_main(lua_State *L) {
  rl_spawn_at(L, (rill_loop *)lua_touserdata(L, 1), 2, lua_gettop(L) - 2);
  return 1;
}

int rl_run(lua_State *L) {
  rl_ctx ctx;
  rill_loop *loop;
  rill_future *mf;
  rl_fut *u;
  int top, rc, armed, interrupted = 0;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (rill_loop_current()) {
    rill_lua_push_error(L, RILL_EBUSY, "rill.run() cannot be called from a running loop");
    return lua_error(L);
  }
  if (!(loop = rill_loop_new())) return rl_raise_last(L);
  rl_ctx_init(&ctx, loop, L, 0);
  /* the loop's context, on this C stack until the loop is freed below */
  if ((rc = rill_loop_set_binding(loop, &RL_TAG, &ctx, NULL)) < 0) {
    rill_loop_free(loop);
    rill_lua_push_error(L, rc, rl_message_of(rc));
    return lua_error(L);
  }
  top = lua_gettop(L);
  /* the main task; on a Lua error here, the loop is freed */
  lua_pushcfunction(L, rl_spawn_main);
  lua_insert(L, 1);
  lua_pushlightuserdata(L, loop);
  lua_insert(L, 2);
  if (lua_pcall(L, top + 1, 1, 0) != LUA_OK) {
    rill_loop_close(loop);
    rill_loop_free(loop);
    return lua_error(L);
  }
  u = (rl_fut *)lua_touserdata(L, -1); /* keeps the main future alive */
  mf = u->f;
  rill_task_set_name(rill_task_from_future(mf), "main");
  rill_loop_set_exception_handler(loop, rl_exception_handler, &ctx, NULL);
  /* asyncio.run's Ctrl+C: the first SIGINT cancels main at once (the
   * loop is woken), a second one ends the process */
  armed = rl_sigint_armable() && rill_loop_cancel_on_sigint(loop, rill_task_from_future(mf)) == 0;
  rill_loop_run_until(loop, mf);
  if (armed) interrupted = rill_loop_cancel_on_sigint(loop, NULL) > 0;
  rill_loop_shutdown(ctx.loop); /* asyncio.run's epilogue, done by the core */
  rill_loop_close(loop);
  rill_loop_free(loop);
  rl_ctx_clear(&ctx);
  if (interrupted && rill_future_state(mf) == RILL_CANCELLED) {
    rill_lua_push_error(L, RILL_EINTR, "interrupted");
    return lua_error(L);
  }
  lua_settop(L, 1); /* the main task's future */
  lua_pushcfunction(L, rl_result);
  lua_pushvalue(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

rl_ctx *rl_need_ctx(lua_State *L, const char *what) {
  rl_ctx *c = rl_ctx_current();
  if (!c) luaL_error(L, "rill.%s: no rill loop is running (call it inside rill.run)", what);
  return c;
}

/* Fills in a new context of loop, driven by L. */
void rl_ctx_init(rl_ctx *c, rill_loop *loop, lua_State *L, int attached) {
  c->loop = loop;
  c->L = L;
  c->handler_ref = LUA_NOREF;
  c->err_idx = 0;
  c->err_L = NULL;
  c->id = ++rl_next_id;
  c->attached = attached;
  c->npool = 0;
}

/* Makes c (filled in) the context of its loop; raises on failure. */
void rl_ctx_attach(lua_State *L, rl_ctx *c, rill_free_fn free_ctx) {
  int rc = rill_loop_set_binding(c->loop, &RL_TAG, c, free_ctx);
  if (rc < 0) {
    if (free_ctx) free_ctx(c);
    rill_lua_push_error(L, rc, rl_message_of(rc));
    lua_error(L);
  }
}

/* Releases what a context holds in the registry (at its loop's close). */
void rl_ctx_clear(rl_ctx *c) {
  while (c->npool > 0) luaL_unref(c->L, LUA_REGISTRYINDEX, c->pool[--c->npool].ref);
  if (c->handler_ref != LUA_NOREF) luaL_unref(c->L, LUA_REGISTRYINDEX, c->handler_ref);
  c->handler_ref = LUA_NOREF;
}
