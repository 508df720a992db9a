#!/usr/bin/env bash
# Runs every benchmark program of a build directory. Each prints its figures next
# to the limit it is compared with, measured in the same run.
set -euo pipefail
dir=${1:-build}
found=0
for b in $(find "$dir" -maxdepth 1 -type f -name 'bench_*' -perm -u+x | sort); do
  found=1
  echo "== $(basename "$b")"
  COFFER_TESTDATA=${COFFER_TESTDATA:-$(cd "$(dirname "$0")/.." && pwd)/../shared/testdata} "$b"
  echo
done
[ $found -eq 1 ] || { echo "no benchmarks built in $dir" >&2; exit 1; }
