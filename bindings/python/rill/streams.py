"""asyncio's streams, servers, to_thread and subprocesses on the core.

StreamReader/StreamWriter are two faces of one core stream (rill_stream,
bindings/python/src/io.c): the buffer, the read limit, readuntil's limit
rule, the write watermarks, EOF and closing are the core's. The methods that
are coroutines in asyncio return an awaitable (_rill._IOWait) that starts
the core's operation when first awaited: await it, or give it to
create_task/gather/wait_for as a coroutine.
"""
import contextvars
import functools
import os
import socket
import stat

from . import _rill
from asyncio import IncompleteReadError, LimitOverrunError  # noqa: F401
from asyncio.subprocess import DEVNULL, PIPE, STDOUT

_DEFAULT_LIMIT = 2 ** 16  # asyncio.streams._DEFAULT_LIMIT

__all__ = [
    "StreamReader", "StreamWriter", "Server", "open_connection", "start_server",
    "open_unix_connection", "start_unix_server", "to_thread", "create_subprocess_exec",
    "create_subprocess_shell", "Process", "IncompleteReadError", "LimitOverrunError",
]


def _address(text, unix):
    """The core's address text as asyncio's get_extra_info gives it."""
    if text is None:
        return None
    if unix:
        return text
    host, _, port = text.rpartition(":")
    if host.startswith("["):
        return (host[1:-1], int(port), 0, 0)
    return (host, int(port)) if host else text


class StreamReader:
    """asyncio.StreamReader over a core stream.

    read(n=-1): up to n bytes (b'' at EOF); n < 0: everything to EOF.
    readexactly(n): exactly n bytes; IncompleteReadError (with .partial) at
    an early EOF. Both are the core stream's own methods (no Python frame).
    """

    __slots__ = ("_s", "_limit", "read", "readexactly", "__weakref__")

    def __init__(self, stream, limit=_DEFAULT_LIMIT):
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._s = stream
        self._limit = limit
        stream.set_read_limit(limit)
        self.read = stream.read
        self.readexactly = stream.readexactly

    def readuntil(self, separator=b"\n"):
        """Bytes up to and including separator. LimitOverrunError when the
        limit passes without it (the data stays readable);
        IncompleteReadError with the partial data at EOF."""
        return self._s.readuntil(separator, self._limit)

    async def readline(self):
        """A line with its b'\\n'; the partial line at EOF; ValueError (and
        the line dropped) past the limit, as asyncio."""
        try:
            return await self._s.readuntil(b"\n", self._limit)
        except IncompleteReadError as e:
            return e.partial
        except LimitOverrunError as e:
            data = self._s.buffered()
            if data.startswith(b"\n", e.consumed):
                self._s.consume(e.consumed + 1)
            else:
                self._s.consume(len(data))
            raise ValueError(e.args[0])

    def at_eof(self):
        return self._s.at_eof()

    def exception(self):
        return None

    def __aiter__(self):
        return self

    async def __anext__(self):
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line

    def __repr__(self):
        return f"<rill.StreamReader limit={self._limit}>"


class StreamWriter:
    """asyncio.StreamWriter over a core stream.

    write(data): buffers data (the core sends what it can at once); silent
    once closing or lost, as asyncio's transport; drain() reports it.
    drain(): waits while the write buffer is above the high watermark; on a
    closing writer, ConnectionResetError('Connection lost') once closed, as
    asyncio. Both are the core stream's own methods (no Python frame).
    """

    __slots__ = ("_s", "_reader", "_unix", "_extra", "write", "drain", "__weakref__")

    def __init__(self, stream, reader=None, unix=False, extra=None):
        self._s = stream
        self._reader = reader
        self._unix = unix
        self._extra = extra
        self.write = stream.write
        self.drain = stream.drain

    @property
    def transport(self):
        return self

    def writelines(self, data):
        self._s.write(b"".join(data))

    def can_write_eof(self):
        return True

    def write_eof(self):
        self._s.write_eof()

    def close(self):
        self._s.close()

    def is_closing(self):
        return self._s.is_closing()

    def wait_closed(self):
        return self._s.wait_closed()

    def abort(self):
        self._s.abort()

    def get_write_buffer_size(self):
        return self._s.write_buffered()

    def get_extra_info(self, name, default=None):
        if name == "peername":
            value = _address(self._s.name(True), self._unix)
        elif name == "sockname":
            value = _address(self._s.name(False), self._unix)
        elif name == "socket":
            value = _SocketView(self._s.fileno(), socket.AF_UNIX if self._unix else None)
        elif self._extra and name in self._extra:
            value = self._extra[name]
        else:
            value = None
        return default if value is None else value

    def get_extra_info_fileno(self):
        return self._s.fileno()

    def __repr__(self):
        return f"<rill.StreamWriter peer={self.get_extra_info('peername')!r}>"


class _SocketView:
    """A read-only view of a socket the core owns (asyncio's TransportSocket):
    getsockname, getpeername, fileno, family; never closes it."""

    __slots__ = ("_fd", "_family")

    def __init__(self, fd, family=None):
        self._fd = fd
        self._family = family

    def _call(self, name, *args):
        s = socket.socket(fileno=self._fd)
        try:
            return getattr(s, name)(*args)
        finally:
            s.detach()

    def fileno(self):
        return self._fd

    @property
    def family(self):
        return self._family if self._family is not None else self._call("__getattribute__", "family")

    def getsockname(self):
        return self._call("getsockname")

    def getpeername(self):
        return self._call("getpeername")

    def getsockopt(self, *args):
        return self._call("getsockopt", *args)

    def __repr__(self):
        return f"<rill socket fd={self._fd}>"


def _pair(stream, limit, unix=False):
    reader = StreamReader(stream, limit)
    return reader, StreamWriter(stream, reader, unix)


def _no_ssl(kwds):
    for key in ("ssl", "ssl_handshake_timeout", "ssl_shutdown_timeout", "server_hostname"):
        if kwds.pop(key, None) is not None:
            raise NotImplementedError(f"rill streams: {key}= is not supported yet (issue 12)")


async def open_connection(host=None, port=None, *, limit=_DEFAULT_LIMIT, **kwds):
    """(reader, writer) of a TCP connection to host:port (a numeric address,
    a comma-separated list of them, or a name resolved on the core's pool)."""
    _no_ssl(kwds)
    kwds.pop("family", None)
    kwds.pop("happy_eyeballs_delay", None)
    if kwds:
        raise TypeError(f"open_connection() got unexpected keyword arguments {sorted(kwds)}")
    if port is None:
        raise ValueError("port is required")
    stream = await _rill._tcp_connect(host, port)
    return _pair(stream, limit)


async def open_unix_connection(path=None, *, limit=_DEFAULT_LIMIT, **kwds):
    """(reader, writer) of a connection to the Unix socket at path."""
    _no_ssl(kwds)
    if kwds:
        raise TypeError(f"open_unix_connection() got unexpected keyword arguments {sorted(kwds)}")
    stream = await _rill._unix_connect(path)
    return _pair(stream, limit, unix=True)


class Server:
    """asyncio.Server over a core listener: close() stops accepting and
    leaves live connections alone; wait_closed() waits for the listener and
    every connection it accepted to close (asyncio 3.12's rule)."""

    def __init__(self, cb, limit, unix):
        self._cb = cb
        self._limit = limit
        self._unix = unix
        self._listener = None
        self._closed = False
        self._forever = None
        self._loop = _rill.get_running_loop()

    def _serving(self, listener):
        self._listener = listener
        servers = getattr(self._loop, "_servers", None)
        if servers is None:
            servers = self._loop._servers = set()
        servers.add(self)

    def _on_accept(self, stream):
        reader, writer = _pair(stream, self._limit, self._unix)
        res = self._cb(reader, writer)
        if _rill_iscoroutine(res):
            self._loop.create_task(res)

    def get_loop(self):
        return self._loop

    def is_serving(self):
        return not self._closed

    @property
    def sockets(self):
        if self._closed:
            return ()
        return (_SocketView(self._listener.fileno(), socket.AF_UNIX if self._unix else None),)

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._listener.close()
        getattr(self._loop, "_servers", set()).discard(self)
        if self._forever is not None and not self._forever.done():
            self._forever.cancel()

    def wait_closed(self):
        return self._listener.wait_closed()

    async def start_serving(self):
        pass  # serving from start_server on

    async def serve_forever(self):
        if self._forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        self._forever = self._loop.create_future()
        try:
            await self._forever
        finally:
            self.close()
            self._forever = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()

    def __repr__(self):
        return f"<rill.Server sockets={self.sockets!r}>"


def _rill_iscoroutine(obj):
    from . import iscoroutine
    return iscoroutine(obj)


async def start_server(client_connected_cb, host=None, port=None, *, limit=_DEFAULT_LIMIT,
                       backlog=100, reuse_address=None, reuse_port=None, **kwds):
    """A Server accepting on host:port (a numeric address; None: every IPv4
    interface), calling client_connected_cb(reader, writer) per connection
    (a coroutine result becomes a task)."""
    _no_ssl(kwds)
    kwds.pop("family", None)
    kwds.pop("flags", None)
    kwds.pop("start_serving", None)
    if kwds:
        raise TypeError(f"start_server() got unexpected keyword arguments {sorted(kwds)}")
    if not callable(client_connected_cb):
        raise TypeError("client_connected_cb must be callable")
    server = Server(client_connected_cb, limit, False)
    server._serving(_rill._listen("0.0.0.0" if host is None else host, port or 0, backlog,
                                  bool(reuse_port), server._on_accept))
    return server


async def start_unix_server(client_connected_cb, path=None, *, limit=_DEFAULT_LIMIT,
                            backlog=100, **kwds):
    """A Server on the Unix socket path (a stale socket file there is
    removed first, as asyncio does)."""
    _no_ssl(kwds)
    kwds.pop("start_serving", None)
    if kwds:
        raise TypeError(f"start_unix_server() got unexpected keyword arguments {sorted(kwds)}")
    if not callable(client_connected_cb):
        raise TypeError("client_connected_cb must be callable")
    path = os.fspath(path)
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    server = Server(client_connected_cb, limit, True)
    server._serving(_rill._listen_unix(path, backlog, server._on_accept))
    return server


# ------------------------------------------------------------------ to_thread

async def to_thread(func, /, *args, **kwargs):
    """func(*args, **kwargs) on the core's thread pool, in a copy of the
    current contextvars. The loop does not hold the GIL while it waits for
    I/O, so the thread runs; func itself holds the GIL as any Python code.
    Cancelling the await before the job started means it never runs; once
    started it runs to its end and its result is dropped (as asyncio)."""
    ctx = contextvars.copy_context()
    return await _rill._run_in_thread(functools.partial(ctx.run, func, *args, **kwargs))


# ------------------------------------------------------------------ processes

_MODES = {None: _rill.STDIO_INHERIT, PIPE: _rill.STDIO_PIPE, DEVNULL: _rill.STDIO_DEVNULL,
          STDOUT: _rill.STDIO_STDOUT}


def _mode(value, name):
    try:
        mode = _MODES[value]
    except (KeyError, TypeError):
        raise ValueError(f"rill: {name}= takes None, PIPE, DEVNULL"
                         f"{' or STDOUT' if name == 'stderr' else ''}, not {value!r}") from None
    if mode == _rill.STDIO_STDOUT and name != "stderr":
        raise ValueError("STDOUT can only be used for stderr")
    return mode


class Process:
    """asyncio.subprocess.Process over a core process."""

    def __init__(self, proc, modes, limit):
        self._proc = proc
        self.stdin = StreamWriter(proc.stream(0)) if modes[0] == _rill.STDIO_PIPE else None
        self.stdout = StreamReader(proc.stream(1), limit) if modes[1] == _rill.STDIO_PIPE else None
        self.stderr = StreamReader(proc.stream(2), limit) if modes[2] == _rill.STDIO_PIPE else None

    @property
    def pid(self):
        return self._proc.pid

    @property
    def returncode(self):
        return self._proc.returncode

    def wait(self):
        """The exit status once the child ended (-N: killed by signal N)."""
        return self._proc.wait()

    def send_signal(self, signal):
        self._proc.send_signal(signal)

    def terminate(self):
        self._proc.send_signal(15)

    def kill(self):
        self._proc.send_signal(9)

    async def _feed_stdin(self, input):
        try:
            if input:
                self.stdin.write(input)
                await self.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.stdin.close()

    async def communicate(self, input=None):
        """Writes input, closes stdin, reads stdout and stderr to EOF, waits
        for the exit: (stdout, stderr), None for one not piped."""
        from . import gather

        async def nothing():
            return None

        if self.stdin is not None:
            stdin = self._feed_stdin(input)
        elif input is not None:
            raise ValueError("communicate(input) needs stdin=PIPE")
        else:
            stdin = nothing()
        stdout = self.stdout.read() if self.stdout is not None else nothing()
        stderr = self.stderr.read() if self.stderr is not None else nothing()
        _, out, err = await gather(stdin, stdout, stderr)
        await self.wait()
        return out, err

    def __repr__(self):
        return f"<rill.Process {self.pid}>"


def _env_list(env):
    if env is None:
        return None
    return [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]


async def create_subprocess_exec(program, *args, stdin=None, stdout=None, stderr=None,
                                 limit=_DEFAULT_LIMIT, cwd=None, env=None, **kwds):
    """Starts program with args (asyncio.create_subprocess_exec): stdio
    None (inherited), PIPE, DEVNULL, or STDOUT for stderr."""
    kwds.pop("close_fds", None)
    if kwds:
        raise TypeError(f"create_subprocess_exec() got unsupported arguments {sorted(kwds)}")
    argv = [os.fsencode(a) for a in (program, *args)]
    modes = (_mode(stdin, "stdin"), _mode(stdout, "stdout"), _mode(stderr, "stderr"))
    proc = _rill._spawn(argv, _env_list(env), None if cwd is None else os.fsencode(cwd), modes)
    return Process(proc, modes, limit)


async def create_subprocess_shell(cmd, stdin=None, stdout=None, stderr=None,
                                  limit=_DEFAULT_LIMIT, **kwds):
    """cmd run by /bin/sh -c (asyncio.create_subprocess_shell)."""
    if not isinstance(cmd, (str, bytes)):
        raise ValueError("cmd must be a string")
    return await create_subprocess_exec("/bin/sh", "-c", cmd, stdin=stdin, stdout=stdout,
                                        stderr=stderr, limit=limit, **kwds)
