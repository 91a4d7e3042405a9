-- Lesson 3, blocking against non-blocking, in Lua: the seed's two tasks,
-- A and B, each "work for 1 s", gathered, three ways:
--   - A blocks in os.execute("sleep 1") (as in any long call or loop that
--     does not yield): the whole loop stops with it, B's one second starts
--     after A's: 2 s;
--   - both call rill.sleep: the loop runs the other meanwhile: 1 s;
--   - A moves its blocking work to the thread pool (rill.to_thread) and
--     waits for it: 1 s.
-- In debug mode (RILL_DEBUG=1 or loop:set_debug(true)) the blocked step is
-- reported once on stderr, as asyncio does: "Executing <Task A (entry:
-- blocking_worker() done, defined at .../blocking.lua:N)> took 1.001
-- seconds"; the threshold is the loop's slow callback duration
-- (loop:set_slow_callback_duration, 0.1 s by default).
-- Output: examples/lessons/blocking.txt, times within 0.3 s.
local rill = require "rill"

local function blocking_worker()
  os.execute("sleep 1") -- the loop cannot run anything meanwhile
end

local function sleeping_worker()
  rill.sleep(1) -- yields to the loop for one second
end

local function threaded_worker()
  -- on a pool thread (in a fresh Lua state): the loop goes on
  rill.to_thread(function() os.execute("sleep 1") end)
end

local function gather_a_and_b(worker_of_a)
  rill.get_running_loop():set_slow_callback_duration(0.5) -- report steps longer than 0.5 s
  local a = rill.spawn(worker_of_a)
  a:set_name("A")
  local b = rill.spawn(sleeping_worker)
  b:set_name("B")
  rill.gather(a, b)
end

for _, case in ipairs {
  { 'blocking (os.execute("sleep 1") in a task)', blocking_worker },
  { "non-blocking (rill.sleep)", sleeping_worker },
  { "thread pool (rill.to_thread)", threaded_worker },
} do
  local t0 = rill.monotonic()
  rill.run(gather_a_and_b, case[2])
  print(("%s: %.1f s"):format(case[1], rill.monotonic() - t0))
  io.stdout:flush()
end
