"""What the Python bench drivers share: the environment that imports the
rill binding of a build tree with Debian's /usr/bin/python3 (uvloop's
interpreter), and whether modules import there."""
import os
import subprocess
from pathlib import Path

PYTHON = "/usr/bin/python3"
DEFAULT_BUILD = str(Path(__file__).resolve().parents[2] / "build")


def rill_env(build_dir):
    """os.environ with PYTHONPATH at the build's binding for Debian's
    interpreter (RILL_PYTHON_DEBIAN's bindings/python/debian) first, then the
    tree's own (bench/run's build-bench is built for /usr/bin/python3)."""
    env = dict(os.environ)
    paths = [str(Path(build_dir) / "bindings" / "python" / "debian"),
             str(Path(build_dir) / "bindings" / "python")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths + [env.get("PYTHONPATH", "")] if p)
    return env


def importable(modules, env):
    """True if PYTHON imports every module of the comma-separated list."""
    return subprocess.run([PYTHON, "-c", f"import {modules}"], env=env,
                          capture_output=True).returncode == 0
