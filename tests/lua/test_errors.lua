-- rill Lua binding: every code of RILL_ERRNO_MAP maps to its error value
-- (a table {code, name, message}; cancel and timeout recognised by
-- rill.is_cancelled / rill.is_timeout), from a status and from a future.
local T = require "runner"
local rill = require "rill"
local core = rill.core

local function codes()
  local list = {}
  for k, v in pairs(core) do
    if type(k) == "string" and k:match("^E[A-Z0-9]+$") and type(v) == "number" and v < 0 then
      list[#list + 1] = { name = k, code = v }
    end
  end
  table.sort(list, function(a, b) return a.code > b.code end)
  return list
end

local TABLE = core.error_table() -- the shared table's Lua column

local function check(e, c, message)
  T.ok(rill.is_error(e), c.name)
  T.eq(e.code, c.code, c.name)
  T.eq(e.name, TABLE[c.code], c.name)
  T.eq(e.message, message, c.name)
  T.eq(rill.is_cancelled(e), c.name == "ECANCELLED", c.name)
  T.eq(rill.is_timeout(e), c.name == "ETIMEDOUT", c.name)
end

T.case("every_code_maps_to_its_error", function()
  local list = codes()
  T.ok(#list >= 12, "codes found: " .. #list)
  local n = 0
  for code, name in pairs(TABLE) do
    n = n + 1
    T.eq(type(name), "string", tostring(code))
  end
  T.eq(n, #list, "the table has every code")
  for _, c in ipairs(list) do
    local text = c.name == "ECANCELLED" and "" or core.rill_strerror(c.code)
    check(rill.new_error(c.code), c, text)
    T.eq(tostring(rill.new_error(c.code, "why")), TABLE[c.code] .. ": why")
  end
end)

T.case("failed_future_gives_the_same_error", function()
  for _, c in ipairs(codes()) do
    local host = core.Loop()
    local f = core.Future(host)
    f:fail(c.code, "why")
    local w = rill.wrap_future(f)
    local ok, e = pcall(w.result, w)
    T.ok(not ok, c.name)
    check(e, c, "why")
    w, f = nil, nil
    collectgarbage()
    host:close()
  end
end)

T.case("status_error_carries_its_code", function()
  local host = core.Loop()
  local f = core.Future(host)
  T.raises(f.fail, f, 1, "codes must be negative") -- EINVAL, with its message
  f:set_int(1)
  local e = T.raises(f.set_int, f, 2) -- ESTATE
  T.eq(e.code, rill.ESTATE)
  T.ok(e.message ~= nil and e.message ~= "")
  f = nil
  collectgarbage()
  host:close()
end)

T.main(...)
