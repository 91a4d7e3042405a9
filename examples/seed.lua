-- The seed example in Lua: two tasks sleep one second concurrently.
-- Prints A started, B started, A finished, B finished in about 1.0 s, not 2.
local rill = require "rill"

local function task(name)
  print("Task " .. name .. " started")
  rill.sleep(1) -- yields control to the event loop
  print("Task " .. name .. " finished")
end

rill.run(function()
  rill.gather(function() task("A") end, function() task("B") end)
end)
