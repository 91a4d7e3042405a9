-- rill Lua binding: bad arguments raise Lua errors, garbage collection at
-- every step, no leaked references, odd error values.
local T = require "runner"
local rill = require "rill"
local core = rill.core

local function registry_size()
  local n = 0
  for _ in pairs(debug.getregistry()) do n = n + 1 end
  return n
end

T.case("bad_arguments_raise", function()
  T.matches(T.raises(rill.run), "function expected")
  T.matches(T.raises(rill.run, 42), "function expected")
  rill.run(function()
    T.matches(T.raises(rill.sleep, "x"), "number expected")
    T.matches(T.raises(rill.sleep, 0 / 0), "number expected")
    T.matches(T.raises(rill.spawn, 42), "function expected")
    T.matches(T.raises(rill.gather, 42), "expected")
    T.matches(T.raises(rill.gather_list, 42), "table expected")
    T.matches(T.raises(rill.wait_for, nil, 1), "expected")
    T.matches(T.raises(rill.wait_for, function() end, "soon"), "number or nil expected")
    T.matches(T.raises(rill.shield, {}), "expected")
    T.matches(T.raises(rill.await, 5), "expected")
    T.matches(T.raises(rill.timeout, 1, 5), "function expected")
    T.matches(T.raises(rill.task_group, nil), "function expected")
    local t = rill.spawn(function() end)
    T.matches(T.raises(t.cancel, t, 123), "string or nil expected")
    T.raises(rill.Future.wait, 5)
    T.raises(rill.Future.done, {})
    T.raises(rill.Future.name, rill.future()) -- not a task
    local loop = rill.get_running_loop()
    T.matches(T.raises(loop.call_soon, loop, nil), "function expected")
    T.matches(T.raises(loop.call_later, loop, "x", print), "number expected")
    T.raises(loop.call_soon, {}, print)
    -- the C layer checks too
    T.raises(core.result, 1)
    T.raises(core.gather, { 1, 2 }, 2, 0)
    T.raises(core.gather, nil, 1, 0)
    T.raises(core.wait_for, "x", 1)
    T.raises(core.call_later, 0 / 0, print)
    T.raises(core.cancel, nil)
    T.raises(core.timeout_exit, {}, 0)
    T.raises(core.group_spawn, {}, print)
    t:wait()
    T.matches(T.raises(core.result, rill.future()), "not done")
  end)
  -- and the loop is still usable afterwards
  T.eq(rill.run(function() rill.sleep(0) return "fine" end), "fine")
end)

T.case("swig_classes_raise_errors", function()
  local f = T.raises(core.Future, nil)
  T.ok(f ~= nil)
  local loop = core.Loop()
  local fut = core.Future(loop)
  T.eq(fut:state(), core.PENDING)
  fut:set_int(5)
  local e = T.raises(fut.set_int, fut, 6)
  T.ok(rill.is_error(e) and e.code == rill.ESTATE, tostring(e))
  loop:close()
  T.ok(rill.is_error(T.raises(loop.close, loop)))
end)

T.case("gc_between_steps", function()
  rill.run(function()
    local ts = {}
    for i = 1, 200 do
      ts[i] = rill.spawn(function(x)
        for _ = 1, 3 do collectgarbage(); rill.sleep(0) end
        return { x }, x
      end, i)
    end
    collectgarbage()
    local r = rill.gather_list(ts)
    for i = 1, 200 do T.eq(r[i][1], i) end
  end)
end)

T.case("dropped_task_objects_still_run", function()
  local done = 0
  rill.run(function()
    for _ = 1, 100 do
      rill.spawn(function() rill.sleep(0.001); collectgarbage(); done = done + 1 end)
    end
    collectgarbage(); collectgarbage()
    for _ = 1, 5000 do
      if done == 100 then break end
      rill.sleep(0.002)
    end
  end)
  T.eq(done, 100)
end)

T.case("no_dead_coroutine_kept_alive", function()
  local weak = setmetatable({}, { __mode = "k" })
  rill.run(function()
    local ts = {}
    for i = 1, 50 do
      ts[i] = rill.spawn(function() weak[coroutine.running()] = true; rill.sleep(0) end)
    end
    rill.gather_list(ts)
  end)
  collectgarbage(); collectgarbage()
  T.eq(next(weak), nil)
end)

T.case("no_leak_across_runs", function()
  local function once()
    rill.run(function()
      local e = {}
      local ts = {}
      for i = 1, 100 do
        ts[i] = rill.spawn(function(x)
          rill.sleep(0)
          if x % 3 == 0 then error(e) end
          return x, { x }
        end, i)
      end
      rill.gather_list(ts, { return_exceptions = true })
      local loop = rill.get_running_loop()
      loop:call_soon(function() end)
      loop:call_later(10, function() end) -- never runs: dropped at close
      pcall(rill.wait_for, function() rill.sleep(1) end, 0)
      pcall(rill.task_group, function(tg) tg:spawn(function() error("x") end) end)
      rill.spawn(function() rill.sleep(10) end) -- leftover, cancelled by run
    end)
    collectgarbage(); collectgarbage()
  end
  once()
  local reg, mem = registry_size(), collectgarbage("count")
  for _ = 1, 20 do once() end
  T.eq(registry_size(), reg, "registry entries")
  T.ok(collectgarbage("count") < mem + 64, ("memory grew: %.0f -> %.0f KiB"):format(mem, collectgarbage("count")))
end)

T.case("odd_error_values", function()
  rill.run(function()
    local t = rill.spawn(function() error(nil) end)
    T.eq(T.raises(t.wait, t), nil)
    local bad = setmetatable({}, { __tostring = function() error("tostring broke") end })
    t = rill.spawn(function() error(bad) end)
    T.eq(T.raises(t.wait, t), bad)
    t = rill.spawn(function() error(setmetatable({}, { __tostring = function() return 5 end })) end)
    T.raises(t.wait, t)
    -- a task raising a rill error keeps its code
    t = rill.spawn(function() error(rill.new_error(rill.ETIMEDOUT, "mine")) end)
    local e = T.raises(t.wait, t)
    T.ok(rill.is_timeout(e)); T.eq(e.message, "mine")
  end)
end)

T.case("many_results", function()
  rill.run(function()
    local t = rill.spawn(function()
      local r = {}
      for i = 1, 5000 do r[i] = i end
      return table.unpack(r)
    end)
    local r = table.pack(t:wait())
    T.eq(r.n, 5000); T.eq(r[5000], 5000)
  end)
end)

T.case("deep_recursion_in_task", function()
  rill.run(function()
    local function rec(n) if n == 0 then rill.sleep(0) return 0 end return 1 + rec(n - 1) end
    T.eq(rill.spawn(rec, 10000):wait(), 10000)
    local t = rill.spawn(function() local function inf() return 1 + inf() end return inf() end)
    T.matches(T.raises(t.wait, t), "stack overflow")
  end)
end)

T.case("yield_inside_pcall_and_metamethods", function()
  rill.run(function()
    local ok, v = pcall(function() rill.sleep(0); return "in pcall" end)
    T.eq(ok, true); T.eq(v, "in pcall")
    local mt = { __index = function(_, k) rill.sleep(0); return k .. "!" end }
    T.eq(setmetatable({}, mt).x, "x!")
    local it = {}
    for _, v2 in ipairs({ 1, 2 }) do rill.sleep(0); it[#it + 1] = v2 end
    T.eq(#it, 2)
  end)
end)

T.case("stress_spawn_gc", function()
  rill.run(function()
    local ts = {}
    for i = 1, 5000 do ts[i] = rill.spawn(function(x) if x % 2 == 0 then rill.sleep(0) end return x end, i) end
    local r = rill.gather_list(ts)
    for i = 1, 5000 do T.eq(r[i], i) end
  end)
end)

T.case("sigint_interrupts_run_within_50ms", function()
  -- A child process sends SIGINT while rill.sleep(10) waits in the poll;
  -- it prints CLOCK_MONOTONIC (core.monotonic's clock) just before.
  local child = io.popen("exec python3 -c 'import os, time; time.sleep(0.3); "
    .. "t = time.monotonic(); os.kill(os.getppid(), 2); print(repr(t))'", "r")
  local cleaned = false
  local ok, err = pcall(rill.run, function()
    local ok2, e = pcall(rill.sleep, 10)
    cleaned = not ok2 and rill.is_cancelled(e) -- main saw the cancel, could clean up
    error(e, 0)
  end)
  local t_end = core.monotonic()
  local sent = tonumber(child:read("*a"))
  child:close()
  T.ok(not ok, "rill.run raised")
  T.ok(rill.is_error(err) and err.code == core.EINTR, tostring(err))
  T.eq(err.message, "interrupted")
  T.ok(cleaned)
  T.ok(sent ~= nil, "the child sent SIGINT")
  local limit = os.getenv("RILL_UNDER_VALGRIND") and 0.5 or 0.05
  T.ok(t_end - sent < limit, ("%.3f s after SIGINT"):format(t_end - sent))
end)

-- Pooled coroutines (task.c): a task that ended normally gives its
-- coroutine to the next task's first step; one that failed or was
-- cancelled does not, and a reused coroutine looks fresh to the next task.
T.case("coroutine_reused_only_after_a_normal_end", function()
  rill.run(function()
    local function running() return (coroutine.running()) end
    local co1 = rill.spawn(running):wait()
    T.eq(rill.spawn(running):wait(), co1, "a finished task's coroutine runs the next task")
    T.eq(coroutine.status(co1), "dead", "pooled: empty, as a finished coroutine")
    -- an error: its coroutine is dropped, dead
    local failed
    local t = rill.spawn(function() failed = coroutine.running(); error("boom") end)
    T.matches(T.raises(t.wait, t), "boom")
    T.eq(failed, co1, "the failing task ran on the pooled coroutine")
    T.eq(coroutine.status(failed), "dead")
    local co2 = rill.spawn(running):wait()
    T.ok(co2 ~= failed, "a failed task's coroutine is not reused")
    -- cancelled while suspended: dropped too
    local cancelled
    t = rill.spawn(function() cancelled = coroutine.running(); rill.sleep(10) end)
    rill.sleep(0)
    T.eq(cancelled, co2)
    t:cancel()
    T.ok(rill.is_cancelled(T.raises(t.wait, t)))
    T.ok(rill.spawn(running):wait() ~= cancelled, "a cancelled task's coroutine is not reused")
    -- a bad yield fails the task: dropped
    local bad
    t = rill.spawn(function() bad = coroutine.running(); coroutine.yield() end)
    T.matches(T.raises(t.wait, t), "bad yield")
    T.ok(rill.spawn(running):wait() ~= bad, "a bad-yield task's coroutine is not reused")
  end)
end)

T.case("reused_coroutine_looks_fresh", function()
  rill.run(function()
    -- the previous task's results and arguments do not leak into the
    -- next one's varargs
    local co = rill.spawn(function(...)
      T.eq(select("#", ...), 3)
      return coroutine.running(), 1, 2, 3
    end, "a", "b", "c"):wait()
    local n, co2 = rill.spawn(function(...) return select("#", ...), (coroutine.running()) end):wait()
    T.eq(co2, co, "reused")
    T.eq(n, 0, "no argument left over from the previous task")
    local a, b = rill.spawn(function(x, y) return x, y end, nil, false):wait()
    T.eq(a, nil)
    T.eq(b, false)
    -- after a task that failed and one that was cancelled, the next task
    -- runs, sleeps, is cancelled and returns as a fresh one does
    local f = rill.spawn(function() error("x") end)
    T.matches(T.raises(f.wait, f), "x")
    local s = rill.spawn(function() rill.sleep(10) end)
    rill.sleep(0)
    s:cancel()
    pcall(s.wait, s)
    local t = rill.spawn(function(x) rill.sleep(0.001); return x * 2, coroutine.running() end, 21)
    local v, tco = t:wait()
    T.eq(v, 42)
    T.eq(coroutine.status(tco), "dead")
    local c = rill.spawn(function() local ok, e = pcall(rill.sleep, 10); return rill.is_cancelled(e) end)
    rill.sleep(0)
    c:cancel()
    T.eq(c:wait(), true, "a task catching its cancel ends normally")
    -- and a task's error on a reused coroutine says where it was raised
    T.eq(rill.spawn(function() return (coroutine.running()) end):wait() ~= nil, true)
    f = rill.spawn(function() error("where") end)
    local msg = T.raises(f.wait, f)
    T.ok(tostring(msg):match("test_robust%.lua:%d+: where"), tostring(msg))
  end)
end)

T.case("one_argument_of_every_kind_arrives_as_passed", function()
  -- a nil, boolean or number argument travels inside the task until its
  -- first step, anything else by reference: on fresh and reused coroutines,
  -- in and out of debug mode, each arrives as it was passed
  local t, f = {}, function() end
  local values = { true, false, 0, -1, math.maxinteger, math.mininteger, 1.5, -0.0, 1 / 0, "s", t, f }
  local function check(v, w, wtype, n)
    T.eq(n, 1, "one argument")
    T.eq(rawequal(v, w), true, tostring(v))
    T.eq(wtype, math.type and math.type(v) or type(v), tostring(v))
  end
  local function echo(x) return x, math.type and math.type(x) or type(x), select("#", x) end
  for _, debug_on in ipairs({ false, true }) do
    rill.run(function()
      rill.get_running_loop():set_debug(debug_on)
      for round = 1, 2 do -- round 2 runs on the pooled coroutines of round 1
        local ts = {}
        for i, v in ipairs(values) do ts[i] = rill.spawn(function(x) rill.sleep(0) return echo(x) end, v) end
        for i, v in ipairs(values) do check(v, ts[i]:wait()) end
        local a, atype, n = rill.spawn(echo, nil):wait()
        T.eq(a, nil); T.eq(atype, "nil"); T.eq(n, 1, "a nil argument is one argument")
        local nan = rill.spawn(echo, 0 / 0):wait()
        T.ok(nan ~= nan, "NaN stays NaN")
        T.eq(1 / rill.spawn(echo, -0.0):wait(), -1 / 0, "-0.0 keeps its sign")
        T.eq(round > 0, true)
      end
    end)
  end
end)

T.case("sleep_and_yield_errors_name_their_caller", function()
  local src = "test_robust%.lua:%d+: "
  local function raises(pattern, fn)
    local msg = select(2, pcall(fn))
    T.ok(tostring(msg):match(pattern), tostring(msg))
  end
  raises(src .. "bad argument #1 to 'rill%.sleep' %(number expected, got string%)", function() rill.sleep("1") end)
  raises(src .. "bad argument #1 to 'rill%.sleep' %(number expected, got nil%)", function() rill.sleep() end)
  raises(src .. "bad argument #1 to 'rill%.sleep' %(number expected, got NaN%)", function() rill.sleep(0 / 0) end)
  raises(src .. "rill%.sleep called outside rill%.run", function() rill.sleep(1) end)
  raises(src .. "rill%.yield called outside rill%.run", function() rill.yield() end)
  rill.run(function()
    raises(src .. "rill%.yield called outside a rill task", coroutine.wrap(function() rill.yield() end))
    -- a cancel reaches a sleep under pcall, and the task goes on
    local t = rill.spawn(function()
      local ok, err = pcall(rill.sleep, 10)
      rill.yield()
      return ok, rill.is_cancelled(err), err.message
    end)
    rill.yield()
    t:cancel("stop")
    local ok, cancelled, msg = t:wait()
    T.eq(ok, false); T.eq(cancelled, true); T.eq(msg, "stop")
    -- the running loop's time, and a finished run's loop object refusing it
    local loop = rill.get_running_loop()
    T.eq(type(loop:time()), "number")
    T.matches(select(2, pcall(loop.time, {})), "expected the loop object")
    T.eq(loop:time(), rill.get_running_loop():time())
    _G.last_loop = loop
  end)
  raises(src .. "rill: this loop is closed", function() local t = _G.last_loop:time(); return t end)
  _G.last_loop = nil
end)

T.case("reused_coroutine_drops_the_previous_hook", function()
  if jit then return end -- LuaJIT's hooks are global to the state
  rill.run(function()
    local co1 = rill.spawn(function()
      debug.sethook(function() end, "l")
      return (coroutine.running())
    end):wait()
    local co2, hook = rill.spawn(function() return (coroutine.running()), (debug.gethook()) end):wait()
    T.eq(co2, co1, "reused")
    T.eq(hook, nil, "no hook from the previous task")
  end)
end)

T.case("coroutine_pool_dies_with_the_run", function()
  local weak = setmetatable({}, { __mode = "k" })
  rill.run(function()
    local ts = {}
    for i = 1, 300 do ts[i] = rill.spawn(function() weak[coroutine.running()] = true; rill.sleep(0) end) end
    rill.gather_list(ts)
    T.ok(next(weak) ~= nil)
  end)
  collectgarbage(); collectgarbage()
  T.eq(next(weak), nil, "no pooled coroutine outlives rill.run")
end)

T.main(...)
