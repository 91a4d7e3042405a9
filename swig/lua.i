/* swig/lua.i - the Lua 5.4 module `rill_core`, under bindings/lua/rill.lua.
 *
 * SWIG generates the module, the constants and the generic classes of
 * rill.i (Loop, Future); the Lua-specific part is hand-written C below and
 * registered with %native:
 *
 *  - Tasks are Lua coroutines driven by a rill step function with
 *    lua_resume. A task only ever yields from rill.lua (a plain Lua
 *    function calling coroutine.yield(op, x)), never across a C call. The
 *    step reads the request (OP_SLEEP seconds | OP_AWAIT future) and arranges
 *    its resumption with rill_task_sleep/_yield/_wait; it resumes the
 *    coroutine with one integer (RES_OK, RES_CANCEL: the task's own cancel
 *    is delivered here, RES_ERR: the request was refused). Values and errors
 *    are then read by Lua code calling core.result(future): anything that
 *    allocates Lua memory runs inside the coroutine or under lua_pcall, so
 *    no Lua error ever longjmps through libev or the core.
 *  - The loop runs inside core.run (a C function); while it runs, `cur`
 *    points at that run's context and cur->L, the state that called
 *    core.run (running, inside this C call), drives every step, callback
 *    and handler. Free functions, which may run at any time (loop close,
 *    a __gc), only do luaL_unref on the main state.
 *  - Registry references: a task's coroutine is referenced until the task
 *    is done (free_arg); results that are not a single native value and
 *    Lua error values are referenced by a box freed with the future.
 *  - A single nil/boolean/integer/float/string result travels as rill's
 *    native kinds (so other languages read it); several results or any
 *    other value as a tagged pointer that only this module unwraps.
 */
%module rill_core

%{
#include <lua.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rill.h"

/* ---- Lua version differences: 5.4 is the reference; 5.1 / LuaJIT ------ */
#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L, n, nuv) lua_newuserdata((L), (n))
#endif
#if LUA_VERSION_NUM < 502
#define RL_LUA51 1
#ifndef LUA_OK
#define LUA_OK 0
#endif
#undef lua_rawgetp /* SWIG's are statement lists; these are expressions */
#undef lua_rawsetp
#undef lua_absindex
#define lua_rawgetp(L, idx, p) (lua_pushlightuserdata((L), (void *)(p)), lua_rawget((L), (idx)))
#define lua_rawsetp(L, idx, p) \
  (lua_pushlightuserdata((L), (void *)(p)), lua_insert((L), -2), lua_rawset((L), (idx)))
static int rl_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex rl_absindex
static const char *rl_tolstring51(lua_State *L, int idx) {
  idx = rl_absindex(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  return lua_tostring(L, -1);
}
#define luaL_tolstring(L, idx, len) rl_tolstring51((L), (idx))
#endif

static int rl_isinteger(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 503
  return lua_isinteger(L, idx);
#else
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  {
    lua_Number n = lua_tonumber(L, idx);
    return n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0;
  }
#endif
}

/* lua_resume with 5.4's signature. */
static int rl_resume(lua_State *co, lua_State *from, int nargs, int *nres) {
#if LUA_VERSION_NUM >= 504
  return lua_resume(co, from, nargs, nres);
#else
  int status;
#if LUA_VERSION_NUM >= 502
  status = lua_resume(co, from, nargs);
#else
  (void)from;
  status = lua_resume(co, nargs);
#endif
  *nres = lua_gettop(co);
  return status;
#endif
}

/* luaL_typeerror is 5.4's; this works everywhere. */
static int rl_typeerror(lua_State *L, int idx, const char *tname) {
  return luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got %s", tname, luaL_typename(L, idx)));
}

static void rill_lua_push_error(lua_State *L, int code, const char *message);
#define RILL_SWIG_RAISE(code) \
  do { rill_lua_push_error(L, (code), rill_last_error_message()); SWIG_fail; } while (0)
%}

/* Constructors of rill.i's classes return NULL on failure: raise instead. */
%exception rill_loop::rill_loop {
  $action
  if (!result) RILL_SWIG_RAISE(rill_last_error());
}
%exception rill_future::rill_future {
  $action
  if (!result) RILL_SWIG_RAISE(rill_last_error());
}

%include "rill.i"

%{
/* ------------------------------------------------------------------ */
/* Registry keys and tags (addresses of these constants)               */
/* ------------------------------------------------------------------ */
static const char RL_FUT_MT = 0;    /* metatable of rill.Future userdata */
static const char RL_HANDLE_MT = 0; /* rill.Handle */
static const char RL_TIMEOUT_MT = 0;
static const char RL_GROUP_MT = 0;
static const char RL_ERR_MT = 0;    /* metatable of rill error tables */
static const char RL_VALUES_TAG = 0; /* rill_future_set_pointer tag: packed values */
static const char RL_ERROR_TAG = 0;  /* rill_future_fail payload tag: a Lua error value */

enum { RL_OP_SLEEP = 1, RL_OP_AWAIT = 2 };
enum { RL_RES_OK = 0, RL_RES_CANCEL = 1, RL_RES_ERR = 2 };

#if defined(__GNUC__)
#define RL_TLS __thread
#else
#define RL_TLS
#endif

/* One rill.run in progress on this thread. */
/* Finished coroutines kept for reuse by the next task's first step. */
#define RL_POOL_MAX 256
typedef struct rl_pooled { lua_State *co; int ref; } rl_pooled;

typedef struct rl_ctx {
  rill_loop *loop;
  lua_State *L;       /* the state that called core.run; drives everything */
  int handler_ref;    /* Lua exception handler (registry) or LUA_NOREF */
  int err_idx;        /* during a report from a Lua callback: its error value */
  unsigned long id;   /* distinguishes runs (rill.get_running_loop) */
  struct rl_ctx *prev;
  int attached;       /* a host's loop (core.attach_loop), not a rill.run */
  int npool;
  rl_pooled pool[RL_POOL_MAX];
} rl_ctx;

static RL_TLS rl_ctx *rl_cur;
static RL_TLS lua_State *rl_running_co; /* the task coroutine being resumed */
static RL_TLS rill_task *rl_running_task;
static unsigned long rl_next_id;

/* A Lua task. Its coroutine is taken (from the run's pool, or new) at
 * its first step, so that tasks that end in their first step share a few
 * coroutines; until then the function and arguments are held by refs. */
typedef struct rl_task {
  lua_State *main; /* main thread, for luaL_unref from free functions */
  lua_State *co;   /* valid while co_ref is held */
  int co_ref;      /* LUA_NOREF until the first step / once pooled */
  int fn_ref;      /* the function, or (nargs > 1) the array {fn, args...} */
  int arg_ref;     /* the argument when nargs == 1 */
  int nargs;
  int started;
  struct rl_ctx *ctx; /* the attached loop's context (core.spawn_on), else NULL */
} rl_task;

typedef struct rl_box { /* a registry reference freed with a future */
  lua_State *main;
  int ref;
} rl_box;

typedef struct rl_fut { rill_future *f; } rl_fut;
typedef struct rl_handle { rill_handle *h; } rl_handle;
typedef struct rl_timeout { rill_timeout *t; } rl_timeout;
typedef struct rl_group { rill_group *g; rill_future *join; } rl_group;

#ifdef RL_LUA51
static lua_State *rl_main_state; /* the state that loaded the module */
#endif
static lua_State *rl_main(lua_State *L) {
#ifdef RL_LUA51
  return rl_main_state ? rl_main_state : L;
#else
  lua_State *m;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  m = lua_tothread(L, -1);
  lua_pop(L, 1);
  return m;
#endif
}

/* The state to use for registry work in a free function. */
static lua_State *rl_free_state(lua_State *main) {
  return rl_cur ? rl_cur->L : main;
}

static void rl_box_free(void *p) {
  rl_box *b = (rl_box *)p;
  if (!b) return;
  luaL_unref(rl_free_state(b->main), LUA_REGISTRYINDEX, b->ref);
  free(b);
}

/* Boxes the value on top of L (popped); NULL on ENOMEM (value popped). */
static rl_box *rl_box_new(lua_State *L) {
  rl_box *b = (rl_box *)malloc(sizeof *b);
  if (!b) {
    lua_pop(L, 1);
    return NULL;
  }
  b->main = rl_main(L);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return b;
}

/* Userdata type test without allocation (no luaL_getmetatable by name). */
static void *rl_testudata(lua_State *L, int idx, const char *key) {
  void *p = lua_touserdata(L, idx);
  if (!p || !lua_getmetatable(L, idx)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

static rill_future *rl_checkfut(lua_State *L, int idx) {
  rl_fut *u = (rl_fut *)rl_testudata(L, idx, &RL_FUT_MT);
  if (!u) rl_typeerror(L, idx, "rill task or future");
  if (!u->f) luaL_argerror(L, idx, "released future");
  return u->f;
}

/* Pushes a rill.Future userdata owning one reference of f (taken over). */
static rl_fut *rl_newfut(lua_State *L) {
  rl_fut *u = (rl_fut *)lua_newuserdatauv(L, sizeof(rl_fut), 0);
  u->f = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_FUT_MT);
  lua_setmetatable(L, -2);
  return u;
}

static int rl_fut_gc(lua_State *L) {
  rl_fut *u = (rl_fut *)lua_touserdata(L, 1);
  if (u && u->f) {
    rill_future *f = u->f;
    u->f = NULL;
    rill_future_release(f);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Errors as values                                                     */
/* ------------------------------------------------------------------ */

/* Pushes a rill error table {code=, name=, message=} (metatable RL_ERR_MT). */
static void rill_lua_push_error(lua_State *L, int code, const char *message) {
  const char *name = rill_err_name(code);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, name ? name : "RILL_EAPP");
  lua_setfield(L, -2, "name");
  lua_pushstring(L, message && *message ? message : (code == RILL_ECANCELLED ? "" : rill_strerror(code)));
  lua_setfield(L, -2, "message");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ERR_MT);
  if (lua_istable(L, -1)) lua_setmetatable(L, -2);
  else lua_pop(L, 1);
}

static int rl_err_tostring(lua_State *L) {
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

/* core.new_error(code, message) */
static int rl_new_error(lua_State *L) {
  int code = (int)luaL_checkinteger(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  rill_lua_push_error(L, code, msg);
  return 1;
}

/* Pushes the error value of a failed or cancelled future: the Lua value
 * itself if a Lua task failed with it, else a rill error table. */
static void rl_push_future_error(lua_State *L, rill_future *f) {
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

/* Pushes the values of a DONE future; returns how many (first_only: 1). */
static int rl_push_values(lua_State *L, rill_future *f, int first_only) {
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

/* ------------------------------------------------------------------ */
/* Tasks                                                                */
/* ------------------------------------------------------------------ */

static void rl_task_free(void *arg) {
  rl_task *st = (rl_task *)arg;
  lua_State *L = rl_free_state(st->main);
  luaL_unref(L, LUA_REGISTRYINDEX, st->co_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, st->fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, st->arg_ref);
  st->co = NULL;
  free(st);
}

/* lua_pcall'ed: a new thread and a registry reference to it. */
static int rl_new_thread(lua_State *L) {
  lua_newthread(L);
  lua_pushvalue(L, -1);
  lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
  return 2;
}

/* First step: gives st a coroutine with its function and arguments pushed.
 * Returns the number of arguments, or -1 (the task was failed). */
static int rl_task_prepare(rl_ctx *c, rill_task *t, rl_task *st) {
  lua_State *L = c->L, *co;
  int n = st->nargs, i;
  if (c->npool > 0) {
    c->npool--;
    st->co = c->pool[c->npool].co;
    st->co_ref = c->pool[c->npool].ref;
  } else {
    if (!lua_checkstack(L, 3)) goto nomem;
    lua_pushcfunction(L, rl_new_thread);
    if (lua_pcall(L, 0, 2, 0) != LUA_OK) {
      lua_pop(L, 1);
      goto nomem;
    }
    st->co = lua_tothread(L, -2);
    st->co_ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  co = st->co;
  if (!lua_checkstack(co, n + 2)) goto nomem;
  lua_rawgeti(co, LUA_REGISTRYINDEX, st->fn_ref);
  if (n == 1) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, st->arg_ref);
  } else if (n > 1) { /* {fn, args...}: unpack it */
    for (i = 1; i <= n + 1; i++) lua_rawgeti(co, -i, i);
    lua_remove(co, -(n + 2));
  }
  luaL_unref(L, LUA_REGISTRYINDEX, st->fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, st->arg_ref);
  st->fn_ref = st->arg_ref = LUA_NOREF;
  return n;
nomem:
  rill_future_fail(rill_task_future(t), RILL_ENOMEM, "out of memory starting a Lua task", NULL,
                   NULL, NULL);
  return -1;
}

/* After a normal end: the coroutine (empty again) goes back to the pool. */
static void rl_task_recycle(rl_ctx *c, rl_task *st) {
  lua_settop(st->co, 0);
#if LUA_VERSION_NUM >= 504
  if (c->npool < RL_POOL_MAX && lua_status(st->co) == LUA_OK) {
#else
  if (0) {
#endif
    c->pool[c->npool].co = st->co;
    c->pool[c->npool].ref = st->co_ref;
    c->npool++;
    st->co = NULL;
    st->co_ref = LUA_NOREF;
  }
}

/* lua_pcall'ed on the driver: packs its arguments into {n=..., ...} and
 * returns a registry reference to it. */
static int rl_pack_ref(lua_State *L) {
  int n = lua_gettop(L), i;
  lua_createtable(L, n, 1);
  lua_insert(L, 1);
  for (i = n; i >= 1; i--) lua_rawseti(L, 1, i);
  lua_pushinteger(L, n);
  lua_setfield(L, 1, "n");
  lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
  return 1;
}

static int rl_tostring_fn(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* lua_pcall'ed on the driver with an error value: returns its code, a
 * message and a registry reference to it (LUA_NOREF for cancels). */
static int rl_classify(lua_State *L) {
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

static void rl_complete_ok(lua_State *L, rill_task *t, lua_State *co, int nres) {
  rill_future *f = rill_task_future(t);
  if (nres == 0) { rill_future_set_none(f); return; }
  if (nres == 1) {
    switch (lua_type(co, -1)) {
    case LUA_TNIL: rill_future_set_none(f); lua_pop(co, 1); return;
    case LUA_TBOOLEAN: rill_future_set_bool(f, lua_toboolean(co, -1)); lua_pop(co, 1); return;
    case LUA_TNUMBER:
      if (rl_isinteger(co, -1)) rill_future_set_int(f, (int64_t)lua_tointeger(co, -1));
      else rill_future_set_double(f, lua_tonumber(co, -1));
      lua_pop(co, 1);
      return;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(co, -1, &len);
      if (rill_future_set_bytes(f, s, len) < 0)
        rill_future_fail(f, RILL_ENOMEM, "out of memory storing a task result", NULL, NULL, NULL);
      lua_pop(co, 1);
      return;
    }
    default: break;
    }
  }
  if (!lua_checkstack(L, nres + 2)) {
    lua_settop(co, 0);
    rill_future_fail(f, RILL_ENOMEM, "too many results", NULL, NULL, NULL);
    return;
  }
  lua_pushcfunction(L, rl_pack_ref);
  lua_xmove(co, L, nres);
  if (lua_pcall(L, nres, 1, 0) == LUA_OK) {
    int ref = (int)lua_tointeger(L, -1);
    rl_box *b = (rl_box *)malloc(sizeof *b);
    lua_pop(L, 1);
    if (!b) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      rill_future_fail(f, RILL_ENOMEM, "out of memory storing task results", NULL, NULL, NULL);
      return;
    }
    b->main = rl_main(L);
    b->ref = ref;
    if (rill_future_set_pointer(f, b, rl_box_free, &RL_VALUES_TAG) < 0) {
      rl_box_free(b);
      rill_future_fail(f, RILL_ENOMEM, "out of memory storing task results", NULL, NULL, NULL);
    }
  } else {
    lua_pop(L, 1);
    rill_future_fail(f, RILL_ENOMEM, "out of memory storing task results", NULL, NULL, NULL);
  }
}

static void rl_complete_err(lua_State *L, rill_task *t, lua_State *co) {
  rill_future *f = rill_task_future(t);
  if (!lua_checkstack(L, 4)) {
    rill_future_fail(f, RILL_EEXCEPTION, "(error object lost: stack overflow)", NULL, NULL, NULL);
    return;
  }
  lua_pushcfunction(L, rl_classify);
  lua_xmove(co, L, 1);
  if (lua_pcall(L, 1, 3, 0) != LUA_OK) {
    lua_pop(L, 1);
    rill_future_fail(f, RILL_EEXCEPTION, "(error object lost: out of memory)", NULL, NULL, NULL);
    return;
  }
  {
    int code = (int)lua_tointeger(L, -3);
    const char *msg = lua_tostring(L, -2);
    int ref = (int)lua_tointeger(L, -1);
    if (ref == LUA_NOREF) { /* (LUA_REFNIL boxes a nil error value) */
      rill_future_fail(f, code, msg, NULL, NULL, NULL);
    } else {
      rl_box *b = (rl_box *)malloc(sizeof *b);
      if (b) {
        b->main = rl_main(L);
        b->ref = ref;
        rill_future_fail(f, code, msg, b, rl_box_free, &RL_ERROR_TAG); /* frees b on failure */
      } else {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        rill_future_fail(f, code, msg, NULL, NULL, NULL);
      }
    }
    lua_pop(L, 3);
  }
}

static void rl_step_body(rill_task *t, void *arg) {
  rl_task *st = (rl_task *)arg;
  rl_ctx *c = rl_cur;
  lua_State *co, *L, *saved_co;
  rill_task *saved_task;
  int nargs;
  if (!c) {
    rill_future_fail(rill_task_future(t), RILL_ESTATE, "a Lua task can only run inside rill.run",
                     NULL, NULL, NULL);
    return;
  }
  L = c->L;
  if (!st->started) {
    st->started = 1;
    if (rill_task_cancel_requested(t) == 1) { /* cancelled before its first step */
      rill_future_fail(rill_task_future(t), RILL_ECANCELLED, rill_task_cancel_message(t), NULL,
                       NULL, NULL);
      return;
    }
    if ((nargs = rl_task_prepare(c, t, st)) < 0) return;
    co = st->co;
  } else {
    co = st->co;
    lua_pushinteger(co, rill_task_cancel_requested(t) == 1 ? RL_RES_CANCEL : RL_RES_OK);
    nargs = 1;
  }
  saved_co = rl_running_co;
  saved_task = rl_running_task;
  for (;;) {
    int nres = 0, status, code = RL_RES_ERR;
    rl_running_co = co;
    rl_running_task = t;
    status = rl_resume(co, L, nargs, &nres);
    rl_running_co = saved_co;
    rl_running_task = saved_task;
    if (status == LUA_YIELD) {
      int op = nres >= 1 ? (int)lua_tointeger(co, -nres) : 0;
      if (op == RL_OP_SLEEP && nres >= 2) {
        /* rill_task_sleep counts d from the clock at the call (not from
         * the iteration's cached loop time), as every binding's sleep. */
        double d = lua_tonumber(co, -nres + 1);
        if ((d > 0 ? rill_task_sleep(t, d) : rill_task_yield(t)) == 0) {
          lua_pop(co, nres);
          return;
        }
      } else if (op == RL_OP_AWAIT && nres >= 2) {
        rl_fut *u = (rl_fut *)rl_testudata(co, -nres + 1, &RL_FUT_MT);
        if (u && u->f) {
          if (rill_future_done(u->f) == 1) {
            code = RL_RES_OK; /* awaiting a done future does not yield */
          } else if (rill_task_wait(t, u->f) == 0) {
            lua_pop(co, nres);
            return;
          }
        }
      } else { /* a bare coroutine.yield inside a task: give up one iteration */
        if (rill_task_yield(t) == 0) {
          lua_pop(co, nres);
          return;
        }
      }
      lua_pop(co, nres);
      lua_pushinteger(co, code);
      nargs = 1;
      continue;
    }
    if (status == LUA_OK) {
      rl_complete_ok(L, t, co, nres);
      rl_task_recycle(c, st);
    } else {
      rl_complete_err(L, t, co);
    }
    return;
  }
}

/* A task of an attached loop runs with that loop's context current, as a
 * rill.run task runs with its run's: the host drives the loop. */
static void rl_step(rill_task *t, void *arg) {
  rl_task *st = (rl_task *)arg;
  rl_ctx *saved = rl_cur;
  if (st->ctx) rl_cur = st->ctx;
  rl_step_body(t, arg);
  rl_cur = saved;
}

static int rl_raise_last(lua_State *L) {
  rill_lua_push_error(L, rill_last_error(), rill_last_error_message());
  return lua_error(L);
}

static rl_ctx *rl_need_ctx(lua_State *L, const char *what) {
  if (!rl_cur) luaL_error(L, "rill.%s: no rill loop is running (call it inside rill.run)", what);
  return rl_cur;
}

/* Creates a task running the function at fidx with the nargs values after
 * it; pushes its rill.Future. */
static rill_task *rl_spawn_at(lua_State *L, rill_loop *loop, int fidx, int nargs) {
  rl_task *st;
  rill_task *t;
  rl_fut *u;
  int fn_ref, arg_ref = LUA_NOREF;
  luaL_checktype(L, fidx, LUA_TFUNCTION);
  u = rl_newfut(L);
  if (nargs > 1) { /* {fn, args...} */
    int i;
    lua_createtable(L, nargs + 1, 0);
    for (i = 0; i <= nargs; i++) {
      lua_pushvalue(L, fidx + i);
      lua_rawseti(L, -2, i + 1);
    }
  } else {
    if (nargs == 1) {
      lua_pushvalue(L, fidx + 1);
      arg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pushvalue(L, fidx);
  }
  fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  st = (rl_task *)malloc(sizeof *st);
  if (!st) {
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, arg_ref);
    luaL_error(L, "out of memory");
  }
  st->main = rl_main(L);
  st->co = NULL;
  st->co_ref = LUA_NOREF;
  st->fn_ref = fn_ref;
  st->arg_ref = arg_ref;
  st->nargs = nargs;
  st->started = 0;
  st->ctx = (rl_cur && rl_cur->attached) ? rl_cur : NULL;
  t = rill_task_new(loop, rl_step, st, rl_task_free);
  if (!t) {
    int code = rill_last_error();
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, arg_ref);
    free(st);
    rill_lua_push_error(L, code, rill_last_error_message());
    lua_error(L);
  }
  u->f = rill_task_future(t); /* the reference rill_task_new returned */
  return t;
}

/* core.spawn(fn, ...) -> task */
static int rl_spawn(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "spawn");
  rl_spawn_at(L, c->loop, 1, lua_gettop(L) - 1);
  return 1;
}

/* core.check_task(): raises unless called from a rill task's own coroutine. */
static int rl_check_task(lua_State *L) {
  if (!rl_cur || L != rl_running_co) {
    const char *what = luaL_optstring(L, 1, "this");
    luaL_where(L, 2); /* the caller of rill.sleep & co */
    if (!rl_cur) lua_pushfstring(L, "rill.%s called outside rill.run", what);
    else lua_pushfstring(L, "rill.%s called outside a rill task (from a plain coroutine or callback)", what);
    lua_concat(L, 2);
    return lua_error(L);
  }
  return 0;
}

/* core.raise_resume(code): the yield came back with RES_CANCEL/RES_ERR. */
static int rl_raise_resume(lua_State *L) {
  int code = (int)luaL_checkinteger(L, 1);
  if (code == RL_RES_CANCEL) {
    const char *msg = rl_running_task ? rill_task_cancel_message(rl_running_task) : NULL;
    rill_lua_push_error(L, RILL_ECANCELLED, msg);
  } else {
    int rc = rill_last_error();
    rill_lua_push_error(L, rc < 0 ? rc : RILL_EINVAL, rc < 0 ? rill_last_error_message() : "cannot await this value");
  }
  return lua_error(L);
}

/* core.result(f): the values of a done future, or raises its error. */
static int rl_result(lua_State *L) {
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
static int rl_error(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  int s = rill_future_state(f);
  if (s == RILL_FAILED || s == RILL_CANCELLED) rl_push_future_error(L, f);
  else lua_pushnil(L);
  return 1;
}

/* core.code(f): 0 done, the failure code, ECANCELLED, or ESTATE if pending;
 * marks a failure retrieved. */
static int rl_code(lua_State *L) {
  lua_pushinteger(L, rill_future_error(rl_checkfut(L, 1)));
  return 1;
}

static int rl_done(lua_State *L) {
  lua_pushboolean(L, rill_future_done(rl_checkfut(L, 1)) == 1);
  return 1;
}

static int rl_cancelled(lua_State *L) {
  lua_pushboolean(L, rill_future_state(rl_checkfut(L, 1)) == RILL_CANCELLED);
  return 1;
}

static int rl_state(lua_State *L) {
  lua_pushinteger(L, rill_future_state(rl_checkfut(L, 1)));
  return 1;
}

/* core.cancel(f, msg) -> boolean */
static int rl_cancel(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  int rc = rill_future_cancel_msg(f, msg);
  if (rc < 0) {
    if (rc == RILL_ECLOSED) { lua_pushboolean(L, 0); return 1; }
    rill_lua_push_error(L, rc, rill_last_error_message());
    return lua_error(L);
  }
  lua_pushboolean(L, rc == 1);
  return 1;
}

static rill_task *rl_checktask(lua_State *L, int idx) {
  rill_task *t = rill_task_from_future(rl_checkfut(L, idx));
  if (!t) luaL_argerror(L, idx, "not a task");
  return t;
}

static int rl_task_name(lua_State *L) {
  lua_pushstring(L, rill_task_name(rl_checktask(L, 1)));
  return 1;
}

static int rl_task_set_name(lua_State *L) {
  rill_task *t = rl_checktask(L, 1);
  if (rill_task_set_name(t, luaL_checkstring(L, 2)) < 0) return luaL_error(L, "%s", rill_last_error_message());
  return 0;
}

static int rl_task_cancelling(lua_State *L) {
  lua_pushinteger(L, rill_task_cancelling(rl_checktask(L, 1)));
  return 1;
}

static int rl_task_uncancel(lua_State *L) {
  lua_pushinteger(L, rill_task_uncancel(rl_checktask(L, 1)));
  return 1;
}

/* Pushes a new rill.Future for f (one more reference); equal (==) to
 * every other userdata of the same future. */
static void rl_push_ref(lua_State *L, rill_future *f) {
  rl_fut *u = rl_newfut(L);
  u->f = rill_future_retain(f);
}

static int rl_fut_eq(lua_State *L) {
  rl_fut *a = (rl_fut *)rl_testudata(L, 1, &RL_FUT_MT);
  rl_fut *b = (rl_fut *)rl_testudata(L, 2, &RL_FUT_MT);
  lua_pushboolean(L, a && b && a->f == b->f);
  return 1;
}

/* core.current_task(): the running Lua task, or nil. */
static int rl_current_task(lua_State *L) {
  if (!rl_running_task || L != rl_running_co) return 0;
  rl_push_ref(L, rill_task_future(rl_running_task));
  return 1;
}

/* core.all_tasks(): the pending tasks of the running loop, oldest first. */
static int rl_all_tasks(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "all_tasks");
  int n = rill_loop_task_count(c->loop), i, m;
  rill_task **ts;
  if (n < 0) return rl_raise_last(L);
  ts = (rill_task **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ts, 0);
  m = rill_loop_tasks(c->loop, ts, (size_t)n);
  lua_createtable(L, m > 0 ? m : 0, 0);
  for (i = 0; i < m; i++) {
    rl_push_ref(L, rill_task_future(ts[i]));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* core.current_task_name() */
static int rl_current_name(lua_State *L) {
  if (!rl_running_task) return 0;
  lua_pushstring(L, rill_task_name(rl_running_task));
  return 1;
}

/* ------------------------------------------------------------------ */
/* Combinators                                                          */
/* ------------------------------------------------------------------ */

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
static int rl_gather(lua_State *L) {
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
static int rl_gather_results(lua_State *L) {
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

static double rl_checktimeout(lua_State *L, int idx) {
  double d;
  if (lua_isnoneornil(L, idx)) return RILL_FOREVER;
  d = luaL_checknumber(L, idx);
  if (isnan(d)) luaL_argerror(L, idx, "timeout is NaN");
  return d;
}

/* core.wait_for(f, timeout) -> future */
static int rl_wait_for(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "wait_for");
  rill_future *f = rl_checkfut(L, 1);
  double d = rl_checktimeout(L, 2);
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_wait_for(c->loop, f, d))) return rl_raise_last(L);
  return 1;
}

/* core.shield(f) -> future */
static int rl_shield(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "shield");
  rill_future *f = rl_checkfut(L, 1);
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_shield(c->loop, f))) return rl_raise_last(L);
  return 1;
}

/* core.wait(array, n, mode, timeout) -> future */
static int rl_wait(lua_State *L) {
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

/* core.future_new() -> a plain future; core.future_set(f, v), core.future_fail(f, err) */
static int rl_future_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "future");
  rl_fut *u = rl_newfut(L);
  if (!(u->f = rill_future_new(c->loop))) return rl_raise_last(L);
  return 1;
}

static int rl_future_set(lua_State *L) {
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

static int rl_future_fail(lua_State *L) {
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

/* ------------------------------------------------------------------ */
/* Timeouts and task groups                                             */
/* ------------------------------------------------------------------ */

static int rl_timeout_gc(lua_State *L) {
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
static int rl_timeout_new(lua_State *L) {
  double d = rl_checktimeout(L, 1);
  rl_timeout *u;
  if (!rl_cur || L != rl_running_co) return luaL_error(L, "rill.timeout called outside a rill task");
  u = (rl_timeout *)lua_newuserdatauv(L, sizeof *u, 0);
  u->t = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_TIMEOUT_MT);
  lua_setmetatable(L, -2);
  if (!(u->t = rill_timeout_new(rl_running_task, d))) return rl_raise_last(L);
  return 1;
}

static int rl_timeout_exit(lua_State *L) {
  rl_timeout *u = rl_checktimeout_ud(L, 1);
  int rc = rill_timeout_exit(u->t, (int)luaL_checkinteger(L, 2));
  lua_pushinteger(L, rc);
  return 1;
}

static int rl_timeout_expired(lua_State *L) {
  lua_pushboolean(L, rill_timeout_expired(rl_checktimeout_ud(L, 1)->t) == 1);
  return 1;
}

static int rl_timeout_reschedule(lua_State *L) {
  rl_timeout *u = rl_checktimeout_ud(L, 1);
  if (rill_timeout_reschedule(u->t, rl_checktimeout(L, 2)) < 0) return rl_raise_last(L);
  return 0;
}

static int rl_group_gc(lua_State *L) {
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
static int rl_group_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "task_group");
  rl_group *u;
  if (L != rl_running_co) return luaL_error(L, "rill.task_group called outside a rill task");
  u = (rl_group *)lua_newuserdatauv(L, sizeof *u, 0);
  u->g = NULL;
  u->join = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_GROUP_MT);
  lua_setmetatable(L, -2);
  if (!(u->g = rill_group_new(c->loop, rl_running_task))) return rl_raise_last(L);
  return 1;
}

/* core.group_spawn(g, fn, ...) -> task */
static int rl_group_spawn(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "spawn");
  rl_group *u = rl_checkgroup(L, 1);
  rill_task *t = rl_spawn_at(L, c->loop, 2, lua_gettop(L) - 2);
  if (rill_group_add(u->g, t) < 0) {
    rill_lua_push_error(L, RILL_ESTATE, "the task group is finished or shutting down");
    return lua_error(L);
  }
  return 1;
}

/* core.group_join(g, body_rc) -> future (retained) */
static int rl_group_join(lua_State *L) {
  rl_group *u = rl_checkgroup(L, 1);
  int rc = (int)luaL_checkinteger(L, 2);
  rl_fut *f = rl_newfut(L);
  rill_future *j = rill_group_join(u->g, rc);
  if (!j) return rl_raise_last(L);
  f->f = rill_future_retain(j);
  return 1;
}

/* core.group_finish(g, join_rc) -> rc, {errors...} */
static int rl_group_finish(lua_State *L) {
  rl_group *u = rl_checkgroup(L, 1);
  int rc = rill_group_finish(u->g, (int)luaL_checkinteger(L, 2));
  size_t n = rill_group_error_count(u->g), i;
  lua_pushinteger(L, rc);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    rill_task *t = rill_group_error_child(u->g, i);
    rl_push_future_error(L, rill_task_future(t));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}

/* ------------------------------------------------------------------ */
/* Callbacks and the exception handler                                  */
/* ------------------------------------------------------------------ */

static int rl_handle_gc(lua_State *L) {
  rl_handle *u = (rl_handle *)lua_touserdata(L, 1);
  if (u && u->h) { rill_handle_release(u->h); u->h = NULL; }
  return 0;
}

static rl_handle *rl_checkhandle(lua_State *L) {
  rl_handle *u = (rl_handle *)rl_testudata(L, 1, &RL_HANDLE_MT);
  if (!u || !u->h) rl_typeerror(L, 1, "rill handle");
  return u;
}

static int rl_handle_cancel(lua_State *L) {
  rill_handle_cancel(rl_checkhandle(L)->h);
  return 0;
}

static int rl_handle_cancelled(lua_State *L) {
  lua_pushboolean(L, rill_handle_cancelled(rl_checkhandle(L)->h) == 1);
  return 1;
}

static int rl_handle_when(lua_State *L) {
  lua_pushnumber(L, rill_handle_when(rl_checkhandle(L)->h));
  return 1;
}

/* A protected tostring of the value at idx, pushed; never raises. */

static const char *rl_safe_tostring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, rl_tostring_fn);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushstring(L, "(error object is not a string)");
  }
  return lua_tostring(L, -1);
}

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
static int rl_call_soon(lua_State *L) {
  lua_settop(L, 1);
  rl_schedule(L, 0, 0);
  return 1;
}

/* core.call_later(delay, fn) -> handle */
static int rl_call_later(lua_State *L) {
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
static int rl_set_exception_handler(lua_State *L) {
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
static int rl_report(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "report");
  const char *msg = luaL_checkstring(L, 1);
  int saved = c->err_idx;
  if (!lua_isnoneornil(L, 2)) c->err_idx = 2;
  rill_loop_report(c->loop, msg, NULL);
  c->err_idx = saved;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */
/* ------------------------------------------------------------------ */

static int rl_time(lua_State *L) {
  lua_pushnumber(L, rill_loop_time(rl_need_ctx(L, "time")->loop));
  return 1;
}

/* core.loop_id(): the running run's id, or nil */
static int rl_loop_id(lua_State *L) {
  if (!rl_cur) return 0;
  lua_pushinteger(L, (lua_Integer)rl_cur->id);
  return 1;
}

static int rl_task_count(lua_State *L) {
  lua_pushinteger(L, rill_loop_task_count(rl_need_ctx(L, "task_count")->loop));
  return 1;
}

static int rl_set_debug(lua_State *L) {
  rill_loop_set_debug(rl_need_ctx(L, "set_debug")->loop, lua_toboolean(L, 1));
  return 0;
}

static int rl_dump_tasks(lua_State *L) {
  char *s = rill_loop_dump_tasks(rl_need_ctx(L, "dump_tasks")->loop);
  lua_pushstring(L, s ? s : "");
  rill_free(s);
  return 1;
}

/* core.run(fn, ...): a new loop, fn(...) as its main task, run to the end;
 * leftovers cancelled; the loop closed. Returns fn's results or raises
 * its error (the same value). */
static int rl_run(lua_State *L) {
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

/* ------------------------------------------------------------------ */
/* Embedding: a host's loop and futures (see examples/polyglot-host)   */
/* ------------------------------------------------------------------ */

static const char RL_ATTACHED_MT = 0; /* metatable of core.attach_loop's userdata */
typedef struct rl_attached { rl_ctx *c; } rl_attached;

/* An address given as an integer, a light userdata, or this module's own
 * SWIG object of type (rill_core.Loop / rill_core.Future). */
static void *rl_checkaddr(lua_State *L, int idx, swig_type_info *type) {
  void *p = NULL;
  if (lua_islightuserdata(L, idx)) p = lua_touserdata(L, idx);
  else if (lua_type(L, idx) == LUA_TUSERDATA) {
    if (SWIG_ConvertPtr(L, idx, &p, type, 0) != SWIG_OK) return (void *)(intptr_t)rl_typeerror(L, idx, "address");
  } else p = (void *)(intptr_t)luaL_checkinteger(L, idx);
  if (!p) luaL_argerror(L, idx, "NULL address");
  return p;
}

static int rl_attached_gc(lua_State *L) {
  rl_attached *a = (rl_attached *)lua_touserdata(L, 1);
  if (a && a->c) {
    rl_ctx *c = a->c;
    a->c = NULL;
    while (c->npool > 0) luaL_unref(L, LUA_REGISTRYINDEX, c->pool[--c->npool].ref);
    if (c->handler_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, c->handler_ref);
    free(c);
  }
  return 0;
}

/* core.attach_loop(address) -> an attached loop: the host's rill_loop*,
 * never closed or freed here. Its tasks (core.spawn_on) run whenever the
 * host runs the loop. rill.lua keeps it alive for the life of the state. */
static int rl_attach_loop(lua_State *L) {
  rill_loop *loop = (rill_loop *)rl_checkaddr(L, 1, SWIGTYPE_p_rill_loop);
  rl_attached *a;
  rl_ctx *c;
  if (rill_loop_is_closed(loop) != 0) {
    rill_lua_push_error(L, RILL_ECLOSED, "the loop is closed");
    return lua_error(L);
  }
  a = (rl_attached *)lua_newuserdatauv(L, sizeof *a, 0);
  a->c = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ATTACHED_MT);
  lua_setmetatable(L, -2);
  c = (rl_ctx *)malloc(sizeof *c);
  if (!c) return luaL_error(L, "out of memory");
  c->loop = loop;
  c->L = rl_main(L);
  c->handler_ref = LUA_NOREF;
  c->err_idx = 0;
  c->id = ++rl_next_id;
  c->prev = NULL;
  c->attached = 1;
  c->npool = 0;
  a->c = c;
  return 1;
}

/* core.spawn_on(attached, fn, ...) -> task on the attached loop */
static int rl_spawn_on(lua_State *L) {
  rl_attached *a = (rl_attached *)rl_testudata(L, 1, &RL_ATTACHED_MT);
  rill_task *t;
  if (!a || !a->c) return rl_typeerror(L, 1, "attached loop");
  t = rl_spawn_at(L, a->c->loop, 2, lua_gettop(L) - 2);
  ((rl_task *)rill_task_arg(t))->ctx = a->c;
  return 1;
}

/* core.future_address(f) -> the rill_future* of a task or future (borrowed) */
static int rl_future_address(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(intptr_t)rl_checkfut(L, 1));
  return 1;
}

/* core.wrap_future(address) -> a rill.Future holding its own reference */
static int rl_wrap_future(lua_State *L) {
  rill_future *f = rl_testudata(L, 1, &RL_FUT_MT)
                        ? rl_checkfut(L, 1) /* a rill.Future: one more reference */
                        : (rill_future *)rl_checkaddr(L, 1, SWIGTYPE_p_rill_future);
  rl_fut *u = rl_newfut(L);
  u->f = rill_future_retain(f);
  return 1;
}

/* Hands out rill.Future's metatable so rill.lua can give it methods. */
static int rl_future_mt(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_FUT_MT);
  return 1;
}

static int rl_error_mt(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_ERR_MT);
  return 1;
}

/* core.monotonic(): CLOCK_MONOTONIC in seconds (usable outside rill.run). */
static int rl_monotonic(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* core.version() (rill.i's rill_version_string is not wrapped: see README) */
static int rl_version(lua_State *L) {
  lua_pushstring(L, rill_version_string());
  return 1;
}

static int rl_is_future(lua_State *L) {
  lua_pushboolean(L, rl_testudata(L, 1, &RL_FUT_MT) != NULL);
  return 1;
}

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

static void rl_init(lua_State *L) {
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
}
%}

%init %{
  rl_init(L);
%}

%constant int OP_SLEEP = RL_OP_SLEEP;
%constant int OP_AWAIT = RL_OP_AWAIT;
%constant int RES_CANCEL = RL_RES_CANCEL;
%constant double FOREVER = RILL_FOREVER;

%native(run) int rl_run(lua_State *L);
%native(spawn) int rl_spawn(lua_State *L);
%native(check_task) int rl_check_task(lua_State *L);
%native(raise_resume) int rl_raise_resume(lua_State *L);
%native(result) int rl_result(lua_State *L);
%native(error) int rl_error(lua_State *L);
%native(code) int rl_code(lua_State *L);
%native(done) int rl_done(lua_State *L);
%native(cancelled) int rl_cancelled(lua_State *L);
%native(state) int rl_state(lua_State *L);
%native(cancel) int rl_cancel(lua_State *L);
%native(task_name) int rl_task_name(lua_State *L);
%native(task_set_name) int rl_task_set_name(lua_State *L);
%native(task_cancelling) int rl_task_cancelling(lua_State *L);
%native(task_uncancel) int rl_task_uncancel(lua_State *L);
%native(current_task_name) int rl_current_name(lua_State *L);
%native(current_task) int rl_current_task(lua_State *L);
%native(all_tasks) int rl_all_tasks(lua_State *L);
%native(gather) int rl_gather(lua_State *L);
%native(gather_results) int rl_gather_results(lua_State *L);
%native(wait_for) int rl_wait_for(lua_State *L);
%native(shield) int rl_shield(lua_State *L);
%native(wait) int rl_wait(lua_State *L);
%native(future_new) int rl_future_new(lua_State *L);
%native(future_set) int rl_future_set(lua_State *L);
%native(future_fail) int rl_future_fail(lua_State *L);
%native(timeout_new) int rl_timeout_new(lua_State *L);
%native(timeout_exit) int rl_timeout_exit(lua_State *L);
%native(timeout_expired) int rl_timeout_expired(lua_State *L);
%native(timeout_reschedule) int rl_timeout_reschedule(lua_State *L);
%native(group_new) int rl_group_new(lua_State *L);
%native(group_spawn) int rl_group_spawn(lua_State *L);
%native(group_join) int rl_group_join(lua_State *L);
%native(group_finish) int rl_group_finish(lua_State *L);
%native(call_soon) int rl_call_soon(lua_State *L);
%native(call_later) int rl_call_later(lua_State *L);
%native(set_exception_handler) int rl_set_exception_handler(lua_State *L);
%native(report) int rl_report(lua_State *L);
%native(time) int rl_time(lua_State *L);
%native(loop_id) int rl_loop_id(lua_State *L);
%native(task_count) int rl_task_count(lua_State *L);
%native(set_debug) int rl_set_debug(lua_State *L);
%native(dump_tasks) int rl_dump_tasks(lua_State *L);
%native(future_mt) int rl_future_mt(lua_State *L);
%native(error_mt) int rl_error_mt(lua_State *L);
%native(version) int rl_version(lua_State *L);
%native(monotonic) int rl_monotonic(lua_State *L);
%native(is_future) int rl_is_future(lua_State *L);
%native(new_error) int rl_new_error(lua_State *L);
%native(attach_loop) int rl_attach_loop(lua_State *L);
%native(spawn_on) int rl_spawn_on(lua_State *L);
%native(future_address) int rl_future_address(lua_State *L);
%native(wrap_future) int rl_wrap_future(lua_State *L);
