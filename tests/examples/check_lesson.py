#!/usr/bin/env python3
"""check_lesson.py TRANSCRIPT [options] -- PROGRAM [ARGS...]

Runs one of the seed's lessons (examples/cycle.*, lifecycle.*, blocking.*)
and compares what it prints with its transcript, examples/lessons/*.txt,
the one file every language's check reads:

  - stdout equals the transcript line for line (--replace OLD NEW first
    rewrites the transcript for a language that differs by design, e.g.
    C's rill_run returning RILL_OK where the others return main's value);
  - --timed: lines are "LABEL (HOW): N.N s"; LABEL must equal the
    transcript's (HOW names each language's own call) and N.N be within
    --tolerance of the transcript's time;
  - the elapsed time is within --min and --max seconds; with
    --from-first-line it is counted from the first line the program prints
    to its exit, so an interpreter's start-up is left out (the program
    must print line by line: PYTHONUNBUFFERED=1 is set for Python, Lua and
    Ruby programs flush their own lines);
  - --errors LANG (python, lua, ruby): a transcript's "-> RILL_Exxx" (a
    misuse's code, as C prints it) becomes what LANG raises for that code,
    read from the one exception table, bindings/common/rill_errors.h;
  - --debug-entry REGEX: run with RILL_DEBUG=1; stderr must hold exactly
    one "Executing <Task ...>" report, naming task A and an entry matching
    REGEX ("none": the report must have no entry part);
    without it, stderr must be empty.
Prints the program's output, then "lesson: OK" or what differed.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("transcript")
ap.add_argument("--replace", nargs=2, action="append", default=[], metavar=("OLD", "NEW"))
ap.add_argument("--timed", action="store_true")
ap.add_argument("--tolerance", type=float, default=0.3)
ap.add_argument("--min", type=float, default=0.0)
ap.add_argument("--max", type=float, default=30.0)
ap.add_argument("--errors", choices=["python", "lua", "ruby"])
ap.add_argument("--debug-entry")
ap.add_argument("--from-first-line", action="store_true")
argv = sys.argv[1:]
if "--" not in argv:
    ap.error("the program comes after --")
cut = argv.index("--")
a = ap.parse_args(argv[:cut])
program = argv[cut + 1:]

with open(a.transcript) as f:
    expected = f.read()
for old, new in a.replace:
    expected = expected.replace(old, new)
if a.errors:
    # One column of rill_errors.h: "#define RILL_PY_ECLOSED ~, \"RuntimeError\"",
    # its default for a code without an entry.
    prefix = {"python": "PY", "lua": "LUA", "ruby": "RB"}[a.errors]
    table = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings",
                         "common", "rill_errors.h")
    with open(table) as f:
        header = f.read()
    column = dict(re.findall(r'#define RILL_' + prefix + r'_(E[A-Z]+) ~, "([^"]+)"', header))
    default = re.search(r'#define RILL_' + prefix + r'_DEFAULT "([^"]+)"', header)

    def raised(m):
        code = m.group(1)
        if code in column:
            return "-> " + column[code]
        return "-> " + (default.group(1) if default else "RILL_" + code)

    expected = re.sub(r"-> RILL_(E[A-Z]+)", raised, expected)
expected = expected.splitlines()

env = dict(os.environ)
env.pop("RILL_DEBUG", None)
if a.debug_entry:
    env["RILL_DEBUG"] = "1"
env["PYTHONUNBUFFERED"] = "1"


class Result:
    pass


def run(program):
    """Runs program; its output, exit status, and when its first stdout line
    came (None if it printed nothing)."""
    import tempfile
    import threading

    r = Result()
    r.first = None
    with tempfile.TemporaryFile(mode="w+") as err:
        p = subprocess.Popen(program, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        timer = threading.Timer(60, p.kill)
        timer.start()
        out = []
        try:
            for line in p.stdout:
                if r.first is None:
                    r.first = time.monotonic()
                out.append(line)
            r.returncode = p.wait()
        finally:
            timer.cancel()
        err.seek(0)
        r.stderr = err.read()
    r.stdout = "".join(out)
    return r


t0 = time.monotonic()
r = run(program)
dt = time.monotonic() - (r.first if a.from_first_line and r.first is not None else t0)
sys.stdout.write(r.stdout)
sys.stdout.write(r.stderr)
lines = r.stdout.splitlines()
problems = []
if r.returncode != 0:
    problems.append(f"exit status {r.returncode}")

TIMED = re.compile(r"^(.*?) \((.*)\): (\d+\.\d) s$")
if a.timed:
    if len(lines) != len(expected):
        problems.append(f"{len(lines)} lines, expected {len(expected)}")
    for got, want in zip(lines, expected):
        g, w = TIMED.match(got), TIMED.match(want)
        if not g or not w or g.group(1) != w.group(1):
            problems.append(f"line {got!r}, expected one like {want!r}")
        elif abs(float(g.group(3)) - float(w.group(3))) > a.tolerance + 1e-9:
            problems.append(f"{got!r}: not within {a.tolerance} s of {w.group(3)} s")
elif lines != expected:
    problems.append(f"output {lines!r}, expected {expected!r}")

if not a.min <= dt <= a.max:
    problems.append(f"took {dt:.3f} s, expected {a.min}-{a.max} s")

reports = [l for l in r.stderr.splitlines() if "Executing <Task" in l]
if a.debug_entry:
    entry = "" if a.debug_entry == "none" else r" \(entry: (?:" + a.debug_entry + r")\)"
    want = re.compile(r"Executing <Task A" + entry + r"> took \d+\.\d{3} seconds$")
    if len(reports) != 1 or not want.search(reports[0]):
        problems.append(f"debug reports {reports!r}, expected one naming task A and "
                        f"entry {a.debug_entry}")
elif r.stderr.strip():
    problems.append(f"stderr not empty: {r.stderr.strip()!r}")

for p in problems:
    print("FAILED: " + p)
print(f"lesson: {'OK' if not problems else 'FAILED'} ({len(lines)} lines, {dt:.3f} s)")
sys.exit(1 if problems else 0)
