"""rill: asyncio's API on rill, an event loop written in C over libev.

Write asyncio code with ``rill.`` instead of ``asyncio.``::

    import rill

    async def main():
        await rill.gather(rill.sleep(1), rill.sleep(1))

    rill.run(main())

The semantics (scheduling order, cancellation, gather, timeouts, task
groups) live in the C core, librill.so.1; this package converts values and
errors and drives coroutines. The task step, Future.__await__ and sleep are C
(rill/_rill, see bindings/python/src/: one file per concern).

CancelledError and InvalidStateError are asyncio's own classes, so
``except asyncio.CancelledError`` and code written for asyncio keep working;
TimeoutError is the builtin, as in asyncio since 3.11.
"""
import asyncio.events as _asyncio_events
import collections
import sys
import types

from . import _rill
from ._rill import (  # noqa: F401  (re-exported API)
    CancelledError,
    Error,
    Handle,
    InvalidStateError,
    QueueShutDown,
    current_task,
    ensure_future,
    gather,
    get_running_loop,
    shield,
    sleep,
)

Future = _rill.PyFuture
Task = _rill.PyTask
TimeoutError = TimeoutError  # the builtin, as asyncio.TimeoutError since 3.11

__version__ = _rill.VERSION

__all__ = [
    "run", "sleep", "gather", "create_task", "Task", "Future", "get_running_loop",
    "new_event_loop", "Loop", "EventLoop", "EventLoopPolicy", "install", "current_task", "all_tasks", "CancelledError",
    "InvalidStateError", "TimeoutError", "Error", "wait_for", "timeout", "timeout_at",
    "Timeout", "shield", "wait", "as_completed", "TaskGroup", "ensure_future",
    "iscoroutine", "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED", "Handle",
    "QueueShutDown", "Event", "Lock", "Semaphore", "BoundedSemaphore", "Condition",
    "Barrier", "BrokenBarrierError", "Queue", "LifoQueue", "PriorityQueue", "QueueEmpty",
    "QueueFull", "wrap_queue", "StreamReader", "StreamWriter", "Server", "open_connection",
    "start_server", "open_unix_connection", "start_unix_server", "to_thread",
    "create_subprocess_exec", "create_subprocess_shell", "IncompleteReadError",
    "LimitOverrunError",
]

FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"
ALL_COMPLETED = "ALL_COMPLETED"
_WAIT_MODES = {
    FIRST_COMPLETED: _rill.WAIT_FIRST_COMPLETED,
    FIRST_EXCEPTION: _rill.WAIT_FIRST_ERROR,
    ALL_COMPLETED: _rill.WAIT_ALL,
}


_COROUTINE_TYPES = (types.CoroutineType, _rill._Sleep, _rill._SyncWait, _rill._IOWait)
from asyncio.coroutines import iscoroutine as _asyncio_iscoroutine  # noqa: E402


def iscoroutine(obj):
    """True for coroutine objects (as asyncio.iscoroutine of this Python:
    3.11's also takes a plain generator, which a task drives with yield from)."""
    if type(obj) in _COROUTINE_TYPES:
        return True
    if isinstance(obj, types.GeneratorType):
        return bool(obj.gi_code.co_flags & 0x100) or _asyncio_iscoroutine(obj)
    return isinstance(obj, collections.abc.Coroutine)


async def _wrap_awaitable(aw):
    return await aw


def _default_exception_handler(context):
    """Log context as asyncio does (logger 'rill', level ERROR)."""
    import logging

    message = context.get("message") or "Unhandled exception in event loop"
    exc = context.get("exception")
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else False
    lines = [message]
    for key in sorted(context):
        if key in ("message", "exception"):
            continue
        lines.append(f"{key}: {context[key]!r}")
    logging.getLogger("rill").error("\n".join(lines), exc_info=exc_info)


_rill._set_helpers(iscoroutine, _wrap_awaitable, _default_exception_handler)


from ._loopio import LoopIOMixin  # noqa: E402
from ._transports import TransportsMixin  # noqa: E402


class EventLoop(TransportsMixin, LoopIOMixin, _rill.LoopBase, _asyncio_events.AbstractEventLoop):
    """A rill event loop with asyncio's loop API (the C part is LoopBase).
    An asyncio.AbstractEventLoop (asyncio.set_event_loop and asyncio.Runner
    check it). Transports and protocols are asyncio's own, on rill's fd
    watchers (_transports.py)."""

    def __init__(self):
        self._exception_handler = None
        # asyncio.BaseEventLoop's attribute, read by code written for asyncio
        # (CPython's test helpers, libraries shutting the executor down): the
        # concurrent.futures executor set by set_default_executor, else None
        # (run_in_executor(None, ...) uses the core's thread pool, which
        # close() stops).
        self._default_executor = None

    def __repr__(self):
        return (f"<rill.EventLoop running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def get_exception_handler(self):
        return self._exception_handler

    def default_exception_handler(self, context):
        _default_exception_handler(context)

    def call_exception_handler(self, context):
        handler = getattr(self, "_exception_handler", None)
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                import logging

                logging.getLogger("rill").error("Exception in default exception handler",
                                                exc_info=True)
            return
        try:
            handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler",
                    "exception": exc,
                    "context": context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                import logging

                logging.getLogger("rill").error(
                    "Exception in default exception handler while handling an unexpected "
                    "error in custom exception handler", exc_info=True)

    @property
    def slow_callback_duration(self):
        return getattr(self, "_slow", 0.1)

    @slow_callback_duration.setter
    def slow_callback_duration(self, seconds):
        self._set_slow_callback_duration(seconds)
        self._slow = seconds

    def close(self):
        # Servers still open: the core aborts their listeners, and close()
        # also drops each one's accept callback (a reference the core holds
        # to the Server: a cycle the GC cannot see).
        for server in list(getattr(self, "_servers", ())):
            server.close()
        if not self.is_closed() and not self.is_running():
            for cap in self.__dict__.pop("_signal_handlers", {}).values():
                _rill._signal_stop(cap)
        super().close()

    # asyncio's own functions (asyncio.sleep, asyncio.get_running_loop,
    # asyncio.Queue ...) find the loop through asyncio's running-loop slot:
    # set it for as long as this loop runs.
    def run_until_complete(self, future):
        if self.is_running():  # before the factory wraps it, as asyncio
            raise RuntimeError("This event loop is already running")
        if self.get_task_factory() is not None and iscoroutine(future):
            future = self.create_task(future)  # asyncio's ensure_future: the factory's task
        old = _asyncio_events._get_running_loop()
        _asyncio_events._set_running_loop(self)
        try:
            return super().run_until_complete(future)
        finally:
            _asyncio_events._set_running_loop(old)

    def run_forever(self):
        old = _asyncio_events._get_running_loop()
        _asyncio_events._set_running_loop(self)
        try:
            return super().run_forever()
        finally:
            _asyncio_events._set_running_loop(old)

    def shutdown_asyncgens(self):
        return _done_coroutine()



# DESIGN.md's and uvloop's name for the class (uvloop.Loop): the same class,
# so isinstance and repr agree whichever name the code used.
Loop = EventLoop


async def _done_coroutine():
    return None


def new_event_loop():
    """A new rill event loop (not running); also asyncio.Runner's
    loop_factory: ``asyncio.Runner(loop_factory=rill.new_event_loop)``."""
    return EventLoop()


# ----------------------------------------------------------------- adoption
# uvloop's names: rill.install() makes asyncio.run, asyncio.new_event_loop
# and asyncio.Runner() use rill.EventLoop.

import asyncio as _asyncio  # noqa: E402


class EventLoopPolicy(_asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy whose loops are rill.EventLoop."""

    def _loop_factory(self):
        return EventLoop()

    def new_event_loop(self):
        return EventLoop()

    def __repr__(self):
        return "<rill.EventLoopPolicy>"


def install():
    """Sets rill.EventLoopPolicy() as asyncio's event loop policy."""
    _asyncio.set_event_loop_policy(EventLoopPolicy())


def _get_running_loop():
    return _rill._get_running_loop()


# ---------------------------------------------------------------- embedding
# For a program that embeds Python and runs a rill loop itself (see
# examples/polyglot-host): rill objects over the host's C objects.


def attach_loop(address):
    """An EventLoop over the host's rill_loop* at address (an int), the same
    shape as Lua's rill.attach_loop. The host runs the loop (rill_loop_run &
    co, holding the GIL); this object never closes or frees it, and close()
    is a no-op. Tasks made with loop.create_task run when the host runs the
    loop; rill.future_address(task) is the rill_future* the host can gather.
    Reports about Python's tasks go to this loop's exception handler, other
    languages' to theirs (the core's per-binding handlers)."""
    loop = _rill._attach_loop(EventLoop, address)
    EventLoop.__init__(loop)
    return loop


def future_address(fut):
    """The rill_future* (an int, borrowed) of a rill Future or Task: the host
    keeps it with rill_future_retain."""
    return fut._rill_future_address()


def wrap_future(address, loop=None):
    """A rill.Future over the rill_future* at address, retained by the
    returned object: awaiting it gives the value in Python's kind (int,
    float, bytes, bool, None). loop: the Python loop of the future's
    rill_loop, found by itself when omitted."""
    if loop is None:
        return _rill._wrap_future(address)
    return _rill._wrap_future(address, loop)


# The 1.0 spellings.
_attach_loop = attach_loop
_wrap_future = wrap_future


# ---------------------------------------------------------- sync primitives
# asyncio's Event, Lock, Semaphore, Condition, Barrier and queues on the
# core's (rill_event ... rill_queue, bindings/python/src/sync.c): the rules
# (FIFO wake-up, no barging, a cancelled waiter loses nothing, shutdown) are
# the core's. A wait is a rill.Future of the core; the methods that return
# True in asyncio give True. acquire/wait/put/get/join return an awaitable
# (_rill._SyncWait) where asyncio's are coroutine functions: await it, or
# give it to create_task/gather/wait_for as a coroutine. An object made
# outside a running loop binds to the loop that first uses it, as asyncio's
# do.

from asyncio import BrokenBarrierError, QueueEmpty, QueueFull  # noqa: E402


class _LockMixin:
    __slots__ = ()

    async def __aexit__(self, exc_type, exc, tb):
        self.release()

    def __repr__(self):
        extra = "locked" if self.locked() else "unlocked"
        if hasattr(self, "_value"):
            extra += f", value:{self._value}"
        return f"<{_name(self)} object at {id(self):#x} [{extra}]>"


def _name(obj):
    cls = type(obj)
    return "rill." + cls.__qualname__ if cls.__module__ == __name__ else cls.__qualname__


class Event(_rill._Event):
    """asyncio.Event: set() wakes every waiter, in the order they waited."""

    __slots__ = ()

    def __repr__(self):
        return f"<{_name(self)} object at {id(self):#x} [{'set' if self.is_set() else 'unset'}]>"


class Lock(_LockMixin, _rill._Lock):
    """asyncio.Lock: no owner, FIFO, no barging; ``async with lock``."""

    __slots__ = ()
    __aenter__ = _rill._Lock._acquire  # awaiting it gives None, as asyncio's


class Semaphore(_LockMixin, _rill._Semaphore):
    """asyncio.Semaphore(value=1)."""

    __slots__ = ()
    __aenter__ = _rill._Semaphore._acquire

    def __new__(cls, value=1):
        return super().__new__(cls, value, False)


class BoundedSemaphore(Semaphore):
    """asyncio.BoundedSemaphore(value=1): a release past value is ValueError."""

    __slots__ = ()

    def __new__(cls, value=1):
        return _rill._Semaphore.__new__(cls, value, True)


class Condition(_rill._Condition):
    """asyncio.Condition(lock=None): over a rill.Lock, its own if none given."""

    __slots__ = ()

    def __new__(cls, lock=None):
        return super().__new__(cls, Lock() if lock is None else lock)

    def locked(self):
        return self._lock.locked()

    def acquire(self):
        return self._lock.acquire()

    def release(self):
        self._lock.release()

    def __aenter__(self):
        return self._lock._acquire()

    async def __aexit__(self, exc_type, exc, tb):
        self._lock.release()

    async def wait_for(self, predicate):
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def __repr__(self):
        extra = "locked" if self.locked() else "unlocked"
        return f"<{_name(self)} object at {id(self):#x} [{extra}]>"


class Barrier(_rill._Barrier):
    """asyncio.Barrier(parties): wait() returns the arrival index."""

    __slots__ = ()

    async def __aenter__(self):
        return await self.wait()

    async def __aexit__(self, exc_type, exc, tb):
        pass

    async def abort(self):
        """Break the barrier: waiters and later waits raise BrokenBarrierError."""
        self._abort()

    async def reset(self):
        """Back to empty and not broken; current waiters raise BrokenBarrierError."""
        self._reset()

    def __repr__(self):
        state = "broken" if self.broken else "filling"
        return (f"<{_name(self)} object at {id(self):#x} [{state}, "
                f"waiters:{self.n_waiting}/{self.parties}]>")


class Queue(_rill._Queue):
    """asyncio.Queue(maxsize=0) (3.13's, with shutdown). None, bool, int
    (64-bit), float and bytes travel as the core's values, so a task of
    another language on the loop gets them natively; any other object is
    carried by reference."""

    __slots__ = ()
    _kind = _rill.QUEUE_FIFO
    __class_getitem__ = classmethod(types.GenericAlias)

    def __new__(cls, maxsize=0):
        return super().__new__(cls, maxsize, cls._kind)

    def shutdown(self, immediate=False):
        """Puts raise QueueShutDown from now on, so do waiting putters and
        getters; gets still take the items left unless immediate."""
        super().shutdown(immediate)

    def __repr__(self):
        return f"<{_name(self)} at {id(self):#x} maxsize={self.maxsize!r} qsize={self.qsize()}>"


class LifoQueue(Queue):
    """asyncio.LifoQueue: the last item put is the first got."""

    __slots__ = ()
    _kind = _rill.QUEUE_LIFO


class PriorityQueue(Queue):
    """asyncio.PriorityQueue, with the core's int64 key: an item is an int
    or a tuple ``(priority, ...)`` whose first element is an int (anything
    else is TypeError). The smallest priority comes first; items of equal
    priority come in the order they were put (asyncio would compare their
    next elements). The whole item is what get() returns."""

    __slots__ = ()
    _kind = _rill.QUEUE_PRIORITY


def wrap_queue(address, loop=None):
    """A rill.Queue over the rill_queue* at address (an int) made elsewhere
    (a C or C++ host), retained by the returned object: a Queue, LifoQueue
    or PriorityQueue after the queue's kind. loop: the Python loop of the
    queue's rill_loop, found by itself when omitted."""
    return _rill._wrap_queue((Queue, LifoQueue, PriorityQueue), address, loop)


_wrap_queue = wrap_queue


def create_task(coro, *, name=None, context=None):
    """Schedule coro on the running loop; it starts in the next iteration."""
    return get_running_loop().create_task(coro, name=name, context=context)


def all_tasks(loop=None):
    """The set of the loop's pending tasks."""
    if loop is None:
        loop = get_running_loop()
    return set(loop._tasks())


def run(main, *, debug=None):
    """Run the coroutine main on a new loop and return its result
    (asyncio.run): then every task left is cancelled and run down, and the
    loop is closed. Ctrl+C cancels main and raises KeyboardInterrupt."""
    if _rill._get_running_loop() is not None:
        raise RuntimeError("rill.run() cannot be called from a running event loop")
    if not iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        if debug is not None:
            loop.set_debug(debug)
        task = loop.create_task(main)
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            if task.done():
                raise
            # First Ctrl+C: cancel main, let it clean up, then re-raise.
            task.cancel()
            try:
                loop.run_until_complete(task)
            except CancelledError:
                pass
            raise
    finally:
        try:
            loop._shutdown()  # cancel what is left, run it down (rill_loop_shutdown)
        finally:
            loop.close()


# ---------------------------------------------------------------- timeouts


async def wait_for(aw, timeout):
    """Await aw with a deadline: on expiry aw is cancelled, awaited, and
    TimeoutError raised (rill_wait_for)."""
    if timeout is None:
        return await aw
    return await _rill._wait_for(aw, timeout)


class Timeout:
    """An async context manager cancelling its task at a deadline
    (asyncio.Timeout, on rill_timeout)."""

    def __init__(self, when):
        self._when = when
        self._scope = None
        self._task = None

    def when(self):
        return self._when

    def reschedule(self, when):
        self._when = when
        if self._scope is not None:
            loop = get_running_loop()
            self._scope.reschedule(None if when is None else when - loop.time())

    def expired(self):
        return self._scope is not None and self._scope.expired()

    def __repr__(self):
        return f"<rill.Timeout when={self._when} expired={self.expired()}>"

    async def __aenter__(self):
        task = current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        loop = get_running_loop()
        delay = None if self._when is None else self._when - loop.time()
        self._task = task
        self._scope = _rill._TimeoutScope(task, delay)
        return self

    async def __aexit__(self, exc_type, exc, tb):
        if exc_type is None:
            rc = 0
        elif issubclass(exc_type, CancelledError):
            rc = _rill.ECANCELLED
        else:
            rc = _rill.EEXCEPTION
        if self._scope.exit(rc) == _rill.ETIMEDOUT:
            raise TimeoutError from exc
        return None


def timeout(delay):
    """async with rill.timeout(delay): ... (None: no deadline)."""
    when = None if delay is None else get_running_loop().time() + delay
    return Timeout(when)


def timeout_at(when):
    """async with rill.timeout_at(loop.time() + d): ..."""
    return Timeout(when)


# ---------------------------------------------------------------- wait


def _futures_of(fs, who):
    if isinstance(fs, (Future, types.CoroutineType)) or iscoroutine(fs):
        raise TypeError(f"expect a list of futures, not {type(fs).__name__}")
    fs = set(fs)
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if any(iscoroutine(f) for f in fs):
        raise TypeError(f"Passing coroutines is forbidden, use tasks explicitly ({who}).")
    return {ensure_future(f) for f in fs}


async def wait(fs, *, timeout=None, return_when=ALL_COMPLETED):
    """Wait for the futures/tasks fs; returns (done, pending). On timeout it
    neither raises nor cancels."""
    if return_when not in _WAIT_MODES:
        raise ValueError(f"Invalid return_when value: {return_when}")
    fs = _futures_of(fs, "wait")
    await _rill._wait(list(fs), _WAIT_MODES[return_when], timeout)
    done = {f for f in fs if f.done()}
    return done, fs - done


def as_completed(fs, *, timeout=None):
    """An iterator of awaitables giving the results in completion order;
    TimeoutError from the one waiting when timeout passes."""
    if isinstance(fs, Future) or iscoroutine(fs):
        raise TypeError(f"expect an iterable of futures, not {type(fs).__name__}")
    loop = get_running_loop()
    todo = {ensure_future(f) for f in set(fs)}
    done = collections.deque()
    waiter = [None]
    timeout_handle = None

    def _wake():
        if waiter[0] is not None and not waiter[0].done():
            waiter[0].set_result(None)

    def _on_timeout():
        for f in todo:
            f.remove_done_callback(_on_completion)
        done.append(None)  # the sentinel: TimeoutError
        todo.clear()
        _wake()

    def _on_completion(f):
        if not todo:
            return
        todo.discard(f)
        done.append(f)
        if not todo and timeout_handle is not None:
            timeout_handle.cancel()
        _wake()

    async def _wait_for_one():
        while not done:
            waiter[0] = loop.create_future()
            await waiter[0]
        f = done.popleft()
        if f is None:
            raise TimeoutError
        return f.result()

    for f in todo:
        f.add_done_callback(_on_completion)
    if todo and timeout is not None:
        timeout_handle = loop.call_later(timeout, _on_timeout)
    for _ in range(len(todo)):
        yield _wait_for_one()


# ---------------------------------------------------------------- TaskGroup


class TaskGroup:
    """async with rill.TaskGroup() as tg: tg.create_task(...) — the first
    child failure cancels the others and the body; errors are raised
    together as an ExceptionGroup (rill_group)."""

    def __init__(self):
        self._group = None
        self._entered = False
        self._exited = False

    def __repr__(self):
        state = "exited" if self._exited else "entered" if self._entered else "new"
        return f"<rill.TaskGroup {state}>"

    async def __aenter__(self):
        if self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has already been entered")
        parent = current_task()
        if parent is None:
            raise RuntimeError(f"TaskGroup {self!r} cannot determine the parent task")
        self._entered = True
        self._loop = get_running_loop()
        self._group = _rill._Group(self._loop, parent)
        return self

    def create_task(self, coro, *, name=None, context=None):
        if not self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has not been entered")
        if self._exited:
            coro.close()
            raise RuntimeError(f"TaskGroup {self!r} is finished")
        task = self._loop.create_task(coro, name=name, context=context)
        try:
            self._group.add(task)
        except RuntimeError as e:  # the core cancelled the task: its body never runs
            raise RuntimeError(f"TaskGroup {self!r} {str(e).replace('the task group ', '')}") from None
        return task

    async def __aexit__(self, et, exc, tb):
        body_error = None
        if et is None:
            body_rc = 0
        elif issubclass(et, CancelledError):
            body_rc = _rill.ECANCELLED
        else:
            body_rc = _rill.EEXCEPTION
            body_error = exc
        # The core's TaskGroup.__aexit__ (rill_group_exit): awaited once.
        exiting = self._group.exit(body_rc)
        try:
            await exiting
            await_rc = 0
        except CancelledError:
            await_rc = _rill.ECANCELLED
        rc, errors = self._group.result(await_rc, body_error)
        self._exited = True
        if rc == _rill.EGROUP:
            for e in errors:
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise e
            raise BaseExceptionGroup("unhandled errors in a TaskGroup", errors) from None
        if rc == _rill.ECANCELLED:
            if et is not None and issubclass(et, CancelledError):
                return None  # the body's own CancelledError propagates
            raise CancelledError
        if et is not None and issubclass(et, CancelledError):
            return True  # the group's own cancel of the body: swallowed
        return None


# ------------------------------------------------- streams, threads, processes
# asyncio's streams, servers, to_thread and subprocesses on the core's
# streams, listeners, thread pool and processes (rill/streams.py,
# bindings/python/src/io.c).
from .streams import (  # noqa: E402,F401
    IncompleteReadError,
    LimitOverrunError,
    Server,
    StreamReader,
    StreamWriter,
    create_subprocess_exec,
    create_subprocess_shell,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
    to_thread,
)
