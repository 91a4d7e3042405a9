/* bindings/lua/src/timeout.c - Timeout scopes of the running task. */
#include "rill_lua.h"

int rl_timeout_gc(lua_State *L) {
  rl_timeout *u = (rl_timeout *)lua_touserdata(L, 1);
  if (u && u->t) { rill_timeout_release(u->t); u->t = NULL; }
  return 0;
}

static rl_timeout *rl_checktimeout_ud(lua_State *L, int idx) {
  rl_timeout *u = (rl_timeout *)rl_testudata(L, idx, &RL_TIMEOUT_MT);
  if (!u || !u->t) rl_typeerror(L, idx, "rill timeout");
  return u;
}

/* core.timeout_new(delay) for the current task */
int rl_timeout_new(lua_State *L) {
  double d = rl_checktimeout(L, 1);
  rl_timeout *u;
  if (!rl_running_co || L != rl_running_co) return luaL_error(L, "rill.timeout called outside a rill task");
  u = (rl_timeout *)lua_newuserdatauv(L, sizeof *u, 0);
  u->t = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_TIMEOUT_MT);
  lua_setmetatable(L, -2);
  if (!(u->t = rill_timeout_new(rl_running_task, d))) return rl_raise_last(L);
  return 1;
}

int rl_timeout_exit(lua_State *L) {
  rl_timeout *u = rl_checktimeout_ud(L, 1);
  int rc = rill_timeout_exit(u->t, (int)luaL_checkinteger(L, 2));
  lua_pushinteger(L, rc);
  return 1;
}

int rl_timeout_expired(lua_State *L) {
  lua_pushboolean(L, rill_timeout_expired(rl_checktimeout_ud(L, 1)->t) == 1);
  return 1;
}

int rl_timeout_reschedule(lua_State *L) {
  rl_timeout *u = rl_checktimeout_ud(L, 1);
  if (rill_timeout_reschedule(u->t, rl_checktimeout(L, 2)) < 0) return rl_raise_last(L);
  return 0;
}
