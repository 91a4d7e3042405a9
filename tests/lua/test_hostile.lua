-- rill Lua binding, hostile use (issue 17, item 6): every kind of error
-- value in every callback; Ctrl+C at each state of a program; GC at every
-- step; os.exit with tasks pending. (test_robust.lua has the bad-argument,
-- leak and odd-error-value cases; this file adds the rest.)
--
-- Ctrl+C and exit cases run a child lua5.4 (bounded by `timeout`) and look at
-- its exit status and output.
local T = require "runner"
local rill = require "rill"
local LUA54 = _VERSION == "Lua 5.4" -- collector modes, <close>

-- Every kind of error value Lua can raise.
local bad_tostring = setmetatable({}, { __tostring = function() error("tostring broke") end })
local KINDS = {
  { "string", "boom" },
  { "number", 42 },
  { "table", { why = "t" } },
  { "nil", nil },
  { "false", false },
  { "function", print },
  { "coroutine", coroutine.create(print) },
  { "bad_tostring", bad_tostring },
  { "rill_error", rill.new_error(rill.ETIMEDOUT, "mine") },
}

local function each_kind(fn)
  for _, k in ipairs(KINDS) do
    local ok, err = pcall(fn, k[1], k[2])
    if not ok then error(("kind %s: %s"):format(k[1], tostring(err)), 0) end
  end
end

-- ---------------------------------------------------------------------
-- errors in every callback
-- ---------------------------------------------------------------------

T.case("task_body_every_kind", function()
  each_kind(function(name, v)
    rill.run(function()
      local t = rill.spawn(function() rill.sleep(0); error(v, 0) end)
      local ok, e = pcall(t.wait, t)
      T.eq(ok, false, name)
      T.ok(rawequal(e, v), name .. ": the same value reaches the waiter")
      T.ok(rawequal(t:error(), v), name .. ": t:error()")
    end)
    -- and from the main task, out of rill.run
    local ok, e = pcall(rill.run, function() rill.sleep(0); error(v, 0) end)
    T.eq(ok, false, name)
    T.ok(rawequal(e, v), name .. ": out of rill.run")
  end)
end)

T.case("unretrieved_task_error_every_kind", function()
  each_kind(function(name, v)
    local seen = {}
    rill.run(function()
      rill.get_running_loop():set_exception_handler(function(msg, err) seen[#seen + 1] = { msg, err } end)
      rill.spawn(function() error(v, 0) end)
      rill.sleep(0.01)
      collectgarbage(); collectgarbage()
      rill.sleep(0)
    end)
    collectgarbage()
    T.eq(#seen, 1, name .. ": reports")
    T.eq(type(seen[1][1]), "string", name)
  end)
end)

local function callback_kinds(schedule)
  each_kind(function(name, v)
    local seen, after = {}, false
    rill.run(function()
      local loop = rill.get_running_loop()
      loop:set_exception_handler(function(msg, err) seen[#seen + 1] = { msg, err } end)
      schedule(loop, function() error(v, 0) end)
      rill.sleep(0.02)
      after = true
    end)
    T.eq(#seen, 1, name .. ": one report")
    T.ok(rawequal(seen[1][2], v), name .. ": the error value reaches the handler")
    T.ok(after, name .. ": the loop went on")
  end)
end

T.case("call_soon_every_kind", function()
  callback_kinds(function(loop, f) loop:call_soon(f) end)
end)

T.case("call_later_every_kind", function()
  callback_kinds(function(loop, f) loop:call_later(0.001, f) end)
end)

T.case("call_soon_with_args_every_kind", function()
  callback_kinds(function(loop, f) loop:call_soon(function(a, b) f(a, b) end, 1, nil) end)
end)

T.case("exception_handler_that_raises", function()
  each_kind(function(name, v)
    local calls = 0
    local r = rill.run(function()
      local loop = rill.get_running_loop()
      loop:set_exception_handler(function() calls = calls + 1; error(v, 0) end)
      loop:call_soon(function() error("first") end)
      rill.spawn(function() error("unretrieved") end)
      rill.sleep(0.01)
      return "went on"
    end)
    T.eq(r, "went on", name)
    T.ok(calls >= 1, name .. ": handler called")
  end)
end)

T.case("exception_handler_that_yields_or_sleeps", function()
  -- the handler runs in a C callback: rill.sleep there must raise, not crash
  local errs = {}
  local r = rill.run(function()
    local loop = rill.get_running_loop()
    loop:set_exception_handler(function(msg)
      local ok, e = pcall(rill.sleep, 0)
      errs[#errs + 1] = ok and "slept?!" or "refused"
      local ok2 = pcall(coroutine.yield)
      errs[#errs + 1] = ok2 and "yielded?!" or "refused"
    end)
    loop:call_soon(function() error("x") end)
    rill.sleep(0.01)
    return "ok"
  end)
  T.eq(r, "ok")
  T.same(errs, { "refused", "refused" })
end)

T.case("callback_that_yields_or_sleeps", function()
  local seen = {}
  rill.run(function()
    local loop = rill.get_running_loop()
    loop:set_exception_handler(function(msg, err) seen[#seen + 1] = tostring(err) end)
    loop:call_soon(function() rill.sleep(0) end)
    loop:call_soon(function() coroutine.yield(1) end)
    loop:call_later(0, function() rill.spawn(function() end):wait() end)
    rill.sleep(0.01)
  end)
  T.eq(#seen, 3, table.concat(seen, " | "))
end)

T.case("callback_cancels_its_own_handle", function()
  -- cancels its handle, drops it and collects while it runs, then uses its
  -- arguments (issue 17 item 1(b); lua_valgrind.hostile would see a freed read)
  local got = {}
  local r = rill.run(function()
    local loop = rill.get_running_loop()
    local h, h2
    h = loop:call_soon(function(a)
      h:cancel(); h = nil; collectgarbage(); collectgarbage()
      got[#got + 1] = a[1]
    end, { "soon" })
    h2 = loop:call_later(0.001, function(a)
      T.eq(h2:cancel(), nil) -- already running: nothing to cancel
      h2 = nil; collectgarbage(); collectgarbage()
      got[#got + 1] = a[1]
    end, { "later" })
    rill.sleep(0.05)
    return "ok"
  end)
  T.eq(r, "ok")
  T.same(got, { "soon", "later" })
end)

T.case("finalizers_that_raise_or_use_rill", function()
  -- (Lua 5.4: LuaJIT has no __gc on tables; 5.3 propagates __gc errors)
  if not LUA54 then return end
  -- __gc that raises (Lua 5.4 warns and goes on) or touches the loop
  local warned = 0
  local spawned = 0
  rill.run(function()
    for i = 1, 50 do
      setmetatable({}, { __gc = function()
        if i % 2 == 0 then error("from __gc " .. i) end
        local ok = pcall(rill.spawn, function() spawned = spawned + 1 end)
        if not ok then warned = warned + 1 end
      end })
      if i % 10 == 0 then collectgarbage(); rill.sleep(0) end
    end
    collectgarbage(); collectgarbage()
    rill.sleep(0.01)
  end)
  collectgarbage()
  T.eq(spawned + warned, 25)
end)

T.case("iterators_that_sleep_and_raise", function()
  rill.run(function()
    local function iter(n, fail_at, v)
      local i = 0
      return function()
        rill.sleep(0)
        i = i + 1
        if i == fail_at then error(v, 0) end
        if i <= n then return i end
      end
    end
    local got = {}
    for x in iter(3) do got[#got + 1] = x end
    T.same(got, { 1, 2, 3 })
    each_kind(function(name, v)
      local t = rill.spawn(function() for _ in iter(5, 2, v) do end end)
      local ok, e = pcall(t.wait, t)
      T.eq(ok, false, name); T.ok(rawequal(e, v), name)
    end)
    -- __pairs / __index / __close metamethods that sleep and raise
    local mt = { __index = function(_, k) rill.sleep(0); error({ k = k }) end }
    local ok, e = pcall(function() return setmetatable({}, mt).x end)
    T.eq(ok, false); T.eq(e.k, "x")
    if LUA54 then -- to-be-closed variables (Lua 5.4 syntax, loaded as text)
      local closed = { false }
      local body = load([[
        local rill, closed = ...
        local c <close> = setmetatable({}, { __close = function() rill.sleep(0); closed[1] = true end })
        error("body")
      ]])
      ok, e = pcall(body, rill, closed)
      T.eq(ok, false); T.ok(closed[1], "__close ran after a sleep")
    end
    -- a generator coroutine inside a task that sleeps
    local gen = coroutine.wrap(function() for i = 1, 2 do coroutine.yield(i) end end)
    T.eq(gen(), 1); rill.sleep(0); T.eq(gen(), 2)
  end)
end)

T.case("sleep_inside_a_nested_coroutine_raises", function()
  rill.run(function()
    local co = coroutine.create(function() rill.sleep(0) end)
    local ok, e = coroutine.resume(co)
    T.eq(ok, false)
    T.ok(e ~= nil, "an error, not a hang")
    rill.sleep(0)
  end)
end)

T.case("errors_in_combinator_bodies_every_kind", function()
  each_kind(function(name, v)
    rill.run(function()
      local ok, e = pcall(rill.wait_for, function() rill.sleep(0); error(v, 0) end, 5)
      T.eq(ok, false, name); T.ok(rawequal(e, v), name .. " wait_for")
      ok, e = pcall(rill.timeout, 5, function() rill.sleep(0); error(v, 0) end)
      T.eq(ok, false, name); T.ok(rawequal(e, v), name .. " timeout")
      ok, e = pcall(rill.shield, function() rill.sleep(0); error(v, 0) end)
      T.eq(ok, false, name); T.ok(rawequal(e, v), name .. " shield")
      ok, e = pcall(rill.task_group, function(tg) tg:spawn(function() error(v, 0) end); rill.sleep(1) end)
      T.eq(ok, false, name); T.ok(rill.is_error(e) and e.code == rill.EGROUP, name .. " group")
      T.ok(rawequal(e.errors[1], v), name .. " group error value")
      local r = rill.gather({ return_exceptions = true }, function() error(v, 0) end, function() return 1 end)
      T.ok(rawequal(r[1], v), name .. " gather"); T.eq(r[2], 1)
      local f = rill.future()
      rill.get_running_loop():call_soon(function() f:set_error(v) end)
      ok, e = pcall(f.wait, f)
      T.eq(ok, false, name); T.ok(rawequal(e, v), name .. " future")
    end)
  end)
end)

-- ---------------------------------------------------------------------
-- GC at every step
-- ---------------------------------------------------------------------

T.case("gc_in_every_callback", function()
  local reports = 0
  local r = rill.run(function()
    local loop = rill.get_running_loop()
    loop:set_exception_handler(function() collectgarbage(); reports = reports + 1 end)
    local ts = {}
    for i = 1, 60 do
      ts[i] = rill.spawn(function()
        for _ = 1, 3 do collectgarbage(); rill.sleep(0) end
        if i % 6 == 0 then error({ i }) end
        return { i }
      end)
    end
    loop:call_soon(collectgarbage)
    loop:call_later(0.001, function() collectgarbage(); collectgarbage("step", 0) end)
    loop:call_soon(function() collectgarbage(); error("to the handler") end)
    local res = rill.gather_list(ts, { return_exceptions = true })
    rill.wait_for(function() collectgarbage(); rill.sleep(0); collectgarbage() end, 5)
    rill.timeout(5, function() collectgarbage(); rill.sleep(0) end)
    rill.task_group(function(tg)
      for _ = 1, 5 do tg:spawn(function() collectgarbage(); rill.sleep(0); collectgarbage() end) end
    end)
    return res
  end)
  T.eq(reports, 1)
  for i = 1, 60 do T.eq(r[i][1], i) end
end)

T.case("gc_stress_aggressive_incremental", function()
  -- the collector runs a full cycle at nearly every allocation
  if LUA54 then collectgarbage("incremental", 1, 1000) else collectgarbage("setpause", 1); collectgarbage("setstepmul", 1000) end
  local ok, err = pcall(function()
    local r = rill.run(function()
      local ts = {}
      for i = 1, 200 do
        ts[i] = rill.spawn(function()
          local f = rill.future()
          rill.get_running_loop():call_soon(function() f:set_result(i, { i }) end)
          local a, b = f:wait()
          rill.sleep(0)
          pcall(rill.wait_for, function() rill.sleep(1) end, 0)
          return a + b[1]
        end)
      end
      return rill.gather_list(ts)
    end)
    for i = 1, 200 do T.eq(r[i], 2 * i) end
  end)
  if LUA54 then collectgarbage("incremental", 200, 100) else collectgarbage("setpause", 200); collectgarbage("setstepmul", 200) end
  if not ok then error(err, 0) end
end)

T.case("gc_generational_mode", function()
  if not LUA54 then return end
  collectgarbage("generational")
  local ok, err = pcall(function()
    local r = rill.run(function()
      local ts = {}
      for i = 1, 500 do ts[i] = rill.spawn(function() rill.sleep(0); collectgarbage("step"); return { i } end) end
      return rill.gather_list(ts)
    end)
    T.eq(r[500][1], 500)
  end)
  collectgarbage("incremental")
  if not ok then error(err, 0) end
end)

T.case("gc_during_cancellation_of_leftovers", function()
  local log = {}
  rill.run(function()
    for i = 1, 20 do
      rill.spawn(function()
        local ok, e = pcall(rill.sleep, 3600)
        collectgarbage(); collectgarbage()
        if not ok then
          pcall(rill.sleep, 0)
          collectgarbage()
          log[#log + 1] = i
          error(e, 0)
        end
      end)
    end
    rill.sleep(0)
  end)
  T.eq(#log, 20)
end)

-- ---------------------------------------------------------------------
-- Ctrl+C and exit, in a child interpreter
-- ---------------------------------------------------------------------

local LUA = arg and arg[-1] or "lua5.4"

--- Runs the Lua source in a child; with sigint_after, sends it SIGINT that
-- many seconds after it starts. Returns exit code, output (stdout+stderr), seconds.
local function child(src, sigint_after, limit)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('local rill = require "rill"\nio.stdout:setvbuf("no")\n', src)
  f:close()
  local out = os.tmpname()
  local cmd
  if sigint_after then
    -- the interpreter is the child of `timeout`: wait until it exists
    cmd = ("(timeout -s KILL %d %s %s > %s 2>&1 & pid=$!; sleep %s; " ..
           "for i in 1 2 3 4 5 6 7 8 9 10; do c=$(pgrep -P $pid) && break; sleep 0.1; done; " ..
           "kill -INT $c 2>/dev/null; wait $pid; echo \"rc=$?\" >> %s)")
      :format(limit or 15, LUA, path, out, sigint_after, out)
  else
    cmd = ("(timeout -s KILL %d %s %s > %s 2>&1; echo \"rc=$?\" >> %s)"):format(limit or 15, LUA, path, out, out)
  end
  local t0 = rill.monotonic()
  os.execute(cmd)
  local secs = rill.monotonic() - t0
  local o = assert(io.open(out)):read("a")
  os.remove(path); os.remove(out)
  local rc = tonumber(o:match("rc=(%d+)%s*$"))
  return rc, o, secs
end

local function no_crash(out)
  T.ok(not out:find("Segmentation", 1, true) and not out:find("core dumped", 1, true)
       and not out:find("Aborted", 1, true) and not out:find("PANIC", 1, true), out)
end

-- rill.run arms the core's SIGINT cancel (rill_loop_cancel_on_sigint): a
-- SIGINT while the loop waits cancels main at once. The known gaps below
-- are the states that mechanism cannot reach (Lua code that never returns
-- to the loop, the shutdown of leftovers). RILL_LUA_EXPECT_SIGINT=1 runs
-- them as real tests.
local EXPECT_SIGINT = os.getenv("RILL_LUA_EXPECT_SIGINT") == "1"

local function known_gap(fn, applies)
  if EXPECT_SIGINT or applies == false then return fn end
  return function()
    local ok = pcall(fn)
    T.ok(not ok, "known gap now passes: remove its known_gap marker")
    print("     (expected failure: Lua binding has no SIGINT handling)")
  end
end

-- Lua's interpreter turns SIGINT into an "interrupted!" error at the next
-- Lua hook: a program busy in Lua code ends promptly with it.
-- Known gap: while rill.run runs, SIGINT is rill's (the first cancels main
-- at the loop's next wake-up, a second ends the process), so a task busy in
-- Lua code is not interrupted until it returns to the loop; lua.c's own
-- "interrupted!" hook (and LuaJIT's) is not installed then.
T.case("ctrl_c_busy_in_a_task_step", known_gap(function()
  local rc, out, secs = child([[
    rill.run(function()
      rill.spawn(function() rill.sleep(30) end)
      local t0 = os.clock()
      while os.clock() - t0 < 10 do end
    end)
  ]], 0.5, 4)
  no_crash(out)
  T.eq(rc, 1, out)
  T.matches(out, "interrupted")
  T.ok(secs < 5, ("took %.1f s"):format(secs))
end))

-- Known gap: the "interrupted!" error raised in a callback is a plain
-- string, so the binding reports it to the exception handler as a callback
-- error and the loop goes on: Ctrl+C is swallowed.
T.case("ctrl_c_busy_in_a_callback", known_gap(function()
  local rc, out, secs = child([[
    rill.run(function()
      rill.get_running_loop():call_soon(function()
        local t0 = os.clock()
        while os.clock() - t0 < 10 do end
      end)
      rill.sleep(30)
    end)
  ]], 0.5, 4)
  no_crash(out)
  T.ok(rc ~= 0 and rc ~= 137, out)
  T.ok(secs < 5, ("took %.1f s"):format(secs))
end))

T.case("ctrl_c_before_run", function()
  -- SIGINT while the script is busy before rill.run: the interrupted error
  local rc, out, secs = child([[
    local t0 = os.clock()
    while os.clock() - t0 < 10 do end
    rill.run(function() end)
    print("ran")
  ]], 0.5)
  no_crash(out)
  T.eq(rc, 1, out)
  T.ok(not out:find("ran", 1, true), out)
  T.ok(secs < 8, ("took %.1f s"):format(secs))
end)

T.case("ctrl_c_waiting_on_a_long_sleep", function()
  local rc, out, secs = child([[
    rill.run(function() rill.sleep(6) end)
    print("slept through")
  ]], 0.5, 15)
  no_crash(out)
  T.ok(not out:find("slept through", 1, true), out)
  T.ok(secs < 3, ("took %.1f s"):format(secs))
end)

T.case("ctrl_c_during_shutdown_of_leftovers", known_gap(function()
  local rc, out, secs = child([[
    rill.run(function()
      rill.spawn(function()
        local ok = pcall(rill.sleep, 30)
        if not ok then rill.sleep(6) end -- refuses to end quickly
      end)
      rill.sleep(0)
    end)
    print("finished")
  ]], 0.5, 15)
  no_crash(out)
  T.ok(not out:find("finished", 1, true), out)
  T.ok(secs < 3, ("took %.1f s"):format(secs))
end))

T.case("os_exit_inside_a_task", function()
  local rc, out = child([[
    rill.run(function()
      rill.spawn(function() rill.sleep(30) end)
      rill.spawn(function() rill.sleep(0); os.exit(3) end):wait()
    end)
  ]])
  no_crash(out)
  T.eq(rc, 3, out)
end)

T.case("os_exit_closing_the_state_inside_a_task", function()
  -- os.exit(code, true) closes the Lua state (running every __gc) while the
  -- loop is running under it
  local rc, out = child([[
    rill.run(function()
      for i = 1, 10 do rill.spawn(function() rill.sleep(30) end) end
      rill.get_running_loop():call_later(30, print)
      rill.spawn(function() rill.sleep(0); os.exit(4, true) end):wait()
    end)
  ]])
  no_crash(out)
  T.eq(rc, 4, out)
end)

T.case("os_exit_inside_a_callback", function()
  local rc, out = child([[
    rill.run(function()
      rill.get_running_loop():call_later(0.01, function() os.exit(5, true) end)
      rill.sleep(30)
    end)
  ]])
  no_crash(out)
  T.eq(rc, 5, out)
end)

T.case("error_at_top_level_with_tasks_pending", function()
  local rc, out = child([[
    rill.run(function()
      rill.spawn(function() rill.sleep(30) end)
      rill.sleep(0)
      error("main failed")
    end)
  ]])
  no_crash(out)
  T.eq(rc, 1, out)
  T.matches(out, "main failed")
end)

T.case("loop_object_left_open_at_exit", function()
  local rc, out = child([[
    local core = rill.core
    local loops = {}
    for i = 1, 3 do loops[i] = core.Loop() end
    loops[1]:close()
    print("leaving")
  ]])
  no_crash(out)
  T.eq(rc, 0, out)
  T.matches(out, "leaving")
end)

T.main(...)
