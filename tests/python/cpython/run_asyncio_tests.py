#!/usr/bin/env python3
"""CPython's own asyncio tests (test.test_asyncio of the interpreter running
this script) with a chosen event loop policy: rill's, uvloop's or asyncio's.

    python3 run_asyncio_tests.py --loop rill [--files test_locks,test_tasks]
        [--quick] [--json out.json] [--expected expected.txt] [--all]

Each test file runs in a child process (its own session, killed as a whole):
the child reports every test's start and outcome on a pipe, so the parent
bounds each test (--test-timeout) and each file (--file-timeout), records a
test that hangs or crashes the interpreter as `hang`/`crash`, and restarts
the file after it. Tests known to hang on a loop are not run at all
(KNOWN_HANGS, with the reason); they count as hung.

Before each test the child installs the policy again (a test module's
tearDownModule or a test may reset it) and notes whether the test asked the
policy for a loop (asyncio.new_event_loop, asyncio.run, Runner,
get_event_loop...). The table counts these "policy-loop tests" — the tests
where the chosen loop is the loop under test — plus every test that did not
pass without asking (so a loop cannot gain by failing early); tests that run
on a loop class named by the test (SelectorEventLoop, test_utils.TestLoop)
are left out, except that the Select* variant of the loop-parametrised
classes gets the policy's loop (INJECT; --no-inject to keep asyncio's).
--all counts every test. Several loops (--loop asyncio,uvloop,rill) run one
after the other and end with a side-by-side table.

The child restores Python's SIGINT handler (started in the background,
Python inherits SIGINT ignored, and the tests that interrupt a loop spin)
and caps its address space (--memory-limit). On a hang the parent sends
SIGUSR1 first: faulthandler writes every thread's stack to the file's log
(--logdir).

Nothing in CPython's tests is modified. One optional shim, --tolerate-private,
lets test_utils.TestCase.close_loop accept a loop without the private
attribute `_default_executor` (asyncio's BaseEventLoop has it; uvloop's loop
does not); the output says when it is on.

--expected FILE: lines `PYVERSION LOOP FILE FLOOR` (e.g. `3.11.7 rill
test_locks 80`); the run fails (exit 1) when a listed file of this
interpreter and loop passes fewer tests than its floor.
"""
import argparse
import fnmatch
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time

FILES = [
    "test_taskgroups", "test_timeouts", "test_waitfor", "test_locks", "test_queues",
    "test_runners", "test_streams", "test_server", "test_sock_lowlevel", "test_subprocess",
    "test_sendfile", "test_ssl", "test_context", "test_pep492", "test_events", "test_tasks",
    "test_futures",
]
# --quick: files that run in a few seconds each and exercise tasks,
# cancellation, timeouts, sync primitives and queues.
QUICK_FILES = [
    "test_taskgroups", "test_timeouts", "test_waitfor", "test_locks", "test_queues",
    "test_context", "test_pep492", "test_runners",
]

# Tests that hang (not fail) on a loop: not run, counted as `hang`. Keys are
# fnmatch patterns of test ids without the "test.test_asyncio." prefix.
KNOWN_HANGS = {
    "rill": {},
    "uvloop": {},
    "asyncio": {},
}

PREFIX = "test.test_asyncio."

# Loop injection (on unless --no-inject): test_events, test_sock_lowlevel,
# test_sendfile and test_server run their loop tests once per selector
# (EPoll..., Poll..., Select...EventLoopTests, each naming its loop class).
# The Select variant's loop factory is replaced by the policy's loop, so
# that variant tests the chosen loop; the others still test asyncio's
# selector loops and are not counted (they do not ask the policy).
INJECT = [("SelectEventLoopTests", "create_event_loop"),
          ("SelectorStartServerTests", "new_loop")]


# ------------------------------------------------------------------ child


def install_policy(loop_name):
    import asyncio

    if loop_name == "rill":
        import rill

        policy = rill.EventLoopPolicy()
    elif loop_name == "uvloop":
        import uvloop

        policy = uvloop.EventLoopPolicy()
    else:
        policy = asyncio.DefaultEventLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    return policy


def child_main(args):
    import asyncio
    import traceback
    import unittest

    out = os.fdopen(args.child_fd, "w", buffering=1)
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent's "where are you?"
    # Started in the background (ctest, `cmd &`), Python inherits SIGINT
    # ignored: the tests that interrupt a loop with SIGINT expect Python's
    # own handler (as under a terminal), else they spin.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.memory_limit:
        # A test that allocates without end gets MemoryError, not the machine.
        import resource

        limit = int(args.memory_limit * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def emit(**rec):
        out.write(json.dumps(rec) + "\n")

    if args.tolerate_private:
        from test.test_asyncio import utils as test_utils

        original = test_utils.TestCase.close_loop

        def close_loop(loop):
            if not hasattr(loop, "_default_executor"):
                loop.close()  # the rest of close_loop (the child watcher) does not apply
                return
            original(loop)

        test_utils.TestCase.close_loop = staticmethod(close_loop)

    asked = [False]

    def policy_for_test():
        policy = install_policy(args.loop)
        new_event_loop = policy.new_event_loop

        def counting_new_event_loop():
            asked[0] = True
            return new_event_loop()

        policy.new_event_loop = counting_new_event_loop

    exclude = set()
    if args.exclude:
        with open(args.exclude) as f:
            exclude = set(json.load(f))

    def flatten(suite):
        for t in suite:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    def short(test_id):
        return test_id[len(PREFIX):] if test_id.startswith(PREFIX) else test_id

    def reason(err):
        exc = err[1]
        if exc is None:
            return err[0].__name__
        line = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
        return (line[-1] if line else type(exc).__name__)[:400]

    class Result(unittest.TestResult):
        def __init__(self):
            super().__init__()
            self._outcome = None
            self._why = None

        def startTest(self, test):
            super().startTest(test)
            policy_for_test()
            asked[0] = False
            self._outcome, self._why = "pass", None
            emit(ev="start", id=short(test.id()), t=time.time())

        def _set(self, outcome, why):
            # the first bad outcome wins (a failing subtest, then an error in tearDown)
            if self._outcome in ("pass", "xfail"):
                self._outcome, self._why = outcome, why

        def addError(self, test, err):
            super().addError(test, err)
            if not isinstance(test, unittest.TestCase):  # setUpClass/Module, tearDown...
                emit(ev="end", id=short(test.id()), outcome="error", why=reason(err), policy=True)
                return
            self._set("error", reason(err))

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._set("fail", reason(err))

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                bad = "fail" if issubclass(err[0], test.failureException) else "error"
                self._set(bad, reason(err))

        def addSkip(self, test, why):
            super().addSkip(test, why)
            self._outcome, self._why = "skip", str(why)[:200]

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._outcome = "xfail"

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._set("fail", "unexpected success")

        def stopTest(self, test):
            super().stopTest(test)
            emit(ev="end", id=short(test.id()), outcome=self._outcome, why=self._why,
                 policy=asked[0], t=time.time())

    module = PREFIX + args.child
    policy_for_test()
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    if not args.no_inject:
        mod = sys.modules[module]
        for cls_name, method in INJECT:
            cls = getattr(mod, cls_name, None)
            if cls is not None and hasattr(cls, method):
                setattr(cls, method, lambda self: asyncio.new_event_loop())
    tests = [t for t in flatten(suite) if short(t.id()) not in exclude]
    emit(ev="tests", ids=[short(t.id()) for t in tests])
    known = KNOWN_HANGS.get(args.loop, {})
    runnable = []
    for t in tests:
        why = next((w for pat, w in known.items() if fnmatch.fnmatchcase(short(t.id()), pat)), None)
        if why is None:
            runnable.append(t)
        else:
            emit(ev="end", id=short(t.id()), outcome="hang", why=f"known hang, not run: {why}",
                 policy=True)
    tests = runnable
    result = Result()
    unittest.TestSuite(tests).run(result)
    emit(ev="done")
    out.close()
    return 0


# ----------------------------------------------------------------- parent


def run_file(args, name, log):
    """Runs one test file (restarting it after a hang or a crash); returns
    {test id: record} in the order the tests ran."""
    records = {}
    excluded = set()
    deadline = time.monotonic() + args.file_timeout
    listed = None
    while True:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(sorted(excluded), f)
            exclude_path = f.name
        rfd, wfd = os.pipe()
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--child-fd", str(wfd),
               "--loop", args.loop, "--exclude", exclude_path,
               "--memory-limit", str(args.memory_limit)]
        if args.tolerate_private:
            cmd.append("--tolerate-private")
        if args.no_inject:
            cmd.append("--no-inject")
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 pass_fds=(wfd,), start_new_session=True)
        os.close(wfd)
        current = None
        started = time.monotonic()
        done = False
        killed = None
        buf = b""
        sel = selectors.DefaultSelector()
        sel.register(rfd, selectors.EVENT_READ)
        eof = False
        while not eof:
            now = time.monotonic()
            if now > deadline:
                killed = "file timeout"
            elif current is not None and now - started > args.test_timeout:
                killed = "test timeout"
            if killed:
                try:
                    child.send_signal(signal.SIGUSR1)  # its stacks, into the log
                    time.sleep(0.5)
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            for _key, _ in sel.select(timeout=0.5):
                data = os.read(rfd, 65536)
                if not data:
                    eof = True
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    rec = json.loads(line)
                    ev = rec["ev"]
                    if ev == "tests":
                        if listed is None:
                            listed = list(rec["ids"])
                    elif ev == "start":
                        current = rec["id"]
                        started = time.monotonic()
                    elif ev == "end":
                        records[rec["id"]] = {"outcome": rec["outcome"], "why": rec.get("why"),
                                              "policy": rec.get("policy", True)}
                        excluded.add(rec["id"])
                        if rec["id"] == current:
                            current = None
                    elif ev == "done":
                        done = True
        sel.close()
        os.close(rfd)
        rc = child.wait()
        os.unlink(exclude_path)
        if done:
            break
        if current is not None:
            outcome = "hang" if killed else "crash"
            print(f"    {current}: {killed or 'crash'}", flush=True)
            why = killed or f"the interpreter died (exit {rc})"
            records[current] = {"outcome": outcome, "why": why, "policy": True}
            excluded.add(current)
        if killed == "file timeout" or (current is None and not done):
            # out of time, or died between tests: what was not run is lost
            for tid in listed or []:
                if tid not in records:
                    records[tid] = {"outcome": "hang" if killed else "crash",
                                    "why": killed or f"not run: the interpreter died (exit {rc})",
                                    "policy": True}
            if listed is None:
                records[name] = {"outcome": "crash", "why": f"could not load (exit {rc})",
                                 "policy": True}
            break
    return records


COLUMNS = ("passed", "failed", "errors", "skipped", "hung", "total")


def tally(records, count_all):
    row = dict.fromkeys(COLUMNS, 0)
    for rec in records.values():
        o = rec["outcome"]
        good = o in ("pass", "xfail", "skip")
        if not (count_all or rec["policy"] or not good):
            continue
        row["total"] += 1
        if o in ("pass", "xfail"):
            row["passed"] += 1
        elif o == "skip":
            row["skipped"] += 1
        elif o == "fail":
            row["failed"] += 1
        elif o in ("hang",):
            row["hung"] += 1
        else:
            row["errors"] += 1
    return row


def print_table(title, rows, total, notes):
    print(title)
    width = max([len(n) for n in rows] + [len("TOTAL")])
    head = f"{'file':<{width}}  " + "  ".join(f"{c:>7}" for c in COLUMNS)
    print(head)
    print("-" * len(head))
    for name, row in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{row[c]:>7}" for c in COLUMNS))
    print("-" * len(head))
    print(f"{'TOTAL':<{width}}  " + "  ".join(f"{total[c]:>7}" for c in COLUMNS))
    for note in notes:
        print(f"note: {note}")


def read_floors(path, loop):
    version = "%d.%d.%d" % sys.version_info[:3]
    floors = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 4 and line[0] == version and line[1] == loop:
                floors[line[2]] = int(line[3])
    return floors


def run_loop(args, loop_name, files):
    """Runs the files with one loop: prints its table, returns (rows, results, total)."""
    args.loop = loop_name
    version = "%d.%d.%d" % sys.version_info[:3]
    title = (f"CPython {version} test.test_asyncio ({sys.executable}) with the {loop_name} loop"
             f" - {'every test' if args.all else 'policy-loop tests'}")
    print(title, flush=True)
    results = {}
    rows = {}
    t0 = time.monotonic()
    for name in files:
        t1 = time.monotonic()
        if args.logdir:
            os.makedirs(args.logdir, exist_ok=True)
            log = open(os.path.join(args.logdir, f"{loop_name}.{name}.log"), "w")
        else:
            log = subprocess.DEVNULL
        try:
            results[name] = run_file(args, name, log)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        rows[name] = tally(results[name], args.all)
        r = rows[name]
        print(f"  {name}: {r['passed']}/{r['total']} passed ({time.monotonic() - t1:.1f} s)",
              flush=True)
    total = {c: sum(r[c] for r in rows.values()) for c in COLUMNS}
    notes = []
    if not args.no_inject:
        notes.append("loop injection on: " + ", ".join(f"{c}.{m}" for c, m in INJECT)
                     + " return the policy's loop")
    if args.tolerate_private:
        notes.append("shim on: test_utils.TestCase.close_loop tolerates a loop without _default_executor")
    known = [t for recs in results.values() for t, rec in recs.items()
             if rec["why"] and rec["why"].startswith("known hang")]
    if known:
        notes.append(f"{len(known)} known hang(s) not run (see --failures)")
    notes.append(f"{time.monotonic() - t0:.0f} s")
    print()
    print_table(title, rows, total, notes)
    if args.failures:
        print()
        for name, recs in results.items():
            for tid, rec in recs.items():
                if rec["outcome"] not in ("pass", "xfail", "skip"):
                    print(f"{rec['outcome']:5}  {tid}: {rec['why']}")
    print(flush=True)
    return rows, results, total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loop", default="rill",
                   help="rill, uvloop or asyncio; several, comma-separated, run one after the "
                        "other and end with a comparison table")
    p.add_argument("--files", help="comma-separated test files (default: the issue's list)")
    p.add_argument("--quick", action="store_true", help="the bounded CI subset: " + ", ".join(QUICK_FILES))
    p.add_argument("--test-timeout", type=float, default=30.0, help="seconds per test (default 30)")
    p.add_argument("--file-timeout", type=float, default=300.0, help="seconds per file (default 300)")
    p.add_argument("--json", help="write the results (per test) to this file")
    p.add_argument("--expected", help="per-file floors to assert (PYVERSION LOOP FILE FLOOR lines)")
    p.add_argument("--all", action="store_true", help="count every test, not only policy-loop tests")
    p.add_argument("--tolerate-private", action="store_true",
                   help="shim: test_utils' close_loop accepts a loop without _default_executor")
    p.add_argument("--no-inject", action="store_true",
                   help="leave SelectEventLoopTests & co on asyncio's SelectorEventLoop")
    p.add_argument("--failures", action="store_true", help="list every test that did not pass")
    p.add_argument("--logdir", help="keep each file's output (stdout/stderr of the tests) here")
    p.add_argument("--memory-limit", type=float, default=3.0,
                   help="GiB of address space per test process (default 3; 0: none)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--exclude", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child_main(args)

    loops = [x.strip() for x in args.loop.split(",") if x.strip()]
    for loop_name in loops:
        if loop_name not in ("rill", "uvloop", "asyncio"):
            p.error(f"--loop: unknown loop {loop_name!r}")
        # Fail early, with a clear message, when the loop or the tests are missing.
        try:
            install_policy(loop_name)
            import test.test_asyncio  # noqa: F401
        except ImportError as e:
            print(f"run_asyncio_tests: cannot run with --loop {loop_name} on {sys.executable}: {e}",
                  file=sys.stderr)
            return 2
    if args.files:
        files = [f.strip().removesuffix(".py") for f in args.files.split(",") if f.strip()]
    else:
        files = QUICK_FILES if args.quick else FILES

    version = "%d.%d.%d" % sys.version_info[:3]
    runs = {}
    for loop_name in loops:
        runs[loop_name] = run_loop(args, loop_name, files)

    if len(loops) > 1:
        width = max(len(n) for n in files + ["TOTAL"])
        print(f"CPython {version} ({sys.executable}): tests passed / counted, per loop")
        print(f"{'file':<{width}}  " + "  ".join(f"{n:>9}" for n in loops))
        for name in files:
            cells = [f"{runs[n][0][name]['passed']}/{runs[n][0][name]['total']}" for n in loops]
            print(f"{name:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
        cells = [f"{runs[n][2]['passed']}/{runs[n][2]['total']}" for n in loops]
        print(f"{'TOTAL':<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
        print()

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": version, "executable": sys.executable,
                       "counting": "all" if args.all else "policy",
                       "tolerate_private": args.tolerate_private, "inject": not args.no_inject,
                       "loops": {n: {"files": {f: {"counts": rows[f], "tests": results[f]}
                                               for f in files},
                                     "total": total}
                                 for n, (rows, results, total) in runs.items()}},
                      f, indent=1)

    status = 0
    if args.expected:
        checked = 0
        for loop_name in loops:
            rows = runs[loop_name][0]
            floors = read_floors(args.expected, loop_name)
            for name in files:
                if name not in floors:
                    continue
                checked += 1
                if rows[name]["passed"] < floors[name]:
                    print(f"FLOOR: {loop_name} {name} passed {rows[name]['passed']} < {floors[name]} "
                          f"(expected.txt for {version} {loop_name})")
                    status = 1
        if status == 0:
            print(f"floors: OK ({checked} files checked)")
    return status


if __name__ == "__main__":
    sys.exit(main())
