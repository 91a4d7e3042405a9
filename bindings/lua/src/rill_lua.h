/* bindings/lua/src/rill_lua.h - internal header of the Lua binding (rill_core).
 *
 * How the binding works:
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
 *  - Each loop Lua uses (core.run's, or a host's from core.attach_loop)
 *    has a context (rl_ctx), the core's per-loop binding state under
 *    RL_TAG: rl_ctx_of(loop) finds it. ctx->L, the state that called
 *    core.run (running, inside this C call) or the main state of an
 *    attached loop, drives every step, callback and handler. Free
 *    functions, which may run at any time (loop close, a __gc), only do
 *    luaL_unref.
 *  - Registry references: a task's coroutine is referenced until the task
 *    is done (free_arg); results that are not a single native value and
 *    Lua error values are referenced by a box freed with the future.
 *  - A single nil/boolean/integer/float/string result travels as rill's
 *    native kinds (so other languages read it); several results or any
 *    other value as a tagged pointer that only this module unwraps.
 *
 * One file per concern (errors, future, task, gather, group, loop, evloop,
 * embed, sync, io);
 * the entry points (core.*) are registered by swig/lua.i with %native.
 */
#ifndef RILL_LUA_H
#define RILL_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rill.h"
#include "rill_errors.h" /* bindings/common: the one exception table */

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
static inline int rl_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex rl_absindex
static inline const char *rl_tolstring51(lua_State *L, int idx) {
  idx = rl_absindex(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  return lua_tostring(L, -1);
}
#define luaL_tolstring(L, idx, len) rl_tolstring51((L), (idx))
#endif

static inline int rl_isinteger(lua_State *L, int idx) {
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
static inline int rl_resume(lua_State *co, lua_State *from, int nargs, int *nres) {
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
static inline int rl_typeerror(lua_State *L, int idx, const char *tname) {
  return luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got %s", tname, luaL_typename(L, idx)));
}


/* ------------------------------------------------------------------ */
/* Registry keys and tags (addresses of these constants)               */
/* ------------------------------------------------------------------ */
/* Internal names of the module: hidden, so that only luaopen_rill_core is
 * exported. */
#define RL_INTERNAL __attribute__((visibility("hidden")))

/* Their addresses are the keys (defined in embed.c). */
RL_INTERNAL extern const char RL_FUT_MT;      /* metatable of rill.Future userdata */
RL_INTERNAL extern const char RL_HANDLE_MT;   /* rill.Handle */
RL_INTERNAL extern const char RL_TIMEOUT_MT;
RL_INTERNAL extern const char RL_GROUP_MT;
RL_INTERNAL extern const char RL_ERR_MT;      /* metatable of rill error tables */
RL_INTERNAL extern const char RL_ATTACHED_MT; /* core.attach_loop's userdata */
RL_INTERNAL extern const char RL_LOOP_MT;     /* core.loop_new's userdata (rill.new_loop) */
RL_INTERNAL extern const char RL_TAG;         /* the binding's tag (loop state, owner) */
RL_INTERNAL extern const char RL_VALUES_TAG;  /* rill_future_set_pointer tag: packed values */
RL_INTERNAL extern const char RL_ERROR_TAG;   /* rill_future_fail payload tag: a Lua error value */

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
  lua_State *err_L;   /* ... on this thread's stack */
  unsigned long id;   /* distinguishes runs (rill.get_running_loop) */
  int attached;       /* a host's loop (core.attach_loop), not a rill.run */
  int npool;
  rl_pooled pool[RL_POOL_MAX];
} rl_ctx;

RL_INTERNAL extern RL_TLS lua_State *rl_running_co; /* the task coroutine being resumed */
RL_INTERNAL extern RL_TLS rill_task *rl_running_task;
RL_INTERNAL extern unsigned long rl_next_id;

/* A Lua task, inside the core's task (rill_task_new_inline). Its coroutine
 * is taken (from the run's pool, or new) at its first step, so that tasks
 * that end in their first step share a few coroutines; until then the
 * function and arguments are held by refs. */
/* How a task's single argument is kept until its first step. */
enum { RL_ARG_REF, RL_ARG_NIL, RL_ARG_BOOLEAN, RL_ARG_INTEGER, RL_ARG_FLOAT };
typedef union rl_arg {
  lua_Integer i;
  lua_Number d;
  int b;
} rl_arg;

typedef struct rl_task {
  lua_State *co;   /* valid while co_ref is held */
  int co_ref;      /* LUA_NOREF until the first step / once pooled */
  int fn_ref;      /* the function, or (nargs > 1) the array {fn, args...};
                      until the first step, or the end in debug mode */
  int arg_ref;     /* the argument when nargs == 1 and arg_kind is RL_ARG_REF */
  int nargs;
  unsigned char started;
  unsigned char arg_kind; /* RL_ARG_*: a nil, boolean or number is in arg */
  rl_arg arg;
  struct rl_ctx *ctx; /* its loop's context (valid until the loop closes) */
} rl_task;

typedef struct rl_box { /* a registry reference freed with a future */
  lua_State *main;
  int ref;
} rl_box;

typedef struct rl_fut { rill_future *f; } rl_fut;
typedef struct rl_handle { rill_handle *h; } rl_handle;
typedef struct rl_timeout { rill_timeout *t; } rl_timeout;
typedef struct rl_group { rill_group *g; } rl_group;
typedef struct rl_attached { rill_loop *loop; } rl_attached; /* core.attach_loop */
/* A loop the Lua program owns (rill.new_loop): freed by __gc; its context
 * is malloc'd and freed by the core when the loop closes. */
typedef struct rl_owned { rill_loop *loop; } rl_owned;

#ifdef RL_LUA51
RL_INTERNAL extern lua_State *rl_main_state; /* the state that loaded the module */
#endif
static inline lua_State *rl_main(lua_State *L) {
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

/* The thread's last error message if it is about code, else NULL (the
 * error table's text is used then). */
static inline const char *rl_message_of(int code) {
  return rill_last_error() == code ? rill_last_error_message() : NULL;
}

/* The context of a loop, NULL if Lua has none there (or it is closed). */
static inline rl_ctx *rl_ctx_of(rill_loop *loop) {
  return loop ? (rl_ctx *)rill_loop_binding(loop, &RL_TAG) : NULL;
}

/* The context of the loop running on this thread, or NULL. */
static inline rl_ctx *rl_ctx_current(void) { return rl_ctx_of(rill_loop_current()); }

/* The state to use for registry work in a free function. */
static inline lua_State *rl_free_state(lua_State *main) {
  rl_ctx *c = rl_ctx_current();
  return c ? c->L : main;
}

/* Userdata type test without allocation (no luaL_getmetatable by name). */
static inline void *rl_testudata(lua_State *L, int idx, const char *key) {
  void *p = lua_touserdata(L, idx);
  if (!p || !lua_getmetatable(L, idx)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

/* The loop of an attached loop or a loop object at idx, or NULL. */
static inline rill_loop *rl_toloop(lua_State *L, int idx) {
  rl_attached *a = (rl_attached *)rl_testudata(L, idx, &RL_ATTACHED_MT);
  rl_owned *o;
  if (a) return a->loop;
  o = (rl_owned *)rl_testudata(L, idx, &RL_LOOP_MT);
  return o ? o->loop : NULL;
}

static inline rill_future *rl_checkfut(lua_State *L, int idx) {
  rl_fut *u = (rl_fut *)rl_testudata(L, idx, &RL_FUT_MT);
  if (!u) rl_typeerror(L, idx, "rill task or future");
  if (!u->f) luaL_argerror(L, idx, "released future");
  return u->f;
}

/* Pushes a rill.Future userdata owning one reference of f (taken over). */
static inline rl_fut *rl_newfut(lua_State *L) {
  rl_fut *u = (rl_fut *)lua_newuserdatauv(L, sizeof(rl_fut), 0);
  u->f = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RL_FUT_MT);
  lua_setmetatable(L, -2);
  return u;
}


/* swig/lua.i: the handle of a SWIG Loop (is_loop) or Future object, else NULL */
RL_INTERNAL void *rl_swig_pointer(lua_State *L, int idx, int is_loop);

/* embed.c */
RL_INTERNAL void rl_ctx_free(void *p);
RL_INTERNAL int rl_attached_gc(lua_State *L);
RL_INTERNAL int rl_attach_loop(lua_State *L);
RL_INTERNAL int rl_spawn_on(lua_State *L);
RL_INTERNAL int rl_future_address(lua_State *L);
RL_INTERNAL int rl_wrap_future(lua_State *L);
RL_INTERNAL int rl_monotonic(lua_State *L);
RL_INTERNAL int rl_version(lua_State *L);

/* module.c */
RL_INTERNAL void rl_init(lua_State *L);

/* errors.c */
RL_INTERNAL void rill_lua_push_error(lua_State *L, int code, const char *message);
RL_INTERNAL int rl_err_tostring(lua_State *L);
RL_INTERNAL int rl_new_error(lua_State *L);
RL_INTERNAL int rl_error_table(lua_State *L);
RL_INTERNAL void rl_push_future_error(lua_State *L, rill_future *f);
RL_INTERNAL int rl_error_mt(lua_State *L);
RL_INTERNAL int rl_raise_last(lua_State *L);
RL_INTERNAL int rl_classify(lua_State *L);
RL_INTERNAL const char *rl_safe_tostring(lua_State *L, int idx);

/* future.c */
RL_INTERNAL void rl_box_free(void *p);
RL_INTERNAL rl_box *rl_box_new(lua_State *L);
RL_INTERNAL int rl_fut_gc(lua_State *L);
RL_INTERNAL int rl_push_values(lua_State *L, rill_future *f, int first_only);
RL_INTERNAL int rl_future_new(lua_State *L);
RL_INTERNAL int rl_future_set(lua_State *L);
RL_INTERNAL int rl_future_fail(lua_State *L);
RL_INTERNAL int rl_result(lua_State *L);
RL_INTERNAL int rl_error(lua_State *L);
RL_INTERNAL int rl_code(lua_State *L);
RL_INTERNAL int rl_done(lua_State *L);
RL_INTERNAL int rl_cancelled(lua_State *L);
RL_INTERNAL int rl_state(lua_State *L);
RL_INTERNAL int rl_cancel(lua_State *L);
RL_INTERNAL void rl_push_ref(lua_State *L, rill_future *f);
RL_INTERNAL int rl_fut_eq(lua_State *L);
RL_INTERNAL int rl_is_future(lua_State *L);
RL_INTERNAL int rl_future_mt(lua_State *L);
RL_INTERNAL int rl_pack_ref(lua_State *L);

/* gather.c */
RL_INTERNAL int rl_gather(lua_State *L);
RL_INTERNAL int rl_gather_results(lua_State *L);
RL_INTERNAL double rl_checktimeout(lua_State *L, int idx);
RL_INTERNAL int rl_wait_for(lua_State *L);
RL_INTERNAL int rl_shield(lua_State *L);
RL_INTERNAL int rl_wait(lua_State *L);

/* group.c */
RL_INTERNAL int rl_group_gc(lua_State *L);
RL_INTERNAL int rl_group_new(lua_State *L);
RL_INTERNAL int rl_group_spawn(lua_State *L);
RL_INTERNAL int rl_group_exit(lua_State *L);
RL_INTERNAL int rl_group_exit_result(lua_State *L);

/* loop.c */
RL_INTERNAL int rl_handle_gc(lua_State *L);
RL_INTERNAL int rl_handle_cancel(lua_State *L);
RL_INTERNAL int rl_handle_cancelled(lua_State *L);
RL_INTERNAL int rl_handle_when(lua_State *L);
RL_INTERNAL int rl_call_soon(lua_State *L);
RL_INTERNAL int rl_call_later(lua_State *L);
RL_INTERNAL int rl_set_exception_handler(lua_State *L);
RL_INTERNAL int rl_report(lua_State *L);
RL_INTERNAL int rl_time(lua_State *L);
RL_INTERNAL int rl_loop_time_method(lua_State *L);
RL_INTERNAL int rl_loop_id(lua_State *L);
RL_INTERNAL int rl_task_count(lua_State *L);
RL_INTERNAL int rl_set_debug(lua_State *L);
RL_INTERNAL int rl_dump_tasks(lua_State *L);
RL_INTERNAL int rl_run(lua_State *L);
RL_INTERNAL rl_ctx *rl_need_ctx(lua_State *L, const char *what);
RL_INTERNAL void rl_ctx_init(rl_ctx *c, rill_loop *loop, lua_State *L, int attached);
RL_INTERNAL void rl_ctx_attach(lua_State *L, rl_ctx *c, rill_free_fn free_ctx);
RL_INTERNAL void rl_exception_handler(rill_loop *loop, const char *message, rill_future *future,
                                      void *arg);
RL_INTERNAL rill_handle *rl_schedule(lua_State *L, rl_ctx *c, int later, double when);
RL_INTERNAL int rl_sigint_armable(void);

/* evloop.c: the loop object (core.loop_*; the loop is the first argument,
 * nil for the running loop) */
RL_INTERNAL int rl_loop_gc(lua_State *L);
RL_INTERNAL int rl_loops(lua_State *L);
RL_INTERNAL void rl_ctx_clear(rl_ctx *c);
RL_INTERNAL int rl_ctx_set_handler(lua_State *L, rl_ctx *c, int idx);

/* task.c */
RL_INTERNAL int rl_task_init(void);
RL_INTERNAL rill_task *rl_spawn_at(lua_State *L, rill_loop *loop, int fidx, int nargs);
RL_INTERNAL int rl_spawn(lua_State *L);
RL_INTERNAL int rl_check_task(lua_State *L);
RL_INTERNAL int rl_raise_resume(lua_State *L);
RL_INTERNAL int rl_sleep(lua_State *L);
RL_INTERNAL int rl_yield(lua_State *L);
RL_INTERNAL int rl_task_name(lua_State *L);
RL_INTERNAL int rl_task_set_name(lua_State *L);
RL_INTERNAL int rl_task_cancelling(lua_State *L);
RL_INTERNAL int rl_task_uncancel(lua_State *L);
RL_INTERNAL int rl_current_task(lua_State *L);
RL_INTERNAL int rl_all_tasks(lua_State *L);
RL_INTERNAL int rl_current_name(lua_State *L);

/* sync.c */
RL_INTERNAL void rl_sync_init(lua_State *L);
RL_INTERNAL int rl_sync(lua_State *L);

/* io.c */
RL_INTERNAL void rl_io_init(lua_State *L);
RL_INTERNAL int rl_io(lua_State *L);

/* timeout.c */
RL_INTERNAL int rl_timeout_gc(lua_State *L);
RL_INTERNAL int rl_timeout_new(lua_State *L);
RL_INTERNAL int rl_timeout_exit(lua_State *L);
RL_INTERNAL int rl_timeout_expired(lua_State *L);
RL_INTERNAL int rl_timeout_reschedule(lua_State *L);
#endif
