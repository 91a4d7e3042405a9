-- rill Lua binding: sockets, rill.poll / rill.wrap (LuaSocket), DNS,
-- signals, processes (issue 14). Everything on 127.0.0.1, bounded in
-- count and time. I/O failures are nil, message, code; bad arguments raise.
local T = require "runner"
local rill = require "rill"

local function listen()
  local srv = assert(rill.tcp.listen("127.0.0.1", 0))
  local _, port = srv:getsockname()
  return srv, port
end

T.case("echo_server_100_clients", function()
  rill.run(function()
    local srv, port = rill.tcp.serve("127.0.0.1", 0, function(sock)
      while true do
        local data = sock:read_some()
        if not data then return end
        sock:write(data)
      end
    end)
    local _, p = srv:getsockname()
    T.ok(p > 0)
    local clients = {}
    for i = 1, 100 do
      clients[i] = rill.spawn(function()
        local s = assert(rill.tcp.connect("127.0.0.1", p, { timeout = 10 }))
        local got = {}
        for k = 1, 5 do
          local msg = ("client %d line %d"):format(i, k)
          assert(s:write(msg, "\n"))
          got[k] = assert(s:read("l"))
          T.eq(got[k], msg)
        end
        s:shutdown("w")
        T.eq(s:read("l"), nil) -- the server closed after our EOF
        s:close()
        return #got
      end)
    end
    local r = rill.gather_list(clients)
    for i = 1, 100 do T.eq(r[i], 5) end
    srv:close()
    T.eq(port:wait(), nil) -- the acceptor ends once the server is closed
  end)
end)

T.case("read_formats", function()
  rill.run(function()
    local srv, port = listen()
    rill.spawn(function()
      local c = assert(srv:accept())
      c:write("one\r\ntwo\n", "three\n", "12345", "rest of it")
      c:close()
    end)
    local s = assert(rill.tcp.connect(nil, port))
    T.eq(s:read("l"), "one\r")
    T.eq(s:read("L"), "two\n")
    local a, b = s:read("l", 5)
    T.eq(a, "three")
    T.eq(b, "12345")
    T.eq(s:read_some(4), "rest")
    T.eq(s:read("a"), " of it")
    T.eq(s:read_some(), nil)
    T.eq(s:read("l"), nil) -- end of stream: a plain nil
    T.eq(s:read(3), nil)
    T.eq(s:read("a"), "")
    s:close()
    srv:close()
  end)
end)

T.case("line_limit_error_keeps_data", function()
  rill.run(function()
    local srv, port = listen()
    rill.spawn(function()
      local c = assert(srv:accept())
      c:write(("x"):rep(100) .. "\nshort\n")
      c:flush()
      rill.sleep(0.2)
      c:close()
    end)
    local s = assert(rill.tcp.connect("127.0.0.1", port, { limit = 32 }))
    local v, msg, code = s:read("l")
    T.eq(v, nil)
    T.eq(code, rill.ELIMIT)
    T.matches(msg, "limit")
    -- nothing lost: the long line is still there
    -- lines() raises on a failure rather than stopping quietly
    T.matches(T.raises(function() for _ in s:lines() do end end), "limit")
    s:setlimit(1024)
    T.eq(s:read("l"), ("x"):rep(100))
    T.eq(s:read("l"), "short")
    s:close()
    srv:close()
  end)
end)

T.case("one_read_at_a_time", function()
  -- a second concurrent read of one socket is the core's ESTATE, as a
  -- failure value; the first read is untouched
  rill.run(function()
    local srv, port = listen()
    local s = assert(rill.tcp.connect("127.0.0.1", port))
    local a = assert(srv:accept())
    local first = rill.spawn(function() return s:read("l") end)
    rill.sleep(0.01)
    local v, _, code = s:read("l")
    T.eq(v, nil)
    T.eq(code, rill.ESTATE)
    a:write("for the first\n")
    T.eq(first:wait(), "for the first")
    s:close()
    a:close()
    srv:close()
  end)
end)

T.case("timeouts", function()
  rill.run(function()
    local srv, port = listen()
    rill.spawn(function()
      local c = assert(srv:accept())
      rill.sleep(0.3)
      c:write("late\n")
      c:close()
    end)
    local s = assert(rill.tcp.connect("127.0.0.1", port))
    local t0 = rill.monotonic()
    local v, msg, code = s:read("l", { timeout = 0.05 })
    T.eq(v, nil)
    T.eq(code, rill.ETIMEDOUT)
    T.ok(type(msg) == "string")
    T.ok(rill.monotonic() - t0 < 0.25)
    s:settimeout(0.05)
    T.eq(select(3, s:read("l")), rill.ETIMEDOUT)
    s:settimeout(nil)
    T.eq(s:read("l"), "late") -- a timed-out read lost nothing
    local a, _, c2 = srv:accept({ timeout = 0.02 })
    T.eq(a, nil)
    T.eq(c2, rill.ETIMEDOUT)
    s:close()
    srv:close()
  end)
end)

T.case("peer_reset", function()
  rill.run(function()
    local srv, port = listen()
    local done = rill.spawn(function()
      local c = assert(srv:accept())
      rill.sleep(0.2) -- the client's bytes fill the buffers, unread
      c:close(true)   -- closing with unread data sends a reset
    end)
    local s = assert(rill.tcp.connect("127.0.0.1", port))
    s:write(("x"):rep(4 * 1024 * 1024))
    done:wait()
    local v, msg, code = s:read_some()
    T.eq(v, nil)
    T.ok(code == rill.ECONNRESET or code == rill.EPIPE, tostring(msg))
    v, msg, code = s:read("l")
    T.eq(v, nil)
    T.ok(code == rill.ECONNRESET or code == rill.EPIPE, tostring(msg))
    -- writing to a reset socket fails the same way, never raises
    local w, _, wcode = s:write("more")
    T.eq(w, nil)
    T.ok(wcode == rill.ECONNRESET or wcode == rill.EPIPE or wcode == rill.ENOTCONN, tostring(wcode))
    local f, _, fcode = s:flush()
    T.eq(f, nil)
    T.ok(fcode ~= nil)
    s:close()
    srv:close()
  end)
end)

T.case("connection_refused", function()
  rill.run(function()
    local srv, port = listen()
    srv:close()
    local s, msg, code = rill.tcp.connect("127.0.0.1", port)
    T.eq(s, nil)
    T.eq(code, rill.ECONNREFUSED)
    T.matches(msg, "127.0.0.1")
    local u, _, ucode = rill.unix.connect("/nonexistent/rill-test.sock")
    T.eq(u, nil)
    T.ok(ucode == rill.ENOENT or ucode == rill.ECONNREFUSED, tostring(ucode))
    local a, _, acode = rill.tcp.listen("127.0.0.1", port)
    T.ok(a ~= nil, tostring(acode)) -- the port is free again
    local b, _, bcode = rill.tcp.listen("127.0.0.1", port)
    T.eq(b, nil)
    T.eq(bcode, rill.EADDRINUSE)
    a:close()
  end)
end)

T.case("unix_sockets", function()
  local path = os.tmpname()
  os.remove(path)
  rill.run(function()
    local srv = assert(rill.unix.listen(path))
    rill.spawn(function()
      local c = assert(srv:accept())
      c:write((c:read("L")))
      c:close()
    end)
    local s = assert(rill.unix.connect(path))
    s:write("over unix\n")
    T.eq(s:read("l"), "over unix")
    s:close()
    srv:close()
  end)
  os.remove(path)
end)

T.case("udp", function()
  rill.run(function()
    local a = assert(rill.udp.bind("127.0.0.1", 0))
    local b = assert(rill.udp.connect("127.0.0.1", a:getport()))
    T.ok(b:send("ping"))
    local data, host, port = a:recvfrom()
    T.eq(data, "ping")
    T.eq(host, "127.0.0.1")
    T.ok(a:sendto("pong", host, port))
    T.eq(b:recv(), "pong")
    local v, _, code = b:recv({ timeout = 0.02 })
    T.eq(v, nil)
    T.eq(code, rill.ETIMEDOUT)
    a:close()
    b:close()
  end)
end)

T.case("dns_localhost", function()
  rill.run(function()
    local addrs = assert(rill.dns.resolve("localhost"))
    T.ok(#addrs >= 1)
    local seen = {}
    for _, a in ipairs(addrs) do seen[a] = true end
    T.ok(seen["127.0.0.1"] or seen["::1"], table.concat(addrs, ","))
    local v, msg, code = rill.dns.resolve("no-such-host.invalid")
    T.eq(v, nil)
    T.ok(code == rill.ENOHOST or code == rill.EDNS, tostring(msg))
    -- connect by name
    local srv, port = listen()
    local s = assert(rill.tcp.connect("localhost", port))
    s:close()
    srv:close()
  end)
end)

T.case("process_lines_and_status", function()
  rill.run(function()
    local p = assert(rill.process.spawn { "sh", "-c", "echo one; echo two; echo err >&2; exit 7",
                                          stdout = "pipe", stderr = "null" })
    T.ok(p.pid > 0)
    T.eq(p.stdin, nil)
    local lines = {}
    for l in p.stdout:lines() do lines[#lines + 1] = l end
    T.same(lines, { "one", "two" })
    T.eq(p:wait(), 7)
    T.eq(p:returncode(), 7)
    -- stdin and env
    local q = assert(rill.process.spawn { argv = { "sh", "-c", 'read x; echo "$x-$FOO"' },
                                          env = { FOO = "bar", PATH = os.getenv("PATH") },
                                          stdin = "pipe", stdout = "pipe" })
    q.stdin:write("in\n")
    q.stdin:close()
    T.eq(q.stdout:read("a"), "in-bar\n")
    T.eq(q:wait(), 0)
    -- cwd, and stderr into stdout
    local w = assert(rill.process.spawn { "sh", "-c", "pwd; echo e >&2", cwd = "/", stdout = "pipe",
                                          stderr = "stdout" })
    T.eq(w.stdout:read("a"), "/\ne\n")
    T.eq(w:wait(), 0)
    -- kill
    local k = assert(rill.process.spawn { "sleep", 10 }) -- (numbers become strings)
    T.ok(k:kill("KILL"))
    T.eq(k:wait(), -9)
  end)
end)

T.case("spawn_missing_program", function()
  -- (not under valgrind: it runs posix_spawn's vfork child as a fork, so
  -- the exec failure does not reach the parent there)
  rill.run(function()
    local n, msg, code = rill.process.spawn { "/nonexistent/program" }
    T.eq(n, nil)
    T.eq(code, rill.ESPAWN, msg)
    T.matches(msg, "/nonexistent/program")
  end)
end)

T.case("signal_from_child", function()
  rill.run(function()
    local got = rill.future()
    local h = rill.signal("USR1", function(sig) got:set_result(sig) end)
    local p = assert(rill.process.spawn { "sh", "-c", "kill -USR1 $PPID" })
    T.eq(rill.wait_for(got, 5), rill.signals.USR1)
    T.eq(p:wait(), 0)
    T.eq(h:cancel(), true)
    T.eq(h:cancel(), false)
  end)
end)

T.case("sigint_from_child_interrupts_run", function()
  -- SIGINT from a child process (rill.process) cancels rill.run's main
  -- task at once, during a long sleep.
  local t0 = rill.monotonic()
  local ok, err = pcall(rill.run, function()
    assert(rill.process.spawn { "sh", "-c", "sleep 0.2; kill -INT $PPID" })
    rill.sleep(10)
  end)
  T.ok(not ok)
  T.ok(rill.is_error(err) and err.code == rill.core.EINTR, tostring(err))
  T.ok(rill.monotonic() - t0 < 3, "interrupted early")
end)

T.case("signal_sigint_handler_replaces_cancel", function()
  local got = 0
  local r = rill.run(function()
    local stop = rill.event()
    rill.signal("INT", function(sig) got = sig stop:set() end)
    assert(rill.process.spawn { "sh", "-c", "kill -INT $PPID" })
    stop:wait()
    return "handled"
  end)
  T.eq(r, "handled")
  T.eq(got, rill.signals.INT)
end)

local has_socket, socket = pcall(require, "socket")

T.case("luasocket_poll_and_wrap", function()
  if not has_socket then
    print("  (skipped: LuaSocket not installed for " .. _VERSION .. ")")
    return
  end
  rill.run(function()
    local srv, port = rill.tcp.serve("127.0.0.1", 0, function(c)
      for line in c:lines() do c:write(line, "!\n") end
    end)
    port = select(2, srv:getsockname())
    -- rill.poll on a LuaSocket fd
    local raw = assert(socket.tcp())
    raw:settimeout(0)
    raw:connect("127.0.0.1", port)
    T.eq(rill.poll(raw:getfd(), "w", 5), "w")
    raw:settimeout(0)
    assert(raw:send("polled\n"))
    T.eq(rill.poll(raw:getfd(), "r", 5), "r")
    T.eq(raw:receive("*l"), "polled!")
    -- a counted receive through the adapter, across several arrivals
    local wr = rill.wrap(raw)
    assert(wr:send("abc\n"))
    T.eq(wr:receive(3), "abc")
    T.eq(wr:receive(2), "!\n")
    raw:close()
    -- rill.wrap: copas-style LuaSocket, many concurrent
    local ts = {}
    for i = 1, 10 do
      ts[i] = rill.spawn(function()
        local w = rill.wrap(socket.tcp())
        w:settimeout(5)
        assert(w:connect("127.0.0.1", port))
        assert(w:send(("wrapped %d\n"):format(i)))
        local l = assert(w:receive("*l"))
        w:close()
        return l
      end)
    end
    local r = rill.gather_list(ts)
    for i = 1, 10 do T.eq(r[i], ("wrapped %d!"):format(i)) end
    -- a poll timeout
    local idle = assert(socket.tcp())
    idle:settimeout(0)
    idle:connect("127.0.0.1", port)
    rill.poll(idle:getfd(), "w", 5)
    local v, msg, code = rill.poll(idle:getfd(), "r", 0.02)
    T.eq(v, nil)
    T.eq(code, rill.ETIMEDOUT, msg)
    idle:close()
    -- an fd that another task closes before the loop polls it: the poll
    -- fails with EBADF (it used to abort the process inside libev)
    local doomed = assert(socket.tcp())
    doomed:settimeout(0)
    doomed:connect("127.0.0.1", port)
    rill.poll(doomed:getfd(), "w", 5)
    local fd = doomed:getfd()
    local poller = rill.spawn(function() return table.pack(rill.poll(fd, "r", 5)) end)
    local closer = rill.spawn(function() doomed:close() end)
    local got = rill.gather_list({ poller, closer })[1]
    T.eq(got[1], nil)
    T.eq(got[3], rill.EBADF, tostring(got[2]))
    srv:close()
  end)
end)

local has_ssl, ssl = pcall(require, "ssl")

T.case("tls_via_luasec_wrap", function()
  if not (has_socket and has_ssl) then
    print("  (skipped: LuaSocket or lua-sec not installed for " .. _VERSION .. ")")
    return
  end
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local key, cert = dir .. "/key.pem", dir .. "/cert.pem"
  local ok = os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    .. "-keyout %s -out %s -subj /CN=localhost -days 1 2>/dev/null"):format(key, cert))
  T.ok(ok == true or ok == 0, "openssl made a certificate")
  rill.run(function()
    local lsrv = rill.wrap(assert(socket.bind("127.0.0.1", 0)))
    local _, port = lsrv:getsockname()
    local server = rill.spawn(function()
      local c = assert(lsrv:accept())
      c:settimeout(5)
      local t = assert(c:starttls { mode = "server", protocol = "any", key = key, certificate = cert })
      local line = assert(t:receive("*l"))
      assert(t:send("tls:" .. line .. "\n"))
      t:close()
    end)
    local c = rill.wrap(socket.tcp())
    c:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    local t = assert(c:starttls { mode = "client", protocol = "any", verify = "none" })
    assert(t:send("hello\n"))
    T.eq(t:receive("*l"), "tls:hello")
    t:close()
    server:wait()
    lsrv:close()
  end)
  os.remove(key)
  os.remove(cert)
  os.remove(dir)
end)

T.case("to_thread_runs_in_a_fresh_state_on_the_pool", function()
  rill.run(function()
    -- values cross both ways with their types
    local a, b, c, d, e = rill.to_thread(function(x, y, s)
      return x + y, s:upper(), nil, true, x / 2
    end, 3, 4, "abc")
    T.eq(a, 7)
    T.eq(b, "ABC")
    T.eq(c, nil)
    T.eq(d, true)
    T.eq(e, 1.5)
    -- no globals of this state there, the standard libraries are
    RILL_TO_THREAD_GLOBAL = 1
    T.eq(rill.to_thread(function() return RILL_TO_THREAD_GLOBAL, type(os.time) end), nil)
    T.eq(select(2, rill.to_thread(function() return RILL_TO_THREAD_GLOBAL, type(os.time) end)), "function")
    -- blocking work off the loop: two 0.5 s jobs overlap (one after the other
    -- would be >= 1 s), and the loop runs meanwhile
    local ticks = 0
    local ticker = rill.spawn(function() for _ = 1, 100 do rill.sleep(0.01); ticks = ticks + 1 end end)
    local t0 = rill.monotonic()
    local r = rill.gather(
      rill.spawn(rill.to_thread, function() os.execute("sleep 0.5") return 1 end),
      rill.spawn(rill.to_thread, function() os.execute("sleep 0.5") return 2 end))
    local dt = rill.monotonic() - t0
    T.same(r, { 1, 2 })
    T.ok(dt < 0.9, ("two 0.5 s jobs took %.2f s"):format(dt))
    T.ok(ticks >= 10, ("the loop ran only %d ticks meanwhile"):format(ticks))
    ticker:cancel()
    -- errors: fn's own, raised here with its message; values that cannot cross
    T.matches(T.raises(rill.to_thread, function() error("boom") end), "boom")
    T.matches(T.raises(rill.to_thread, function() return {} end), "result 1 is a table")
    T.matches(T.raises(rill.to_thread, function(t) return t end, {}), "bad argument #2")
    local up = 5
    T.matches(T.raises(rill.to_thread, function() return up end), "upvalue 'up'")
    T.matches(T.raises(rill.to_thread, print), "rill.to_thread")
    T.matches(T.raises(rill.to_thread, "not a function"), "function expected")
    -- a cancel while the job runs: the task sees it, the job ends on its own
    local t = rill.spawn(rill.to_thread, function() os.execute("sleep 0.2") return "late" end)
    rill.sleep(0.05)
    t:cancel()
    T.ok(not pcall(t.wait, t))
    T.ok(t:cancelled())
  end)
  T.raises(rill.to_thread, function() end) -- outside a running loop
end)

T.case("collectgarbage_during_io", function()
  rill.run(function()
    local srv, port = rill.tcp.serve("127.0.0.1", 0, function(sock)
      for line in sock:lines() do
        collectgarbage()
        sock:write(line, "\n")
      end
    end)
    local _, p = srv:getsockname()
    local ts = {}
    for i = 1, 20 do
      ts[i] = rill.spawn(function()
        local s = assert(rill.tcp.connect("127.0.0.1", p))
        for k = 1, 10 do
          s:write(("%d:%d\n"):format(i, k))
          collectgarbage()
          T.eq(s:read("l"), ("%d:%d"):format(i, k))
        end
        if i % 2 == 0 then s:close() end -- the others are closed by __gc
        return true
      end)
    end
    rill.gather_list(ts)
    ts = nil
    for _ = 1, 3 do collectgarbage() rill.sleep(0.01) end
    -- unreferenced sockets and a pending read dropped with its task
    local t = rill.spawn(function()
      local s = assert(rill.tcp.connect("127.0.0.1", p))
      s:read("l") -- never answered
    end)
    rill.sleep(0.05)
    t:cancel()
    collectgarbage()
    srv:close()
    T.eq(port:wait(), nil)
  end)
  collectgarbage()
end)

local open_fds = T.open_fds

T.case("no_fd_left_open", function()
  -- every socket, server, UDP endpoint, pipe and watcher closed: by
  -- :close(), by __gc, or by the end of rill.run
  collectgarbage()
  local before = open_fds()
  rill.run(function()
    local srv, port = listen()
    for i = 1, 10 do
      local c = assert(rill.tcp.connect("127.0.0.1", port))
      local a = assert(srv:accept())
      c:write("x\n")
      T.eq(a:read("l"), "x")
      if i % 2 == 0 then c:close() a:close() end -- the others: __gc or the loop's end
    end
    local u = assert(rill.udp.bind("127.0.0.1", 0))
    local _ = u
    local p = assert(rill.process.spawn { "sh", "-c", "echo hi; cat", stdin = "pipe", stdout = "pipe" })
    T.eq(p.stdout:read("l"), "hi")
    p.stdin:close()
    T.eq(p:wait(), 0)
    rill.signal("USR1", function() end)
    local kept = assert(rill.tcp.connect("127.0.0.1", port)) -- open when run ends
    local _k = kept
    collectgarbage()
  end)
  collectgarbage()
  collectgarbage()
  T.eq(open_fds(), before, "fds open after the run")
end)

T.case("bad_input", function()
  T.matches(T.raises(rill.tcp.connect, "127.0.0.1", 80), "rill.run")
  rill.run(function()
    T.matches(T.raises(rill.tcp.connect, 42, 80), "string or nil")
    T.matches(T.raises(rill.tcp.connect, "127.0.0.1", "x"), "port")
    T.matches(T.raises(rill.tcp.connect, "127.0.0.1", 70000), "port")
    T.matches(T.raises(rill.tcp.connect, "127.0.0.1", 0), "port")
    T.matches(T.raises(rill.tcp.connect, "127.0.0.1", 80, 5), "table or nil")
    T.matches(T.raises(rill.tcp.connect, "127.0.0.1", 80, { timeout = "x" }), "number or nil")
    T.matches(T.raises(rill.tcp.listen, "127.0.0.1", -1), "port")
    T.raises(rill.unix.connect, nil)
    T.raises(rill.poll, "x", "r")
    T.raises(rill.poll, 0, "x")
    T.raises(rill.dns.resolve, 5)
    T.raises(rill.signal, "NOPE", print)
    T.raises(rill.signal, "INT", 5)
    T.raises(rill.process.spawn, {})
    T.raises(rill.process.spawn, { "sh", stdout = "bogus" })
    T.matches(T.raises(rill.process.spawn, { "sh", {} }), "argv[2]")
    T.raises(rill.wrap, 5)
    local v, msg, code = rill.tcp.connect("not an address!", 80)
    T.eq(v, nil)
    T.ok(code == rill.ENOHOST or code == rill.EDNS, tostring(msg))
    v, msg, code = rill.poll(12345, "r")
    T.eq(v, nil)
    T.eq(code, rill.EBADF, tostring(msg))
    local srv, port = listen()
    local s = assert(rill.tcp.connect("127.0.0.1", port))
    T.raises(s.read, s, "z")
    T.raises(s.read, s, -1)
    T.raises(s.write, s, {})
    T.raises(s.setlimit, s, 0)
    T.raises(rill.Socket.read, {}, "l")
    T.ok(s:close())
    T.ok(s:close()) -- twice is harmless
    T.ok(s:closed())
    T.matches(tostring(T.raises(s.read, s, "l")), "closed socket")
    T.matches(tostring(T.raises(s.write, s, "x")), "closed socket")
    srv:close()
    T.matches(tostring(T.raises(srv.accept, srv)), "closed server")
    -- a read outside a task that would wait raises, and loses nothing
    local srv2, port2 = listen()
    local c = assert(rill.tcp.connect("127.0.0.1", port2))
    local ok = pcall(rill.get_running_loop().call_soon, rill.get_running_loop(), function()
      T.matches(T.raises(c.read, c, "l"), "outside")
    end)
    T.ok(ok)
    rill.sleep(0.01)
    local a = assert(srv2:accept())
    a:write("after\n")
    T.eq(c:read("l"), "after")
    c:close()
    a:close()
    srv2:close()
  end)
end)

T.case("loop_step_and_pollfd", function()
  local loop = rill.new_loop()
  local fd = loop:pollfd()
  T.ok(type(fd) == "number" and fd >= 0)
  local t = loop:spawn(function() rill.sleep(0.01) return "stepped" end)
  local deadline = rill.monotonic() + 5
  while not t:done() and rill.monotonic() < deadline do loop:step(0.05) end
  T.eq(t:result(), "stepped")
  -- a host's way: wait on the fd with the loop's timeout, then step
  local srv = loop:spawn(function()
    local s, port = listen()
    local c = rill.spawn(function() return assert(rill.tcp.connect(nil, port)):read("l") end)
    local a = assert(s:accept())
    a:write("via step\n")
    local r = c:wait()
    a:close()
    s:close()
    return r
  end)
  deadline = rill.monotonic() + 5
  while not srv:done() and rill.monotonic() < deadline do loop:step(loop:timeout() or 0.05) end
  T.eq(srv:result(), "via step")
  loop:close()
  T.ok(loop:is_closed())
  T.raises(loop.step, loop)
end)

T.main(...)
