# Sourced by run-examples and run-tests: installs what is missing (Debian 12),
# then configures and builds rill in $RILL_BUILD (default ./build).
set -euo pipefail
RILL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RILL_BUILD=${RILL_BUILD:-$RILL_ROOT/build}

RILL_PACKAGES=(build-essential cmake pkg-config bc libev-dev swig
  python3 python3-dev liblua5.4-dev lua5.4 liblua5.3-dev lua5.3 luajit libluajit-5.1-dev
  ruby ruby-dev ruby-minitest ruby-webrick
  libgtest-dev libgmock-dev valgrind abigail-tools clang
  qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  python3-setuptools python3-wheel python3-pip python3-build luarocks
  lua-socket lua-sec) # tests/lua/test_io.lua: LuaSocket and lua-sec (TLS) objects through rill.poll / rill.wrap
RILL_PACKAGES+=(libuv1-dev libasio-dev wrk) # bench peers: W4 echo, W5 threads, W7 http
# CPython's asyncio tests for Debian's /usr/bin/python3 and the loop rill is
# compared with there (tests/python/cpython, ctest cpython.full.debian; the
# binding for that interpreter is built with python3-dev's headers).
RILL_PACKAGES+=(libpython3.11-testsuite python3-uvloop)
# Real asyncio libraries run on rill's loop by /usr/bin/python3
# (tests/python/test_real_libraries.py, ctest python-debian.*).
RILL_PACKAGES+=(python3-aiohttp python3-httpx python3-websockets python3-anyio python3-pytest-asyncio)
RILL_PACKAGES+=(openssl) # test_transports.py makes its TLS certificate with openssl req

rill_install_missing() {
  local missing=()
  for p in "${RILL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "rill: installing missing packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

rill_build() {
  local werror=OFF
  [ "${CI:-}" = "true" ] && werror=ON
  cmake -S "$RILL_ROOT" -B "$RILL_BUILD" -DRILL_WERROR=$werror -DRILL_PYTHON_DEBIAN=ON ${RILL_CMAKE_ARGS:-}
  cmake --build "$RILL_BUILD" -j"$(nproc)"
}

rill_install_missing
rill_build
