#!/usr/bin/env bash
# End-to-end tests of `coffer evidence verify|show` on the real SEV-SNP evidence.
# Usage: test_evidence_cli.sh COFFER_BINARY TESTDATA_DIR
set -u
coffer=$1
td=$2/sev-snp
at=2025-09-01T00:00:00Z
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name expected_exit grep_pattern(or "") -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  "$@" >"$tmp/out" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "not ok - $name: exit $got, expected $want"; sed 's/^/    /' "$tmp/out" | head -20; fail=$((fail + 1)); return
  fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; then
    echo "not ok - $name: output lacks '$pat'"; sed 's/^/    /' "$tmp/out" | head -20; fail=$((fail + 1)); return
  fi
  echo "ok - $name"; pass=$((pass + 1))
}

r=$td/reports
for rep in milan-v2 milan-v2-tcbskew milan-v3 genoa-v3 turin-v5; do
  cert=$(ls "$r/$rep".vcek.* | head -1)
  check "verify $rep" 0 "^verified" -- "$coffer" evidence verify --report "$r/$rep.report.bin" --cert "$cert" --at $at
done
check "debug report rejected" 1 "policy has DEBUG set: debugging is not allowed" -- \
  "$coffer" evidence verify --report "$r/milan-v2-debug.report.bin" --cert "$r/milan-v2-debug.vcek.der" --at $at
check "VMPL 1 rejected by default policy" 1 "✗ vmpl" -- \
  "$coffer" evidence verify --report "$r/milan-v3-vlek.report.bin" --cert "$r/milan-v3-vlek.vlek.der" --at $at
check "tampered VCEK rejected" 1 "✗ chain" -- \
  "$coffer" evidence verify --report "$r/milan-v2-tcbskew.report.bin" --cert "$td/negative/tampered-vcek-legacy.der" --at $at
check "wrong cert for report" 1 "✗ signature" -- \
  "$coffer" evidence verify --report "$r/milan-v2.report.bin" --cert "$r/milan-v3.vcek.der" --at $at
check "time before validity" 1 "✗ " -- \
  "$coffer" evidence verify --report "$r/milan-v2.report.bin" --cert "$r/milan-v2.vcek.der" --at 2015-01-01T00:00:00Z
check "json output" 0 '"verified": true' -- \
  "$coffer" evidence verify --report "$r/genoa-v3.report.bin" --cert "$r/genoa-v3.vcek.pem" --at $at --json
check "binding mismatch" 1 "report_data does not bind key and nonce" -- \
  "$coffer" evidence verify --report "$r/milan-v2.report.bin" --cert "$r/milan-v2.vcek.der" --at $at \
  --nonce 0000000000000000000000000000000000000000000000000000000000000000 --key 0102030405060708
# A manifest whose only deployment allows another measurement.
cat >"$tmp/m.json" <<'JSON'
{"version": 1, "name": "cli-test",
 "platforms": {"sev-snp": {"roots": ["amd:milan"],
   "min_tcb": {"milan": {"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0}}}},
 "deployments": [{"name": "other", "tenant": "t1", "jobs": ["echo"],
   "developer_key": "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk",
   "platforms": {"sev-snp": {"measurements": [
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001"]}}}]}
JSON
check "measurement not in manifest" 1 "✗ measurement" -- \
  "$coffer" evidence verify --report "$r/milan-v3.report.bin" --cert "$r/milan-v3.vcek.der" --at $at --manifest "$tmp/m.json"
head -c 1183 "$r/milan-v2.report.bin" >"$tmp/short.bin"
check "deployment not in manifest" 1 "✗ deployment" -- \
  "$coffer" evidence verify --report "$r/milan-v3.report.bin" --cert "$r/milan-v3.vcek.der" --at $at \
  --manifest "$tmp/m.json" --deployment nosuch
check "genoa report, milan-only manifest" 1 "✗ chain" -- \
  "$coffer" evidence verify --report "$r/genoa-v3.report.bin" --cert "$r/genoa-v3.vcek.pem" --at $at --manifest "$tmp/m.json"
check "truncated report" 1 "✗ parse" -- \
  "$coffer" evidence verify --report "$tmp/short.bin" --cert "$r/milan-v2.vcek.der" --at $at
check "missing file" 3 "cannot open" -- "$coffer" evidence verify --report "$tmp/nope" --cert "$r/milan-v2.vcek.der"
check "usage: no cert" 2 "required" -- "$coffer" evidence verify --report "$r/milan-v2.report.bin"
check "usage: nonce without key" 2 "go together" -- \
  "$coffer" evidence verify --report "$r/milan-v2.report.bin" --cert "$r/milan-v2.vcek.der" --nonce 00
check "usage: bad time" 2 "RFC 3339" -- \
  "$coffer" evidence verify --report "$r/milan-v2.report.bin" --cert "$r/milan-v2.vcek.der" --at yesterday
check "show" 0 "debug ON" -- "$coffer" evidence show "$r/milan-v2-debug.report.bin"
check "show turin" 0 "fmc=" -- "$coffer" evidence show "$r/turin-v5.report.bin"
check "show json" 0 '"version": 3' -- "$coffer" evidence show "$r/milan-v3.report.bin" --json
check "show bad report" 3 "unsupported\|length\|bytes" -- "$coffer" evidence show "$tmp/short.bin"
check "unknown command" 2 "unknown command" -- "$coffer" frobnicate

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
