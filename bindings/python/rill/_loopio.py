"""asyncio's low-level loop I/O on rill.EventLoop (issue 12, second slice).

add_reader/add_writer are the core's persistent fd watchers
(rill_fd_add_reader/_writer), the sock_* methods try the socket call and
wait with the core's rill_fd_wait when it would block (as asyncio's
selector loop does), getaddrinfo/getnameinfo and run_in_executor(None, ...)
run on the core's thread pool (as rill.to_thread), add_signal_handler is
the core's per-loop signal watcher. Transports, protocols, servers, SSL,
datagram endpoints, pipes and subprocesses are in _transports.py.
"""
import concurrent.futures
import functools
import socket
import threading

import asyncio.exceptions as _aio_exceptions
import asyncio.futures as _aio_futures

from . import _rill

_READABLE = 1
_WRITABLE = 2


def _fileobj_to_fd(fileobj):
    """asyncio's selectors._fileobj_to_fd: an int or an object with fileno()."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _check_callback(callback, method):
    from . import iscoroutine

    if iscoroutine(callback) or _iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")


def _iscoroutinefunction(fn):
    import inspect

    return inspect.iscoroutinefunction(fn)


async def _run_on_pool(func, args):
    try:
        return await _rill._run_in_thread(functools.partial(func, *args))
    except (concurrent.futures.CancelledError, concurrent.futures.InvalidStateError) as exc:
        # asyncio's wrap_future converts these (futures._convert_future_exc):
        # a thread waiting on a cancelled concurrent future (as
        # run_coroutine_threadsafe's caller) raises asyncio's CancelledError.
        if type(exc) is concurrent.futures.CancelledError:
            raise _aio_exceptions.CancelledError(*exc.args) from None
        if type(exc) is concurrent.futures.InvalidStateError:
            raise _aio_exceptions.InvalidStateError(*exc.args) from None
        raise


def _check_nonblocking(sock):
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


def _adopt_foreign(fut):
    """A rill.Future following fut (an asyncio future of a rill loop, as
    asyncio.gather and asyncio.wrap_future make): a rill task awaits this
    instead; cancelling it cancels fut."""
    try:
        get_loop = fut.get_loop
    except AttributeError:  # asyncio's tasks read fut._loop then (futures._get_loop)
        loop = fut._loop
    else:
        loop = get_loop()
    if not isinstance(loop, _rill.LoopBase):
        raise RuntimeError(
            f"rill task got a foreign future {fut!r}: futures of another event loop "
            "(e.g. asyncio's) cannot be awaited in a rill task")
    if loop is not _rill._get_running_loop():
        raise RuntimeError(f"Task got Future {fut!r} attached to a different loop")
    rf = loop.create_future()

    def to_foreign(r):
        if r.cancelled() and not fut.done():
            fut.cancel()

    rf.add_done_callback(to_foreign)
    fut.add_done_callback(_FromForeign(rf))
    return rf


class _FromForeign:
    """The asyncio future's done callback: gives its outcome to rf. The
    loop's call_soon runs it at once (an asyncio future schedules its
    callbacks with call_soon), so the task waiting on rf steps where
    asyncio's task would, not an iteration later."""

    __slots__ = ("rf",)

    def __init__(self, rf):
        self.rf = rf

    def __call__(self, f):
        rf = self.rf
        if rf.done():
            return
        if f.cancelled():
            rf.cancel()
            return
        exc = f.exception()
        if exc is None:
            rf.set_result(f.result())
        else:
            rf.set_exception(exc)


_rill._set_foreign_helper(_adopt_foreign)
_rill._set_foreign_wake_type(_FromForeign)


class LoopIOMixin:
    """The I/O half of rill.EventLoop's asyncio API."""

    # ------------------------------------------------------------ fd watchers
    def _check_closed(self):
        if self.is_closed():
            raise RuntimeError("Event loop is closed")

    def add_reader(self, fd, callback, *args):
        """Calls callback(*args) whenever fd is readable, until remove_reader."""
        self._check_closed()
        _check_callback(callback, "add_reader")
        self._ensure_fd_no_transport(fd)
        _rill._fd_add(self, _fileobj_to_fd(fd), False, callback, args)

    def remove_reader(self, fd):
        """True if a reader of fd was registered (and is now removed)."""
        if self.is_closed():
            return False
        self._ensure_fd_no_transport(fd)
        return _rill._fd_remove(self, _fileobj_to_fd(fd), False)

    def add_writer(self, fd, callback, *args):
        """Calls callback(*args) whenever fd is writable, until remove_writer."""
        self._check_closed()
        _check_callback(callback, "add_writer")
        self._ensure_fd_no_transport(fd)
        _rill._fd_add(self, _fileobj_to_fd(fd), True, callback, args)

    def remove_writer(self, fd):
        if self.is_closed():
            return False
        self._ensure_fd_no_transport(fd)
        return _rill._fd_remove(self, _fileobj_to_fd(fd), True)

    async def _wait_fd(self, sock, events):
        await _rill._fd_wait(self, sock.fileno(), events)

    # ----------------------------------------------------------- sock_* calls
    async def sock_recv(self, sock, n):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        while True:
            try:
                return sock.recv(n)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _READABLE)

    async def sock_recv_into(self, sock, buf):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        while True:
            try:
                return sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _READABLE)

    async def sock_recvfrom(self, sock, bufsize):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        while True:
            try:
                return sock.recvfrom(bufsize)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _READABLE)

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        if not nbytes:
            nbytes = len(buf)
        while True:
            try:
                return sock.recvfrom_into(buf, nbytes)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _READABLE)

    async def sock_sendall(self, sock, data):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        view = memoryview(data).cast("B")
        total = len(view)
        sent = 0
        while sent < total:
            try:
                sent += sock.send(view[sent:])
                continue
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _WRITABLE)

    async def sock_sendto(self, sock, data, address):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        while True:
            try:
                return sock.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _WRITABLE)

    async def sock_connect(self, sock, address):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio's: a numeric address resolves without the thread pool,
            # so connect() is called in the task's first step.
            infos = await self._ensure_resolved(address, family=sock.family, type=sock.type,
                                                proto=sock.proto, loop=self)
            address = infos[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            await self._wait_fd(sock, _WRITABLE)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                return
            if err not in (11, 115, 4):  # EAGAIN, EINPROGRESS, EINTR
                raise OSError(err, f"Connect call failed {address}")

    async def sock_accept(self, sock):
        _check_nonblocking(sock)
        self._ensure_fd_no_transport(sock)
        while True:
            try:
                conn, address = sock.accept()
                conn.setblocking(False)
                return conn, address
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock, _READABLE)

    # ------------------------------------------------- names and executors
    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        return await self.run_in_executor(None, socket.getaddrinfo, host, port,
                                          family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    def run_in_executor(self, executor, func, *args):
        """A future of func(*args): on the core's thread pool (executor None
        and no default set), else on executor (asyncio's wrap_future)."""
        self._check_closed()
        if _iscoroutinefunction(func):
            raise TypeError("coroutines cannot be used with run_in_executor()")
        if executor is None:
            executor = getattr(self, "_default_executor", None)
        if executor is None:
            return self.create_task(_run_on_pool(func, args))
        return _aio_futures.wrap_future(executor.submit(func, *args), loop=self)

    async def shutdown_default_executor(self):
        executor = getattr(self, "_default_executor", None)
        if executor is not None:
            self._default_executor = None
            await self.run_in_executor(None, executor.shutdown, True)

    # ----------------------------------------------------------------- signals
    def add_signal_handler(self, sig, callback, *args):
        import signal

        _check_callback(callback, "add_signal_handler")
        self._check_signal(sig)
        self._check_closed()
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        handlers = self.__dict__.setdefault("_signal_handlers", {})
        old = handlers.pop(sig, None)
        if old is not None:
            _rill._signal_stop(old)
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise RuntimeError(f"sig {sig:d} cannot be caught")
        handlers[sig] = _rill._signal_add(self, sig, callback, args)

    def remove_signal_handler(self, sig):
        self._check_signal(sig)
        handlers = self.__dict__.get("_signal_handlers") or {}
        cap = handlers.pop(sig, None)
        if cap is None:
            return False
        _rill._signal_stop(cap)
        return True

    def _check_signal(self, sig):
        import signal

        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"sig {sig} out of range(1, {signal.NSIG})")
