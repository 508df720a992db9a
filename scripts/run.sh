#!/usr/bin/env bash
# `make run`: starts the whole platform on this machine (coffer up) once the CLI
# exists; until then it says what has been built and what is not there yet.
set -euo pipefail
dir=${1:-build}
if [ -x "$dir/coffer" ] && "$dir/coffer" up --help >/dev/null 2>&1; then
  exec "$dir/coffer" up --state "${COFFER_STATE:-var}"
fi
echo "Coffer is built in $dir/, but the platform launcher (coffer up) is not there yet."
echo "Built so far:"
find "$dir" -maxdepth 1 -type f -perm -u+x \( -name 'coffer*' -o -name 'cofferd' \) -printf '  %f\n' | sort
find "$dir" -maxdepth 1 -type f -name 'libcoffer_*.a' -printf '  %f\n' | sort
echo "Run 'make check' to run the test suite."
