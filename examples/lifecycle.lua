-- Lesson 2, rill.run against the explicit loop, in Lua (asyncio's two ways
-- to drive a loop, on rill's loop):
-- (a) rill.run(main) (asyncio.run): a new loop, main run to its end, the
--     tasks left cancelled and run down, the loop closed.
-- (b) the explicit path (asyncio's loop object): rill.new_loop(), run until
--     one task is done, run again so that a task started in the first run
--     finishes in the second, stop run_forever from a callback, close.
-- (c) misuse, each refused: the name of the rill error raised is printed.
-- Output: examples/lessons/lifecycle.txt, whose codes (RILL_ECLOSED,
-- RILL_EBUSY) read as what Lua raises for them (rill error values, named
-- after the code: bindings/common/rill_errors.h).
local rill = require "rill"

-- -- (a) --

local function leftover()
  local ok, err = pcall(rill.sleep, 10)
  if not ok and rill.is_cancelled(err) then print("run: leftover task cancelled at shutdown") end
  if not ok then error(err, 0) end -- the cancel ends the task
end

local function run_main()
  print("run: main started")
  rill.spawn(leftover)
  rill.sleep(0) -- let it start: a task cancelled before it starts never runs
  print("run: main returns")
  return 42
end

print(("run: returned %d, the loop is gone"):format(rill.run(run_main)))

-- -- (b) --

local function sleeper(seconds, result)
  rill.sleep(seconds)
  return result
end

local function yes_no(b) return b and "yes" or "no" end

local loop = rill.new_loop()
print(("loop: created (running: %s, closed: %s)"):format(yes_no(loop:is_running()), yes_no(loop:is_closed())))
local first = loop:create_task(sleeper, 0.05, 1)
local slow = loop:create_task(sleeper, 0.2, 2)
local r = loop:run_until_complete(first)
print(("loop: first -> %d, slow still pending: %s"):format(r, yes_no(not slow:done())))
r = loop:run_until_complete(slow)
print(("loop: slow -> %d (started in the first run, finished in the second)"):format(r))
local stopped = false
loop:call_later(0.05, function()
  stopped = true
  loop:stop()
end)
loop:run_forever()
if stopped then print("loop: run_forever stopped by a callback") end
loop:close()
print(("loop: closed (closed: %s)"):format(yes_no(loop:is_closed())))

-- -- (c) --

local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return "accepted" end
  return rill.is_error(err) and err.name or tostring(err)
end

print("misuse: run_until on a closed loop -> " .. raised(loop.run_until_complete, loop, first))
print("misuse: call_soon on a closed loop -> " .. raised(loop.call_soon, loop, print))

local other = rill.new_loop()
other:run_until_complete(function()
  local running = rill.get_running_loop() -- inside a task: the running loop, other
  print("misuse: running a loop that already runs -> " .. raised(running.run_forever, running))
  print("misuse: closing a running loop -> " .. raised(running.close, running))
end)
other:close()
