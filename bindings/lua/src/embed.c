/* bindings/lua/src/embed.c - Embedding: a host's loop (attach_loop, spawn_on) and futures by address. */
#include "rill_lua.h"

/* An address given as an integer, a light userdata, or this module's own
 * SWIG object of type (rill_core.Loop / rill_core.Future). */
static void *rl_checkaddr(lua_State *L, int idx, int is_loop) {
  void *p = NULL;
  if (lua_islightuserdata(L, idx)) p = lua_touserdata(L, idx);
  else if (lua_type(L, idx) == LUA_TUSERDATA) {
    if (!(p = rl_swig_pointer(L, idx, is_loop))) return (void *)(intptr_t)rl_typeerror(L, idx, "address");
  } else p = (void *)(intptr_t)luaL_checkinteger(L, idx);
  if (!p) luaL_argerror(L, idx, "NULL address");
  return p;
}

/* The context of a host's loop (or of a loop object) is freed by the core
 * when the loop closes (before lua_close: its references are in this state). */
void rl_ctx_free(void *p) {
  rl_ctx *c = (rl_ctx *)p;
  rl_ctx_clear(c);
  free(c);
}

int rl_attached_gc(lua_State *L) {
  (void)L; /* the loop owns its context */
  return 0;
}

/* core.attach_loop(address) -> an attached loop: the host's rill_loop*,
 * never closed or freed here. Its tasks (core.spawn_on) run whenever the
 * host runs the loop. */
int rl_attach_loop(lua_State *L) {
  rill_loop *loop = (rill_loop *)rl_checkaddr(L, 1, 1);
  rl_attached *a;
  if (rill_loop_is_closed(loop) != 0) {
    rill_lua_push_error(L, RILL_ECLOSED, "the loop is closed");
    return lua_error(L);
  }
  a = (rl_attached *)lua_newuserdatauv(L, sizeof *a, 0);
  a->loop = loop;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ATTACHED_MT);
  lua_setmetatable(L, -2);
  if (!rl_ctx_of(loop)) {
    rl_ctx *c = (rl_ctx *)malloc(sizeof *c);
    if (!c) return luaL_error(L, "out of memory");
    rl_ctx_init(c, loop, rl_main(L), 1);
    rl_ctx_attach(L, c, rl_ctx_free); /* frees c if it fails */
  }
  return 1;
}

/* core.spawn_on(attached, fn, ...) -> task on the attached loop */
int rl_spawn_on(lua_State *L) {
  rl_attached *a = (rl_attached *)rl_testudata(L, 1, &RL_ATTACHED_MT);
  if (!a) return rl_typeerror(L, 1, "attached loop");
  rl_spawn_at(L, a->loop, 2, lua_gettop(L) - 2);
  return 1;
}

/* core.future_address(f) -> the rill_future* of a task or future (borrowed) */
int rl_future_address(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(intptr_t)rl_checkfut(L, 1));
  return 1;
}

/* core.wrap_future(address) -> a rill.Future holding its own reference */
int rl_wrap_future(lua_State *L) {
  rill_future *f = rl_testudata(L, 1, &RL_FUT_MT)
                        ? rl_checkfut(L, 1) /* a rill.Future: one more reference */
                        : (rill_future *)rl_checkaddr(L, 1, 0);
  rl_fut *u = rl_newfut(L);
  u->f = rill_future_retain(f);
  return 1;
}

/* core.monotonic(): CLOCK_MONOTONIC in seconds (usable outside rill.run). */
int rl_monotonic(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* core.version() (rill.i's rill_version_string is not wrapped: see README) */
int rl_version(lua_State *L) {
  lua_pushstring(L, rill_version_string());
  return 1;
}

