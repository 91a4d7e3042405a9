#!/bin/sh
# run.sh - builds and runs the random-operation fuzzer (fuzz_ops.c) with
# clang's ASan+UBSan, the core compiled into the binary.
#
#   run.sh asan BUILD_DIR [--seed S] [--programs P] [--ops N]
#       the seeded driver: P programs of about N operations each
#   run.sh libfuzzer BUILD_DIR SECONDS
#       coverage-guided libFuzzer for SECONDS, corpus in BUILD_DIR/corpus
#
# The full run (10 million operations, issue 17):
#   tests/fuzz/run.sh asan build/fuzz --programs 4500 --ops 3000
# Exit 77 (skipped) when clang or libev's header is missing.
set -eu
mode=$1 out=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang >/dev/null 2>&1 || { echo "clang not found: skipped"; exit 77; }
mkdir -p "$out"
case "$(uname -m)" in
  x86_64) ctx=$src/core/src/ctx/x86_64.S ;;
  aarch64) ctx=$src/core/src/ctx/aarch64.S ;;
  *) ctx= ;;
esac
flags="-O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all -DRILL_BUILDING=1 -D_GNU_SOURCE
  -I$src/core/include -I$src/core/src"
[ -n "$ctx" ] || flags="$flags -DRILL_CTX_UCONTEXT=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
case "$mode" in
  asan)
    clang $flags -fsanitize=address,undefined "$src"/core/src/*.c $ctx \
      "$src/tests/fuzz/fuzz_ops.c" -o "$out/fuzz_ops_asan" -lev -lm -lpthread
    exec "$out/fuzz_ops_asan" "$@"
    ;;
  libfuzzer)
    secs=${1:-60}
    clang $flags -DRILL_LIBFUZZER -fsanitize=fuzzer,address,undefined "$src"/core/src/*.c $ctx \
      "$src/tests/fuzz/fuzz_ops.c" -o "$out/fuzz_ops_libfuzzer" -lev -lm -lpthread
    mkdir -p "$out/corpus"
    cd "$out"
    exec ./fuzz_ops_libfuzzer -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
      -print_final_stats=1 corpus
    ;;
  *) echo "usage: $0 asan|libfuzzer BUILD_DIR ..." >&2; exit 2 ;;
esac
