"""Builds the `rill` package with CMake (the repository's own build) for the
interpreter that runs this script, and packs librill.so.1 beside the
extension. Needs cmake, a C compiler, swig, libev-dev and python3-dev.
Run through pip or `python3 -m build`, not directly (see pyproject.toml)."""
import os
import re
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def version():
    with open(os.path.join(ROOT, "core", "include", "rill.h")) as f:
        h = f.read()
    parts = [re.search(r"#define RILL_VERSION_%s (\d+)" % p, h).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        dest = os.path.dirname(os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name))))
        off = ["TESTS", "BENCH", "EXAMPLES", "LUA", "RUBY", "CPP", "INSTALL"]
        subprocess.check_call(
            ["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
             "-DRILL_PYTHON=ON", "-DPython3_EXECUTABLE=" + sys.executable,
             "-DRILL_PYTHON_INSTALL_DIR=" + dest]
            + ["-DRILL_%s=OFF" % o for o in off])
        subprocess.check_call(["cmake", "--build", build, "--target", "rill_python",
                               "-j%d" % (os.cpu_count() or 1)])
        subprocess.check_call(["cmake", "--install", build, "--component", "python"])


setup(
    version=version(),
    packages=["rill"],
    ext_modules=[Extension("rill._rill", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
