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

    def test_no_duplicate_handle_classes(self):
        # Python's Loop and Future are the hand-written LoopBase / PyFuture.
        self.assertFalse(hasattr(_rill, "Loop"))
        self.assertFalse(hasattr(_rill, "Future"))
        self.assertTrue(issubclass(rill.EventLoop, _rill.LoopBase))

    def test_status_code_raises_mapped_exception(self):
        loop = rill.new_event_loop()
        loop.close()
        with self.assertRaises(RuntimeError):  # RILL_ECLOSED
            loop.create_future()

    def test_unknown_code_raises_rill_error_with_code(self):
        self.assertTrue(issubclass(rill.Error, RuntimeError))
        self.assertEqual(_rill._exception_for_code(-1234).code, -1234)


if __name__ == "__main__":
    unittest.main()
