-- rill Lua binding: regression tests of issue 17 that reach Lua (NaN
-- messages, -inf timeouts expiring at once).
local T = require "runner"
local rill = require "rill"

T.case("nan_argument_says_nan", function()
  rill.run(function()
    local msg = T.raises(rill.sleep, 0 / 0)
    T.matches(msg, "number expected, got NaN")
    T.matches(T.raises(rill.wait_for, function() end, 0 / 0), "number or nil expected, got NaN")
    T.matches(T.raises(rill.timeout, 0 / 0, function() end), "number or nil expected, got NaN")
  end)
end)

T.case("minus_inf_timeouts_expire_at_once", function()
  local t0 = rill.monotonic()
  rill.run(function()
    local ok, err = pcall(rill.wait_for, function() rill.sleep(5) end, -math.huge)
    T.eq(ok, false)
    T.eq(rill.is_timeout(err), true, "wait_for(-inf)")
    ok, err = pcall(rill.timeout, -math.huge, function() rill.sleep(5) end)
    T.eq(ok, false)
    T.eq(rill.is_timeout(err), true, "timeout(-inf)")
    local t = rill.spawn(function() rill.sleep(5) end)
    local done, pending = rill.wait({ t }, { timeout = -math.huge })
    T.eq(#done, 0)
    T.eq(#pending, 1)
    t:cancel()
    rill.sleep(-math.huge)
  end)
  T.eq(rill.monotonic() - t0 < 1.0, true, "took " .. (rill.monotonic() - t0) .. " s")
end)

-- 100,000 tasks through the coroutine pool (task.c): each ends in its first
-- step, so a few coroutines run them all; every tenth fails (its coroutine
-- is dropped), and the others still get exactly their own argument.
T.case("hundred_thousand_tasks_on_pooled_coroutines", function()
  local N = 100000
  local seen, distinct = setmetatable({}, { __mode = "k" }), 0
  local r = rill.run(function()
    local ts = {}
    for i = 1, N do
      ts[i] = rill.spawn(function(x, ...)
        if select("#", ...) ~= 0 then error("leftover arguments") end
        local co = coroutine.running()
        if not seen[co] then seen[co] = true; distinct = distinct + 1 end
        if x % 10 == 0 then error("ten") end
        return x
      end, i)
    end
    return rill.gather_list(ts, { return_exceptions = true })
  end)
  T.eq(#r, N)
  for i = 1, N do
    if i % 10 == 0 then
      if not rill.is_error(r[i]) and not tostring(r[i]):match("ten") then T.ok(false, "task " .. i .. " did not fail") end
    elseif r[i] ~= i then
      T.eq(r[i], i, "task " .. i)
    end
  end
  -- the failed tasks' coroutines are new each time; the others share a few
  T.ok(distinct <= N / 10 + 2, distinct .. " coroutines for " .. N .. " tasks")
end)

T.main(...)
