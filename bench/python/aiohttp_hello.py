#!/usr/bin/python3
"""W7 in Python (issue 12): an aiohttp hello-world server under wrk, on
rill's loop (rill.install()), on uvloop and on asyncio's default loop.

    bench/python/aiohttp_hello.py [--reps N] [--secs S] [--conns N] [--build-dir DIR]
    bench/python/aiohttp_hello.py --serve rill|uvloop|asyncio PORT

The server is unmodified aiohttp code (web.Application, one GET handler
returning "Hello, World!", web.run_app's AppRunner/TCPSite), run by Debian's
/usr/bin/python3 and pinned to CPU 1; wrk (-t1 -cN -dS) is pinned to CPU 0.
The loops alternate, in an order rotated per repetition; every cell first
checks one response's body with a plain HTTP request. Prints req/s and the
server's CPU time per request (utime + stime over wrk's run / requests: what
the loop costs, far steadier than req/s on a shared machine), medians, and
uvloop / rill (the goal: >= 1x).
"""
import os
import socket
import statistics
import subprocess
import sys
import time

from benchenv import DEFAULT_BUILD, PYTHON, importable, rill_env

LOOPS = ["rill", "uvloop", "asyncio"]
BODY = b"Hello, World!"


def serve(which, port):
    import asyncio

    if which == "rill":
        import rill
        rill.install()
    elif which == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from aiohttp import web

    async def hello(request):
        return web.Response(body=BODY, content_type="text/plain")

    async def main():
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        loop = asyncio.get_running_loop()
        print(f"listening on {port} ({type(loop).__module__}.{type(loop).__name__})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def _cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _check(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.startswith(b"HTTP/1.1 200") and data.endswith(BODY)


def run_cell(which, port, secs, conns, env):
    log = open(f"/tmp/rill-w7py-{os.getpid()}.out", "w+")
    server = subprocess.Popen(["taskset", "-c", "1", PYTHON, __file__, "--serve", which, str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(200):
            log.seek(0)
            if "listening on" in log.read():
                break
            if server.poll() is not None:
                break
            time.sleep(0.05)
        else:
            return None, "did not start"
        if server.poll() is not None:
            log.seek(0)
            return None, log.read()[-300:]
        if not _check(port):
            return None, "wrong response"
        cpu0 = _cpu(server.pid)
        r = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", f"-d{secs}s",
                            f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                           timeout=secs + 60)
        cpu = _cpu(server.pid) - cpu0
        reqs = next((int(l.split()[0]) for l in r.stdout.splitlines()
                     if "requests in" in l), None)
        errors = [l for l in r.stdout.splitlines() if "Non-2xx" in l or "Socket errors" in l]
        if not reqs:
            return None, r.stdout[-300:] + r.stderr[-300:]
        if errors:
            return None, "; ".join(errors)
        return (reqs / secs, cpu * 1e6 / reqs), None
    finally:
        server.send_signal(2)
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def main(argv):
    import argparse

    if len(argv) == 3 and argv[0] == "--serve":
        return serve(argv[1], int(argv[2]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--build-dir", default=DEFAULT_BUILD)
    a = ap.parse_args(argv)
    env = rill_env(a.build_dir)
    loops = []
    for which in LOOPS:
        mods = {"asyncio": "aiohttp"}.get(which, f"aiohttp, {which}")
        if not importable(mods, env):
            print(f"  {which}: skipped (cannot import {mods} in {PYTHON})")
        else:
            loops.append(which)
    port = int(os.environ.get("W7_PORT", "17900"))
    got = {k: [] for k in loops}
    for rep in range(a.reps):
        for which in loops[rep % len(loops):] + loops[:rep % len(loops)]:
            port += 1
            v, why = run_cell(which, port, a.secs, a.conns, env)
            if v:
                got[which].append(v)
            else:
                print(f"  {which}: FAILED: {why}")
    print(f"W7 aiohttp hello under wrk -t1 -c{a.conns} -d{a.secs}s, median of {a.reps} "
          f"({PYTHON}; server CPU 1, wrk CPU 0)")
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in got.items() if v}
    for k, (rate, cpu) in med.items():
        extra = ""
        if k != "rill" and "rill" in med:
            extra = (f"  rill/{k}: req/s {med['rill'][0] / rate:.2f}x, "
                     f"CPU per request {cpu / med['rill'][1]:.2f}x")
        print(f"  {k:8} {rate:9.0f} req/s  {cpu:7.1f} us CPU/req  ({len(got[k])} runs){extra}")
    print("  goal: rill >= 1x uvloop")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
