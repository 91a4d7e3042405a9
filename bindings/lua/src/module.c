/* bindings/lua/src/module.c - The module's state: registry keys, per-thread run state, metatables. */
#include "rill_lua.h"

const char RL_FUT_MT = 0;
const char RL_HANDLE_MT = 0;
const char RL_TIMEOUT_MT = 0;
const char RL_GROUP_MT = 0;
const char RL_ERR_MT = 0;
const char RL_ATTACHED_MT = 0;
const char RL_LOOP_MT = 0;
const char RL_TAG = 0;
const char RL_VALUES_TAG = 0;
const char RL_ERROR_TAG = 0;

RL_TLS lua_State *rl_running_co;
RL_TLS rill_task *rl_running_task;
unsigned long rl_next_id;
#ifdef RL_LUA51
lua_State *rl_main_state;
#endif

static void rl_new_mt(lua_State *L, const void *key, lua_CFunction gc, const char *name) {
  lua_newtable(L);
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void rl_init(lua_State *L) {
#ifdef RL_LUA51
  if (!rl_main_state) rl_main_state = L;
#endif
  rl_new_mt(L, &RL_FUT_MT, rl_fut_gc, "rill.Future");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_FUT_MT);
  lua_pushcfunction(L, rl_fut_eq);
  lua_setfield(L, -2, "__eq");
  lua_pop(L, 1);
  rl_new_mt(L, &RL_TIMEOUT_MT, rl_timeout_gc, "rill.Timeout");
  rl_new_mt(L, &RL_GROUP_MT, rl_group_gc, "rill.TaskGroup");
  rl_new_mt(L, &RL_ERR_MT, NULL, "rill.Error");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ERR_MT);
  lua_pushcfunction(L, rl_err_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  rl_new_mt(L, &RL_ATTACHED_MT, rl_attached_gc, "rill.AttachedLoop");
  rl_new_mt(L, &RL_LOOP_MT, rl_loop_gc, "rill.Loop");
  rl_new_mt(L, &RL_HANDLE_MT, rl_handle_gc, "rill.Handle");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_HANDLE_MT);
  lua_newtable(L);
  lua_pushcfunction(L, rl_handle_cancel);
  lua_setfield(L, -2, "cancel");
  lua_pushcfunction(L, rl_handle_cancelled);
  lua_setfield(L, -2, "cancelled");
  lua_pushcfunction(L, rl_handle_when);
  lua_setfield(L, -2, "when");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  rl_sync_init(L);
  rl_io_init(L);
  rl_task_init(); /* debug mode's report describes Lua tasks */
}
