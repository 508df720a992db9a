#!/usr/bin/env bash
# End-to-end benchmark (issue 7): starts the whole platform (`coffer up`) in a
# temporary state directory, waits for STATE/client.env, runs bench_platform
# against it, stops the platform and removes the directory. Builds nothing.
#
#   scripts/bench-e2e.sh [BUILD_DIR] [bench_platform options...]
#
# Exits with bench_platform's status (2 if the platform did not come up).
# Environment:
#   BENCH_E2E_READY_TIMEOUT  seconds to wait for client.env (default 180)
#   BENCH_E2E_RATELIMIT      gateway per-tenant rate and burst (default 100000).
#                            The default gateway limit (50 req/s, burst 100 per
#                            tenant) would otherwise be what is measured; it is
#                            passed as COFFER_RATELIMIT_RPS/_BURST (cofferd reads
#                            COFFER_<KEY> variables) to the platform only.
set -uo pipefail
arg=${1:-build}
[ $# -gt 0 ] && shift
dir=$(cd "$arg" 2>/dev/null && pwd) || { echo "bench-e2e: no build directory $arg" >&2; exit 2; }
for f in coffer cofferd coffer-tee coffer-launch bench_platform; do
  [ -x "$dir/$f" ] || { echo "bench-e2e: $dir/$f is not built" >&2; exit 2; }
done
[ -d "$dir/demo-bundle" ] || { echo "bench-e2e: $dir/demo-bundle is not built" >&2; exit 2; }

ready_timeout=${BENCH_E2E_READY_TIMEOUT:-180}
rate=${BENCH_E2E_RATELIMIT:-100000}
state=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench-e2e.XXXXXX") || exit 2
pid=

stop_platform() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    # coffer up stops its children on SIGTERM; give it a grace period.
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      # Its own process group (setsid below): the services it started go too.
      echo "bench-e2e: coffer up (pid $pid) did not stop in 30 s: SIGKILL to its process group" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  fi
  pid=
}
cleanup() {
  stop_platform
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-e2e: starting coffer up in $state (log: $state/up.log)"
# Started with a clean COFFER_* environment, except for the rate limit, as the
# leader of a new process group (setsid execs in place: $! is coffer up's pid).
setsid env $(env | sed -n 's/^\(COFFER_[A-Za-z0-9_]*\)=.*/-u \1/p') \
  COFFER_RATELIMIT_RPS="$rate" COFFER_RATELIMIT_BURST="$rate" \
  "$dir/coffer" up --state "$state" >"$state/up.log" 2>&1 &
pid=$!

start=$(date +%s)
while [ ! -s "$state/client.env" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bench-e2e: coffer up exited before it was ready:" >&2
    tail -n 30 "$state/up.log" >&2
    pid=
    exit 2
  fi
  if [ $(( $(date +%s) - start )) -ge "$ready_timeout" ]; then
    echo "bench-e2e: platform not ready after ${ready_timeout} s:" >&2
    tail -n 30 "$state/up.log" >&2
    exit 2
  fi
  sleep 0.5
done
echo "bench-e2e: platform ready after $(( $(date +%s) - start )) s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

set -a
# shellcheck disable=SC1091
. "$state/client.env"
set +a
"$dir/bench_platform" "$@"
status=$?
echo "bench-e2e: load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
