#!/usr/bin/env python3
"""check_output.py PROGRAM - runs examples/polyglot-host and checks its
output: the seed across languages (A in Lua, B in Python, gathered in C++),
then each language's native view of the values resolved in Lua, then the
seed part's duration, which must be 0.95 s to 1.2 s (the sleeps overlap)."""
import re
import subprocess
import sys

EXPECTED = [
    "Task A started",
    "Task B started",
    "Task A finished",
    "Task B finished",
    'Lua resolved 42, 2.5, "rill-bytes"',
    "Python got int 42, float 2.5, bytes b'rill-bytes'",
    'C++ got int64_t 42, double 2.5, std::string "rill-bytes" (10 bytes)',
]
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=30)
sys.stdout.write(r.stdout)
lines = r.stdout.splitlines()
ok = True
if r.returncode != 0:
    print(f"exit status {r.returncode}; stderr: {r.stderr.strip()}")
    ok = False
m = re.fullmatch(r"seed part took (\d+\.\d+) s", lines[-1]) if lines else None
if lines[:-1] != EXPECTED or not m:
    print(f"output {lines!r}, expected {EXPECTED!r} + 'seed part took N s'")
    ok = False
if m and not 0.95 <= float(m.group(1)) <= 1.2:
    print(f"the seed part took {m.group(1)} s, expected 0.95-1.2 s")
    ok = False
print("polyglot_host: " + ("OK" if ok else "FAILED"))
sys.exit(0 if ok else 1)
