"""asyncio's transports and protocols on the loop object: create_server and
create_connection (Protocol, BufferedProtocol, flow control), asyncio
streams over them, unix sockets, connect_accepted_socket, datagram
endpoints, pipes, subprocesses, sendfile, SSL and start_tls, and the
errors asyncio raises for bad arguments and a closed loop. One rule per
test; network on 127.0.0.1 only, bounded in time; every test checks that
no fd is left open once its loop is closed.

Runs against rill by default and against asyncio with RILL_TEST_IMPL=asyncio.
"""
import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

from common import aio, banner
from test_loop_io import LoopCase


def setUpModule():
    print(banner(), file=sys.stderr)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Collect(asyncio.Protocol):
    """Collects what it receives; `done` resolves at connection_lost."""

    def __init__(self, loop):
        self.data = bytearray()
        self.done = loop.create_future()
        self.made = loop.create_future()
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


class Transports(LoopCase):
    def serve(self, factory=Echo, **kw):
        server = self.run_bounded(self.loop.create_server(factory, "127.0.0.1", 0, **kw))
        return server, server.sockets[0].getsockname()[1]

    def close_server(self, server):
        server.close()
        self.run_bounded(server.wait_closed())

    def test_loop_is_the_implementations(self):
        self.assertIsInstance(self.loop, aio.EventLoop if hasattr(aio, "EventLoop")
                              else asyncio.AbstractEventLoop)

    def test_protocol_echo_through_create_server_and_create_connection(self):
        server, port = self.serve()

        async def main():
            tr, pr = await self.loop.create_connection(lambda: Collect(self.loop), "127.0.0.1", port)
            self.assertIsInstance(tr, asyncio.Transport)
            self.assertEqual(tr.get_extra_info("peername")[1], port)
            tr.write(b"hello ")
            tr.writelines([b"wor", b"ld"])
            while len(pr.data) < 11:
                await asyncio.sleep(0.01)
            tr.close()
            self.assertIsNone(await pr.done)
            return bytes(pr.data)

        self.assertEqual(self.run_bounded(main()), b"hello world")
        self.assertTrue(server.is_serving())
        self.close_server(server)
        self.assertFalse(server.is_serving())

    def test_server_sockets_serve_forever_and_close(self):
        server = self.run_bounded(self.loop.create_server(Echo, "127.0.0.1", 0, start_serving=False))
        self.assertFalse(server.is_serving())
        self.assertIs(server.get_loop(), self.loop)
        port = server.sockets[0].getsockname()[1]

        async def main():
            forever = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0)
            self.assertTrue(server.is_serving())
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"ping\n")
            line = await r.readline()
            w.close()
            await w.wait_closed()
            forever.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await forever
            return line

        self.assertEqual(self.run_bounded(main()), b"ping\n")
        self.assertFalse(server.is_serving())
        self.run_bounded(server.wait_closed())

    def test_asyncio_streams_echo_with_readexactly_and_eof(self):
        async def handle(reader, writer):
            data = await reader.read()  # to EOF
            writer.write(data[::-1])
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"abcdef")
            w.write_eof()
            self.assertEqual(await r.readexactly(6), b"fedcba")
            with self.assertRaises(asyncio.IncompleteReadError):
                await r.readexactly(1)
            w.close()
            await w.wait_closed()
            server.close()
            await server.wait_closed()

        self.run_bounded(main())

    def test_buffered_protocol_receives_into_its_buffer(self):
        server, port = self.serve()

        class Buffered(asyncio.BufferedProtocol):
            def __init__(self, loop):
                self.buf = bytearray(4)
                self.got = bytearray()
                self.done = loop.create_future()

            def connection_made(self, transport):
                self.transport = transport

            def get_buffer(self, sizehint):
                return self.buf

            def buffer_updated(self, nbytes):
                self.got += self.buf[:nbytes]
                if len(self.got) >= 10:
                    self.transport.close()

            def connection_lost(self, exc):
                self.done.set_result(bytes(self.got))

        async def main():
            tr, pr = await self.loop.create_connection(lambda: Buffered(self.loop), "127.0.0.1", port)
            tr.write(b"0123456789")
            return await pr.done

        self.assertEqual(self.run_bounded(main()), b"0123456789")
        self.close_server(server)

    def test_flow_control_pauses_and_resumes_writing(self):
        paused = []

        class Sink(asyncio.Protocol):
            def connection_made(self, transport):
                transport.pause_reading()  # the writer's buffer fills
                self.transport = transport

        sinks = []

        def sink():
            sinks.append(Sink())
            return sinks[-1]

        server, port = self.serve(sink)

        class Writer(Collect):
            def pause_writing(self):
                paused.append("pause")

            def resume_writing(self):
                paused.append("resume")

        async def main():
            tr, pr = await self.loop.create_connection(lambda: Writer(self.loop), "127.0.0.1", port)
            tr.set_write_buffer_limits(high=64 * 1024)
            self.assertEqual(tr.get_write_buffer_limits()[1], 64 * 1024)
            chunk = b"x" * 65536
            for _ in range(64):  # 4 MiB, more than the kernel's buffers take
                tr.write(chunk)
                if paused:
                    break
            self.assertEqual(paused, ["pause"])
            self.assertGreater(tr.get_write_buffer_size(), 0)
            while not sinks or not hasattr(sinks[0], "transport"):
                await asyncio.sleep(0.01)
            sinks[0].transport.resume_reading()
            while paused != ["pause", "resume"]:
                await asyncio.sleep(0.01)
            tr.close()
            await pr.done

        self.run_bounded(main())
        self.close_server(server)

    def test_unix_server_and_connection(self):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "s")

        async def main():
            server = await self.loop.create_unix_server(Echo, path)
            tr, pr = await self.loop.create_unix_connection(lambda: Collect(self.loop), path)
            tr.write(b"unix")
            while len(pr.data) < 4:
                await asyncio.sleep(0.01)
            tr.close()
            await pr.done
            server.close()
            await server.wait_closed()
            return bytes(pr.data)

        try:
            self.assertEqual(self.run_bounded(main()), b"unix")
        finally:
            shutil.rmtree(d)

    def test_connect_accepted_socket_wraps_a_connected_socket(self):
        a, b = socket.socketpair()
        self.socks.append(b)
        b.setblocking(False)

        async def main():
            tr, pr = await self.loop.connect_accepted_socket(lambda: Collect(self.loop), a)
            await self.loop.sock_sendall(b, b"accepted")
            while len(pr.data) < 8:
                await asyncio.sleep(0.01)
            tr.close()
            await pr.done
            return bytes(pr.data)

        self.assertEqual(self.run_bounded(main()), b"accepted")

    def test_datagram_endpoints_exchange_datagrams(self):
        async def main():
            class Upper(asyncio.DatagramProtocol):
                def connection_made(self, transport):
                    self.transport = transport

                def datagram_received(self, data, addr):
                    self.transport.sendto(data.upper(), addr)

            got = self.loop.create_future()

            class Client(asyncio.DatagramProtocol):
                def datagram_received(self, data, addr):
                    got.set_result(data)

            server, _ = await self.loop.create_datagram_endpoint(Upper, local_addr=("127.0.0.1", 0))
            addr = server.get_extra_info("sockname")
            client, _ = await self.loop.create_datagram_endpoint(Client, remote_addr=addr)
            client.sendto(b"udp")
            data = await got
            client.close()
            server.close()
            await asyncio.sleep(0)  # connection_lost runs in the next iteration
            return data

        self.assertEqual(self.run_bounded(main()), b"UDP")

    def test_read_and_write_pipes(self):
        r, w = os.pipe()

        async def main():
            rtr, rpr = await self.loop.connect_read_pipe(lambda: Collect(self.loop), os.fdopen(r, "rb", 0))
            wtr, _ = await self.loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
            wtr.write(b"through the pipe")
            wtr.close()
            await rpr.done
            self.assertTrue(rpr.eof)
            rtr.close()
            return bytes(rpr.data)

        self.assertEqual(self.run_bounded(main()), b"through the pipe")

    def test_pipe_transports_left_open_say_open_after_the_loop_closes(self):
        rpipe, wpipe = os.pipe()
        robj, wobj = os.fdopen(rpipe, "rb", 0), os.fdopen(wpipe, "wb", 0)

        async def main():
            rtr, _ = await self.loop.connect_read_pipe(asyncio.Protocol, robj)
            wtr, _ = await self.loop.connect_write_pipe(asyncio.Protocol, wobj)
            self.assertIn("polling", repr(rtr))
            return rtr, wtr

        rtr, wtr = self.run_bounded(main())
        self.loop.close()
        try:
            self.assertIn("open", repr(rtr))
            self.assertIn("open", repr(wtr))
        finally:
            robj.close()
            wobj.close()
            rtr._pipe = wtr._pipe = None  # closed above: no unclosed-transport warning

    def test_subprocess_exec_and_shell(self):
        async def main():
            p = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            out, _ = await p.communicate(b"child")
            q = await asyncio.create_subprocess_shell("exit 3")
            return out, p.returncode, await q.wait()

        self.assertEqual(self.run_bounded(main()), (b"CHILD", 0, 3))

    def test_sendfile_sends_a_file_range(self):
        server_proto = []

        def factory():
            server_proto.append(Collect(self.loop))
            return server_proto[-1]

        server, port = self.serve(factory)
        with tempfile.TemporaryFile() as f:
            f.write(b"0123456789" * 1000)
            f.flush()

            async def main():
                tr, pr = await self.loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
                sent = await self.loop.sendfile(tr, f, offset=10, count=5000)
                tr.close()
                await server_proto[0].done
                return sent, bytes(server_proto[0].data)

            sent, data = self.run_bounded(main())
        self.assertEqual(sent, 5000)
        self.assertEqual(data, (b"0123456789" * 1000)[10:5010])
        self.close_server(server)

    def test_ssl_server_and_client_and_start_tls(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl not installed")
        d = tempfile.mkdtemp()
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=cert)

        async def main():
            async def handle(reader, writer):
                writer.write((await reader.readline()).upper())
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
            port = server.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                 server_hostname="localhost")
            self.assertIsNotNone(w.get_extra_info("peercert"))
            w.write(b"secret\n")
            line = await r.readline()
            w.close()
            await w.wait_closed()

            # start_tls: plain TCP first, then TLS on the same connection.
            async def upgrade(reader, writer):
                await writer.start_tls(server_ctx)
                writer.write((await reader.readline()).upper())
                await writer.drain()
                writer.close()

            server2 = await asyncio.start_server(upgrade, "127.0.0.1", 0)
            port2 = server2.sockets[0].getsockname()[1]
            r2, w2 = await asyncio.open_connection("127.0.0.1", port2)
            await w2.start_tls(client_ctx, server_hostname="localhost")
            w2.write(b"upgraded\n")
            line2 = await r2.readline()
            w2.close()
            await w2.wait_closed()
            for s in (server, server2):
                s.close()
                await s.wait_closed()
            return line, line2

        try:
            self.assertEqual(self.run_bounded(main()), (b"SECRET\n", b"UPGRADED\n"))
        finally:
            shutil.rmtree(d)

    # ------------------------------------------------------------ bad input
    def test_bad_arguments_raise_what_asyncio_raises(self):
        async def main():
            with self.assertRaisesRegex(ValueError, "host and port was not specified"):
                await self.loop.create_connection(asyncio.Protocol)
            with self.assertRaisesRegex(ValueError, "server_hostname is only meaningful with ssl"):
                await self.loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                                  server_hostname="x")
            with self.assertRaises(ConnectionRefusedError):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
                s.close()  # nobody listens there
                await self.loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            with self.assertRaisesRegex(ValueError, "A Stream Socket was expected"):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    await self.loop.create_connection(asyncio.Protocol, sock=u)
                finally:
                    u.close()
            with self.assertRaisesRegex(ValueError, "ssl_handshake_timeout is only meaningful"):
                await self.loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                              ssl_handshake_timeout=1)
            with self.assertRaisesRegex(ValueError, "cmd must be a string"):
                await self.loop.subprocess_shell(asyncio.SubprocessProtocol, ["ls"])
            with self.assertRaisesRegex(ValueError, "universal_newlines must be False"):
                await self.loop.subprocess_exec(asyncio.SubprocessProtocol, "true",
                                                universal_newlines=True)

        self.run_bounded(main())

    def test_a_closed_loop_refuses_transports(self):
        loop = aio.new_event_loop()
        loop.close()
        for coro in (loop.create_connection(asyncio.Protocol, "127.0.0.1", 1),
                     loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                   local_addr=("127.0.0.1", 0))):
            with self.assertRaisesRegex(RuntimeError, "closed"):
                coro.send(None)
            coro.close()

    def connect(self, port, factory=None):
        return self.run_bounded(self.loop.create_connection(
            factory or (lambda: Collect(self.loop)), "127.0.0.1", port))

    def test_socket_transport_faces_what_asyncio_gives(self):
        server, port = self.serve()
        tr, pr = self.connect(port)
        self.assertIsInstance(tr, asyncio.Transport)
        sock = tr.get_extra_info("socket")
        self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, True)
        self.assertEqual(tr.get_extra_info("sockname"), sock.getsockname())
        self.assertEqual(tr.get_extra_info("peername")[1], port)
        self.assertIsNone(tr.get_extra_info("nothing"))
        self.assertIs(tr.get_protocol(), pr)
        self.assertTrue(tr.can_write_eof())
        self.assertTrue(tr.is_reading())
        tr.pause_reading()
        self.assertFalse(tr.is_reading())
        tr.resume_reading()
        self.assertTrue(tr.is_reading())
        self.assertEqual(tr.get_write_buffer_limits(), (16384, 65536))
        tr.set_write_buffer_limits(high=400)
        self.assertEqual(tr.get_write_buffer_limits(), (100, 400))
        tr.set_write_buffer_limits(low=100)
        self.assertEqual(tr.get_write_buffer_limits(), (100, 400))
        with self.assertRaises(ValueError):
            tr.set_write_buffer_limits(high=100, low=200)
        self.assertEqual(tr.get_write_buffer_size(), 0)
        with self.assertRaisesRegex(TypeError, "bytes-like"):
            tr.write("text")
        with self.assertRaisesRegex(TypeError, "bytes-like"):
            tr.write(12)
        tr.write(bytearray(b"ab"))
        tr.write(memoryview(b"cd"))
        tr.write(b"")
        other = Collect(self.loop)
        tr.set_protocol(other)
        self.assertIs(tr.get_protocol(), other)
        tr.set_protocol(pr)

        async def main():
            while len(pr.data) < 4:
                await asyncio.sleep(0.01)
            self.assertFalse(tr.is_closing())
            tr.close()
            self.assertTrue(tr.is_closing())
            self.assertFalse(tr.is_reading())
            tr.write(b"dropped")  # after close: dropped, as asyncio does
            self.assertIsNone(await pr.done)
            self.assertEqual(tr.get_write_buffer_size(), 0)
            tr.write(b"dropped too")
            tr.close()  # again: nothing

        self.run_bounded(main())
        self.assertEqual(bytes(pr.data), b"abcd")
        self.close_server(server)

    def test_half_close_keeps_the_write_side_when_eof_received_is_true(self):
        lost = []

        class HalfServer(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                self.got = bytearray()

            def data_received(self, data):
                self.got += data

            def eof_received(self):
                self.transport.write(b"got " + bytes(self.got))
                self.transport.close()
                return True

            def connection_lost(self, exc):
                lost.append(exc)

        server, port = self.serve(HalfServer)
        tr, pr = self.connect(port)

        async def main():
            tr.write(b"question")
            tr.write_eof()
            with self.assertRaisesRegex(RuntimeError, "write_eof"):
                tr.write(b"more")
            tr.write_eof()  # again: nothing
            self.assertIsNone(await pr.done)
            while not lost:
                await asyncio.sleep(0.01)

        self.run_bounded(main())
        self.assertEqual(bytes(pr.data), b"got question")
        self.assertTrue(pr.eof)
        self.assertEqual(lost, [None])
        self.close_server(server)

    def test_eof_received_false_closes_the_transport(self):
        lost = []

        class Closer(Collect):
            def connection_lost(self, exc):
                lost.append((exc, self.transport.is_closing()))

        server, port = self.serve(lambda: Closer(self.loop))
        tr, pr = self.connect(port)

        async def main():
            tr.write_eof()  # the server's eof_received returns None: it closes
            self.assertIsNone(await pr.done)
            while not lost:
                await asyncio.sleep(0.01)

        self.run_bounded(main())
        self.assertTrue(pr.eof)
        self.assertEqual(lost, [(None, True)])
        self.close_server(server)

    def test_data_received_raising_closes_with_its_exception(self):
        errors = []
        self.loop.set_exception_handler(lambda loop, ctx: errors.append(ctx))

        class Boom(Collect):
            def data_received(self, data):
                raise ZeroDivisionError("boom")

        server, port = self.serve()
        tr, pr = self.connect(port, lambda: Boom(self.loop))
        tr.write(b"x")
        exc = self.run_bounded(pr.done)
        self.assertIsInstance(exc, ZeroDivisionError)
        self.assertTrue(tr.is_closing())
        self.assertEqual(len(errors), 1)
        self.assertIn("data_received", errors[0]["message"])
        self.assertIs(errors[0]["exception"], exc)
        self.assertIs(errors[0]["protocol"], pr)
        self.close_server(server)

    def test_peer_reset_gives_connection_reset_error(self):
        server, port = self.serve()
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        self.socks.append(srv)

        async def main():
            tr, pr = await self.loop.create_connection(lambda: Collect(self.loop), *srv.getsockname())
            peer, _ = srv.accept()
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            peer.close()  # linger 0: RST
            return await pr.done

        exc = self.run_bounded(main())
        self.assertIsInstance(exc, ConnectionResetError)
        self.close_server(server)

    def test_abort_drops_the_buffer_and_loses_the_connection(self):
        class Sink(asyncio.Protocol):
            def connection_made(self, transport):
                transport.pause_reading()

        server, port = self.serve(Sink)
        tr, pr = self.connect(port)
        tr.set_write_buffer_limits(high=1 << 30)
        chunk = b"y" * 65536
        for _ in range(256):
            tr.write(chunk)
            if tr.get_write_buffer_size():
                break
        self.assertGreater(tr.get_write_buffer_size(), 0)
        tr.abort()
        self.assertTrue(tr.is_closing())
        self.assertIsNone(self.run_bounded(pr.done))
        self.assertEqual(tr.get_write_buffer_size(), 0)
        tr.abort()  # again: nothing
        self.close_server(server)

    def test_buffered_protocol_small_buffer_and_bad_buffer(self):
        server, port = self.serve()

        class Small(asyncio.BufferedProtocol):
            def __init__(self, loop, size):
                self.buf = bytearray(size)
                self.got = bytearray()
                self.done = loop.create_future()
                self.eof = False

            def connection_made(self, transport):
                self.transport = transport

            def get_buffer(self, sizehint):
                return self.buf

            def buffer_updated(self, nbytes):
                self.got += self.buf[:nbytes]

            def connection_lost(self, exc):
                self.done.set_result(exc)

        payload = bytes(range(256)) * 40
        tr, pr = self.connect(port, lambda: Small(self.loop, 7))

        async def main():
            tr.write(payload)
            while len(pr.got) < len(payload):
                await asyncio.sleep(0.01)
            tr.close()
            return await pr.done

        self.assertIsNone(self.run_bounded(main()))
        self.assertEqual(bytes(pr.got), payload)
        errors = []
        self.loop.set_exception_handler(lambda loop, ctx: errors.append(ctx))
        tr, pr = self.connect(port, lambda: Small(self.loop, 0))  # an empty buffer
        tr.write(b"z")
        exc = self.run_bounded(pr.done)
        self.assertIsInstance(exc, RuntimeError)
        self.assertIn("get_buffer", errors[0]["message"])
        self.close_server(server)

    def test_pause_writing_is_called_inside_write(self):
        events = []

        class Sink(asyncio.Protocol):
            def connection_made(self, transport):
                transport.pause_reading()

        class Writer(Collect):
            def pause_writing(self):
                events.append(("pause", self.transport.get_write_buffer_size()))

            def resume_writing(self):
                events.append(("resume", self.transport.get_write_buffer_size()))

        server, port = self.serve(Sink)
        tr, pr = self.connect(port, lambda: Writer(self.loop))
        tr.set_write_buffer_limits(high=100000, low=50000)
        chunk = b"w" * 65536
        for _ in range(256):
            tr.write(chunk)
            if events:
                break
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0][0], "pause")
        self.assertGreater(events[0][1], 100000)
        tr.write(chunk)  # still paused: no second call
        self.assertEqual(len(events), 1)
        tr.abort()
        self.run_bounded(pr.done)
        self.close_server(server)

    def test_transport_of_a_lost_connection_releases_its_protocol(self):
        import gc
        import weakref

        server, port = self.serve()
        tr, pr = self.connect(port)
        ref = weakref.ref(pr)
        tr.close()
        self.run_bounded(pr.done)
        self.assertIsNone(tr.get_protocol())
        del pr
        gc.collect()
        self.assertIsNone(ref())
        self.close_server(server)

    def test_close_with_a_buffer_still_sends_what_is_written_before_the_flush(self):
        got = []

        class Sink(Collect):
            def connection_made(self, transport):
                super().connection_made(transport)
                transport.pause_reading()  # the client's buffer fills

        sinks = []

        def sink():
            sinks.append(Sink(self.loop))
            return sinks[-1]

        server, port = self.serve(sink)
        tr, pr = self.connect(port)
        tr.set_write_buffer_limits(high=1 << 30)
        chunk = b"c" * 65536
        total = 0
        # 16 MiB: more than loopback's socket buffers hold, so some of it is
        # still the transport's at close (rill's transport coalesces a
        # callback's writes, so its buffer is not empty after one write
        # even when the kernel would take it: the size alone proves nothing).
        for _ in range(256):
            tr.write(chunk)
            total += len(chunk)
        self.assertGreater(tr.get_write_buffer_size(), 0)
        tr.close()
        self.assertTrue(tr.is_closing())
        tr.write(b"tail")  # buffered still: asyncio sends it before closing
        total += 4

        async def main():
            while not sinks or not hasattr(sinks[0], "transport"):
                await asyncio.sleep(0.01)
            sinks[0].transport.resume_reading()
            self.assertIsNone(await pr.done)
            await sinks[0].done
            got.append(bytes(sinks[0].data))

        self.run_bounded(main())
        self.assertEqual(len(got[0]), total)
        self.assertTrue(got[0].endswith(b"ctail"))
        self.close_server(server)

    def test_an_unclosed_transport_warns_and_closes_its_socket(self):
        import gc

        server, port = self.serve()
        tr, pr = self.connect(port)
        sock = tr.get_extra_info("socket")
        fd = sock.fileno()
        self.assertGreaterEqual(fd, 0)
        self.close_server(server)
        self.loop.close()
        with self.assertWarnsRegex(ResourceWarning, "unclosed transport"):
            del tr, pr
            gc.collect()
        self.assertEqual(sock.fileno(), -1)

    def test_lowering_the_high_watermark_pauses_and_the_drain_resumes(self):
        events = []

        class Sink(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                transport.pause_reading()

        sinks = []

        def sink():
            sinks.append(Sink())
            return sinks[-1]

        class Writer(Collect):
            def pause_writing(self):
                events.append("pause")

            def resume_writing(self):
                events.append("resume")

        server, port = self.serve(sink)
        tr, pr = self.connect(port, lambda: Writer(self.loop))
        tr.set_write_buffer_limits(high=1 << 30)
        chunk = b"v" * 65536
        for _ in range(256):
            tr.write(chunk)
            if tr.get_write_buffer_size():
                break
        self.assertEqual(events, [])
        tr.set_write_buffer_limits(high=1, low=0)  # below what is buffered
        self.assertEqual(events, ["pause"])

        async def main():
            while not sinks or not hasattr(sinks[0], "transport"):
                await asyncio.sleep(0.01)
            sinks[0].transport.resume_reading()
            while events != ["pause", "resume"]:
                await asyncio.sleep(0.01)
            self.assertEqual(tr.get_write_buffer_size(), 0)
            tr.close()
            await pr.done

        self.run_bounded(main())
        self.close_server(server)

    def test_add_reader_refuses_an_fd_a_transport_uses(self):
        server, port = self.serve()

        async def main():
            tr, pr = await self.loop.create_connection(lambda: Collect(self.loop), "127.0.0.1", port)
            fd = tr.get_extra_info("socket").fileno()
            with self.assertRaisesRegex(RuntimeError, "is used by transport"):
                self.loop.add_reader(fd, lambda: None)
            tr.close()
            await pr.done

        self.run_bounded(main())
        self.close_server(server)


if __name__ == "__main__":
    unittest.main()
