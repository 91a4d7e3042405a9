--[[ W1/W2/W3 (BENCHMARKS.md) for Lua event loops, one implementation per run.

    lua5.4 workloads.lua rill|cqueues W1|W2|W3 [tasks=N] [iters=N] [delay=S]

rill: rill.run / rill.spawn / rill.sleep / rill.gather (bench/run puts the
build tree's bindings/lua on LUA_PATH/LUA_CPATH). cqueues: cq:wrap,
cqueues.sleep, and a gather written as a countdown + a condition variable
the main coroutine waits on (cqueues has no gather). Checks its results,
then prints one RESULT line; on failure prints why on stderr and exits 1.
]]
local SLEEP_TOLERANCE_S = 1e-3

local function fail(msg)
  io.stderr:write("bench: FAILED: ", msg, "\n")
  os.exit(1)
end

local impl, workload = arg[1], arg[2]
if (impl ~= "rill" and impl ~= "cqueues") or not ({ W1 = 1, W2 = 1, W3 = 1 })[workload or ""] then
  fail("usage: workloads.lua rill|cqueues W1|W2|W3 [tasks=N] [iters=N] [delay=S]")
end
local P = { tasks = workload == "W1" and 1000 or 100000, iters = 1000, delay = 0.05 }
for i = 3, #arg do
  local k, v = arg[i]:match("^(%w+)=(.+)$")
  if not k or P[k] == nil or not tonumber(v) then fail("bad argument " .. arg[i]) end
  P[k] = k == "delay" and tonumber(v) or math.tointeger(tonumber(v))
  if not P[k] then fail("bad value in " .. arg[i]) end
end
local tasks, iters, delay = P.tasks, P.iters, P.delay

-- CLOCK_MONOTONIC: rill.monotonic in the rill row (whose W3 also checks the
-- loop clock), cqueues.monotime in the cqueues row.
local monotime

local steps = 0
local run, version

if impl == "rill" then
  local rill = require "rill"
  version = rill._VERSION
  monotime = rill.monotonic
  local sleep, spawn, gather_list = rill.sleep, rill.spawn, rill.gather_list
  local loop -- the running loop, for W3's second clock
  local fns = {
    W1 = function(index)
      local n = 0
      for _ = 1, iters do sleep(0); n = n + 1 end
      steps = steps + n
      return index
    end,
    W2 = function(index) return index end,
    W3 = function()
      local t0, l0 = monotime(), loop:time()
      sleep(delay)
      local dl = loop:time() - l0
      local dt = monotime() - t0
      return dl < dt and dl or dt
    end,
  }
  local fn = fns[workload]
  run = function()
    return rill.run(function()
      loop = rill.get_running_loop()
      local ts = {}
      for i = 1, tasks do ts[i] = spawn(fn, i - 1) end
      return gather_list(ts)
    end)
  end
else
  local ok_cq, cqueues = pcall(require, "cqueues")
  if not ok_cq then fail("cannot load cqueues: " .. tostring(cqueues)) end
  monotime = cqueues.monotime
  local condition = require "cqueues.condition"
  version = tostring(cqueues.VERSION)
  local sleep = cqueues.sleep
  local fns = {
    W1 = function(index)
      local n = 0
      for _ = 1, iters do sleep(0); n = n + 1 end
      steps = steps + n
      return index
    end,
    W2 = function(index) return index end,
    W3 = function()
      local t0 = monotime()
      sleep(delay)
      return monotime() - t0
    end,
  }
  local fn = fns[workload]
  run = function()
    local cq = cqueues.new()
    local results
    cq:wrap(function()
      local res, left, cv = { n = tasks }, tasks, condition.new()
      for i = 1, tasks do
        cq:wrap(function()
          res[i] = fn(i - 1)
          left = left - 1
          if left == 0 then cv:signal() end
        end)
      end
      if left > 0 then cv:wait() end
      results = res
    end)
    local ok, err = cq:loop()
    if not ok then fail("cqueues: " .. tostring(err)) end
    return results
  end
end

local t0 = monotime()
local results = run()
local wall = monotime() - t0

if type(results) ~= "table" or (results.n or #results) ~= tasks then
  fail(("gather returned %s results, expected %d"):format(type(results) == "table" and (results.n or #results) or "no", tasks))
end
local extra = ""
if workload == "W3" then
  local shortest = math.huge
  for i = 1, tasks do if results[i] < shortest then shortest = results[i] end end
  if shortest < delay - SLEEP_TOLERANCE_S then fail(("a sleep(%g) lasted %.6f s"):format(delay, shortest)) end
  extra = (" min_sleep_s=%.6f"):format(shortest)
else
  for i = 1, tasks do
    if results[i] ~= i - 1 then fail("gather results are not the task indexes in order") end
  end
  if workload == "W1" and steps ~= tasks * iters then
    fail(("%d switches, expected %d"):format(steps, tasks * iters))
  end
end
local ops = workload == "W1" and tasks * iters or tasks
io.write(("RESULT workload=%s impl=%s version=%s tasks=%d iters=%d delay=%g ops=%d wall_s=%.6f ns_per_op=%.2f%s\n")
  :format(workload, impl, version, tasks, iters, delay, ops, wall, wall * 1e9 / ops, extra))
