#!/usr/bin/env bash
# The operator / user commands of `coffer` (tenant, principal, apikey, clientkey, key, tee,
# join-token, deployment create / list) against REAL services started here: `cofferd iam`
# (admin from `cofferd iam --bootstrap-admin`), `cofferd kms` and `cofferd attest` when they
# are built, and `cofferd gateway` in front of them over HTTPS with a certificate from a
# fresh internal CA (pki_helper). Every call of the CLI goes through the gateway.
# Usage: test_admin_cli.sh COFFER COFFERD COFFER_TEE PKI_HELPER DEMO_BUNDLE
set -u
coffer=$1 cofferd=$2 coffer_tee=$3 pki=$4 demo_bundle=$5
pass=0 fail=0
tmp=$(mktemp -d /tmp/coffer-admin-cli-XXXXXX)
pids=()

# The services read COFFER_* variables as configuration: start from a clean slate.
for v in $(env | sed -n 's/^\(COFFER_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[$i]}" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok - $1"; pass=$((pass + 1)); }
nok() { echo "not ok - $1"; fail=$((fail + 1)); }

# check NAME EXPECTED_EXIT PATTERN -- command...: runs the command (stdout+stderr to
# $tmp/out, stdout alone to $tmp/stdout), then checks the exit status and that the output
# has a line matching PATTERN (grep -E; empty = no check).
check() {
  local name=$1 want=$2 pat=$3
  shift 4
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  cat "$tmp/stdout" "$tmp/stderr" >"$tmp/out"
  # In the sanitizer build a report also fails the check (its exit status could be the expected one).
  if grep -Eq "Sanitizer|runtime error:" "$tmp/stderr"; then
    nok "$name (sanitizer report)"; sed 's/^/    /' "$tmp/stderr" | head -40
    return 1
  fi
  if [ "$got" -ne "$want" ] || { [ -n "$pat" ] && ! grep -Eq -- "$pat" "$tmp/out"; }; then
    nok "$name (exit $got, expected $want, pattern '$pat')"; sed 's/^/    /' "$tmp/out" | head -20
    return 1
  fi
  ok "$name"
}
# has NAME PATTERN: the last command's output matches.
has() {
  if grep -Eq -- "$2" "$tmp/out"; then ok "$1"; else nok "$1 (no '$2')"; sed 's/^/    /' "$tmp/out" | head -20; fi
}
# field NAME: the first "NAME":"value" of the last stdout (the --json forms are one line).
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$tmp/stdout" | head -1; }

wait_file() { # path seconds
  local i=0
  while [ ! -s "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  [ -s "$1" ]
}
# start NAME args...: cofferd NAME in the background, port in $tmp/NAME.port.
start() {
  local name=$1
  shift
  "$cofferd" "$name" --state_dir="$tmp/state-$name" --port_file="$tmp/$name.port" --log.level=warn "$@" \
    >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  if ! wait_file "$tmp/$name.port" 30; then
    echo "cofferd $name did not start:"; cat "$tmp/$name.log"; exit 1
  fi
}

# ---- platform ------------------------------------------------------------------------------
mkdir -p "$tmp/pki" "$tmp/pki2"
"$pki" ca "$tmp/pki" gateway >/dev/null || { echo "pki_helper failed"; exit 1; }
"$pki" ca "$tmp/pki2" gateway >/dev/null || { echo "pki_helper failed"; exit 1; }
printf 'cli-test-pin' >"$tmp/pin"; printf 'cli-test-so-pin' >"$tmp/sopin"; chmod 600 "$tmp/pin" "$tmp/sopin"
HSM=(--hsm.pin=@"$tmp/pin" --hsm.so_pin=@"$tmp/sopin")
MEAS=$(printf 'ab%.0s' $(seq 48))
cat >"$tmp/manifest.json" <<EOF
{"version":1,"platforms":{"sev-snp":{"roots":["amd:milan"],
 "min_tcb":{"milan":{"bootloader":1,"tee":0,"snp":1,"microcode":1}}}},
 "deployments":[
  {"name":"demo","tenant":"acme","jobs":["echo","sha256"],"developer_key":"GuvcdUcD6oXIXQy_61tbIHqBoQcy0gLKOAm2Xjiew9c",
   "platforms":{"sev-snp":{"measurements":["$MEAS"]}}},
  {"name":"gx","tenant":"globex","jobs":["echo"],"developer_key":"GuvcdUcD6oXIXQy_61tbIHqBoQcy0gLKOAm2Xjiew9c",
   "platforms":{"sev-snp":{"measurements":["$MEAS"]}}}]}
EOF

"$cofferd" iam --bootstrap-admin --state_dir="$tmp/state-iam" --log.level=error >"$tmp/boot.json" 2>"$tmp/boot.err" ||
  { echo "bootstrap failed"; cat "$tmp/boot.err"; exit 1; }
ADMIN=$(sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' "$tmp/boot.json")
start iam "${HSM[@]}"
iam=http://127.0.0.1:$(cat "$tmp/iam.port")
JWKS=--iam.jwks=$iam/.well-known/jwks.json
UP=(--iam.url="$iam")
have_kms=0 have_attest=0
if "$cofferd" kms --help >/dev/null 2>&1; then
  start kms --manifest="$tmp/manifest.json" "$JWKS" "${HSM[@]}"
  UP+=(--kms.url=http://127.0.0.1:$(cat "$tmp/kms.port")); have_kms=1
fi
if "$cofferd" attest --help >/dev/null 2>&1; then
  start attest --manifest="$tmp/manifest.json" "$JWKS" --reattest.enabled=false "${HSM[@]}"
  UP+=(--attest.url=http://127.0.0.1:$(cat "$tmp/attest.port")); have_attest=1
fi
start gateway --manifest="$tmp/manifest.json" "$JWKS" "${UP[@]}" --tls.cert="$tmp/pki/gateway.pem" \
  --tls.key="$tmp/pki/gateway.key" --tls.client_auth=off --ratelimit.ip_rps=1000 --ratelimit.ip_burst=1000
GW=https://127.0.0.1:$(cat "$tmp/gateway.port")

# as KEY args...: the CLI with the gateway, its CA and an API key from the environment.
as() { local k=$1; shift; COFFER_GATEWAY_URL=$GW COFFER_CA=$tmp/pki/ca.pem COFFER_API_KEY=$k "$coffer" "$@"; }

# ---- usage (exit 2), configuration, reachability ------------------------------------------
check "no sub-command" 2 "coffer tenant create" -- "$coffer" tenant
check "unknown sub-command" 2 "unknown sub-command 'frobnicate'" -- "$coffer" principal frobnicate
check "missing positional" 2 "missing argument" -- as "$ADMIN" tenant create
check "extra positional" 2 "unexpected argument 'b'" -- as "$ADMIN" tenant show a b
check "unknown option" 2 "unrecognized option" -- as "$ADMIN" tenant list --bogus
check "bad kind" 2 "--kind must be" -- as "$ADMIN" principal create --tenant acme --kind robot --name r --role client
check "unknown role" 2 "unknown role 'superuser'" -- as "$ADMIN" principal create --tenant acme --kind user --name r --role superuser
check "missing --role" 2 "at least one --role" -- as "$ADMIN" principal create --tenant acme --kind user --name r
check "invalid id in a path" 2 "is not valid" -- as "$ADMIN" tenant show ../iam/tenants
check "bad --ttl" 2 "--ttl must be" -- as "$ADMIN" apikey create --principal p-1 --ttl forever
check "bad --timeout-ms" 2 "--timeout-ms must be" -- as "$ADMIN" tenant list --timeout-ms 0
check "clientkey needs one source" 2 "exactly one of --key and --generate" -- as "$ADMIN" clientkey register --principal p-1
check "--generate needs --out" 2 "--generate needs --out" -- as "$ADMIN" clientkey register --principal p-1 --generate
check "key policy needs a setting" 2 "give --rotate-every" -- as "$ADMIN" key policy --tenant acme
check "key destroy needs --version" 2 "--version is required" -- as "$ADMIN" key destroy --tenant acme
check "tee quarantine needs --reason" 2 "--reason is required" -- as "$ADMIN" tee quarantine tee_x
check "tee list bad status" 2 "--status must be" -- as "$ADMIN" tee list --status sleeping
check "deployment create needs --key" 2 "--key is required" -- "$coffer" deployment create "$demo_bundle"
check "--help" 0 "^usage: coffer principal create --tenant T" -- "$coffer" principal create --help
has "--help lists the connection options" "--api-key-file FILE"
check "group --help" 0 "coffer key rewrap --tenant T" -- "$coffer" key --help
check "top-level help lists the commands" 0 "^  join-token " -- "$coffer" --help
check "no API key" 2 "no API key: set COFFER_API_KEY" -- env COFFER_GATEWAY_URL="$GW" "$coffer" tenant list
check "no gateway URL" 2 "no gateway URL" -- env COFFER_API_KEY="$ADMIN" "$coffer" tenant list
check "plain http to a remote host refused" 2 "must be https://" -- as "$ADMIN" tenant list --url http://127.0.0.1.example.com:80
check "API key file unreadable" 3 "API key file" -- as "$ADMIN" tenant list --api-key-file "$tmp/nope"
check "unreachable gateway" 4 "cannot reach the gateway" -- as "$ADMIN" tenant list --url https://127.0.0.1:1
check "gateway certificate from another CA" 4 "cannot reach the gateway.*--ca" -- as "$ADMIN" tenant list --ca "$tmp/pki2/ca.pem"
check "malformed API key" 3 "not an API key" -- as 'cfk_"}' tenant list
check "unknown API key" 1 "API key was not accepted: not allowed \(HTTP 401" -- \
  as cfk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA tenant list

# ---- tenants ---------------------------------------------------------------------------------
check "tenant create" 0 "^Name: +Acme Corp$" -- as "$ADMIN" tenant create acme --name "Acme Corp"
check "tenant create (default name)" 0 "^ID: +globex$" -- as "$ADMIN" tenant create globex
check "tenant create twice refused" 1 "refused \(HTTP 409" -- as "$ADMIN" tenant create acme
check "tenant list table" 0 "^acme +Acme Corp +active " -- as "$ADMIN" tenant list
has "tenant list header" "^ID +Name +Status +Created"
has "tenant list has platform" "^platform "
check "tenant list --json" 0 '"tenants":\[' -- as "$ADMIN" tenant list --json
has "tenant list --json names acme" '\{"created_at":[0-9]+,"id":"acme","name":"Acme Corp","status":"active"\}'
check "tenant show" 0 "^Status: +active$" -- as "$ADMIN" tenant show acme
check "tenant show --json" 0 '^\{"created_at":[0-9]+,"id":"acme",' -- as "$ADMIN" tenant show acme --json
check "tenant show unknown" 1 "refused \(HTTP 404 Not Found" -- as "$ADMIN" tenant show nosuch

# ---- principals and API keys -----------------------------------------------------------------
check "principal create tenant-admin" 0 "" -- as "$ADMIN" principal create --tenant acme --kind user --name alice --role tenant-admin --json
ALICE=$(field id)
[ -n "$ALICE" ] && ok "principal id in --json" || nok "principal id in --json"
has "principal roles in --json" '"roles":\["tenant-admin"\]'
check "principal show" 0 "^Roles: +tenant-admin$" -- as "$ADMIN" principal show "$ALICE"
check "apikey create --out" 0 "^API key: +written to .*alice.key \(mode 0600\)$" -- \
  as "$ADMIN" apikey create --principal "$ALICE" --out "$tmp/alice.key"
[ "$(stat -c %a "$tmp/alice.key")" = 600 ] && ok "key file is 0600" || nok "key file is 0600"
ALICE_KEY=$(cat "$tmp/alice.key")
case $ALICE_KEY in cfk_*) ok "key file holds the key";; *) nok "key file holds the key";; esac
check "apikey create --out never replaces a file" 3 "the file exists" -- \
  as "$ADMIN" apikey create --principal "$ALICE" --out "$tmp/alice.key"
check "apikey create prints the key once" 0 "^API key: +cfk_[0-9a-f]{16}_" -- as "$ADMIN" apikey create --principal "$ALICE" --ttl 1d
has "apikey create warns to store it" "store this API key now: it is shown only once"
grep -q "store this API key" "$tmp/stdout" && nok "warning goes to stderr" || ok "warning goes to stderr"
ALICE_KEY2=$(sed -n 's/^API key: *//p' "$tmp/stdout")
KID2=$(sed -n 's/^Key ID: *//p' "$tmp/stdout")
check "apikey list" 0 "^$KID2 +$ALICE +acme +active " -- as "$ADMIN" apikey list --principal "$ALICE"
has "apikey list header" "^Key ID +Principal +Tenant +Status"
check "apikey list --json" 0 "\"key_id\":\"$KID2\"" -- as "$ADMIN" apikey list --principal "$ALICE" --json
if grep -q "$ALICE_KEY2" "$tmp/out"; then nok "listing never shows a secret"; else ok "listing never shows a secret"; fi
check "the new key works" 0 "^$ALICE +user +alice +tenant-admin +active " -- as "$ALICE_KEY2" principal list --tenant acme --auth-tenant acme

# The granting rule, as IAM says it, through the gateway.
check "tenant-admin cannot create a platform role" 1 \
  "not allowed \(HTTP 403 Forbidden.*role 'operator' is a platform role" -- \
  as "$ALICE_KEY" principal create --tenant acme --kind user --name bob --role operator
check "tenant-admin cannot list tenants" 1 "not allowed \(HTTP 403" -- as "$ALICE_KEY" tenant list
check "tenant-admin cannot act in another tenant" 1 "not allowed \(HTTP 403" -- \
  as "$ALICE_KEY" principal create --tenant globex --kind client --name x --role client
check "tenant-admin sees its own tenant" 0 "^ID: +acme$" -- as "$ALICE_KEY" tenant show acme
check "tenant-admin creates a client (comma roles)" 0 "^Roles: +client,auditor$|^Roles: +auditor,client$" -- \
  as "$ALICE_KEY" principal create --tenant acme --kind client --name app --role client,auditor
APP=$(sed -n 's/^ID: *//p' "$tmp/stdout")
check "tenant-admin creates a tenant-admin" 0 "" -- as "$ALICE_KEY" principal create --tenant acme --kind user --name bob --role tenant-admin --json
BOB=$(field id)
check "principal list" 0 "^$APP +client +app " -- as "$ALICE_KEY" principal list --tenant acme
has "principal list shows bob" "^$BOB +user +bob +tenant-admin +active"
check "key of the wrong tenant (--auth-tenant)" 1 "API key was not accepted: not allowed \(HTTP 403" -- \
  as "$ALICE_KEY" tenant show acme --auth-tenant globex
check "key of the wrong tenant (COFFER_TENANT_ID)" 1 "API key was not accepted" -- \
  env COFFER_TENANT_ID=globex COFFER_GATEWAY_URL="$GW" COFFER_CA="$tmp/pki/ca.pem" COFFER_API_KEY="$ALICE_KEY" "$coffer" tenant show acme

# Revocation and disabling stop the key.
check "apikey revoke" 0 "^Status: +revoked$" -- as "$ADMIN" apikey revoke "$KID2" --reason "cli test"
check "a revoked key stops working" 1 "API key was not accepted: not allowed \(HTTP 403 Forbidden, revoked\)" -- \
  as "$ALICE_KEY2" tenant show acme
check "apikey list shows it revoked" 0 "^$KID2 .* revoked " -- as "$ADMIN" apikey list --principal "$ALICE"
check "bob's key" 0 "" -- as "$ALICE_KEY" apikey create --principal "$BOB" --out "$tmp/bob.key"
check "bob's key works" 0 "^Name: +Acme Corp$" -- as "$(cat "$tmp/bob.key")" tenant show acme
check "principal disable" 0 "^Status: +disabled$" -- as "$ALICE_KEY" principal disable "$BOB"
check "a disabled principal's key stops working" 1 "API key was not accepted: not allowed" -- \
  as "$(cat "$tmp/bob.key")" tenant show acme
check "principal show disabled" 0 "^Status: +disabled$" -- as "$ADMIN" principal show "$BOB"

# ---- client keys ---------------------------------------------------------------------------
check "clientkey register --generate" 0 "^Status: +registered$" -- \
  as "$ALICE_KEY" clientkey register --principal "$APP" --generate --out "$tmp/app-client.key"
X=$(sed -n 's/^X25519: *//p' "$tmp/stdout")
[ "$(stat -c %a "$tmp/app-client.key")" = 600 ] && ok "client key file is 0600" || nok "client key file is 0600"
grep -q "BEGIN PRIVATE KEY" "$tmp/app-client.key" && ok "client key file is PKCS#8 PEM" || nok "client key file is PKCS#8 PEM"
check "principal show has the client key" 0 "^Client key: +$X$" -- as "$ADMIN" principal show "$APP"
check "clientkey --generate never replaces a file" 3 "the file exists" -- \
  as "$ALICE_KEY" clientkey register --principal "$APP" --generate --out "$tmp/app-client.key"
check "clientkey malformed --key" 3 "--key must be 32 bytes" -- as "$ALICE_KEY" clientkey register --principal "$APP" --key AAAA
check "clientkey small-order --key refused by IAM" 1 "refused \(HTTP 400.*small order" -- \
  as "$ALICE_KEY" clientkey register --principal "$APP" --key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
check "clientkey refused: generated file removed" 1 "removed .*not registered" -- \
  as "$ALICE_KEY" clientkey register --principal p-0000000000000000 --generate --out "$tmp/orphan.key"
[ ! -e "$tmp/orphan.key" ] && ok "no orphan key file" || nok "no orphan key file"

# ---- tenant disable --------------------------------------------------------------------------
check "tenant disable" 0 "^Status: +disabled$" -- as "$ADMIN" tenant disable globex --reason "cli test"
check "tenant show disabled" 0 "^Disabled: +20[0-9-]+ [0-9:]+ UTC$" -- as "$ADMIN" tenant show globex

# ---- KMS: tenant keys, registry, join tokens ---------------------------------------------------
if [ $have_kms = 1 ]; then
  check "key create" 0 "^Current version: +1$" -- as "$ALICE_KEY" key create --tenant acme --rotate-every 30d
  has "key create rotation policy" "^Rotate every: +30d$"
  check "key rotate" 0 "^Current version: +2$" -- as "$ALICE_KEY" key rotate --tenant acme
  check "key policy" 0 "^Min decryption version: +2$" -- as "$ALICE_KEY" key policy --tenant acme --min-decryption-version 2 --rotate-every 0
  has "key policy manual rotation" "^Rotate every: +manual$"
  check "key revoke --version" 0 "^State: +revoked$" -- as "$ALICE_KEY" key revoke --tenant acme --version 1 --reason "cli test"
  check "key destroy" 0 "^State: +destroyed$" -- as "$ALICE_KEY" key destroy --tenant acme --version 1
  check "key show" 0 "^1 +destroyed " -- as "$ALICE_KEY" key show --tenant acme
  has "key show current version" "^2 +active "
  has "key show destroy reason" " coffer key destroy$"
  check "key show --json" 0 '"versions":\[' -- as "$ALICE_KEY" key show --tenant acme --json
  check "key admin of another tenant refused" 1 "not allowed \(HTTP 403" -- as "$ALICE_KEY" key show --tenant globex
  check "key policy lowering refused" 1 "refused \(HTTP 409" -- as "$ALICE_KEY" key policy --tenant acme --min-decryption-version 1
  check "key rewrap: value of another tenant" 1 "is of tenant 'acme', not 'globex'" -- \
    as "$ALICE_KEY" key rewrap --tenant globex --value AAAA
  check "key rewrap: malformed value" 3 "--value must be" -- as "$ALICE_KEY" key rewrap --tenant acme --value '!!'
  check "key rewrap needs datakey.use" 1 "lacks permission datakey.use" -- as "$ALICE_KEY" key rewrap --tenant acme --value AAAA
  check "tee list (empty)" 0 "^\(none\)$" -- as "$ALICE_KEY" tee list --tenant acme --status active
  check "tee list --json" 0 '^\{"tees":\[\]\}$' -- as "$ADMIN" tee list --json
  check "tee list of another tenant refused" 1 "not allowed \(HTTP 403.*another tenant" -- as "$ALICE_KEY" tee list --tenant globex
  check "tee show unknown" 1 "refused \(HTTP 404" -- as "$ADMIN" tee show tee_0123456789abcdef0123456789abcdef
  check "tee quarantine needs registry.admin" 1 "not allowed \(HTTP 403" -- \
    as "$ALICE_KEY" tee quarantine tee_0123456789abcdef0123456789abcdef --reason test
  check "join-token create" 0 "^Token: +cjt_" -- as "$ADMIN" join-token create --tenant acme --deployment demo --ttl 10m --uses 2
  has "join-token create warns" "store this join token now"
  has "join-token uses" "^Uses: +2$"
  check "join-token create --out --json" 0 '"deployment":"demo"' -- \
    as "$ADMIN" join-token create --tenant acme --deployment demo --out "$tmp/jt" --json
  grep -q '"token"' "$tmp/stdout" && nok "join token not echoed with --out" || ok "join token not echoed with --out"
  grep -q '^cjt_' "$tmp/jt" && ok "join token file" || nok "join token file"
  check "join-token for an unknown deployment" 1 "refused \(HTTP 404.*not in the KMS manifest" -- \
    as "$ADMIN" join-token create --tenant acme --deployment nope
  check "join-token needs registry.admin" 1 "not allowed \(HTTP 403" -- as "$ALICE_KEY" join-token create --tenant acme --deployment demo
else
  echo "SKIP - key / tee / join-token checks: cofferd kms is not built"
fi

# ---- deployments -------------------------------------------------------------------------------
if [ $have_attest = 1 ]; then
  check "deployment list" 0 "^demo +acme +echo,sha256 +$MEAS$" -- as "$ALICE_KEY" deployment list
  has "deployment list hash" "^Manifest hash: sha256:[0-9a-f]{64}$"
  check "deployment list --tenant" 0 "^gx +globex " -- as "$ALICE_KEY" deployment list --tenant globex
  grep -q "^demo " "$tmp/stdout" && nok "deployment list filters by tenant" || ok "deployment list filters by tenant"
  check "deployment list --json" 0 '"hash":"sha256:[0-9a-f]{64}"' -- as "$ALICE_KEY" deployment list --json
else
  echo "SKIP - deployment list: cofferd attest is not built"
fi

cp -r "$demo_bundle" "$tmp/bundle" && rm -f "$tmp/bundle/coffer.sig"
"$pki" ed25519 "$tmp/dev.key" >"$tmp/dev.pub" || nok "developer key"
check "deployment create" 0 "^Signed: +$tmp/bundle/coffer.sig$" -- \
  "$coffer" deployment create "$tmp/bundle" --key "$tmp/dev.key" --runtime "$coffer_tee" --tenant acme
has "deployment create prints the developer key" "^Developer key: +$(cat "$tmp/dev.pub")$"
has "deployment create entry: tenant" '^  "tenant": "acme",$'
has "deployment create entry: measurement" '^        "[0-9a-f]{96}"$'
MEASURE=$("$coffer" deployment measure "$tmp/bundle" --runtime "$coffer_tee" --json | sed -n 's/.*"measurement":"\([0-9a-f]*\)".*/\1/p')
has "deployment create measurement = deployment measure" "^Measurement: +$MEASURE$"
check "coffer-tee accepts the signed bundle" 0 "^deployment demo " -- \
  "$coffer_tee" verify-bundle --bundle "$tmp/bundle" --developer-key "$(cat "$tmp/dev.pub")"
check "coffer-tee refuses it with another developer key" 1 "signature" -- \
  "$coffer_tee" verify-bundle --bundle "$tmp/bundle" --developer-key "$("$coffer_tee" demo-key)"
check "deployment create --json" 0 '"deployment":\{"developer_key":"' -- \
  "$coffer" deployment create "$tmp/bundle" --key "$tmp/dev.key" --runtime "$coffer_tee" --tenant acme --json
check "deployment create: not a key" 3 "not a PKCS#8 PEM private key" -- \
  "$coffer" deployment create "$tmp/bundle" --key "$tmp/manifest.json" --runtime "$coffer_tee"
check "deployment create: not a bundle" 3 "coffer.json" -- \
  "$coffer" deployment create "$tmp/pki" --key "$tmp/dev.key" --runtime "$coffer_tee"
[ ! -e "$tmp/pki/coffer.sig" ] && ok "nothing signed for a bad bundle" || nok "nothing signed for a bad bundle"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
