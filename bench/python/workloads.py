"""W1/W2/W3/W6 (BENCHMARKS.md) for Python event loops, one implementation per run.

    python3 workloads.py IMPL W1|W2|W3 [tasks=N] [iters=N] [delay=S]
    python3 workloads.py IMPL W6 [items=N] [maxsize=N]

W6 (queue): one producer task puts items 0..N-1 into Queue(maxsize), one
consumer task gets them (checked in order); ns_per_op is per item.

IMPL is a key of IMPLS below. Every implementation runs the same coroutine
code; an implementation only supplies run / sleep / gather (asyncio-like
modules) or its own three functions (gevent). Prints one line on stdout:

    RESULT workload=W1 impl=asyncio version=... tasks=... wall_s=... ns_per_op=...

after checking the results; on failure prints why on stderr and exits 1.
"""
import importlib
import sys
import time

# Same tolerance as the C programs: the coarsest peer timer granularity
# (libuv, hence uvloop, counts in milliseconds).
SLEEP_TOLERANCE_S = 1e-3


class AsyncioLike:
    """An implementation with asyncio's API: run(coro), sleep(d), gather(*aws)."""

    def __init__(self, module, version, setup=None):
        self.mod = module
        self.version = version
        if setup:
            setup()

    def run_w6(self, params):
        mod = self.mod
        items, maxsize = params["items"], params["maxsize"]
        queue = mod.Queue(maxsize)  # made outside the loop: binds at first use

        async def producer():
            put = queue.put
            for i in range(items):
                await put(i)

        async def consumer():
            get = queue.get
            total = 0
            for i in range(items):
                if await get() != i:
                    fail(f"W6: item {i} out of order")
                total += 1
            return total

        async def main():
            return await mod.gather(producer(), consumer())

        _, got = mod.run(main())
        return got

    def run(self, params):
        mod = self.mod
        workload = params["workload"]
        tasks, iters, delay = params["tasks"], params["iters"], params["delay"]
        sleep, gather = mod.sleep, mod.gather
        stats = {"steps": 0}

        async def w1_switch(index):
            steps = 0
            for _ in range(iters):
                await sleep(0)
                steps += 1
            stats["steps"] += steps
            return index

        async def w2_spawn(index):
            return index

        async def w3_timers(index):
            t0 = time.monotonic()
            await sleep(delay)
            return time.monotonic() - t0

        fn = {"W1": w1_switch, "W2": w2_spawn, "W3": w3_timers}[workload]

        async def main():
            return await gather(*[fn(i) for i in range(tasks)])

        results = mod.run(main())
        return results, stats["steps"]


class Gevent:
    """gevent: spawn / sleep / joinall on greenlets."""

    def __init__(self):
        import gevent

        self.gevent = gevent
        self.version = gevent.__version__

    def run(self, params):
        gevent = self.gevent
        workload = params["workload"]
        tasks, iters, delay = params["tasks"], params["iters"], params["delay"]
        sleep = gevent.sleep
        stats = {"steps": 0}

        def w1_switch(index):
            steps = 0
            for _ in range(iters):
                sleep(0)
                steps += 1
            stats["steps"] += steps
            return index

        def w2_spawn(index):
            return index

        def w3_timers(index):
            t0 = time.monotonic()
            sleep(delay)
            return time.monotonic() - t0

        fn = {"W1": w1_switch, "W2": w2_spawn, "W3": w3_timers}[workload]
        greenlets = [gevent.spawn(fn, i) for i in range(tasks)]
        gevent.joinall(greenlets, raise_error=True)
        for i, g in enumerate(greenlets):
            if not g.successful():
                fail(f"greenlet {i} did not succeed: {g.exception!r}")
        return [g.value for g in greenlets], stats["steps"]


def _asyncio():
    import asyncio

    return AsyncioLike(asyncio, sys.version.split()[0])


def _uvloop():
    import asyncio
    import uvloop

    # uvloop 0.17 has no uvloop.run: install its policy, then asyncio.run.
    return AsyncioLike(asyncio, uvloop.__version__,
                       setup=lambda: asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()))


def _rill():
    # The Python binding (bindings/python); bench/run puts it on PYTHONPATH.
    rill = importlib.import_module("rill")
    return AsyncioLike(rill, getattr(rill, "__version__", "?"))


def _rill_loop():
    # Unmodified asyncio code (asyncio.run, asyncio.sleep, asyncio.gather,
    # asyncio.Queue) after rill.install(): rill's loop under asyncio's API.
    import asyncio

    rill = importlib.import_module("rill")
    return AsyncioLike(asyncio, getattr(rill, "__version__", "?"), setup=rill.install)


def _rill_loop_asyncio_task():
    # As rill-loop, with asyncio's own C Task (_asyncio.Task) as the loop's
    # task factory: asyncio's task machinery driven by rill's loop.
    import asyncio

    rill = importlib.import_module("rill")

    class Policy(rill.EventLoopPolicy):
        def new_event_loop(self):
            loop = super().new_event_loop()
            loop.set_task_factory(lambda loop, coro, **kw: asyncio.Task(coro, loop=loop, **kw))
            return loop

    return AsyncioLike(asyncio, getattr(rill, "__version__", "?"),
                       setup=lambda: asyncio.set_event_loop_policy(Policy()))


# One entry per implementation; bench/run names them by these keys.
IMPLS = {
    "asyncio": _asyncio,
    "uvloop": _uvloop,
    "gevent": Gevent,
    "rill": _rill,
    "rill-loop": _rill_loop,
    "rill-loop-atask": _rill_loop_asyncio_task,
}


def fail(message):
    print(f"bench: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def parse_w6(argv):
    params = {"impl": argv[1], "workload": "W6", "items": 1000000, "maxsize": 1}
    for arg in argv[3:]:
        key, eq, value = arg.partition("=")
        if not eq or key not in ("items", "maxsize"):
            fail(f"bad argument {arg!r}")
        try:
            params[key] = int(value)
        except ValueError:
            fail(f"bad value in {arg!r}")
    if params["items"] <= 0 or params["maxsize"] < 0:
        fail("items must be > 0, maxsize >= 0")
    return params


def main_w6(params):
    impl = IMPLS[params["impl"]]()
    if not hasattr(impl, "run_w6"):
        fail(f"W6 is not written for {params['impl']}")
    t0 = time.perf_counter()
    got = impl.run_w6(params)
    wall = time.perf_counter() - t0
    if got != params["items"]:
        fail(f"W6: the consumer got {got} items, expected {params['items']}")
    print(f"RESULT workload=W6 impl={params['impl']} version={impl.version} "
          f"items={params['items']} maxsize={params['maxsize']} ops={params['items']} "
          f"wall_s={wall:.6f} ns_per_op={wall * 1e9 / params['items']:.2f}", flush=True)


def parse(argv):
    if len(argv) < 3 or argv[1] not in IMPLS or argv[2] not in ("W1", "W2", "W3", "W6"):
        fail(f"usage: {argv[0]} {{{','.join(IMPLS)}}} W1|W2|W3 [tasks=N] [iters=N] [delay=S]"
             f" | W6 [items=N] [maxsize=N]")
    params = {"impl": argv[1], "workload": argv[2],
              "tasks": 1000 if argv[2] == "W1" else 100000, "iters": 1000, "delay": 0.05}
    if argv[2] == "W6":
        return parse_w6(argv)
    for arg in argv[3:]:
        key, eq, value = arg.partition("=")
        if not eq or key not in ("tasks", "iters", "delay"):
            fail(f"bad argument {arg!r}")
        try:
            params[key] = float(value) if key == "delay" else int(value)
        except ValueError:
            fail(f"bad value in {arg!r}")
    if params["tasks"] <= 0 or params["iters"] < 0 or params["delay"] < 0:
        fail("tasks must be > 0, iters and delay >= 0")
    if params["workload"] == "W1" and params["iters"] == 0:
        fail("W1 needs iters > 0")
    return params


def verify(params, results, steps):
    workload, tasks, iters, delay = (params[k] for k in ("workload", "tasks", "iters", "delay"))
    if results is None or len(results) != tasks:
        fail(f"gather returned {None if results is None else len(results)} results, expected {tasks}")
    if workload == "W3":
        shortest = min(results)
        if shortest < delay - SLEEP_TOLERANCE_S:
            fail(f"a sleep({delay}) lasted {shortest:.6f} s")
        return f" min_sleep_s={shortest:.6f}"
    if list(results) != list(range(tasks)):
        fail("gather results are not the task indexes in order")
    if workload == "W1" and steps != tasks * iters:
        fail(f"{steps} switches, expected {tasks * iters}")
    return ""


def main(argv):
    params = parse(argv)
    if params["workload"] == "W6":
        return main_w6(params)
    impl = IMPLS[params["impl"]]()
    t0 = time.perf_counter()
    results, steps = impl.run(params)
    wall = time.perf_counter() - t0
    extra = verify(params, results, steps)
    ops = params["tasks"] * params["iters"] if params["workload"] == "W1" else params["tasks"]
    print(f"RESULT workload={params['workload']} impl={params['impl']} version={impl.version} "
          f"tasks={params['tasks']} iters={params['iters']} delay={params['delay']:g} ops={ops} "
          f"wall_s={wall:.6f} ns_per_op={wall * 1e9 / ops:.2f}{extra}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
