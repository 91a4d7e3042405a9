"""Ordinary pytest-asyncio tests: coroutine tests, an async fixture that
starts a server, a timeout, cancellation and a fixture-scoped loop."""
import asyncio
import os

import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def echo_server():
    async def handle(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_the_running_loop_is_the_policys(expected_loop_type):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, expected_loop_type)
    assert asyncio.current_task() is not None


@pytest.mark.asyncio
async def test_sleep_and_gather():
    async def twice(x):
        await asyncio.sleep(0.001)
        return 2 * x

    assert await asyncio.gather(*(twice(i) for i in range(5))) == [0, 2, 4, 6, 8]


@pytest.mark.asyncio
async def test_async_fixture_server(echo_server):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    writer.write(b"hello\n")
    assert await reader.readline() == b"HELLO\n"
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio
async def test_wait_for_times_out():
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.sleep(5), 0.01)


@pytest.mark.asyncio
async def test_cancel_a_task():
    task = asyncio.create_task(asyncio.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


@pytest.mark.asyncio
async def test_a_failing_assertion_is_reported_as_failed():
    # The driver's second run sets RILL_PYTEST_FAIL and expects exactly this
    # failure: a loop that lost the exception would let it pass.
    await asyncio.sleep(0)
    assert not os.environ.get("RILL_PYTEST_FAIL"), "failed on purpose"
