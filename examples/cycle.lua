-- Lesson 1, the loop's cycle, in Lua: a callback (call_soon), two timers
-- (call_later), a task that sleeps and a task that awaits a file
-- descriptor's readability (rill.poll, the binding's way to watch an fd),
-- registered on one loop; each prints when the loop runs it. Lua has no
-- pipe(): a connected pair of sockets on 127.0.0.1 plays the pipe's part.
-- The order is the one every language prints: examples/lessons/cycle.txt
-- (about 0.30 s).
local rill = require "rill"

local function sleeper()
  print("task: started")
  rill.sleep(0.15)
  print("task: woke after sleep(0.15)")
end

local function reader(sock)
  print("reader: waiting for the pipe")
  rill.poll(sock:getfd(), "r") -- an I/O watcher: the task resumes once the fd is readable
  print(("reader: the pipe is readable, read '%s'"):format(sock:read(1)))
end

-- The two ends of a loopback connection: read from the first, write to the second.
local function socket_pair()
  local server = assert(rill.tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local connecting = rill.spawn(function() return assert(rill.tcp.connect("127.0.0.1", port)) end)
  local r = assert(server:accept())
  local w = connecting:wait()
  server:close()
  return r, w
end

rill.run(function()
  local loop = rill.get_running_loop()
  local r, w = socket_pair()
  local fired = rill.future()
  -- Registered in this order; the transcript shows the order they run in.
  loop:call_later(0.30, function()
    print("timer: call_later(0.30) fired")
    fired:set_result()
  end)
  loop:call_soon(print, "callback: call_soon ran")
  local t = rill.spawn(sleeper)
  local rd = rill.spawn(reader, r)
  loop:call_later(0.05, function()
    if w:write("x") then print("timer: wrote 'x' to the pipe") end
  end)
  rill.gather(t, rd, fired)
  print("main: done")
  r:close()
  w:close()
end)
