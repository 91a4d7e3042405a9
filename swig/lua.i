/* swig/lua.i - the Lua module `rill_core`, under bindings/lua/rill.lua
 * (Lua 5.4; 5.3 and LuaJIT 2.1 from the same wrapper).
 *
 * SWIG generates the module, the constants and the classes of rill.i
 * (Loop and Future: a host's loop and futures, see rill.attach_loop); the
 * Lua runtime (tasks as coroutines, values, errors, the loop) is
 * hand-written C in bindings/lua/src/, one file per concern, registered
 * below with %native. */
%module rill_core

%{
#include "rill_lua.h"
/* Raise the Lua error table of a negative rill code and leave the wrapper. */
#define RILL_SWIG_RAISE(code) \
  do { rill_lua_push_error(L, (code), rl_message_of(code)); SWIG_fail; } while (0)
%}

%include "rill.i"

%{
/* For rill.attach_loop / rill.wrap_future (bindings/lua/src/embed.c). */
void *rl_swig_pointer(lua_State *L, int idx, int is_loop) {
  void *p = NULL;
  swig_type_info *type = is_loop ? SWIGTYPE_p_rill_loop : SWIGTYPE_p_rill_future;
  return SWIG_ConvertPtr(L, idx, &p, type, 0) == SWIG_OK ? p : NULL;
}
%}

%init %{
  rl_init(L);
%}

%constant int OP_SLEEP = RL_OP_SLEEP;
%constant int OP_AWAIT = RL_OP_AWAIT;
%constant int RES_CANCEL = RL_RES_CANCEL;
/* 1: core.sleep/core.yield are rill.sleep/rill.yield (Lua 5.3+, continuations) */
%constant int SLEEP_IN_C = (LUA_VERSION_NUM >= 503);
%constant double FOREVER = RILL_FOREVER;

%native(run) int rl_run(lua_State *L);
%native(spawn) int rl_spawn(lua_State *L);
%native(check_task) int rl_check_task(lua_State *L);
%native(raise_resume) int rl_raise_resume(lua_State *L);
%native(sleep) int rl_sleep(lua_State *L);
%native(yield) int rl_yield(lua_State *L);
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
%native(group_exit) int rl_group_exit(lua_State *L);
%native(group_exit_result) int rl_group_exit_result(lua_State *L);
%native(call_soon) int rl_call_soon(lua_State *L);
%native(call_later) int rl_call_later(lua_State *L);
%native(set_exception_handler) int rl_set_exception_handler(lua_State *L);
%native(report) int rl_report(lua_State *L);
%native(time) int rl_time(lua_State *L);
%native(loop_time_method) int rl_loop_time_method(lua_State *L);
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
%native(error_table) int rl_error_table(lua_State *L);
%native(attach_loop) int rl_attach_loop(lua_State *L);
%native(spawn_on) int rl_spawn_on(lua_State *L);
%native(future_address) int rl_future_address(lua_State *L);
%native(wrap_future) int rl_wrap_future(lua_State *L);
%native(sync) int rl_sync(lua_State *L);
%native(io) int rl_io(lua_State *L);
%native(loops) int rl_loops(lua_State *L);
