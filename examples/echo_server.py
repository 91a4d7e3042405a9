"""echo_server.py - a TCP echo server in Python (the W4 echo of bench/).

    python3 examples/echo_server.py PORT [--rill-streams | --streams | --protocol] [--uvloop | --rill]

--rill-streams (the default): rill.start_server, rill's StreamReader/Writer
on the core's streams. --streams: asyncio.start_server; --protocol: an
asyncio.Protocol; both on asyncio's default loop, on uvloop's with
--uvloop, or on rill's with --rill (rill.install(): asyncio's code unchanged
on rill's loop). Listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT"
when ready, echoes every read back until the peer closes, and exits 0 on
SIGINT or SIGTERM.
"""
import signal
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def make_protocol():
    import asyncio

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    return Echo


async def serve(aio, port, mode):
    if mode == "--protocol":
        loop = aio.get_running_loop()
        server = await loop.create_server(make_protocol(), "127.0.0.1", port)
    else:
        server = await aio.start_server(handle, "127.0.0.1", port)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv):
    if len(argv) < 2 or not argv[1].isdigit():
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    port = int(argv[1])
    flags = argv[2:]
    mode = next((f for f in flags if f in ("--rill-streams", "--streams", "--protocol")),
                "--rill-streams")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs with SIGINT ignored
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    if mode == "--rill-streams":
        import rill as aio
        run = aio.run
    else:
        import asyncio as aio
        run = aio.run
        if "--uvloop" in flags:
            import uvloop
            uvloop.install()
        elif "--rill" in flags:
            import rill
            rill.install()
    try:
        run(serve(aio, port, mode))
    except (KeyboardInterrupt, aio.CancelledError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
