--- A plain test runner for the Lua suite (no busted needed).
--
--   local T = require "runner"
--   T.case("name", function() T.eq(1, 1) end)
--   T.main(...)   -- at the end of the file
--
-- `lua5.4 test_x.lua` runs every case; `lua5.4 test_x.lua NAME...` runs the
-- named ones; `--list` prints the names (ctest registers one test per case).
-- Prints each case, then "N passed, N failed"; exits 1 if any failed.
-- collectgarbage() runs between cases, so a bad reference shows up there.
local T = { cases = {}, names = {} }

-- Lua 5.1 / LuaJIT
table.unpack = table.unpack or unpack
table.pack = table.pack or function(...) return { n = select("#", ...), ... } end

function T.case(name, fn)
  assert(not T.cases[name], "duplicate case " .. name)
  T.cases[name] = fn
  T.names[#T.names + 1] = name
end

local function fmt(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

function T.eq(got, want, what)
  if got ~= want then
    error(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", fmt(want), fmt(got)), 2)
  end
end

function T.ok(cond, what)
  if not cond then error("assertion failed" .. (what and (": " .. what) or ""), 2) end
  return cond
end

function T.same(got, want, what)
  local n = math.max(got.n or #got, want.n or #want)
  for i = 1, n do
    if got[i] ~= want[i] then
      error(("%sat [%d] expected %s, got %s"):format(what and (what .. ": ") or "", i, fmt(want[i]), fmt(got[i])), 2)
    end
  end
  if (got.n or #got) ~= (want.n or #want) then
    error(("%slength: expected %d, got %d"):format(what and (what .. ": ") or "", want.n or #want, got.n or #got), 2)
  end
end

--- Calls fn(...), which must raise; returns the error value.
function T.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error, none was raised", 2) end
  return err
end

--- Raises unless msg (a string) contains pattern (plain).
function T.matches(msg, pattern)
  if type(msg) ~= "string" or not msg:find(pattern, 1, true) then
    error(("expected a message containing %q, got %s"):format(pattern, fmt(msg)), 2)
  end
end

function T.main(...)
  local args = { ... }
  if args[1] == "--list" then
    for _, n in ipairs(T.names) do print(n) end
    return
  end
  local selected = #args > 0 and args or T.names
  local passed, failed = 0, 0
  for _, name in ipairs(selected) do
    local fn = T.cases[name]
    if not fn then
      print("FAIL " .. name .. ": no such case")
      failed = failed + 1
    else
      collectgarbage()
      local ok, err = xpcall(fn, debug.traceback)
      collectgarbage()
      collectgarbage()
      if ok then
        passed = passed + 1
        print("ok   " .. name)
      else
        failed = failed + 1
        print("FAIL " .. name .. ": " .. tostring(err))
      end
    end
  end
  print(("%d passed, %d failed"):format(passed, failed))
  io.stdout:flush()
  if failed > 0 then os.exit(1) end
end

-- The fds open in this process, counted by ls through popen. A count can
-- include popen's own write end, which the parent closes only after the
-- child runs (a race ctest -j lost: "expected 9, got 8", "expected 15, got
-- 14"), so the fewest of three counts is the number.
function T.open_fds()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  collectgarbage()
  local fewest
  for _ = 1, 3 do
    local p = assert(io.popen("ls -1 /proc/" .. pid .. "/fd | wc -l"))
    local n = tonumber(p:read("*a"))
    p:close()
    if not fewest or n < fewest then fewest = n end
  end
  return fewest
end

return T
