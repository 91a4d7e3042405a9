#!/usr/bin/env python3
"""run_seed.py PROGRAM - runs a seed example; checks its output and timing.

The seed prints A started, B started, A finished, B finished, and takes
about one second (the two sleeps overlap), not two: 0.95 s to 1.2 s.
"""
import subprocess
import sys
import time

EXPECTED = ["Task A started", "Task B started", "Task A finished", "Task B finished"]
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=30)
dt = time.monotonic() - t0
lines = r.stdout.splitlines()
sys.stdout.write(r.stdout)  # the example's own output, for scripts/run-examples
ok = True
if r.returncode != 0:
    print(f"exit status {r.returncode}; stderr: {r.stderr.strip()}")
    ok = False
if lines != EXPECTED:
    print(f"output {lines!r}, expected {EXPECTED!r}")
    ok = False
if not 0.95 <= dt <= 1.2:
    print(f"took {dt:.3f} s, expected 0.95-1.2 s")
    ok = False
print(f"{'OK' if ok else 'FAILED'}: {len(lines)} lines in order, {dt:.3f} s")
sys.exit(0 if ok else 1)
