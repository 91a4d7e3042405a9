#!/bin/sh
# run.sh - builds the random-operation fuzzer (fuzz_ops.c) in a clang
# ASan+UBSan build tree of its own and runs it.
#
#   run.sh asan BUILD_DIR [--seed S] [--programs P] [--ops N] [--only K]
#       the seeded driver: P programs of about N operations each
#   run.sh libfuzzer BUILD_DIR SECONDS
#       coverage-guided libFuzzer for SECONDS, corpus in BUILD_DIR/corpus
#
# The full run (10 million operations, issue 17):
#   tests/fuzz/run.sh asan build/fuzz-asan --seed 7 --programs 4500 --ops 3000
# (ctest fuzz_ops_asan runs the first 1,200 of those programs)
# Exit 77 (skipped) when clang is missing.
set -eu
mode=$1 out=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang >/dev/null 2>&1 || { echo "clang not found: skipped"; exit 77; }
command -v clang++ >/dev/null 2>&1 || { echo "clang++ not found: skipped"; exit 77; }
extra=""
target=rill_fuzz_ops
if [ "$mode" = libfuzzer ]; then
  extra="-DRILL_LIBFUZZER=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link"
  target=rill_fuzz_libfuzzer
fi
cmake -S "$src" -B "$out" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRILL_SANITIZE=address,undefined $extra \
  -DRILL_TESTS=ON -DRILL_BENCH=OFF -DRILL_EXAMPLES=OFF -DRILL_PYTHON=OFF -DRILL_LUA=OFF \
  -DRILL_RUBY=OFF -DRILL_CPP=OFF -DRILL_VALGRIND_TESTS=OFF -DRILL_SANITIZER_TESTS=OFF \
  >"$out.configure.log" 2>&1 || { cat "$out.configure.log"; exit 1; }
cmake --build "$out" -j2 --target $target >"$out.build.log" 2>&1 || { tail -n 40 "$out.build.log"; exit 1; }
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
case "$mode" in
  asan) exec "$out/tests/fuzz/rill_fuzz_ops" "$@" ;;
  libfuzzer)
    mkdir -p "$out/corpus"
    cd "$out"
    exec ./tests/fuzz/rill_fuzz_libfuzzer -max_total_time="${1:-60}" -max_len=4096 \
      -rss_limit_mb=2048 -print_final_stats=1 corpus
    ;;
  *) echo "usage: $0 asan|libfuzzer BUILD_DIR ..." >&2; exit 2 ;;
esac
