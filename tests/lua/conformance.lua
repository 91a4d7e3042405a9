-- The conformance scenarios (tests/conformance/transcript.txt) in Lua:
-- prints the transcript's lines; tests/conformance/check.cmake compares.
local rill = require "rill"

rill.run(function()
  -- 1. A task group: c1 fails first; c2 fails handling its cancel, c3 ends
  --    cancelled, the body fails handling its cancel.
  local t3
  local ok, err = pcall(rill.task_group, function(tg)
    tg:spawn(function() rill.sleep(0.01); error("c1", 0) end)
    tg:spawn(function()
      if not pcall(rill.sleep, 10) then error("c2", 0) end
    end)
    t3 = tg:spawn(function() rill.sleep(10) end)
    if not pcall(rill.sleep, 10) then error("body", 0) end
  end)
  if ok or not (rill.is_error(err) and err.code == rill.EGROUP) then
    print("group gave " .. tostring(err))
  else
    local names = {}
    for i, e in ipairs(err.errors) do names[i] = tostring(e) end
    print("errors: " .. table.concat(names, " "))
  end
  print("c3: " .. (t3:cancelled() and "cancelled" or "not cancelled"))

  -- 2. A task cancelled before its first step.
  local ran = false
  local early = rill.spawn(function() ran = true end)
  early:cancel()
  pcall(early.wait, early)
  print(("early: %s, %s"):format(ran and "ran" or "never ran",
                                 early:cancelled() and "cancelled" or "not cancelled"))
end)
