-- rill Lua binding: the loop object (rill.new_loop) driven by hand, as
-- asyncio's explicit loop, and debug mode's slow-step report naming a Lua
-- task's function and line.
local T = require "runner"
local rill = require "rill"
local core = rill.core

local function sleeper(seconds, result)
  rill.sleep(seconds)
  return result
end

-- The rill error code a call raised, or what else it raised.
local function code_of(fn, ...)
  local ok, err = pcall(fn, ...)
  T.ok(not ok, "expected an error")
  return rill.is_error(err) and err.code or tostring(err)
end

local open_fds = T.open_fds

T.case("run_until_complete_then_again", function()
  local loop = rill.new_loop()
  T.eq(loop:is_running(), false)
  T.eq(loop:is_closed(), false)
  local first = loop:create_task(sleeper, 0.02, 1)
  local slow = loop:create_task(sleeper, 0.1, 2)
  T.eq(loop:run_until_complete(first), 1)
  T.eq(slow:done(), false, "slow goes on in the next run")
  T.eq(loop:run_until_complete(slow), 2)
  -- a function runs as a task with its arguments; results keep nil holes
  local r = table.pack(loop:run_until_complete(function(a, b) rill.sleep(0) return a, nil, b end, "x", "y"))
  T.same(r, { "x", nil, "y", n = 3 })
  -- a plain future of the idle loop, completed by a callback
  local f = loop:create_future()
  loop:call_later(0.01, function() f:set_result("from a timer") end)
  T.eq(loop:run_until_complete(f), "from a timer")
  loop:close()
  T.eq(loop:is_closed(), true)
end)

T.case("run_until_complete_raises_the_task_error", function()
  local loop = rill.new_loop()
  local value = { why = "mine" }
  local ok, err = pcall(loop.run_until_complete, loop, function() rill.sleep(0) error(value) end)
  T.eq(ok, false)
  T.eq(err, value, "the same value")
  local t = loop:create_task(sleeper, 10)
  loop:call_soon(function() t:cancel("enough") end)
  err = select(2, pcall(loop.run_until_complete, loop, t))
  T.ok(rill.is_cancelled(err))
  T.eq(err.message, "enough")
  T.eq(loop:run_until_complete(function() return "still usable" end), "still usable")
  loop:close()
end)

T.case("run_forever_until_stop", function()
  local loop = rill.new_loop()
  local order = {}
  loop:call_soon(function() order[#order + 1] = "soon 1" end)
  loop:call_soon(function(x) order[#order + 1] = x end, "soon 2")
  loop:call_later(0.03, function()
    order[#order + 1] = "stop"
    loop:stop()
  end)
  local t0 = rill.monotonic()
  loop:run_forever()
  T.ok(rill.monotonic() - t0 >= 0.03, "timers never fire early")
  T.same(order, { "soon 1", "soon 2", "stop" })
  loop:stop() -- idle: a no-op
  -- run_forever waits even with nothing to do, until stop
  local h = loop:call_later(0.02, function() loop:stop() end)
  T.ok(h:when() > 0)
  loop:run_forever()
  loop:close()
  loop:stop() -- closed: a no-op too
end)

T.case("running_loop_is_the_object", function()
  local loop = rill.new_loop()
  local seen = loop:run_until_complete(function()
    local running = rill.get_running_loop()
    return running == loop and loop:is_running() and running:time() > 0
  end)
  T.eq(seen, true)
  T.eq(loop:is_running(), false)
  T.matches(T.raises(rill.get_running_loop), "no running loop")
  -- rill.run's loop is a Loop too: running, and closed after its run
  local inner = rill.run(function()
    local l = rill.get_running_loop()
    T.eq(l:is_running(), true)
    T.eq(l:is_closed(), false)
    return l
  end)
  T.eq(inner:is_closed(), true)
  T.eq(inner:is_running(), false)
  loop:close()
end)

T.case("closed_loop_refuses", function()
  local loop = rill.new_loop()
  local t = loop:create_task(function() return 1 end)
  T.eq(loop:run_until_complete(t), 1)
  loop:close()
  T.eq(loop:is_closed(), true)
  T.eq(code_of(loop.run_until_complete, loop, t), core.ECLOSED)
  T.eq(code_of(loop.run_until_complete, loop, print), core.ECLOSED)
  T.eq(code_of(loop.run_forever, loop), core.ECLOSED)
  T.eq(code_of(loop.call_soon, loop, print), core.ECLOSED)
  T.eq(code_of(loop.call_later, loop, 1, print), core.ECLOSED)
  T.eq(code_of(loop.create_task, loop, print), core.ECLOSED)
  T.eq(code_of(loop.create_future, loop), core.ECLOSED)
  T.eq(code_of(loop.step, loop), core.ECLOSED)
  T.eq(code_of(loop.set_slow_callback_duration, loop, 1), core.ECLOSED)
  local e = T.raises(loop.call_soon, loop, print)
  T.eq(e.name, "RILL_ECLOSED")
  T.matches(tostring(e), "closed loop")
  loop:close() -- again: a no-op
  T.eq(t:result(), 1, "its tasks stay readable")
end)

T.case("nested_runs_refused", function()
  local loop = rill.new_loop()
  local other = rill.new_loop()
  local codes = loop:run_until_complete(function()
    local running = rill.get_running_loop()
    return {
      code_of(running.run_forever, running),
      code_of(running.run_until_complete, running, print),
      code_of(running.step, running),
      code_of(running.close, running),
      code_of(other.run_until_complete, other, print),
      code_of(rill.run, print),
    }
  end)
  T.same(codes, { core.EBUSY, core.EBUSY, core.EBUSY, core.EBUSY, core.EBUSY, core.EBUSY })
  -- nothing was started by the refused calls
  T.eq(loop:task_count(), 0)
  T.eq(other:task_count(), 0)
  -- and from rill.run: its loop, and a loop object
  codes = rill.run(function()
    local l = rill.get_running_loop()
    return { code_of(l.run_forever, l), code_of(l.close, l), code_of(loop.run_until_complete, loop, print) }
  end)
  T.same(codes, { core.EBUSY, core.EBUSY, core.EBUSY })
  -- a loop closed from another loop's task: closed, its tasks destroyed
  local pending = other:create_task(sleeper, 10)
  other:set_exception_handler(function() end) -- ("destroyed while pending")
  loop:run_until_complete(function() other:close() end)
  T.eq(other:is_closed(), true)
  T.eq(pending:cancelled(), true)
  loop:close()
end)

T.case("bad_input_raises", function()
  local loop = rill.new_loop()
  T.matches(T.raises(loop.run_until_complete, loop, 42), "rill task, future or function expected")
  T.matches(T.raises(loop.run_until_complete, loop), "rill task, future or function expected")
  T.matches(T.raises(loop.create_task, loop, "x"), "function expected")
  T.matches(T.raises(loop.call_soon, loop, nil), "function expected")
  T.matches(T.raises(loop.call_later, loop, "x", print), "number expected")
  T.matches(T.raises(loop.call_later, loop, 0 / 0, print), "number expected")
  T.matches(T.raises(loop.step, loop, "x"), "number or nil expected")
  T.matches(T.raises(loop.set_slow_callback_duration, loop, 0), "positive number expected")
  T.matches(T.raises(loop.set_slow_callback_duration, loop, "x"), "positive number expected")
  T.matches(T.raises(loop.set_exception_handler, loop, 5), "function or nil expected")
  T.matches(T.raises(loop.run_forever, {}), "expected the loop object")
  T.matches(T.raises(rill.Loop.close, 42), "expected the loop object")
  -- the C layer checks too
  local loops = core.loops()
  T.matches(T.raises(loops.run_until, {}, print), "rill loop expected")
  T.matches(T.raises(loops.close, 5), "rill loop expected")
  T.matches(T.raises(loops.is_closed, nil), "rill loop expected")
  T.matches(T.raises(loops.run_until, loop._l, {}), "rill task, future or function expected")
  -- a task of another loop
  local other = rill.new_loop()
  local t = other:create_task(print)
  T.eq(code_of(loop.run_until_complete, loop, t), core.EINVAL)
  other:close()
  -- a stop before the task is done
  local slow = loop:create_task(sleeper, 10)
  loop:call_later(0.01, function() loop:stop() end)
  local e = T.raises(loop.run_until_complete, loop, slow)
  T.eq(e.code, core.ESTATE)
  T.matches(e.message, "stopped before")
  loop:close()
  T.eq(slow:cancelled(), true, "close cancels what is left")
end)

T.case("close_cancels_and_runs_down_leftovers", function()
  local loop = rill.new_loop()
  local log = {}
  loop:create_task(function()
    local ok, err = pcall(rill.sleep, 10)
    log[#log + 1] = rill.is_cancelled(err) and "cancelled" or tostring(ok)
    rill.sleep(0) -- it may still await while it is run down
    log[#log + 1] = "cleaned up"
    error(err, 0)
  end)
  loop:run_until_complete(function() rill.sleep(0) end) -- (started)
  local t0 = rill.monotonic()
  loop:close()
  T.ok(rill.monotonic() - t0 < 1)
  T.same(log, { "cancelled", "cleaned up" })
end)

T.case("exception_handler_of_a_loop_object", function()
  local loop = rill.new_loop()
  local seen = {}
  loop:set_exception_handler(function(message, err) seen[#seen + 1] = { message, err } end)
  loop:call_soon(function() error("oops", 0) end)
  loop:run_until_complete(function() rill.sleep(0.01) end)
  T.eq(#seen, 1)
  T.matches(seen[1][1], "oops")
  T.eq(seen[1][2], "oops")
  loop:close()
end)

T.case("gc_without_close", function()
  local before = open_fds()
  local weak = setmetatable({}, { __mode = "v" })
  for i = 1, 20 do
    local loop = rill.new_loop()
    loop:set_exception_handler(function() end) -- (not called from __gc)
    loop:create_task(sleeper, 10) -- left pending
    loop:call_later(10, print)
    loop:run_until_complete(function() rill.sleep(0) end)
    if i % 2 == 0 then loop:create_task(print) end -- never started
    weak[i] = loop
  end
  collectgarbage()
  collectgarbage()
  T.eq(next(weak), nil, "collected")
  T.eq(open_fds(), before, "no fd left behind")
  -- the default loop and rill.run still work
  T.eq(rill.run(function() return rill.sleep(0) or "ok" end), "ok")
end)

-- Runs code in a child lua with stderr captured; returns stdout+stderr.
local function child(code)
  local interp = arg and arg[-1] or "lua5.4"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(("RILL_DEBUG= %s %s 2>&1"):format(interp, path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out, path
end

T.case("debug_report_names_function_and_line", function()
  local out, path = child([[
local rill = require "rill"
local function busy(s) local t = rill.monotonic() while rill.monotonic() - t < s do end end
local function worker()
  busy(0.08)
  rill.sleep(0)
  busy(0.08)
end
local loop = rill.new_loop()
loop:set_debug(true)
loop:set_slow_callback_duration(0.05)
local t = loop:create_task(worker)
t:set_name("W")
loop:run_until_complete(t)
loop:close()
rill.run(function()
  rill.get_running_loop():set_slow_callback_duration(0.05)
  rill.get_running_loop():set_debug(true)
  local g = rill.spawn(function() busy(0.08) end)
  g:set_name("G")
  g:wait()
end)
print("end")
]])
  local lines = {}
  for l in out:gmatch("[^\n]+") do
    -- (W and G only: on a loaded machine another step may be slow too)
    if l:find("Executing <Task [WG] ") then lines[#lines + 1] = l end
  end
  T.eq(#lines, 3, out)
  local p = path:gsub("%p", "%%%0")
  T.ok(lines[1]:match("Executing <Task W %(entry: worker%(%) running at " .. p .. ":5%)> took %d+%.%d%d%d seconds$"), lines[1])
  T.ok(lines[2]:match("Executing <Task W %(entry: worker%(%) done, defined at " .. p .. ":3%)> took %d+%.%d%d%d seconds$"), lines[2])
  T.ok(lines[3]:match("Executing <Task G %(entry: <anonymous>%(%) done, defined at " .. p .. ":18%)>"), lines[3])
  T.ok(out:find("end", 1, true))
end)

T.case("debug_report_global_and_module_names", function()
  local out = child([[
local rill = require "rill"
local function busy(s) local t = rill.monotonic() while rill.monotonic() - t < s do end end
function global_worker() busy(0.06) end
package.loaded.mymod = { work = function() busy(0.06) end }
rill.run(function()
  local l = rill.get_running_loop()
  l:set_debug(true)
  l:set_slow_callback_duration(0.05)
  rill.spawn(global_worker):wait()
  rill.spawn(package.loaded.mymod.work):wait()
  rill.spawn(print, "C function"):wait()
end)
]])
  T.ok(out:find("entry: global_worker() done, defined at ", 1, true), out)
  T.ok(out:find("entry: mymod.work() done, defined at ", 1, true), out)
  T.ok(not out:find("error", 1, true), out)
end)

T.case("ctrl_c_stops_a_loop_object", function()
  local out = child([[
local rill = require "rill"
local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
local function interrupt() io.popen("kill -INT " .. pid):close() end
local loop = rill.new_loop()
local t = loop:create_task(function() rill.sleep(10) end)
loop:call_later(0.05, interrupt)
local t0 = rill.monotonic()
local ok, err = pcall(loop.run_until_complete, loop, t)
print("run_until_complete", ok, err.name, err.message, t:done(), rill.monotonic() - t0 < 5)
loop:call_later(0.05, interrupt)
ok, err = pcall(loop.run_forever, loop)
print("run_forever", ok, err.name)
loop:close()
print("closed", t:cancelled())
]])
  T.matches(out, "run_until_complete\tfalse\tRILL_EINTR\tinterrupted\tfalse\ttrue")
  T.matches(out, "run_forever\tfalse\tRILL_EINTR")
  T.matches(out, "closed\ttrue")
end)

T.main(...)
