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


if __name__ == "__main__":
    unittest.main()
