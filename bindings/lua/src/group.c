/* bindings/lua/src/group.c - Task groups of the running task. */
#include "rill_lua.h"

int rl_group_gc(lua_State *L) {
  rl_group *u = (rl_group *)lua_touserdata(L, 1);
  if (u && u->g) { rill_group_release(u->g); u->g = NULL; }
  return 0;
}

static rl_group *rl_checkgroup(lua_State *L, int idx) {
  rl_group *u = (rl_group *)rl_testudata(L, idx, &RL_GROUP_MT);
  if (!u || !u->g) rl_typeerror(L, idx, "rill task group");
  return u;
}

/* core.group_new() with the current task as parent */
int rl_group_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "task_group");
  rl_group *u;
  if (L != rl_running_co) return luaL_error(L, "rill.task_group called outside a rill task");
  u = (rl_group *)lua_newuserdatauv(L, sizeof *u, 0);
  u->g = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_GROUP_MT);
  lua_setmetatable(L, -2);
  if (!(u->g = rill_group_new(c->loop, rl_running_task))) return rl_raise_last(L);
  return 1;
}

/* core.group_spawn(g, fn, ...) -> task */
int rl_group_spawn(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "spawn");
  rl_group *u = rl_checkgroup(L, 1);
  rill_task *t = rl_spawn_at(L, c->loop, 2, lua_gettop(L) - 2);
  if (rill_group_add(u->g, t) < 0) {
    rill_lua_push_error(L, RILL_ESTATE, "the task group is finished or shutting down");
    return lua_error(L);
  }
  return 1;
}

/* core.group_exit(g, body_rc) -> the exit future (retained): DONE once
 * every child is done (the core's rule, asyncio's TaskGroup.__aexit__). */
int rl_group_exit(lua_State *L) {
  rl_group *u = rl_checkgroup(L, 1);
  int rc = (int)luaL_checkinteger(L, 2);
  rl_fut *f = rl_newfut(L);
  rill_future *x = rill_group_exit(u->g, rc);
  if (!x) return rl_raise_last(L);
  f->f = rill_future_retain(x);
  return 1;
}

/* core.group_exit_result(g, await_rc, body_err) -> rc, {errors...}: the
 * outcome and the errors in the core's order (the body's is body_err). */
int rl_group_exit_result(lua_State *L) {
  rl_group *u = rl_checkgroup(L, 1);
  int rc = rill_group_exit_result(u->g, (int)luaL_checkinteger(L, 2));
  size_t n = rill_group_exit_error_count(u->g), i;
  lua_settop(L, 3);
  lua_pushinteger(L, rc);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    rill_task *t = NULL;
    if (rill_group_exit_error(u->g, i, &t) < 0) continue;
    if (t) rl_push_future_error(L, rill_task_future(t));
    else lua_pushvalue(L, 3);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}
