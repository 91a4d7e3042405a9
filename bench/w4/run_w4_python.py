#!/usr/bin/python3
"""W4 echo in Python (BENCHMARKS.md): examples/echo_server.py on rill's
streams against asyncio's streams and protocols on uvloop and on asyncio's
default loop, all run by Debian's /usr/bin/python3 (the one uvloop lives in).

    bench/w4/run_w4_python.py [BUILD_DIR] [SECONDS] [REPS]

As run_w4.sh: each server pinned to CPU 1, the project's load generator
(bench_echo_client, one warm-up connection) to CPU 0, SECONDS per cell; the
servers of a cell alternate, in an order that rotates from one repetition
to the next; the median of REPS is reported. Prints two Markdown tables,
req/s and the server's CPU time per request (utime + stime of the server
process over the client's run / requests: what the loop costs, far less
sensitive than req/s to other load on a shared machine), each with rill
streams' ratio to uvloop streams (the goal: >= 1.3x), and asyncio's streams
and protocol on rill's loop (--rill) against theirs on uvloop (>= 1.3x, >= 1x).

W4PY_BORROWED=1 adds two rows: asyncio's streams and protocol on rill's loop
with asyncio's own selector transport (RILL_PY_TRANSPORT=asyncio) instead of
rill's C transport, to compare the two in one run.

W4PY_RING_OFF=1 adds two rows: rill streams and asyncio's protocol on rill's
loop with RILL_IO_URING=0 (each read and send its own syscall instead of an
iteration's in one io_uring_enter, core/src/uring.c), to compare in one run.

W4PY_ONLY="row,row" keeps only the rows named (a focused A/B, e.g.
W4PY_RING_OFF=1 W4PY_ONLY="uvloop protocol,rill loop, asyncio protocol,rill
loop, asyncio protocol, no ring": row names contain ", ", so the list is
split on commas not followed by a space); W4PY_CELLS="100x1024,10x1024"
keeps only those cells.

W4PY_OTHER_BUILD=DIR adds, for each rill row, the same server on the
Python binding of another build tree (say the commit before a change, built
with -DRILL_PYTHON_DEBIAN=ON), named "ROW, other build": a before/after in
one run.
"""
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
SERVERS = [  # (row, echo_server.py flags)
    ("rill streams", ["--rill-streams"]),
    ("uvloop streams", ["--streams", "--uvloop"]),
    ("asyncio streams", ["--streams"]),
    ("uvloop protocol", ["--protocol", "--uvloop"]),
    ("asyncio protocol", ["--protocol"]),
    # asyncio's own code on rill's loop (rill.install()): issue 12's rows.
    ("rill loop, asyncio streams", ["--streams", "--rill"]),
    ("rill loop, asyncio protocol", ["--protocol", "--rill"]),
]
BORROWED = [  # W4PY_BORROWED=1: asyncio's transport on rill's loop
    ("rill loop, asyncio streams, borrowed transport", ["--streams", "--rill"]),
    ("rill loop, asyncio protocol, borrowed transport", ["--protocol", "--rill"]),
]
RING_OFF = [  # W4PY_RING_OFF=1: the core's batched reads and sends off
    ("rill streams, no ring", ["--rill-streams"]),
    ("rill loop, asyncio protocol, no ring", ["--protocol", "--rill"]),
]
# (rill row, uvloop row, goal): the ratios printed under each table.
GOALS = [("rill streams", "uvloop streams", 1.3),
         ("rill loop, asyncio streams", "uvloop streams", 1.3),
         ("rill loop, asyncio protocol", "uvloop protocol", 1.0),
         ("rill loop, asyncio streams, borrowed transport", "uvloop streams", 1.3),
         ("rill loop, asyncio protocol, borrowed transport", "uvloop protocol", 1.0),
         ("rill streams, no ring", "uvloop streams", 1.3),
         ("rill loop, asyncio protocol, no ring", "uvloop protocol", 1.0)]
CELLS = [(10, 1024), (100, 1024), (10, 65536)]


def _cpu(pid):
    """utime + stime of pid in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cell(build, port, flags, conns, size, secs, env, name=""):
    if "borrowed transport" in name:
        env = dict(env, RILL_PY_TRANSPORT="asyncio")
    if "no ring" in name:
        env = dict(env, RILL_IO_URING="0")
    if name.endswith(", other build"):
        other = Path(os.environ["W4PY_OTHER_BUILD"]).resolve()
        env = dict(env, PYTHONPATH=os.pathsep.join(
            [str(other / "bindings" / "python" / "debian"), str(other / "bindings" / "python")]))
    out = open(f"/tmp/rill-w4py-{os.getpid()}.out", "w+")
    server = subprocess.Popen(["taskset", "-c", "1", PYTHON, str(ROOT / "examples" / "echo_server.py"),
                               str(port)] + flags, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(100):
            out.seek(0)
            if "listening on" in out.read():
                break
            time.sleep(0.05)
        else:
            return None
        cpu0 = _cpu(server.pid)
        r = subprocess.run(["taskset", "-c", "0", str(build / "bench" / "bench_echo_client"),
                            str(port), str(conns), str(size), str(secs)],
                           capture_output=True, text=True, timeout=secs + 60)
        cpu = _cpu(server.pid) - cpu0
        for line in r.stdout.splitlines():
            if line.startswith("req/s"):
                rate = int(line.split()[1])
                return rate, (cpu * 1e6 / (rate * secs) if rate else None)
        return None
    finally:
        server.send_signal(2)
        try:
            server.wait(2)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        out.close()


def main(argv):
    build = Path(argv[1] if len(argv) > 1 else ROOT / "build").resolve()
    secs = float(argv[2]) if len(argv) > 2 else 5
    reps = int(argv[3]) if len(argv) > 3 else 3
    env = dict(os.environ)
    # The binding built for Debian's interpreter (RILL_PYTHON_DEBIAN) when the
    # tree has one; else the tree's own (bench/run's build-bench is built for
    # /usr/bin/python3).
    env["PYTHONPATH"] = os.pathsep.join(
        [str(build / "bindings" / "python" / "debian"), str(build / "bindings" / "python")]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    rows = SERVERS + (BORROWED if os.environ.get("W4PY_BORROWED") == "1" else []) + (
        RING_OFF if os.environ.get("W4PY_RING_OFF") == "1" else [])
    if os.environ.get("W4PY_OTHER_BUILD"):
        rows = rows + [(f"{name}, other build", flags) for name, flags in rows
                       if name.startswith("rill") and "no ring" not in name]
        GOALS.extend((f"{mine}, other build", peer, goal) for mine, peer, goal in list(GOALS))
    only = os.environ.get("W4PY_ONLY")
    if only:
        names = re.split(r",(?! )", only)
        rows = [r for r in rows if r[0] in names]
    cells = os.environ.get("W4PY_CELLS")
    if cells:
        CELLS[:] = [tuple(int(x) for x in c.split("x")) for c in cells.split(",")]
    servers = [s for s in rows if "--uvloop" not in s[1] or subprocess.run(
        [PYTHON, "-c", "import uvloop"], capture_output=True).returncode == 0]
    port = int(os.environ.get("W4_PORT", "17600"))
    results = {}
    for rep in range(reps):
        for conns, size in CELLS:
            k = rep % len(servers)
            for name, flags in servers[k:] + servers[:k]:
                port += 1
                v = run_cell(build, port, flags, conns, size, secs, env, name)
                results.setdefault((name, conns, size), []).append(v)
    head = " | ".join(f"{c} x {s // 1024} KiB" for c, s in CELLS)
    for index, what, fmt, better in ((0, "req/s", "{:.0f}", lambda a, b: a / b),
                                     (1, "server CPU us/req", "{:.1f}", lambda a, b: b / a)):
        print(f"| server ({PYTHON}, {what}, median of {reps}) | {head} |")
        print("|---|" + "---:|" * len(CELLS))
        med = {}
        for name, _ in servers:
            cells = []
            for conns, size in CELLS:
                vals = [v[index] for v in results[(name, conns, size)] if v and v[index]]
                med[(name, conns, size)] = statistics.median(vals) if vals else None
                cells.append(fmt.format(med[(name, conns, size)]) if vals else "fail")
            print(f"| {name} | " + " | ".join(cells) + " |")
        for mine, peer, goal in GOALS:
            if not any(name == peer for name, _ in servers) or not any(name == mine for name, _ in servers):
                continue
            ratios = []
            for conns, size in CELLS:
                a, b = med.get((mine, conns, size)), med.get((peer, conns, size))
                ratios.append(f"{better(a, b):.2f}x" if a and b else "-")
            print(f"| {mine} vs {peer} (goal >= {goal:g}x) | " + " | ".join(ratios) + " |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
