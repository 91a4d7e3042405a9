"""asyncio's streams, servers, to_thread and subprocesses: one rule per
test. Network on 127.0.0.1 only, bounded in count and time.

Runs against rill by default and against asyncio with RILL_TEST_IMPL=asyncio
(rill-only behaviour is marked rill_only).
"""
import asyncio
import contextvars
import gc
import os
import signal
import sys
import tempfile
import threading
import time
import unittest
import weakref

from common import IS_RILL, aio, banner, rill_only, run

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL


def setUpModule():
    print(banner(), file=sys.stderr)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(cb=echo, **kw):
    srv = await aio.start_server(cb, "127.0.0.1", 0, **kw)
    return srv, srv.sockets[0].getsockname()[1]


def bounded(coro, seconds=20):
    async def main():
        return await aio.wait_for(coro, seconds)
    return run(main())


class Streams(unittest.TestCase):
    def setUp(self):
        self.fds = fd_count()

    def tearDown(self):
        gc.collect()
        self.assertEqual(fd_count(), self.fds, "an fd leaked")

    def test_echo_server_with_100_concurrent_clients(self):
        async def client(port, i):
            r, w = await aio.open_connection("127.0.0.1", port)
            got = []
            for j in range(5):
                line = f"client {i} line {j}\n".encode()
                w.write(line)
                await w.drain()
                got.append(await r.readline())
            w.close()
            await w.wait_closed()
            return got

        async def main():
            srv, port = await serve()
            results = await aio.gather(*(client(port, i) for i in range(100)))
            srv.close()
            await srv.wait_closed()
            return results

        results = bounded(main())
        for i, got in enumerate(results):
            self.assertEqual(got, [f"client {i} line {j}\n".encode() for j in range(5)])

    def test_readline_readuntil_readexactly(self):
        async def main():
            srv, port = await serve(lambda r, w: w.write(b"one\ntwo||threeXYZ") or w.close())
            r, w = await aio.open_connection("127.0.0.1", port)
            out = [await r.readline(), await r.readuntil(b"||"), await r.readexactly(5),
                   await r.read(), r.at_eof()]
            w.close()
            await w.wait_closed()
            srv.close()
            await srv.wait_closed()
            return out

        self.assertEqual(bounded(main()), [b"one\n", b"two||", b"three", b"XYZ", True])

    def test_readexactly_early_eof_is_incomplete_read_with_partial(self):
        async def main():
            srv, port = await serve(lambda r, w: w.write(b"abc") or w.close())
            r, w = await aio.open_connection("127.0.0.1", port)
            try:
                await r.readexactly(10)
            except asyncio.IncompleteReadError as e:
                out = (e.partial, e.expected)
            w.close()
            srv.close()
            return out

        self.assertEqual(bounded(main()), (b"abc", 10))

    def test_readuntil_eof_is_incomplete_read_and_readline_returns_partial(self):
        async def main():
            srv, port = await serve(lambda r, w: w.write(b"no separator") or w.close())
            r, w = await aio.open_connection("127.0.0.1", port)
            try:
                await r.readuntil(b"\n")
            except asyncio.IncompleteReadError as e:
                partial = e.partial
            r2, w2 = await aio.open_connection("127.0.0.1", port)
            line = await r2.readline()
            w.close()
            w2.close()
            srv.close()
            return partial, line

        self.assertEqual(bounded(main()), (b"no separator", b"no separator"))

    def test_limit_overrun_keeps_the_data_readable(self):
        async def main():
            srv, port = await serve(lambda r, w: w.write(b"x" * 100 + b"\nrest") or w.close())
            r, w = await aio.open_connection("127.0.0.1", port, limit=16)
            await aio.sleep(0.05)
            try:
                await r.readuntil(b"\n")
            except asyncio.LimitOverrunError as e:
                consumed = e.consumed
            data = await r.readexactly(101)
            rest = await r.read()
            w.close()
            srv.close()
            return consumed > 0, data, rest

        self.assertEqual(bounded(main()), (True, b"x" * 100 + b"\n", b"rest"))

    def test_readline_past_the_limit_is_value_error(self):
        async def main():
            srv, port = await serve(lambda r, w: w.write(b"y" * 100 + b"\nnext\n") or w.close())
            r, w = await aio.open_connection("127.0.0.1", port, limit=16)
            await aio.sleep(0.05)
            with self.assertRaises(ValueError):
                await r.readline()
            after = await r.readline()  # the long line (and its b"\n") was dropped
            w.close()
            srv.close()
            return after

        self.assertEqual(bounded(main()), b"next\n")

    def test_drain_against_a_slow_reader_keeps_the_buffer_bounded(self):
        async def main():
            gate = aio.Event()
            seen = []

            async def slow(r, w):
                await gate.wait()
                total = 0
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    total += len(data)
                seen.append(total)
                w.close()

            srv, port = await serve(slow)
            r, w = await aio.open_connection("127.0.0.1", port)
            chunk = b"z" * 65536
            peak = 0
            for i in range(200):  # 12.5 MiB, far above any socket buffer
                w.write(chunk)
                peak = max(peak, w.transport.get_write_buffer_size())
                if i == 50:
                    gate.set()
                await w.drain()
            w.write_eof()
            await r.read()
            w.close()
            srv.close()
            await srv.wait_closed()
            return peak, seen

        peak, seen = bounded(main(), 60)
        self.assertLess(peak, 1 << 20)
        self.assertEqual(seen, [200 * 65536])

    def test_connection_refused(self):
        async def main():
            srv, port = await serve()
            srv.close()
            await srv.wait_closed()
            with self.assertRaises(ConnectionRefusedError) as cm:
                await aio.open_connection("127.0.0.1", port)
            return cm.exception.errno

        self.assertEqual(bounded(main()), 111)

    def test_peer_reset_reaches_the_reader(self):
        async def reset(r, w):
            sock = w.get_extra_info("socket")
            import socket as s
            import struct
            sock_obj = s.socket(fileno=os.dup(sock.fileno()))
            sock_obj.setsockopt(s.SOL_SOCKET, s.SO_LINGER, struct.pack("ii", 1, 0))
            sock_obj.close()
            w.close()

        async def main():
            srv, port = await serve(reset)
            r, w = await aio.open_connection("127.0.0.1", port)
            try:
                while await r.read(100):
                    pass
                outcome = "eof"
            except ConnectionResetError:
                outcome = "reset"
            w.close()
            srv.close()
            return outcome

        self.assertEqual(bounded(main()), "reset")

    def test_server_close_leaves_live_connections_alone(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            w.write(b"before\n")
            first = await r.readline()
            srv.close()
            w.write(b"after\n")
            second = await r.readline()
            with self.assertRaises(ConnectionRefusedError):
                await aio.open_connection("127.0.0.1", port)
            w.close()
            await w.wait_closed()
            await srv.wait_closed()
            return first, second, srv.is_serving()

        self.assertEqual(bounded(main()), (b"before\n", b"after\n", False))

    @rill_only
    def test_wait_closed_waits_for_the_accepted_connections(self):
        # asyncio 3.12's rule; 3.11's wait_closed returns at once after close
        async def main():
            log = []
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            w.write(b"x")
            await r.readexactly(1)
            srv.close()

            async def waiter():
                await srv.wait_closed()
                log.append("closed")

            t = aio.create_task(waiter())
            await aio.sleep(0.05)
            log.append("client closes")
            w.close()
            await t
            return log

        self.assertEqual(bounded(main()), ["client closes", "closed"])

    def test_server_async_with_and_serve_forever(self):
        async def main():
            srv, port = await serve()
            async with srv:
                t = aio.create_task(srv.serve_forever())
                r, w = await aio.open_connection("127.0.0.1", port)
                w.write(b"hi\n")
                line = await r.readline()
                w.close()
                await w.wait_closed()
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
            return line, srv.is_serving()

        self.assertEqual(bounded(main()), (b"hi\n", False))

    def test_peername_and_sockname(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            peer, sock = w.get_extra_info("peername"), w.get_extra_info("sockname")
            w.close()
            srv.close()
            return peer, port, sock[0], type(sock[1])

        peer, port, host, port_type = bounded(main())
        self.assertEqual((peer, host, port_type), (("127.0.0.1", port), "127.0.0.1", int))

    def test_write_eof_half_closes(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            self.assertTrue(w.can_write_eof())
            w.write(b"last words")
            w.write_eof()
            data = await r.read()
            w.close()
            await w.wait_closed()
            srv.close()
            return data, w.is_closing()

        self.assertEqual(bounded(main()), (b"last words", True))

    def test_read_zero_and_read_all(self):
        big = bytes(range(256)) * 1000

        async def main():
            srv, port = await serve(lambda r, w: w.write(big) or w.close())
            r, w = await aio.open_connection("127.0.0.1", port)
            zero = await r.read(0)
            everything = await r.read()
            again = await r.read()
            w.close()
            srv.close()
            return zero, everything == big, again

        self.assertEqual(bounded(main()), (b"", True, b""))

    def test_writelines(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            w.writelines([b"a", b"b", b"c\n"])
            line = await r.readline()
            w.close()
            srv.close()
            return line

        self.assertEqual(bounded(main()), b"abc\n")

    def test_unix_socket_echo(self):
        async def main(path):
            srv = await aio.start_unix_server(echo, path)
            r, w = await aio.open_unix_connection(path)
            w.write(b"over unix\n")
            line = await r.readline()
            peer = w.get_extra_info("peername")
            w.close()
            await w.wait_closed()
            srv.close()
            await srv.wait_closed()
            return line, peer

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            line, peer = bounded(main(path))
        self.assertEqual(line, b"over unix\n")
        self.assertEqual(peer, path)

    def test_unix_connect_to_nothing_is_file_not_found(self):
        async def main(path):
            with self.assertRaises(FileNotFoundError):
                await aio.open_unix_connection(path)

        with tempfile.TemporaryDirectory() as d:
            bounded(main(os.path.join(d, "none")))

    def test_drain_below_the_low_watermark_does_not_yield_and_is_awaitable_once(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            ran = []
            asyncio.get_running_loop().call_soon(ran.append, 1)
            w.write(b"ping\n")
            d = w.drain()
            await d  # nothing above the low watermark: no trip through the loop
            before = list(ran)
            with self.assertRaises(RuntimeError):
                await d
            self.assertEqual(await r.readline(), b"ping\n")
            w.close()
            await w.wait_closed()
            srv.close()
            return before, ran

        self.assertEqual(bounded(main()), ([], [1]))


class Cancel(unittest.TestCase):
    def test_cancel_a_pending_read_loses_no_data(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            t = aio.create_task(r.readexactly(4))
            await aio.sleep(0.02)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            w.write(b"data")
            got = await r.readexactly(4)
            w.close()
            srv.close()
            return got, t.cancelled()

        self.assertEqual(bounded(main()), (b"data", True))

    def test_cancel_a_connect(self):
        async def main():
            # a listener that never accepts: connects still complete (backlog),
            # so cancel before the first step instead, then once connected
            srv, port = await serve()
            t = aio.create_task(aio.open_connection("127.0.0.1", port))
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            srv.close()
            return t.cancelled()

        self.assertTrue(bounded(main()))

    def test_cancel_drain_and_wait_closed(self):
        async def main():
            gate = aio.Event()

            async def stuck(r, w):
                await gate.wait()
                w.close()

            srv, port = await serve(stuck)
            r, w = await aio.open_connection("127.0.0.1", port)
            for _ in range(100):
                w.write(b"q" * 65536)
            d = aio.create_task(w.drain())
            c = aio.create_task(w.wait_closed())
            await aio.sleep(0.02)
            d.cancel()
            c.cancel()
            res = await aio.gather(d, c, return_exceptions=True)
            w.abort() if hasattr(w, "abort") else w.transport.abort()
            gate.set()
            srv.close()
            await aio.sleep(0.02)
            return [type(x).__name__ for x in res]

        self.assertEqual(bounded(main()), ["CancelledError", "CancelledError"])

    def test_gc_during_io(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            t = aio.create_task(r.readline())
            await aio.sleep(0)
            gc.collect()
            ref = weakref.ref(r)
            del r
            gc.collect()
            w.write(b"still there\n")
            line = await t
            w.close()
            srv.close()
            return line

        self.assertEqual(bounded(main()), b"still there\n")

    def test_servers_are_freed_closed_or_not(self):
        refs = []

        async def main():
            for close in (True, False):
                srv, port = await serve()
                refs.append(weakref.ref(srv))
                if close:
                    srv.close()
                    await srv.wait_closed()

        bounded(main())
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])

    def test_cancel_message_object_reaches_a_pending_read(self):
        # the object given to cancel(msg) is what the read raises
        msg = ("why", 5)

        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            seen = []

            async def reader():
                try:
                    await r.read(10)
                except asyncio.CancelledError as e:
                    seen.append(e.args)
                    raise

            t = aio.create_task(reader())
            await aio.sleep(0.02)
            t.cancel(msg)
            try:
                await t
            except asyncio.CancelledError:
                pass
            w.write(b"after")
            got = await r.readexactly(5)
            w.close()
            srv.close()
            return seen, got

        self.assertEqual(bounded(main()), ([(msg,)], b"after"))

    def test_reads_awaited_by_asyncio_tasks(self):
        # asyncio's own Task on the running loop drives a stream read: it
        # waits, wakes with the data, and its cancel loses no data; a read
        # not yet awaited is no future (asyncio's is a coroutine)
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            pending = r.read(1)
            isfut = asyncio.isfuture(pending)
            pending.close()

            async def rd(n):
                return await r.readexactly(n)

            t = asyncio.Task(rd(5))
            await aio.sleep(0.02)
            waited = not t.done()
            w.write(b"hello")
            got = await t
            t2 = asyncio.Task(rd(3))
            await aio.sleep(0.02)
            t2.cancel()
            try:
                await t2
            except asyncio.CancelledError:
                pass
            w.write(b"abc")
            got2 = await r.readexactly(3)
            w.close()
            srv.close()
            return isfut, waited, got, t2.cancelled(), got2

        self.assertEqual(bounded(main()), (False, True, b"hello", True, b"abc"))

    def test_read_never_awaited_takes_nothing(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            pending = r.readexactly(3)
            if hasattr(pending, "close"):
                pending.close()
            del pending
            w.write(b"abc")
            got = await r.readexactly(3)
            w.close()
            srv.close()
            return got

        self.assertEqual(bounded(main()), b"abc")


class BadInput(unittest.TestCase):
    def test_write_str_is_type_error(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            try:
                with self.assertRaises(TypeError):
                    w.write("text")
            finally:
                w.close()
                srv.close()

        bounded(main())

    def test_readuntil_empty_separator_is_value_error(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            try:
                with self.assertRaises(ValueError):
                    await r.readuntil(b"")
                with self.assertRaises(ValueError):
                    await r.readexactly(-1)
            finally:
                w.close()
                srv.close()

        bounded(main())

    def test_port_of_wrong_type(self):
        async def main():
            with self.assertRaises((TypeError, OSError)):
                await aio.open_connection("127.0.0.1", "not a port")

        bounded(main())

    def test_open_connection_outside_a_loop(self):
        coro = aio.open_connection("127.0.0.1", 1)
        with self.assertRaises(RuntimeError):
            coro.send(None)
        coro.close()

    def test_on_a_closed_loop_is_runtime_error(self):
        loop = aio.new_event_loop()
        loop.close()
        coro = aio.open_connection("127.0.0.1", 1)
        with self.assertRaises(RuntimeError):
            loop.run_until_complete(coro)
        coro.close()

    def test_write_after_close_is_silent_and_drain_raises(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            w.close()
            w.write(b"ignored")
            with self.assertRaises(ConnectionResetError):
                await w.drain()
            await w.wait_closed()
            srv.close()
            return w.is_closing()

        self.assertTrue(bounded(main()))

    def test_address_in_use(self):
        async def main():
            srv, port = await serve()
            try:
                with self.assertRaises(OSError) as cm:
                    await aio.start_server(echo, "127.0.0.1", port)
                return cm.exception.errno
            finally:
                srv.close()

        self.assertEqual(bounded(main()), 98)

    def test_two_concurrent_reads_is_runtime_error(self):
        async def main():
            srv, port = await serve()
            r, w = await aio.open_connection("127.0.0.1", port)
            t = aio.create_task(r.read(10))
            await aio.sleep(0)
            with self.assertRaises(RuntimeError):
                await r.read(10)
            w.write(b"x")
            got = await t
            w.close()
            srv.close()
            return got

        self.assertEqual(bounded(main()), b"x")


class ToThread(unittest.TestCase):
    def test_result_args_kwargs_and_other_thread(self):
        async def main():
            return await aio.to_thread(lambda a, b: (a + b, threading.get_ident()), 2, b=3)

        value, ident = bounded(main())
        self.assertEqual(value, 5)
        self.assertNotEqual(ident, threading.get_ident())

    def test_exception_reaches_the_awaiter(self):
        def boom():
            raise KeyError("k")

        async def main():
            with self.assertRaises(KeyError):
                await aio.to_thread(boom)

        bounded(main())

    def test_contextvars_are_copied(self):
        var = contextvars.ContextVar("var", default="unset")

        async def main():
            var.set("set in task")
            return await aio.to_thread(var.get)

        self.assertEqual(bounded(main()), "set in task")

    def test_loop_runs_while_the_thread_works(self):
        async def main():
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await aio.sleep(0.01)

            t = aio.create_task(ticker())
            await aio.to_thread(time.sleep, 0.2)
            t.cancel()
            return ticks

        self.assertGreater(bounded(main()), 5)

    def test_cancel_while_running_drops_the_result(self):
        started, release = threading.Event(), threading.Event()

        def job():
            started.set()
            release.wait(5)
            return "late"

        async def main():
            t = aio.create_task(aio.to_thread(job))
            while not started.is_set():
                await aio.sleep(0.005)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            release.set()
            return t.cancelled()

        self.assertTrue(bounded(main()))


    def test_closing_the_loop_with_a_job_running_does_not_deadlock(self):
        started, finished = threading.Event(), threading.Event()

        def job():
            started.set()
            time.sleep(0.2)
            finished.set()

        loop = aio.new_event_loop()

        async def main():
            t = loop.create_task(aio.to_thread(job))
            while not started.is_set():
                await aio.sleep(0.005)
            t.cancel()
            await aio.sleep(0)

        loop.run_until_complete(main())
        t0 = time.monotonic()
        loop.close()  # rill waits for the running job (it needs the GIL to end)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertTrue(finished.wait(5))

    def test_loops_ending_every_way_after_jobs_stop_their_threads(self):
        # rill's pool threads keep a Python thread state between jobs; a loop
        # that ends (asyncio.run's shutdown, close, or dropped unclosed) must
        # stop its threads without waiting for the GIL its closer holds.
        def threads():
            return len(os.listdir("/proc/self/task"))

        async def jobs():
            got = await aio.gather(*[aio.to_thread(pow, i, 2) for i in range(16)])
            self.assertEqual(got, [i * i for i in range(16)])

        before = threads()
        for i in range(12):
            how = i % 3
            if how == 0:
                aio.run(jobs())
            else:
                loop = aio.new_event_loop()
                loop.run_until_complete(jobs())
                if how == 1:
                    loop.close()
                else:
                    del loop  # dropped unclosed: its pool stops in dealloc
                    gc.collect()
        for _ in range(500):  # asyncio's executor threads wind down after the loop (slowly under load)
            if threads() <= before:
                break
            time.sleep(0.01)
        self.assertLessEqual(threads(), before)


class Subprocess(unittest.TestCase):
    def setUp(self):
        self.fds = fd_count()

    def tearDown(self):
        gc.collect()
        self.assertEqual(fd_count(), self.fds, "an fd leaked")

    def test_output_line_by_line_and_returncode(self):
        async def main():
            p = await aio.create_subprocess_exec(
                "sh", "-c", "echo one; echo two; exit 3", stdout=PIPE)
            lines = []
            while True:
                line = await p.stdout.readline()
                if not line:
                    break
                lines.append(line)
            return lines, await p.wait(), p.returncode

        self.assertEqual(bounded(main()), ([b"one\n", b"two\n"], 3, 3))

    def test_communicate(self):
        async def main():
            p = await aio.create_subprocess_exec(
                "sh", "-c", "cat; echo err >&2", stdin=PIPE, stdout=PIPE, stderr=PIPE)
            out, err = await p.communicate(b"x" * 200000)
            return len(out), err, p.returncode

        self.assertEqual(bounded(main()), (200000, b"err\n", 0))

    def test_kill_and_terminate(self):
        async def main():
            p = await aio.create_subprocess_exec("sleep", "30")
            self.assertIsNone(p.returncode)
            p.kill()
            rc1 = await p.wait()
            q = await aio.create_subprocess_exec("sleep", "30")
            q.terminate()
            rc2 = await q.wait()
            with self.assertRaises(ProcessLookupError):
                q.send_signal(signal.SIGTERM)
            return rc1, rc2

        self.assertEqual(bounded(main()), (-9, -15))

    def test_cwd_env_and_devnull(self):
        async def main():
            p = await aio.create_subprocess_exec(
                "sh", "-c", "pwd; echo $RILL_X", stdout=PIPE, stderr=DEVNULL, stdin=DEVNULL,
                cwd="/tmp", env={"RILL_X": "y", "PATH": os.environ["PATH"]})
            out, _ = await p.communicate()
            return out

        self.assertEqual(bounded(main()), b"/tmp\ny\n")

    def test_shell(self):
        async def main():
            p = await aio.create_subprocess_shell("echo $((6*7))", stdout=PIPE)
            out, err = await p.communicate()
            return out, err, p.pid > 0

        self.assertEqual(bounded(main()), (b"42\n", None, True))

    # valgrind runs posix_spawn's child itself: exec's failure comes back as
    # exit status 127, not as the spawn's error
    @unittest.skipIf("vgpreload" in os.environ.get("LD_PRELOAD", ""), "under valgrind")
    def test_missing_program_is_file_not_found(self):
        async def main():
            with self.assertRaises(FileNotFoundError):
                await aio.create_subprocess_exec("/nonexistent/rill-no-such-program")

        bounded(main())

    def test_cancel_a_process_wait_leaves_the_process(self):
        async def main():
            p = await aio.create_subprocess_exec("sleep", "30")
            t = aio.create_task(p.wait())
            await aio.sleep(0.02)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            alive = p.returncode is None
            p.kill()
            return alive, await p.wait()

        self.assertEqual(bounded(main()), (True, -9))


if __name__ == "__main__":
    unittest.main()
