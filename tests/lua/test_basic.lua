-- rill Lua binding: run, spawn, sleep, cancellation, the loop.
local T = require "runner"
local rill = require "rill"

T.case("run_returns_results", function()
  local a, b, c = rill.run(function(x, y) return x + y, "s", nil end, 1, 2)
  T.eq(a, 3); T.eq(b, "s"); T.eq(c, nil)
  T.eq(select("#", rill.run(function() end)), 0)
end)

T.case("run_raises_same_value", function()
  local e = {}
  T.eq(T.raises(rill.run, function() error(e) end), e)
  T.matches(T.raises(rill.run, function() error("boom") end), "boom")
end)

T.case("two_runs_two_loops", function()
  local id1 = rill.run(function() return rill.get_running_loop().id end)
  local id2 = rill.run(function() return rill.get_running_loop().id end)
  T.ok(id1 ~= id2)
end)

T.case("run_inside_run_raises", function()
  rill.run(function()
    local e = T.raises(rill.run, function() end)
    T.ok(rill.is_error(e) and e.code == rill.EBUSY, tostring(e))
  end)
end)

T.case("sleep_outside_run_raises", function()
  T.matches(T.raises(rill.sleep, 0.01), "outside rill.run")
  T.matches(T.raises(rill.get_running_loop), "no running loop")
  T.matches(T.raises(rill.spawn, function() end), "rill.run")
end)

T.case("sleep_outside_task_raises", function()
  rill.run(function()
    local co = coroutine.create(function() rill.sleep(0) end)
    local ok, err = coroutine.resume(co)
    T.eq(ok, false)
    T.matches(err, "outside a rill task")
    local done = false
    rill.get_running_loop():call_soon(function()
      T.matches(T.raises(rill.sleep, 0), "outside a rill task")
      done = true
    end)
    rill.sleep(0); rill.sleep(0)
    T.ok(done)
  end)
end)

T.case("sleep_takes_its_time", function()
  rill.run(function()
    local loop = rill.get_running_loop()
    local t0 = loop:time()
    rill.sleep(0.05)
    T.ok(loop:time() - t0 >= 0.05, "slept too short")
  end)
end)

T.case("sleep_never_short_in_real_time", function()
  -- tasks that start late in a long iteration still sleep their full time
  local shortest = math.huge
  rill.run(function()
    local ts = {}
    for i = 1, 50 do
      ts[i] = rill.spawn(function()
        local t0 = rill.monotonic()
        while rill.monotonic() - t0 < 0.001 do end -- a slow step: 50 ms in all
        t0 = rill.monotonic()
        rill.sleep(0.02)
        local dt = rill.monotonic() - t0
        if dt < shortest then shortest = dt end
      end)
    end
    rill.gather_list(ts)
  end)
  T.ok(shortest >= 0.02, ("a sleep(0.02) lasted %.6f s"):format(shortest))
end)

T.case("task_starts_next_iteration", function()
  rill.run(function()
    local log = {}
    local t = rill.spawn(function() log[#log + 1] = "child" end)
    log[#log + 1] = "parent"
    t:wait()
    T.same(log, { "parent", "child" })
  end)
end)

T.case("sleep0_alternates", function()
  local log = {}
  rill.run(function()
    local function w(name)
      for i = 1, 3 do log[#log + 1] = name .. i; rill.sleep(0) end
    end
    rill.gather(function() w("a") end, function() w("b") end)
  end)
  T.same(log, { "a1", "b1", "a2", "b2", "a3", "b3" })
end)

T.case("result_kinds", function()
  rill.run(function()
    local tbl = {}
    local function v(...) local a = { ... }; local n = select("#", ...)
      return rill.spawn(function() return table.unpack(a, 1, n) end) end
    T.eq(v(7):wait(), 7)
    if math.type then T.eq(math.type(v(7):wait()), "integer") end
    T.eq(v(1.5):wait(), 1.5)
    if math.type then T.eq(math.type(v(2.0):wait()), "float") end
    T.eq(v("x\0y"):wait(), "x\0y")
    T.eq(v(true):wait(), true)
    T.eq(v(false):wait(), false)
    T.eq(v(nil):wait(), nil)
    T.eq(v(tbl):wait(), tbl)
    local a, b, c, d = v(1, nil, "z", tbl):wait()
    T.eq(a, 1); T.eq(b, nil); T.eq(c, "z"); T.eq(d, tbl)
    T.eq(select("#", v():wait()), 0)
  end)
end)

T.case("error_reaches_waiter_as_same_value", function()
  rill.run(function()
    local e = setmetatable({}, { __tostring = function() return "custom" end })
    local t = rill.spawn(function() rill.sleep(0); error(e) end)
    local ok, got = pcall(t.wait, t)
    T.eq(ok, false); T.eq(got, e)
    T.eq(t:error(), e)
    T.eq(T.raises(t.result, t), e)
    local t2 = rill.spawn(function() error("plain", 0) end)
    T.eq(T.raises(t2.wait, t2), "plain")
    local t3 = rill.spawn(function() error(42, 0) end)
    T.eq(T.raises(t3.wait, t3), 42)
  end)
end)

T.case("cancel_before_first_step", function()
  rill.run(function()
    local ran = false
    local t = rill.spawn(function() ran = true end)
    T.eq(t:cancel("early"), true)
    local err = T.raises(t.wait, t)
    T.ok(rill.is_cancelled(err))
    T.eq(err.message, "early")
    T.eq(ran, false)
    T.eq(t:cancelled(), true)
    T.eq(t:done(), true)
    T.eq(t:cancel(), false)
  end)
end)

T.case("cancel_at_await_point_catchable", function()
  rill.run(function()
    local seen
    local t = rill.spawn(function()
      local ok, err = pcall(rill.sleep, 10)
      seen = err
      T.eq(ok, false)
      return "caught"
    end)
    rill.sleep(0)
    T.eq(t:cancel("m1"), true)
    T.eq(t:cancel("m2"), true) -- repeat calls count too
    T.eq(t:wait(), "caught")
    T.ok(rill.is_cancelled(seen)); T.eq(seen.message, "m1")
    T.eq(t:cancelled(), false)
  end)
end)

T.case("cancel_propagates_to_awaited_task", function()
  rill.run(function()
    local inner = rill.spawn(function() rill.sleep(10) end)
    local outer = rill.spawn(function() return inner:wait() end)
    rill.sleep(0); rill.sleep(0)
    outer:cancel("stop")
    local err = T.raises(outer.wait, outer)
    T.ok(rill.is_cancelled(err)); T.eq(err.message, "stop")
    T.eq(inner:cancelled(), true)
  end)
end)

T.case("cancelled_error_uncaught_ends_cancelled", function()
  rill.run(function()
    local t = rill.spawn(function() rill.sleep(10) end)
    rill.sleep(0)
    t:cancel()
    local err = T.raises(t.wait, t)
    T.ok(rill.is_cancelled(err))
    T.eq(t:cancelled(), true)
    T.ok(tostring(err):find("RILL_ECANCELLED", 1, true))
  end)
end)

T.case("cancelling_counts", function()
  rill.run(function()
    local t = rill.spawn(function()
      local ok = pcall(rill.sleep, 10)
      T.eq(ok, false)
      return "caught"
    end)
    rill.sleep(0)
    T.eq(t:cancelling(), 0)
    T.eq(t:cancel("first"), true)
    T.eq(t:cancel("second"), true)
    T.eq(t:cancelling(), 2)
    T.eq(t:uncancel(), 1)
    T.eq(t:wait(), "caught")
    T.eq(t:cancel(), false)
  end)
end)

T.case("loop_time_cached_and_call_at", function()
  rill.run(function()
    local loop = rill.get_running_loop()
    local a = loop:time()
    T.eq(loop:time(), a) -- cached for the iteration
    T.ok(math.abs(rill.monotonic() - a) < 1)
    local fired
    loop:call_at(a + 0.01, function() fired = loop:time() end)
    rill.sleep(0.03)
    T.ok(fired and fired >= a + 0.01)
  end)
end)

T.case("await_done_task_does_not_yield", function()
  rill.run(function()
    local t = rill.spawn(function() return 1 end)
    t:wait()
    local other_ran = false
    rill.spawn(function() other_ran = true end)
    T.eq(t:wait(), 1)
    T.eq(other_ran, false)
  end)
end)

T.case("run_cancels_leftovers", function()
  local cleaned = false
  rill.run(function()
    rill.spawn(function()
      local ok, err = pcall(rill.sleep, 10)
      cleaned = not ok and rill.is_cancelled(err)
    end)
    rill.sleep(0)
  end)
  T.eq(cleaned, true)
end)

T.case("call_soon_fifo_and_args", function()
  local log = {}
  rill.run(function()
    local loop = rill.get_running_loop()
    for i = 1, 5 do loop:call_soon(function(x, y) log[#log + 1] = x .. y end, i, "!") end
    rill.sleep(0)
  end)
  T.same(log, { "1!", "2!", "3!", "4!", "5!" })
end)

T.case("call_later_order_and_cancel", function()
  local log = {}
  rill.run(function()
    local loop = rill.get_running_loop()
    local t0 = loop:time()
    loop:call_later(0.03, function() log[#log + 1] = "b"; T.ok(loop:time() - t0 >= 0.03) end)
    loop:call_later(0.01, function() log[#log + 1] = "a" end)
    loop:call_later(0.03, function() log[#log + 1] = "c" end)
    local h = loop:call_later(0.02, function() log[#log + 1] = "x" end)
    h:cancel()
    T.eq(h:cancelled(), true)
    rill.sleep(0.05)
  end)
  T.same(log, { "a", "b", "c" })
end)

T.case("callback_error_goes_to_handler", function()
  local reports = {}
  local after = false
  local e = {}
  rill.run(function()
    local loop = rill.get_running_loop()
    loop:set_exception_handler(function(msg, err) reports[#reports + 1] = { msg, err } end)
    loop:call_soon(function() error(e) end)
    loop:call_soon(function() after = true end)
    rill.sleep(0); rill.sleep(0)
  end)
  T.eq(after, true)
  T.eq(#reports, 1)
  T.matches(reports[1][1], "Exception in callback")
  T.eq(reports[1][2], e)
end)

T.case("unretrieved_task_error_reported", function()
  local reports = {}
  local e = {}
  rill.run(function()
    rill.get_running_loop():set_exception_handler(function(msg, err) reports[#reports + 1] = { msg, err } end)
    rill.spawn(function() error(e) end)
    rill.sleep(0); rill.sleep(0); rill.sleep(0)
  end)
  T.eq(#reports, 1)
  T.matches(reports[1][1], "never retrieved")
  T.eq(reports[1][2], e)
end)

T.case("handler_error_does_not_crash", function()
  rill.run(function()
    local loop = rill.get_running_loop()
    loop:set_exception_handler(function() error("handler broke") end)
    loop:call_soon(function() error("cb") end)
    rill.sleep(0); rill.sleep(0)
  end)
end)

T.case("task_names", function()
  rill.run(function()
    T.eq(rill.current_task_name(), "main")
    local t = rill.spawn(function() return rill.current_task_name() end)
    t:set_name("worker")
    T.eq(t:name(), "worker")
    T.eq(t:wait(), "worker")
    T.matches(tostring(t), "worker")
  end)
  T.eq(rill.current_task_name(), nil)
end)

T.case("current_task_and_all_tasks", function()
  rill.run(function()
    local seen
    local t = rill.spawn(function() seen = rill.current_task(); rill.sleep(0) end)
    local all = rill.all_tasks()
    T.eq(#all, 2)
    T.eq(all[2], t)
    T.ok(all[1] == rill.current_task())
    t:wait()
    T.ok(seen == t)
    T.ok(seen ~= rill.current_task())
  end)
  T.eq(rill.current_task(), nil)
end)

T.case("plain_future", function()
  rill.run(function()
    local f = rill.future()
    rill.get_running_loop():call_later(0.01, function() f:set_result("v", 2) end)
    local a, b = f:wait()
    T.eq(a, "v"); T.eq(b, 2)
    local g = rill.future()
    local e = {}
    rill.get_running_loop():call_soon(function() g:set_error(e) end)
    T.eq(T.raises(g.wait, g), e)
    T.ok(rill.is_error(T.raises(f.set_result, f, 1)))
  end)
end)

T.case("bare_coroutine_yield_in_task", function()
  -- asyncio: a yield the task does not understand fails it ("bad yield")
  rill.run(function()
    local t = rill.spawn(function() coroutine.yield(); return "not reached" end)
    local ok, err = pcall(t.wait, t)
    T.ok(not ok)
    T.matches(tostring(err), "bad yield")
    local t2 = rill.spawn(function() coroutine.yield("a value") end)
    T.matches(tostring(select(2, pcall(t2.wait, t2))), "bad yield")
    T.eq(rill.spawn(function() return "others run on" end):wait(), "others run on")
  end)
end)

T.case("embedding_attached_loop", function()
  -- A loop the host creates and runs (here rill_core.Loop and run_once):
  -- rill.attach_loop, rill.spawn_on, rill.future_address, rill.wrap_future.
  local core = rill.core
  local host = core.Loop()
  local loop = rill.attach_loop(host)
  local t = rill.spawn_on(loop, function(x)
    rill.sleep(0.01)
    local inner = rill.spawn(function() return x end) -- the whole API works
    return inner:wait() * 2
  end, 21)
  local hf = core.Future(host) -- a future of the host's
  local w = rill.wrap_future(hf)
  local t2 = rill.spawn_on(loop, function() return rill.await(w) end)
  local t3 = rill.spawn_on(loop, function() return rill.await(rill.wrap_future(rill.future_address(t))) end)
  while not t:done() do host:run_once(0.1) end
  T.eq(t:result(), 42)
  T.ok(math.type == nil or math.type(t:result()) == "integer")
  T.ok(not t2:done())
  hf:set_double(2.5)
  while not (t2:done() and t3:done()) do host:run_once(0.1) end
  T.eq(t2:result(), 2.5)
  T.eq(t3:result(), 42)
  T.eq(type(rill.future_address(t)), "number")
  t, t2, t3, w, hf = nil, nil, nil, nil, nil
  collectgarbage()
  host:close()
end)

T.case("embedding_exception_handler_reaches_lua", function()
  -- On a host's loop, Lua's handler gets the reports of Lua's tasks and
  -- callbacks (the core's per-binding handler); the host keeps its own.
  local core = rill.core
  local host = core.Loop()
  local loop = rill.attach_loop(host)
  local reports, e, ce = {}, { "task" }, { "cb" }
  local t = rill.spawn_on(loop, function()
    local l = rill.get_running_loop()
    l:set_exception_handler(function(msg, err) reports[#reports + 1] = { msg, err } end)
    rill.spawn(function() error(e) end)
    l:call_soon(function() error(ce) end)
    rill.sleep(0); rill.sleep(0); rill.sleep(0)
  end)
  while not t:done() do host:run_once(0.1) end
  t:result()
  t = nil
  collectgarbage()
  host:close() -- (the failure nobody retrieved is reported by now)
  T.eq(#reports, 2)
  local by = {}
  for _, r in ipairs(reports) do by[r[2]] = r[1] end
  T.matches(by[e], "never retrieved")
  T.matches(by[ce], "Exception in callback")
end)

T.main(...)
