#!/usr/bin/env bash
# `make demo`: starts the platform (coffer up) in a temporary state directory, sends a confidential request
# to every demo job, verifies the deployment's attestation and the audit log, then stops everything.
set -u
B=$(cd "${1:-build}" && pwd)
S=$(mktemp -d /tmp/coffer-demo-XXXXXX)
UP_PID=
stop() {
  if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -TERM "$UP_PID"
    for _ in $(seq 1 100); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$UP_PID" 2>/dev/null && kill -KILL "$UP_PID"
    wait "$UP_PID" 2>/dev/null
  fi
  rm -rf "$S"
}
trap stop EXIT
"$B/coffer" up --state "$S/var" &
UP_PID=$!
for _ in $(seq 1 300); do
  [ -f "$S/var/client.env" ] && break
  kill -0 "$UP_PID" 2>/dev/null || { echo "coffer up failed; see $S/var/logs" >&2; exit 1; }
  sleep 0.5
done
[ -f "$S/var/client.env" ] || { echo "the platform did not start in time" >&2; exit 1; }
set -a; . "$S/var/client.env"; set +a
rc=0
text='Dear support, my e-mail is jane.doe@example.com and my card is 4111 1111 1111 1111.'
for job in echo sha256 wordcount redact; do
  echo
  echo "\$ coffer request --job $job --data '$text'"
  "$B/coffer" request --job "$job" --data "$text" || rc=1
done
echo
echo "\$ coffer attestation verify --deployment demo"
"$B/coffer" attestation verify --deployment demo || rc=1
if "$B/coffer" audit --help >/dev/null 2>&1; then
  echo
  echo "\$ coffer audit verify"
  COFFER_API_KEY=$(cat "$S/var/secrets/admin.key") COFFER_TENANT_ID=platform "$B/coffer" audit verify \
    --state "$S/audit-sth.json" || rc=1
fi
echo
[ $rc -eq 0 ] && echo "demo: all steps succeeded" || echo "demo: a step failed"
exit $rc
