#!/bin/sh
# run.sh SOURCE BUILD WORK - rill installed and used as a user would, outside
# the source tree. Each step fails the test with a message:
#  1. `cmake --install BUILD --prefix WORK/prefix` installs librill.so.1 (+ the
#     .so link), rill.h, rill.hpp, rill.pc and the CMake package;
#  2. a C program built with `pkg-config --cflags --libs rill` runs the seed;
#  3. a C++20 program built with find_package(rill) + rill::cpp runs the seed;
#  4. a project that pulls rill in with add_subdirectory builds the library
#     and nothing else (no tests, bench, examples or bindings);
#  5. the build tree's binding modules and examples carry no absolute RUNPATH
#     into the build tree, so the tree can be moved.
set -eu
src=$1 build=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
fail() { echo "install test FAILED: $*"; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || fail "cmake --install"
for f in include/rill.h include/rill.hpp; do [ -f "$prefix/$f" ] || fail "$f not installed"; done
lib=$(find "$prefix" -name 'librill.so.1' | head -n1)
[ -n "$lib" ] || fail "librill.so.1 not installed"
libdir=$(dirname "$lib")
[ -L "$libdir/librill.so" ] || fail "the librill.so development link is missing"
[ -f "$libdir/pkgconfig/rill.pc" ] || fail "rill.pc not installed"
[ -f "$libdir/cmake/rill/rillConfig.cmake" ] || fail "rillConfig.cmake not installed"

# 2. C with pkg-config
cp "$src/examples/seed.c" "$work/seed.c"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cflags=$(pkg-config --cflags rill) || fail "pkg-config --cflags rill"
libs=$(pkg-config --libs rill) || fail "pkg-config --libs rill"
cc $cflags "$work/seed.c" -o "$work/seed_c" $libs -Wl,-rpath,"$libdir" || fail "C seed build"
out=$("$work/seed_c") || fail "C seed run"
echo "$out" | tail -n1 | grep -q "Task B finished" || fail "C seed output: $out"
echo "pkg-config: $(pkg-config --modversion rill), C seed ran from the installed copy"

# 3. C++ with find_package
mkdir -p "$work/cxx"
cp "$src/examples/seed.cpp" "$work/cxx/seed.cpp"
cat >"$work/cxx/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(rill_consumer CXX)
find_package(rill 1.0 REQUIRED)
add_executable(seed_cpp seed.cpp)
target_link_libraries(seed_cpp PRIVATE rill::cpp)
CM
cmake -S "$work/cxx" -B "$work/cxx/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_RPATH="$libdir" >"$work/cxx.log" 2>&1 || { cat "$work/cxx.log"; fail "find_package(rill)"; }
cmake --build "$work/cxx/build" >>"$work/cxx.log" 2>&1 || { cat "$work/cxx.log"; fail "C++ seed build"; }
out=$("$work/cxx/build/seed_cpp") || fail "C++ seed run"
echo "$out" | tail -n1 | grep -q "Task B finished" || fail "C++ seed output: $out"
echo "find_package(rill) + rill::cpp: C++ seed ran from the installed copy"

# 4. add_subdirectory builds the library alone
mkdir -p "$work/sub"
cat >"$work/sub/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(rill_sub C CXX)
add_subdirectory("$src" rill)
add_executable(seed_c "$src/examples/seed.c")
target_link_libraries(seed_c PRIVATE rill::rill)
CM
cmake -S "$work/sub" -B "$work/sub/build" >"$work/sub.log" 2>&1 || { cat "$work/sub.log"; fail "add_subdirectory configure"; }
targets=$(cmake --build "$work/sub/build" --target help | grep -E '^\.\.\. [A-Za-z0-9_]+( |$)' | cut -d' ' -f2 | sort)
for t in $targets; do
  case $t in
    all|clean|depend|edit_cache|rebuild_cache|install|install/local|install/strip|list_install_components|rill|seed_c) ;;
    *) fail "add_subdirectory builds an extra target: $t" ;;
  esac
done
cmake --build "$work/sub/build" >>"$work/sub.log" 2>&1 || { cat "$work/sub.log"; fail "add_subdirectory build"; }
"$work/sub/build/seed_c" >/dev/null || fail "add_subdirectory seed run"
echo "add_subdirectory: targets $(echo $targets | tr '\n' ' ')"

# 5. relocatable build tree: no RUNPATH entry names the build directory
bad=0
for f in $(find "$build/bindings" "$build/examples" -name '*.so' -o -type f -perm -u+x -name 'seed_c' 2>/dev/null); do
  rp=$(readelf -d "$f" 2>/dev/null | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p')
  case "$rp" in
    *"$build"*) echo "  $f: RUNPATH $rp names the build tree"; bad=1 ;;
  esac
done
[ $bad -eq 0 ] || fail "absolute RUNPATHs into the build tree"

# 6. Debian packages (CPack): librill1 + librill-dev, unpacked into a root of
#    their own (not installed system-wide), and the seed built against them.
if command -v cpack >/dev/null && command -v dpkg-deb >/dev/null; then
  (cd "$build" && cpack -G DEB -B "$work/deb" >"$work/deb.log" 2>&1) || { cat "$work/deb.log"; fail "cpack -G DEB"; }
  for p in librill1 librill-dev; do
    deb=$(ls "$work/deb/${p}_"*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || fail "no $p package"
    dpkg-deb -x "$deb" "$work/debroot" || fail "dpkg-deb -x $deb"
    echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
  done
  droot=$work/debroot/usr
  cc -I"$droot/include" "$work/seed.c" -o "$work/seed_deb" -L"$droot/lib" -lrill \
    -Wl,-rpath,"$droot/lib" || fail "seed against the .deb contents"
  "$work/seed_deb" >/dev/null || fail "seed run against the .deb contents"
fi

# 7-9. Each language's own installer, offline, into a directory of its own;
#      the seed then runs from the installed copy, outside the source tree.
seed_ok() { tail -n1 | grep -q "Task B finished"; }
if /usr/bin/python3 -c "import setuptools, wheel" 2>/dev/null; then
  /usr/bin/python3 -m pip install --no-build-isolation --no-deps --target "$work/py" \
    "$src/bindings/python" >"$work/pip.log" 2>&1 || { tail -n 30 "$work/pip.log"; fail "pip install"; }
  (cd "$work" && PYTHONPATH="$work/py" /usr/bin/python3 "$src/examples/seed.py") | seed_ok \
    || fail "seed.py from the pip-installed package"
  echo "pip install --no-build-isolation --target: seed.py ran from the installed package"
fi
if command -v luarocks >/dev/null && command -v lua5.4 >/dev/null; then
  (cd "$src" && luarocks --lua-version 5.4 make --tree "$work/rocks" rill-*.rockspec) \
    >"$work/luarocks.log" 2>&1 || { tail -n 30 "$work/luarocks.log"; fail "luarocks make"; }
  (cd "$work" && eval "$(luarocks --lua-version 5.4 --tree "$work/rocks" path)" &&
    lua5.4 "$src/examples/seed.lua") | seed_ok || fail "seed.lua from the luarocks tree"
  echo "luarocks make --tree: seed.lua ran from the rock"
fi
if command -v gem >/dev/null; then
  (mkdir -p "$work/gem" && cd "$src" && gem build rill.gemspec -o "$work/gem/rill.gem" && cd "$work/gem" &&
    gem install --local --no-document --install-dir "$work/gems" ./rill.gem) \
    >"$work/gem.log" 2>&1 || { tail -n 30 "$work/gem.log"; fail "gem build/install"; }
  (cd "$work" && GEM_PATH="$work/gems" ruby "$src/examples/seed.rb") | seed_ok \
    || fail "seed.rb from the installed gem"
  echo "gem build + gem install --install-dir: seed.rb ran from the gem"
fi
echo "install test passed"
