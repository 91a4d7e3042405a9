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

T.main(...)
