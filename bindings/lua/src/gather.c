/* bindings/lua/src/gather.c - Combinators: gather, wait_for, shield, wait over rill.Future arrays. */
#include "rill_lua.h"

/* Reads the array futs[1..n] at idx into a malloc'd array (luaL_error on a
 * bad element, nothing leaked: the array is a userdata buffer). */
static rill_future **rl_future_array(lua_State *L, int idx, lua_Integer n) {
  rill_future **futs;
  lua_Integer i;
  if (n < 0 || (size_t)n > ((size_t)-1) / sizeof(rill_future *) / 2) luaL_error(L, "bad count");
  futs = (rill_future **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *futs, 0);
  for (i = 1; i <= n; i++) {
    rl_fut *u;
    lua_rawgeti(L, idx, i);
    u = (rl_fut *)rl_testudata(L, -1, &RL_FUT_MT);
    if (!u || !u->f) luaL_error(L, "bad argument #%d (rill task or future expected, got %s)", (int)i, luaL_typename(L, -1));
    futs[i - 1] = u->f;
    lua_pop(L, 1);
  }
  return futs;
}

/* core.gather(array, n, flags) -> future */
int rl_gather(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "gather");
  lua_Integer n;
  unsigned flags;
  rill_future **futs;
  rill_future *g;
  rl_fut *u;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_checkinteger(L, 2);
  flags = (unsigned)luaL_optinteger(L, 3, 0);
  futs = rl_future_array(L, 1, n);
  u = rl_newfut(L);
  g = rill_gather(c->loop, (size_t)n, futs, flags);
  if (!g) return rl_raise_last(L);
  u->f = g;
  return 1;
}

/* core.gather_results(g) -> {n=..., ...} in argument order; errors in place. */
int rl_gather_results(lua_State *L) {
  rill_future *g = rl_checkfut(L, 1);
  size_t n = rill_gather_count(g), i;
  lua_createtable(L, (int)n, 1);
  for (i = 0; i < n; i++) {
    rill_future *ch = rill_gather_child(g, i);
    int s = rill_future_state(ch);
    if (s == RILL_DONE) rl_push_values(L, ch, 1);
    else if (s == RILL_PENDING) lua_pushnil(L);
    else rl_push_future_error(L, ch);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, "n");
  return 1;
}

double rl_checktimeout(lua_State *L, int idx) {
  double d;
  if (lua_isnoneornil(L, idx)) return RILL_FOREVER;
  d = luaL_checknumber(L, idx);
  if (isnan(d)) luaL_argerror(L, idx, "timeout is NaN");
  return d;
}

/* core.wait_for(f, timeout) -> future */
int rl_wait_for(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "wait_for");
  rill_future *f = rl_checkfut(L, 1);
  double d = rl_checktimeout(L, 2);
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_wait_for(c->loop, f, d))) return rl_raise_last(L);
  return 1;
}

/* core.shield(f) -> future */
int rl_shield(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "shield");
  rill_future *f = rl_checkfut(L, 1);
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_shield(c->loop, f))) return rl_raise_last(L);
  return 1;
}

/* core.wait(array, n, mode, timeout) -> future */
int rl_wait(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "wait");
  lua_Integer n;
  int mode;
  double d;
  rill_future **futs;
  rl_fut *u;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_checkinteger(L, 2);
  mode = (int)luaL_checkinteger(L, 3);
  d = rl_checktimeout(L, 4);
  futs = rl_future_array(L, 1, n);
  u = rl_newfut(L);
  if (!(u->f = rill_wait(c->loop, (size_t)n, futs, mode, d))) return rl_raise_last(L);
  return 1;
}

