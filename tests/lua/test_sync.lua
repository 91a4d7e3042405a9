-- rill Lua binding: the sync primitives (issue 11) - Event, Lock,
-- Semaphore, Condition, Barrier, Queue. The rules are the core's; these
-- cases check that each reaches Lua once: FIFO wake-up, no barging, a
-- cancelled waiter passing on what it was handed, errors from the shared
-- table, values keeping their type, references freed.
local T = require "runner"
local rill = require "rill"

local function tick(n)
  for _ = 1, n or 3 do rill.sleep(0) end
end

local function code_of(fn, ...)
  local e = T.raises(fn, ...)
  T.ok(rill.is_error(e), "a rill error, got " .. tostring(e))
  return e.code, e
end

local function cancelled(t)
  local e = T.raises(t.wait, t)
  T.ok(rill.is_cancelled(e), "cancelled, got " .. tostring(e))
end

-- Tracks values weakly: once collected, nothing (no registry reference
-- left behind by a queue or a future) holds them.
local function tracker()
  local weak = setmetatable({}, { __mode = "k" })
  return function(v) weak[v] = true; return v end, function()
    collectgarbage(); collectgarbage()
    local n = 0
    for _ in pairs(weak) do n = n + 1 end
    return n
  end
end

-- ---------------------------------------------------------------- Event

T.case("event_wakes_all_fifo", function()
  rill.run(function()
    local ev = rill.event()
    T.eq(ev:is_set(), false)
    local order = {}
    for i = 1, 3 do
      rill.spawn(function() T.eq(ev:wait(), true); order[#order + 1] = i end)
    end
    tick()
    T.eq(#order, 0)
    ev:set()
    ev:clear() -- a clear before they run does not stop them
    tick()
    T.same(order, { 1, 2, 3 })
    T.eq(ev:is_set(), false)
    ev:set()
    T.eq(ev:wait(), true) -- set: no wait
  end)
end)

-- ----------------------------------------------------------------- Lock

T.case("lock_fifo_no_barging", function()
  rill.run(function()
    local l = rill.lock()
    T.eq(l:acquire(), true)
    T.eq(l:locked(), true)
    local order = {}
    local function worker(name)
      return function() l:acquire(); order[#order + 1] = name; rill.sleep(0); l:release() end
    end
    local ts = { rill.spawn(worker("a")), rill.spawn(worker("b")), rill.spawn(worker("c")) }
    tick()
    l:release() -- handed to "a": a task that comes now queues behind c
    ts[4] = rill.spawn(worker("barger"))
    rill.gather_list(ts)
    T.same(order, { "a", "b", "c", "barger" })
    T.eq(l:locked(), false)
  end)
end)

T.case("lock_release_unlocked_errors", function()
  rill.run(function()
    local l = rill.lock()
    local code, e = code_of(l.release, l)
    T.eq(code, rill.ENOTLOCKED)
    T.eq(e.name, rill.core.error_table()[rill.ENOTLOCKED])
  end)
end)

T.case("lock_cancelled_waiter_passes_it_on", function()
  rill.run(function()
    local l = rill.lock()
    l:acquire()
    local got = {}
    local a = rill.spawn(function() l:acquire(); got[#got + 1] = "a"; l:release() end)
    local b = rill.spawn(function() l:acquire(); got[#got + 1] = "b"; l:release() end)
    tick()
    l:release() -- handed to a ...
    a:cancel()  -- ... which is cancelled before it runs: b gets it
    cancelled(a)
    b:wait()
    T.same(got, { "b" })
    T.eq(l:locked(), false)
  end)
end)

T.case("lock_with_releases_on_error", function()
  rill.run(function()
    local l = rill.lock()
    T.eq(l:with(function(x) T.eq(l:locked(), true); return x + 1, "y" end, 1), 2)
    T.eq(l:locked(), false)
    local e = {}
    T.eq(T.raises(l.with, l, function() error(e) end), e)
    T.eq(l:locked(), false)
  end)
end)

-- ------------------------------------------------------------ Semaphore

T.case("semaphore_bound", function()
  rill.run(function()
    local s = rill.semaphore(2)
    T.eq(s:value(), 2)
    local inside, most, order = 0, 0, {}
    local ts = {}
    for i = 1, 5 do
      ts[i] = rill.spawn(function()
        s:acquire()
        order[#order + 1] = i
        inside = inside + 1
        if inside > most then most = inside end
        rill.sleep(0.001)
        inside = inside - 1
        s:release()
      end)
    end
    tick(1)
    T.eq(s:locked(), true)
    T.eq(s:value(), 0)
    rill.gather_list(ts)
    T.eq(most, 2)
    T.same(order, { 1, 2, 3, 4, 5 })
    T.eq(s:value(), 2)
    s:release() -- a plain semaphore may go past its initial value
    T.eq(s:value(), 3)
    local b = rill.bounded_semaphore(1)
    T.eq(b:with(function() return b:locked() end), true)
    T.eq(code_of(b.release, b), rill.ETOOMANY)
    T.eq(b:value(), 1)
  end)
end)

-- ------------------------------------------------------------ Condition

T.case("condition_wait_notify", function()
  rill.run(function()
    local c = rill.condition()
    local woken = {}
    for i = 1, 3 do
      rill.spawn(function()
        c:acquire()
        T.eq(c:wait(), true)
        T.eq(c:locked(), true) -- the lock is held again
        woken[#woken + 1] = i
        c:release()
      end)
    end
    tick()
    c:acquire()
    T.eq(c:notify(), 1)
    c:release()
    tick()
    T.same(woken, { 1 })
    c:acquire()
    T.eq(c:notify_all(), 2)
    c:release()
    tick()
    T.same(woken, { 1, 2, 3 })
    -- wait_for: checks first, then after each notify
    local n = 0
    local t = rill.spawn(function()
      c:acquire()
      local r = c:wait_for(function() return n >= 2 and n end)
      c:release()
      return r
    end)
    for _ = 1, 3 do
      tick()
      c:acquire(); n = n + 1; c:notify_all(); c:release()
    end
    T.eq(t:wait(), 2)
    c:acquire()
    T.eq(c:wait_for(function() return "now" end), "now")
    c:release()
  end)
end)

T.case("condition_needs_its_lock", function()
  rill.run(function()
    local l = rill.lock()
    local c = rill.condition(l)
    T.eq(code_of(c.wait, c), rill.ENOTLOCKED)
    T.eq(code_of(c.notify, c), rill.ENOTLOCKED)
    T.eq(code_of(c.notify_all, c), rill.ENOTLOCKED)
    T.eq(code_of(c.release, c), rill.ENOTLOCKED)
    l:acquire() -- the condition's lock is that lock
    T.eq(c:locked(), true)
    T.eq(c:notify(), 0)
    c:release()
    T.eq(l:locked(), false)
  end)
end)

T.case("condition_cancelled_wait_holds_the_lock", function()
  rill.run(function()
    local c = rill.condition()
    local held
    local a = rill.spawn(function()
      c:acquire()
      local ok, e = pcall(c.wait, c)
      held = c:locked()
      c:release()
      error(e, 0)
    end)
    local b = rill.spawn(function() c:acquire(); c:wait(); c:release(); return "b" end)
    tick()
    c:acquire()
    c:notify(1) -- wakes a; a is cancelled: its wake-up goes to b
    a:cancel()
    c:release()
    cancelled(a)
    T.eq(held, true)
    T.eq(b:wait(), "b")
    T.eq(c:locked(), false)
  end)
end)

-- -------------------------------------------------------------- Barrier

T.case("barrier_index_abort_reset", function()
  rill.run(function()
    local b = rill.barrier(3)
    T.eq(b:parties(), 3)
    local ts = {}
    for i = 1, 2 do ts[i] = rill.spawn(function() return b:wait() end) end
    tick()
    T.eq(b:n_waiting(), 2)
    local mine = b:wait()
    local r = rill.gather_list(ts)
    T.same({ r[1], r[2], mine }, { 0, 1, 2 })
    T.eq(b:n_waiting(), 0)
    -- abort: the waiters and later waits fail
    local w = rill.spawn(function() return b:wait() end)
    tick()
    b:abort()
    T.eq(b:broken(), true)
    T.eq(code_of(w.wait, w), rill.EBROKEN)
    T.eq(code_of(b.wait, b), rill.EBROKEN)
    -- reset: usable again; a waiter during the reset is broken
    b:reset()
    T.eq(b:broken(), false)
    w = rill.spawn(function() return b:wait() end)
    tick()
    b:reset()
    T.eq(code_of(w.wait, w), rill.EBROKEN)
    T.eq(b:broken(), false)
    local one = rill.barrier(1)
    T.eq(one:wait(), 0)
  end)
end)

-- ---------------------------------------------------------------- Queue

T.case("queue_fifo_lifo_priority", function()
  rill.run(function()
    local function drain(q)
      local out = {}
      while not q:empty() do out[#out + 1] = q:get() end
      return out
    end
    local q = rill.queue()
    for i = 1, 4 do q:put(i) end
    T.same(drain(q), { 1, 2, 3, 4 })
    q = rill.queue{ kind = "lifo" }
    for i = 1, 4 do q:put(i) end
    T.same(drain(q), { 4, 3, 2, 1 })
    q = rill.lifo_queue()
    q:put_nowait("a"); q:put_nowait("b")
    T.same(drain(q), { "b", "a" })
    q = rill.queue{ kind = "priority" }
    q:put("c1", 3); q:put("a1", 1); q:put("b1", 2); q:put("a2", 1); q:put_nowait("c2", 3); q:put("z", -5)
    T.same(drain(q), { "z", "a1", "a2", "b1", "c1", "c2" })
    q = rill.priority_queue{}
    q:put("x"); q:put("y", 0); q:put("w", -1)
    T.same(drain(q), { "w", "x", "y" })
  end)
end)

T.case("queue_maxsize_blocks_put", function()
  rill.run(function()
    local q = rill.queue{ maxsize = 2 }
    T.eq(q:maxsize(), 2)
    local done = 0
    local p = rill.spawn(function()
      for i = 1, 5 do q:put(i); done = i end
    end)
    tick()
    T.eq(done, 2)
    T.eq(q:qsize(), 2)
    T.eq(q:full(), true)
    local got = {}
    for _ = 1, 5 do
      got[#got + 1] = q:get()
      T.ok(q:qsize() <= 2)
      rill.sleep(0)
    end
    p:wait()
    T.same(got, { 1, 2, 3, 4, 5 })
    T.eq(q:empty(), true)
    T.eq(rill.queue{}:maxsize(), 0)
    T.eq(rill.queue{}:full(), false)
  end)
end)

T.case("queue_nowait_errors", function()
  rill.run(function()
    local q = rill.queue{ maxsize = 1 }
    T.eq(code_of(q.get_nowait, q), rill.EEMPTY)
    q:put_nowait(1)
    T.eq(code_of(q.put_nowait, q, 2), rill.EFULL)
    T.eq(code_of(q.put_nowait, q, {}), rill.EFULL) -- a refused reference is freed
    T.eq(q:get_nowait(), 1)
    T.eq(q:qsize(), 0)
  end)
end)

T.case("queue_join_task_done", function()
  rill.run(function()
    local q = rill.queue()
    q:join() -- nothing put: at once
    for i = 1, 3 do q:put(i) end
    local joined = false
    local j = rill.spawn(function() q:join(); joined = true end)
    for _ = 1, 3 do
      q:get()
      tick()
      T.eq(joined, false)
      q:task_done()
    end
    j:wait()
    T.eq(joined, true)
    T.eq(code_of(q.task_done, q), rill.ETOOMANY)
  end)
end)

T.case("queue_shutdown_with_waiters_on_both_sides", function()
  rill.run(function()
    -- putters waiting on a full queue fail; the items left can still be taken
    local q = rill.queue{ maxsize = 1 }
    q:put("kept")
    local p = rill.spawn(function() q:put("dropped") end)
    tick()
    q:shutdown()
    T.eq(q:is_shut_down(), true)
    T.eq(code_of(p.wait, p), rill.ESHUTDOWN)
    T.eq(code_of(q.put, q, 1), rill.ESHUTDOWN)
    T.eq(code_of(q.put_nowait, q, 1), rill.ESHUTDOWN)
    T.eq(q:get(), "kept")
    T.eq(code_of(q.get, q), rill.ESHUTDOWN)
    T.eq(code_of(q.get_nowait, q), rill.ESHUTDOWN)
    -- getters waiting on an empty queue fail
    q = rill.queue()
    local gs = {}
    for i = 1, 2 do gs[i] = rill.spawn(function() return q:get() end) end
    tick()
    q:shutdown()
    for i = 1, 2 do T.eq(code_of(gs[i].wait, gs[i]), rill.ESHUTDOWN) end
    -- immediate: the items left are dropped, each counting as task_done
    q = rill.queue{ maxsize = 2 }
    q:put({}); q:put("x")
    p = rill.spawn(function() q:put("y") end)
    local j = rill.spawn(function() q:join(); return "joined" end)
    tick()
    q:shutdown(true)
    T.eq(code_of(p.wait, p), rill.ESHUTDOWN)
    T.eq(q:qsize(), 0)
    T.eq(code_of(q.get_nowait, q), rill.ESHUTDOWN)
    T.eq(j:wait(), "joined")
  end)
end)

T.case("queue_cancelled_getter_loses_no_item", function()
  rill.run(function()
    local q = rill.queue()
    local g1 = rill.spawn(function() return q:get() end)
    local g2 = rill.spawn(function() return q:get() end)
    tick()
    q:put("x") -- handed to g1 ...
    g1:cancel() -- ... cancelled before it runs: g2 gets it
    cancelled(g1)
    T.eq(g2:wait(), "x")
    -- with no other getter the item goes back to the queue
    local g = rill.spawn(function() return q:get() end)
    tick()
    q:put({ "t" })
    g:cancel()
    cancelled(g)
    T.eq(q:qsize(), 1)
    T.eq(q:get()[1], "t")
  end)
end)

-- ------------------------------------------ cancel at every waiting point

T.case("cancel_at_every_wait", function()
  rill.run(function()
    local ev, l, s, c, b = rill.event(), rill.lock(), rill.semaphore(0), rill.condition(), rill.barrier(2)
    local full, empty, pending = rill.queue{ maxsize = 1 }, rill.queue(), rill.queue()
    full:put("in")
    pending:put(1)
    l:acquire()
    local waits = {
      event = function() ev:wait() end,
      lock = function() l:acquire() end,
      semaphore = function() s:acquire() end,
      condition = function() c:acquire(); local ok, e = pcall(c.wait, c); c:release(); error(e, 0) end,
      barrier = function() b:wait() end,
      put = function() full:put("never") end,
      get = function() empty:get() end,
      join = function() pending:join() end,
    }
    for name, fn in pairs(waits) do
      local t = rill.spawn(fn)
      tick()
      T.eq(t:done(), false, name)
      T.eq(t:cancel(), true, name)
      cancelled(t)
    end
    -- nothing changed behind the cancelled waits
    T.eq(b:n_waiting(), 0)
    T.eq(full:qsize(), 1)
    T.eq(full:get(), "in")
    T.eq(c:locked(), false)
    l:release()
    T.eq(l:locked(), false)
    s:release()
    T.eq(s:value(), 1)
    empty:put(5)
    T.eq(empty:get_nowait(), 5)
  end)
end)

T.case("wait_outside_a_task_errors", function()
  rill.run(function()
    local q = rill.queue{ maxsize = 1 }
    q:put(1)
    local l = rill.lock()
    l:acquire()
    local errs = {}
    rill.get_running_loop():call_soon(function()
      errs[1] = select(2, pcall(q.put, q, 2))
      errs[2] = select(2, pcall(l.acquire, l))
      errs[3] = select(2, pcall(coroutine.wrap(function() return rill.queue():get() end)))
    end)
    tick()
    for i = 1, 3 do T.matches(errs[i], "outside a rill task") end
    T.eq(q:qsize(), 1) -- the refused put did not happen later
    tick()
    T.eq(q:qsize(), 1)
    l:release()
    T.eq(l:locked(), false) -- the refused acquire did not take it
  end)
end)

-- ---------------------------------------------------- GC and references

T.case("gc_during_waits", function()
  local track, left = tracker()
  rill.run(function()
    local got = {}
    for i = 1, 3 do
      local q, l, ev, c = rill.queue{ maxsize = 1 }, rill.lock(), rill.event(), rill.condition()
      local s, b, empty = rill.semaphore(0), rill.barrier(3), rill.queue()
      q:put(track({ "held" }))
      l:acquire()
      rill.spawn(function(x) x:put(track({ "waiting" })) end, q)
      rill.spawn(function(x) x:get() end, empty)
      rill.spawn(function(x) x:acquire() end, l)
      rill.spawn(function(x) x:wait() end, ev)
      rill.spawn(function(x) x:acquire() end, s)
      rill.spawn(function(x) x:wait() end, b)
      rill.spawn(function(x) x:acquire(); x:wait() end, c)
      -- a getter whose queue only a second wrapper holds: the first is dropped
      local other = rill.queue()
      local addr = rill.queue_address(other)
      rill.spawn(function() local v = rill.wrap_queue(addr):get(); got[#got + 1] = v end)
      rill.sleep(0)
      rill.spawn(function() rill.sleep(0.01); rill.wrap_queue(addr):put(track({ i })) end)
      q, l, ev, c, s, b, empty, other = nil, nil, nil, nil, nil, nil, nil, nil
      collectgarbage(); collectgarbage()
    end
    tick()
    collectgarbage(); collectgarbage()
    rill.sleep(0.03)
    T.eq(#got, 3)
    got = nil
  end) -- the waiting tasks are cancelled here, the loop closed
  T.eq(left(), 0)
end)

T.case("references_freed_with_the_queue", function()
  local track, left = tracker()
  rill.run(function()
    local q = rill.queue()
    for i = 1, 50 do q:put(track({ i })) end
    for _ = 1, 10 do q:get() end
    q = nil
  end)
  T.eq(left(), 0)
  local kept
  rill.run(function()
    kept = rill.queue()
    kept:put(track({}))
    kept:put(track(function() end))
  end) -- the loop's close frees what its queues hold
  T.eq(left(), 0)
  T.eq(code_of(kept.put, kept, 1), rill.core.ECLOSED) -- a primitive of a closed loop
  T.eq(code_of(kept.qsize, kept), rill.core.ECLOSED)
  kept = nil
  collectgarbage()
end)

-- ------------------------------------------------ arguments and values

T.case("wrong_argument_types", function()
  T.matches(T.raises(rill.lock), "no rill loop is running") -- needs the running loop
  rill.run(function()
    T.matches(T.raises(rill.semaphore, "x"), "bad argument #1 to 'rill.semaphore' (integer expected, got string)")
    T.matches(T.raises(rill.bounded_semaphore, 1.5), "bad argument #1 to 'rill.bounded_semaphore' (integer expected")
    T.matches(T.raises(rill.queue, { maxsize = "a" }), "bad argument #1 to 'rill.queue' (maxsize: integer expected, got string)")
    T.matches(T.raises(rill.queue, { kind = "stack" }), "kind: \"fifo\", \"lifo\" or \"priority\" expected")
    T.matches(T.raises(rill.queue, "big"), "bad argument #1 to 'rill.queue' (table or nil expected, got string)")
    T.matches(T.raises(rill.barrier), "bad argument #1 to 'rill.barrier' (integer expected, got nil)")
    T.matches(T.raises(rill.condition, {}), "rill.Lock or nil expected")
    T.eq(code_of(rill.barrier, 0), rill.EINVAL)
    T.eq(code_of(rill.semaphore, -1), rill.EINVAL)
    local q = rill.queue()
    T.matches(T.raises(q.put, q, 1, "high"), "integer priority expected")
    T.matches(T.raises(rill.Queue.get, rill.lock()), "rill.Queue expected")
    T.matches(T.raises(rill.Lock.acquire, 5), "rill.Lock expected")
    T.matches(T.raises(rill.Condition.wait_for, rill.condition(), 1), "function expected")
    T.matches(T.raises(rill.wrap_queue, "here"), "queue address")
    T.eq(q:qsize(), 0)
  end)
end)

T.case("values_round_trip_with_their_type", function()
  rill.run(function()
    local t, fn, co = {}, function() end, coroutine.create(function() end)
    local values = { n = 12, nil, true, false, 0, -7, 2 ^ 40, 0.5, "", "a\0b", t, fn, co }
    values[8] = 1.5e300
    values.n = 13
    values[13] = io.stdout
    if math.maxinteger then values[6] = math.maxinteger; values[7] = math.mininteger end
    local q = rill.queue()
    for i = 1, values.n do q:put(values[i]) end
    for i = 1, values.n do q:put_nowait(values[i]) end
    for round = 1, 2 do
      for i = 1, values.n do
        local v
        if round == 1 then v = q:get() else v = q:get_nowait() end
        T.eq(type(v), type(values[i]), "type of item " .. i)
        T.eq(v, values[i], "item " .. i)
        if math.type then T.eq(math.type(v), math.type(values[i]), "number kind of item " .. i) end
      end
    end
    if math.type then -- a float with an integer value stays a float
      q:put(1.0)
      T.eq(math.type(q:get()), "float")
    end
    -- through a waiting getter too
    local g = rill.spawn(function() return q:get() end)
    tick()
    q:put(t)
    T.eq(g:wait(), t)
  end)
end)

T.case("wrap_queue_by_address", function()
  rill.run(function()
    local q = rill.queue{ maxsize = 3 }
    local addr = rill.queue_address(q)
    T.eq(type(addr), "number")
    local w = rill.wrap_queue(addr)
    q = nil
    collectgarbage() -- the wrapper holds its own reference
    w:put(41)
    local w2 = rill.wrap_queue(addr)
    T.eq(w2:qsize(), 1)
    T.eq(w2:maxsize(), 3)
    T.eq(w2:get(), 41)
  end)
end)

T.case("wrap_queue_on_a_hosts_loop", function()
  -- examples/polyglot-host's use: a task spawned on the host's loop wraps
  -- a queue given by address, puts into it (blocking while it is full)
  -- and reads qsize; the values keep their kinds on the way.
  local core = rill.core
  local host = core.Loop()
  local loop = rill.attach_loop(host)
  local owner -- the queue's first reference, as the host's would be
  local made = rill.spawn_on(loop, function()
    owner = rill.queue{ maxsize = 2 }
    return rill.queue_address(owner)
  end)
  while not made:done() do host:run_once(0.1) end
  local qaddr = made:result()
  local sizes = {}
  local producer = rill.spawn_on(loop, function()
    local q = rill.wrap_queue(qaddr)
    for _, v in ipairs({ 1, 2.5, "three", 4, 5.5, "six" }) do
      q:put(v)
      sizes[#sizes + 1] = q:qsize()
    end
  end)
  local consumer = rill.spawn_on(loop, function()
    local q, got = rill.wrap_queue(qaddr), {}
    for _ = 1, 6 do
      rill.sleep(0.001) -- slower than the producer
      got[#got + 1] = q:get()
    end
    return got
  end)
  while not (producer:done() and consumer:done()) do host:run_once(0.1) end
  producer:result()
  T.same(consumer:result(), { 1, 2.5, "three", 4, 5.5, "six" })
  if math.type then T.eq(math.type(consumer:result()[1]), "integer") end
  for _, n in ipairs(sizes) do T.ok(n <= 2, "qsize " .. n) end
  T.eq(sizes[2], 2) -- the producer ran ahead until the queue was full
  made, producer, consumer, owner = nil, nil, nil, nil
  collectgarbage()
  host:close()
end)

T.main(...)
