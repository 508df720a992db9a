#!/usr/bin/env bash
# The simulated secure processor's evidence goes through the same verifier as real
# hardware: verified under a manifest that pins the simulated root, refused under the
# default policy (AMD roots only), with launch options and bundle changes visible.
# Usage: test_simulator_cli.sh COFFER COFFER_LAUNCH SIM_HELPER
set -u
coffer=$1 launch=$2 helper=$3
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name expected_exit pattern -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  "$@" >"$tmp/log" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/log"; }; then
    echo "not ok - $name (exit $got, expected $want, pattern '$pat')"; sed 's/^/    /' "$tmp/log" | head -30
    fail=$((fail + 1)); return
  fi
  echo "ok - $name"; pass=$((pass + 1))
}
hexrep() { printf "%0.s$1" $(seq "$2"); }

mkdir -p "$tmp/bundle" "$tmp/out" "$tmp/outdbg"
echo '{"name":"demo","version":"1"}' >"$tmp/bundle/coffer.json"

# report_data = SHA-512("coffer/v1 evidence" || 0x00 || key || nonce) (DESIGN.md §3 "Binding").
key=$(hexrep 22 32) nonce=$(hexrep 33 32)
{ printf 'coffer/v1 evidence\0'; printf "$(hexrep '\x22' 32)"; printf "$(hexrep '\x33' 32)"; } >"$tmp/bind.bin"
rd=$(openssl dgst -sha512 -binary "$tmp/bind.bin" | od -An -tx1 -v | tr -d ' \n')
[ ${#rd} -eq 128 ] || { echo "cannot compute binding"; exit 1; }

check "launch and get a report" 0 "" -- "$launch" --state "$tmp/state" --bundle "$tmp/bundle" -- "$helper" "$tmp/out" "report:$rd"
check "debug launch" 0 "" -- "$launch" --state "$tmp/state" --bundle "$tmp/bundle" --debug -- "$helper" "$tmp/outdbg" "report:$rd"
meas=$("$launch" --bundle "$tmp/bundle" --measure-only -- "$helper" 2>/dev/null | sed -n 's/.*"measurement":"\([0-9a-f]*\)".*/\1/p')
[ ${#meas} -eq 96 ] || { echo "no measurement"; exit 1; }
cli_meas=$("$coffer" deployment measure "$tmp/bundle" --runtime "$helper" --json | sed -n 's/.*"measurement":"\([0-9a-f]*\)".*/\1/p')
if [ "$cli_meas" = "$meas" ]; then echo "ok - coffer deployment measure reproduces the launcher's measurement"; pass=$((pass + 1));
else echo "not ok - coffer deployment measure gave '$cli_meas', launcher '$meas'"; fail=$((fail + 1)); fi
chain=$("$launch" --state "$tmp/state" --print-chain 2>/dev/null | awk '{printf "%s\\n", $0}')

manifest() { # $1 = roots JSON, $2 = measurement
  cat <<JSON
{"version": 1, "name": "sim-test",
 "platforms": {"sev-snp": {"roots": $1,
   "min_tcb": {"milan": {"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0}}}},
 "deployments": [{"name": "demo", "tenant": "demo-tenant", "jobs": ["echo"],
   "developer_key": "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk",
   "platforms": {"sev-snp": {"measurements": ["$2"]}}}]}
JSON
}
manifest "[{\"name\": \"coffer-sim\", \"product\": \"milan\", \"chain\": \"$chain\"}]" "$meas" >"$tmp/dev.json"
manifest '["amd:milan"]' "$meas" >"$tmp/prod.json"
manifest "[{\"name\": \"coffer-sim\", \"product\": \"milan\", \"chain\": \"$chain\"}]" "$(hexrep 00 47)01" >"$tmp/other.json"

V=("$coffer" evidence verify --report "$tmp/out/0.report" --cert "$tmp/out/0.cert")
check "simulated evidence verifies under a manifest pinning the simulated root" 0 "^verified" -- \
  "${V[@]}" --manifest "$tmp/dev.json" --deployment demo --key "$key" --nonce "$nonce"
check "refused by the default policy (AMD roots only)" 1 "simulated root, which this manifest does not trust" -- "${V[@]}"
check "refused by a production manifest" 1 "simulated root, which this manifest does not trust" -- \
  "${V[@]}" --manifest "$tmp/prod.json"
check "other measurement refused" 1 "✗ measurement" -- "${V[@]}" --manifest "$tmp/other.json"
check "binding to another nonce refused" 1 "report_data does not bind key and nonce" -- \
  "${V[@]}" --manifest "$tmp/dev.json" --key "$key" --nonce "$(hexrep 44 32)"
check "debug launch refused" 1 "debugging is not allowed" -- \
  "$coffer" evidence verify --report "$tmp/outdbg/0.report" --cert "$tmp/outdbg/0.cert" --manifest "$tmp/dev.json"
echo changed >>"$tmp/bundle/coffer.json"
meas2=$("$launch" --bundle "$tmp/bundle" --measure-only -- "$helper" 2>/dev/null | sed -n 's/.*"measurement":"\([0-9a-f]*\)".*/\1/p')
if [ -n "$meas2" ] && [ "$meas2" != "$meas" ]; then echo "ok - changed bundle changes the measurement"; pass=$((pass + 1));
else echo "not ok - changed bundle kept measurement"; fail=$((fail + 1)); fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
