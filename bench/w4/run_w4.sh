#!/bin/sh
# W4 echo (BENCHMARKS.md): every server pinned to CPU 1, the project's load
# generator to CPU 0, one warm-up connection (inside echo_client), 5 s per
# cell, servers alternated within the run. Prints a Markdown table.
#   bench/w4/run_w4.sh [BUILD_DIR] [SECONDS]
#   W4_SERVERS="rill-lua luv-lua" bench/w4/run_w4.sh ...   # only these rows
# Lua rows (*.lua: run by lua5.4 with the build's rill module): rill's
# examples/echo_server.lua against luv's and cqueues' echo (bench/lua/).
set -eu
B=${1:-build}
SECS=${2:-5}
PORT=${W4_PORT:-17400}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLIENT="$B/bench/bench_echo_client"
servers="libev:$B/bench/bench_echo_libev
libuv:$B/bench/bench_echo_uv
asio:$B/bench/bench_echo_asio
rill-c-callbacks:$B/examples/echo_server
rill-c-tasks:$B/bench/bench_echo_rill_task
rill-cpp-tasks:$B/examples/echo_server_cpp
rill-lua:$ROOT/examples/echo_server.lua
luv-lua:$ROOT/bench/lua/echo_luv.lua
cqueues-lua:$ROOT/bench/lua/echo_cqueues.lua"
# Ruby rows: examples/echo_server.rb (TCPServer/TCPSocket inside Rill.run, the
# binding from the build tree) against the async gem's own server
# (echo_async.rb, async-io's Async::IO::Endpoint), when ruby and async-io are there.
export RUBYLIB="${RILL_BENCH_RUBYLIB:-$B/bindings/ruby/lib}"
if command -v ruby > /dev/null && [ -f "$RUBYLIB/rill/ext.so" ]; then
  servers="$servers
rill-ruby:$ROOT/examples/echo_server.rb"
  if ruby -e 'require "async/io"' 2> /dev/null; then
    servers="$servers
async-ruby:$ROOT/bench/w4/echo_async.rb"
  fi
fi
if [ -n "${W4_SERVERS:-}" ]; then
  keep=
  for s in $servers; do
    case " $W4_SERVERS " in *" ${s%%:*} "*) keep="$keep $s" ;; esac
  done
  servers=$keep
fi
export LUA_PATH="$B/bindings/lua/?.lua;;" LUA_CPATH="$B/bindings/lua/?.so;;"
configs="10:1024 100:1024 10:65536"
tmp=$(mktemp -d)
for cfg in $configs; do
  for s in $servers; do
    name=${s%%:*}
    bin=${s#*:}
    [ -x "$bin" ] || continue
    case $bin in # a Lua row needs the build's rill module and its peer
      */echo_server.lua) [ -f "$B/bindings/lua/rill_core.so" ] || continue ;;
      *echo_luv.lua) lua5.4 -e 'require "luv"' 2>/dev/null || continue ;;
      *echo_cqueues.lua) lua5.4 -e 'require "cqueues"' 2>/dev/null || continue ;;
    esac
    PORT=$((PORT + 1))
    # (sh execs the server, so $pid is the server itself)
    taskset -c 1 sh -c 'case $0 in *.lua) exec lua5.4 "$0" "$1" ;; *) exec "$0" "$1" ;; esac' "$bin" "$PORT" > "$tmp/out" 2>&1 &
    pid=$!
    i=0
    until grep -q "listening on" "$tmp/out" 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
    r=$(taskset -c 0 "$CLIENT" "$PORT" "${cfg%%:*}" "${cfg#*:}" "$SECS" | awk '/req\/s/ {print $2}')
    kill -INT $pid 2>/dev/null || true
    sleep 0.2
    kill -KILL $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    echo "$cfg $name ${r:-fail}" >> "$tmp/results"
  done
done
echo "| server | 10 x 1 KiB | 100 x 1 KiB | 10 x 64 KiB |"
echo "|---|---:|---:|---:|"
for s in $servers; do
  name=${s%%:*}
  row="| $name"
  for cfg in $configs; do
    v=$(awk -v c="$cfg" -v n="$name" '$1 == c && $2 == n {print $3}' "$tmp/results")
    row="$row | ${v:--}"
  done
  echo "$row |"
done

# (a W4_SERVERS selection runs the table above only)
if [ -n "${W4_SERVERS:-}" ]; then
  rm -rf "$tmp"
  exit 0
fi

# Scaling: rill's echo_server with 1 loop, then 2 loops on one SO_REUSEPORT
# port, nothing pinned (2 cores shared with the client), 100 x 1 KiB; the
# client's share of the CPU says how much was left for the server.
start_server() { # PORT ARGS... ; waits for its "listening on" line
  port=$1
  shift
  "$@" > "$tmp/out" 2>&1 &
  pid=$!
  i=0
  until grep -q "listening on" "$tmp/out" 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
}
stop_server() {
  kill -INT $pid 2>/dev/null || true
  sleep 0.2
  kill -KILL $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
}
echo
echo "| rill echo_server, 100 x 1 KiB, unpinned | req/s | client CPU % |"
echo "|---|---:|---:|"
for loops in 1 2; do
  [ -x "$B/examples/echo_server" ] || break
  PORT=$((PORT + 1))
  start_server $PORT "$B/examples/echo_server" $PORT $loops
  "$CLIENT" $PORT 100 1024 "$SECS" > "$tmp/client"
  stop_server
  echo "| $loops loop(s) | $(awk '/req\/s/ {print $2}' "$tmp/client") | $(awk '/^cpu/ {print $2}' "$tmp/client") |"
done

# http_hello under wrk (keep-alive GET /, 13-byte body), server on CPU 1.
if command -v wrk > /dev/null && [ -x "$B/examples/http_hello" ]; then
  PORT=$((PORT + 1))
  start_server $PORT taskset -c 1 "$B/examples/http_hello" $PORT
  r=$(taskset -c 0 wrk -t1 -c50 -d"${SECS}s" "http://127.0.0.1:$PORT/" 2>/dev/null | awk '/Requests\/sec/ {print $2}')
  stop_server
  echo
  echo "| http_hello, wrk -t1 -c50 -d${SECS}s | req/s |"
  echo "|---|---:|"
  echo "| rill C callbacks (1 loop) | ${r:--} |"
fi
rm -rf "$tmp"
