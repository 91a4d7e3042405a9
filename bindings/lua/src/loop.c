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

/* A protected tostring of the value at idx, pushed; never raises. */

static void rl_report_value(rl_ctx *c, const char *prefix, int idx) {
  lua_State *L = c->L;
  char buf[480];
  int saved = c->err_idx;
  idx = lua_absindex(L, idx);
  snprintf(buf, sizeof buf, "%s: %s", prefix, rl_safe_tostring(L, idx));
  lua_pop(L, 1);
  c->err_idx = idx;
  rill_loop_report(c->loop, buf, NULL);
  c->err_idx = saved;
}

static void rl_callback(void *arg) {
  rl_box *b = (rl_box *)arg;
  rl_ctx *c = rl_cur;
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

static rill_handle *rl_schedule(lua_State *L, int later, double when) {
  rl_ctx *c = rl_need_ctx(L, later ? "call_later" : "call_soon");
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
  rl_schedule(L, 0, 0);
  return 1;
}

/* core.call_later(delay, fn) -> handle */
int rl_call_later(lua_State *L) {
  double d = luaL_checknumber(L, 1);
  if (isnan(d)) return luaL_argerror(L, 1, "delay is NaN");
  lua_settop(L, 2);
  rl_schedule(L, 1, d);
  return 1;
}

/* lua_pcall'ed: handler(message, err) with (message, future) as light
 * userdata, so that nothing here can raise outside a protected call. */
static int rl_call_handler(lua_State *L) {
  rl_ctx *c = rl_cur;
  int nargs = lua_gettop(L); /* 3: the callback's error value is the third */
  const char *message = (const char *)lua_touserdata(L, 1);
  rill_future *future = (rill_future *)lua_touserdata(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->handler_ref);
  lua_pushstring(L, message);
  if (nargs >= 3) lua_pushvalue(L, 3);
  else if (future && (rill_future_state(future) == RILL_FAILED || rill_future_state(future) == RILL_CANCELLED)) {
    rl_box *b = (rl_box *)rill_future_error_payload(future, &RL_ERROR_TAG);
    if (b) lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
    else lua_pushstring(L, rill_future_error_message(future));
  } else lua_pushnil(L);
  lua_call(L, 2, 0);
  return 0;
}

static void rl_exception_handler(rill_loop *loop, const char *message, rill_future *future,
                                 void *arg) {
  rl_ctx *c = (rl_ctx *)arg;
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
  lua_pushlightuserdata(L, (void *)message);
  lua_pushlightuserdata(L, future);
  if (c->err_idx) lua_pushvalue(L, c->err_idx);
  if (lua_pcall(L, c->err_idx ? 3 : 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "rill: the exception handler raised: %s (while reporting: %s)\n",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)", message);
    lua_pop(L, 1);
  }
}

/* core.set_exception_handler(fn|nil) for the running loop */
int rl_set_exception_handler(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "set_exception_handler");
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  if (c->handler_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, c->handler_ref);
  c->handler_ref = LUA_NOREF;
  if (!lua_isnoneornil(L, 1)) {
    lua_pushvalue(L, 1);
    c->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

/* core.report(message [, err]) to the exception handler */
int rl_report(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "report");
  const char *msg = luaL_checkstring(L, 1);
  int saved = c->err_idx;
  if (!lua_isnoneornil(L, 2)) c->err_idx = 2;
  rill_loop_report(c->loop, msg, NULL);
  c->err_idx = saved;
  return 0;
}

int rl_time(lua_State *L) {
  lua_pushnumber(L, rill_loop_time(rl_need_ctx(L, "time")->loop));
  return 1;
}

/* core.loop_id(): the running run's id, or nil */
int rl_loop_id(lua_State *L) {
  if (!rl_cur) return 0;
  lua_pushinteger(L, (lua_Integer)rl_cur->id);
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
int rl_run(lua_State *L) {
  rl_ctx ctx;
  rill_loop *loop;
  rill_future *mf;
  rl_fut *u;
  int top;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (rl_cur || rill_loop_current()) {
    rill_lua_push_error(L, RILL_EBUSY, "rill.run() cannot be called from a running loop");
    return lua_error(L);
  }
  if (!(loop = rill_loop_new())) return rl_raise_last(L);
  ctx.loop = loop;
  ctx.L = L;
  ctx.handler_ref = LUA_NOREF;
  ctx.err_idx = 0;
  ctx.id = ++rl_next_id;
  ctx.prev = rl_cur;
  ctx.attached = 0;
  ctx.npool = 0;
  top = lua_gettop(L);
  {
    /* the main task; on a Lua error here, the loop is freed by a guard */
    int ok;
    lua_pushcfunction(L, rl_spawn);
    lua_insert(L, 1);
    rl_cur = &ctx;
    ok = lua_pcall(L, top, 1, 0);
    if (ok != LUA_OK) {
      rl_cur = ctx.prev;
      rill_loop_free(loop);
      return lua_error(L);
    }
  }
  u = (rl_fut *)lua_touserdata(L, -1); /* keeps the main future alive */
  mf = u->f;
  rill_task_set_name(rill_task_from_future(mf), "main");
  rill_loop_set_exception_handler(loop, rl_exception_handler, &ctx, NULL);
  rill_loop_run_until(loop, mf);
  rill_loop_shutdown(ctx.loop); /* asyncio.run's epilogue, done by the core */
  rill_loop_close(loop);
  rill_loop_free(loop);
  rl_cur = ctx.prev;
  while (ctx.npool > 0) luaL_unref(L, LUA_REGISTRYINDEX, ctx.pool[--ctx.npool].ref);
  if (ctx.handler_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, ctx.handler_ref);
  lua_settop(L, 1); /* the main task's future */
  lua_pushcfunction(L, rl_result);
  lua_pushvalue(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

rl_ctx *rl_need_ctx(lua_State *L, const char *what) {
  if (!rl_cur) luaL_error(L, "rill.%s: no rill loop is running (call it inside rill.run)", what);
  return rl_cur;
}
