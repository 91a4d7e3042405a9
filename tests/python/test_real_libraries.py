"""Unmodified asyncio libraries on rill's loop (issue 12): after
rill.install(), an aiohttp server answers aiohttp's and httpx's clients, a
websockets server echoes, and anyio (asyncio backend) runs a task group with
a memory object stream and a TCP listener, and pytest-asyncio runs a small
suite of ordinary async tests (pytest_suite/) on rill's loop. Network on
127.0.0.1 only, each test bounded in time.

The libraries are Debian packages (python3-aiohttp, python3-httpx,
python3-websockets, python3-anyio, python3-pytest-asyncio), importable by Debian's /usr/bin/python3:
ctest runs this module with that interpreter and the binding built for it
(python-debian.test_real_libraries); a library that cannot be imported
skips its test. With RILL_TEST_IMPL=asyncio the same tests run on asyncio's
own loop.
"""
import asyncio
import importlib.util
import os
import subprocess
import sys
import unittest

from common import IS_RILL, aio, banner


def setUpModule():
    print(banner(), file=sys.stderr)


def needs(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return unittest.skipIf(missing, f"not importable here: {', '.join(missing)}")


class RealLibraries(unittest.TestCase):
    def setUp(self):
        if IS_RILL:
            self.policy = asyncio.get_event_loop_policy()
            aio.install()

    def tearDown(self):
        if IS_RILL:
            asyncio.set_event_loop_policy(self.policy)

    def run_main(self, main, seconds=30):
        async def bounded():
            loop = asyncio.get_running_loop()
            if IS_RILL:
                self.assertIsInstance(loop, aio.EventLoop)
            return await asyncio.wait_for(main(), seconds)
        return asyncio.run(bounded())

    @needs("aiohttp", "httpx")
    def test_aiohttp_server_answers_aiohttp_and_httpx_clients(self):
        import aiohttp
        import httpx
        from aiohttp import web

        async def main():
            async def hello(request):
                return web.Response(text=f"Hello, {request.match_info['name']}")

            async def post(request):
                return web.json_response({"got": await request.json()})

            app = web.Application()
            app.router.add_get("/hello/{name}", hello)
            app.router.add_post("/echo", post)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            base = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"{base}/hello/aiohttp") as r:
                        a = (r.status, await r.text())
                    # Several requests in flight on one session's pool.
                    async def get(i):
                        async with session.get(f"{base}/hello/{i}") as r:
                            return await r.text()
                    many = await asyncio.gather(*(get(i) for i in range(20)))
                    async with session.post(f"{base}/echo", json=[1, 2]) as r:
                        posted = await r.json()
                    async with session.get(f"{base}/missing") as r:
                        missing = r.status
                async with httpx.AsyncClient() as client:
                    r = await client.get(f"{base}/hello/httpx")
                    h = (r.status_code, r.text)
            finally:
                await runner.cleanup()
            return a, many, posted, missing, h

        a, many, posted, missing, h = self.run_main(main)
        self.assertEqual(a, (200, "Hello, aiohttp"))
        self.assertEqual(many, [f"Hello, {i}" for i in range(20)])
        self.assertEqual(posted, {"got": [1, 2]})
        self.assertEqual(missing, 404)
        self.assertEqual(h, (200, "Hello, httpx"))

    @needs("websockets")
    def test_websockets_echo(self):
        import websockets

        async def main():
            async def echo(ws, *path):  # websockets < 10.1 passes the path too
                async for message in ws:
                    await ws.send(message)

            async with websockets.serve(echo, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                async with websockets.connect(f"ws://127.0.0.1:{port}") as ws:
                    got = []
                    for m in ("one", "two", b"\x00bytes"):
                        await ws.send(m)
                        got.append(await ws.recv())
                    return got

        self.assertEqual(self.run_main(main), ["one", "two", b"\x00bytes"])

    @needs("anyio")
    def test_anyio_task_group_memory_stream_and_tcp_listener(self):
        import anyio

        async def main():
            send, receive = anyio.create_memory_object_stream(4)
            got = []

            async def produce():
                async with send:
                    for i in range(10):
                        await send.send(i)

            async def consume():
                async with receive:
                    async for item in receive:
                        got.append(item)

            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                tg.start_soon(consume)

            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)

            async def serve(client):
                async with client:
                    await client.send((await client.receive()).upper())

            replies = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, serve)
                for word in (b"tcp", b"anyio"):
                    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                        await stream.send(word)
                        replies.append(await stream.receive())
                tg.cancel_scope.cancel()
            await listener.aclose()

            # A cancel scope with a deadline cancels a sleeping task.
            with anyio.move_on_after(0.05) as scope:
                await anyio.sleep(5)
            return got, replies, scope.cancel_called

        got, replies, cancelled = self.run_main(main)
        self.assertEqual(got, list(range(10)))
        self.assertEqual(replies, [b"TCP", b"ANYIO"])
        self.assertTrue(cancelled)


    @needs("pytest", "pytest_asyncio")
    def test_pytest_asyncio_suite(self):
        # pytest in a child process (its own policy, its own loops): the
        # suite's conftest installs rill's policy unless RILL_TEST_IMPL=asyncio.
        suite = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytest_suite")
        env = dict(os.environ, RILL_TEST_IMPL="rill" if IS_RILL else "asyncio")

        def pytest(*args, **extra_env):
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                suite, *args], env={**env, **extra_env}, capture_output=True,
                               text=True, timeout=120)
            return r.returncode, (r.stdout.strip().splitlines() or [""])[-1]

        code, last = pytest()
        self.assertEqual(code, 0, last)
        self.assertRegex(last, r"^6 passed")
        code, last = pytest("-k", "failing", RILL_PYTEST_FAIL="1")
        self.assertEqual(code, 1, last)
        self.assertRegex(last, r"^1 failed, 5 deselected")


if __name__ == "__main__":
    unittest.main()
