"""ctest seed_python: runs examples/seed.py as a program and checks its
output order and that rill.run took 0.95-1.2 s (the interpreter's start-up
and `import rill` are timed apart, since this machine is shared)."""
import io
import contextlib
import runpy
import sys
import time

seed = sys.argv[1]
t_import = time.perf_counter()
import rill  # noqa: E402  (warm the import so only the run is timed)

t_import = time.perf_counter() - t_import
out = io.StringIO()
t0 = time.perf_counter()
with contextlib.redirect_stdout(out):
    runpy.run_path(seed, run_name="__main__")
wall = time.perf_counter() - t0
lines = out.getvalue().splitlines()
print(out.getvalue(), end="")
print(f"[rill {rill.__version__} at {rill.__file__}; {sys.executable} {sys.version.split()[0]}]")
print(f"seed: run {wall:.3f} s (import rill {t_import * 1000:.1f} ms)")
expected = ["Task A started", "Task B started", "Task A finished", "Task B finished"]
if lines != expected:
    sys.exit(f"seed: FAILED: output {lines!r}, expected {expected!r}")
if not 0.95 <= wall <= 1.2:
    sys.exit(f"seed: FAILED: took {wall:.3f} s, expected 0.95-1.2 s")
print("seed: OK")
