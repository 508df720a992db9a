#!/usr/bin/env bash
# `coffer audit verify|tail` against a running `cofferd audit` (TLS, internal CA, a JWKS file and
# tokens from tests/audit/auditsvc_fixture.c). Verification passes on an untouched log, trusts the
# key on first use and then keeps to it, checks consistency with the saved tree head, and — after
# the store is edited under the stopped service — names the changed entry and the deleted one and
# exits 1. Also: a tenant's view, refused tokens, a wrong pinned key, tail and its filters, and the
# API-key path through a stand-in gateway. Every process started here is stopped by pid.
# Usage: test_audit_cli.sh COFFER COFFERD AUDITSVC_FIXTURE
set -u
coffer=$1 cofferd=$2 fix=$3
pass=0 fail=0
tmp=$(mktemp -d /tmp/coffer-audit-cli-XXXXXX)
svc_pid="" gw_pid=""

cleanup() {
  if [ -n "$svc_pid" ]; then kill "$svc_pid" 2>/dev/null; wait "$svc_pid" 2>/dev/null; fi
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

check() { # name expected_exit pattern -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  "$@" >"$tmp/out" 2>&1
  local got=$?
  # (a sanitizer report in a sanitizer build fails the check whatever the exit status)
  if [ "$got" -ne "$want" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; } ||
     grep -q "Sanitizer\|runtime error" "$tmp/out"; then
    echo "not ok - $name (exit $got, expected $want, pattern '$pat')"; sed 's/^/    /' "$tmp/out" | head -30
    fail=$((fail + 1)); return
  fi
  echo "ok - $name"; pass=$((pass + 1))
}
has() { # name pattern: the last output has it
  if grep -q -- "$2" "$tmp/out"; then echo "ok - $1"; pass=$((pass + 1));
  else echo "not ok - $1 (no '$2')"; sed 's/^/    /' "$tmp/out" | head -30; fail=$((fail + 1)); fi
}
hasnt() { # name pattern
  if ! grep -q -- "$2" "$tmp/out"; then echo "ok - $1"; pass=$((pass + 1));
  else echo "not ok - $1 (has '$2')"; sed 's/^/    /' "$tmp/out" | head -30; fail=$((fail + 1)); fi
}
wait_file() { # path seconds
  local i=0
  while [ ! -s "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  [ -s "$1" ]
}

start_audit() {
  rm -f "$tmp/port"
  "$cofferd" audit --state_dir="$tmp/state" --tls.cert="$tmp/audit.pem" --tls.key="$tmp/audit.key" \
    --tls.ca="$tmp/ca.pem" --iam.jwks="$tmp/jwks.json" --hsm.pin=cli-pin --hsm.so_pin=cli-so-pin \
    --port_file="$tmp/port" --log.level=error >>"$tmp/svc.log" 2>&1 &
  svc_pid=$!
  wait_file "$tmp/port" 60 || { echo "cofferd audit did not start"; cat "$tmp/svc.log"; exit 1; }
  url="https://127.0.0.1:$(cat "$tmp/port")"
}
stop_audit() { kill "$svc_pid"; wait "$svc_pid" 2>/dev/null; svc_pid=""; }

"$fix" init "$tmp" || { echo "fixture init failed"; exit 1; }
start_audit
db="$tmp/state/audit/audit.db"
"$fix" send "$tmp" "$url" a 40 >/dev/null || { echo "send failed"; exit 1; }

P=$(cat "$tmp/tok.platform") A=$(cat "$tmp/tok.acme") C=$(cat "$tmp/tok.client")
unset COFFER_API_KEY COFFER_TENANT_ID COFFER_GATEWAY_URL COFFER_CA COFFER_ACCESS_TOKEN
V() { "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" "$@"; }

# ---- an untouched log ----
check "first verification (auditor)" 0 "^✓ 4[0-9] entries, tree size 4[0-9], root [0-9a-f]\{64\}: first verification" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json"
has "trust on first use is announced" "warning: no tree-head key is pinned"
"$fix" send "$tmp" "$url" b 9 >/dev/null
check "second verification: consistent with the saved head" 0 \
  "^✓ [0-9]* entries, tree size [0-9]*, root [0-9a-f]\{64\}: consistent with the tree head seen at size 4[0-9]$" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json"
hasnt "the pinned key is used silently" "no tree-head key is pinned"
check "json result" 0 '"ok": true' -- env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" \
  --ca "$tmp/ca.pem" --state "$tmp/st.json" --json
has "json scope" '"scope": "all"'
check "a tenant's view: its own entries, proven included" 0 "scope: tenant acme" -- \
  env COFFER_ACCESS_TOKEN="$A" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st-acme.json"
check "a token without audit.read is refused" 1 "HTTP 403" -- \
  env COFFER_ACCESS_TOKEN="$C" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st-client.json"
check "no credentials" 3 "no credentials" -- "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/x.json"
check "missing --url" 2 "url" -- "$coffer" audit verify
check "a pinned key that is not the log's" 1 "signature on tree head" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st-wrong.json" \
  --public-key "$("$fix" randkey)"
check "a key that differs from the one pinned in the state" 3 "differs from the key pinned" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json" \
  --public-key "$("$fix" randkey)"
check "unreadable key" 3 "public-key" -- env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" \
  --ca "$tmp/ca.pem" --state "$tmp/st-x.json" --public-key "not a key"

# ---- tail ----
check "tail -n 5" 0 "" -- env COFFER_ACCESS_TOKEN="$P" "$coffer" audit tail --url "$url" --ca "$tmp/ca.pem" -n 5
if [ "$(wc -l <"$tmp/out")" -eq 5 ]; then echo "ok - tail prints 5 lines"; pass=$((pass + 1));
else echo "not ok - tail prints 5 lines"; cat "$tmp/out"; fail=$((fail + 1)); fi
check "tail filters by action and tenant" 0 "kms  test.event.write  success  tenant=globex" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit tail --url "$url" --ca "$tmp/ca.pem" --action test.event.write \
  --tenant globex -n 3
hasnt "tail filter keeps other tenants out" "tenant=acme"
check "tail --json" 0 '^{"seq":[0-9]*,"event":{"action":"test.event.write"' -- env COFFER_ACCESS_TOKEN="$P" \
  "$coffer" audit tail --url "$url" --ca "$tmp/ca.pem" --action test.event.write --json -n 2
check "a tenant cannot tail another tenant" 1 "403" -- env COFFER_ACCESS_TOKEN="$A" "$coffer" audit tail \
  --url "$url" --ca "$tmp/ca.pem" --tenant globex
check "a tenant's tail shows its own entries" 0 "tenant=acme" -- env COFFER_ACCESS_TOKEN="$A" "$coffer" audit tail \
  --url "$url" --ca "$tmp/ca.pem" --since 2024-05-01T00:00:00Z
hasnt "... and no one else's" "tenant=globex"

# ---- API keys through a gateway ----
"$fix" gateway "$tmp" "$url" "$tmp/gwport" >"$tmp/gw.log" 2>&1 &
gw_pid=$!
wait_file "$tmp/gwport" 30 || { echo "gateway did not start"; cat "$tmp/gw.log"; exit 1; }
gw="http://127.0.0.1:$(cat "$tmp/gwport")"
check "verify through the gateway with an API key" 0 "^✓ .*first verification" -- \
  env COFFER_API_KEY=ak-platform "$coffer" audit verify --url "$gw" --state "$tmp/st-gw.json"
check "a refused API key" 1 "refused" -- env COFFER_API_KEY=ak-nobody "$coffer" audit verify --url "$gw" \
  --state "$tmp/st-gw2.json"
echo ak-acme >"$tmp/acme.key"
check "API key from a file" 0 "scope: tenant acme" -- "$coffer" audit verify --url "$gw" --state "$tmp/st-gw3.json" \
  --api-key-file "$tmp/acme.key"
check "the same log reached through the gateway: the saved state applies" 0 "consistent with the tree head seen" -- \
  env COFFER_API_KEY=ak-platform "$coffer" audit verify --url "$gw" --state "$tmp/st.json"

# ---- tampering, behind the stopped service ----
stop_audit
# entry 18 (an acme event): its bytes changed, its stored hashes left alone
"$fix" sql "$db" "DROP TRIGGER audit_entries_no_update; UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), '\"outcome\":\"success\"', '\"outcome\":\"failure\"') AS BLOB) WHERE seq = 18" \
  || { echo "tamper failed"; exit 1; }
start_audit
check "a changed entry is named" 1 "entry_mismatch: entry 18 does not match the signed tree head" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json"
has "the failure headline" "^✗ the audit log FAILED verification"
check "the tenant whose entry it is sees it too" 1 "entry 18" -- \
  env COFFER_ACCESS_TOKEN="$A" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st-acme.json"
check "json findings" 1 '"kind": "entry_mismatch"' -- env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify \
  --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json" --json
stop_audit
"$fix" sql "$db" "DROP TRIGGER audit_entries_no_delete; DELETE FROM audit_entries WHERE seq = 25" \
  || { echo "delete failed"; exit 1; }
start_audit
check "a deleted entry is named" 1 "entry_missing: entry 25 is missing" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json"
has "... and the changed one still" "entry 18 does not match"
# a failed verification does not move the saved head: the next run still compares with it
check "the saved head stays" 1 "entry 25 is missing" -- \
  env COFFER_ACCESS_TOKEN="$P" "$coffer" audit verify --url "$url" --ca "$tmp/ca.pem" --state "$tmp/st.json"

# the services stop cleanly, without sanitizer reports (in a sanitizer build)
stop_audit
kill "$gw_pid"; wait "$gw_pid" 2>/dev/null; gw_pid=""
if grep -q "Sanitizer\|runtime error" "$tmp/svc.log" "$tmp/gw.log"; then
  echo "not ok - no sanitizer reports"; grep -h -A20 "Sanitizer\|runtime error" "$tmp/svc.log" "$tmp/gw.log" | head -40
  fail=$((fail + 1))
else echo "ok - no sanitizer reports"; pass=$((pass + 1)); fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
