#!/bin/sh
# W6 (queue), C / C++ rows: runs each program REPS times (default 5) in a
# rotating order, prints each one's best wall time and the peers' ratios
# against rill's step tasks (peer wall / rill wall; goal: Asio >= 2x).
#   bench/w6/run_w6.sh [BUILD_DIR] [REPS] [items=N] [maxsize=N]
set -eu
build=${1:-build}; reps=${2:-5}; shift 2 2>/dev/null || shift $#
args=${*:-"items=1000000 maxsize=1"}
b=$build/bench
rows="rill-c-step:$b/bench_w6_rill rill-c-coro:$b/bench_w6_rill|impl=coro rill-cpp:$b/bench_w6_rill_cpp asio:$b/bench_w6_asio"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
i=0
while [ $i -lt "$reps" ]; do
  for row in $rows; do
    name=${row%%:*}; cmd=${row#*:}; prog=${cmd%%|*}; extra=
    [ "$prog" != "$cmd" ] && extra=${cmd#*|}
    [ -x "$prog" ] || continue
    # shellcheck disable=SC2086
    wall=$("$prog" W6 $args $extra | sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p')
    echo "$name $wall" >> "$tmp"
  done
  i=$((i + 1))
done
sort -k1,1 -k2,2g "$tmp" | awk '!seen[$1]++ {best[$1]=$2; order[n++]=$1}
  END {
    base = best["rill-c-step"];
    printf "W6 queue (%s), best of runs:\n", "'"$args"'";
    for (i = 0; i < n; i++) {
      k = order[i];
      printf "  %-12s %9.3f s  %7.1f ns/item", k, best[k], best[k] * 1e9 / '"$(echo "$args" | sed -n 's/.*items=\([0-9]*\).*/\1/p')"';
      if (base > 0 && k != "rill-c-step") printf "  peer/rill-c-step = %.2fx", best[k] / base;
      printf "\n";
    }
  }'
