#!/usr/bin/env python3
"""check_output.py PROGRAM - runs examples/polyglot-host and checks its
output: the seed across languages (A in Lua, B in Python, gathered in C++),
then each language's native view of the values resolved in Lua, then the
queue made in C++, filled in Lua and drained in Python (kinds kept, the
producer blocked while 2 were queued), then the seed part's duration, which
must be 0.95 s to 1.2 s (the sleeps overlap)."""
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
# Part 3, checked by language: each side's lines in order, and the blocking.
LUA_PUTS = ["1", "2.5", "three", "4", "5.5", "six"]
PY_GETS = ["int 1", "float 2.5", "bytes b'three'", "int 4", "float 5.5", "bytes b'six'"]
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=30)
sys.stdout.write(r.stdout)
lines = r.stdout.splitlines()
ok = True
if r.returncode != 0:
    print(f"exit status {r.returncode}; stderr: {r.stderr.strip()}")
    ok = False
m = re.fullmatch(r"seed part took (\d+\.\d+) s", lines[-1]) if lines else None
head = lines[:len(EXPECTED)]
part3 = lines[len(EXPECTED):-1]
if head != EXPECTED or not m:
    print(f"output {lines!r}, expected {EXPECTED!r} + the queue + 'seed part took N s'")
    ok = False
puts = [re.fullmatch(r"Lua put (\S+) \((\d+) queued\)", l) for l in part3 if l.startswith("Lua")]
gets = [l[len("Python got "):] for l in part3 if l.startswith("Python got ")]
if any(p is None for p in puts) or [p.group(1) for p in puts] != LUA_PUTS or gets != PY_GETS:
    print(f"queue part {part3!r}: expected Lua puts {LUA_PUTS!r} and Python gets {PY_GETS!r}")
    ok = False
elif max(int(p.group(2)) for p in puts) > 2:
    print("the queue held more than its maxsize 2")
    ok = False
elif (next(i for i, l in enumerate(part3) if l.startswith("Lua put three"))
      < part3.index("Python got int 1")):
    print("the producer's third put finished before the consumer's first get: it did not block")
    ok = False
if "C++ sees the queue empty: yes" not in part3:
    print("C++ did not see the queue empty at the end")
    ok = False
if m and not 0.95 <= float(m.group(1)) <= 1.2:
    print(f"the seed part took {m.group(1)} s, expected 0.95-1.2 s")
    ok = False
print("polyglot_host: " + ("OK" if ok else "FAILED"))
sys.exit(0 if ok else 1)
