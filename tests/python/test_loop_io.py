"""asyncio's low-level loop I/O on the loop object (add_reader/add_writer,
sock_*, getaddrinfo/getnameinfo, run_in_executor, signal handlers) and
adoption (rill.install, rill.EventLoopPolicy, asyncio.Runner's
loop_factory): one rule per test. Network on 127.0.0.1 only, bounded.

Runs against rill by default and against asyncio with RILL_TEST_IMPL=asyncio
(rill-only behaviour is marked rill_only).
"""
import asyncio
import concurrent.futures
import gc
import os
import signal
import socket
import sys
import threading
import unittest
import weakref

from common import aio, banner, rill_only


def setUpModule():
    print(banner(), file=sys.stderr)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


class LoopCase(unittest.TestCase):
    """Each test gets a fresh loop of the implementation under test; the
    fd count must be back where it was once the loop is closed."""

    def setUp(self):
        gc.collect()
        self.fds = fd_count()
        self.loop = aio.new_event_loop()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.loop.close()
        del self.loop
        gc.collect()
        self.assertEqual(fd_count(), self.fds, "an fd leaked")

    def run_bounded(self, coro, seconds=20):
        async def main():
            return await aio.wait_for(coro, seconds)
        return self.loop.run_until_complete(main())

    def pair(self):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.socks += [a, b]
        return a, b

    def listener(self):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.setblocking(False)
        self.socks.append(srv)
        return srv


class Readers(LoopCase):
    def test_reader_fires_when_readable_and_remove_stops_it(self):
        a, b = self.pair()
        loop = self.loop
        calls = []

        async def main():
            got = loop.create_future()

            def on_readable(tag):
                calls.append(tag)
                data = a.recv(100)
                if not got.done():
                    got.set_result(data)

            loop.add_reader(a, on_readable, "tag")
            await aio.sleep(0.02)
            self.assertEqual(calls, [])  # not readable yet
            b.send(b"hello")
            self.assertEqual(await got, b"hello")
            self.assertTrue(loop.remove_reader(a))
            self.assertFalse(loop.remove_reader(a))
            n = len(calls)
            b.send(b"more")
            await aio.sleep(0.05)
            self.assertEqual(len(calls), n)  # removed: no more calls
            self.assertEqual(calls[0], "tag")

        self.run_bounded(main())

    def test_fd_closed_right_after_add_reader_does_not_crash(self):
        # Closed before the loop polled: it used to abort the process
        # (libev asserts on EBADF from epoll_ctl). As with asyncio's
        # selector loop, the callbacks never run and removing still works.
        loop = self.loop
        calls = []

        async def main():
            r, w = os.pipe()
            os.write(w, b"x")
            loop.add_reader(r, calls.append, "reader")
            loop.add_writer(w, calls.append, "writer")
            os.close(r)
            os.close(w)
            await aio.sleep(0.02)
            self.assertEqual(calls, [])
            self.assertTrue(loop.remove_reader(r))
            self.assertTrue(loop.remove_writer(w))

        self.run_bounded(main())

    def test_reader_takes_an_int_fd_and_keeps_firing(self):
        a, b = self.pair()
        loop = self.loop
        chunks = []

        async def main():
            done = loop.create_future()

            def on_readable():
                chunks.append(a.recv(1))
                if len(chunks) == 3 and not done.done():
                    done.set_result(None)

            loop.add_reader(a.fileno(), on_readable)
            b.send(b"xyz")
            await done
            loop.remove_reader(a.fileno())

        self.run_bounded(main())
        self.assertEqual(b"".join(chunks), b"xyz")

    def test_duplicate_add_replaces(self):
        a, b = self.pair()
        loop = self.loop
        calls = []

        async def main():
            done = loop.create_future()

            def first():
                calls.append("first")

            def second():
                calls.append("second")
                a.recv(10)
                if not done.done():
                    done.set_result(None)

            loop.add_reader(a, first)
            loop.add_reader(a, second)
            b.send(b"x")
            await done
            self.assertTrue(loop.remove_reader(a))

        self.run_bounded(main())
        self.assertNotIn("first", calls)

    def test_callback_exception_reaches_the_handler(self):
        a, b = self.pair()
        loop = self.loop
        seen = []

        async def main():
            done = loop.create_future()

            def handler(lp, context):
                seen.append(context)
                if not done.done():
                    done.set_result(None)

            loop.set_exception_handler(handler)

            def boom():
                loop.remove_reader(a)
                raise ZeroDivisionError("in reader")

            loop.add_reader(a, boom)
            b.send(b"x")
            await done

        self.run_bounded(main())
        self.assertIsInstance(seen[0]["exception"], ZeroDivisionError)

    def test_bad_fd_and_closed_loop(self):
        loop = self.loop
        with self.assertRaises(ValueError):
            loop.add_reader(-1, lambda: None)
        with self.assertRaises(ValueError):
            loop.add_reader(object(), lambda: None)
        a, b = self.pair()
        other = aio.new_event_loop()
        other.close()
        with self.assertRaisesRegex(RuntimeError, "closed"):
            other.add_reader(a, lambda: None)
        with self.assertRaisesRegex(RuntimeError, "closed"):
            other.add_writer(a, lambda: None)
        self.assertFalse(other.remove_reader(a))
        self.assertFalse(other.remove_writer(a))

    def test_writer_fires_when_writable(self):
        a, b = self.pair()
        loop = self.loop

        async def main():
            done = loop.create_future()

            def on_writable(x):
                loop.remove_writer(a)
                if not done.done():
                    done.set_result(x)

            loop.add_writer(a, on_writable, 42)
            self.assertEqual(await done, 42)
            self.assertFalse(loop.remove_writer(a))

        self.run_bounded(main())

    def test_close_with_watchers_registered(self):
        a, b = self.pair()
        loop = aio.new_event_loop()
        loop.add_reader(a, lambda: None)
        loop.add_writer(b, lambda: None)
        loop.close()
        ref = weakref.ref(loop)
        del loop
        gc.collect()
        self.assertIsNone(ref())


class Sockets(LoopCase):
    def test_sock_connect_to_a_numeric_address_connects_in_its_first_step(self):
        # As asyncio (_ensure_resolved): no resolver round trip, so a task
        # started before a sleep(0) has called connect() when it returns.
        import select

        listener = socket.socket()
        sock = socket.socket()
        self.socks += [listener, sock]
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sock.setblocking(False)

        async def main():
            task = asyncio.ensure_future(self.loop.sock_connect(sock, listener.getsockname()))
            await asyncio.sleep(0)
            ready, _, _ = select.select([listener], [], [], 5)
            self.assertEqual(ready, [listener], "connect() not called in the first step")
            self.socks.append(listener.accept()[0])
            await task

        self.run_bounded(main())

    def test_socketpair_round_trip(self):
        a, b = self.pair()
        loop = self.loop

        async def main():
            payload = bytes(range(256)) * 2000  # 512 KB: more than the buffers
            sender = loop.create_task(loop.sock_sendall(a, payload))
            got = bytearray()
            while len(got) < len(payload):
                chunk = await loop.sock_recv(b, 65536)
                self.assertTrue(chunk)
                got += chunk
            self.assertIsNone(await sender)
            self.assertEqual(bytes(got), payload)
            buf = bytearray(8)
            await loop.sock_sendall(b, b"into")
            n = await loop.sock_recv_into(a, buf)
            self.assertEqual(bytes(buf[:n]), b"into")
            b.close()
            self.assertEqual(await loop.sock_recv(a, 10), b"")

        self.run_bounded(main())

    def test_sock_recvfrom_into_waits_and_fills_the_buffer(self):
        loop = self.loop
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socks += [a, b]
        a.setblocking(False)
        b.setblocking(False)

        async def main():
            buf = bytearray(10)
            reading = loop.create_task(loop.sock_recvfrom_into(b, buf, 4))
            await aio.sleep(0.01)
            self.assertFalse(reading.done())  # nothing sent yet: it waits
            a.send(b"hello")
            n, _ = await reading
            self.assertEqual((n, bytes(buf[:n])), (4, b"hell"))  # nbytes bounds it
            a.send(b"whole")
            n, _ = await loop.sock_recvfrom_into(b, buf)  # nbytes 0: len(buf)
            self.assertEqual(bytes(buf[:n]), b"whole")
            with self.assertRaises(ValueError):  # nbytes past the buffer
                await loop.sock_recvfrom_into(b, buf, 20)

        self.run_bounded(main())

    def test_listening_socket_accept_connect(self):
        loop = self.loop
        srv = self.listener()
        port = srv.getsockname()[1]

        async def main():
            accepting = loop.create_task(loop.sock_accept(srv))
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            self.socks.append(c)
            await loop.sock_connect(c, ("127.0.0.1", port))
            conn, addr = await accepting
            self.socks.append(conn)
            self.assertEqual(conn.gettimeout(), 0.0)  # non-blocking, as asyncio
            self.assertEqual(addr, c.getsockname())
            await loop.sock_sendall(c, b"ping")
            self.assertEqual(await loop.sock_recv(conn, 4), b"ping")
            await loop.sock_sendall(conn, b"pong")
            self.assertEqual(await loop.sock_recv(c, 4), b"pong")

        self.run_bounded(main())

    def test_connect_refused(self):
        loop = self.loop
        srv = self.listener()
        port = srv.getsockname()[1]
        srv.close()

        async def main():
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            self.socks.append(c)
            with self.assertRaises(ConnectionRefusedError):
                await loop.sock_connect(c, ("127.0.0.1", port))

        self.run_bounded(main())

    def test_blocking_socket_is_a_value_error(self):
        # asyncio checks in debug mode only; rill always does
        loop = self.loop
        loop.set_debug(True)
        a, b = socket.socketpair()
        self.socks += [a, b]

        async def main():
            for coro in (lambda: loop.sock_recv(a, 1), lambda: loop.sock_sendall(a, b"x"),
                         lambda: loop.sock_recv_into(a, bytearray(1)), lambda: loop.sock_accept(a),
                         lambda: loop.sock_connect(a, ("127.0.0.1", 1))):
                with self.assertRaisesRegex(ValueError, "the socket must be non-blocking"):
                    await coro()

        self.run_bounded(main())

    def test_cancelled_recv_leaves_the_socket_usable(self):
        a, b = self.pair()
        loop = self.loop

        async def main():
            t = loop.create_task(loop.sock_recv(a, 10))
            await aio.sleep(0.01)
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            b.send(b"after")
            self.assertEqual(await loop.sock_recv(a, 10), b"after")

        self.run_bounded(main())


class Names(LoopCase):
    def test_getaddrinfo_localhost(self):
        loop = self.loop

        async def main():
            infos = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
            self.assertTrue(infos)
            self.assertTrue(any(i[4][0] in ("127.0.0.1", "::1") for i in infos))
            self.assertEqual(infos, socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))

        self.run_bounded(main())

    def test_getaddrinfo_failure(self):
        loop = self.loop

        async def main():
            with self.assertRaises(socket.gaierror):
                await loop.getaddrinfo("localhost", "no-such-service-rill")

        self.run_bounded(main())

    def test_getnameinfo(self):
        loop = self.loop

        async def main():
            host, port = await loop.getnameinfo(("127.0.0.1", 80),
                                                socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
            self.assertEqual((host, port), ("127.0.0.1", "80"))

        self.run_bounded(main())


class Executors(LoopCase):
    def test_run_in_executor_default(self):
        loop = self.loop

        def work(x, y):
            return x + y, threading.current_thread() is not threading.main_thread()

        async def main():
            fut = loop.run_in_executor(None, work, 2, 3)
            self.assertTrue(asyncio.isfuture(fut))
            self.assertEqual(await fut, (5, True))
            with self.assertRaises(KeyError):
                await loop.run_in_executor(None, {}.__getitem__, "missing")

        self.run_bounded(main())

    def test_run_in_executor_gives_asyncio_cancelled_error_for_a_cancelled_concurrent_future(self):
        # As asyncio's wrap_future: a function that waits on a cancelled
        # concurrent future (run_coroutine_threadsafe's caller) ends the
        # executor future with asyncio's CancelledError, not concurrent's.
        loop = self.loop

        def wait_cancelled():
            f = concurrent.futures.Future()
            f.cancel()
            return f.result()

        async def main():
            with self.assertRaises(asyncio.CancelledError):
                await loop.run_in_executor(None, wait_cancelled)
            return "went on"

        self.assertEqual(self.run_bounded(main()), "went on")

    def test_run_coroutine_threadsafe_of_a_task_that_cancels_itself(self):
        loop = self.loop

        async def cancels_itself():
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

        def from_thread():
            return asyncio.run_coroutine_threadsafe(cancels_itself(), loop).result(10)

        async def main():
            with self.assertRaises(asyncio.CancelledError):
                await loop.run_in_executor(None, from_thread)

        self.run_bounded(main())

    def test_run_in_executor_thread_pool(self):
        loop = self.loop

        async def main():
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                names = await asyncio.gather(
                    *[loop.run_in_executor(ex, lambda: threading.current_thread().name)
                      for _ in range(4)])
                self.assertEqual(len(names), 4)
                self.assertTrue(all(n != threading.main_thread().name for n in names))
                with self.assertRaises(ValueError):
                    await loop.run_in_executor(ex, int, "x")

        self.run_bounded(main())

    def test_set_default_executor(self):
        loop = self.loop
        with self.assertRaises(TypeError):
            loop.set_default_executor(object())
        ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rill-default")
        loop.set_default_executor(ex)

        async def main():
            return await loop.run_in_executor(None, lambda: threading.current_thread().name)

        self.assertTrue(self.run_bounded(main()).startswith("rill-default"))
        loop.run_until_complete(loop.shutdown_default_executor())
        ex.shutdown()


class Signals(LoopCase):
    def test_signal_handler_sigusr1(self):
        loop = self.loop
        got = []

        async def main():
            done = loop.create_future()

            def on_signal(tag):
                got.append(tag)
                if not done.done():
                    done.set_result(None)

            loop.add_signal_handler(signal.SIGUSR1, on_signal, "usr1")
            os.kill(os.getpid(), signal.SIGUSR1)
            await done
            self.assertTrue(loop.remove_signal_handler(signal.SIGUSR1))
            self.assertFalse(loop.remove_signal_handler(signal.SIGUSR1))

        self.run_bounded(main())
        self.assertEqual(got, ["usr1"])

    def test_bad_signals(self):
        loop = self.loop
        with self.assertRaises(TypeError):
            loop.add_signal_handler("SIGUSR1", lambda: None)
        with self.assertRaises(ValueError):
            loop.add_signal_handler(10000, lambda: None)
        with self.assertRaises(RuntimeError):
            loop.add_signal_handler(signal.SIGKILL, lambda: None)
        with self.assertRaises(ValueError):
            loop.remove_signal_handler(10000)

        async def coro():
            pass

        with self.assertRaises(TypeError):
            loop.add_signal_handler(signal.SIGUSR2, coro)

    def test_not_the_main_thread(self):
        loop = self.loop
        errors = []

        def other():
            try:
                loop.add_signal_handler(signal.SIGUSR2, lambda: None)
            except RuntimeError as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        self.assertEqual(len(errors), 1)


class Adoption(unittest.TestCase):
    def tearDown(self):
        asyncio.set_event_loop_policy(None)

    @rill_only
    def test_install_and_asyncio_run(self):
        aio.install()
        self.assertIsInstance(asyncio.get_event_loop_policy(), aio.EventLoopPolicy)
        self.assertIsInstance(asyncio.get_event_loop_policy(), asyncio.DefaultEventLoopPolicy)

        async def main():
            loop = asyncio.get_running_loop()
            self.assertIsInstance(loop, aio.EventLoop)
            await asyncio.sleep(0.001)
            t = asyncio.create_task(asyncio.sleep(0, "task"))
            q = asyncio.Queue()
            q.put_nowait(1)
            results = await asyncio.gather(t, asyncio.sleep(0.01, "gather"), q.get())
            waited = await asyncio.wait_for(asyncio.sleep(0, "waited"), 1)
            with self.assertRaises(TimeoutError):
                await asyncio.wait_for(asyncio.sleep(5), 0.01)
            ev = asyncio.Event()
            loop.call_soon(ev.set)
            await ev.wait()
            return results, waited

        self.assertEqual(asyncio.run(main()), (["task", "gather", 1], "waited"))

    @rill_only
    def test_installed_asyncio_get_event_loop_and_new_event_loop_give_rill_loops(self):
        # The seed's legacy interface: the current loop, created if missing.
        aio.install()
        fresh = asyncio.new_event_loop()
        try:
            self.assertIsInstance(fresh, aio.EventLoop)
            asyncio.set_event_loop(fresh)
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.assertIs(asyncio.get_event_loop(), fresh)

            async def inside():
                return asyncio.get_event_loop()  # inside a task: the running loop

            self.assertIs(fresh.run_until_complete(inside()), fresh)
        finally:
            asyncio.set_event_loop(None)
            fresh.close()

    @rill_only
    def test_policy_new_event_loop(self):
        loop = aio.EventLoopPolicy().new_event_loop()
        try:
            self.assertIsInstance(loop, aio.EventLoop)
        finally:
            loop.close()

    @rill_only
    def test_loop_is_the_design_name_of_the_event_loop_class(self):
        # DESIGN.md and uvloop name the class Loop; rill.run's loop, the
        # policy's and new_event_loop's are all instances of it.
        self.assertIs(aio.Loop, aio.EventLoop)
        self.assertIn("Loop", aio.__all__)
        self.assertTrue(issubclass(aio.Loop, asyncio.AbstractEventLoop))

        async def main():
            return asyncio.get_running_loop()

        self.assertIsInstance(aio.run(main()), aio.Loop)
        loop = aio.Loop()
        try:
            self.assertFalse(loop.is_running())
            self.assertEqual(loop.run_until_complete(main()), loop)
        finally:
            loop.close()
        self.assertTrue(loop.is_closed())

    @rill_only
    def test_runner_loop_factory(self):
        async def main():
            return type(asyncio.get_running_loop())

        with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
            self.assertIs(runner.run(main()), aio.EventLoop)
            self.assertIsInstance(runner.get_loop(), aio.EventLoop)

    def test_asyncio_current_task_is_the_running_task(self):
        seen = []

        async def child():
            seen.append(asyncio.current_task())

        async def main():
            me = asyncio.current_task()
            self.assertIsNotNone(me)
            task = asyncio.get_running_loop().create_task(child())
            await task
            self.assertIs(seen[0], task)
            self.assertIs(asyncio.current_task(), me)
            asyncio.get_running_loop().call_soon(lambda: seen.append(asyncio.current_task()))
            await asyncio.sleep(0.001)
            self.assertIsNone(seen[1])  # a callback runs outside any task
            return me

        with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
            self.assertIsNone(asyncio.tasks._current_tasks.get(runner.get_loop()))
            runner.run(main())
            self.assertIsNone(asyncio.tasks._current_tasks.get(runner.get_loop()))

    def test_asyncio_timeout_and_task_group_in_a_loop_task(self):
        async def main():
            with self.assertRaises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(5)
            async with asyncio.TaskGroup() as tg:
                a = tg.create_task(asyncio.sleep(0, "a"))
                b = tg.create_task(asyncio.sleep(0.001, "b"))
            return a.result(), b.result()

        with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
            self.assertEqual(runner.run(main()), ("a", "b"))

    def test_gather_cancel_through_asyncio(self):
        async def main():
            inner = asyncio.gather(asyncio.sleep(5), asyncio.sleep(5))
            outer = asyncio.ensure_future(asyncio.wait_for(inner, 0.01))
            with self.assertRaises(TimeoutError):
                await outer
            self.assertTrue(inner.done())

        with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
            runner.run(main())


class Collection(LoopCase):
    def test_loop_with_io_is_collected(self):
        a, b = self.pair()
        loop = aio.new_event_loop()

        async def main():
            loop.add_reader(a, lambda: None)
            loop.remove_reader(a)
            await loop.sock_sendall(a, b"x")
            self.assertEqual(await loop.sock_recv(b, 1), b"x")
            await loop.run_in_executor(None, int, "1")

        loop.run_until_complete(main())
        loop.close()
        ref = weakref.ref(loop)
        del loop
        gc.collect()
        self.assertIsNone(ref())


if __name__ == "__main__":
    unittest.main()
