#!/usr/bin/env lua5.4
-- bench/lua/echo_cqueues.lua PORT - W4's cqueues peer: a coroutine per
-- connection (Debian lua-cqueues), reads of up to 64 KiB ("-65536"),
-- unbuffered binary writes, TCP_NODELAY as rill. Prints "listening on
-- 127.0.0.1:PORT"; exits 0 on SIGINT/SIGTERM.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local signal = require "cqueues.signal"
local port = assert(tonumber(arg[1]), "usage: echo_cqueues.lua PORT")

local cq = cqueues.new()
local srv = socket.listen { host = "127.0.0.1", port = port, reuseaddr = true, backlog = 1024,
                            nodelay = true }
assert(srv:listen())
cq:wrap(function()
  for con in srv:clients() do
    cq:wrap(function()
      con:setmode("b", "bn")
      while true do
        local data = con:read("-65536")
        if not data then break end
        con:write(data)
      end
      con:close()
    end)
  end
end)
signal.block(signal.SIGINT, signal.SIGTERM)
local sl = signal.listen(signal.SIGINT, signal.SIGTERM)
cq:wrap(function()
  sl:wait()
  os.exit(0)
end)
print(("listening on 127.0.0.1:%d"):format(port))
io.stdout:flush()
assert(cq:loop())
