"""pytest-asyncio (Debian's python3-pytest-asyncio) on rill's loop: the
policy is rill's before any test asks for a loop, unless RILL_TEST_IMPL=asyncio.
Run by test_real_libraries.RealLibraries.test_pytest_asyncio_suite."""
import asyncio
import os

import pytest

ON_RILL = os.environ.get("RILL_TEST_IMPL", "rill") != "asyncio"

if ON_RILL:
    import rill

    rill.install()


@pytest.fixture
def expected_loop_type():
    if ON_RILL:
        import rill

        return rill.EventLoop
    return asyncio.AbstractEventLoop
