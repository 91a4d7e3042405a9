/* bindings/lua/src/future.c - rill.Future userdata: registry boxes, values in and out, state queries, plain futures. */
#include "rill_lua.h"

void rl_box_free(void *p) {
  rl_box *b = (rl_box *)p;
  if (!b) return;
  luaL_unref(rl_free_state(b->main), LUA_REGISTRYINDEX, b->ref);
  free(b);
}

/* Boxes the value on top of L (popped); NULL on ENOMEM (value popped). */
rl_box *rl_box_new(lua_State *L) {
  rl_box *b = (rl_box *)malloc(sizeof *b);
  if (!b) {
    lua_pop(L, 1);
    return NULL;
  }
  b->main = rl_main(L);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return b;
}

int rl_fut_gc(lua_State *L) {
  rl_fut *u = (rl_fut *)lua_touserdata(L, 1);
  if (u && u->f) {
    rill_future *f = u->f;
    u->f = NULL;
    rill_future_release(f);
  }
  return 0;
}

/* Pushes the values of a DONE future; returns how many (first_only: 1). */
int rl_push_values(lua_State *L, rill_future *f, int first_only) {
  int kind = rill_future_kind(f);
  switch (kind) {
  case RILL_BOOL: { int v = 0; rill_future_bool(f, &v); lua_pushboolean(L, v); return 1; }
  case RILL_INT: { int64_t v = 0; rill_future_int(f, &v); lua_pushinteger(L, (lua_Integer)v); return 1; }
  case RILL_DOUBLE: { double v = 0; rill_future_double(f, &v); lua_pushnumber(L, v); return 1; }
  case RILL_BYTES: {
    size_t len = 0;
    const void *p = rill_future_bytes(f, &len);
    lua_pushlstring(L, p ? (const char *)p : "", len);
    return 1;
  }
  case RILL_POINTER: {
    rl_box *b = (rl_box *)rill_future_pointer(f, &RL_VALUES_TAG);
    lua_Integer n, i;
    if (!b) { lua_pushnil(L); return 1; } /* another language's value */
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
    lua_getfield(L, -1, "n");
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (first_only) {
      lua_rawgeti(L, -1, 1);
      lua_remove(L, -2);
      return 1;
    }
    if (n > INT32_MAX || !lua_checkstack(L, (int)n + 1)) luaL_error(L, "too many results");
    for (i = 1; i <= n; i++) lua_rawgeti(L, -(int)i, i);
    lua_remove(L, -(int)n - 1);
    return (int)n;
  }
  default:
    if (first_only) { lua_pushnil(L); return 1; }
    return 0; /* none */
  }
}

/* core.future_new() -> a plain future; core.future_set(f, v), core.future_fail(f, err) */
int rl_future_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "future");
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_future_new(c->loop))) return rl_raise_last(L);
  return 1;
}

int rl_future_set(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  int rc, n = lua_gettop(L) - 1;
  if (rill_task_from_future(f)) return luaL_error(L, "a task's result is set by its function");
  if (rill_future_done(f) == 1) {
    rill_lua_push_error(L, RILL_ESTATE, "the future is already done");
    return lua_error(L);
  }
  if (n == 0 || (n == 1 && lua_isnil(L, 2))) rc = rill_future_set_none(f);
  else if (n == 1 && lua_type(L, 2) == LUA_TBOOLEAN) rc = rill_future_set_bool(f, lua_toboolean(L, 2));
  else if (n == 1 && rl_isinteger(L, 2)) rc = rill_future_set_int(f, (int64_t)lua_tointeger(L, 2));
  else if (n == 1 && lua_type(L, 2) == LUA_TNUMBER) rc = rill_future_set_double(f, lua_tonumber(L, 2));
  else if (n == 1 && lua_type(L, 2) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 2, &len);
    rc = rill_future_set_bytes(f, s, len);
  } else {
    rl_box *b;
    lua_pushcfunction(L, rl_pack_ref);
    lua_insert(L, 2);
    lua_call(L, n, 1);
    b = (rl_box *)malloc(sizeof *b);
    if (!b) {
      luaL_unref(L, LUA_REGISTRYINDEX, (int)lua_tointeger(L, -1));
      return luaL_error(L, "out of memory");
    }
    b->main = rl_main(L);
    b->ref = (int)lua_tointeger(L, -1);
    rc = rill_future_set_pointer(f, b, rl_box_free, &RL_VALUES_TAG);
    if (rc < 0) rl_box_free(b);
  }
  if (rc < 0) return rl_raise_last(L);
  return 0;
}

int rl_future_fail(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  int code, ref, rc;
  const char *msg;
  rl_box *b;
  luaL_checkany(L, 2);
  if (rill_task_from_future(f)) return luaL_error(L, "a task fails by raising an error");
  if (rill_future_done(f) == 1) {
    rill_lua_push_error(L, RILL_ESTATE, "the future is already done");
    return lua_error(L);
  }
  lua_settop(L, 2);
  lua_pushcfunction(L, rl_classify);
  lua_pushvalue(L, 2);
  lua_call(L, 1, 3);
  code = (int)lua_tointeger(L, -3);
  msg = lua_tostring(L, -2);
  ref = (int)lua_tointeger(L, -1);
  if (ref == LUA_NOREF) {
    rc = rill_future_fail(f, code, msg, NULL, NULL, NULL);
  } else {
    b = (rl_box *)malloc(sizeof *b);
    if (!b) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      return luaL_error(L, "out of memory");
    }
    b->main = rl_main(L);
    b->ref = ref;
    rc = rill_future_fail(f, code, msg, b, rl_box_free, &RL_ERROR_TAG);
  }
  if (rc < 0) return rl_raise_last(L);
  return 0;
}

/* core.result(f): the values of a done future, or raises its error. */
int rl_result(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  switch (rill_future_state(f)) {
  case RILL_DONE: return rl_push_values(L, f, 0);
  case RILL_PENDING: return luaL_error(L, "the task or future is not done yet");
  default:
    rl_push_future_error(L, f);
    return lua_error(L);
  }
}

/* core.error(f): the error value of a failed/cancelled future, else nil. */
int rl_error(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  int s = rill_future_state(f);
  if (s == RILL_FAILED || s == RILL_CANCELLED) rl_push_future_error(L, f);
  else lua_pushnil(L);
  return 1;
}

/* core.code(f): 0 done, the failure code, ECANCELLED, or ESTATE if pending;
 * marks a failure retrieved. */
int rl_code(lua_State *L) {
  lua_pushinteger(L, rill_future_error(rl_checkfut(L, 1)));
  return 1;
}

int rl_done(lua_State *L) {
  lua_pushboolean(L, rill_future_done(rl_checkfut(L, 1)) == 1);
  return 1;
}

int rl_cancelled(lua_State *L) {
  lua_pushboolean(L, rill_future_state(rl_checkfut(L, 1)) == RILL_CANCELLED);
  return 1;
}

int rl_state(lua_State *L) {
  lua_pushinteger(L, rill_future_state(rl_checkfut(L, 1)));
  return 1;
}

/* core.cancel(f, msg) -> boolean */
int rl_cancel(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  int rc = rill_future_cancel_msg(f, msg);
  if (rc < 0) {
    if (rc == RILL_ECLOSED) { lua_pushboolean(L, 0); return 1; }
    rill_lua_push_error(L, rc, rl_message_of(rc));
    return lua_error(L);
  }
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* Pushes a new rill.Future for f (one more reference); equal (==) to
 * every other userdata of the same future. */
void rl_push_ref(lua_State *L, rill_future *f) {
  rl_fut *u = rl_newfut(L);
  u->f = rill_future_retain(f);
}

int rl_fut_eq(lua_State *L) {
  rl_fut *a = (rl_fut *)rl_testudata(L, 1, &RL_FUT_MT);
  rl_fut *b = (rl_fut *)rl_testudata(L, 2, &RL_FUT_MT);
  lua_pushboolean(L, a && b && a->f == b->f);
  return 1;
}

int rl_is_future(lua_State *L) {
  lua_pushboolean(L, rl_testudata(L, 1, &RL_FUT_MT) != NULL);
  return 1;
}

/* Hands out rill.Future's metatable so rill.lua can give it methods. */
int rl_future_mt(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_FUT_MT);
  return 1;
}

/* lua_pcall'ed on the driver: packs its arguments into {n=..., ...} and
 * returns a registry reference to it. */
int rl_pack_ref(lua_State *L) {
  int n = lua_gettop(L), i;
  lua_createtable(L, n, 1);
  lua_insert(L, 1);
  for (i = n; i >= 1; i--) lua_rawseti(L, 1, i);
  lua_pushinteger(L, n);
  lua_setfield(L, 1, "n");
  lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
  return 1;
}
