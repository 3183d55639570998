#!/bin/bash
# memgovctl check-policy as an operator meets it: the shipped examples pass silently, and
# broken files give exit 1 with exactly the "FILE: PATH: message" lines expected.
set -u

bin=${MEMGOV_BINARY_DIR:?}/memgovctl
src=${MEMGOV_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

fail() {
        echo "FAIL: $*"
        failed=1
}

# run NAME EXPECTED_RC EXPECTED_STDERR ARGS...: run check-policy in $tmp, compare all
run() {
        local name=$1 want_rc=$2 want_err=$3 rc
        shift 3
        (cd "$tmp" && "$bin" check-policy "$@" >out 2>err)
        rc=$?
        [ "$rc" -eq "$want_rc" ] || fail "$name: exit $rc, expected $want_rc"
        [ -s "$tmp/out" ] && fail "$name: unexpected stdout: $(cat "$tmp/out")"
        if ! diff -u <(printf '%s' "$want_err") "$tmp/err" >"$tmp/diff"; then
                fail "$name: stderr differs"
                cat "$tmp/diff"
        fi
}

# Every example and the file it started from are valid: exit 0, no output at all.
run examples 0 "" "$src"/policies/examples/*.json

cat >"$tmp/typo.json" <<'EOF'
{
  "service": "checkout-api",
  "cgroup": "system.slice/checkout.service",
  "levels": {
    "warn": { "etaa": "10m", "usage": "80%" },
    "degrade": { "eta": "soon" }
  },
  "memory_high": { "mode": "auto" }
}
EOF
run "unknown key, bad duration, bad enum" 1 'typo.json: .levels.warn.etaa: unknown key; did you mean "eta"?
typo.json: .levels.degrade.eta: expected a duration like "30s" or "5m", got "soon"
typo.json: .memory_high.mode: expected one of "off", "fixed", "guard", got "auto"
' typo.json

cat >"$tmp/nocgroup.json" <<'EOF'
{ "service": "billing", "sample_interval": 1 }
EOF
run "required key" 1 'nocgroup.json: .cgroup: required (a path or glob relative to the cgroup root, e.g. "system.slice/app.service")
' nocgroup.json

cat >"$tmp/impossible.json" <<'EOF'
{
  "cgroup": "/sys/fs/cgroup/system.slice/app.service",
  "sample_interval": "1m",
  "levels": { "critical": { "eta": "5m", "usage": "99%" } },
  "webhooks": [ { "url": "https://hooks.example.com/memgov" } ]
}
EOF
run "impossible values" 1 'impossible.json: .cgroup: must be relative to the cgroup root: write "system.slice/app.service", without the leading '"'"'/'"'"'
impossible.json: .webhooks[0].secret_file: required for a webhook to "hooks.example.com": unsigned events may go only to 127.0.0.0/8 or [::1]
impossible.json: .levels.critical.eta: must be shorter than .levels.degrade.eta (3m, the default): levels tighten from warn to critical; got 5m
impossible.json: .sample_interval: must be at most a tenth of .forecast.window (5m, the default), so that a forecast holds 10 samples; got 1m
' impossible.json

printf '{\n  "cgroup": "a.service",\n  "levels": { "hold": "5s", },\n}\n' >"$tmp/comma.json"
run "syntax error with line and column" 1 "comma.json:3:27: invalid JSON: trailing comma before '}'; JSON allows none
" comma.json

# Several files: each is checked, the valid one stays silent, the exit status is 1.
cp "$src/policies/examples/batch-job.json" "$tmp/good.json"
run "mixed good and bad" 1 'nocgroup.json: .cgroup: required (a path or glob relative to the cgroup root, e.g. "system.slice/app.service")
' good.json nocgroup.json

# Clashes between files are found as memgovd finds them in its directory.
printf '{ "service": "billing", "cgroup": "system.slice/billing.service" }\n' >"$tmp/billing.json"
printf '{ "service": "billing", "cgroup": "system.slice/billing-v2.service" }\n' >"$tmp/billing-v2.json"
run "same service in two files" 1 'billing-v2.json: .service: "billing" is already the service of billing.json; service names must be unique
' billing.json billing-v2.json
run "one file given twice is no clash" 0 "" billing.json billing.json

run "missing file" 1 'absent.json: cannot read: No such file or directory
' absent.json

# Usage errors are exit 2, not 1: a script can tell "bad policy" from "bad call".
(cd "$tmp" && "$bin" check-policy >out 2>err)
rc=$?
[ "$rc" -eq 2 ] || fail "no arguments: exit $rc, expected 2"
grep -q '^Usage: memgovctl check-policy FILE' "$tmp/err" || fail "no arguments: no usage on stderr"

[ "$failed" -eq 0 ] && echo "check_policy: all cases passed"
exit "$failed"
