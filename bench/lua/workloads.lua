--[[ W1/W2/W3/W6 (BENCHMARKS.md) for Lua event loops, one implementation per run.

    lua5.4 workloads.lua rill|cqueues W1|W2|W3 [tasks=N] [iters=N] [delay=S]
    lua5.4 workloads.lua rill|cqueues W6 [items=N] [maxsize=N]

rill: rill.run / rill.spawn / rill.sleep / rill.gather (bench/run puts the
build tree's bindings/lua on LUA_PATH/LUA_CPATH). cqueues: cq:wrap,
cqueues.sleep, and a gather written as a countdown + a condition variable
the main coroutine waits on (cqueues has no gather). W6: a producer task
puts items 1..N into a bounded queue, a consumer task takes them (rill.queue
in the rill row; in the cqueues row a bounded queue written on two
cqueues.condition variables, cqueues having no queue). Checks its results,
then prints one RESULT line; on failure prints why on stderr and exits 1.
]]
local SLEEP_TOLERANCE_S = 1e-3

local function fail(msg)
  io.stderr:write("bench: FAILED: ", msg, "\n")
  os.exit(1)
end

local impl, workload = arg[1], arg[2]
if (impl ~= "rill" and impl ~= "cqueues") or not ({ W1 = 1, W2 = 1, W3 = 1, W6 = 1 })[workload or ""] then
  fail("usage: workloads.lua rill|cqueues W1|W2|W3 [tasks=N] [iters=N] [delay=S] | W6 [items=N] [maxsize=N]")
end
local P = workload == "W6" and { items = 1000000, maxsize = 1 }
  or { tasks = workload == "W1" and 1000 or 100000, iters = 1000, delay = 0.05 }
for i = 3, #arg do
  local k, v = arg[i]:match("^(%w+)=(.+)$")
  if not k or P[k] == nil or not tonumber(v) then fail("bad argument " .. arg[i]) end
  P[k] = k == "delay" and tonumber(v) or math.tointeger(tonumber(v))
  if not P[k] then fail("bad value in " .. arg[i]) end
end
local tasks, iters, delay = P.tasks, P.iters, P.delay
local items, maxsize = P.items, P.maxsize

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
  if workload == "W6" then
    run = function()
      return rill.run(function()
        local q = rill.queue{ maxsize = maxsize }
        local put, get = q.put, q.get
        local producer = spawn(function()
          for i = 1, items do put(q, i) end
        end)
        local consumer = spawn(function()
          local sum = 0
          for _ = 1, items do sum = sum + get(q) end
          return sum
        end)
        producer:wait()
        return consumer:wait()
      end)
    end
  else run = function()
    return rill.run(function()
      loop = rill.get_running_loop()
      local ts = {}
      for i = 1, tasks do ts[i] = spawn(fn, i - 1) end
      return gather_list(ts)
    end)
  end end
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
  -- W6: a bounded FIFO on two condition variables (cqueues has no queue)
  local function new_queue(max)
    return { items = {}, head = 1, tail = 0, n = 0, max = max,
             not_empty = condition.new(), not_full = condition.new() }
  end
  local function put(q, v)
    while q.n >= q.max do q.not_full:wait() end
    q.tail = q.tail + 1
    q.items[q.tail] = v
    q.n = q.n + 1
    q.not_empty:signal(1)
  end
  local function get(q)
    while q.n == 0 do q.not_empty:wait() end
    local h = q.head
    local v = q.items[h]
    q.items[h] = nil
    q.head = h + 1
    q.n = q.n - 1
    q.not_full:signal(1)
    return v
  end
  if workload == "W6" then
    run = function()
      local cq = cqueues.new()
      local q, sum = new_queue(maxsize), nil
      cq:wrap(function()
        for i = 1, items do put(q, i) end
      end)
      cq:wrap(function()
        local s = 0
        for _ = 1, items do s = s + get(q) end
        sum = s
      end)
      local ok, err = cq:loop()
      if not ok then fail("cqueues: " .. tostring(err)) end
      return sum
    end
  else run = function()
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
  end end
end

local t0 = monotime()
local results = run()
local wall = monotime() - t0

if workload == "W6" then
  if results ~= items * (items + 1) // 2 then
    fail(("the consumer's sum is %s, expected %d (items lost, doubled or reordered)"):format(tostring(results), items * (items + 1) // 2))
  end
  io.write(("RESULT workload=W6 impl=%s version=%s items=%d maxsize=%d ops=%d wall_s=%.6f ns_per_op=%.2f\n")
    :format(impl, version, items, maxsize, items, wall, wall * 1e9 / items))
  os.exit(0)
end

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
