--- rill: an asyncio-style event loop for Lua 5.4 (over librill.so.1).
--
--   local rill = require "rill"
--   rill.run(function()
--     local a = rill.spawn(function() rill.sleep(1); return "a" end)
--     print(a:wait())
--   end)
--
-- Tasks are Lua coroutines that the C core resumes. They give control back
-- only here, with coroutine.yield(op, x) from a Lua frame, never across a
-- C call. Errors are values: whatever a task raises reaches whoever waits
-- on it unchanged; rill's own failures are tables recognised by
-- rill.is_cancelled / rill.is_timeout / rill.is_error (fields code, name,
-- message; tostring gives "RILL_ETIMEDOUT: ...").
local core = require "rill_core"

local yield = coroutine.yield
local select, type, error, pcall, setmetatable, getmetatable, rawequal =
  select, type, error, pcall, setmetatable, getmetatable, rawequal
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local check_task, raise_resume, result, is_future =
  core.check_task, core.raise_resume, core.result, core.is_future
local OP_SLEEP, OP_AWAIT, RES_CANCEL = core.OP_SLEEP, core.OP_AWAIT, core.RES_CANCEL
local ECANCELLED, ETIMEDOUT, EEXCEPTION, EGROUP =
  core.ECANCELLED, core.ETIMEDOUT, core.EEXCEPTION, core.EGROUP
local ERR_MT = core.error_mt()

local rill = {
  _VERSION = core.version(),
  ECANCELLED = ECANCELLED, ETIMEDOUT = ETIMEDOUT, EEXCEPTION = EEXCEPTION,
  EGROUP = EGROUP, EINVAL = core.EINVAL, ESTATE = core.ESTATE, EBUSY = core.EBUSY,
  FOREVER = core.FOREVER,
  core = core,
}

-- ---------------------------------------------------------------------
-- Errors
-- ---------------------------------------------------------------------

--- true if err is rill's cancel error (a task was cancelled).
function rill.is_cancelled(err)
  return rawequal(getmetatable(err), ERR_MT) and err.code == ECANCELLED
end

--- true if err is rill's timeout error (wait_for / timeout expired).
function rill.is_timeout(err)
  return rawequal(getmetatable(err), ERR_MT) and err.code == ETIMEDOUT
end

--- true if err is any rill error table (code, name, message).
function rill.is_error(err)
  return rawequal(getmetatable(err), ERR_MT)
end

--- A new rill error value: rill.new_error(rill.ETIMEDOUT, "too slow").
rill.new_error = core.new_error

local function raise(code, msg)
  error(core.new_error(code, msg), 0)
end

local function argerror(fname, n, what, v)
  -- A NaN is a number: say what is wrong with it, not "got number".
  local got = v ~= v and "NaN" or type(v)
  error(("bad argument #%d to 'rill.%s' (%s expected, got %s)"):format(n, fname, what, got), 3)
end

-- ---------------------------------------------------------------------
-- Futures and tasks (one userdata type; a task is a future with a body)
-- ---------------------------------------------------------------------

local Future = {}
Future.__index = Future
local FUT_MT = core.future_mt()
FUT_MT.__index = Future
FUT_MT.__tostring = function(f)
  local s = ({ [0] = "pending", "done", "failed", "cancelled" })[core.state(f)] or "?"
  local ok, name = pcall(core.task_name, f)
  return ok and ("rill.Task<%s %s>"):format(name, s) or ("rill.Future<%s>"):format(s)
end
rill.Future = Future

--- Waits for the task or future from a task; returns its results or
-- raises its error (the same value the task raised).
local function await(f)
  check_task("wait")
  local rc = yield(OP_AWAIT, f)
  if rc ~= 0 then raise_resume(rc) end
  return result(f)
end

--- Waits without reading the values; returns the outcome code (0 done).
local function await_code(f)
  check_task("wait")
  local rc = yield(OP_AWAIT, f)
  if rc ~= 0 then raise_resume(rc) end
  return core.code(f)
end

function Future:wait()
  if not is_future(self) then argerror("Task:wait", 1, "rill task", self) end
  return await(self)
end

--- Requests cancellation; true if the task was not done yet.
function Future:cancel(msg)
  if msg ~= nil and type(msg) ~= "string" then argerror("Task:cancel", 1, "string or nil", msg) end
  return core.cancel(self, msg)
end

function Future:done() return core.done(self) end
function Future:cancelled() return core.cancelled(self) end
--- The results of a done task (raises its error, or if not done).
function Future:result() return result(self) end
--- The error value of a failed or cancelled task, else nil.
function Future:error() return core.error(self) end
function Future:name() return core.task_name(self) end
function Future:set_name(name) return core.task_set_name(self, name) end
function Future:cancelling() return core.task_cancelling(self) end
function Future:uncancel() return core.task_uncancel(self) end
--- For plain futures (rill.future()): complete with values or an error.
function Future:set_result(...) return core.future_set(self, ...) end
function Future:set_error(err) return core.future_fail(self, err) end

-- ---------------------------------------------------------------------
-- Running
-- ---------------------------------------------------------------------

--- Runs fn(...) as the main task of a new loop until it ends, cancels the
-- tasks left, closes the loop; returns fn's results or raises its error.
function rill.run(fn, ...)
  if type(fn) ~= "function" then argerror("run", 1, "function", fn) end
  return core.run(fn, ...)
end

--- Starts fn(...) as a task on the running loop (from the next iteration).
function rill.spawn(fn, ...)
  if type(fn) ~= "function" then argerror("spawn", 1, "function", fn) end
  return core.spawn(fn, ...)
end
rill.create_task = rill.spawn

--- Suspends the current task for at least seconds (0: one iteration).
--- rill.yield(): gives up exactly one loop iteration (sleep(0)).
-- On Lua 5.3+ both are C functions that yield themselves (task.c: a
-- suspended task keeps one call frame fewer); LuaJIT has no continuations.
if core.SLEEP_IN_C == 1 then
  rill.sleep, rill.yield = core.sleep, core.yield
else
  function rill.sleep(seconds)
    if type(seconds) ~= "number" or seconds ~= seconds then argerror("sleep", 1, "number", seconds) end
    check_task("sleep")
    local rc = yield(OP_SLEEP, seconds)
    if rc ~= 0 then raise_resume(rc) end
  end

  function rill.yield()
    check_task("yield")
    local rc = yield(OP_SLEEP, 0)
    if rc ~= 0 then raise_resume(rc) end
  end
end

--- Waits for a task or future (rill.await(t) is t:wait()).
function rill.await(f)
  if not is_future(f) then argerror("await", 1, "rill task or future", f) end
  return await(f)
end

--- CLOCK_MONOTONIC in seconds; works outside rill.run too (the loop's own
-- clock, cached per iteration, is rill.get_running_loop():time()).
rill.monotonic = core.monotonic

--- A plain future of the running loop, completed with f:set_result(...) or
-- f:set_error(err).
function rill.future() return core.future_new() end

--- The running task (== the object rill.spawn returned), or nil outside a task.
function rill.current_task() return core.current_task() end

--- The pending tasks of the running loop, oldest first.
function rill.all_tasks() return core.all_tasks() end

--- The name of the current task, or nil outside a task.
function rill.current_task_name() return core.current_task_name() end

local function as_future(fname, n, a)
  if is_future(a) then return a end
  if type(a) == "function" then return core.spawn(a) end
  argerror(fname, n, "rill task, future or function", a)
end

--- Runs tasks concurrently: each argument is a task, a future or a function
-- (spawned). Returns their results in argument order as an array with n
-- (a task's first result; nil holes kept). The first error reaches the
-- caller (the others keep running); if the first argument is the table
-- {return_exceptions = true}, errors take their place in the array instead.
-- Cancelling the caller cancels every child.
function rill.gather(...)
  local args = pack(...)
  local first, flags = 1, 0
  local opts = args[1]
  if type(opts) == "table" and not is_future(opts) then
    first = 2
    if opts.return_exceptions then flags = core.GATHER_RETURN_ERRORS end
  end
  local futs, n = {}, 0
  for i = first, args.n do
    n = n + 1
    futs[n] = as_future("gather", i, args[i])
  end
  local g = core.gather(futs, n, flags)
  await_code(g)
  local rc = core.code(g)
  if rc ~= 0 then result(g) end -- raises the first error, the same value
  return core.gather_results(g)
end

--- rill.gather over an array: rill.gather_list(t [, {return_exceptions=true}]).
function rill.gather_list(list, opts)
  if type(list) ~= "table" then argerror("gather_list", 1, "table", list) end
  if opts ~= nil and type(opts) ~= "table" then argerror("gather_list", 2, "table or nil", opts) end
  local n = list.n or #list
  local futs = list -- no copy unless some entries are functions
  for i = 1, n do
    local a = list[i]
    if not is_future(a) then
      if futs == list then futs = { unpack(list, 1, i - 1) } end
      futs[i] = as_future("gather_list", i, a)
    elseif futs ~= list then
      futs[i] = a
    end
  end
  local g = core.gather(futs, n, (opts and opts.return_exceptions) and core.GATHER_RETURN_ERRORS or 0)
  await_code(g)
  if core.code(g) ~= 0 then result(g) end
  return core.gather_results(g)
end

--- Waits for a task (or a function, spawned) at most timeout seconds (nil:
-- no limit). On expiry the task is cancelled, awaited, then a timeout error
-- is raised (rill.is_timeout(err)).
function rill.wait_for(t, timeout)
  local f = as_future("wait_for", 1, t)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    argerror("wait_for", 2, "number or nil", timeout)
  end
  return await(core.wait_for(f, timeout))
end

--- Waits for t while protecting it from the caller's cancellation.
function rill.shield(t)
  return await(core.shield(as_future("shield", 1, t)))
end

rill.FIRST_COMPLETED = "first_completed"
rill.FIRST_EXCEPTION = "first_exception"
rill.ALL_COMPLETED = "all_completed"
local WAIT_MODES = {
  first_completed = core.WAIT_FIRST_COMPLETED,
  first_exception = core.WAIT_FIRST_ERROR,
  all_completed = core.WAIT_ALL,
}

--- asyncio.wait: rill.wait(tasks [, {timeout=s, return_when=rill.FIRST_COMPLETED}])
-- returns two arrays, done and pending (neither raises nor cancels).
function rill.wait(list, opts)
  if type(list) ~= "table" then argerror("wait", 1, "table", list) end
  opts = opts or {}
  local mode = WAIT_MODES[opts.return_when or "all_completed"]
  if not mode then error("rill.wait: bad return_when " .. tostring(opts.return_when), 2) end
  local futs, n = {}, #list
  if n == 0 then error("rill.wait: the set of tasks is empty", 2) end
  for i = 1, n do futs[i] = as_future("wait", i, list[i]) end
  await_code(core.wait(futs, n, mode, opts.timeout))
  local done, pending = {}, {}
  for i = 1, n do
    local f = futs[i]
    if core.done(f) then done[#done + 1] = f else pending[#pending + 1] = f end
  end
  return done, pending
end

--- asyncio.timeout: runs fn(...) in the current task; once seconds have
-- passed it is cancelled and rill.timeout raises a timeout error. Returns
-- fn's results.
function rill.timeout(seconds, fn, ...)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds) then
    argerror("timeout", 1, "number or nil", seconds)
  end
  if type(fn) ~= "function" then argerror("timeout", 2, "function", fn) end
  local tm = core.timeout_new(seconds)
  local r = pack(pcall(fn, ...))
  local rc = 0
  if not r[1] then rc = rill.is_cancelled(r[2]) and ECANCELLED or EEXCEPTION end
  rc = core.timeout_exit(tm, rc)
  if rc == ETIMEDOUT and not r[1] then raise(ETIMEDOUT, "timed out") end
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- ---------------------------------------------------------------------
-- Task groups (asyncio.TaskGroup)
-- ---------------------------------------------------------------------

local TaskGroup = {}
TaskGroup.__index = TaskGroup

--- Starts fn(...) as a child of the group.
function TaskGroup:spawn(fn, ...)
  if type(fn) ~= "function" then argerror("TaskGroup:spawn", 1, "function", fn) end
  return core.group_spawn(self._g, fn, ...)
end
TaskGroup.create_task = TaskGroup.spawn

--- rill.task_group(function(tg) tg:spawn(f) ... end, ...): returns when the
-- body and every child are done. The first child error cancels the other
-- children and the body; then an error with code rill.EGROUP is raised whose
-- field `errors` lists the errors in asyncio's order (the children's in
-- order of failure, then the body's). Returns the body's results.
function rill.task_group(body, ...)
  if type(body) ~= "function" then argerror("task_group", 1, "function", body) end
  local g = core.group_new()
  local tg = setmetatable({ _g = g }, TaskGroup)
  local r = pack(pcall(body, tg, ...))
  local rc = 0
  if not r[1] then rc = rill.is_cancelled(r[2]) and ECANCELLED or EEXCEPTION end
  -- the core's rule (asyncio's TaskGroup.__aexit__): the exit future is
  -- awaited once, a cancel delivered there never ends it early
  local exit = core.group_exit(g, rc)
  local arc, body_err = 0, nil
  if not core.done(exit) then
    local res = yield(OP_AWAIT, exit)
    if res == RES_CANCEL then arc = ECANCELLED elseif res ~= 0 then raise_resume(res) end
  end
  if not r[1] then body_err = r[2] end
  local frc, errors = core.group_exit_result(g, arc, body_err)
  if frc == EGROUP then
    -- an error value whose __tostring raises must not replace the group error
    local ok, first = pcall(tostring, errors[1])
    if not ok or type(first) ~= "string" then first = "(" .. type(errors[1]) .. " error value)" end
    local e = core.new_error(EGROUP, #errors .. " error(s) in the task group: " .. first)
    e.errors = errors
    error(e, 0)
  elseif frc == ECANCELLED then
    if not r[1] and rill.is_cancelled(r[2]) then error(r[2], 0) end
    raise(ECANCELLED, nil)
  elseif frc ~= 0 then
    raise(frc, nil)
  end
  if not r[1] then
    if not rill.is_cancelled(r[2]) then error(r[2], 0) end
    return -- the group's own cancel of the body, swallowed
  end
  return unpack(r, 2, r.n)
end

-- ---------------------------------------------------------------------
-- Sync primitives (asyncio's Event, Lock, Semaphore, BoundedSemaphore,
-- Condition, Barrier, Queue, LifoQueue, PriorityQueue). The rules (FIFO
-- wake-up, no barging, a cancelled waiter loses nothing, queue shutdown)
-- are the core's; a wait that cannot complete at once returns a future
-- that the task awaits here. Errors are rill error tables: rill.EEMPTY,
-- EFULL, ESHUTDOWN, EBROKEN, ENOTLOCKED, ETOOMANY (and ECANCELLED).
-- ---------------------------------------------------------------------

local sync = core.sync()
local sync_value = sync.value
rill.EBROKEN, rill.EEMPTY, rill.EFULL = core.EBROKEN, core.EEMPTY, core.EFULL
rill.ESHUTDOWN, rill.ENOTLOCKED, rill.ETOOMANY = core.ESHUTDOWN, core.ENOTLOCKED, core.ETOOMANY

-- Awaits the future of a pending wait; returns its value or raises.
local function sync_await(f)
  local rc = yield(OP_AWAIT, f)
  if rc ~= 0 then raise_resume(rc) end
  return sync_value(f)
end

local function is_int(v)
  return type(v) == "number" and v == math.floor(v) and v >= -2147483648 and v <= 2147483647
end

local function methods(mt, name)
  local M = {}
  mt.__index = M
  rill[name] = M
  return M
end

-- Runs fn(...) holding the primitive (acquire/release); releases on error.
local function with(self, fn, ...)
  if type(fn) ~= "function" then argerror(":with", 1, "function", fn) end
  self:acquire()
  local r = pack(pcall(fn, ...))
  self:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

--- Event: rill.event() -> :set() :clear() :is_set() :wait()
local Event = methods(sync.mt.event, "Event")
local event_wait = sync.event_wait
function rill.event() return sync.event_new() end
Event.set, Event.clear, Event.is_set = sync.event_set, sync.event_clear, sync.event_is_set
--- Waits until the event is set; returns true.
function Event:wait()
  local f = event_wait(self)
  if f then sync_await(f) end
  return true
end

--- Lock: rill.lock() -> :acquire() :release() :locked() :with(fn, ...)
local Lock = methods(sync.mt.lock, "Lock")
local lock_acquire = sync.lock_acquire
function rill.lock() return sync.lock_new() end
function Lock:acquire()
  local f = lock_acquire(self)
  if f then sync_await(f) end
  return true
end
Lock.release, Lock.locked, Lock.with = sync.lock_release, sync.lock_locked, with

--- Semaphore: rill.semaphore([n=1]), rill.bounded_semaphore([n=1]) ->
-- :acquire() :release() :locked() :value() :with(fn, ...)
local Semaphore = methods(sync.mt.semaphore, "Semaphore")
local sem_acquire = sync.semaphore_acquire
local function new_semaphore(fname, n, bounded)
  if n == nil then n = 1 end
  if not is_int(n) then argerror(fname, 1, "integer", n) end
  return sync.semaphore_new(n, bounded)
end
function rill.semaphore(n) return new_semaphore("semaphore", n, false) end
function rill.bounded_semaphore(n) return new_semaphore("bounded_semaphore", n, true) end
function Semaphore:acquire()
  local f = sem_acquire(self)
  if f then sync_await(f) end
  return true
end
Semaphore.release, Semaphore.locked, Semaphore.value = sync.semaphore_release, sync.semaphore_locked,
  sync.semaphore_value
Semaphore.with = with

--- Condition: rill.condition([lock]) -> :acquire() :release() :locked()
-- :wait() :wait_for(pred) :notify([n=1]) :notify_all() :with(fn, ...)
local Condition = methods(sync.mt.condition, "Condition")
local cond_acquire, cond_wait = sync.condition_acquire, sync.condition_wait
function rill.condition(lock)
  if lock ~= nil and getmetatable(lock) ~= sync.mt.lock then argerror("condition", 1, "rill.Lock or nil", lock) end
  return sync.condition_new(lock)
end
function Condition:acquire()
  local f = cond_acquire(self)
  if f then sync_await(f) end
  return true
end
--- Releases the lock, waits to be notified, takes the lock back (also
-- when cancelled); returns true. Raises ENOTLOCKED without the lock.
function Condition:wait()
  local f = cond_wait(self)
  if f then sync_await(f) end
  return true
end
--- Waits until pred() is true (checked first); returns pred's value.
function Condition:wait_for(pred)
  if type(pred) ~= "function" then argerror("Condition:wait_for", 1, "function", pred) end
  local r = pred()
  while not r do
    self:wait()
    r = pred()
  end
  return r
end
function Condition:notify(n)
  if n ~= nil and not is_int(n) then argerror("Condition:notify", 1, "integer", n) end
  return sync.condition_notify(self, n)
end
Condition.release, Condition.locked, Condition.notify_all, Condition.with =
  sync.condition_release, sync.condition_locked, sync.condition_notify_all, with

--- Barrier: rill.barrier(parties) -> :wait() (the arrival index) :abort()
-- :reset() :parties() :n_waiting() :broken()
local Barrier = methods(sync.mt.barrier, "Barrier")
local barrier_wait = sync.barrier_wait
function rill.barrier(parties)
  if not is_int(parties) then argerror("barrier", 1, "integer", parties) end
  return sync.barrier_new(parties)
end
function Barrier:wait()
  local f, index = barrier_wait(self)
  if f then return sync_await(f) end
  return index
end
Barrier.abort, Barrier.reset, Barrier.parties, Barrier.n_waiting, Barrier.broken =
  sync.barrier_abort, sync.barrier_reset, sync.barrier_parties, sync.barrier_n_waiting,
  sync.barrier_broken

--- Queue: rill.queue{maxsize=0, kind="fifo"|"lifo"|"priority"} (also
-- rill.lifo_queue{...}, rill.priority_queue{...}) -> :put(v [, priority])
-- :get() :put_nowait(v [, priority]) :get_nowait() :qsize() :maxsize()
-- :empty() :full() :task_done() :join() :shutdown([immediate])
-- :is_shut_down(). Items keep their type: nil, booleans, integers, floats
-- and strings as the core's kinds (other languages read them), any other
-- value by reference. A priority queue serves the smallest priority first,
-- FIFO among equal ones.
local Queue = methods(sync.mt.queue, "Queue")
local QUEUE_KINDS = { fifo = 0, lifo = 1, priority = 2 }
local q_put, q_get, q_join = sync.queue_put, sync.queue_get, sync.queue_join
local function new_queue(fname, opts, kind)
  if opts == nil then opts = {} end
  if type(opts) == "number" then opts = { maxsize = opts } end
  if type(opts) ~= "table" then argerror(fname, 1, "table or nil", opts) end
  local maxsize = opts.maxsize
  if maxsize == nil then maxsize = 0 end
  if not is_int(maxsize) then
    error(("bad argument #1 to 'rill.%s' (maxsize: integer expected, got %s)"):format(fname, type(maxsize)), 3)
  end
  kind = kind or opts.kind or "fifo"
  local k = QUEUE_KINDS[kind]
  if not k then
    error(("bad argument #1 to 'rill.%s' (kind: \"fifo\", \"lifo\" or \"priority\" expected, got %s)")
      :format(fname, tostring(kind)), 3)
  end
  return sync.queue_new(maxsize, k)
end
function rill.queue(opts) return new_queue("queue", opts) end
function rill.lifo_queue(opts) return new_queue("lifo_queue", opts, "lifo") end
function rill.priority_queue(opts) return new_queue("priority_queue", opts, "priority") end
--- Puts v, waiting for room in a full queue (ESHUTDOWN once shut down).
function Queue:put(v, priority)
  local f = q_put(self, v, priority)
  if f then sync_await(f) end
end
--- Takes the next item, waiting for one (ESHUTDOWN: shut down and empty).
function Queue:get()
  local f, v = q_get(self)
  if f then return sync_await(f) end
  return v
end
--- Waits until every item put has had its task_done().
function Queue:join()
  local f = q_join(self)
  if f then sync_await(f) end
end
Queue.put_nowait, Queue.get_nowait, Queue.qsize, Queue.maxsize, Queue.empty, Queue.full =
  sync.queue_put_nowait, sync.queue_get_nowait, sync.queue_qsize, sync.queue_maxsize,
  sync.queue_empty, sync.queue_full
Queue.task_done, Queue.is_shut_down = sync.queue_task_done, sync.queue_is_shut_down
function Queue:shutdown(immediate) return sync.queue_shutdown(self, immediate) end

--- A rill.Queue over the host's rill_queue* at address (an integer or a
-- light userdata; retained): a C/C++ host's queue, used from Lua tasks on
-- the host's loop. rill.queue_address(q) is the other way (borrowed).
function rill.wrap_queue(address) return sync.wrap_queue(address) end
function rill.queue_address(q) return sync.queue_address(q) end

-- ---------------------------------------------------------------------
-- I/O: sockets (TCP, Unix, UDP), rill.poll, DNS, signals, processes
-- (bindings/lua/src/io.c over the core's I/O). Lua's I/O idiom: an I/O
-- failure returns nil, message, code (code: rill.ECONNREFUSED,
-- rill.ETIMEDOUT, ...); end of stream is a plain nil (as io.read); bad
-- arguments and a use of a closed socket raise; a cancel of the task
-- raises its cancel error as everywhere.
-- ---------------------------------------------------------------------

local io_ = core.io()
for _, name in ipairs { "ECLOSED", "ENOMEM", "ETYPE", "EINTR", "ESYS", "ECONNREFUSED", "ECONNRESET",
  "EPIPE", "EADDRINUSE", "EADDRNOTAVAIL", "EHOSTUNREACH", "ENETUNREACH", "EMFILE", "ECONNABORTED",
  "ENOTCONN", "EBADF", "EINCOMPLETE", "ELIMIT", "EACCES", "ENOENT", "ENOHOST", "EDNS", "ESIGBUSY",
  "ESPAWN" } do
  rill[name] = core[name]
end
local io_done, io_cancel, in_task = core.done, core.cancel, io_.in_task

-- Awaits the op's last future (w, or f); a cancel of the task cancels the
-- operation (a read loses no data) and raises.
local function io_await(what, f, w)
  local x = w or f
  if io_done(x) then return end
  if not in_task() then
    io_cancel(x)
    check_task(what) -- raises the usual "outside a task" error
    error("rill." .. what .. ": not in a rill task", 3)
  end
  local rc = yield(OP_AWAIT, x)
  if rc ~= 0 then
    io_cancel(x)
    raise_resume(rc)
  end
end

local function opt_timeout(fname, n, t)
  if t ~= nil and (type(t) ~= "number" or t ~= t) then argerror(fname, n, "number or nil (timeout)", t) end
  return t
end

local function check_opts(fname, n, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerror(fname, n, "table or nil", opts) end
  return opts
end

local function check_host(fname, host)
  if host ~= nil and type(host) ~= "string" then argerror(fname, 1, "string or nil (host)", host) end
end

local function check_port(fname, port, allow0)
  if type(port) ~= "number" or port ~= math.floor(port) or port < (allow0 and 0 or 1) or port > 65535 then
    error(("bad argument #2 to 'rill.%s' (port: integer %s..65535 expected, got %s)")
      :format(fname, allow0 and "0" or "1", tostring(port)), 3)
  end
  return math.floor(port)
end

--- Socket: a TCP or Unix connection, or a process pipe.
local Socket = {}
io_.mt.socket.__index = Socket
io_.mt.socket.__tostring = function(s)
  return ("rill.Socket<%s>"):format(io_.closed(s) and "closed" or tostring(io_.getfd(s)))
end
rill.Socket = Socket
local timeouts = setmetatable({}, { __mode = "k" }) -- socket -> default timeout

local function new_socket(s, opts)
  if opts then
    if opts.timeout ~= nil then timeouts[s] = opts.timeout end
    if opts.limit ~= nil then io_.setlimit(s, opts.limit) end
  end
  return s
end

local function connect_with(what, f, w, opts)
  io_await(what, f, w)
  local s, msg, code = io_.connected(f, w)
  if not s then return nil, msg, code end
  return new_socket(s, opts)
end

rill.tcp, rill.unix, rill.udp = {}, {}, {}

--- rill.tcp.connect(host, port [, {timeout=s, limit=n}]) -> socket | nil, msg, code.
-- host: a numeric address, a list "::1,127.0.0.1", a name (resolved), nil
-- (127.0.0.1). timeout bounds the whole attempt and becomes the socket's
-- default per-call timeout; limit is read("l")'s (default 64 KiB).
function rill.tcp.connect(host, port, opts)
  check_host("tcp.connect", host)
  port = check_port("tcp.connect", port)
  opts = check_opts("tcp.connect", 3, opts)
  local f = io_.tcp_connect(host, port, opt_timeout("tcp.connect", 3, opts.timeout))
  return connect_with("tcp.connect", f, nil, opts)
end

--- rill.unix.connect(path [, {timeout=, limit=}]) -> socket | nil, msg, code
function rill.unix.connect(path, opts)
  if type(path) ~= "string" then argerror("unix.connect", 1, "string (path)", path) end
  opts = check_opts("unix.connect", 2, opts)
  local f = io_.unix_connect(path, opt_timeout("unix.connect", 2, opts.timeout))
  return connect_with("unix.connect", f, nil, opts)
end

-- The timeout of one call: an options table's, else the socket's.
local function call_timeout(self, opts)
  if opts ~= nil then
    if type(opts) ~= "table" then error("bad options: table expected, got " .. type(opts), 3) end
    if opts.timeout ~= nil then return opt_timeout("Socket", 1, opts.timeout) end
  end
  return timeouts[self]
end

local read_line, read_exactly, read_some, bytes = io_.read_line, io_.read_exactly, io_.read_some, io_.bytes
local io_status = io_.status

-- Up to n bytes, waiting for some: nil at end of stream, or nil, msg, code.
local function read_available(self, n, t, what)
  local f, w = read_some(self, n, t)
  if type(f) == "string" then return f end
  io_await(what, f, w) -- (wait_readable)
  local ok, msg, code = io_status(f, w)
  if not ok then return nil, msg, code end
  f, w = read_some(self, n, t, true)
  if type(f) == "string" then return f end
  io_await(what, f, w) -- (nothing buffered: end of stream or a failure)
  return bytes(f, w)
end

local function read_one(self, fmt, t)
  local f, w
  if fmt == "l" or fmt == "L" or fmt == "*l" or fmt == "*L" then
    f, w = read_line(self, t)
    io_await("Socket:read", f, w)
    return bytes(f, w, fmt == "l" or fmt == "*l")
  elseif type(fmt) == "number" then
    if fmt ~= math.floor(fmt) or fmt < 0 then error("bad argument to 'Socket:read' (count must be an integer >= 0)", 3) end
    f, w = read_exactly(self, fmt, t)
    io_await("Socket:read", f, w)
    return bytes(f, w, false, true)
  elseif fmt == "a" or fmt == "*a" then
    local parts = {}
    while true do
      local s, msg, code = read_available(self, 65536, t, "Socket:read")
      if s == nil then
        if msg then return nil, msg, code end
        return table.concat(parts)
      end
      parts[#parts + 1] = s
    end
  end
  error(("bad argument to 'Socket:read' (invalid format %s)"):format(tostring(fmt)), 3)
end

--- sock:read(fmt... [, {timeout=s}]): "l" a line without "\n", "L" with
-- it, "a" everything to end of stream, n exactly n bytes (fewer at end of
-- stream); returns one value per format, nil at end of stream, or nil,
-- message, code on failure (rill.ELIMIT: a line longer than the limit;
-- the data stays buffered and readable; rill.ETIMEDOUT).
function Socket:read(...)
  local n = select("#", ...)
  local last = select(n > 0 and n or 1, ...)
  local t
  if type(last) == "table" then
    t = call_timeout(self, last)
    n = n - 1
  else
    t = timeouts[self]
  end
  if n == 0 then return read_one(self, "l", t) end
  if n == 1 then return read_one(self, (...), t) end
  local out = {}
  for i = 1, n do
    local v, msg, code = read_one(self, (select(i, ...)), t)
    if v == nil then
      if msg then return nil, msg, code end
      return unpack(out, 1, i)
    end
    out[i] = v
  end
  return unpack(out, 1, n)
end

--- sock:read_some([n=65536] [, {timeout=}]): what is there, up to n
-- bytes (at least one), waiting for some; nil at end of stream.
function Socket:read_some(n, opts)
  return read_available(self, n or 65536, call_timeout(self, opts), "Socket:read_some")
end

--- for line in sock:lines([fmt="l"]) do ... end; raises on a failure.
function Socket:lines(fmt)
  fmt = fmt or "l"
  return function()
    local v, msg = read_one(self, fmt, timeouts[self])
    if v == nil and msg then error(msg, 2) end
    return v
  end
end

--- sock:write(...): strings or numbers, buffered by the core (never
-- blocks); returns sock, or nil, msg, code. flush() waits for room.
Socket.write = io_.write
local drain, status = io_.drain, io_.status

--- sock:flush([{timeout=}]): waits until the write buffer is at or below
-- its low watermark; true or nil, msg, code.
function Socket:flush(opts)
  local f, w = drain(self, call_timeout(self, opts))
  io_await("Socket:flush", f, w)
  return status(f, w)
end

--- sock:shutdown("w"): half-close once the buffer is flushed.
Socket.shutdown = io_.shutdown
--- sock:close([abort]): flushes, then closes (abort: discards buffers, at once).
Socket.close = io_.close
Socket.closed = io_.closed
Socket.getpeername = io_.peername
Socket.getsockname = io_.sockname
Socket.getfd = io_.getfd
Socket.setnodelay = io_.setnodelay
Socket.buffered = io_.buffered
--- sock:setlimit(n): read("l")'s limit (and the stream's read buffer).
function Socket:setlimit(n)
  if type(n) ~= "number" or n ~= math.floor(n) or n <= 0 then argerror("Socket:setlimit", 1, "integer > 0", n) end
  io_.setlimit(self, n)
end
--- sock:settimeout(s | nil): the default timeout of each call (nil: none).
function Socket:settimeout(t)
  if getmetatable(self) ~= io_.mt.socket then argerror("Socket:settimeout", 0, "rill.Socket", self) end
  timeouts[self] = opt_timeout("Socket:settimeout", 1, t)
end
function Socket:gettimeout() return timeouts[self] end

--- Server: rill.tcp.listen / rill.unix.listen.
local Server = {}
io_.mt.server.__index = Server
rill.Server = Server

--- rill.tcp.listen(host, port [, {backlog=, reuseport=}]) -> server | nil, msg, code
-- (port 0 picks one: server:getsockname() gives host, port).
function rill.tcp.listen(host, port, opts)
  check_host("tcp.listen", host)
  port = check_port("tcp.listen", port, true)
  opts = check_opts("tcp.listen", 3, opts)
  return io_.tcp_listen(host, port, opts.backlog, opts.reuseport)
end

--- rill.unix.listen(path [, {backlog=}]) -> server | nil, msg, code
function rill.unix.listen(path, opts)
  if type(path) ~= "string" then argerror("unix.listen", 1, "string (path)", path) end
  opts = check_opts("unix.listen", 2, opts)
  return io_.unix_listen(path, opts.backlog)
end

--- server:accept([{timeout=}]) -> socket | nil, msg, code (rill.ENOTCONN once closed)
function Server:accept(opts)
  local t = opts and opts.timeout
  local f, w = io_.accept(self, opt_timeout("Server:accept", 1, t))
  return connect_with("Server:accept", f, w, opts)
end
Server.close = io_.server_close
Server.closed = io_.server_closed
Server.getsockname = io_.server_name
Server.getfd = io_.server_fd

--- rill.tcp.serve(host, port, handler [, opts]) -> server, task: accepts
-- in a task, and runs handler(sock) as a task per connection (the socket
-- is closed when the handler returns). server:close() stops it.
function rill.tcp.serve(host, port, handler, opts)
  if type(handler) ~= "function" then argerror("tcp.serve", 3, "function", handler) end
  local server, msg, code = rill.tcp.listen(host, port, opts)
  if not server then return nil, msg, code end
  local function conn(sock)
    local ok, err = pcall(handler, sock)
    sock:close()
    if not ok then error(err, 0) end
  end
  local acceptor = core.spawn(function()
    while true do
      local sock, _, acode = server:accept()
      if sock then
        core.spawn(conn, sock)
      elseif acode == rill.ENOTCONN or server:closed() then
        return -- server:close()
      else
        rill.sleep(0.1) -- EMFILE and the like: try again, never spin
      end
    end
  end)
  return server, acceptor
end

--- UDP: rill.udp.bind(host, port) -> endpoint; rill.udp.connect(host, port
-- [, {bind_host=, bind_port=}]) -> endpoint with a default peer.
local UDP = {}
io_.mt.udp.__index = UDP
rill.UDP = UDP
function rill.udp.bind(host, port, opts)
  check_host("udp.bind", host)
  port = check_port("udp.bind", port, true)
  opts = check_opts("udp.bind", 3, opts)
  return io_.udp_open(host, port, opts.reuseport)
end
function rill.udp.connect(host, port, opts)
  check_host("udp.connect", host)
  port = check_port("udp.connect", port)
  opts = check_opts("udp.connect", 3, opts)
  local u, msg, code = io_.udp_open(opts.bind_host, opts.bind_port or 0)
  if not u then return nil, msg, code end
  local ok
  ok, msg, code = io_.udp_connect(u, host or "127.0.0.1", port)
  if not ok then u:close() return nil, msg, code end
  return u
end
--- udp:sendto(data, host, port) / udp:send(data) -> true | nil, msg, code
function UDP:sendto(data, host, port)
  if type(data) ~= "string" then argerror("UDP:sendto", 1, "string", data) end
  if type(host) ~= "string" then argerror("UDP:sendto", 2, "string (host)", host) end
  return io_.udp_sendto(self, data, host, check_port("UDP:sendto", port))
end
function UDP:send(data)
  if type(data) ~= "string" then argerror("UDP:send", 1, "string", data) end
  return io_.udp_sendto(self, data)
end
--- udp:recvfrom([{timeout=}]) -> data, host, port | nil, msg, code; udp:recv() -> data
function UDP:recvfrom(opts)
  local f, w = io_.udp_recvfrom(self, opt_timeout("UDP:recvfrom", 1, opts and opts.timeout))
  io_await("UDP:recvfrom", f, w)
  return io_.datagram(f, w)
end
function UDP:recv(opts)
  local data, msg, code = self:recvfrom(opts)
  return data, msg, code
end
function UDP:getsockname() return "127.0.0.1", io_.udp_port(self) end
UDP.getport = io_.udp_port
UDP.close = io_.udp_close

--- rill.poll(fd, "r"|"w"|"rw" [, timeout]) -> "r"|"w"|"rw" (what is
-- ready) | nil, "timed out", rill.ETIMEDOUT. Any fd the caller owns.
--- rill.to_thread(fn, ...) -> fn's results, computed on the loop's thread
-- pool (blocking or CPU-heavy work off the loop). cqueues' way: fn runs in
-- a fresh Lua state with the standard libraries, so it sees no upvalues
-- (locals of enclosing functions: pass them as arguments) and no globals
-- of this state; arguments and results are copied and may be nil,
-- booleans, numbers or strings. An error in fn is raised here with its
-- message. Cancelling the task before the job starts means it never runs;
-- after, it runs to its end and its results are dropped.
function rill.to_thread(fn, ...)
  if type(fn) ~= "function" then argerror("to_thread", 1, "function", fn) end
  local i = 1
  while true do
    local name = debug.getupvalue(fn, i)
    if name == nil then break end
    if name ~= "_ENV" then
      error("rill.to_thread: the function uses the upvalue '" .. tostring(name) ..
            "' (a local of an enclosing function): pass it as an argument", 2)
    end
    i = i + 1
  end
  local ok, code = pcall(string.dump, fn)
  if not ok then error("rill.to_thread: " .. tostring(code), 2) end
  local f = io_.to_thread(code, ...)
  io_await("to_thread", f)
  return io_.thread_results(f)
end

function rill.poll(fd, events, timeout)
  if type(fd) ~= "number" then argerror("poll", 1, "integer fd", fd) end
  if events ~= nil and events ~= "r" and events ~= "w" and events ~= "rw" and events ~= "wr" then
    argerror("poll", 2, "\"r\", \"w\" or \"rw\"", events)
  end
  local f, w = io_.fd_wait(fd, events or "r", opt_timeout("poll", 3, timeout))
  io_await("poll", f, w)
  return io_.ready(f, w)
end

--- rill.wrap(luasocket_tcp) -> an object with the LuaSocket TCP methods
-- (receive, send, accept, connect, close, settimeout, ...) that wait with
-- rill.poll instead of blocking, as copas does: usable from rill tasks.
-- A lua-sec connection (ssl.wrap of a LuaSocket) works the same, its
-- "wantread"/"wantwrite" included; w:dohandshake() completes a TLS
-- handshake, and w:starttls(params) wraps with lua-sec and shakes hands.
local Wrapped = {}
Wrapped.__index = function(self, k)
  local m = Wrapped[k]
  if m then return m end
  local raw = rawget(self, "sock")
  local v = raw[k]
  if type(v) == "function" then
    return function(_, ...) return v(raw, ...) end
  end
  return v
end
rill.Wrapped = Wrapped

-- Waits for what err asks ("timeout": the default direction; lua-sec's
-- "wantread"/"wantwrite"); true, or nil and the error to return.
local WAIT_ON = { wantread = "r", wantwrite = "w" }
local function wait_fd(self, err, default)
  local ev = WAIT_ON[err] or (err == "timeout" and default)
  if not ev then return nil, err end
  local r, msg = rill.poll(self.sock:getfd(), ev, self.timeout)
  if not r then return nil, msg == "timed out" and "timeout" or msg end
  return true
end

function rill.wrap(sock)
  if (type(sock) ~= "table" and type(sock) ~= "userdata") or type(sock.getfd) ~= "function"
     or type(sock.settimeout) ~= "function" then
    argerror("wrap", 1, "LuaSocket object", sock)
  end
  sock:settimeout(0)
  return setmetatable({ sock = sock, timeout = nil }, Wrapped)
end

function Wrapped:settimeout(t) self.timeout = (t and t >= 0) and t or nil return 1 end

function Wrapped:connect(host, port)
  local ok, err = self.sock:connect(host, port)
  if ok or err == "already connected" then return 1 end
  if err ~= "timeout" and err ~= "Operation already in progress" then return nil, err end
  local r, e = wait_fd(self, "timeout", "w")
  if not r then return nil, e end
  ok, err = self.sock:connect(host, port) -- completes (or reports) the attempt
  if ok or err == "already connected" then return 1 end
  return nil, err
end

function Wrapped:accept()
  while true do
    local c, err = self.sock:accept()
    if c then return rill.wrap(c) end
    local r, e = wait_fd(self, err, "r")
    if not r then return nil, e end
  end
end

--- receive(pattern, prefix): LuaSocket's patterns ("*l", "*a", n).
function Wrapped:receive(pattern, prefix)
  local acc = prefix or ""
  while true do
    local data, err, partial = self.sock:receive(pattern, acc)
    if data then return data end
    partial = partial or acc
    if type(pattern) == "number" then pattern = pattern - (#partial - #acc) end
    acc = partial
    local r, e = wait_fd(self, err, "r")
    if not r then return nil, e, acc end
  end
end

function Wrapped:send(data, i, j)
  i = i or 1
  j = j or #data
  while true do
    local last, err, lastpart = self.sock:send(data, i, j)
    if last then return last end
    if lastpart and lastpart >= i then i = lastpart + 1 end
    local r, e = wait_fd(self, err, "w")
    if not r then return nil, e, lastpart end
  end
end

--- TLS (lua-sec): w:dohandshake() on a wrapped ssl connection.
function Wrapped:dohandshake()
  while true do
    local ok, err = self.sock:dohandshake()
    if ok then return true end
    local r, e = wait_fd(self, err)
    if not r then return nil, e end
  end
end

--- w:starttls(params): ssl.wrap(the LuaSocket, params) and the handshake;
-- a new wrapped object (this one must not be used any more), or nil, err.
function Wrapped:starttls(params)
  local ok, ssl = pcall(require, "ssl")
  if not ok then return nil, "TLS needs lua-sec (require \"ssl\"): " .. tostring(ssl) end
  local conn, err = ssl.wrap(self.sock, params)
  if not conn then return nil, err end
  local w = rill.wrap(conn)
  w.timeout = self.timeout
  local hs, herr = w:dohandshake()
  if not hs then conn:close() return nil, herr end
  return w
end

function Wrapped:close() return self.sock:close() end
function Wrapped:unwrap() return self.sock end

--- rill.dns.resolve(name) -> {"127.0.0.1", "::1", ...} | nil, msg, code
-- (getaddrinfo on the loop's thread pool; numeric addresses, no duplicates).
rill.dns = {}
function rill.dns.resolve(name)
  if type(name) ~= "string" then argerror("dns.resolve", 1, "string", name) end
  local f = io_.resolve(name)
  io_await("dns.resolve", f)
  return io_.addresses(f)
end

--- Signal numbers by name: rill.signals.INT, .TERM, ...
rill.signals = io_.signals
local function signum_of(fname, sig)
  if type(sig) == "string" then
    local n = io_.signals[(sig:gsub("^SIG", ""))]
    if not n then error(("bad argument #1 to 'rill.%s' (unknown signal %s)"):format(fname, sig), 3) end
    return n
  end
  if type(sig) ~= "number" or sig ~= math.floor(sig) then argerror(fname, 1, "signal number or name", sig) end
  return sig
end

--- rill.signal(sig, fn) -> handle with :cancel(): fn(signum) is called on
-- the loop (as a call_soon callback: spawn a task to wait) in the
-- iteration after sig arrives, until handle:cancel() or the loop ends.
-- sig: a number or a name ("INT", "SIGTERM"). Watching SIGINT inside
-- rill.run replaces its Ctrl+C (the main task is no longer cancelled: fn
-- decides, for the rest of the run).
local Signal = {}
io_.mt.signal.__index = Signal
Signal.cancel = io_.signal_cancel
function rill.signal(sig, fn)
  local n = signum_of("signal", sig)
  if type(fn) ~= "function" then argerror("signal", 2, "function", fn) end
  return io_.signal(n, fn)
end

--- rill.process.spawn{argv..., env=, cwd=, stdin=, stdout=, stderr=}
-- (each stdio "inherit" (default), "pipe" or "null"; stderr also
-- "stdout") -> process | nil, msg, code. A process has pid, and for pipes
-- stdin/stdout/stderr sockets; :wait([{timeout=}]) -> exit status (the
-- code, or -N if signal N ended it); :kill([sig=TERM]); :returncode().
rill.process = {}
local Process = {}
Process.__index = Process
rill.Process = Process
function rill.process.spawn(spec)
  if type(spec) ~= "table" then argerror("process.spawn", 1, "table", spec) end
  local argv = spec.argv or spec
  if type(argv) ~= "table" or type(argv[1]) ~= "string" then
    error("bad argument #1 to 'rill.process.spawn' (argv: a non-empty array of strings expected)", 2)
  end
  local args = {}
  for i = 1, #argv do
    local a = argv[i]
    if type(a) ~= "string" and type(a) ~= "number" then
      error(("bad argument #1 to 'rill.process.spawn' (argv[%d]: string expected, got %s)"):format(i, type(a)), 2)
    end
    args[i] = tostring(a)
  end
  if spec.env ~= nil and type(spec.env) ~= "table" then argerror("process.spawn", 1, "table (env)", spec.env) end
  if spec.cwd ~= nil and type(spec.cwd) ~= "string" then argerror("process.spawn", 1, "string (cwd)", spec.cwd) end
  local p, msg, code = io_.spawn(args, spec.env, spec.cwd, spec.stdin, spec.stdout, spec.stderr)
  if not p then return nil, msg, code end
  local obj = setmetatable({ _p = p, pid = io_.proc_pid(p) }, Process)
  obj.stdin = io_.proc_stream(p, 0)
  obj.stdout = io_.proc_stream(p, 1)
  obj.stderr = io_.proc_stream(p, 2)
  return obj
end
function Process:wait(opts)
  local f, w = io_.proc_wait(self._p, opt_timeout("Process:wait", 1, opts and opts.timeout))
  io_await("Process:wait", f, w)
  return io_.int(f, w)
end
function Process:kill(sig)
  return io_.proc_kill(self._p, sig == nil and io_.signals.TERM or signum_of("Process:kill", sig))
end
function Process:returncode() return io_.proc_returncode(self._p) end

-- ---------------------------------------------------------------------
-- Embedding: a loop and futures of the host program (examples/polyglot-host)
-- ---------------------------------------------------------------------

local attached = {} -- attached loops, alive for the life of the state

--- The host's rill_loop* (an integer address, a light userdata or a
-- rill_core.Loop) as an attached loop for rill.spawn_on. The host runs the
-- loop (rill_loop_run & co) and closes and frees it, before it closes this
-- Lua state.
function rill.attach_loop(address)
  local loop = core.attach_loop(address)
  attached[#attached + 1] = loop
  return loop
end

--- Starts fn(...) as a task on an attached loop (it runs when the host runs
-- the loop; inside it the whole API works: rill.sleep, rill.spawn, ...).
function rill.spawn_on(loop, fn, ...)
  if type(fn) ~= "function" then argerror("spawn_on", 2, "function", fn) end
  return core.spawn_on(loop, fn, ...)
end

--- The rill_future* address (an integer) of a task or future, for the host
-- (borrowed: the host retains it with rill_future_retain to keep it).
function rill.future_address(f)
  if not is_future(f) then argerror("future_address", 1, "rill task or future", f) end
  return core.future_address(f)
end

--- A rill.Future over the host's rill_future* at address (an integer, a
-- light userdata or a rill_core.Future; retained): await
-- it with rill.await / f:wait(), or complete it with f:set_result(v) (an
-- integer, a float or a string travel as the core's int, double, bytes).
function rill.wrap_future(address)
  return core.wrap_future(address)
end

-- ---------------------------------------------------------------------
-- Loops: rill.new_loop() makes a loop the program owns and drives by hand
-- (asyncio's explicit loop: run_until_complete, run_forever, stop, close;
-- or step() for hosts with their own poll set); rill.get_running_loop()
-- is the loop running now (inside rill.run: that run's loop, valid until
-- the run ends; inside a loop object's run: that object). One type,
-- rill.Loop, for both; the loop object's methods work while it is idle.
-- ---------------------------------------------------------------------

local loops = core.loops()
local Loop = {}
Loop.__index = Loop
rill.Loop = Loop
rill.OwnedLoop = Loop -- (1.1's name for rill.new_loop's objects)
local loop_cache -- rill.run's loop as get_running_loop() gives it
local owned = setmetatable({}, { __mode = "v" }) -- id -> loop object

local function bind(fn, ...)
  local n = select("#", ...)
  if n == 0 then return fn end
  local args = pack(...)
  return function() return fn(unpack(args, 1, args.n)) end
end

local core_time, core_loop_id = core.time, core.loop_id

-- The handle of a loop object, nil for rill.run's loop (after checking
-- that it still runs: core.loops' functions then act on the running loop).
local function handle(self, level)
  level = level or 3
  if getmetatable(self) ~= Loop then error("rill: expected the loop object (use loop:method())", level) end
  local l = self._l
  if l == nil and core_loop_id() ~= self.id then error("rill: this loop is closed", level) end
  return l
end

--- A new loop, owned by the program: drive it with run_until_complete,
-- run_forever or step; close it when done (a loop collected unclosed is
-- closed by the garbage collector, its pending tasks destroyed).
function rill.new_loop()
  local l = loops.new()
  local self = setmetatable({ _l = l, id = loops.id(l) }, Loop)
  owned[self.id] = self
  return self
end

--- Runs the loop until x is done and returns its results (or raises its
-- error): x is a task or future of this loop, or a function started as a
-- task with the arguments after it. Tasks not done yet stay pending for
-- the next run. Raises rill.ECLOSED on a closed loop, rill.EBUSY if a loop
-- already runs on this thread (this one included).
function Loop:run_until_complete(x, ...)
  local l = handle(self)
  if type(x) ~= "function" and not is_future(x) then
    argerror("Loop:run_until_complete", 1, "rill task, future or function", x)
  end
  return loops.run_until(l, x, ...)
end

--- Runs the loop until loop:stop() (asyncio's run_forever: with nothing to
-- do it waits for timers, I/O or other threads).
function Loop:run_forever() return loops.run_forever(handle(self)) end

--- Makes the running loop return after the current iteration (a no-op if
-- it is not running).
function Loop:stop()
  if getmetatable(self) == Loop and self._l == nil and core_loop_id() ~= self.id then return end
  return loops.stop(handle(self))
end

--- As rill.run ends: cancels the tasks left and runs them down, joins the
-- thread pool, closes the loop. A no-op once closed; rill.EBUSY while
-- running.
function Loop:close() return loops.close(handle(self)) end

function Loop:is_closed()
  if getmetatable(self) ~= Loop then handle(self) end
  if self._l == nil then return core_loop_id() ~= self.id end
  return loops.is_closed(self._l)
end

function Loop:is_running()
  if getmetatable(self) ~= Loop then handle(self) end
  if self._l == nil then return core_loop_id() == self.id end
  return loops.is_running(self._l)
end

--- Starts fn(...) as a task on this loop (from its next iteration).
function Loop:create_task(fn, ...)
  local l = handle(self)
  if type(fn) ~= "function" then argerror("Loop:create_task", 1, "function", fn) end
  return loops.spawn(l, fn, ...)
end
Loop.spawn = Loop.create_task

--- Schedules fn(...) for the next iteration (FIFO); returns a handle with
-- :cancel(), :cancelled(). An error in fn goes to the exception handler.
function Loop:call_soon(fn, ...)
  local l = handle(self)
  if type(fn) ~= "function" then argerror("call_soon", 1, "function", fn) end
  return loops.call_soon(l, bind(fn, ...))
end

--- Schedules fn(...) once delay seconds have passed (never early).
function Loop:call_later(delay, fn, ...)
  local l = handle(self)
  if type(delay) ~= "number" or delay ~= delay then argerror("call_later", 1, "number", delay) end
  if type(fn) ~= "function" then argerror("call_later", 2, "function", fn) end
  return loops.call_later(l, delay, bind(fn, ...))
end

--- As call_later with a deadline on loop:time()'s clock.
function Loop:call_at(when, fn, ...)
  handle(self)
  if type(when) ~= "number" or when ~= when then argerror("call_at", 1, "number", when) end
  return self:call_later(when - self:time(), fn, ...)
end

--- The loop's monotonic clock (cached per iteration). On Lua 5.3+ a C
-- function for the running rill.run's loop (loop.c: a task calling it keeps
-- no Lua frame for it, as W3's tasks do), which calls this Lua function for
-- the rest (its errors then name the caller two levels up).
local C_FRAMES = core.SLEEP_IN_C == 1
function Loop:time()
  if getmetatable(self) == Loop and self._l == nil and self.id == core_loop_id() then return core_time() end
  return loops.time(handle(self, C_FRAMES and 4 or 3))
end
if C_FRAMES then Loop.time = core.loop_time_method(Loop, Loop.time) end

--- One iteration, waiting at most timeout seconds (default 0) for work.
function Loop:step(timeout)
  local l = handle(self)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    argerror("Loop:step", 1, "number or nil", timeout)
  end
  return loops.step(l, timeout)
end
--- The backend fd (readable when the loop has work) and how long a host
-- may wait on it (nil: until it is readable): for a host's own poll set.
function Loop:pollfd() return io_.pollfd(handle(self) or error("rill: loop:pollfd() is for rill.new_loop()'s loops", 2)) end
function Loop:timeout() return io_.backend_timeout(handle(self) or error("rill: loop:timeout() is for rill.new_loop()'s loops", 2)) end

--- A plain future of this loop (f:set_result(...), f:set_error(err)).
function Loop:create_future() return loops.future(handle(self)) end
--- handler(message, err) receives what nobody else can (errors in
-- callbacks, unretrieved task errors); nil restores the default (stderr).
function Loop:set_exception_handler(fn)
  local l = handle(self)
  if fn ~= nil and type(fn) ~= "function" then argerror("Loop:set_exception_handler", 1, "function or nil", fn) end
  return loops.set_exception_handler(l, fn)
end
function Loop:call_exception_handler(message, err)
  local l = handle(self)
  if l ~= nil and not loops.is_running(l) then error("rill: loop:call_exception_handler() only while the loop runs", 2) end
  return core.report(message, err)
end
--- Debug mode (as RILL_DEBUG=1): steps and callbacks that block the loop
-- longer than the slow duration are reported with the task and its line.
function Loop:set_debug(on) return loops.set_debug(handle(self), on) end
function Loop:get_debug() return loops.get_debug(handle(self)) end
--- Debug mode's threshold in seconds (asyncio's slow_callback_duration;
-- 0.1 by default).
function Loop:set_slow_callback_duration(seconds)
  local l = handle(self)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0 then
    argerror("Loop:set_slow_callback_duration", 1, "positive number", seconds)
  end
  return loops.set_slow_duration(l, seconds)
end
function Loop:task_count() return loops.task_count(handle(self)) end
function Loop:dump_tasks()
  local l = handle(self)
  if l ~= nil and not loops.is_running(l) then error("rill: loop:dump_tasks() only while the loop runs", 2) end
  return core.dump_tasks()
end
Loop.__tostring = function(self)
  return ("rill.Loop<%s>"):format(self:is_closed() and "closed" or self:is_running() and "running" or "idle")
end

local default_loop
function rill.default_loop()
  if not default_loop or default_loop:is_closed() then default_loop = rill.new_loop() end
  return default_loop
end
function rill.step(timeout) return rill.default_loop():step(timeout) end
function rill.pollfd() return rill.default_loop():pollfd() end

--- The loop running on this thread (inside rill.run, or a loop object's
-- run); raises otherwise.
function rill.get_running_loop()
  local id = core_loop_id()
  if not id then error("rill.get_running_loop: no running loop (call it inside rill.run)", 2) end
  local o = owned[id]
  if o then return o end
  if not loop_cache or loop_cache.id ~= id then loop_cache = setmetatable({ id = id }, Loop) end
  return loop_cache
end

return rill
