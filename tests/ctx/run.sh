#!/bin/sh
# run.sh - builds tests/ctx/ctx_test.c with core/src/ctx.c, stack.c and the
# matching ctx/<arch>.S using the system compilers (no CMake), once per
# backend / sanitizer / architecture, and runs each build.
#
#   tests/ctx/run.sh [variant...]     default: every variant
#
# Variants: gcc clang ucontext asan asan-clang asan-ucontext valgrind
#   valgrind-ucontext tsan cet symbols aarch64 aarch64-ucontext aarch64-bti
#
# Exit: 0 every variant that could run passed (missing tools are SKIPs),
#       1 a variant failed, 77 every selected variant was skipped,
#       2 an unknown variant was named.
# RILL_CTX_TEST_DIR keeps the build products there instead of a temp dir.
# Each variant takes 5-40 s (tsan and asan are the slow ones) and up to
# ~1 GB of RSS: 100,000 stacks each commit their canary page.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src=$root/core/src
test_c=$here/ctx_test.c

out=${RILL_CTX_TEST_DIR:-}
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/rill-ctx.XXXXXX")
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

all="gcc clang ucontext asan asan-clang asan-ucontext valgrind valgrind-ucontext tsan cet symbols aarch64 aarch64-ucontext aarch64-bti"
variants=${*:-$all}

host_arch=$(uname -m)
case $host_arch in
  x86_64 | amd64) host_asm=$src/ctx/x86_64.S ;;
  aarch64 | arm64) host_asm=$src/ctx/aarch64.S ;;
  *) host_asm= ;;
esac

# The library's own flags (core/CMakeLists.txt), warnings as errors.
lib_flags="-std=c11 -D_GNU_SOURCE -DRILL_BUILDING=1 -fvisibility=hidden -fPIC -Wall -Wextra -Wpedantic -Werror -I$src"
test_flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -I$src"

passed=0
failed=0
skipped=0
summary=

note() { summary="$summary$(printf '  %-18s %s' "$1" "$2")
"; }
pass() { passed=$((passed + 1)); note "$1" "PASS${2:+ ($2)}"; echo "== $1: PASS"; }
skip() { skipped=$((skipped + 1)); note "$1" "SKIP ($2)"; echo "== $1: SKIP ($2)"; }
fail() {
  failed=$((failed + 1))
  note "$1" "FAIL ($2)"
  echo "== $1: FAIL ($2)"
  [ -f "$out/$1.log" ] && tail -n 40 "$out/$1.log" | sed 's/^/   | /'
}
have() { command -v "$1" >/dev/null 2>&1; }

# Sets asm to the host's .S file unless the flags ask for ucontext. On a
# host without one, ctx.c falls back to ucontext by itself.
pick_asm() {
  asm=$host_asm
  for f in "$@"; do
    case $f in *RILL_CTX_UCONTEXT*) asm= ;; esac
  done
}

# build NAME CC ASM_FILE_OR_EMPTY EXTRA_FLAGS...
# Compiles the library files and the test separately (so the library gets
# its own flags) and links them into $out/NAME.
build() {
  name=$1 cc=$2 asm=$3
  shift 3
  dir=$out/$name.obj
  mkdir -p "$dir"
  objs=
  log=$out/$name.log
  : >"$log"
  for f in "$src/ctx.c" "$src/stack.c" $asm; do
    o=$dir/$(basename "$f").o
    # shellcheck disable=SC2086
    if ! $cc $lib_flags "$@" -c "$f" -o "$o" >>"$log" 2>&1; then
      return 1
    fi
    objs="$objs $o"
  done
  # shellcheck disable=SC2086
  $cc $test_flags "$@" -c "$test_c" -o "$dir/ctx_test.o" >>"$log" 2>&1 &&
    $cc "$@" $objs "$dir/ctx_test.o" -lm -o "$out/$name" >>"$log" 2>&1
}

# run_test NAME [launcher...]: runs the build, appending to its log.
run_test() {
  name=$1
  shift
  "$@" "$out/$name" >>"$out/$name.log" 2>&1
}

summary_of() { grep -E '^  |^ctx_test' "$out/$1.log" | sed 's/^/   /'; }

plain() { # name cc extra-flags...
  name=$1 cc=$2
  shift 2
  have "$cc" || { skip "$name" "no $cc"; return; }
  pick_asm "$@"
  build "$name" "$cc" "$asm" "$@" || { fail "$name" "build"; return; }
  if run_test "$name"; then
    summary_of "$name"
    pass "$name"
  else
    fail "$name" "exit $?"
  fi
}

sanitized() { # name cc extra-flags...
  name=$1 cc=$2
  shift 2
  have "$cc" || { skip "$name" "no $cc"; return; }
  pick_asm "$@"
  build "$name" "$cc" "$asm" -O1 -g -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=all "$@" || { fail "$name" "build"; return; }
  ASAN_OPTIONS=detect_stack_use_after_return=1:detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1 run_test "$name"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name" "exit $rc"
    return
  fi
  summary_of "$name"
  # The hooks must leave ASan able to see a real overflow on a coroutine
  # stack and to place it in the right frame, both with fake stacks (use
  # after return detection) and on the coroutine stack itself.
  for uar in 1 0; do
    bug=$out/$name.bug$uar.log
    if ASAN_OPTIONS=detect_stack_use_after_return=$uar "$out/$name" --asan-bug >"$bug" 2>&1; then
      cat "$bug" >>"$out/$name.log"
      fail "$name" "--asan-bug not reported (use-after-return $uar)"
      return
    fi
    if ! grep -q 'ERROR: AddressSanitizer: stack-buffer-overflow' "$bug" ||
      ! grep -q "overflows this variable" "$bug" || ! grep -q 'in buggy_body' "$bug"; then
      cat "$bug" >>"$out/$name.log"
      fail "$name" "--asan-bug reported wrongly (use-after-return $uar)"
      return
    fi
  done
  pass "$name" "and a planted overflow is reported in its frame"
}

grind() { # name extra-flags...
  name=$1
  shift
  have valgrind || { skip "$name" "no valgrind"; return; }
  pick_asm "$@"
  build "$name" gcc "$asm" -O1 -g "$@" || { fail "$name" "build"; return; }
  run_test "$name" valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name" "exit $rc"
  elif grep -q 'switching stacks' "$out/$name.log"; then
    fail "$name" "valgrind saw an unregistered stack switch"
  else
    summary_of "$name"
    pass "$name"
  fi
}

tsan() {
  name=tsan
  have gcc || { skip "$name" "no gcc"; return; }
  # Same choice as core/CMakeLists.txt: TSan builds use ucontext.
  build "$name" gcc "" -O1 -g -fsanitize=thread -DRILL_CTX_UCONTEXT=1 || { fail "$name" "build"; return; }
  printf 'int main(void){return 0;}\n' >"$out/tsan_probe.c"
  if ! gcc -fsanitize=thread "$out/tsan_probe.c" -o "$out/tsan_probe" >/dev/null 2>&1 ||
    ! "$out/tsan_probe" >/dev/null 2>&1; then
    skip "$name" "the TSan runtime does not start here"
    return
  fi
  TSAN_OPTIONS=halt_on_error=1 RILL_CTX_TEST_STACKS=20000 run_test "$name"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name" "exit $rc"
  elif grep -q 'ThreadSanitizer' "$out/$name.log"; then
    fail "$name" "TSan report"
  else
    summary_of "$name"
    pass "$name"
  fi
}

cet() {
  name=cet
  if ! have gcc || [ "$host_arch" != x86_64 ]; then
    skip "$name" "x86-64 gcc only"
    return
  fi
  build "$name" gcc "$host_asm" -O2 -fcf-protection=full || { fail "$name" "build"; return; }
  run_test "$name"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name" "exit $rc"
    return
  fi
  # IBT claimed by the switch, SHSTK never.
  if ! readelf -n "$out/$name.obj/x86_64.S.o" 2>/dev/null | grep -q 'IBT' ||
    readelf -n "$out/$name.obj/x86_64.S.o" 2>/dev/null | grep -q 'SHSTK'; then
    readelf -n "$out/$name.obj/x86_64.S.o" >>"$out/$name.log" 2>&1
    fail "$name" "property note"
    return
  fi
  pass "$name" "-fcf-protection=full; note says IBT, not SHSTK"
}

symbols() {
  name=symbols
  if ! have gcc || [ -z "$host_asm" ]; then
    skip "$name" "no gcc or no asm backend"
    return
  fi
  log=$out/$name.log
  # shellcheck disable=SC2086
  if ! gcc $lib_flags -O2 -shared "$src/ctx.c" "$src/stack.c" "$host_asm" \
    -o "$out/libctx.so" >"$log" 2>&1; then
    fail "$name" "build"
    return
  fi
  exported=$(nm -D --defined-only "$out/libctx.so" | grep ' rill' || true)
  if [ -n "$exported" ]; then
    echo "$exported" >>"$log"
    fail "$name" "internal symbols exported"
  elif ! readelf -lW "$out/libctx.so" | grep GNU_STACK | grep -q 'RW '; then
    readelf -lW "$out/libctx.so" >>"$log"
    fail "$name" "executable stack"
  else
    pass "$name" "nothing exported, stack not executable"
  fi
}

cross() { # name extra-flags...
  name=$1
  shift
  cc=aarch64-linux-gnu-gcc
  have $cc || { skip "$name" "no $cc"; return; }
  have qemu-aarch64 || { skip "$name" "no qemu-aarch64"; return; }
  asm=$src/ctx/aarch64.S
  cpu=
  for f in "$@"; do
    case $f in
      *RILL_CTX_UCONTEXT*) asm= ;;
      *branch-protection*) cpu="-cpu max" ;;
    esac
  done
  build "$name" $cc "$asm" -O2 "$@" || { fail "$name" "build"; return; }
  # shellcheck disable=SC2086
  run_test "$name" qemu-aarch64 $cpu -L /usr/aarch64-linux-gnu
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name" "exit $rc"
    return
  fi
  summary_of "$name"
  if [ -z "$cpu" ]; then
    pass "$name" "under qemu-aarch64"
  elif readelf -n "$out/$name.obj/aarch64.S.o" 2>/dev/null | grep -q 'feature: BTI'; then
    # -cpu max signs and checks return addresses (pac-ret). BTI is marked
    # but not enforced: Debian 12's crt files carry no BTI note, so no
    # executable here can be BTI-guarded.
    pass "$name" "pac-ret enforced under qemu -cpu max; BTI note present"
  else
    readelf -n "$out/$name.obj/aarch64.S.o" >>"$out/$name.log" 2>&1
    fail "$name" "no BTI property note"
  fi
}

for v in $variants; do
  case $v in
    gcc) plain gcc gcc -O2 ;;
    clang) plain clang clang -O2 ;;
    ucontext) plain ucontext gcc -O2 -DRILL_CTX_UCONTEXT=1 ;;
    asan) sanitized asan gcc ;;
    asan-clang) sanitized asan-clang clang ;;
    asan-ucontext) sanitized asan-ucontext gcc -DRILL_CTX_UCONTEXT=1 ;;
    valgrind) grind valgrind ;;
    valgrind-ucontext) grind valgrind-ucontext -DRILL_CTX_UCONTEXT=1 ;;
    tsan) tsan ;;
    cet) cet ;;
    symbols) symbols ;;
    aarch64) cross aarch64 ;;
    aarch64-ucontext) cross aarch64-ucontext -DRILL_CTX_UCONTEXT=1 ;;
    aarch64-bti) cross aarch64-bti -mbranch-protection=standard ;;
    *) echo "run.sh: unknown variant '$v' (known: $all)" >&2; exit 2 ;;
  esac
done

echo
echo "ctx tests: $passed passed, $failed failed, $skipped skipped"
printf '%s' "$summary"
if [ "$failed" -gt 0 ]; then exit 1; fi
if [ "$passed" -eq 0 ]; then exit 77; fi
exit 0
