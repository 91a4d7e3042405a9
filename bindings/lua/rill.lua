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
function rill.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds then argerror("sleep", 1, "number", seconds) end
  check_task("sleep")
  local rc = yield(OP_SLEEP, seconds)
  if rc ~= 0 then raise_resume(rc) end
end

--- Gives up exactly one loop iteration (sleep(0)).
function rill.yield()
  check_task("yield")
  local rc = yield(OP_SLEEP, 0)
  if rc ~= 0 then raise_resume(rc) end
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
-- The running loop
-- ---------------------------------------------------------------------

local Loop = {}
Loop.__index = Loop
local loop_cache

local function bind(fn, ...)
  local n = select("#", ...)
  if n == 0 then return fn end
  local args = pack(...)
  return function() return fn(unpack(args, 1, args.n)) end
end

local function check_loop(self)
  if getmetatable(self) ~= Loop then error("rill: expected the loop object (use loop:method())", 3) end
  if core.loop_id() ~= self.id then error("rill: this loop is closed", 3) end
end

--- Schedules fn(...) for the next iteration (FIFO); returns a handle with
-- :cancel(), :cancelled(). An error in fn goes to the exception handler.
function Loop:call_soon(fn, ...)
  check_loop(self)
  if type(fn) ~= "function" then argerror("call_soon", 1, "function", fn) end
  return core.call_soon(bind(fn, ...))
end

--- Schedules fn(...) once delay seconds have passed (never early).
function Loop:call_later(delay, fn, ...)
  check_loop(self)
  if type(delay) ~= "number" or delay ~= delay then argerror("call_later", 1, "number", delay) end
  if type(fn) ~= "function" then argerror("call_later", 2, "function", fn) end
  return core.call_later(delay, bind(fn, ...))
end

--- As call_later with a deadline on loop:time()'s clock.
function Loop:call_at(when, fn, ...)
  check_loop(self)
  if type(when) ~= "number" or when ~= when then argerror("call_at", 1, "number", when) end
  return self:call_later(when - core.time(), fn, ...)
end

--- The loop's monotonic clock (cached per iteration).
local core_time, core_loop_id = core.time, core.loop_id
function Loop:time()
  if getmetatable(self) ~= Loop or self.id ~= core_loop_id() then check_loop(self) end
  return core_time()
end
function Loop:create_task(fn, ...) check_loop(self) return rill.spawn(fn, ...) end
function Loop:create_future() check_loop(self) return core.future_new() end
--- handler(message, err) receives what nobody else can (errors in
-- callbacks, unretrieved task errors); nil restores the default (stderr).
function Loop:set_exception_handler(fn) check_loop(self) return core.set_exception_handler(fn) end
function Loop:call_exception_handler(message, err) check_loop(self) return core.report(message, err) end
function Loop:set_debug(on) check_loop(self) return core.set_debug(on) end
function Loop:task_count() check_loop(self) return core.task_count() end
function Loop:dump_tasks() check_loop(self) return core.dump_tasks() end

--- The loop running on this thread (inside rill.run); raises otherwise.
function rill.get_running_loop()
  local id = core.loop_id()
  if not id then error("rill.get_running_loop: no running loop (call it inside rill.run)", 2) end
  if not loop_cache or loop_cache.id ~= id then loop_cache = setmetatable({ id = id }, Loop) end
  return loop_cache
end

return rill
