#!/usr/bin/env bash
# `coffer attestation verify` against a running `cofferd attest` whose KMS and TEEs are
# fakes (attestsvc_fake: real simulated evidence, see tests/attestsvc/fake_platform.h).
# Proves that the CLI verifies the evidence itself: with a manifest that does not trust the
# simulated root it fails although the service says "verified".
# Usage: test_attestation_cli.sh COFFER COFFERD ATTESTSVC_FAKE
set -u
coffer=$1 cofferd=$2 fake=$3
pass=0 fail=0
tmp=$(mktemp -d /tmp/coffer-attest-cli-XXXXXX)
fake_pid="" svc_pid=""

cleanup() {
  if [ -n "$svc_pid" ]; then kill "$svc_pid" 2>/dev/null; wait "$svc_pid" 2>/dev/null; fi
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

check() { # name expected_exit pattern -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  "$@" >"$tmp/out" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; }; then
    echo "not ok - $name (exit $got, expected $want, pattern '$pat')"; sed 's/^/    /' "$tmp/out" | head -30
    fail=$((fail + 1)); return
  fi
  echo "ok - $name"; pass=$((pass + 1))
}
has() { # name pattern: the last output has the line
  if grep -q -- "$2" "$tmp/out"; then echo "ok - $1"; pass=$((pass + 1));
  else echo "not ok - $1 (no '$2')"; sed 's/^/    /' "$tmp/out" | head -30; fail=$((fail + 1)); fi
}

wait_file() { # path seconds
  local i=0
  while [ ! -s "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  [ -s "$1" ]
}

p=$tmp/plat
mkdir -p "$p"
"$fake" "$p" >"$tmp/fake.log" 2>&1 &
fake_pid=$!
wait_file "$p/ready" 120 || { echo "fake platform did not start"; cat "$tmp/fake.log"; exit 1; }
"$cofferd" attest --state_dir="$tmp/state" --manifest="$p/manifest.json" --kms.url="$(cat "$p/kms.url")" \
  --tee.endpoints="$(cat "$p/tee.endpoints")" --reattest.interval=60 --tls.cert="$p/attest.crt" --tls.key="$p/attest.key" --tls.ca="$p/ca.pem" \
  --hsm.pin=cli-test-pin --hsm.so_pin=cli-test-so-pin --port_file="$tmp/port" --log.level=warn \
  >"$tmp/svc.log" 2>&1 &
svc_pid=$!
wait_file "$tmp/port" 120 || { echo "cofferd attest did not start"; cat "$tmp/svc.log"; exit 1; }
url="https://127.0.0.1:$(cat "$tmp/port")"
C=("$coffer" attestation verify --url "$url" --ca "$p/ca.pem")

check "good deployment verifies" 0 "^✅ Attestation verification complete for deployment: demo$" -- \
  "${C[@]}" --deployment demo --manifest "$p/manifest.json"
has "deployment id line" "^Deployment ID: demo$"
has "build hash line" "^Build Hash: sha256:[0-9a-f]\{64\}$"
has "verification time line" "^Verification Time: 20[0-9-]* [0-9:]* UTC$"
has "measurement line" "^  MEASUREMENT: [0-9a-f]\{96\}$"
has "host data line" "^  HOST_DATA: [0-9a-f]\{64\}$"
has "developer signature line" "^Developer Signature: VALID ✓$"
has "platform line" "^Platform Verification: SECURE ✓$"
has "tcb line" "^  TCB Status: Up to date$"
has "debug line" "^  Debug: Disabled$"

# The service verifies with a manifest that trusts the simulated root; this client's does
# not. The CLI must say no, and name the check that failed locally.
check "client manifest without the simulated root fails locally" 1 \
  "✗ chain: report signed by the simulated root, which this manifest does not trust" -- \
  "${C[@]}" --deployment demo --manifest "$p/manifest-prod.json"
has "service said verified" "^Service verdict: verified (not trusted on its own)$"
has "failure header" "^❌ Attestation verification FAILED for deployment: demo$"

check "debug launch fails" 1 "✗ debug: policy has DEBUG set" -- "${C[@]}" --deployment dbg --manifest "$p/manifest.json"
check "unknown deployment refused" 1 "not in the manifest" -- "${C[@]}" --deployment nope --manifest "$p/manifest.json"
check "json output" 0 '"verified": true' -- "${C[@]}" --deployment demo --manifest "$p/manifest.json" --json
# A pinned JWKS that is not the service's: the token cannot be trusted, so the answer is no.
check "token checked against the pinned JWKS" 1 "✗ token" -- \
  "${C[@]}" --deployment demo --manifest "$p/manifest.json" --jwks "$p/jwks.json"
check "environment defaults" 0 "^✅" -- env COFFER_GATEWAY_URL="$url" COFFER_CA="$p/ca.pem" \
  COFFER_MANIFEST="$p/manifest.json" "$coffer" attestation verify --deployment demo
check "service unreachable" 4 "cannot reach the attestation service" -- \
  "$coffer" attestation verify --url https://127.0.0.1:1 --ca "$p/ca.pem" --deployment demo --manifest "$p/manifest.json"
check "usage: no deployment" 2 "deployment is required" -- "${C[@]}" --manifest "$p/manifest.json"
check "usage: no manifest" 2 "no manifest" -- env -u COFFER_MANIFEST "${C[@]}" --deployment demo
check "unreadable manifest" 3 "manifest" -- "${C[@]}" --deployment demo --manifest "$tmp/nope.json"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
