#!/usr/bin/env bash
# memgovctl replay over the small committed traces: a leak that ends in an OOM kill and a
# steady GC sawtooth. The JSON report has exactly the contract's fields (DESIGN.md §3) with
# their meaning (the OOM from ev_oom_kill, levels entered in order before it, leads = OOM −
# first entry, no false alarm, memory.high lowered by the guard ahead of the OOM and not at
# all under mode off), the sawtooth gives no transition at all, the human table shows the
# same transitions and memory.high changes, and usage errors say what is wrong.
set -euo pipefail

ctl=${MEMGOV_BINARY_DIR:?}/memgovctl
traces=${MEMGOV_SOURCE_DIR:?}/tests/traces
[ -x "$ctl" ] || { echo "replay.sh: $ctl not built" >&2; exit 1; }

tmp=$(mktemp -d /tmp/memgov-replay.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat >"$tmp/policy.json" <<'EOF'
{
  "cgroup": "replay.slice/*",
  "forecast": { "window": "5m", "horizon": "30m" },
  "levels": {
    "warn": { "eta": "10m" },
    "degrade": { "eta": "3m" },
    "critical": { "eta": "45s", "usage": "97%" },
    "hold": "60s"
  }
}
EOF

"$ctl" replay --policy "$tmp/policy.json" --json "$traces/leak-to-oom.csv" >"$tmp/leak.json" ||
        fail "replay of leak-to-oom.csv failed"
python3 - "$tmp/leak.json" "$traces/leak-to-oom.csv" <<'EOF' || fail "leak-to-oom.csv: report does not follow the contract"
import json, sys
d = json.load(open(sys.argv[1]))
levels = ["warn", "degrade", "critical"]
assert set(d) == {"trace", "samples", "duration_s", "oom_at_s", "first", "lead_s",
                  "false_alarms", "transitions", "memory_high"}, sorted(d)
assert d["trace"] == "leak-to-oom.csv"
assert d["samples"] == 891 and d["duration_s"] == 890.0
# ground truth: the first row where ev_oom_kill grows
assert d["oom_at_s"] == 880.0, d["oom_at_s"]
for k in ("first", "lead_s", "false_alarms"):
    assert set(d[k]) == set(levels), (k, d[k])
# each level entered before the OOM, in order, and the leads are OOM - first
firsts = [d["first"][l] for l in levels]
assert all(f is not None for f in firsts) and firsts == sorted(firsts), firsts
for l in levels:
    assert abs(d["lead_s"][l] - (d["oom_at_s"] - d["first"][l])) < 1e-6
    assert d["false_alarms"][l] == 0
# a 0.1%/s leak from 40%: critical (ETA 45 s) at least 30 s ahead, warn minutes ahead
assert d["lead_s"]["critical"] >= 30, d["lead_s"]
assert d["lead_s"]["warn"] >= 180, d["lead_s"]
for t in d["transitions"]:
    assert set(t) == {"t_s", "from", "to", "eta_s", "reason"}, t
    assert t["reason"] in ("eta", "usage", "psi_some", "psi_full", "high_rate", "max_rate",
                           "hold_expired", "livelock", "livelock_over"), t
    assert t["eta_s"] is None or t["eta_s"] >= 0
ups = [t for t in d["transitions"] if t["t_s"] <= d["oom_at_s"]]
assert [t["to"] for t in ups] == levels, ups
assert ups[0]["from"] == "ok" and ups[0]["reason"] == "eta"
# the policy's memory_high mode is guard (the default): memory.high goes down before the
# OOM, below the trace's memory.max (536870912), never below what the leak already holds
mh = d["memory_high"]
assert mh, "no memory.high change under the guard"
for m in mh:
    assert set(m) == {"t_s", "bytes", "cause"}, m
assert [m["t_s"] for m in mh] == sorted(m["t_s"] for m in mh), mh
assert mh[0]["cause"] == "guard", mh
assert mh[0]["t_s"] < d["oom_at_s"], mh
assert isinstance(mh[0]["bytes"], int) and 0 < mh[0]["bytes"] < 536870912, mh
assert mh[0]["bytes"] % 4096 == 0, mh
# engaged at 1.5 x the 2 min budget: after warn (10 min), before critical (45 s)
assert d["first"]["warn"] < mh[0]["t_s"] < d["first"]["critical"], (mh, d["first"])
# the guard's floor is the working set: at least the trace's anon at that time
anon = {}
for line in open(sys.argv[2]).read().splitlines()[1:]:
    f = line.split(",")
    anon[int(f[0]) / 1000] = int(f[2])
assert mh[0]["bytes"] >= anon[mh[0]["t_s"]], (mh[0], anon[mh[0]["t_s"]])
EOF

# the same leak with memory_high off: the same levels, no memory.high change
python3 - "$tmp/policy.json" "$tmp/policy-off.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["memory_high"] = {"mode": "off"}
json.dump(p, open(sys.argv[2], "w"))
EOF
"$ctl" replay --policy "$tmp/policy-off.json" --json "$traces/leak-to-oom.csv" >"$tmp/off.json" ||
        fail "replay with memory_high off failed"
python3 - "$tmp/leak.json" "$tmp/off.json" <<'EOF' || fail "memory_high off: expected no change"
import json, sys
guard, off = (json.load(open(f)) for f in sys.argv[1:3])
assert off["memory_high"] == [], off["memory_high"]
assert off["first"] == guard["first"], (off["first"], guard["first"])
EOF

"$ctl" replay --policy "$tmp/policy.json" --json "$traces/sawtooth-steady.csv" >"$tmp/saw.json" ||
        fail "replay of sawtooth-steady.csv failed"
python3 - "$tmp/saw.json" <<'EOF' || fail "sawtooth-steady.csv: expected no OOM and no alarm"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["oom_at_s"] is None
assert d["transitions"] == []
assert all(v is None for v in d["first"].values())
assert all(v is None for v in d["lead_s"].values())
assert all(v == 0 for v in d["false_alarms"].values())
EOF

# the human table: the same transitions, and the summary
"$ctl" replay --policy "$tmp/policy.json" "$traces/leak-to-oom.csv" >"$tmp/leak.txt" ||
        fail "human replay failed"
grep -q '^leak-to-oom.csv: 891 samples over 890.0 s, OOM at 880.0$' "$tmp/leak.txt" ||
        fail "no header line: $(cat "$tmp/leak.txt")"
grep -Eq 'ok +-> warn +eta' "$tmp/leak.txt" || fail "no ok -> warn row: $(cat "$tmp/leak.txt")"
grep -Eq '^critical +[0-9.]+ +[0-9.]+ +0$' "$tmp/leak.txt" ||
        fail "no critical summary row: $(cat "$tmp/leak.txt")"
first_high=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["memory_high"][0]; print("%.1f %d %s" % (m["t_s"], m["bytes"], m["cause"]))' "$tmp/leak.json")
read -r high_t high_b high_c <<<"$first_high"
grep -Eq "^ +$high_t +$high_b +$high_c\$" "$tmp/leak.txt" ||
        fail "no memory.high row '$first_high': $(cat "$tmp/leak.txt")"
"$ctl" replay --policy "$tmp/policy-off.json" "$traces/leak-to-oom.csv" | grep -q 'memory.high' &&
        fail "memory_high off: the human report lists memory.high changes"
"$ctl" replay --policy "$tmp/policy.json" "$traces/sawtooth-steady.csv" | grep -q 'stayed ok' ||
        fail "the sawtooth's human report does not say it stayed ok"

# usage errors: exit 2 with a reason; unreadable inputs: exit 1 naming the file
set +e
"$ctl" replay "$traces/leak-to-oom.csv" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- '--policy FILE is required' "$tmp/err" || fail "missing --policy"
"$ctl" replay --policy "$tmp/policy.json" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q 'TRACE.csv is required' "$tmp/err" || fail "missing trace"
"$ctl" replay --policy "$tmp/policy.json" "$tmp/none.csv" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'none.csv' "$tmp/err" || fail "missing trace file: $(cat "$tmp/err")"
printf 't_ms,current\n0,1\n' >"$tmp/bad.csv"
"$ctl" replay --policy "$tmp/policy.json" "$tmp/bad.csv" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'bad.csv' "$tmp/err" || fail "trace without max: $(cat "$tmp/err")"
set -e
"$ctl" replay --help | grep -q 'Example' || fail "--help has no example"
echo "replay.sh: ok"
