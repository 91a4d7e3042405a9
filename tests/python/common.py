"""Shared by the Python suites: which implementation runs the tests.

RILL_TEST_IMPL=asyncio runs the same test modules against asyncio, so each
test is known to state asyncio's behaviour; the default is rill. Tests of
behaviour where rill is deliberately stronger than CPython (or rill-only
API) are marked with rill_only.
"""
import os
import sys
import unittest

IMPL = os.environ.get("RILL_TEST_IMPL", "rill")
if IMPL == "asyncio":
    import asyncio as aio
else:
    import rill as aio

IS_RILL = IMPL == "rill"

rill_only = unittest.skipUnless(IS_RILL, "rill-specific behaviour")


def banner():
    import platform

    where = getattr(aio, "__file__", "?")
    return f"[{IMPL} {getattr(aio, '__version__', '')} from {where}; Python {platform.python_version()} at {sys.executable}]"


def run(coro, **kw):
    return aio.run(coro, **kw)
