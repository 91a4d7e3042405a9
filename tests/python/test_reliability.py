"""Regression tests of issue 17 that reach Python: a KeyboardInterrupt in a
child task leaves no "never retrieved" report, and -inf timeouts expire at
once. Runs against rill by default and against asyncio with
RILL_TEST_IMPL=asyncio (each test states asyncio's behaviour)."""
import os
import subprocess
import sys
import textwrap
import time
import unittest

from common import IMPL, aio, banner, run


def setUpModule():
    print(banner(), file=sys.stderr)


class KeyboardInterruptInATask(unittest.TestCase):
    def run_snippet(self, body):
        code = textwrap.dedent(f"""
            import gc, sys
            if {IMPL!r} == "asyncio":
                import asyncio as aio
            else:
                import rill as aio
        """) + textwrap.dedent(body) + textwrap.dedent("""
            try:
                aio.run(main())
            except KeyboardInterrupt:
                print("KeyboardInterrupt")
            gc.collect()
        """)
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ))
        return p.stdout, p.stderr

    def test_keyboard_interrupt_in_an_awaited_child_reports_nothing(self):
        out, err = self.run_snippet("""
            async def child():
                await aio.sleep(0.01)
                raise KeyboardInterrupt
            async def main():
                await aio.create_task(child())
        """)
        self.assertEqual(out, "KeyboardInterrupt\n")
        self.assertEqual(err, "")

    def test_keyboard_interrupt_in_main_reports_nothing(self):
        out, err = self.run_snippet("""
            async def main():
                await aio.sleep(0)
                raise KeyboardInterrupt
        """)
        self.assertEqual(out, "KeyboardInterrupt\n")
        self.assertEqual(err, "")


class Handles(unittest.TestCase):
    def test_callback_cancelling_its_own_handle_keeps_its_arguments(self):
        async def main():
            loop = aio.get_running_loop()
            seen = []
            fut = loop.create_future()

            def cb(x, y):
                handle.cancel()
                seen.append((x, y))  # its arguments, after the cancel
                fut.set_result(None)

            handle = loop.call_soon(cb, "arg", [1, 2])
            later_fut = loop.create_future()

            def later_cb(x):
                later.cancel()
                seen.append(x)
                later_fut.set_result(None)

            later = loop.call_later(0.001, later_cb, {"k": "v"})
            await fut
            await later_fut
            return seen, handle.cancelled(), later.cancelled()

        seen, c1, c2 = run(main())
        self.assertEqual(seen, [("arg", [1, 2]), {"k": "v"}])
        self.assertTrue(c1)
        self.assertTrue(c2)


class MinusInfinityTimeouts(unittest.TestCase):
    def test_wait_for_with_minus_inf_times_out_at_once(self):
        async def main():
            t0 = time.monotonic()
            with self.assertRaises(TimeoutError):
                await aio.wait_for(aio.sleep(5), float("-inf"))
            return time.monotonic() - t0
        self.assertLess(run(main()), 1.0)

    def test_wait_with_minus_inf_returns_at_once(self):
        async def main():
            t = aio.ensure_future(aio.sleep(5)) if hasattr(aio, "ensure_future") else aio.create_task(aio.sleep(5))
            t0 = time.monotonic()
            done, pending = await aio.wait([t], timeout=float("-inf"))
            elapsed = time.monotonic() - t0
            t.cancel()
            return len(done), len(pending), elapsed
        done, pending, elapsed = run(main())
        self.assertEqual((done, pending), (0, 1))
        self.assertLess(elapsed, 1.0)

    def test_timeout_scope_with_minus_inf_expires_at_once(self):
        async def main():
            t0 = time.monotonic()
            with self.assertRaises(TimeoutError):
                async with aio.timeout(float("-inf")):
                    await aio.sleep(5)
            return time.monotonic() - t0
        self.assertLess(run(main()), 1.0)

    def test_sleep_of_minus_inf_returns_at_once(self):
        async def main():
            t0 = time.monotonic()
            await aio.sleep(float("-inf"))
            return time.monotonic() - t0
        self.assertLess(run(main()), 1.0)


if __name__ == "__main__":
    unittest.main()
