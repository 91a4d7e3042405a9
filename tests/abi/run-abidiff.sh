#!/usr/bin/env bash
# abi_abidiff: compares the built librill.so.1 with the stored baseline.
#   run-abidiff.sh LIBRARY BASELINE HEADERS_DIR SUPPRESSIONS
# abidiff's exit code is a bit set: 1 error, 2 usage error, 4 ABI change,
# 8 incompatible ABI change. Additions are suppressed (SUPPRESSIONS), so any
# bit left set is a failure: 8 is a removed symbol or the like, and 4 is
# what a changed parameter or return type is reported as (abidiff leaves
# those to the reader; for rill they break old clients, so they fail too).
# Exit 77 (ctest: skipped) when abidiff is missing or the library has no
# debug info to compare.
set -uo pipefail
lib=$1 baseline=$2 headers=$3 suppr=$4
if ! command -v abidiff >/dev/null; then
  echo "abi_abidiff: abidiff not installed (Debian: abigail-tools); skipped"
  exit 77
fi
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
  echo "abi_abidiff: $lib has no debug info (build type without -g); skipped"
  exit 77
fi
abidiff --headers-dir2 "$headers" --drop-private-types --suppressions "$suppr" \
        --no-unreferenced-symbols "$baseline" "$lib"
rc=$?
if [ $rc -eq 0 ]; then
  echo "abi_abidiff: OK, $lib is ABI-compatible with $(basename "$baseline") (additions allowed)"
  exit 0
fi
(( rc & 1 )) && echo "abi_abidiff: abidiff failed (error)"
(( rc & 2 )) && echo "abi_abidiff: abidiff usage error"
(( rc & 8 )) && echo "abi_abidiff: INCOMPATIBLE ABI change against the 1.0 baseline (see above)"
(( rc & 4 && !(rc & 8) )) && echo "abi_abidiff: ABI change other than an addition against the baseline (see above)"
echo "abi_abidiff: evolve by adding functions (_v2), never by changing one; refresh the"
echo "baseline (tests/abi/refresh-baseline) only when a release adds functions."
exit 1
