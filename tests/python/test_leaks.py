"""Reference and memory leaks: rounds of 10,000 task runs (results, errors,
cancels, gather, wait_for, TaskGroup, call_soon), of sync primitives
(queues of objects, contended locks, cancelled waits, conditions, barriers,
queues dropped with items in them) and of streams (connections, reads that
fail, cancelled reads, to_thread, a server per round) must not grow the number of
live Python objects, traced Python memory, sys.gettotalrefcount (debug
builds only) or RSS (which also sees the C core's allocations).
"""
import gc
import os
import sys
import tracemalloc
import unittest

from common import aio, banner, rill_only, run

N = 10_000


def setUpModule():
    print(banner(), file=sys.stderr)


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def ok(i):
    await aio.sleep(0)
    return (i, "value")  # an object, not a native value


async def num(i):
    return i


async def fail(i):
    raise ValueError(i)


async def forever():
    await aio.sleep(3600)


async def one_round(n):
    loop = aio.get_running_loop()
    for i in range(n // 7):  # 7 tasks per pass
        # plain task with an object result
        assert (await aio.create_task(ok(i)))[0] == i
        # failure retrieved by the awaiter (exception -> traceback -> frame cycle)
        t = aio.create_task(fail(i))
        try:
            await t
        except ValueError:
            pass
        # cancel
        c = aio.create_task(forever())
        await aio.sleep(0)
        c.cancel()
        try:
            await c
        except aio.CancelledError:
            pass
        # gather with an error in place
        r = await aio.gather(num(i), fail(i), return_exceptions=True)
        assert r[0] == i
        # wait_for that times out
        try:
            await aio.wait_for(forever(), 0)
        except TimeoutError:
            pass
        # done callback and call_soon
        f = loop.create_future()
        f.add_done_callback(lambda fut: None)
        loop.call_soon(f.set_result, i)
        await f
        # a task group
        async with aio.TaskGroup() as tg:
            tg.create_task(num(i))
    return n


async def sync_round(n):
    lock, sem, ev, cond = aio.Lock(), aio.Semaphore(1), aio.Event(), aio.Condition()
    q = aio.Queue(maxsize=1)

    async def consumer(count):
        for _ in range(count):
            item = await q.get()
            assert item[1] == "v"
            q.task_done()

    async def user(i):
        async with lock:
            await aio.sleep(0)
        async with sem:
            pass
        async with cond:
            cond.notify_all()
        return i

    for i in range(n // 10):  # 10 items per pass
        c = aio.create_task(consumer(10))
        for j in range(10):
            await q.put((j, "v"))  # an object: a reference the queue owns
        await c
        await q.join()
        assert await aio.gather(user(1), user(2)) == [1, 2]
        # cancelled waits: a get handed an item, a lock acquire, an event wait
        g = aio.create_task(q.get())
        w = aio.create_task(ev.wait())
        await lock.acquire()
        a = aio.create_task(lock.acquire())
        await aio.sleep(0)
        q.put_nowait((i, "v"))
        g.cancel()
        a.cancel()
        w.cancel()
        lock.release()
        await aio.gather(g, a, w, return_exceptions=True)
        assert q.get_nowait()[0] == i
        q.task_done()
        b = aio.Barrier(2)
        await aio.gather(b.wait(), b.wait())
        # a queue dropped with object items still in it
        dropped = aio.PriorityQueue()
        dropped.put_nowait((2, object()))
        dropped.put_nowait((1, "x"))
        del dropped
    return n


async def io_round(n):
    async def echo(reader, writer):
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    def boom():
        raise ValueError("boom")

    srv = await aio.start_server(echo, "127.0.0.1", 0, limit=64)
    port = srv.sockets[0].getsockname()[1]
    for i in range(n):
        r, w = await aio.open_connection("127.0.0.1", port, limit=64)
        w.write(b"line %d\n" % i)
        await w.drain()
        assert await r.readline() == b"line %d\n" % i
        w.write(b"x" * 100 + b"\n")  # past the limit: LimitOverrunError, data kept
        await r.readexactly(1)
        try:
            await r.readuntil(b"\n")
        except aio.LimitOverrunError:
            pass
        assert len(await r.readexactly(100)) == 100
        t = aio.create_task(r.read(10))  # a read cancelled while pending
        await aio.sleep(0)
        t.cancel()
        await aio.gather(t, return_exceptions=True)
        assert await aio.to_thread(len, (i, "v")) == 2
        try:
            await aio.to_thread(boom)
        except ValueError:
            pass
        w.write_eof()
        try:
            await r.readexactly(5)  # EOF first: IncompleteReadError with .partial
        except aio.IncompleteReadError:
            pass
        w.close()
        await w.wait_closed()
    srv.close()
    await srv.wait_closed()
    return n


async def transport_round(n):
    """asyncio's protocols and streams on the loop's socket transports
    (rill's in C): echo, BufferedProtocol, half-close, abort, a protocol
    that raises."""
    import asyncio

    loop = aio.get_running_loop()

    open_transports = set()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            open_transports.add(transport)

        def data_received(self, data):
            self.transport.write(data)

        def connection_lost(self, exc):
            open_transports.discard(self.transport)

    class Client(asyncio.Protocol):
        def __init__(self):
            self.got = bytearray()
            self.done = loop.create_future()
            self.data = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.got += data
            if not self.data.done():
                self.data.set_result(None)

        def eof_received(self):
            return True

        def connection_lost(self, exc):
            self.done.set_result(exc)

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(16)
            self.done = loop.create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            raise ValueError("raised by buffer_updated")  # closes with this error

        def connection_lost(self, exc):
            self.done.set_result(exc)

    loop.set_exception_handler(lambda loop, ctx: None)
    srv = await loop.create_server(Echo, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    for i in range(n):
        tr, pr = await loop.create_connection(Client, "127.0.0.1", port)
        tr.write(b"ping %d" % i)
        await pr.data
        tr.write_eof()
        tr.close()
        assert await pr.done is None
        tr, pr = await loop.create_connection(Buffered, "127.0.0.1", port)
        tr.write(b"x" * 40)
        assert isinstance(await pr.done, ValueError)
        tr, pr = await loop.create_connection(Client, "127.0.0.1", port)
        tr.write(b"y" * 300000)
        tr.abort()
        await pr.done
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"line\n")
        assert await r.readline() == b"line\n"
        w.close()
        await w.wait_closed()
    srv.close()
    await srv.wait_closed()
    for tr in list(open_transports):  # the server's side of the last ones
        tr.close()
    while open_transports:
        await asyncio.sleep(0)
    loop.set_exception_handler(None)
    return n


@rill_only  # asyncio itself grows a few hundred objects per round (caches)
class Leaks(unittest.TestCase):
    def measure(self, fn):
        fn()  # warm-up: caches, free lists, interned strings
        fn()
        gc.collect()
        objs0 = len(gc.get_objects())
        refs0 = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
        rss0 = rss_kib()
        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
        for _ in range(2):
            fn()
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
        objs = len(gc.get_objects()) - objs0
        rss = rss_kib() - rss0
        refs = sys.gettotalrefcount() - refs0 if refs0 is not None else None
        print(f"\n  objects +{objs}, traced bytes {grown:+d}, RSS {rss:+d} KiB, "
              f"totalrefcount {'n/a (release build)' if refs is None else f'{refs:+d}'}",
              file=sys.stderr)
        self.assertLess(objs, 50, "live Python objects grew")
        self.assertLess(grown, 64 * 1024, "traced Python memory grew")
        self.assertLess(rss, 2048, "RSS grew")
        if refs is not None:
            self.assertLess(refs, 100, "sys.gettotalrefcount grew")

    def test_10000_task_runs_in_one_loop_do_not_leak(self):
        self.measure(lambda: run(one_round(N)))

    def test_10000_sync_operations_do_not_leak(self):
        self.measure(lambda: run(sync_round(N)))

    def test_500_connections_do_not_leak(self):
        self.measure(lambda: run(io_round(500)))

    def test_300_rounds_of_transport_connections_do_not_leak(self):
        self.measure(lambda: run(transport_round(300)))

    def test_many_run_calls_do_not_leak(self):
        async def main():
            await aio.gather(*(num(i) for i in range(10)))
            aio.create_task(forever())  # cancelled by run() at shutdown

        def many():
            for _ in range(300):
                run(main())

        self.measure(many)


if __name__ == "__main__":
    unittest.main()
