"""The embedding API (rill._attach_loop, Task._rill_future_address,
rill._wrap_future): Python tasks on a rill loop that a host creates and runs
itself. The host here is ctypes over librill (PyDLL: the GIL stays held
while the loop runs, as an embedding host holds it)."""
import ctypes
import unittest

from common import IS_RILL

if IS_RILL:
    import rill


def _librill():
    lib = ctypes.PyDLL("librill.so.1")  # already loaded by rill._rill
    vp = ctypes.c_void_p
    lib.rill_loop_new.restype = vp
    lib.rill_loop_free.argtypes = [vp]
    lib.rill_future_new.restype = vp
    lib.rill_future_new.argtypes = [vp]
    lib.rill_future_release.argtypes = [vp]
    lib.rill_future_retain.restype = vp
    lib.rill_future_retain.argtypes = [vp]
    lib.rill_future_set_double.argtypes = [vp, ctypes.c_double]
    lib.rill_future_set_int.argtypes = [vp, ctypes.c_int64]
    lib.rill_future_int.argtypes = [vp, ctypes.POINTER(ctypes.c_int64)]
    lib.rill_loop_run_until.argtypes = [vp, vp]
    lib.rill_future_state.argtypes = [vp]
    lib.rill_loop_run_once.argtypes = [vp, ctypes.c_double]
    return lib


@unittest.skipUnless(IS_RILL, "rill's embedding API")
class Embedding(unittest.TestCase):
    def test_attached_loop_tasks_and_foreign_future(self):
        lib = _librill()
        rl = lib.rill_loop_new()
        self.assertTrue(rl)
        loop = rill._attach_loop(rl)
        self.assertIsInstance(loop, rill.EventLoop)

        async def body():
            self.assertIs(rill.get_running_loop(), loop)
            await rill.sleep(0.01)
            return 7

        task = loop.create_task(body())
        tf = lib.rill_future_retain(task._rill_future_address())
        self.assertEqual(lib.rill_loop_run_until(rl, tf), 0)  # the host runs it
        out = ctypes.c_int64()
        self.assertEqual(lib.rill_future_int(tf, ctypes.byref(out)), 0)
        self.assertEqual(out.value, 7)  # native int, readable by the host
        self.assertEqual(task.result(), 7)

        hf = lib.rill_future_new(rl)  # a future of the host's
        wrapped = rill._wrap_future(hf, loop)

        async def waiter():
            return await wrapped

        t2 = loop.create_task(waiter())
        t2f = lib.rill_future_retain(t2._rill_future_address())
        lib.rill_loop_run_once(rl, 0.0)  # t2 starts and waits on hf
        self.assertFalse(t2.done())
        self.assertEqual(lib.rill_future_set_double(hf, 2.5), 0)
        self.assertEqual(lib.rill_loop_run_until(rl, t2f), 0)
        self.assertEqual(t2.result(), 2.5)
        self.assertIsInstance(t2.result(), float)

        loop.close()  # a no-op: the host owns the loop
        for f in (tf, t2f, hf):
            lib.rill_future_release(f)
        del task, t2, wrapped, loop
        lib.rill_loop_free(rl)




@unittest.skipUnless(IS_RILL, "rill's embedding API")
class PublicEmbedding(unittest.TestCase):
    """The public shape (as Lua's): attach_loop, future_address, wrap_future
    without a loop argument; reports about Python's tasks on an attached
    loop reach Python's handler (the core's per-binding handler)."""

    def test_public_names_and_the_loop_found_from_the_future(self):
        lib = _librill()
        rl = lib.rill_loop_new()
        loop = rill.attach_loop(rl)
        self.assertIs(rill._attach_loop, rill.attach_loop)
        hf = lib.rill_future_new(rl)
        wrapped = rill.wrap_future(hf)  # the loop comes from the rill_loop's binding state
        self.assertIs(wrapped.get_loop(), loop)

        async def waiter():
            return await wrapped

        t = loop.create_task(waiter())
        tf = lib.rill_future_retain(rill.future_address(t))
        lib.rill_loop_run_once(rl, 0.0)
        self.assertEqual(lib.rill_future_set_int(hf, 5), 0)
        self.assertEqual(lib.rill_loop_run_until(rl, tf), 0)
        self.assertEqual(t.result(), 5)
        with self.assertRaises(RuntimeError):
            rill.attach_loop(rl)  # one Python loop per rill_loop
        for f in (tf, hf):
            lib.rill_future_release(f)
        del t, wrapped, loop
        lib.rill_loop_free(rl)

    def test_python_reports_on_an_attached_loop_reach_pythons_handler(self):
        lib = _librill()
        rl = lib.rill_loop_new()
        loop = rill.attach_loop(rl)
        seen = []
        loop.set_exception_handler(lambda l, ctx: seen.append(ctx))

        async def fails():
            raise ValueError("lost")

        t = loop.create_task(fails())
        tf = lib.rill_future_retain(rill.future_address(t))
        lib.rill_loop_run.argtypes = [ctypes.c_void_p]
        lib.rill_loop_run(rl)  # (run_until would read, so retrieve, the failure)
        self.assertEqual(seen, [])
        del t
        import gc
        gc.collect()
        lib.rill_future_release(tf)  # the last reference: the unretrieved failure is reported
        lib.rill_loop_run_once(rl, 0.0)
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0].get("exception"), ValueError)
        del loop
        lib.rill_loop_free(rl)


if __name__ == "__main__":
    unittest.main()
