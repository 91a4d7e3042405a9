/* bindings/lua/src/task.c - Tasks: Lua coroutines driven by the core's step primitive. */
#include "rill_lua.h"

/* st lives inside the core's task (rill_task_new_inline): only its
 * references go here. */
static void rl_task_free(void *arg) {
  rl_task *st = (rl_task *)arg;
  lua_State *L = st->ctx->L; /* (tasks are destroyed before their loop's contexts) */
  luaL_unref(L, LUA_REGISTRYINDEX, st->co_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, st->fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, st->arg_ref);
  st->co = NULL;
  st->co_ref = st->fn_ref = st->arg_ref = LUA_NOREF;
}

/* lua_pcall'ed: (slot) -> a new thread and a registry reference to it.
 * slot, if not LUA_NOREF, is the task's fn_ref: its value moves onto the
 * thread's stack and the thread takes the slot over (no new one). */
static int rl_new_thread(lua_State *L) {
  int slot = (int)lua_tointeger(L, 1);
  lua_State *co = lua_newthread(L);
  if (slot == LUA_NOREF) {
    lua_pushvalue(L, -1);
    lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
    return 2;
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, slot); /* (a new thread has LUA_MINSTACK slots) */
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, slot); /* an existing key: allocates nothing */
  lua_pushinteger(L, slot);
  return 2;
}

/* First step: gives st a coroutine with its function and arguments pushed.
 * Returns the number of arguments, or -1 (the task was failed).
 * The function's reference goes here too (the coroutine holds it now),
 * unless the loop is in debug mode: its slow-step report names the
 * function of a task that has finished (rl_task_describe). A task that
 * started before debug mode was turned on is described while it runs,
 * not once it has finished. So a task holds one registry slot at a time
 * (W3: 100,000 slots, not 200,000, for 100,000 suspended tasks). */
static int rl_task_prepare(rl_ctx *c, rill_task *t, rl_task *st) {
  lua_State *L = c->L, *co;
  int n = st->nargs, i, fn_on_co = 0;
  int keep_fn = rill_loop_get_debug(c->loop) == 1;
  if (c->npool > 0) {
    c->npool--;
    st->co = c->pool[c->npool].co;
    st->co_ref = c->pool[c->npool].ref;
#if LUA_VERSION_NUM >= 502
    /* as a fresh thread (lua_newthread copies the creator's hook): a hook
     * that the previous task set with debug.sethook does not carry over.
     * (LuaJIT's hooks are global to the state: nothing to reset.) */
    if (lua_gethook(st->co) != lua_gethook(L) || lua_gethookmask(st->co) != lua_gethookmask(L) ||
        lua_gethookcount(st->co) != lua_gethookcount(L))
      lua_sethook(st->co, lua_gethook(L), lua_gethookmask(L), lua_gethookcount(L));
#endif
  } else {
    if (!lua_checkstack(L, 3)) goto nomem;
    lua_pushcfunction(L, rl_new_thread);
    lua_pushinteger(L, keep_fn ? LUA_NOREF : st->fn_ref);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
      lua_pop(L, 1);
      goto nomem;
    }
    st->co = lua_tothread(L, -2);
    st->co_ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (!keep_fn) {
      fn_on_co = 1;
      st->fn_ref = LUA_NOREF;
    }
  }
  co = st->co;
  if (!lua_checkstack(co, n + 2)) goto nomem;
  if (!fn_on_co) lua_rawgeti(co, LUA_REGISTRYINDEX, st->fn_ref);
  if (n == 1) {
    switch (st->arg_kind) {
    case RL_ARG_NIL: lua_pushnil(co); break;
    case RL_ARG_BOOLEAN: lua_pushboolean(co, st->arg.b); break;
    case RL_ARG_INTEGER: lua_pushinteger(co, st->arg.i); break;
    case RL_ARG_FLOAT: lua_pushnumber(co, st->arg.d); break;
    default: lua_rawgeti(co, LUA_REGISTRYINDEX, st->arg_ref); break;
    }
  } else if (n > 1) { /* {fn, args...}: unpack it */
    for (i = 1; i <= n + 1; i++) lua_rawgeti(co, -i, i);
    lua_remove(co, -(n + 2));
  }
  luaL_unref(L, LUA_REGISTRYINDEX, st->arg_ref);
  st->arg_ref = LUA_NOREF;
  if (!keep_fn) {
    luaL_unref(L, LUA_REGISTRYINDEX, st->fn_ref);
    st->fn_ref = LUA_NOREF;
  }
  return n;
nomem:
  rill_future_fail(rill_task_future(t), RILL_ENOMEM, "out of memory starting a Lua task", NULL,
                   NULL, NULL);
  return -1;
}

/* After a normal end the coroutine is empty and back at its base level
 * (status LUA_OK), which every supported Lua (5.3, 5.4, LuaJIT) can start
 * again with a new function: it goes back to the pool, so the next task's
 * first step reuses it instead of allocating a fresh thread and stack.
 * Only normal ends recycle: a coroutine that ended in an error, a bad
 * yield, or is abandoned by a cancel is dropped (its stack is unwound
 * state nobody should resume). The pool is bounded (RL_POOL_MAX) and dies
 * with the run's context (rl_ctx_close). */
static void rl_task_recycle(rl_ctx *c, rl_task *st) {
  lua_settop(st->co, 0);
  if (c->npool < RL_POOL_MAX && lua_status(st->co) == LUA_OK) {
    c->pool[c->npool].co = st->co;
    c->pool[c->npool].ref = st->co_ref;
    c->npool++;
    st->co = NULL;
    st->co_ref = LUA_NOREF;
  }
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

static void rl_step(rill_task *t, void *arg) {
  rl_task *st = (rl_task *)arg;
  rl_ctx *c = st->ctx;
  lua_State *co, *L = c->L, *saved_co;
  rill_task *saved_task;
  int nargs;
  if (!st->started) { /* (cancelled before it: the core ended it, never stepped) */
    st->started = 1;
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
        if (rill_task_sleep(t, d) == 0) { /* d <= 0: the next iteration */
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
      } else {
        /* A bare coroutine.yield inside a task: the task fails with a "bad
         * yield" error, as asyncio's Task does with a yield it does not
         * know (Lua cannot throw into the suspended coroutine, so the task
         * ends here; its coroutine is dropped, not reused). */
        lua_pop(co, nres);
        lua_pushliteral(co, "bad yield: coroutine.yield() inside a rill task "
                            "(use rill.sleep(0) to give up an iteration)");
        rl_complete_err(L, t, co);
        return;
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

/* ---- debug mode's slow-step report (rill_step_set_describer) ----------
 * What a Lua task runs and where, as asyncio's Task repr says it:
 * "FUNC() running at FILE:LINE" while its coroutine is suspended (the line
 * of the task's own function), "FUNC() done, defined at FILE:LINE" once it
 * has finished. FUNC is the name the program gives the function: a global
 * or a module's field (as Lua's tracebacks find them), else a local
 * variable holding it in an active frame outside rill.lua (outermost
 * first: a script's `local function worker`), else "<anonymous>". */

typedef struct rl_describe_req {
  rl_task *st;
  int running;
  char *buf;
  size_t cap;
} rl_describe_req;

static int rl_from_rill_lua(const char *source) {
  size_t n = source ? strlen(source) : 0;
  return n >= 8 && strcmp(source + n - 8, "rill.lua") == 0 && (n == 8 || source[n - 9] == '/' || source[n - 9] == '@');
}

/* A local variable of T's frames holding the value at vidx of L. */
static int rl_local_name(lua_State *T, lua_State *L, int vidx, char *out, size_t cap) {
  lua_Debug ar;
  int depth = 0, level, i;
  const char *name;
  while (lua_getstack(T, depth, &ar)) depth++;
  for (level = depth - 1; level >= 0; level--) {
    if (!lua_getstack(T, level, &ar) || !lua_getinfo(T, "S", &ar) || rl_from_rill_lua(ar.source)) continue;
    for (i = 1; lua_checkstack(T, 2) && (name = lua_getlocal(T, &ar, i)) != NULL; i++) {
      int hit;
      lua_xmove(T, L, 1);
      hit = name[0] != '(' && lua_rawequal(L, -1, vidx);
      lua_pop(L, 1);
      if (hit) {
        snprintf(out, cap, "%s", name);
        return 1;
      }
    }
  }
  return 0;
}

/* lua_pcall'ed: (fn) -> writes the function's name into the request's
 * name buffer (light userdata 2, cap 64). */
static int rl_function_name(lua_State *L) {
  char *out = (char *)lua_touserdata(L, 2);
  const size_t cap = 64;
  lua_State *main_state = rl_main(L);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, 2)) { /* globals first, then the modules' fields */
    lua_getfield(L, 2, "_G");
    if (lua_istable(L, 3)) {
      lua_pushnil(L);
      while (lua_next(L, 3)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, 1)) {
          snprintf(out, cap, "%s", lua_tostring(L, -2));
          return 0;
        }
        lua_pop(L, 1);
      }
    }
    lua_settop(L, 2);
    lua_pushnil(L);
    while (lua_next(L, 2)) { /* module name at 3, module at 4 */
      if (lua_type(L, 3) == LUA_TSTRING && lua_istable(L, 4) && strcmp(lua_tostring(L, 3), "_G") != 0) {
        lua_pushnil(L);
        while (lua_next(L, 4)) {
          if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, 1)) {
            snprintf(out, cap, "%s.%s", lua_tostring(L, 3), lua_tostring(L, -2));
            return 0;
          }
          lua_pop(L, 1);
        }
      }
      lua_settop(L, 3);
    }
  }
  lua_settop(L, 1);
  if (rl_local_name(main_state, L, 1, out, cap)) return 0;
  if (L != main_state && rl_local_name(L, L, 1, out, cap)) return 0;
  snprintf(out, cap, "<anonymous>");
  return 0;
}

/* lua_pcall'ed: (request) -> fills in the request's text */
static int rl_describe_in_lua(lua_State *L) {
  rl_describe_req *r = (rl_describe_req *)lua_touserdata(L, 1);
  rl_task *st = r->st;
  char name[64], file[400];
  lua_Debug ar;
  int line = -1;
  name[0] = file[0] = '\0';
  if (r->running) { /* the task's own function: the deepest frame of its coroutine */
    lua_State *co = st->co;
    int depth = 0;
    while (lua_getstack(co, depth, &ar)) depth++;
    if (depth == 0 || !lua_getstack(co, depth - 1, &ar) || !lua_checkstack(co, 2)) return 0;
    if (!lua_getinfo(co, "Slf", &ar)) return 0;
    lua_xmove(co, L, 1);
    line = ar.currentline;
  } else { /* finished: the function kept by the task (alone, or first of {fn, args...}) */
    if (st->fn_ref == LUA_NOREF || st->fn_ref == LUA_REFNIL) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->fn_ref);
    if (lua_istable(L, -1)) lua_rawgeti(L, -1, 1);
    if (!lua_isfunction(L, -1)) return 0;
    lua_pushvalue(L, -1);
    if (!lua_getinfo(L, ">S", &ar)) return 0;
    line = ar.linedefined;
  }
  snprintf(file, sizeof file, "%s", ar.source[0] == '@' || ar.source[0] == '=' ? ar.source + 1 : ar.short_src);
  lua_pushcfunction(L, rl_function_name);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, name);
  lua_call(L, 2, 0);
  if (strcmp(ar.what, "C") == 0 || line <= 0)
    snprintf(r->buf, r->cap, "%s() %s", name, r->running ? "running" : "done");
  else if (r->running)
    snprintf(r->buf, r->cap, "%s() running at %s:%d", name, file, line);
  else
    snprintf(r->buf, r->cap, "%s() done, defined at %s:%d", name, file, line);
  return 0;
}

/* Called by the core on the loop's thread right after a slow step of a
 * Lua task, inside the run that drives it (c->L is usable): everything
 * that may fail runs under lua_pcall, and a failure gives no text. */
static int rl_task_describe(rill_task *t, void *arg, char *buf, size_t cap) {
  rl_task *st = (rl_task *)arg;
  rl_describe_req r;
  lua_State *L;
  if (!st || !st->ctx || !st->started || !(L = st->ctx->L) || !lua_checkstack(L, 4)) return 0;
  r.st = st;
  r.running = rill_future_state(rill_task_future(t)) == RILL_PENDING && st->co &&
              lua_status(st->co) == LUA_YIELD;
  r.buf = buf;
  r.cap = cap;
  buf[0] = '\0';
  lua_pushcfunction(L, rl_describe_in_lua);
  lua_pushlightuserdata(L, &r);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    buf[0] = '\0';
    return 0;
  }
  return buf[0] != '\0';
}

int rl_task_init(void) { return rill_step_set_describer(rl_step, rl_task_describe); }

/* Creates a task running the function at fidx with the nargs values after
 * it; pushes its rill.Future. */
rill_task *rl_spawn_at(lua_State *L, rill_loop *loop, int fidx, int nargs) {
  rl_task *st;
  rill_task *t;
  rl_fut *u;
  rl_ctx *c;
  int fn_ref, arg_ref = LUA_NOREF;
  unsigned char arg_kind = RL_ARG_REF;
  rl_arg arg;
  arg.i = 0;
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
    if (nargs == 1) { /* a nil, boolean or number travels in st itself */
      switch (lua_type(L, fidx + 1)) {
      case LUA_TNIL: arg_kind = RL_ARG_NIL; break;
      case LUA_TBOOLEAN:
        arg_kind = RL_ARG_BOOLEAN;
        arg.b = lua_toboolean(L, fidx + 1);
        break;
      case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, fidx + 1)) {
#else
        if (0) { /* 5.1/LuaJIT: every number is a double (-0.0 included) */
#endif
          arg_kind = RL_ARG_INTEGER;
          arg.i = lua_tointeger(L, fidx + 1);
        } else {
          arg_kind = RL_ARG_FLOAT;
          arg.d = lua_tonumber(L, fidx + 1);
        }
        break;
      default:
        lua_pushvalue(L, fidx + 1);
        arg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      }
    }
    lua_pushvalue(L, fidx);
  }
  fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!(c = rl_ctx_of(loop))) {
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, arg_ref);
    rill_lua_push_error(L, RILL_ESTATE, "Lua tasks run on a loop of rill.run or rill.attach_loop");
    lua_error(L);
  }
  /* the binding's state inside the core's task: no allocation of its own
   * (W3's 100,000 tasks touch that many pages fewer) */
  t = rill_task_new_inline(loop, rl_step, sizeof *st, rl_task_free, RILL_TASK_SKIP_CANCELLED_START);
  if (!t) {
    int code = rill_last_error();
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, arg_ref);
    rill_lua_push_error(L, code, rl_message_of(code));
    lua_error(L);
  }
  st = (rl_task *)rill_task_arg(t); /* nothing may raise from here on */
  st->co = NULL;
  st->co_ref = LUA_NOREF;
  st->fn_ref = fn_ref;
  st->arg_ref = arg_ref;
  st->arg_kind = arg_kind;
  st->arg = arg;
  st->nargs = nargs;
  st->started = 0;
  st->ctx = c;
  u->f = rill_task_future(t); /* the reference rill_task_new returned */
  rill_future_set_owner(u->f, &RL_TAG); /* its reports go to Lua's handler */
  return t;
}

/* core.spawn(fn, ...) -> task */
int rl_spawn(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "spawn");
  rl_spawn_at(L, c->loop, 1, lua_gettop(L) - 1);
  return 1;
}

/* Raises "rill.WHAT called outside ..." where the caller at level is. */
static int rl_outside_task(lua_State *L, int level, const char *what) {
  luaL_where(L, level);
  if (!rill_loop_current()) lua_pushfstring(L, "rill.%s called outside rill.run", what);
  else lua_pushfstring(L, "rill.%s called outside a rill task (from a plain coroutine or callback)", what);
  lua_concat(L, 2);
  return lua_error(L);
}

/* core.check_task(): raises unless called from a rill task's own coroutine. */
int rl_check_task(lua_State *L) {
  if (!rl_running_co || L != rl_running_co)
    return rl_outside_task(L, 2, luaL_optstring(L, 1, "this")); /* the caller of rill.sleep & co */
  return 0;
}

/* Raises the error of a yield that came back with RES_CANCEL/RES_ERR. */
static int rl_raise_code(lua_State *L, int code) {
  if (code == RL_RES_CANCEL) {
    const char *msg = rl_running_task ? rill_task_cancel_message(rl_running_task) : NULL;
    rill_lua_push_error(L, RILL_ECANCELLED, msg);
  } else {
    int rc = rill_last_error();
    rill_lua_push_error(L, rc < 0 ? rc : RILL_EINVAL, rc < 0 ? rl_message_of(rc) : "cannot await this value");
  }
  return lua_error(L);
}

/* core.raise_resume(code): the yield came back with RES_CANCEL/RES_ERR. */
int rl_raise_resume(lua_State *L) { return rl_raise_code(L, (int)luaL_checkinteger(L, 1)); }

#if LUA_VERSION_NUM >= 503
/* rill.sleep and rill.yield are C functions that yield themselves (their
 * continuation checks the resume code): a sleeping task's coroutine holds
 * one call frame for them, not the two of a Lua wrapper calling
 * coroutine.yield, and a frame is memory every suspended task keeps
 * (W3: 100,000 of them at once). Lua 5.1/LuaJIT have no continuations:
 * rill.lua keeps its Lua versions there. */
static int rl_sleep_done(lua_State *L, int status, lua_KContext ctx) {
  int code = (int)lua_tointeger(L, -1);
  (void)status;
  (void)ctx;
  if (code != RL_RES_OK) return rl_raise_code(L, code);
  return 0;
}

static int rl_sleep_yield(lua_State *L, const char *what, lua_Number seconds) {
  if (!rl_running_co || L != rl_running_co) return rl_outside_task(L, 1, what);
  lua_settop(L, 0);
  lua_pushinteger(L, RL_OP_SLEEP);
  lua_pushnumber(L, seconds);
  return lua_yieldk(L, 2, 0, rl_sleep_done);
}

/* core.sleep(seconds) = rill.sleep */
int rl_sleep(lua_State *L) {
  lua_Number d = lua_tonumber(L, 1);
  int type = lua_type(L, 1);
  if (type != LUA_TNUMBER || d != d) { /* a NaN is a number: say so */
    const char *got = type == LUA_TNUMBER ? "NaN" : lua_typename(L, type == LUA_TNONE ? LUA_TNIL : type);
    lua_settop(L, 0);
    luaL_where(L, 1);
    lua_pushfstring(L, "bad argument #1 to 'rill.sleep' (number expected, got %s)", got);
    lua_concat(L, 2);
    return lua_error(L);
  }
  return rl_sleep_yield(L, "sleep", d);
}

/* core.yield() = rill.yield (sleep(0)) */
int rl_yield(lua_State *L) { return rl_sleep_yield(L, "yield", 0); }
#else
int rl_sleep(lua_State *L) { return luaL_error(L, "core.sleep needs Lua 5.3+"); }
int rl_yield(lua_State *L) { return luaL_error(L, "core.yield needs Lua 5.3+"); }
#endif

static rill_task *rl_checktask(lua_State *L, int idx) {
  rill_task *t = rill_task_from_future(rl_checkfut(L, idx));
  if (!t) luaL_argerror(L, idx, "not a task");
  return t;
}

int rl_task_name(lua_State *L) {
  lua_pushstring(L, rill_task_name(rl_checktask(L, 1)));
  return 1;
}

int rl_task_set_name(lua_State *L) {
  rill_task *t = rl_checktask(L, 1);
  if (rill_task_set_name(t, luaL_checkstring(L, 2)) < 0) return luaL_error(L, "%s", rill_last_error_message());
  return 0;
}

int rl_task_cancelling(lua_State *L) {
  lua_pushinteger(L, rill_task_cancelling(rl_checktask(L, 1)));
  return 1;
}

int rl_task_uncancel(lua_State *L) {
  lua_pushinteger(L, rill_task_uncancel(rl_checktask(L, 1)));
  return 1;
}

/* core.current_task(): the running Lua task, or nil. */
int rl_current_task(lua_State *L) {
  if (!rl_running_task || L != rl_running_co) return 0;
  rl_push_ref(L, rill_task_future(rl_running_task));
  return 1;
}

/* core.all_tasks(): the pending tasks of the running loop, oldest first. */
int rl_all_tasks(lua_State *L) {
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
int rl_current_name(lua_State *L) {
  if (!rl_running_task) return 0;
  lua_pushstring(L, rill_task_name(rl_running_task));
  return 1;
}
