"""The SWIG layer (swig/rill.i + swig/python.i): the handle classes and the
mapping of the core's status codes to Python exceptions, from its one table."""
import unittest

from common import IS_RILL

if IS_RILL:
    import rill
    from rill import _rill


@unittest.skipUnless(IS_RILL, "rill's SWIG module")
class Swig(unittest.TestCase):
    def test_error_table_matches_constants(self):
        self.assertEqual(_rill.ERRORS[_rill.ETIMEDOUT][0], "RILL_ETIMEDOUT")
        self.assertEqual(_rill.ERRORS[_rill.EINVAL][0], "RILL_EINVAL")
        self.assertGreaterEqual(len(_rill.ERRORS), 12)
        self.assertEqual(set(_rill.ERRORS), set(_rill.ERROR_CLASSES))

    def test_every_code_raises_its_class_from_the_one_table(self):
        # bindings/common/rill_errors.h's Python column, resolved here
        # independently of the binding.
        import asyncio, builtins, importlib
        for code, name in _rill.ERROR_CLASSES.items():
            with self.subTest(code=code, cls=name):
                mod, _, attr = name.rpartition(".")
                cls = rill.Error if name == "rill.Error" else getattr(
                    importlib.import_module(mod) if mod else builtins, attr)
                exc = _rill._exception_for_code(code, "msg")
                self.assertIs(type(exc), cls)
                if cls is rill.Error:
                    self.assertEqual(exc.code, code)
        self.assertIs(type(_rill._exception_for_code(_rill.ECANCELLED)), asyncio.CancelledError)
        self.assertIs(type(_rill._exception_for_code(_rill.ETIMEDOUT)), TimeoutError)
        self.assertIs(type(_rill._exception_for_code(_rill.EINVAL)), ValueError)
        self.assertIs(type(_rill._exception_for_code(_rill.ESTATE)), asyncio.InvalidStateError)
        app = _rill._exception_for_code(-1234, "app")
        self.assertIs(type(app), rill.Error)
        self.assertEqual(app.code, -1234)

    def test_status_code_raises_mapped_exception(self):
        loop = _rill.Loop()
        loop.close()
        with self.assertRaises(RuntimeError):  # RILL_ECLOSED
            loop.close()

    def test_raw_future_handle(self):
        loop = _rill.Loop()
        f = _rill.Future(loop)
        self.assertEqual(f.state(), _rill.PENDING)
        f.set_int(42)
        self.assertEqual(f.kind(), _rill.KIND_INT)
        with self.assertRaises(rill.InvalidStateError):  # RILL_ESTATE
            f.set_int(1)
        g = _rill.Future(loop)
        self.assertEqual(g.cancel("why"), 1)
        self.assertEqual(g.error(), _rill.ECANCELLED)
        self.assertEqual(g.error_message(), "why")
        del f, g
        loop.close()

    def test_unknown_code_raises_rill_error_with_code(self):
        loop = _rill.Loop()
        f = _rill.Future(loop)
        f.fail(-1234, "application failure")
        self.assertEqual(f.error(), -1234)
        self.assertTrue(issubclass(rill.Error, RuntimeError))


if __name__ == "__main__":
    unittest.main()
