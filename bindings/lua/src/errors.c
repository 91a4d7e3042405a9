/* bindings/lua/src/errors.c - Errors as values: rill error tables, classifying a raised Lua value, the failure of a future as a Lua value. */
#include "rill_lua.h"

/* Pushes a rill error table {code=, name=, message=} (metatable RL_ERR_MT). */
void rill_lua_push_error(lua_State *L, int code, const char *message) {
  const char *name = rill_lua_name(code); /* the shared table's Lua column */
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, message && *message ? message : (code == RILL_ECANCELLED ? "" : rill_strerror(code)));
  lua_setfield(L, -2, "message");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ERR_MT);
  if (lua_istable(L, -1)) lua_setmetatable(L, -2);
  else lua_pop(L, 1);
}

int rl_err_tostring(lua_State *L) {
  const char *name, *msg;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "name");
  lua_getfield(L, 1, "message");
  name = lua_tostring(L, -2);
  msg = lua_tostring(L, -1);
  if (msg && *msg) lua_pushfstring(L, "%s: %s", name ? name : "rill error", msg);
  else lua_pushstring(L, name ? name : "rill error");
  return 1;
}

/* core.error_table() -> {[code] = name}: the shared table's Lua column,
 * every code of RILL_ERRNO_MAP (tests). */
int rl_error_table(lua_State *L) {
  lua_newtable(L);
#define RILL_ERROR_ROW(name, code, text, py, lua, rb) \
  lua_pushstring(L, lua);                             \
  lua_rawseti(L, -2, code);
  RILL_ERRNO_MAP(RILL_BINDING_ERROR_ROW)
#undef RILL_ERROR_ROW
  return 1;
}

/* core.new_error(code, message) */
int rl_new_error(lua_State *L) {
  int code = (int)luaL_checkinteger(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  rill_lua_push_error(L, code, msg);
  return 1;
}

/* Pushes the error value of a failed or cancelled future: the Lua value
 * itself if a Lua task failed with it, else a rill error table. */
void rl_push_future_error(lua_State *L, rill_future *f) {
  rl_box *b = (rl_box *)rill_future_error_payload(f, &RL_ERROR_TAG);
  if (b) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
    return;
  }
  {
    int code = rill_future_error(f);
    const char *msg = rill_future_error_message(f);
    rill_lua_push_error(L, code < 0 ? code : RILL_ESTATE, msg);
  }
}

int rl_error_mt(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ERR_MT);
  return 1;
}

int rl_raise_last(lua_State *L) {
  rill_lua_push_error(L, rill_last_error(), rill_last_error_message());
  return lua_error(L);
}

static int rl_tostring_fn(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* lua_pcall'ed on the driver with an error value: returns its code, a
 * message and a registry reference to it (LUA_NOREF for cancels). */
int rl_classify(lua_State *L) {
  int code = RILL_EEXCEPTION;
  lua_settop(L, 1);
  if (lua_getmetatable(L, 1)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ERR_MT);
    if (lua_rawequal(L, -1, -2)) {
      lua_getfield(L, 1, "code");
      if (rl_isinteger(L, -1) && lua_tointeger(L, -1) < 0 && lua_tointeger(L, -1) > INT32_MIN)
        code = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  if (code == RILL_ECANCELLED) {
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1)) { lua_pop(L, 1); lua_pushstring(L, ""); }
    lua_pushinteger(L, code);
    lua_insert(L, -2);
    lua_pushinteger(L, LUA_NOREF);
    return 3;
  }
  lua_pushinteger(L, code);
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    lua_pushvalue(L, 1);
    lua_tolstring(L, -1, NULL);
  } else if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushcfunction(L, rl_tostring_fn); /* __tostring may raise: protect it */
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
  } else {
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  lua_pushvalue(L, 1);
  lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
  return 3;
}

const char *rl_safe_tostring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, rl_tostring_fn);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushstring(L, "(error object is not a string)");
  }
  return lua_tostring(L, -1);
}
