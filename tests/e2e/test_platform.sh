#!/usr/bin/env bash
# End to end: the whole platform under `coffer up` (separate processes on loopback), used through the real
# CLI/SDK, plus attack scenarios from the design (DESIGN.md §2) and a crash of the KMS.
# Usage: test_platform.sh BUILD_DIR
set -u
B=$(cd "$1" && pwd)
pass=0 fail=0
S=$(mktemp -d /tmp/coffer-e2e-XXXXXX)
UP_PID=
ROGUE_PID=
STOPPED_PID=

cleanup() {
  [ -n "$STOPPED_PID" ] && kill -CONT "$STOPPED_PID" 2>/dev/null
  if [ -n "$ROGUE_PID" ] && kill -0 "$ROGUE_PID" 2>/dev/null; then kill -TERM "$ROGUE_PID"; wait "$ROGUE_PID" 2>/dev/null; fi
  if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -TERM "$UP_PID"
    for _ in $(seq 1 100); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$UP_PID" 2>/dev/null && kill -KILL "$UP_PID"
    wait "$UP_PID" 2>/dev/null
  fi
  rm -rf "$S"
}
trap cleanup EXIT

ok() { echo "ok - $1"; pass=$((pass + 1)); }
nok() { echo "not ok - $1"; fail=$((fail + 1)); [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -20; }
# check NAME EXPECTED_EXIT PATTERN -- command...
check() {
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$S/out" 2>&1; local got=$?
  if [ "$got" -ne "$want" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$S/out"; }; then
    nok "$name (exit $got, expected $want, pattern '$pat')" "$S/out"; return 1
  fi
  ok "$name"
}

# A 10 s re-attestation interval: stale after 20 s. (With 5 s, one re-attestation period plus a hung
# neighbour's timeout plus KMS latency left too little slack on a loaded 2-core machine.)
"$B/coffer" up --state "$S/var" --reattest-interval 10s >"$S/up.log" 2>&1 &
UP_PID=$!
for _ in $(seq 1 300); do
  [ -f "$S/var/client.env" ] && break
  kill -0 "$UP_PID" 2>/dev/null || break
  sleep 0.5
done
if [ ! -f "$S/var/client.env" ]; then
  nok "coffer up starts the platform" "$S/up.log"; for f in "$S"/var/logs/*.log; do echo "== $f"; tail -5 "$f"; done
  echo "$pass passed, $fail failed"; exit 1
fi
ok "coffer up starts the platform and writes client.env"
set -a; . "$S/var/client.env"; set +a
ports=$(cat "$S/var/ports.json")
port() { echo "$ports" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
KMS=https://127.0.0.1:$(port kms)
GW=$COFFER_GATEWAY_URL
CA=$COFFER_CA
C=$S/var/certs

# ---- happy path: every demo job through the CLI (libcoffer) ----
data='Contact alice@example.com or bob@corp.example, card 4111 1111 1111 1111 / 4111-1111-1111-1112.'
check "request echo" 0 "" -- "$B/coffer" request --job echo --data "$data" && \
  { [ "$(cat "$S/out")" = "$data" ] && ok "echo returns the data" || nok "echo returns the data" "$S/out"; }
want=$(printf '%s' "$data" | sha256sum | cut -d' ' -f1)
check "request sha256" 0 "$want" -- "$B/coffer" request --job sha256 --data "$data"
check "request wordcount" 0 "0 $(printf '%s' "$data" | wc -w) $(printf '%s' "$data" | wc -c)" -- "$B/coffer" request --job wordcount --data "$data"
check "request redact (emails, Luhn-valid card only)" 0 "Contact \[EMAIL\] or \[EMAIL\], card \[CARD\] / 4111-1111-1111-1112." -- \
  "$B/coffer" request --job redact --data "$data"
head -c 100000 /dev/urandom >"$S/big.bin"
"$B/coffer" request --job sha256 --file "$S/big.bin" >"$S/out" 2>&1 && \
  grep -q "$(sha256sum <"$S/big.bin" | cut -d' ' -f1)" "$S/out" && ok "100 KB file through sha256" || nok "100 KB file through sha256" "$S/out"
check "unknown job refused" 1 "serves job 'nosuch'" -- "$B/coffer" request --job nosuch --data x
check "attestation verify" 0 "Attestation verification complete for deployment: demo" -- \
  "$B/coffer" attestation verify --deployment demo

# ---- audit: every step of a request is in the tamper-evident log, and the log verifies ----
if "$B/coffer" audit --help >/dev/null 2>&1; then
  want_actions="iam.token.issue gateway.session.create otk.issue otk.release gateway.job.forward"
  missing=$want_actions
  for _ in $(seq 1 40); do  # services forward their spools in the background
    COFFER_TENANT_ID=platform COFFER_API_KEY="$(cat "$S/var/secrets/admin.key")" \
      "$B/coffer" audit tail -n 2000 --json >"$S/audit.jsonl" 2>"$S/audit.err"
    missing=
    for a in $want_actions; do grep -q "\"action\":\"$a\"" "$S/audit.jsonl" || missing="$missing $a"; done
    [ -z "$missing" ] && break
    sleep 0.5
  done
  [ -z "$missing" ] && ok "audit log holds every step of a request ($want_actions)" || \
    nok "audit log lacks:$missing" "$S/audit.err"
  check "coffer audit verify (platform admin: every entry against the signed tree head)" 0 "" -- \
    env COFFER_TENANT_ID=platform COFFER_API_KEY="$(cat "$S/var/secrets/admin.key")" \
    "$B/coffer" audit verify --state "$S/audit-sth.json"
else
  nok "coffer audit is built"
fi

# ---- tokens for the attack scenarios ----
token() { # api_key tenant
  curl -sS --cacert "$CA" -X POST "$GW/v1/iam/token" -H 'Content-Type: application/json' \
    -d "{\"api_key\":\"$1\",\"tenant\":\"$2\"}" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
ADMIN=$(token "$(cat "$S/var/secrets/admin.key")" platform)
[ -n "$ADMIN" ] && ok "admin token" || nok "admin token"
TEE_ID=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" "$GW/v1/registry/tees" | sed -n 's/.*"id":"\(tee_[0-9a-f]*\)".*/\1/p' | head -1)
[ -n "$TEE_ID" ] && ok "registry lists the demo TEEs ($TEE_ID)" || nok "registry lists the demo TEEs"

# ---- 1. a compromised gateway (its certificate and key) gets nothing from the KMS ----
gwcurl() { curl -sS -o "$S/body" -w '%{http_code}' --cacert "$CA" --cert "$C/gateway.pem" --key "$C/gateway.key" "$@"; }
code=$(gwcurl -X POST "$KMS/v1/kms/otk" -H 'Content-Type: application/json' -d "{\"tee_id\":\"$TEE_ID\"}")
[ "$code" = 401 ] && ok "gateway credentials cannot issue an OTK (401)" || nok "gateway credentials cannot issue an OTK (got $code)" "$S/body"
code=$(gwcurl -X POST "$KMS/v1/kms/otk/otk_0123456789abcdef/release" -H 'Content-Type: application/json' \
  -d "{\"tee_id\":\"$TEE_ID\",\"enc\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"ct\":\"AAAA\"}")
case "$code" in 4??) ok "gateway credentials cannot release an OTK ($code)";; *) nok "gateway credentials cannot release an OTK (got $code)" "$S/body";; esac
code=$(gwcurl -X POST "$KMS/v1/registry/tees/$TEE_ID/attestations" -H 'Content-Type: application/json' -d '{"nonce":"00","evidence":{}}')
[ "$code" = 403 ] && ok "only the attestation service may report attestations (gateway: 403)" || nok "attestations endpoint for gateway identity (got $code)" "$S/body"
if grep -rqa "$(printf '%s' "$data" | head -c 24)" "$S/var/logs" "$S/var/services"/*/spool 2>/dev/null; then
  nok "no payload bytes in any service log or audit spool"
else ok "no payload bytes in any service log or audit spool"; fi

# ---- 2. a rogue TEE (bundle changed, re-signed) is refused by the KMS's own verification ----
cp -r "$B/demo-bundle" "$S/rogue"
sed -i 's/"version": "1.0.0"/"version": "1.0.1"/' "$S/rogue/coffer.json"
"$B/coffer-tee" sign-bundle --bundle "$S/rogue" --demo-key >/dev/null 2>&1
JT=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -X POST \
  "$GW/v1/registry/join-tokens" -d '{"tenant":"demo","deployment":"demo","ttl":300,"uses":1}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
printf '%s' "$JT" >"$S/jt"; chmod 600 "$S/jt"
"$B/coffer-launch" --state "$S/var" --bundle "$S/rogue" -- "$B/coffer-tee" --kms.url="$KMS" --kms.ca="$CA" \
  --kms.release_key="$COFFER_KMS_RELEASE_KEY" --join_token=@"$S/jt" --bundle="$S/rogue" --deployment.name=demo \
  --deployment.developer_key="$("$B/coffer-tee" demo-key)" --kms.register_timeout=10s >"$S/rogue.log" 2>&1 &
ROGUE_PID=$!
wait "$ROGUE_PID"; rc=$?; ROGUE_PID=
if [ $rc -ne 0 ] && grep -q "measurement" "$S/rogue.log"; then ok "rogue TEE (changed bundle) refused at registration: measurement not in manifest"
else nok "rogue TEE refused (exit $rc)" "$S/rogue.log"; fi

# ---- 4. tenant isolation ----
curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -X POST "$GW/v1/iam/tenants" \
  -d '{"id":"other","name":"Other tenant"}' >/dev/null
PID_OTHER=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -X POST \
  "$GW/v1/iam/tenants/other/principals" -d '{"kind":"client","name":"other-client","roles":["client"]}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
KEY_OTHER=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -X POST \
  "$GW/v1/iam/principals/$PID_OTHER/api-keys" -d '{}' | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')
OTHER=$(token "$KEY_OTHER" other)
# Register a client key for B (as the SDK would) so that its OTK request reaches the tenant check.
openssl genpkey -algorithm X25519 -out "$S/b.pem" 2>/dev/null
BPUB=$(openssl pkey -in "$S/b.pem" -pubout -outform DER 2>/dev/null | tail -c 32 | base64 | tr '+/' '-_' | tr -d '=\n')
curl -sS -o /dev/null --cacert "$CA" -H "Authorization: Bearer $OTHER" -H 'Content-Type: application/json' -X PUT \
  "$GW/v1/iam/principals/$PID_OTHER/client-key" -d "{\"x25519\":\"$BPUB\"}"
OTHER=$(token "$KEY_OTHER" other)
[ -n "$OTHER" ] && ok "tenant B client token (with a registered client key)" || nok "tenant B client token"
code=$(curl -sS -o "$S/body" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $OTHER" -H 'Content-Type: application/json' \
  -X POST "$GW/v1/kms/otk" -d "{\"tee_id\":\"$TEE_ID\"}")
case "$code" in 403|404) ok "tenant B cannot get an OTK for tenant A's TEE ($code: $(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$S/body"))";; *) nok "tenant B OTK for A's TEE (got $code)" "$S/body";; esac
code=$(curl -sS -o "$S/body" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $OTHER" -H 'Content-Type: application/json' \
  -X POST "$GW/v1/kms/keys/demo/rotate" -d '{}')
[ "$code" = 403 ] && ok "tenant B cannot administer tenant A's keys (403)" || nok "tenant B key admin on A (got $code)" "$S/body"
code=$(curl -sS -o "$S/body" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $OTHER" "$GW/v1/registry/tees?tenant=demo")
case "$code" in 403) ok "tenant B cannot list tenant A's TEEs (403)";;
  200) grep -q "$TEE_ID" "$S/body" && nok "tenant B saw tenant A's TEEs" "$S/body" || ok "tenant B sees none of tenant A's TEEs";;
  *) nok "tenant B registry listing (got $code)" "$S/body";; esac
check "tenant B's client cannot run tenant A's jobs" 3 "no deployment of tenant 'other'" -- env COFFER_TENANT_ID=other COFFER_API_KEY="$KEY_OTHER" \
  COFFER_CLIENT_KEY="$S/other-client.key" "$B/coffer" request --job echo --data x

# ---- 3. a TEE that stops answering re-attestation is quarantined within 2 x the interval ----
T1_PORT=$(port tee1)
T1_LAUNCH=$(sed -n 's/^  tee1 *up (pid \([0-9]*\)).*/\1/p' "$S/up.log" | tail -1)
T1_PID=$(pgrep -P "$T1_LAUNCH" 2>/dev/null | head -1)
T1_ID=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" "$GW/v1/registry/tees" | tr '{' '\n' | \
  grep "127.0.0.1:$T1_PORT" | sed -n 's/.*"id":"\(tee_[0-9a-f]*\)".*/\1/p' | head -1)
if [ -n "$T1_PID" ] && [ -n "$T1_ID" ] && kill -STOP "$T1_PID"; then
  STOPPED_PID=$T1_PID
  q=0
  for _ in $(seq 1 60); do  # interval 10 s: stale after 20 s
    sleep 1
    st=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $ADMIN" "$GW/v1/registry/tees/$T1_ID" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    [ "$st" = quarantined ] && { q=1; break; }
  done
  [ $q = 1 ] && ok "a TEE that stops answering re-attestation is quarantined ($T1_ID)" || nok "TEE quarantined after failing re-attestation (status '$st')"
  grep -qa '"tee.quarantined"\|quarantin' "$S/var/services/kms/spool/events.log" && ok "the quarantine is in the KMS audit trail" || \
    nok "quarantine event in the KMS audit spool"
  check "requests still succeed on the remaining TEE" 0 "$(printf still-served | sha256sum | cut -d' ' -f1)" -- \
    "$B/coffer" request --job sha256 --data still-served
  kill -CONT "$T1_PID"; STOPPED_PID=
else nok "found TEE 1 (launcher $T1_LAUNCH, runtime $T1_PID, id $T1_ID)"; fi

# ---- faults: kill -9 each service in turn; coffer up restarts it; nothing is lost ----
for svc in kms iam attest audit gateway; do
  SPID=$(sed -n "s/^  $svc *up (pid \([0-9]*\)).*/\1/p" "$S/up.log" | tail -1)
  if [ -z "$SPID" ] || ! kill -KILL "$SPID" 2>/dev/null; then nok "found the $svc pid to kill -9"; continue; fi
  ok=0
  for _ in $(seq 1 60); do
    sleep 1
    if "$B/coffer" request --job sha256 --data "after-$svc-crash" >"$S/out" 2>&1; then ok=1; break; fi
  done
  [ $ok = 1 ] && grep -q "$(printf "after-$svc-crash" | sha256sum | cut -d' ' -f1)" "$S/out" && \
    ok "after kill -9 of $svc it is restarted and requests succeed again" || nok "requests after kill -9 of $svc" "$S/out"
done
check "coffer audit verify after the crashes (consistent with the tree head seen before)" 0 "" -- \
  env COFFER_TENANT_ID=platform COFFER_API_KEY="$(cat "$S/var/secrets/admin.key")" \
  "$B/coffer" audit verify --state "$S/audit-sth.json"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
