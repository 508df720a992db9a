#!/usr/bin/env bash
# Runs every benchmark program of a build directory. Each prints its figures next
# to the limit it is compared with, measured in the same run.
set -euo pipefail
dir=${1:-build}
found=0
for b in $(find "$dir" -maxdepth 1 -type f -name 'bench_*' -perm -u+x | sort); do
  [ "$(basename "$b")" = bench_platform ] && continue # needs a platform: bench-e2e.sh below
  found=1
  echo "== $(basename "$b")"
  COFFER_TESTDATA=${COFFER_TESTDATA:-$(cd "$(dirname "$0")/.." && pwd)/../shared/testdata} "$b"
  echo
done
[ $found -eq 1 ] || { echo "no benchmarks built in $dir" >&2; exit 1; }
# End to end (issue 7): starts `coffer up`, runs bench_platform against it, stops it.
if [ -x "$dir/coffer" ] && [ -x "$dir/bench_platform" ]; then
  echo "== bench_platform (scripts/bench-e2e.sh)"
  "$(dirname "$0")/bench-e2e.sh" "$dir"
fi
