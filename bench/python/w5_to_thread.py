#!/usr/bin/python3
"""W5 (threads, BENCHMARKS.md) in Python: round trips through the loop's
thread pool with `to_thread`, rill against uvloop and asyncio.

    bench/python/w5_to_thread.py [--reps N] [--jobs N] [--build-dir DIR]
    bench/python/w5_to_thread.py IMPL inflight=N jobs=N     (one run, one RESULT line)

IMPL: rill (rill.run + rill.to_thread, the core's pool), rill-loop (unmodified
asyncio code, asyncio.run + asyncio.to_thread, after rill.install()), uvloop
and asyncio (asyncio.to_thread: the loop's default ThreadPoolExecutor).
inflight=1: each job is submitted when the previous one came back (the
loop -> thread -> loop latency); inflight=64: 64 workers each run jobs/64
round trips (throughput). Every job returns its own index, checked.

The driver (no IMPL) runs every implementation REPS times, alternating, in
the order rotated per repetition, with Debian's /usr/bin/python3 (uvloop's
interpreter) and the rill binding of BUILD_DIR/bindings/python; it prints
the median wall per job and the ratio uvloop / rill (the goal: >= 1x).
"""
import statistics
import subprocess
import sys
import time

from benchenv import DEFAULT_BUILD, PYTHON, importable, rill_env

IMPLS = ["rill", "rill-loop", "uvloop", "asyncio"]


def job(i):
    return i


def fail(msg):
    print(f"bench: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def one_run(impl, inflight, jobs):
    import asyncio

    if impl == "rill":
        import rill as mod
        run, to_thread, gather, version = mod.run, mod.to_thread, mod.gather, mod.__version__
    else:
        version = sys.version.split()[0]
        if impl == "rill-loop":
            import rill
            rill.install()
            version = rill.__version__
        elif impl == "uvloop":
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            version = uvloop.__version__
        run, to_thread, gather = asyncio.run, asyncio.to_thread, asyncio.gather

    per_worker = jobs // inflight

    async def worker(w):
        base = w * per_worker
        for i in range(base, base + per_worker):
            if await to_thread(job, i) != i:
                fail(f"job {i} returned a wrong value")
        return per_worker

    async def main():
        return sum(await gather(*[worker(w) for w in range(inflight)]))

    t0 = time.perf_counter()
    done = run(main())
    wall = time.perf_counter() - t0
    if done != per_worker * inflight:
        fail(f"{done} jobs came back, expected {per_worker * inflight}")
    print(f"RESULT workload=W5 impl={impl} version={version} inflight={inflight} "
          f"ops={done} wall_s={wall:.6f} ns_per_op={wall * 1e9 / done:.1f}", flush=True)


def driver(argv):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--build-dir", default=DEFAULT_BUILD)
    a = ap.parse_args(argv)
    env = rill_env(a.build_dir)
    impls = []
    for impl in IMPLS:
        mod = {"rill-loop": "rill"}.get(impl, impl)
        if not importable(mod, env):
            print(f"  {impl}: skipped (cannot import {mod} in {PYTHON})")
        else:
            impls.append(impl)
    for inflight in (1, 64):
        per = {k: [] for k in impls}
        for rep in range(a.reps):
            order = impls[rep % len(impls):] + impls[:rep % len(impls)]
            for impl in order:
                r = subprocess.run([PYTHON, __file__, impl, f"inflight={inflight}",
                                    f"jobs={a.jobs}"], env=env, capture_output=True, text=True,
                                   timeout=600)
                line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
                if r.returncode or not line:
                    print(f"  {impl}: FAILED: {r.stderr.strip()[-300:]}")
                    continue
                kv = dict(x.split("=", 1) for x in line.split()[1:])
                per[impl].append(float(kv["ns_per_op"]))
        print(f"W5 to_thread: {a.jobs} jobs, inflight={inflight}, median of {a.reps} "
              f"(Debian's {PYTHON})")
        base = statistics.median(per["rill"]) if per.get("rill") else None
        loop_base = statistics.median(per["rill-loop"]) if per.get("rill-loop") else None
        for impl in impls:
            if not per[impl]:
                continue
            m = statistics.median(per[impl])
            extra = ""
            if impl in ("uvloop", "asyncio"):
                if base:
                    extra += f"  / rill {m / base:5.2f}x"
                if loop_base:
                    extra += f"  / rill-loop {m / loop_base:5.2f}x"
            print(f"  {impl:10} {m:10.0f} ns/job{extra}")
        print("  goal: uvloop / rill >= 1x (both rill rows)")


def main(argv):
    if len(argv) > 1 and argv[1] in IMPLS:
        kv = dict(a.split("=", 1) for a in argv[2:])
        inflight, jobs = int(kv.get("inflight", 1)), int(kv.get("jobs", 20000))
        if inflight < 1 or jobs < inflight:
            fail("need inflight >= 1 and jobs >= inflight")
        one_run(argv[1], inflight, jobs)
    else:
        driver(argv[1:])


if __name__ == "__main__":
    main(sys.argv)
