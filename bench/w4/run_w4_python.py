#!/usr/bin/python3
"""W4 echo in Python (BENCHMARKS.md): examples/echo_server.py on rill's
streams against asyncio's streams and protocols on uvloop and on asyncio's
default loop, all run by Debian's /usr/bin/python3 (the one uvloop lives in).

    bench/w4/run_w4_python.py [BUILD_DIR] [SECONDS] [REPS]

As run_w4.sh: each server pinned to CPU 1, the project's load generator
(bench_echo_client, one warm-up connection) to CPU 0, SECONDS per cell; the
servers of a cell alternate, in an order that rotates from one repetition
to the next; the median of REPS is reported. Prints a Markdown table, with
rill streams' ratio to uvloop streams (the goal: >= 1.3x).
"""
import os
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
]
CELLS = [(10, 1024), (100, 1024), (10, 65536)]


def run_cell(build, port, flags, conns, size, secs, env):
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
        r = subprocess.run(["taskset", "-c", "0", str(build / "bench" / "bench_echo_client"),
                            str(port), str(conns), str(size), str(secs)],
                           capture_output=True, text=True, timeout=secs + 60)
        for line in r.stdout.splitlines():
            if line.startswith("req/s"):
                return int(line.split()[1])
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
    env["PYTHONPATH"] = os.pathsep.join(
        [str(build / "bindings" / "python")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    servers = [s for s in SERVERS if "--uvloop" not in s[1] or subprocess.run(
        [PYTHON, "-c", "import uvloop"], capture_output=True).returncode == 0]
    port = int(os.environ.get("W4_PORT", "17600"))
    results = {}
    for rep in range(reps):
        for conns, size in CELLS:
            k = rep % len(servers)
            for name, flags in servers[k:] + servers[:k]:
                port += 1
                v = run_cell(build, port, flags, conns, size, secs, env)
                results.setdefault((name, conns, size), []).append(v)
    head = " | ".join(f"{c} x {s // 1024} KiB" for c, s in CELLS)
    print(f"| server ({PYTHON}, req/s, median of {reps}) | {head} |")
    print("|---|" + "---:|" * len(CELLS))
    med = {}
    for name, _ in servers:
        cells = []
        for conns, size in CELLS:
            vals = [v for v in results[(name, conns, size)] if v]
            med[(name, conns, size)] = statistics.median(vals) if vals else None
            cells.append(f"{med[(name, conns, size)]:.0f}" if vals else "fail")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if ("uvloop streams", 10, 1024) in med:
        ratios = []
        for conns, size in CELLS:
            a, b = med.get(("rill streams", conns, size)), med.get(("uvloop streams", conns, size))
            ratios.append(f"{a / b:.2f}x" if a and b else "-")
        print("| rill streams / uvloop streams (goal >= 1.3x) | " + " | ".join(ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
