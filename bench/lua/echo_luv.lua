#!/usr/bin/env lua5.4
-- bench/lua/echo_luv.lua PORT - W4's luv peer: the echo server on libuv
-- through luv (Debian lua-luv), read_start callbacks, TCP_NODELAY as rill.
-- Prints "listening on 127.0.0.1:PORT"; exits 0 on SIGINT/SIGTERM.
local uv = require "luv"
local port = assert(tonumber(arg[1]), "usage: echo_luv.lua PORT")

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", port))
assert(server:listen(1024, function(err)
  if err then return end
  local client = uv.new_tcp()
  if not server:accept(client) then client:close() return end
  client:nodelay(true)
  client:read_start(function(rerr, data)
    if rerr or not data then
      client:close()
      return
    end
    client:write(data)
  end)
end))
local function quit() uv.stop() end
local sigint, sigterm = uv.new_signal(), uv.new_signal()
sigint:start("sigint", quit)
sigterm:start("sigterm", quit)
print(("listening on 127.0.0.1:%d"):format(port))
io.stdout:flush()
uv.run()
os.exit(0)
