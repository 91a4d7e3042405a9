#!/usr/bin/env lua5.4
-- examples/echo_server.lua PORT - the echo server on rill's Lua sockets:
-- one task per connection (rill.tcp.serve), echoing what it reads until
-- the client's end of stream. Prints "listening on 127.0.0.1:PORT"; exits 0
-- on SIGINT or SIGTERM. (W4 in bench/w4/run_w4.sh runs it.)
local rill = require "rill"

local port = tonumber(arg[1] or "")
if not port then
  io.stderr:write("usage: echo_server.lua PORT\n")
  os.exit(2)
end

local function echo(sock)
  while true do
    local data = sock:read_some(65536)
    if not data or not sock:write(data) then return end
    -- the core buffers writes; wait for room only when it piles up
    if sock:buffered() > 65536 and not sock:flush() then return end
  end
end

rill.run(function()
  local stop = rill.event()
  local function quit() stop:set() end
  local hint = rill.signal("INT", quit)
  local hterm = rill.signal("TERM", quit)
  local server = assert(rill.tcp.serve("127.0.0.1", port, echo, { backlog = 1024 }))
  print(("listening on 127.0.0.1:%d"):format(port))
  io.stdout:flush()
  stop:wait()
  server:close()
  hint:cancel()
  hterm:cancel()
end)
os.exit(0)
