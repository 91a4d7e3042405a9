"""asyncio's sync primitives (Event, Lock, Semaphore, BoundedSemaphore,
Condition, Barrier, Queue/LifoQueue/PriorityQueue): one rule per test, the
order of events recorded and compared.

Runs against rill by default and against asyncio with RILL_TEST_IMPL=asyncio
(rill-only behaviour is marked rill_only; queue shutdown needs asyncio 3.13).
"""
import gc
import sys
import unittest
import weakref

from common import IS_RILL, aio, banner, rill_only, run


def setUpModule():
    print(banner(), file=sys.stderr)


has_shutdown = unittest.skipUnless(hasattr(aio.Queue, "shutdown"),
                                   "Queue.shutdown is asyncio 3.13's")


async def spin(n=5):
    for _ in range(n):
        await aio.sleep(0)


async def raises(exc, aw):
    try:
        await aw
    except exc:
        return True
    return False


class Events(unittest.TestCase):
    def test_set_wakes_every_waiter_in_order(self):
        log = []

        async def waiter(i, ev):
            log.append(("wake", i, await ev.wait()))

        async def main():
            ev = aio.Event()
            tasks = [aio.create_task(waiter(i, ev)) for i in range(3)]
            await spin()
            log.append("set")
            ev.set()
            await aio.gather(*tasks)

        run(main())
        self.assertEqual(log, ["set", ("wake", 0, True), ("wake", 1, True), ("wake", 2, True)])

    def test_clear_after_set_keeps_woken_waiters_and_blocks_new_ones(self):
        async def main():
            ev = aio.Event()
            t = aio.create_task(ev.wait())
            await spin()
            ev.set()
            ev.clear()
            self.assertFalse(ev.is_set())
            self.assertTrue(await t)
            late = aio.create_task(ev.wait())
            await spin()
            self.assertFalse(late.done())
            ev.set()
            self.assertTrue(await late)
            self.assertTrue(ev.is_set())

        run(main())

    def test_wait_on_a_set_event_returns_at_once(self):
        async def main():
            ev = aio.Event()
            ev.set()
            self.assertTrue(await ev.wait())

        run(main())


class Locks(unittest.TestCase):
    def test_waiters_get_the_lock_fifo_without_barging(self):
        log = []

        async def user(name, lock):
            async with lock:
                log.append(name)
                await aio.sleep(0)

        async def main():
            lock = aio.Lock()
            await lock.acquire()
            a = aio.create_task(user("a", lock))
            b = aio.create_task(user("b", lock))
            await spin()
            lock.release()
            c = aio.create_task(user("c", lock))  # arrives after the release
            await aio.gather(a, b, c)
            self.assertFalse(lock.locked())

        run(main())
        self.assertEqual(log, ["a", "b", "c"])

    def test_acquire_returns_true_and_locked_reports(self):
        async def main():
            lock = aio.Lock()
            self.assertFalse(lock.locked())
            self.assertIs(await lock.acquire(), True)
            self.assertTrue(lock.locked())
            lock.release()
            self.assertFalse(lock.locked())

        run(main())

    def test_release_unlocked_raises_runtime_error(self):
        async def main():
            lock = aio.Lock()
            with self.assertRaises(RuntimeError):
                lock.release()

        run(main())

    def test_cancelled_waiter_handed_the_lock_passes_it_on(self):
        log = []

        async def user(name, lock):
            try:
                await lock.acquire()
            except aio.CancelledError:
                log.append(name + " cancelled")
                raise
            log.append(name + " got it")
            lock.release()

        async def main():
            lock = aio.Lock()
            await lock.acquire()
            a = aio.create_task(user("a", lock))
            b = aio.create_task(user("b", lock))
            await spin()
            lock.release()  # handed to a ...
            a.cancel()      # ... which is cancelled before it runs
            await aio.gather(a, b, return_exceptions=True)
            self.assertFalse(lock.locked())

        run(main())
        self.assertEqual(log, ["a cancelled", "b got it"])

    def test_cancelled_pending_waiter_leaves_the_line(self):
        async def main():
            lock = aio.Lock()
            await lock.acquire()
            a = aio.create_task(lock.acquire())
            b = aio.create_task(lock.acquire())
            await spin()
            a.cancel()
            await spin()
            lock.release()
            self.assertTrue(await b)
            self.assertTrue(a.cancelled())
            lock.release()
            self.assertFalse(lock.locked())

        run(main())


class Semaphores(unittest.TestCase):
    def test_units_are_handed_out_fifo(self):
        log = []

        async def user(i, sem):
            async with sem:
                log.append(i)
                await aio.sleep(0)

        async def main():
            sem = aio.Semaphore(2)
            await aio.gather(*(user(i, sem) for i in range(5)))
            self.assertFalse(sem.locked())

        run(main())
        self.assertEqual(log, [0, 1, 2, 3, 4])

    def test_locked_when_no_unit_is_free(self):
        async def main():
            sem = aio.Semaphore(1)
            self.assertFalse(sem.locked())
            self.assertTrue(await sem.acquire())
            self.assertTrue(sem.locked())
            sem.release()
            sem.release()  # a plain semaphore may go past its initial value
            self.assertTrue(await sem.acquire())
            self.assertTrue(await sem.acquire())
            self.assertTrue(sem.locked())

        run(main())

    def test_bounded_release_past_value_raises_value_error(self):
        async def main():
            sem = aio.BoundedSemaphore(1)
            await sem.acquire()
            sem.release()
            with self.assertRaises(ValueError):
                sem.release()

        run(main())

    def test_cancelled_waiter_handed_a_unit_passes_it_on(self):
        log = []

        async def user(name, sem):
            try:
                await sem.acquire()
            except aio.CancelledError:
                log.append(name + " cancelled")
                raise
            log.append(name + " got it")
            sem.release()

        async def main():
            sem = aio.Semaphore(0)
            a = aio.create_task(user("a", sem))
            b = aio.create_task(user("b", sem))
            await spin()
            sem.release()
            a.cancel()
            await aio.gather(a, b, return_exceptions=True)
            self.assertFalse(sem.locked())

        run(main())
        self.assertEqual(log, ["a cancelled", "b got it"])

    def test_bad_initial_values(self):
        with self.assertRaises(ValueError):
            aio.Semaphore(-1)
        with self.assertRaises(TypeError):
            aio.Semaphore("x")
        with self.assertRaises(TypeError):
            aio.BoundedSemaphore(None)


class Conditions(unittest.TestCase):
    def test_notify_wakes_waiters_fifo_and_notify_all_the_rest(self):
        log = []

        async def waiter(i, cond):
            async with cond:
                self.assertIs(await cond.wait(), True)
                self.assertTrue(cond.locked())
                log.append(i)

        async def main():
            cond = aio.Condition()
            tasks = [aio.create_task(waiter(i, cond)) for i in range(4)]
            await spin()
            async with cond:
                cond.notify()
            await spin()
            log.append("notify_all")
            async with cond:
                cond.notify_all()
            await aio.gather(*tasks)

        run(main())
        self.assertEqual(log, [0, "notify_all", 1, 2, 3])

    def test_notify_n(self):
        log = []

        async def waiter(i, cond):
            async with cond:
                await cond.wait()
                log.append(i)

        async def main():
            cond = aio.Condition()
            tasks = [aio.create_task(waiter(i, cond)) for i in range(3)]
            await spin()
            async with cond:
                cond.notify(2)
            await spin()
            log.append("then")
            async with cond:
                cond.notify(5)
            await aio.gather(*tasks)

        run(main())
        self.assertEqual(log, [0, 1, "then", 2])

    def test_wait_for_predicate(self):
        state = {"n": 0}

        async def main():
            cond = aio.Condition(aio.Lock())

            async def consumer():
                async with cond:
                    return await cond.wait_for(lambda: state["n"] >= 3 and state["n"])

            t = aio.create_task(consumer())
            for _ in range(3):
                await spin()
                async with cond:
                    state["n"] += 1
                    cond.notify_all()
            self.assertEqual(await t, 3)

        run(main())

    def test_wait_or_notify_without_the_lock_raises_runtime_error(self):
        async def main():
            cond = aio.Condition()
            with self.assertRaises(RuntimeError):
                await cond.wait()
            with self.assertRaises(RuntimeError):
                cond.notify()
            with self.assertRaises(RuntimeError):
                cond.notify_all()

        run(main())

    def test_cancelled_wait_holds_the_lock_again_before_raising(self):
        log = []

        async def waiter(cond):
            async with cond:
                try:
                    await cond.wait()
                except aio.CancelledError:
                    log.append(("cancelled, locked", cond.locked()))
                    raise

        async def main():
            cond = aio.Condition()
            t = aio.create_task(waiter(cond))
            await spin()
            await cond.acquire()
            t.cancel()
            await spin()
            log.append("holder releases")
            cond.release()
            with self.assertRaises(aio.CancelledError):
                await t
            self.assertFalse(cond.locked())

        run(main())
        self.assertEqual(log, ["holder releases", ("cancelled, locked", True)])


class Barriers(unittest.TestCase):
    def test_wait_returns_arrival_indexes(self):
        async def main():
            b = aio.Barrier(3)
            self.assertEqual(b.parties, 3)
            tasks = []
            for _ in range(3):
                tasks.append(aio.create_task(b.wait()))
                await spin(2)
            self.assertEqual(await aio.gather(*tasks), [0, 1, 2])
            self.assertEqual(b.n_waiting, 0)
            self.assertFalse(b.broken)

        run(main())

    def test_n_waiting_counts_and_cancelled_waiter_leaves(self):
        async def main():
            b = aio.Barrier(3)
            t1 = aio.create_task(b.wait())
            t2 = aio.create_task(b.wait())
            await spin()
            self.assertEqual(b.n_waiting, 2)
            t1.cancel()
            await spin()
            self.assertEqual(b.n_waiting, 1)
            t2.cancel()
            await aio.gather(t1, t2, return_exceptions=True)

        run(main())

    def test_abort_breaks_waiters_and_later_waits(self):
        async def main():
            b = aio.Barrier(3)
            t = aio.create_task(b.wait())
            await spin()
            await b.abort()
            self.assertTrue(b.broken)
            self.assertTrue(await raises(aio.BrokenBarrierError, t))
            self.assertTrue(await raises(aio.BrokenBarrierError, b.wait()))

        run(main())

    def test_reset_fails_waiters_and_makes_it_usable_again(self):
        async def main():
            b = aio.Barrier(2)
            t = aio.create_task(b.wait())
            await spin()
            await b.reset()
            self.assertTrue(await raises(aio.BrokenBarrierError, t))
            self.assertFalse(b.broken)
            self.assertEqual(sorted(await aio.gather(b.wait(), b.wait())), [0, 1])

        run(main())

    def test_bad_parties(self):
        with self.assertRaises(ValueError):
            aio.Barrier(0)
        with self.assertRaises(TypeError):
            aio.Barrier("x")


class Queues(unittest.TestCase):
    def test_fifo_lifo_and_priority_order(self):
        async def main():
            q, lq, pq = aio.Queue(), aio.LifoQueue(), aio.PriorityQueue()
            for i in (1, 2, 3):
                await q.put(i)
                await lq.put(i)
            for item in ((3, "c"), (1, "a"), (2, "b")):
                await pq.put(item)
            self.assertEqual([await q.get() for _ in range(3)], [1, 2, 3])
            self.assertEqual([await lq.get() for _ in range(3)], [3, 2, 1])
            self.assertEqual([await pq.get() for _ in range(3)], [(1, "a"), (2, "b"), (3, "c")])

        run(main())

    @rill_only  # asyncio orders equal priorities by the next element
    def test_priority_ties_come_out_fifo(self):
        async def main():
            pq = aio.PriorityQueue()
            for item in ((2, "z"), (1, "y"), (2, "a"), 1, (1, "b")):
                pq.put_nowait(item)
            self.assertEqual([pq.get_nowait() for _ in range(5)],
                             [(1, "y"), 1, (1, "b"), (2, "z"), (2, "a")])

        run(main())

    @rill_only
    def test_priority_items_need_an_int_key(self):
        async def main():
            pq = aio.PriorityQueue()
            for bad in ("x", ("a", 1), (), 1.5, (None,)):
                with self.assertRaises(TypeError):
                    pq.put_nowait(bad)
                with self.assertRaises(TypeError):
                    await pq.put(bad)
            self.assertTrue(pq.empty())

        run(main())

    def test_values_come_back_as_they_were_put(self):
        class Obj:
            pass

        o = Obj()
        items = [None, True, False, 0, -5, 2**63 - 1, 2**70, 1.5, b"", b"\x00b", "str",
                 (1, "t"), [1], o]

        async def main():
            q = aio.Queue()
            for x in items:
                await q.put(x)
            out = [await q.get() for _ in items]
            self.assertEqual(out, items)
            for a, b in zip(out, items):
                self.assertIs(type(a), type(b))
            self.assertIs(out[-1], o)

        run(main())

    def test_put_on_a_full_queue_waits_for_a_get(self):
        log = []

        async def producer(q):
            for i in range(3):
                await q.put(i)
                log.append(("put", i))

        async def main():
            q = aio.Queue(maxsize=1)
            self.assertEqual(q.maxsize, 1)
            t = aio.create_task(producer(q))
            await spin()
            self.assertTrue(q.full())
            self.assertEqual(q.qsize(), 1)
            for _ in range(3):
                log.append(("get", await q.get()))
                await spin()
            await t

        run(main())
        self.assertEqual(log, [("put", 0), ("get", 0), ("put", 1), ("get", 1), ("put", 2),
                               ("get", 2)])

    def test_nowait_raises_queue_empty_and_queue_full(self):
        async def main():
            q = aio.Queue(maxsize=1)
            self.assertTrue(q.empty())
            with self.assertRaises(aio.QueueEmpty):
                q.get_nowait()
            q.put_nowait("x")
            with self.assertRaises(aio.QueueFull):
                q.put_nowait("y")
            self.assertEqual(q.get_nowait(), "x")

        run(main())

    def test_join_waits_for_every_task_done(self):
        log = []

        async def main():
            q = aio.Queue()
            for i in range(2):
                q.put_nowait(i)

            async def joiner():
                await q.join()
                log.append("joined")

            j = aio.create_task(joiner())
            for _ in range(2):
                await q.get()
                await spin()
                log.append("done")
                q.task_done()
            await j
            with self.assertRaises(ValueError):
                q.task_done()
            await q.join()  # at once

        run(main())
        self.assertEqual(log, ["done", "done", "joined"])

    def test_getters_are_served_fifo(self):
        log = []

        async def getter(i, q):
            log.append((i, await q.get()))

        async def main():
            q = aio.Queue()
            tasks = [aio.create_task(getter(i, q)) for i in range(3)]
            await spin()
            for x in "abc":
                q.put_nowait(x)
            await aio.gather(*tasks)

        run(main())
        self.assertEqual(log, [(0, "a"), (1, "b"), (2, "c")])

    def test_getter_cancelled_after_being_handed_an_item_passes_it_on(self):
        async def main():
            q = aio.Queue()
            a = aio.create_task(q.get())
            b = aio.create_task(q.get())
            await spin()
            q.put_nowait("item")
            a.cancel()
            self.assertEqual(await b, "item")
            self.assertTrue(a.cancelled())
            self.assertTrue(q.empty())

        run(main())

    def test_cancelled_put_leaves_nothing_in_the_queue(self):
        async def main():
            q = aio.Queue(maxsize=1)
            q.put_nowait(1)
            p = aio.create_task(q.put(2))
            await spin()
            p.cancel()
            await spin()
            self.assertEqual(q.get_nowait(), 1)
            self.assertTrue(q.empty())

        run(main())

    @has_shutdown
    def test_shutdown_fails_waiting_putters_and_getters(self):
        async def main():
            full = aio.Queue(maxsize=1)
            full.put_nowait("left")
            putter = aio.create_task(full.put("more"))
            empty = aio.Queue()
            getter = aio.create_task(empty.get())
            await spin()
            full.shutdown()
            empty.shutdown()
            self.assertTrue(await raises(aio.QueueShutDown, putter))
            self.assertTrue(await raises(aio.QueueShutDown, getter))
            with self.assertRaises(aio.QueueShutDown):
                full.put_nowait("x")
            self.assertTrue(await raises(aio.QueueShutDown, full.put("x")))
            self.assertEqual(await full.get(), "left")  # gets still take what is left
            with self.assertRaises(aio.QueueShutDown):
                full.get_nowait()

        run(main())

    @has_shutdown
    def test_shutdown_immediate_drops_the_items_and_releases_join(self):
        async def main():
            q = aio.Queue()
            for i in range(3):
                q.put_nowait(("item", i))
            joiner = aio.create_task(q.join())
            await spin()
            q.shutdown(immediate=True)
            self.assertTrue(q.empty())
            with self.assertRaises(aio.QueueShutDown):
                q.get_nowait()
            await joiner

        run(main())

    def test_bad_maxsize_is_type_error(self):
        async def main():
            with self.assertRaises(TypeError):
                q = aio.Queue(maxsize=None)
                q.full()
            with self.assertRaises(TypeError):
                q = aio.Queue(maxsize="1")
                q.full()

        run(main())


class CancelEverywhere(unittest.TestCase):
    """Every waiting point raises CancelledError and leaves the primitive as it was."""

    def test_cancel_at_every_waiting_point(self):
        async def main():
            lock = aio.Lock()
            await lock.acquire()
            sem = aio.Semaphore(0)
            ev = aio.Event()
            cond = aio.Condition()
            barrier = aio.Barrier(2)
            full = aio.Queue(maxsize=1)
            full.put_nowait(0)
            empty = aio.Queue()
            pending = aio.Queue()
            pending.put_nowait(0)

            async def cond_wait():
                async with cond:
                    await cond.wait()

            points = {
                "lock": lock.acquire(), "semaphore": sem.acquire(), "event": ev.wait(),
                "condition": cond_wait(), "barrier": barrier.wait(), "put": full.put(1),
                "get": empty.get(), "join": pending.join(),
            }
            tasks = {k: aio.create_task(c) for k, c in points.items()}
            await spin()
            for t in tasks.values():
                self.assertFalse(t.done())
                t.cancel()
            results = await aio.gather(*tasks.values(), return_exceptions=True)
            for name, r in zip(tasks, results):
                self.assertIsInstance(r, aio.CancelledError, name)
            self.assertTrue(lock.locked())
            self.assertTrue(sem.locked())
            self.assertFalse(cond.locked())
            self.assertEqual(barrier.n_waiting, 0)
            self.assertEqual(full.qsize(), 1)
            self.assertEqual(full.get_nowait(), 0)
            self.assertTrue(full.empty())
            # each primitive still works
            lock.release()
            self.assertTrue(await lock.acquire())
            sem.release()
            self.assertTrue(await sem.acquire())
            empty.put_nowait("x")
            self.assertEqual(await empty.get(), "x")

        run(main())


    def test_a_wait_cancelled_before_it_starts_takes_nothing(self):
        async def main():
            q = aio.Queue()
            q.put_nowait("x")
            lock = aio.Lock()
            sem = aio.Semaphore(1)
            tasks = [aio.create_task(q.get()), aio.create_task(lock.acquire()),
                     aio.create_task(sem.acquire())]
            for t in tasks:
                t.cancel()
            await aio.gather(*tasks, return_exceptions=True)
            self.assertEqual(q.get_nowait(), "x")
            self.assertFalse(lock.locked())
            self.assertFalse(sem.locked())

        run(main())


class Lifetime(unittest.TestCase):
    """The primitives and the items they hold under the garbage collector."""

    def test_dropping_primitives_while_tasks_wait(self):
        async def main():
            waits = []
            lock = aio.Lock()
            await lock.acquire()
            sem = aio.Semaphore(0)
            q = aio.Queue(maxsize=1)
            q.put_nowait("held")
            waits = [lock.acquire(), sem.acquire(), aio.Event().wait(), aio.Queue().get(),
                     q.put("more"), aio.Barrier(2).wait()]
            tasks = [aio.create_task(w) for w in waits]
            refs = [weakref.ref(x) for x in (lock, sem, q)]
            del lock, sem, q, waits
            await spin()
            gc.collect()
            await spin()
            for t in tasks:
                self.assertFalse(t.done())
                t.cancel()
            await aio.gather(*tasks, return_exceptions=True)
            del tasks
            gc.collect()
            return refs

        refs = run(main())
        gc.collect()
        for r in refs:
            self.assertIsNone(r(), "a primitive outlived its last reference")

    def test_items_of_a_dropped_queue_are_freed(self):
        class Item:
            pass

        async def main():
            q = aio.Queue()
            items = [Item() for _ in range(3)]
            for x in items:
                q.put_nowait(x)
            refs = [weakref.ref(x) for x in items]
            del items, x
            got = q.get_nowait()
            del q
            gc.collect()
            self.assertIsNotNone(refs[0]())
            del got
            gc.collect()
            return refs

        refs = run(main())
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None, None])

    @rill_only  # asyncio's queue keeps them until the queue goes
    def test_items_left_in_a_queue_are_freed_when_its_loop_closes(self):
        class Item:
            pass

        holder = {}

        async def main():
            q = aio.Queue()
            item = Item()
            q.put_nowait(item)
            holder.update(q=q, ref=weakref.ref(item))

        run(main())
        gc.collect()
        self.assertIsNone(holder["ref"](), "the loop's close freed the queued item")
        self.assertIsNotNone(holder["q"])

    @rill_only
    def test_use_from_a_closed_loop_is_runtime_error(self):
        holder = {}

        async def main():
            holder.update(q=aio.Queue(), lock=aio.Lock(), ev=aio.Event())
            holder["q"].put_nowait("x")

        run(main())
        q, lock, ev = holder["q"], holder["lock"], holder["ev"]
        with self.assertRaises(RuntimeError):
            q.put_nowait(1)
        with self.assertRaises(RuntimeError):
            q.get_nowait()
        with self.assertRaises(RuntimeError):
            ev.set()

        async def other():  # on another loop: the waits raise at the await
            with self.assertRaises(RuntimeError):
                await q.get()
            with self.assertRaises(RuntimeError):
                await lock.acquire()

        run(other())


class RillOnly(unittest.TestCase):
    @rill_only
    def test_wrong_types_are_type_errors(self):
        async def main():
            with self.assertRaises(TypeError):
                aio.Condition(lock=object())
            with self.assertRaises(TypeError):
                aio.Queue(maxsize=None)
            with self.assertRaises(TypeError):
                aio.Queue(maxsize=1.5)
            with self.assertRaises(TypeError):
                aio.Semaphore(1.0)
            with self.assertRaises(TypeError):
                aio.Lock(1)
            with self.assertRaises(TypeError):
                aio.Condition().notify("1")

        run(main())

    @rill_only
    def test_primitives_made_outside_a_loop_bind_at_first_use(self):
        q = aio.Queue()
        lock = aio.Lock()
        self.assertTrue(q.empty())
        self.assertFalse(lock.locked())
        self.assertIsNone(q._loop)

        async def main():
            q.put_nowait(1)
            async with lock:
                self.assertEqual(await q.get(), 1)
            return aio.get_running_loop()

        loop = run(main())
        self.assertIs(q._loop, loop)

    @rill_only
    def test_wrap_queue_shares_the_core_queue(self):
        async def main():
            q = aio.Queue()
            w = aio.wrap_queue(q._rill_queue_address())
            self.assertIsNot(w, q)
            w.put_nowait(("from", "w"))
            await w.put(7)
            self.assertEqual(await q.get(), ("from", "w"))
            self.assertEqual(q.get_nowait(), 7)
            del q
            gc.collect()
            w.put_nowait(b"still alive")
            self.assertEqual(await w.get(), b"still alive")
            self.assertIs(aio._wrap_queue, aio.wrap_queue)

        run(main())

    @rill_only
    def test_wrap_queue_keeps_the_kind(self):
        async def main():
            p = aio.PriorityQueue()
            wp = aio.wrap_queue(p._rill_queue_address())
            self.assertIsInstance(wp, aio.PriorityQueue)
            for item in [(3, "c"), (1, "a"), (2, "b"), (1, "a2")]:
                wp.put_nowait(item)
            self.assertEqual([p.get_nowait() for _ in range(4)],
                             [(1, "a"), (1, "a2"), (2, "b"), (3, "c")])
            lq = aio.LifoQueue()
            wl = aio.wrap_queue(lq._rill_queue_address())
            self.assertIsInstance(wl, aio.LifoQueue)
            wl.put_nowait(1)
            wl.put_nowait(2)
            self.assertEqual(lq.get_nowait(), 2)
            with self.assertRaises(TypeError):
                aio.wrap_queue("not an address")
            with self.assertRaises(ValueError):
                aio.wrap_queue(0)

        run(main())

    @rill_only
    def test_reprs(self):
        async def main():
            self.assertRegex(repr(aio.Lock()), r"<rill\.Lock object at 0x[0-9a-f]+ \[unlocked\]>")
            self.assertRegex(repr(aio.Event()), r"\[unset\]>")
            self.assertRegex(repr(aio.BoundedSemaphore(2)), r"\[unlocked, value:2\]>")
            self.assertRegex(repr(aio.Barrier(2)), r"\[filling, waiters:0/2\]>")
            self.assertRegex(repr(aio.Queue(3)), r"maxsize=3 qsize=0>")

        run(main())

    def test_names_are_exported(self):
        names = ["Event", "Lock", "Semaphore", "BoundedSemaphore", "Condition", "Barrier",
                 "BrokenBarrierError", "Queue", "LifoQueue", "PriorityQueue", "QueueEmpty",
                 "QueueFull"]
        for n in names:
            self.assertIn(n, aio.__all__)
        self.assertEqual(aio.Queue[int].__origin__, aio.Queue)
        if IS_RILL:
            import asyncio

            self.assertIs(aio.BrokenBarrierError, asyncio.BrokenBarrierError)
            self.assertIs(aio.QueueEmpty, asyncio.QueueEmpty)
            self.assertIs(aio.QueueFull, asyncio.QueueFull)
            self.assertIn("QueueShutDown", aio.__all__)


if __name__ == "__main__":
    unittest.main()
