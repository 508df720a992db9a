#!/usr/bin/env bash
# Runs each libFuzzer target for a while, growing its corpus in fuzz/corpus/<name>/.
set -euo pipefail
dir=${1:-build-fuzz}
secs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
for f in $(find "$dir" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort); do
  name=$(basename "$f")
  mkdir -p "$root/fuzz/corpus/$name"
  echo "== $name (${secs}s)"
  "$f" -max_total_time="$secs" -max_len=65536 "$root/fuzz/corpus/$name"
done
