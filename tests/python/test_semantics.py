"""asyncio's observable semantics (shared/reference/asyncio-semantics.md),
one behaviour per test, the order of events recorded and compared.

Runs against rill by default and against asyncio with RILL_TEST_IMPL=asyncio.
"""
import contextvars
import gc
import os
import signal
import sys
import threading
import time
import unittest

from common import IS_RILL, aio, banner, rill_only, run


def setUpModule():
    print(banner(), file=sys.stderr)


class Run(unittest.TestCase):
    """A. run() lifecycle"""

    def test_run_inside_running_loop_raises_runtime_error(self):
        async def main():
            coro = aio.sleep(0)
            try:
                aio.run(coro)
            finally:
                if hasattr(coro, "close"):
                    coro.close()

        with self.assertRaises(RuntimeError):
            run(main())

    def test_run_non_coroutine_raises_value_error(self):
        with self.assertRaises((ValueError, TypeError)):
            aio.run(42)

    def test_each_run_has_its_own_new_loop(self):
        async def main():
            return aio.get_running_loop()

        a = run(main())
        b = run(main())
        self.assertIsNot(a, b)
        self.assertTrue(a.is_closed())
        self.assertTrue(b.is_closed())

    def test_run_returns_main_result(self):
        async def main():
            return {"x": 1}

        self.assertEqual(run(main()), {"x": 1})

    def test_run_reraises_main_exception(self):
        class Boom(Exception):
            pass

        async def main():
            raise Boom("m")

        with self.assertRaises(Boom):
            run(main())

    def test_run_cancels_leftover_tasks_which_can_clean_up(self):
        log = []

        async def leftover():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                log.append("leftover cancelled")
                raise

        async def main():
            aio.create_task(leftover())
            await aio.sleep(0)
            log.append("main done")

        run(main())
        self.assertEqual(log, ["main done", "leftover cancelled"])

    def test_leftover_task_failing_during_shutdown_goes_to_handler(self):
        seen = []

        async def leftover():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                raise KeyError("cleanup failed")

        async def main():
            aio.get_running_loop().set_exception_handler(lambda lp, ctx: seen.append(ctx))
            aio.create_task(leftover())
            await aio.sleep(0)

        run(main())
        self.assertEqual(len(seen), 1, seen)
        self.assertIsInstance(seen[0].get("exception"), KeyError)
        self.assertIn("shutdown", seen[0]["message"])

    def test_ctrl_c_cancels_main_and_raises_keyboard_interrupt(self):
        log = []

        async def main():
            aio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
            try:
                await aio.sleep(5)
            except aio.CancelledError:
                log.append("main cancelled")
                raise

        t0 = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            run(main())
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(log, ["main cancelled"])

    def test_ctrl_c_from_another_process_reaches_a_waiting_run_within_50ms(self):
        import subprocess
        import sys

        log = []

        async def main():
            # The loop waits in the kernel (nothing due for 10 s) when the
            # signal comes from a child process.
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                log.append("main cancelled")
                raise

        child = subprocess.Popen(
            [sys.executable, "-c",
             "import os, signal, sys, time\n"
             "time.sleep(0.3)\n"
             "print(time.monotonic(), flush=True)\n"
             "os.kill(int(sys.argv[1]), signal.SIGINT)\n", str(os.getpid())],
            stdout=subprocess.PIPE, text=True)
        try:
            with self.assertRaises(KeyboardInterrupt):
                run(main())
            got = time.monotonic()
        finally:
            out, _ = child.communicate(timeout=10)
        sent = float(out.split()[0])  # CLOCK_MONOTONIC: one clock for both processes
        self.assertEqual(log, ["main cancelled"])
        self.assertLess(got - sent, 0.05)


class Loop(unittest.TestCase):
    """B. loop scheduling and time"""

    def test_call_soon_runs_fifo(self):
        log = []

        async def main():
            loop = aio.get_running_loop()
            for i in range(10):
                loop.call_soon(log.append, i)
            await aio.sleep(0.01)

        run(main())
        self.assertEqual(log, list(range(10)))

    def test_work_scheduled_during_an_iteration_runs_in_the_next(self):
        log = []

        async def main():
            loop = aio.get_running_loop()

            def first():
                log.append("first")
                loop.call_soon(log.append, "scheduled by first")

            loop.call_soon(first)
            loop.call_soon(log.append, "second")
            await aio.sleep(0.01)

        run(main())
        self.assertEqual(log, ["first", "second", "scheduled by first"])

    @rill_only
    def test_equal_deadline_timers_run_fifo(self):
        log = []

        async def main():
            loop = aio.get_running_loop()
            when = loop.time() + 0.02
            for i in range(20):
                loop.call_at(when, log.append, i)
            await aio.sleep(0.05)

        run(main())
        self.assertEqual(log, list(range(20)))

    def test_timers_never_fire_early(self):
        async def main():
            loop = aio.get_running_loop()
            fired = loop.create_future()
            t0 = time.monotonic()
            loop.call_later(0.03, lambda: fired.set_result(time.monotonic()))
            return (await fired) - t0

        self.assertGreaterEqual(run(main()), 0.03 - 1e-3)

    def test_loop_time_is_monotonic_clock(self):
        async def main():
            return aio.get_running_loop().time(), time.monotonic()

        lt, mono = run(main())
        self.assertLess(abs(lt - mono), 0.5)

    def test_callback_exception_goes_to_handler_and_loop_keeps_running(self):
        seen = []

        def boom():
            raise KeyError("in callback")

        async def main():
            loop = aio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
            loop.call_soon(boom)
            await aio.sleep(0.01)
            return "alive"

        self.assertEqual(run(main()), "alive")
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0]["exception"], KeyError)
        self.assertIn("Exception in callback", seen[0]["message"])

    def test_handle_cancel_stops_callback(self):
        log = []

        async def main():
            loop = aio.get_running_loop()
            h = loop.call_soon(log.append, "soon")
            t = loop.call_later(0.01, log.append, "later")
            h.cancel()
            t.cancel()
            self.assertTrue(h.cancelled())
            await aio.sleep(0.03)

        run(main())
        self.assertEqual(log, [])

    def test_call_soon_threadsafe_from_another_thread(self):
        async def main():
            loop = aio.get_running_loop()
            fut = loop.create_future()

            def worker():
                time.sleep(0.02)
                loop.call_soon_threadsafe(fut.set_result, threading.get_ident())

            th = threading.Thread(target=worker)
            th.start()
            ident = await fut
            th.join()
            return ident != threading.get_ident()

        self.assertTrue(run(main()))

    def test_call_soon_threadsafe_keeps_fifo_with_call_soon_from_another_thread(self):
        # One FIFO: a callback another thread posted before call_soon runs first.
        loop = aio.new_event_loop()
        log = []
        posted = threading.Event()

        def poster():
            loop.call_soon_threadsafe(log.append, "threadsafe")
            posted.set()

        try:
            th = threading.Thread(target=poster)
            th.start()
            posted.wait()
            loop.call_soon(log.append, "soon")
            loop.call_soon(loop.stop)
            loop.run_forever()
            th.join()
        finally:
            loop.close()
        self.assertEqual(log, ["threadsafe", "soon"])

    def test_call_soon_threadsafe_keeps_fifo_with_call_soon_on_the_loop_thread(self):
        async def main():
            loop = aio.get_running_loop()
            log = []
            done = loop.create_future()
            loop.call_soon_threadsafe(log.append, 1)
            loop.call_soon(log.append, 2)
            loop.call_soon_threadsafe(log.append, 3)
            loop.call_soon(log.append, 4)
            loop.call_soon(done.set_result, None)
            await done
            return log

        self.assertEqual(run(main()), [1, 2, 3, 4])

    @unittest.skipUnless(hasattr(os, "fork"), "needs fork")
    def test_forked_child_has_no_running_loop_and_runs_its_own(self):
        # asyncio's rule: a child forked inside a callback of a running loop
        # sees no running loop, and may run a new one.
        async def child_main():
            await aio.sleep(0)
            return 7

        async def main():
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    try:
                        aio.get_running_loop()
                    except RuntimeError:
                        loop = aio.new_event_loop()
                        try:
                            code = 0 if loop.run_until_complete(child_main()) == 7 else 2
                        finally:
                            loop.close()
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        self.assertEqual(run(main()), 0)

    def test_nested_run_until_complete_refuses_before_wrapping_the_coroutine(self):
        # The coroutine is never wrapped in a task: Python warns it was never awaited.
        import warnings

        async def inner():
            pass

        loop = aio.new_event_loop()

        async def outer():
            coro = inner()
            with self.assertRaisesRegex(RuntimeError, "already running"):
                loop.run_until_complete(coro)
            return coro

        try:
            coro = loop.run_until_complete(outer())
            self.assertEqual(aio.all_tasks(loop), set())
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                del coro
                gc.collect()
        finally:
            loop.close()
        self.assertTrue(any("was never awaited" in str(w.message) for w in caught), caught)

    def test_run_until_complete_runs_the_iteration_after_completion(self):
        # asyncio stops from the future's done callback: what was ready when
        # the future completed runs before run_until_complete returns.
        loop = aio.new_event_loop()
        log = []

        async def main():
            loop.call_soon(log.append, "ready at completion")
            return 1

        try:
            self.assertEqual(loop.run_until_complete(main()), 1)
            self.assertEqual(log, ["ready at completion"])
            done = loop.create_future()
            done.set_result(2)
            loop.call_soon(log.append, "ready before a done future")
            self.assertEqual(loop.run_until_complete(done), 2)
        finally:
            loop.close()
        self.assertEqual(log, ["ready at completion", "ready before a done future"])

    def test_handle_source_traceback_in_debug_mode_names_the_scheduling_line(self):
        loop = aio.new_event_loop()
        try:
            self.assertIsNone(loop.call_soon(print)._source_traceback)
            loop.set_debug(True)
            here = sys._getframe().f_code.co_name
            for h, line in [(loop.call_soon(print), sys._getframe().f_lineno),
                            (loop.call_later(0, print), sys._getframe().f_lineno),
                            (loop.call_soon_threadsafe(print), sys._getframe().f_lineno)]:
                self.assertIsInstance(h._source_traceback, list)
                self.assertEqual(tuple(h._source_traceback[-1][:3]), (__file__, line, here))
                h.cancel()
        finally:
            loop.close()

    def test_loop_releases_gil_while_waiting(self):
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        async def main():
            th = threading.Thread(target=spin)
            th.start()
            await aio.sleep(0.2)
            stop.set()
            th.join()

        run(main())
        self.assertGreater(counter[0], 1000)

    def test_call_soon_on_closed_loop_raises_runtime_error(self):
        loop = aio.new_event_loop()
        loop.close()
        with self.assertRaises(RuntimeError):
            loop.call_soon(print)

    def test_create_task_on_closed_loop_raises_runtime_error(self):
        loop = aio.new_event_loop()
        loop.close()

        async def c():
            pass

        coro = c()
        with self.assertRaises(RuntimeError):
            loop.create_task(coro)
        coro.close()

    def test_close_running_loop_raises_runtime_error(self):
        async def main():
            aio.get_running_loop().close()

        with self.assertRaises(RuntimeError):
            run(main())

    def test_run_until_complete_accepts_a_coroutine(self):
        async def main():
            await aio.sleep(0)
            return "done"

        loop = aio.new_event_loop()
        try:
            self.assertEqual(loop.run_until_complete(main()), "done")
            self.assertFalse(loop.is_running())
        finally:
            loop.close()

    def test_get_running_loop_outside_raises_runtime_error(self):
        with self.assertRaises(RuntimeError):
            aio.get_running_loop()

    def test_debug_mode_reports_slow_callback(self):
        seen = []

        async def main():
            loop = aio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))
            if not IS_RILL:
                import logging

                class H(logging.Handler):
                    def emit(self, record):
                        seen.append(record.getMessage())

                logging.getLogger("asyncio").addHandler(H())
            loop.call_soon(time.sleep, 0.15)
            await aio.sleep(0.01)

        run(main(), debug=True)
        self.assertTrue(any("0.1" in m or "took" in m for m in seen), seen)


    def test_debug_mode_reports_a_slow_task_step_with_its_coroutine_and_line(self):
        # asyncio: "Executing <Task pending name='A' coro=<slow() running at
        # FILE:LINE> ...> took 0.150 seconds"; rill: "Executing <Task A
        # (entry: slow() running at FILE:LINE)> took 0.150 seconds".
        seen = []

        async def slow():
            time.sleep(0.15)
            await aio.sleep(0.01)  # the step ends here: the report names this line

        line = slow.__code__.co_firstlineno + 2

        async def main():
            loop = aio.get_running_loop()
            loop.slow_callback_duration = 0.1
            loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))
            if not IS_RILL:
                import logging

                class H(logging.Handler):
                    def emit(self, record):
                        seen.append(record.getMessage())

                logging.getLogger("asyncio").addHandler(H())
            await aio.create_task(slow(), name="A")

        run(main(), debug=True)
        where = f"slow() running at {__file__}:{line}"
        reports = [m for m in seen if "Executing <Task" in m and where in m]
        self.assertEqual(len(reports), 1, seen)
        self.assertIn("A", reports[0])
        self.assertRegex(reports[0], r"took 0\.1[5-9]\d seconds|took 0\.[2-9]\d\d seconds|took \d+\.\d{3} seconds")

    def test_debug_mode_reports_a_finished_task_as_done_where_it_is_defined(self):
        if not IS_RILL:
            self.skipTest("asyncio reports the step of a finished task as a callback")
        seen = []

        async def slow_and_done():
            time.sleep(0.15)

        async def main():
            loop = aio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))
            await aio.create_task(slow_and_done(), name="B")

        run(main(), debug=True)
        where = f"slow_and_done() done, defined at {__file__}:{slow_and_done.__code__.co_firstlineno}"
        # The entry is the coroutine's qualified name, as asyncio's Task repr gives it.
        self.assertEqual(len([m for m in seen if m.startswith("Executing <Task B (entry: ") and where in m]), 1, seen)


class TaskFactory(unittest.TestCase):
    def test_create_task_and_run_until_complete_use_the_factory(self):
        made = []

        def factory(loop, coro, **kw):
            t = aio.Task(coro, loop=loop, **kw)
            made.append((t, kw))
            return t

        async def one():
            return 1

        loop = aio.new_event_loop()
        try:
            self.assertIsNone(loop.get_task_factory())
            loop.set_task_factory(factory)
            self.assertIs(loop.get_task_factory(), factory)
            self.assertEqual(loop.run_until_complete(one()), 1)
            ctx = contextvars.copy_context()
            t = loop.create_task(one(), name="named", context=ctx)
            self.assertEqual(loop.run_until_complete(t), 1)
            self.assertEqual(t.get_name(), "named")
            self.assertEqual([kw for _, kw in made], [{}, {"context": ctx}])
            self.assertIs(made[1][0], t)
            loop.set_task_factory(None)
            loop.run_until_complete(one())
            self.assertEqual(len(made), 2)
        finally:
            loop.close()

    def test_bad_factory_and_factory_errors(self):
        def broken(loop, coro):
            coro.close()
            raise NameError("factory failed")

        async def one():
            return 1

        loop = aio.new_event_loop()
        try:
            with self.assertRaises(TypeError):
                loop.set_task_factory(5)
            self.assertIsNone(loop.get_task_factory())
            loop.set_task_factory(broken)
            with self.assertRaises(NameError):
                loop.create_task(one())
        finally:
            loop.close()


class FutureTests(unittest.TestCase):
    """C. Future"""

    def test_task_awaiting_an_asyncio_future_wakes_before_callbacks_added_later(self):
        # asyncio: the task's wake-up is the future's first done callback.
        import asyncio

        loop = aio.new_event_loop()
        log = []
        try:
            fut = asyncio.Future(loop=loop)

            async def waiter():
                await fut
                log.append("task woke")

            task = loop.create_task(waiter())
            loop.run_until_complete(asyncio.sleep(0))  # the task now waits on fut
            fut.add_done_callback(lambda f: log.append("callback added later"))
            fut.set_result(1)
            loop.run_until_complete(task)
        finally:
            loop.close()
        self.assertEqual(log, ["task woke", "callback added later"])

    def test_task_awaits_an_asyncio_future_subclass_whose_get_loop_raises(self):
        # asyncio's tasks fall back to fut._loop (futures._get_loop).
        import asyncio

        class Fut(asyncio.Future):
            @property
            def get_loop(self):
                raise AttributeError

        loop = aio.new_event_loop()
        try:
            fut = Fut(loop=loop)
            loop.call_later(0.01, fut.set_result, 1)

            async def main():
                return await fut + 1

            self.assertEqual(loop.run_until_complete(loop.create_task(main())), 2)
        finally:
            loop.close()

    def test_set_result_twice_raises_invalid_state(self):
        async def main():
            f = aio.get_running_loop().create_future()
            f.set_result(1)
            with self.assertRaises(aio.InvalidStateError):
                f.set_result(2)
            with self.assertRaises(aio.InvalidStateError):
                f.set_exception(ValueError())

        run(main())

    def test_pending_result_and_exception_raise_invalid_state(self):
        async def main():
            f = aio.get_running_loop().create_future()
            with self.assertRaises(aio.InvalidStateError):
                f.result()
            with self.assertRaises(aio.InvalidStateError):
                f.exception()
            f.cancel("m")
            with self.assertRaises(aio.CancelledError):
                f.result()
            with self.assertRaises(aio.CancelledError):
                f.exception()

        run(main())

    def test_result_reraises_and_exception_returns(self):
        async def main():
            f = aio.get_running_loop().create_future()
            e = ValueError("x")
            f.set_exception(e)
            self.assertIs(f.exception(), e)
            with self.assertRaises(ValueError) as cm:
                f.result()
            self.assertIs(cm.exception, e)

        run(main())

    def test_cancel_returns_false_when_done(self):
        async def main():
            f = aio.get_running_loop().create_future()
            self.assertTrue(f.cancel())
            self.assertFalse(f.cancel())
            g = aio.get_running_loop().create_future()
            g.set_result(None)
            self.assertFalse(g.cancel())

        run(main())

    def test_done_callbacks_never_run_inline(self):
        log = []

        async def main():
            f = aio.get_running_loop().create_future()
            f.add_done_callback(lambda fut: log.append("cb1"))
            f.add_done_callback(lambda fut: log.append("cb2"))
            f.set_result(1)
            log.append("after set_result")
            g = aio.get_running_loop().create_future()
            g.set_result(2)
            g.add_done_callback(lambda fut: log.append("late"))
            log.append("after add")
            await aio.sleep(0)
            await aio.sleep(0)

        run(main())
        self.assertEqual(log, ["after set_result", "after add", "cb1", "cb2", "late"])

    def test_future_constructor_uses_running_loop(self):
        async def main():
            f = aio.Future()
            aio.get_running_loop().call_soon(f.set_result, "v")
            return f.get_loop() is aio.get_running_loop(), await f

        self.assertEqual(run(main()), (True, "v"))

    def test_remove_done_callback_returns_count(self):
        async def main():
            f = aio.get_running_loop().create_future()

            def cb(fut):
                pass

            f.add_done_callback(cb)
            f.add_done_callback(cb)
            self.assertEqual(f.remove_done_callback(cb), 2)
            self.assertEqual(f.remove_done_callback(cb), 0)

        run(main())

    def test_awaiting_done_future_does_not_yield(self):
        log = []

        async def other():
            log.append("other")

        async def main():
            f = aio.get_running_loop().create_future()
            f.set_result(5)
            aio.create_task(other())
            v = await f
            log.append(("main", v))
            await aio.sleep(0)

        run(main())
        self.assertEqual(log, [("main", 5), "other"])

    def test_plain_coroutine_await_does_not_yield(self):
        log = []

        async def inner():
            return 1

        async def other():
            log.append("other")

        async def main():
            aio.create_task(other())
            await inner()
            log.append("main")
            await aio.sleep(0)

        run(main())
        self.assertEqual(log, ["main", "other"])

    def test_future_keeps_arbitrary_objects_by_identity(self):
        obj = object()

        async def main():
            f = aio.get_running_loop().create_future()
            f.set_result(obj)
            return await f

        self.assertIs(run(main()), obj)

    def test_native_values_round_trip(self):
        values = [None, True, False, 0, -5, 2**62, 2**70, 1.5, b"bytes", "str", (1, 2)]

        async def ret(v):
            return v

        async def main():
            return [await aio.create_task(ret(v)) for v in values]

        self.assertEqual(run(main()), values)


class TaskTests(unittest.TestCase):
    """D. task stepping"""

    def test_new_task_starts_next_iteration(self):
        log = []

        async def child():
            log.append("child")

        async def main():
            aio.create_task(child())
            log.append("creator continues")
            await aio.sleep(0)

        run(main())
        self.assertEqual(log, ["creator continues", "child"])

    def test_cancel_before_first_step_body_never_runs(self):
        log = []

        async def child():
            log.append("body")

        async def main():
            t = aio.create_task(child())
            t.cancel()
            await aio.sleep(0)
            await aio.sleep(0)
            return t.cancelled()

        self.assertTrue(run(main()))
        self.assertEqual(log, [])

    def test_all_tasks_returns_pending_only(self):
        async def quick():
            pass

        async def main():
            t = aio.create_task(quick())
            await t
            s = aio.create_task(aio.sleep(1))
            tasks = aio.all_tasks()
            s.cancel()
            return t in tasks, s in tasks, aio.current_task() in tasks

        self.assertEqual(run(main()), (False, True, True))

    def test_current_task(self):
        async def main():
            return aio.current_task()

        loop = aio.new_event_loop()
        try:
            t = loop.create_task(main())
            self.assertIs(loop.run_until_complete(t), t)
        finally:
            loop.close()

    def test_task_name(self):
        async def main():
            t = aio.create_task(aio.sleep(0), name="worker")
            n = t.get_name()
            t.set_name("renamed")
            await t
            return n, t.get_name()

        self.assertEqual(run(main()), ("worker", "renamed"))

    def test_unawaited_task_is_kept_alive_by_loop(self):
        log = []

        async def bg():
            await aio.sleep(0.01)
            log.append("bg finished")

        async def main():
            aio.create_task(bg())
            gc.collect()
            # rill's deadlines start from the iteration's cached time, so
            # leave room for the collection above on a loaded machine
            await aio.sleep(0.3)

        run(main())
        self.assertEqual(log, ["bg finished"])

    def test_contextvars_are_copied_into_tasks(self):
        var = contextvars.ContextVar("var", default="default")

        async def child():
            v = var.get()
            var.set("child")
            return v

        async def main():
            var.set("main")
            r = await aio.create_task(child())
            return r, var.get()

        self.assertEqual(run(main()), ("main", "main"))


class Cancellation(unittest.TestCase):
    """E. cancellation"""

    def test_cancel_returns_true_repeatedly_and_counts(self):
        async def main():
            t = aio.create_task(aio.sleep(1))
            await aio.sleep(0)
            r = (t.cancel(), t.cancel(), t.cancelling())
            try:
                await t
            except aio.CancelledError:
                pass
            return r + (t.cancel(),)

        self.assertEqual(run(main()), (True, True, 2, False))

    def test_must_cancel_is_true_while_a_cancel_waits_for_the_first_step(self):
        # asyncio.Task's private _must_cancel: anyio's cancel scopes read it
        # (a task whose cancel is still to be delivered is skipped).
        async def main():
            t = aio.create_task(aio.sleep(1))
            before = t._must_cancel
            t.cancel()
            pending = t._must_cancel
            try:
                await t
            except aio.CancelledError:
                pass
            return before, pending, t._must_cancel

        self.assertEqual(run(main()), (False, True, False))

    def test_cancel_cancels_awaited_future_at_once(self):
        async def waiter(f):
            await f

        async def main():
            f = aio.get_running_loop().create_future()
            t = aio.create_task(waiter(f))
            await aio.sleep(0)
            t.cancel()
            r = f.cancelled()
            try:
                await t
            except aio.CancelledError:
                pass
            return r

        self.assertTrue(run(main()))

    def test_cancel_reaches_awaited_task(self):
        async def inner():
            await aio.sleep(10)

        async def outer(t):
            await t

        async def main():
            t1 = aio.create_task(inner())
            t2 = aio.create_task(outer(t1))
            await aio.sleep(0)
            await aio.sleep(0)
            t2.cancel()
            for _ in range(3):
                await aio.sleep(0)
            return t1.cancelled(), t2.cancelled()

        self.assertEqual(run(main()), (True, True))

    def test_cancel_message_reaches_task_and_awaiter_first_wins(self):
        seen = []

        async def child():
            try:
                await aio.sleep(10)
            except aio.CancelledError as e:
                seen.append(e.args)
                raise

        async def main():
            t = aio.create_task(child())
            await aio.sleep(0)
            t.cancel("m1")
            t.cancel("m2")
            try:
                await t
            except aio.CancelledError as e:
                seen.append(e.args)

        run(main())
        self.assertEqual(seen, [("m1",), ("m1",)])

    def test_cancel_message_object_round_trips(self):
        # asyncio keeps the msg object itself: cancel(5) gives args (5,),
        # not ("5",), to the task's code and its awaiter, and a future's
        # result() and exception(); a message whose str() raises is kept
        # all the same. (A task's later result() calls differ: 3.11's
        # asyncio drops the message after the first.)
        class Unprintable:
            def __str__(self):
                raise ValueError("no str")

        seen = []

        async def child():
            try:
                await aio.sleep(10)
            except aio.CancelledError as e:
                seen.append(e.args)
                raise

        async def main():
            out = []
            for msg in (5, ["a list"], Unprintable()):
                t = aio.create_task(child())
                await aio.sleep(0)
                t.cancel(msg)
                try:
                    await t
                except aio.CancelledError as e:
                    out.append(e.args[0] is msg and seen[-1][0] is msg)
                f = aio.get_running_loop().create_future()
                f.cancel(msg=msg)
                for get in (f.result, f.exception):
                    try:
                        get()
                    except aio.CancelledError as e:
                        out.append(e.args[0] is msg)
            return out

        self.assertEqual(run(main()), [True] * 9)

    def test_cancel_message_object_reaches_the_innermost_await(self):
        # outer awaits mid awaits a future: outer.cancel(obj) reaches the
        # future, and every level sees CancelledError(obj)
        obj = object()
        seen = []

        async def level(name, aw):
            try:
                return await aw
            except aio.CancelledError as e:
                seen.append((name, e.args[0] is obj))
                raise

        async def main():
            f = aio.get_running_loop().create_future()
            mid = aio.create_task(level("mid", f))
            outer = aio.create_task(level("outer", mid))
            await aio.sleep(0)
            await aio.sleep(0)
            outer.cancel(obj)
            try:
                await outer
            except aio.CancelledError as e:
                seen.append(("main", e.args[0] is obj))
            return f.cancelled(), mid.cancelled()

        self.assertEqual(run(main()), (True, True))
        self.assertEqual(seen, [("mid", True), ("outer", True), ("main", True)])

    def test_cancel_message_object_through_gather(self):
        obj = ("a", "tuple")
        seen = []

        async def child():
            try:
                await aio.sleep(10)
            except aio.CancelledError as e:
                seen.append(e.args[0] is obj)
                raise

        async def main():
            g = aio.gather(child(), child())
            await aio.sleep(0)
            self.assertTrue(g.cancel(msg=obj))
            try:
                await g
            except aio.CancelledError as e:
                return e.args[0] is obj

        self.assertTrue(run(main()))
        self.assertEqual(seen, [True, True])

    def test_cancel_with_bad_arguments_raises_type_error(self):
        async def main():
            t = aio.create_task(aio.sleep(10))
            f = aio.get_running_loop().create_future()
            errors = 0
            for call in (lambda: t.cancel("a", "b"), lambda: t.cancel(message="a"),
                         lambda: f.cancel("a", "b"), lambda: f.cancel(message="a")):
                try:
                    call()
                except TypeError:
                    errors += 1
            t.cancel()
            return errors, t.cancelling(), f.cancelled()

        self.assertEqual(run(main()), (4, 1, False))

    def test_cancelled_task_traceback_shows_the_interrupted_await(self):
        # the awaiter gets the CancelledError the task's coroutine raised,
        # its traceback through the await that the cancel interrupted
        import traceback

        async def inner():
            await aio.sleep(10)  # the interrupted await

        async def main():
            t = aio.create_task(inner())
            await aio.sleep(0)
            t.cancel()
            try:
                await t
            except aio.CancelledError as e:
                return "".join(traceback.format_exception(e))

        tb = run(main())
        self.assertIn("await aio.sleep(10)  # the interrupted await", tb)
        self.assertIn("await t", tb)

    def test_cancelled_task_lets_go_of_its_traceback_once_read(self):
        # asyncio gives a task's CancelledError back once: the traceback
        # (frames and their locals) then dies with its reader, without
        # waiting for the garbage collector, though the task lives on
        import weakref

        class Big:
            pass

        async def inner(refs):
            big = Big()
            refs.append(weakref.ref(big))
            await aio.sleep(10)

        async def main():
            refs = []
            t = aio.create_task(inner(refs))
            await aio.sleep(0)
            t.cancel()
            try:
                await t
            except aio.CancelledError:
                pass
            return refs[0], t

        gc.disable()
        try:
            ref, task = run(main())
            self.assertTrue(task.cancelled())
            self.assertIsNone(ref())
        finally:
            gc.enable()

    def test_caught_cancel_finishes_normally(self):
        async def child():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                return "caught"

        async def main():
            t = aio.create_task(child())
            await aio.sleep(0)
            t.cancel()
            r = await t
            return r, t.cancelled(), t.cancelling()

        self.assertEqual(run(main()), ("caught", False, 1))

    def test_cancelled_error_is_base_exception(self):
        self.assertTrue(issubclass(aio.CancelledError, BaseException))
        self.assertFalse(issubclass(aio.CancelledError, Exception))

    def test_task_raising_cancelled_error_is_cancelled(self):
        async def child():
            raise aio.CancelledError()

        async def main():
            t = aio.create_task(child())
            try:
                await t
            except aio.CancelledError:
                pass
            return t.cancelled()

        self.assertTrue(run(main()))


class Gather(unittest.TestCase):
    """F. gather"""

    def test_results_in_argument_order(self):
        async def after(d, v):
            await aio.sleep(d)
            return v

        async def main():
            return await aio.gather(after(0.03, "a"), after(0.01, "b"), after(0.02, "c"))

        self.assertEqual(run(main()), ["a", "b", "c"])

    def test_gather_of_nothing_is_empty_list(self):
        async def main():
            return await aio.gather()

        self.assertEqual(run(main()), [])

    def test_same_awaitable_twice_runs_once(self):
        runs = []

        async def once():
            runs.append(1)
            return 7

        async def main():
            c = once()
            return await aio.gather(c, c)

        self.assertEqual(run(main()), [7, 7])
        self.assertEqual(runs, [1])

    def test_first_error_reaches_awaiter_others_keep_running(self):
        log = []

        async def fail():
            await aio.sleep(0.01)
            raise ValueError("first")

        async def slow():
            await aio.sleep(0.03)
            log.append("slow finished")

        async def main():
            try:
                await aio.gather(fail(), slow())
            except ValueError as e:
                log.append(str(e))
            await aio.sleep(0.05)

        run(main())
        self.assertEqual(log, ["first", "slow finished"])

    def test_return_exceptions_puts_errors_in_place(self):
        async def fail():
            raise ValueError("x")

        async def ok():
            return 1

        async def cancelled():
            await aio.sleep(10)

        async def main():
            c = aio.create_task(cancelled())
            await aio.sleep(0)
            c.cancel()
            r = await aio.gather(ok(), fail(), c, return_exceptions=True)
            return [type(x).__name__ if isinstance(x, BaseException) else x for x in r]

        self.assertEqual(run(main()), [1, "ValueError", "CancelledError"])

    def test_cancelling_gather_cancels_every_child(self):
        async def main():
            a = aio.create_task(aio.sleep(10))
            b = aio.create_task(aio.sleep(10))
            g = aio.gather(a, b)
            await aio.sleep(0)
            g.cancel()
            try:
                await g
            except aio.CancelledError:
                pass
            return a.cancelled(), b.cancelled()

        self.assertEqual(run(main()), (True, True))

    def test_cancelling_task_awaiting_gather_cancels_children(self):
        async def main():
            a = aio.create_task(aio.sleep(10))

            async def waiter():
                await aio.gather(a, return_exceptions=True)

            w = aio.create_task(waiter())
            await aio.sleep(0)
            await aio.sleep(0)
            w.cancel()
            try:
                await w
            except aio.CancelledError:
                pass
            return a.cancelled(), w.cancelled()

        self.assertEqual(run(main()), (True, True))

    def test_child_cancelled_from_outside_raises_cancelled_others_keep_running(self):
        log = []

        async def slow():
            await aio.sleep(0.03)
            log.append("slow finished")

        async def main():
            a = aio.create_task(aio.sleep(10))
            b = aio.create_task(slow())
            g = aio.gather(a, b)
            await aio.sleep(0)
            a.cancel()
            try:
                await g
            except aio.CancelledError:
                log.append("gather raised CancelledError")
            await aio.sleep(0.05)
            return g.cancelled()

        self.assertFalse(run(main()))
        self.assertEqual(log, ["gather raised CancelledError", "slow finished"])


class Sleep(unittest.TestCase):
    """G. sleep"""

    def test_sleep0_alternates_strictly(self):
        log = []

        async def worker(name):
            for i in range(3):
                log.append(f"{name}{i}")
                await aio.sleep(0)

        async def main():
            await aio.gather(worker("a"), worker("b"))

        run(main())
        self.assertEqual(log, ["a0", "b0", "a1", "b1", "a2", "b2"])

    def test_sleep_returns_result(self):
        async def main():
            return await aio.sleep(0.01, "r"), await aio.sleep(0, result=5)

        self.assertEqual(run(main()), ("r", 5))

    def test_sleep_lasts_at_least_delay(self):
        async def main():
            t0 = time.monotonic()
            await aio.sleep(0.05)
            return time.monotonic() - t0

        self.assertGreaterEqual(run(main()), 0.05 - 1e-3)

    def test_negative_sleep_is_one_iteration(self):
        log = []

        async def other():
            log.append("other")

        async def main():
            aio.create_task(other())
            await aio.sleep(-1)
            log.append("main")

        run(main())
        self.assertEqual(log, ["other", "main"])


class Timeouts(unittest.TestCase):
    """H. wait_for, timeout, shield"""

    def test_wait_for_none_is_plain_await(self):
        async def main():
            return await aio.wait_for(aio.sleep(0.01, "v"), None)

        self.assertEqual(run(main()), "v")

    def test_wait_for_timeout_cancels_waits_then_raises(self):
        log = []

        async def inner():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                await aio.sleep(0.01)
                log.append("inner cleaned up")
                raise

        async def main():
            try:
                await aio.wait_for(inner(), 0.02)
            except TimeoutError:
                log.append("TimeoutError")

        run(main())
        self.assertEqual(log, ["inner cleaned up", "TimeoutError"])

    def test_wait_for_zero_raises_timeout(self):
        async def main():
            with self.assertRaises(TimeoutError):
                await aio.wait_for(aio.sleep(1), 0)

        run(main())

    def test_timeout_error_is_builtin(self):
        self.assertIs(aio.TimeoutError, TimeoutError)

    def test_timeout_context_cancels_and_raises_timeout_error(self):
        log = []

        async def main():
            try:
                async with aio.timeout(0.02):
                    try:
                        await aio.sleep(10)
                    except aio.CancelledError:
                        log.append("body saw CancelledError")
                        raise
            except TimeoutError:
                log.append("TimeoutError")

        run(main())
        self.assertEqual(log, ["body saw CancelledError", "TimeoutError"])

    def test_nested_timeouts_are_independent(self):
        log = []

        async def main():
            try:
                async with aio.timeout(0.06):
                    try:
                        async with aio.timeout(0.01):
                            await aio.sleep(10)
                    except TimeoutError:
                        log.append("inner")
                    await aio.sleep(10)
            except TimeoutError:
                log.append("outer")

        run(main())
        self.assertEqual(log, ["inner", "outer"])

    def test_swallowed_cancel_gives_no_timeout_error_but_expired(self):
        async def main():
            async with aio.timeout(0.01) as cm:
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    pass
            return cm.expired()

        self.assertTrue(run(main()))

    def test_timeout_zero_without_await_is_fine_with_await_raises(self):
        async def main():
            async with aio.timeout(0):
                x = 1
            with self.assertRaises(TimeoutError):
                async with aio.timeout(0):
                    await aio.sleep(1)
            return x

        self.assertEqual(run(main()), 1)

    def test_shield_outer_cancel_leaves_inner_running(self):
        log = []

        async def inner():
            await aio.sleep(0.02)
            log.append("inner done")
            return 3

        async def main():
            t = aio.create_task(inner())
            s = aio.shield(t)
            await aio.sleep(0)
            s.cancel()
            try:
                await s
            except aio.CancelledError:
                log.append("outer cancelled")
            return await t

        self.assertEqual(run(main()), 3)
        self.assertEqual(log, ["outer cancelled", "inner done"])


class Wait(unittest.TestCase):
    """I. wait and as_completed"""

    def test_wait_returns_done_and_pending_on_timeout_without_cancelling(self):
        async def main():
            a = aio.create_task(aio.sleep(0.01))
            b = aio.create_task(aio.sleep(1))
            done, pending = await aio.wait({a, b}, timeout=0.05)
            r = (done == {a}, pending == {b}, b.cancelled())
            b.cancel()
            return r

        self.assertEqual(run(main()), (True, True, False))

    def test_wait_empty_raises_value_error_and_coroutines_type_error(self):
        async def main():
            with self.assertRaises(ValueError):
                await aio.wait([])
            c = aio.sleep(0)
            with self.assertRaises(TypeError):
                await aio.wait([c])
            if hasattr(c, "close"):
                c.close()

        run(main())

    def test_wait_first_completed_and_first_exception(self):
        async def fail():
            await aio.sleep(0.01)
            raise ValueError

        async def main():
            a = aio.create_task(aio.sleep(0.01))
            b = aio.create_task(aio.sleep(1))
            done, pending = await aio.wait({a, b}, return_when=aio.FIRST_COMPLETED)
            r1 = (done == {a}, pending == {b})
            c = aio.create_task(fail())
            done, pending = await aio.wait({b, c}, return_when=aio.FIRST_EXCEPTION)
            r2 = (done == {c}, pending == {b})
            d = aio.create_task(aio.sleep(0.01))
            done, pending = await aio.wait({d}, return_when=aio.FIRST_EXCEPTION)
            b.cancel()
            return r1, r2, (done == {d}, pending == set())

        self.assertEqual(run(main()), ((True, True), (True, True), (True, True)))

    def test_as_completed_in_completion_order_and_timeout(self):
        async def after(d, v):
            await aio.sleep(d)
            return v

        async def main():
            out = []
            for f in aio.as_completed([after(0.03, "c"), after(0.01, "a"), after(0.02, "b")]):
                out.append(await f)
            with self.assertRaises(TimeoutError):
                for f in aio.as_completed([after(1, "x")], timeout=0.01):
                    await f
            return out

        self.assertEqual(run(main()), ["a", "b", "c"])


class TaskGroups(unittest.TestCase):
    """J. TaskGroup"""

    def test_exit_waits_for_every_child(self):
        log = []

        async def child(d):
            await aio.sleep(d)
            log.append(d)

        async def main():
            async with aio.TaskGroup() as tg:
                tg.create_task(child(0.02))
                tg.create_task(child(0.01))
            log.append("exit")

        run(main())
        self.assertEqual(log, [0.01, 0.02, "exit"])

    def test_first_failure_cancels_others_and_raises_exception_group(self):
        log = []

        async def fail():
            await aio.sleep(0.01)
            raise ValueError("v")

        async def slow():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                log.append("slow cancelled")
                raise

        async def main():
            try:
                async with aio.TaskGroup() as tg:
                    tg.create_task(fail())
                    tg.create_task(slow())
                    try:
                        await aio.sleep(10)
                    except aio.CancelledError:
                        log.append("body cancelled")
                        raise
            except* ValueError as eg:
                log.append(("group", [str(e) for e in eg.exceptions]))

        run(main())
        self.assertEqual(log, ["slow cancelled", "body cancelled", ("group", ["v"])])

    def test_body_exception_cancels_children_and_is_in_group(self):
        log = []

        async def slow():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                log.append("child cancelled")
                raise

        async def main():
            try:
                async with aio.TaskGroup() as tg:
                    tg.create_task(slow())
                    await aio.sleep(0)
                    raise KeyError("body")
            except* KeyError as eg:
                log.append(len(eg.exceptions))

        run(main())
        self.assertEqual(log, ["child cancelled", 1])

    def test_keyboard_interrupt_from_child_is_raised_bare(self):
        async def kb():
            raise KeyboardInterrupt

        async def main():
            try:
                async with aio.TaskGroup() as tg:
                    tg.create_task(kb())
                    await aio.sleep(0.01)
            except KeyboardInterrupt:
                return "bare"
            except BaseExceptionGroup:
                return "group"

        with self.assertRaises(KeyboardInterrupt):
            run(main())

    def test_parent_cancel_from_outside_cancels_children_and_propagates(self):
        log = []

        async def slow():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                log.append("child cancelled")
                raise

        async def body():
            async with aio.TaskGroup() as tg:
                tg.create_task(slow())
                await aio.sleep(10)

        async def main():
            t = aio.create_task(body())
            await aio.sleep(0.01)
            t.cancel()
            try:
                await t
            except aio.CancelledError:
                log.append("parent cancelled")

        run(main())
        self.assertEqual(log, ["child cancelled", "parent cancelled"])

    def test_create_task_after_exit_raises_runtime_error(self):
        async def nop():
            pass

        async def main():
            async with aio.TaskGroup() as tg:
                pass
            c = nop()
            with self.assertRaises(RuntimeError):
                tg.create_task(c)
            c.close()

        run(main())


class Exceptions(unittest.TestCase):
    """Errors travel as the same object, with their traceback."""

    def test_awaiter_gets_same_exception_object_and_traceback(self):
        box = {}

        async def child():
            e = ValueError("boom")
            box["e"] = e
            raise e

        async def main():
            try:
                await aio.create_task(child())
            except ValueError as e:
                return e

        e = run(main())
        self.assertIs(e, box["e"])
        names = []
        tb = e.__traceback__
        while tb:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        self.assertIn("child", names)

    def test_gather_propagates_same_exception_object(self):
        box = {}

        async def child():
            box["e"] = KeyError("k")
            raise box["e"]

        async def main():
            try:
                await aio.gather(child())
            except KeyError as e:
                return e

        self.assertIs(run(main()), box["e"])

    def test_unretrieved_task_failure_is_reported(self):
        seen = []

        async def fail():
            raise ValueError("lost")

        async def main():
            loop = aio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
            aio.create_task(fail())
            await aio.sleep(0.01)
            gc.collect()
            await aio.sleep(0.01)

        run(main())
        gc.collect()
        self.assertEqual(len(seen), 1, seen)
        self.assertIsInstance(seen[0].get("exception"), ValueError)

    def test_pending_task_destroyed_at_close_is_reported(self):
        seen = []

        async def forever():
            await aio.sleep(10)

        loop = aio.new_event_loop()
        loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))

        async def main():
            loop.create_task(forever())
            await aio.sleep(0)

        loop.run_until_complete(main())
        loop.close()
        gc.collect()
        self.assertEqual(len(seen), 1, seen)


class BadInput(unittest.TestCase):
    """Bad input gives a clear Python exception."""

    def test_create_task_non_coroutine_raises_type_error(self):
        async def main():
            with self.assertRaises(TypeError):
                aio.create_task(42)
            with self.assertRaises(TypeError):
                aio.create_task(lambda: None)

        run(main())

    def test_awaiting_foreign_object_raises_runtime_error(self):
        class Foreign:
            def __await__(self):
                yield "not a future"

        async def main():
            with self.assertRaises(RuntimeError):
                await Foreign()

        run(main())

    @rill_only
    def test_awaiting_asyncio_future_in_rill_raises_runtime_error(self):
        import asyncio

        async def main():
            fut = asyncio.Future(loop=asyncio.new_event_loop())
            try:
                with self.assertRaises(RuntimeError) as cm:
                    await fut
                self.assertIn("foreign", str(cm.exception))
            finally:
                fut.get_loop().close()

        run(main())

    def test_task_awaiting_itself_raises_runtime_error(self):
        async def main():
            with self.assertRaises(RuntimeError):
                await aio.current_task()

        run(main())

    def test_gather_non_awaitable_raises_type_error(self):
        async def main():
            with self.assertRaises(TypeError):
                aio.gather(1)

        run(main())

    def test_sleep_bad_delay_raises_type_error(self):
        async def main():
            with self.assertRaises(TypeError):
                await aio.sleep("x")

        run(main())


if __name__ == "__main__":
    unittest.main()
