"""asyncio's transports and protocols on rill.EventLoop (issue 12, third slice).

create_connection, create_server, create_unix_connection/server,
connect_accepted_socket, create_datagram_endpoint, connect_read/write_pipe,
subprocess_exec/shell, sendfile, sock_sendfile and start_tls are asyncio's
own code (base_events, selector_events, unix_events: the same functions
asyncio's selector loop runs, with their argument checks and messages),
driven by rill's fd watchers instead of a selector: the loop's _add_reader/
_add_writer are the core's persistent watchers (rill_fd_add_reader/_writer).
So these behave as asyncio's do, transports are asyncio.Transport
instances, SSL is asyncio's sslproto over them, subprocesses use the
policy's child watcher.

The socket transport of TCP and Unix stream sockets (plain, or under
asyncio's SSLProtocol) is _SocketTransport below: asyncio's
_SelectorSocketTransport's behaviour in C (src/transport.c) on the core's
stream. RILL_PY_TRANSPORT=asyncio uses asyncio's own transport instead.
"""
import os
import selectors
import socket
import warnings
import weakref

from asyncio import base_events as _base
from asyncio import constants as _constants
from asyncio import futures as _futures
from asyncio import protocols as _protocols
from asyncio import sslproto as _sslproto
from asyncio import transports as _aio_transports
from asyncio import trsock as _trsock
from asyncio import selector_events as _sel
from asyncio import unix_events as _unix

from . import _rill


class _WatchedFds:
    """What asyncio's transports ask a selector (get_key(fd).events, in
    their repr): the fds this loop's _add_reader/_add_writer watch."""

    def __init__(self):
        self.events = {}

    def get_key(self, fd):
        events = self.events.get(fd)
        if not events:
            raise KeyError(fd)
        return selectors.SelectorKey(fd, fd, events, None)

    def get_map(self):
        return {fd: self.get_key(fd) for fd, ev in self.events.items() if ev}


# RILL_PY_TRANSPORT=asyncio: asyncio's own _SelectorSocketTransport for
# every socket (the borrowed path; for comparison and as a fallback).
_C_TRANSPORT = os.environ.get("RILL_PY_TRANSPORT", "rill") != "asyncio"


class _SocketTransport(_rill._socket_transport_base(_aio_transports._FlowControlMixin,
                                                     _protocols.BufferedProtocol)):
    """asyncio's socket transport (selector_events._SelectorSocketTransport's
    behaviour) on the core's stream: reading, writing, watermarks,
    half-close and closing are _rill._SocketTransportBase (transport.c);
    this class holds the rare parts: extra info, repr, __del__, the
    connection_lost cleanup. TCP and Unix stream sockets, plain (SSL is
    asyncio's SSLProtocol over a plain transport)."""

    _start_tls_compatible = True
    _sendfile_compatible = _constants._SendfileMode.TRY_NATIVE
    _sock = None
    _server = None

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        if extra is None:
            extra = {}
        self._extra = extra
        extra["socket"] = _trsock.TransportSocket(sock)
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        if "peername" not in extra:
            try:
                extra["peername"] = sock.getpeername()
            except OSError:
                extra["peername"] = None
        self._start(loop, sock.fileno(), protocol)
        self._sock = sock
        self._server = server
        if server is not None:
            server._attach()
        loop._transports[self._sock_fd] = self
        loop.call_soon(protocol.connection_made, self)
        if waiter is not None:
            loop.call_soon(_futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        if self._loop is not None and not self._loop.is_closed():
            info.append("read=polling" if self.is_reading() else "read=idle")
            info.append(f"write=<bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn=warnings.warn):
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    def _fatal_error(self, exc, message="Fatal error on transport"):
        if isinstance(exc, OSError):
            loop = self._loop
            if loop is not None and loop.get_debug():
                _base.logger.debug("%r: %s", self, message, exc_info=True)
        elif self._loop is not None:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._force_close(exc)

    # asyncio's native sendfile (selector_events._sendfile_native) waits
    # for an empty write buffer, then sends from the socket itself; write()
    # raises meanwhile.
    def _make_empty_waiter(self):
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = waiter = self._loop.create_future()
        if not self.get_write_buffer_size():
            waiter.set_result(None)
        else:
            self._flushed().add_done_callback(self._on_flushed)
        return waiter

    def _on_flushed(self, f):
        self._restore_watermarks()
        waiter = self._empty_waiter
        if waiter is None or waiter.done():
            return
        if f.cancelled() or f.exception() is not None:
            waiter.set_exception(ConnectionError("Connection is closed by peer"))
        else:
            waiter.set_result(None)

    def _reset_empty_waiter(self):
        self._empty_waiter = None

    def _call_connection_lost(self, exc):
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("Connection is closed by peer"))
        try:
            protocol = self._protocol
            if protocol is not None:
                protocol.connection_lost(exc)
        finally:
            sock = self._sock
            self._sock = None
            self._detach()
            if sock is not None:
                sock.close()
            server = self._server
            if server is not None:
                server._detach()
                self._server = None


def _c_transport_fits(sock):
    return (_C_TRANSPORT and sock.type == socket.SOCK_STREAM
            and sock.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX))


def _borrow(cls, *names):
    return {name: getattr(cls, name) for name in names}


class TransportsMixin:
    """The transport half of rill.EventLoop's asyncio API."""

    # asyncio's functions, run as this loop's methods.
    locals().update(_borrow(
        _base.BaseEventLoop,
        "create_connection", "_connect_sock", "_create_connection_transport",
        "sendfile", "_sendfile_fallback", "start_tls", "create_datagram_endpoint",
        "_ensure_resolved", "_create_server_getaddrinfo", "create_server",
        "connect_accepted_socket", "connect_read_pipe", "connect_write_pipe",
        "_log_subprocess", "subprocess_shell", "subprocess_exec",
        "sock_sendfile", "_sock_sendfile_fallback", "_check_sendfile_params"))
    locals().update(_borrow(
        _sel.BaseSelectorEventLoop,
         "_make_datagram_transport",
        "_start_serving", "_accept_connection", "_accept_connection2",
        "_ensure_fd_no_transport", "_sendfile_native"))
    locals().update(_borrow(
        _unix._UnixSelectorEventLoop,
        "create_unix_connection", "create_unix_server", "_make_read_pipe_transport",
        "_make_write_pipe_transport", "_make_subprocess_transport", "_child_watcher_callback",
        "_sock_sendfile_native", "_sock_sendfile_native_impl",
        "_sock_add_cancellation_callback", "_sock_sendfile_update_filepos"))

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        self._ensure_fd_no_transport(sock)
        if _c_transport_fits(sock):
            return _SocketTransport(self, sock, protocol, waiter, extra, server)
        return _sel._SelectorSocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *,
                            server_side=False, server_hostname=None, extra=None, server=None,
                            ssl_handshake_timeout=_constants.SSL_HANDSHAKE_TIMEOUT,
                            ssl_shutdown_timeout=_constants.SSL_SHUTDOWN_TIMEOUT):
        # asyncio's: its SSLProtocol over a plain transport (rill's when it fits)
        ssl_protocol = _sslproto.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        if _c_transport_fits(rawsock):
            _SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        else:
            _sel._SelectorSocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    @property
    def _transports(self):
        t = self.__dict__.get("_transports_by_fd")
        if t is None:
            t = self.__dict__["_transports_by_fd"] = weakref.WeakValueDictionary()
        return t

    def _watched_fds(self):
        s = self.__dict__.get("_watched")
        if s is None:
            s = self.__dict__["_watched"] = _WatchedFds()
        return s

    @property
    def _selector(self):
        # None once closed, as asyncio's loop drops its selector: a pipe
        # transport's repr then says "open" instead of asking it.
        return None if self.is_closed() else self._watched_fds()

    @property
    def _debug(self):
        return self.get_debug()

    # The watchers the transports use: the core's, as add_reader's (which,
    # as asyncio's, refuses an fd a transport owns: these skip that check).
    def _watch(self, fd, event, callback, args):
        self._check_closed()
        _rill._fd_add(self, fd, event == selectors.EVENT_WRITE, callback, args)
        ev = self._watched_fds().events
        ev[fd] = ev.get(fd, 0) | event

    def _unwatch(self, fd, event):
        ev = self._watched_fds().events
        ev[fd] = ev.get(fd, 0) & ~event
        if not ev[fd]:
            del ev[fd]
        return not self.is_closed() and _rill._fd_remove(self, fd, event == selectors.EVENT_WRITE)

    def _add_reader(self, fd, callback, *args):
        self._watch(fd, selectors.EVENT_READ, callback, args)

    def _remove_reader(self, fd):
        return self._unwatch(fd, selectors.EVENT_READ)

    def _add_writer(self, fd, callback, *args):
        self._watch(fd, selectors.EVENT_WRITE, callback, args)

    def _remove_writer(self, fd):
        return self._unwatch(fd, selectors.EVENT_WRITE)

    def _stop_serving(self, sock):
        self._remove_reader(sock.fileno())
        sock.close()
