#!/bin/bash
# policies/policy.schema.json with a real JSON Schema validator: the schema itself is valid
# draft 2020-12, every example policy validates against it, and a few typical mistakes do
# not. (test_policy checks that its keys equal the validator's; this checks the rest.)
set -u

src=${MEMGOV_SOURCE_DIR:?}
# Debian's python3 with python3-jsonschema (tools/deps.sh); skip where it is missing
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -c 'from jsonschema import Draft202012Validator' 2>/dev/null; then
        echo "SKIP: python3-jsonschema with draft 2020-12 support is not installed"
        exit 77
fi

exec "$py" - "$src" <<'PY'
import glob, json, sys
from jsonschema import Draft202012Validator

src = sys.argv[1]
schema = json.load(open(f"{src}/policies/policy.schema.json"))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
failed = False

instances = [(f, json.load(open(f))) for f in sorted(glob.glob(f"{src}/policies/examples/*.json"))]
instances += [(f"schema example {i}", e) for i, e in enumerate(schema["examples"])]
for name, inst in instances:
    for e in v.iter_errors(inst):
        print(f"FAIL: {name}: {'/'.join(map(str, e.path))}: {e.message}")
        failed = True

bad = [
    {},
    {"cgroup": "/sys/fs/cgroup/a.service"},
    {"cgroup": "a/../b"},
    {"cgroup": "a", "levels": {"warn": {"etaa": "5m"}}},
    {"cgroup": "a", "levels": {"warn": {"usage": "80"}}},
    {"cgroup": "a", "sample_interval": "soon"},
    {"cgroup": "a", "memory_high": {"mode": "auto"}},
    {"cgroup": "a", "pprof": {"url": "localhost:6060"}},
    {"cgroup": "a", "pprof": {"url": "http://x", "on": ["warn", "warn"]}},
    {"cgroup": "a", "runtime": {"format": "expvar"}},
    {"cgroup": "a", "runtime": {"url": "http://x/debug/vars", "level": "ok"}},
    {"cgroup": "a", "collectors": [{"argv": ["./gcore"]}]},
    {"cgroup": "a", "webhooks": [{"url": "http://x", "secret_file": "rel.secret"}]},
    {"cgroup": "a", "service": "check out"},
]
for inst in bad:
    if v.is_valid(inst):
        print(f"FAIL: the schema accepts {json.dumps(inst)}")
        failed = True

print("policy_schema: " + ("FAILED" if failed else f"{len(instances)} valid, {len(bad)} rejected"))
sys.exit(1 if failed else 0)
PY
