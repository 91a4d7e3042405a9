/* bindings/lua/src/sync.c - Event, Lock, Semaphore, Condition, Barrier and
 * Queue: userdata over the core's primitives (issue 11).
 *
 * Every asyncio rule (FIFO wake-up, no barging, a cancelled waiter loses
 * nothing, queue shutdown) is the core's; this file only converts values,
 * raises the error table's errors and keeps Lua values alive. A wait that
 * the core completes at once returns its value here (no future userdata,
 * no yield); a pending one returns a rill.Future that rill.lua awaits with
 * coroutine.yield(OP_AWAIT, f) like any future, so the core's pass-on of a
 * lock/unit/item to a cancelled waiter applies (the task awaits the sync
 * future itself). A pending wait can only start from a rill task's own
 * coroutine: elsewhere it is cancelled again (a put's item freed) and an
 * error is raised.
 *
 * Queue items: nil, booleans, integers, floats and strings travel as the
 * core's none/bool/int/double/bytes kinds (any language reads them); any
 * other Lua value as a pointer tagged RL_ITEM_TAG to a registry reference,
 * freed (luaL_unref) by the queue or the future that owns it.
 *
 * core.sync() hands rill.lua the functions and the metatables (rill.lua
 * gives them their methods). */
#include "rill_lua.h"

static const char RL_EVENT_MT = 0;
static const char RL_LOCK_MT = 0;
static const char RL_SEM_MT = 0;
static const char RL_COND_MT = 0;
static const char RL_BARRIER_MT = 0;
static const char RL_QUEUE_MT = 0;
static const char RL_ITEM_TAG = 0; /* a queue item: rl_box of one Lua value */

typedef struct rl_prim { void *p; } rl_prim; /* one reference of the primitive */

#define RL_PRIM_GC(fname, type, release)             \
  static int fname(lua_State *L) {                   \
    rl_prim *u = (rl_prim *)lua_touserdata(L, 1);    \
    if (u && u->p) {                                 \
      type *p = (type *)u->p;                        \
      u->p = NULL;                                   \
      release(p);                                    \
    }                                                \
    return 0;                                        \
  }
RL_PRIM_GC(rl_event_gc, rill_event, rill_event_release)
RL_PRIM_GC(rl_lock_gc, rill_lock, rill_lock_release)
RL_PRIM_GC(rl_sem_gc, rill_semaphore, rill_semaphore_release)
RL_PRIM_GC(rl_cond_gc, rill_condition, rill_condition_release)
RL_PRIM_GC(rl_barrier_gc, rill_barrier, rill_barrier_release)
RL_PRIM_GC(rl_queue_gc, rill_queue, rill_queue_release)
#undef RL_PRIM_GC

static void *rl_checkprim(lua_State *L, int idx, const char *key, const char *tname) {
  rl_prim *u = (rl_prim *)rl_testudata(L, idx, key);
  if (!u) rl_typeerror(L, idx, tname);
  return u->p; /* (only __gc clears it) */
}
#define rl_checkevent(L, i) ((rill_event *)rl_checkprim((L), (i), &RL_EVENT_MT, "rill.Event"))
#define rl_checklock(L, i) ((rill_lock *)rl_checkprim((L), (i), &RL_LOCK_MT, "rill.Lock"))
#define rl_checksem(L, i) ((rill_semaphore *)rl_checkprim((L), (i), &RL_SEM_MT, "rill.Semaphore"))
#define rl_checkcond(L, i) ((rill_condition *)rl_checkprim((L), (i), &RL_COND_MT, "rill.Condition"))
#define rl_checkbarrier(L, i) ((rill_barrier *)rl_checkprim((L), (i), &RL_BARRIER_MT, "rill.Barrier"))
#define rl_checkqueue(L, i) ((rill_queue *)rl_checkprim((L), (i), &RL_QUEUE_MT, "rill.Queue"))

/* Pushes a userdata of metatable key that takes over p (a reference). */
static void rl_pushprim(lua_State *L, const char *key, void *p) {
  rl_prim *u = (rl_prim *)lua_newuserdatauv(L, sizeof *u, 0);
  u->p = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  lua_setmetatable(L, -2);
  u->p = p;
}

/* A core status: raises its error if negative, else returns it. */
static int rl_check_rc(lua_State *L, int rc) {
  if (rc < 0) {
    rill_lua_push_error(L, rc, rl_message_of(rc));
    lua_error(L);
  }
  return rc;
}

/* ---- values ---------------------------------------------------------- */

/* Pushes the value of a DONE future (a queue item, a barrier index). */
static void rl_push_item(lua_State *L, rill_future *f) {
  switch (rill_future_kind(f)) {
  case RILL_BOOL: { int v = 0; rill_future_bool(f, &v); lua_pushboolean(L, v); return; }
  case RILL_INT: { int64_t v = 0; rill_future_int(f, &v); lua_pushinteger(L, (lua_Integer)v); return; }
  case RILL_DOUBLE: { double v = 0; rill_future_double(f, &v); lua_pushnumber(L, v); return; }
  case RILL_BYTES: {
    size_t len = 0;
    const void *p = rill_future_bytes(f, &len);
    lua_pushlstring(L, p ? (const char *)p : "", len);
    return;
  }
  case RILL_POINTER: {
    rl_box *b = (rl_box *)rill_future_pointer(f, &RL_ITEM_TAG);
    if (b) lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
    else if (rill_future_pointer(f, &RL_VALUES_TAG)) rl_push_values(L, f, 1);
    else lua_pushnil(L); /* another language's pointer */
    return;
  }
  default: lua_pushnil(L); return;
  }
}

/* The value at idx as a put: returns the core's future (nowait: NULL) and
 * sets *rc (nowait: the status; else < 0 if the future is NULL). A boxed
 * value the core refused is freed here (it stays the caller's). */
static rill_future *rl_put(lua_State *L, rill_queue *q, int idx, int64_t prio, int nowait, int *rc) {
  rill_future *f = NULL;
  *rc = 0;
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL:
    if (nowait) *rc = rill_queue_put_nowait_none(q, prio);
    else f = rill_queue_put_none(q, prio);
    break;
  case LUA_TBOOLEAN:
    if (nowait) *rc = rill_queue_put_nowait_bool(q, lua_toboolean(L, idx), prio);
    else f = rill_queue_put_bool(q, lua_toboolean(L, idx), prio);
    break;
  case LUA_TNUMBER:
    if (rl_isinteger(L, idx)) {
      int64_t v = (int64_t)lua_tointeger(L, idx);
      if (nowait) *rc = rill_queue_put_nowait_int(q, v, prio);
      else f = rill_queue_put_int(q, v, prio);
    } else {
      double v = lua_tonumber(L, idx);
      if (nowait) *rc = rill_queue_put_nowait_double(q, v, prio);
      else f = rill_queue_put_double(q, v, prio);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (nowait) *rc = rill_queue_put_nowait_bytes(q, s, len, prio);
    else f = rill_queue_put_bytes(q, s, len, prio);
    break;
  }
  default: { /* tables, functions, userdata, threads: a registry reference */
    rl_box *b;
    lua_pushvalue(L, idx);
    if (!(b = rl_box_new(L))) luaL_error(L, "out of memory");
    if (nowait) {
      if ((*rc = rill_queue_put_nowait_pointer(q, b, rl_box_free, &RL_ITEM_TAG, prio)) < 0) rl_box_free(b);
    } else if (!(f = rill_queue_put_pointer(q, b, rl_box_free, &RL_ITEM_TAG, prio))) {
      rl_box_free(b);
    }
    break;
  }
  }
  if (!nowait && !f) *rc = rill_last_error() < 0 ? rill_last_error() : RILL_EINVAL;
  return f;
}

/* ---- waits ----------------------------------------------------------- */

/* Settles a wait the core just started: u (on top of the stack, pushed
 * before the call so that no error can leak f) takes f over.
 *  - NULL: raises the core's error;
 *  - pending: leaves u on top, returns 1 (rill.lua awaits it); outside a
 *    rill task the wait is cancelled and an error raised;
 *  - DONE: pops u, releases f, returns 0, or (with_value) pushes nil and
 *    the value, returns 2;
 *  - failed at once (a broken barrier): raises its error. */
static int rl_settle(lua_State *L, rl_fut *u, rill_future *f, int with_value, const char *what) {
  if (!f) {
    int rc = rill_last_error();
    rill_lua_push_error(L, rc < 0 ? rc : RILL_EINVAL, rl_message_of(rc));
    return lua_error(L);
  }
  u->f = f;
  if (rill_future_done(f) != 1) {
    if (!rl_running_co || L != rl_running_co) {
      rill_future_cancel(f); /* nobody would await it (a put's item is freed) */
      luaL_where(L, 1);
      lua_pushfstring(L, "rill.%s called outside a rill task (it would wait)", what);
      lua_concat(L, 2);
      return lua_error(L);
    }
    return 1;
  }
  if (rill_future_state(f) == RILL_DONE) {
    if (!with_value) {
      u->f = NULL;
      rill_future_release(f);
      lua_pop(L, 1);
      return 0;
    }
    lua_pushnil(L);
    rl_push_item(L, f);
    u->f = NULL;
    rill_future_release(f);
    return 2;
  }
  rl_push_future_error(L, f); /* (f stays u's: released by its __gc) */
  return lua_error(L);
}

/* sync.value(f): after the await, the value of a DONE sync future, or
 * raises its error (shut down, broken, cancelled). */
static int rl_sync_value(lua_State *L) {
  rill_future *f = rl_checkfut(L, 1);
  switch (rill_future_state(f)) {
  case RILL_DONE: rl_push_item(L, f); return 1;
  case RILL_PENDING: return luaL_error(L, "the wait is not done yet");
  default: rl_push_future_error(L, f); return lua_error(L);
  }
}

/* ---- Event ------------------------------------------------------------ */

static int rl_event_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "event");
  rill_event *e = rill_event_new(c->loop);
  if (!e) return rl_raise_last(L);
  rl_pushprim(L, &RL_EVENT_MT, e);
  return 1;
}
static int rl_event_set(lua_State *L) { rl_check_rc(L, rill_event_set(rl_checkevent(L, 1))); return 0; }
static int rl_event_clear(lua_State *L) { rl_check_rc(L, rill_event_clear(rl_checkevent(L, 1))); return 0; }
static int rl_event_is_set(lua_State *L) {
  lua_pushboolean(L, rl_check_rc(L, rill_event_is_set(rl_checkevent(L, 1))));
  return 1;
}
static int rl_event_wait(lua_State *L) {
  rill_event *e = rl_checkevent(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_event_wait(e), 0, "Event:wait");
}

/* ---- Lock --------------------------------------------------------------- */

static int rl_lock_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "lock");
  rill_lock *l = rill_lock_new(c->loop);
  if (!l) return rl_raise_last(L);
  rl_pushprim(L, &RL_LOCK_MT, l);
  return 1;
}
static int rl_lock_acquire(lua_State *L) {
  rill_lock *l = rl_checklock(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_lock_acquire(l), 0, "Lock:acquire");
}
static int rl_lock_unlock(lua_State *L) { rl_check_rc(L, rill_lock_unlock(rl_checklock(L, 1))); return 0; }
static int rl_lock_locked(lua_State *L) {
  lua_pushboolean(L, rl_check_rc(L, rill_lock_is_locked(rl_checklock(L, 1))));
  return 1;
}

/* ---- Semaphore ------------------------------------------------------------ */

static int rl_sem_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "semaphore");
  lua_Integer n = luaL_checkinteger(L, 1);
  rill_semaphore *s;
  if (n < 0 || n > INT32_MAX) {
    rill_lua_push_error(L, RILL_EINVAL, "the semaphore's initial value must be >= 0");
    return lua_error(L);
  }
  if (!(s = rill_semaphore_new(c->loop, (int)n, lua_toboolean(L, 2)))) return rl_raise_last(L);
  rl_pushprim(L, &RL_SEM_MT, s);
  return 1;
}
static int rl_sem_acquire(lua_State *L) {
  rill_semaphore *s = rl_checksem(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_semaphore_acquire(s), 0, "Semaphore:acquire");
}
static int rl_sem_post(lua_State *L) { rl_check_rc(L, rill_semaphore_post(rl_checksem(L, 1))); return 0; }
static int rl_sem_locked(lua_State *L) {
  lua_pushboolean(L, rl_check_rc(L, rill_semaphore_is_locked(rl_checksem(L, 1))));
  return 1;
}
static int rl_sem_value(lua_State *L) {
  lua_pushinteger(L, rl_check_rc(L, rill_semaphore_value(rl_checksem(L, 1))));
  return 1;
}

/* ---- Condition ------------------------------------------------------------ */

/* sync.condition_new([lock]) */
static int rl_cond_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "condition");
  rill_lock *l = lua_isnoneornil(L, 1) ? NULL : rl_checklock(L, 1);
  rill_condition *cv = rill_condition_new(c->loop, l);
  if (!cv) return rl_raise_last(L);
  rl_pushprim(L, &RL_COND_MT, cv);
  return 1;
}
static int rl_cond_acquire(lua_State *L) {
  rill_condition *cv = rl_checkcond(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_lock_acquire(rill_condition_lock(cv)), 0, "Condition:acquire");
}
static int rl_cond_release(lua_State *L) {
  rl_check_rc(L, rill_lock_unlock(rill_condition_lock(rl_checkcond(L, 1))));
  return 0;
}
static int rl_cond_locked(lua_State *L) {
  lua_pushboolean(L, rl_check_rc(L, rill_lock_is_locked(rill_condition_lock(rl_checkcond(L, 1)))));
  return 1;
}
static int rl_cond_wait(lua_State *L) {
  rill_condition *cv = rl_checkcond(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_condition_wait(cv), 0, "Condition:wait");
}
static int rl_cond_notify(lua_State *L) {
  rill_condition *cv = rl_checkcond(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  if (n < 0) n = 0;
  if (n > INT32_MAX) n = INT32_MAX;
  lua_pushinteger(L, rl_check_rc(L, rill_condition_notify(cv, (int)n)));
  return 1;
}
static int rl_cond_notify_all(lua_State *L) {
  lua_pushinteger(L, rl_check_rc(L, rill_condition_notify_all(rl_checkcond(L, 1))));
  return 1;
}

/* ---- Barrier -------------------------------------------------------------- */

static int rl_barrier_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "barrier");
  lua_Integer n = luaL_checkinteger(L, 1);
  rill_barrier *b;
  if (n < 1 || n > INT32_MAX) {
    rill_lua_push_error(L, RILL_EINVAL, "a barrier needs parties >= 1");
    return lua_error(L);
  }
  if (!(b = rill_barrier_new(c->loop, (int)n))) return rl_raise_last(L);
  rl_pushprim(L, &RL_BARRIER_MT, b);
  return 1;
}
static int rl_barrier_wait(lua_State *L) {
  rill_barrier *b = rl_checkbarrier(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_barrier_wait(b), 1, "Barrier:wait");
}
static int rl_barrier_abort(lua_State *L) {
  rl_check_rc(L, rill_barrier_abort(rl_checkbarrier(L, 1)));
  return 0;
}
static int rl_barrier_reset(lua_State *L) {
  rl_check_rc(L, rill_barrier_reset(rl_checkbarrier(L, 1)));
  return 0;
}
static int rl_barrier_broken(lua_State *L) {
  lua_pushboolean(L, rl_check_rc(L, rill_barrier_is_broken(rl_checkbarrier(L, 1))));
  return 1;
}
static int rl_barrier_n_waiting(lua_State *L) {
  lua_pushinteger(L, rl_check_rc(L, rill_barrier_n_waiting(rl_checkbarrier(L, 1))));
  return 1;
}
static int rl_barrier_parties(lua_State *L) {
  lua_pushinteger(L, rl_check_rc(L, rill_barrier_parties(rl_checkbarrier(L, 1))));
  return 1;
}

/* ---- Queue ------------------------------------------------------------------ */

/* sync.queue_new(maxsize, kind) (checked by rill.lua) */
static int rl_queue_new(lua_State *L) {
  rl_ctx *c = rl_need_ctx(L, "queue");
  lua_Integer maxsize = luaL_optinteger(L, 1, 0), kind = luaL_optinteger(L, 2, RILL_QUEUE_FIFO);
  rill_queue *q;
  if (maxsize > INT32_MAX) maxsize = INT32_MAX;
  if (maxsize < 0) maxsize = 0;
  if (!(q = rill_queue_new(c->loop, (int)maxsize, (int)kind))) return rl_raise_last(L);
  rl_pushprim(L, &RL_QUEUE_MT, q);
  return 1;
}

/* sync.wrap_queue(address): a host's rill_queue* (an integer or a light
 * userdata), retained. */
static int rl_wrap_queue(lua_State *L) {
  rill_queue *q;
  if (lua_islightuserdata(L, 1)) q = (rill_queue *)lua_touserdata(L, 1);
  else if (lua_type(L, 1) == LUA_TUSERDATA && rl_testudata(L, 1, &RL_QUEUE_MT))
    q = rl_checkqueue(L, 1);
  else if (lua_type(L, 1) == LUA_TNUMBER && rl_isinteger(L, 1))
    q = (rill_queue *)(intptr_t)lua_tointeger(L, 1);
  else return rl_typeerror(L, 1, "queue address (integer)");
  if (!q) return luaL_argerror(L, 1, "NULL address");
  rl_check_rc(L, rill_queue_maxsize(q)); /* ECLOSED for a queue of a closed loop */
  rl_pushprim(L, &RL_QUEUE_MT, rill_queue_retain(q));
  return 1;
}

/* sync.queue_address(q) -> the rill_queue* (borrowed), for a host. */
static int rl_queue_address(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(intptr_t)rl_checkqueue(L, 1));
  return 1;
}

static int64_t rl_checkprio(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (!rl_isinteger(L, idx)) return (int64_t)rl_typeerror(L, idx, "integer priority");
  return (int64_t)lua_tointeger(L, idx);
}

/* sync.put(q, v, priority) -> nil (in) | future (wait for room) */
static int rl_queue_put(lua_State *L) {
  rill_queue *q = rl_checkqueue(L, 1);
  int64_t prio = rl_checkprio(L, 3);
  rl_fut *u;
  rill_future *f;
  int rc;
  lua_settop(L, 3);
  u = rl_newfut(L);
  f = rl_put(L, q, 2, prio, 0, &rc);
  (void)rc; /* NULL: rl_settle raises the core's error */
  return rl_settle(L, u, f, 0, "Queue:put");
}

static int rl_queue_put_nowait(lua_State *L) {
  rill_queue *q = rl_checkqueue(L, 1);
  int64_t prio = rl_checkprio(L, 3);
  int rc;
  lua_settop(L, 3);
  rl_put(L, q, 2, prio, 1, &rc);
  rl_check_rc(L, rc);
  return 0;
}

/* sync.get(q) -> nil, item (at once) | future */
static int rl_queue_get(lua_State *L) {
  rill_queue *q = rl_checkqueue(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_queue_get(q), 1, "Queue:get");
}

static int rl_queue_get_nowait(lua_State *L) {
  rill_queue *q = rl_checkqueue(L, 1);
  rl_fut *u = rl_newfut(L);
  rill_future *f = rill_queue_get_nowait(q);
  if (!f) return rl_raise_last(L);
  u->f = f;
  rl_push_item(L, f);
  u->f = NULL;
  rill_future_release(f);
  return 1;
}

static int rl_queue_join(lua_State *L) {
  rill_queue *q = rl_checkqueue(L, 1);
  rl_fut *u = rl_newfut(L);
  return rl_settle(L, u, rill_queue_join(q), 0, "Queue:join");
}

#define RL_QUEUE_INT(fname, call)                                   \
  static int fname(lua_State *L) {                                  \
    lua_pushinteger(L, rl_check_rc(L, call(rl_checkqueue(L, 1))));  \
    return 1;                                                       \
  }
#define RL_QUEUE_BOOL(fname, call)                                  \
  static int fname(lua_State *L) {                                  \
    lua_pushboolean(L, rl_check_rc(L, call(rl_checkqueue(L, 1))));  \
    return 1;                                                       \
  }
RL_QUEUE_INT(rl_queue_qsize, rill_queue_qsize)
RL_QUEUE_INT(rl_queue_maxsize, rill_queue_maxsize)
RL_QUEUE_BOOL(rl_queue_empty, rill_queue_is_empty)
RL_QUEUE_BOOL(rl_queue_full, rill_queue_is_full)
RL_QUEUE_BOOL(rl_queue_is_shut_down, rill_queue_is_shut_down)
#undef RL_QUEUE_INT
#undef RL_QUEUE_BOOL

static int rl_queue_task_done(lua_State *L) {
  rl_check_rc(L, rill_queue_task_done(rl_checkqueue(L, 1)));
  return 0;
}

static int rl_queue_shutdown(lua_State *L) {
  rl_check_rc(L, rill_queue_shutdown(rl_checkqueue(L, 1), lua_toboolean(L, 2)));
  return 0;
}

/* ---- registration ------------------------------------------------------------ */

static const struct { const char *name; lua_CFunction fn; } rl_sync_fns[] = {
  {"value", rl_sync_value},
  {"event_new", rl_event_new}, {"event_set", rl_event_set}, {"event_clear", rl_event_clear},
  {"event_is_set", rl_event_is_set}, {"event_wait", rl_event_wait},
  {"lock_new", rl_lock_new}, {"lock_acquire", rl_lock_acquire}, {"lock_release", rl_lock_unlock},
  {"lock_locked", rl_lock_locked},
  {"semaphore_new", rl_sem_new}, {"semaphore_acquire", rl_sem_acquire},
  {"semaphore_release", rl_sem_post}, {"semaphore_locked", rl_sem_locked},
  {"semaphore_value", rl_sem_value},
  {"condition_new", rl_cond_new}, {"condition_acquire", rl_cond_acquire},
  {"condition_release", rl_cond_release}, {"condition_locked", rl_cond_locked},
  {"condition_wait", rl_cond_wait}, {"condition_notify", rl_cond_notify},
  {"condition_notify_all", rl_cond_notify_all},
  {"barrier_new", rl_barrier_new}, {"barrier_wait", rl_barrier_wait},
  {"barrier_abort", rl_barrier_abort}, {"barrier_reset", rl_barrier_reset},
  {"barrier_broken", rl_barrier_broken}, {"barrier_n_waiting", rl_barrier_n_waiting},
  {"barrier_parties", rl_barrier_parties},
  {"queue_new", rl_queue_new}, {"wrap_queue", rl_wrap_queue}, {"queue_address", rl_queue_address},
  {"queue_put", rl_queue_put}, {"queue_put_nowait", rl_queue_put_nowait},
  {"queue_get", rl_queue_get}, {"queue_get_nowait", rl_queue_get_nowait},
  {"queue_join", rl_queue_join}, {"queue_qsize", rl_queue_qsize}, {"queue_maxsize", rl_queue_maxsize},
  {"queue_empty", rl_queue_empty}, {"queue_full", rl_queue_full},
  {"queue_is_shut_down", rl_queue_is_shut_down}, {"queue_task_done", rl_queue_task_done},
  {"queue_shutdown", rl_queue_shutdown},
};

static const struct { const void *key; lua_CFunction gc; const char *name, *field; } rl_sync_mts[] = {
  {&RL_EVENT_MT, rl_event_gc, "rill.Event", "event"},
  {&RL_LOCK_MT, rl_lock_gc, "rill.Lock", "lock"},
  {&RL_SEM_MT, rl_sem_gc, "rill.Semaphore", "semaphore"},
  {&RL_COND_MT, rl_cond_gc, "rill.Condition", "condition"},
  {&RL_BARRIER_MT, rl_barrier_gc, "rill.Barrier", "barrier"},
  {&RL_QUEUE_MT, rl_queue_gc, "rill.Queue", "queue"},
};

/* At load (rl_init): the metatables, with __gc and __name. */
void rl_sync_init(lua_State *L) {
  size_t i;
  for (i = 0; i < sizeof rl_sync_mts / sizeof rl_sync_mts[0]; i++) {
    lua_newtable(L);
    lua_pushcfunction(L, rl_sync_mts[i].gc);
    lua_setfield(L, -2, "__gc");
    lua_pushstring(L, rl_sync_mts[i].name);
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, rl_sync_mts[i].key);
  }
}

/* core.sync() -> {functions..., mt = {event=, lock=, ...}} */
int rl_sync(lua_State *L) {
  size_t i;
  lua_newtable(L);
  for (i = 0; i < sizeof rl_sync_fns / sizeof rl_sync_fns[0]; i++) {
    lua_pushcfunction(L, rl_sync_fns[i].fn);
    lua_setfield(L, -2, rl_sync_fns[i].name);
  }
  lua_newtable(L);
  for (i = 0; i < sizeof rl_sync_mts / sizeof rl_sync_mts[0]; i++) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, rl_sync_mts[i].key);
    lua_setfield(L, -2, rl_sync_mts[i].field);
  }
  lua_setfield(L, -2, "mt");
  return 1;
}
