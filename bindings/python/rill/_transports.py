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
policy's child watcher. It is the correct path, not the fast one: a rill
stream (rill.open_connection, rill.start_server) skips the Python transport
layer.
"""
import selectors
import weakref

from asyncio import base_events as _base
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
        "_make_socket_transport", "_make_ssl_transport", "_make_datagram_transport",
        "_start_serving", "_accept_connection", "_accept_connection2",
        "_ensure_fd_no_transport", "_sendfile_native"))
    locals().update(_borrow(
        _unix._UnixSelectorEventLoop,
        "create_unix_connection", "create_unix_server", "_make_read_pipe_transport",
        "_make_write_pipe_transport", "_make_subprocess_transport", "_child_watcher_callback",
        "_sock_sendfile_native", "_sock_sendfile_native_impl",
        "_sock_add_cancellation_callback", "_sock_sendfile_update_filepos"))

    @property
    def _transports(self):
        t = self.__dict__.get("_transports_by_fd")
        if t is None:
            t = self.__dict__["_transports_by_fd"] = weakref.WeakValueDictionary()
        return t

    @property
    def _selector(self):
        s = self.__dict__.get("_watched")
        if s is None:
            s = self.__dict__["_watched"] = _WatchedFds()
        return s

    @property
    def _debug(self):
        return self.get_debug()

    # The watchers the transports use: the core's, as add_reader's (which,
    # as asyncio's, refuses an fd a transport owns: these skip that check).
    def _add_reader(self, fd, callback, *args):
        self._check_closed()
        _rill._fd_add(self, fd, False, callback, args)
        ev = self._selector.events
        ev[fd] = ev.get(fd, 0) | selectors.EVENT_READ

    def _remove_reader(self, fd):
        ev = self._selector.events
        ev[fd] = ev.get(fd, 0) & ~selectors.EVENT_READ
        if not ev[fd]:
            del ev[fd]
        return not self.is_closed() and _rill._fd_remove(self, fd, False)

    def _add_writer(self, fd, callback, *args):
        self._check_closed()
        _rill._fd_add(self, fd, True, callback, args)
        ev = self._selector.events
        ev[fd] = ev.get(fd, 0) | selectors.EVENT_WRITE

    def _remove_writer(self, fd):
        ev = self._selector.events
        ev[fd] = ev.get(fd, 0) & ~selectors.EVENT_WRITE
        if not ev[fd]:
            del ev[fd]
        return not self.is_closed() and _rill._fd_remove(self, fd, True)

    def _stop_serving(self, sock):
        self._remove_reader(sock.fileno())
        sock.close()
