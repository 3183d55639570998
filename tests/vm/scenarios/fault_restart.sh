#!/usr/bin/env bash
# memgovd SIGKILLed in the middle of an incident, on a real kernel: one incident bundle per
# episode, none lost, none doubled. A cgroup (memory.max 128M, the operator's memory.high
# 120M) runs the leaky example; the policy holds memory.high at 100M ("fixed") and has
# usage levels 25/40/50 %. In turn:
#   1. memgovd #1 lowers memory.high to 100M; the leak (72M at 4 MiB/s) reaches critical:
#      one bundle <state>/dumps/svc/<time>-incident-critical, with the critical entry and
#      the 100M in its decisions.jsonl;
#   2. SIGKILL while the leak holds at critical: memory.high stays 100M, the restore record
#      stays;
#   3. memgovd #2 restores 120M before its own first change, lowers it to 100M again and
#      finds the cgroup critical again: the same episode, so no second bundle; its log
#      says the incident continues;
#   4. the leak lets go: recovered; SIGKILL again;
#   5. memgovd #3; the leak comes back: a new episode, so a new bundle (two in all);
#   6. SIGTERM: 120M given back, no record left, no temporary dump left.
# (What governance_restore.sh asserts of the restore records alone is not repeated.)
# memgovd's logs and the bundles' decisions.jsonl go to $MEMGOV_VM_OUT.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=fault_restart
fail() {
        echo "$me: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && tail -20 "$log" | sed 's/^/  memgovd: /' >&2
        exit 1
}
say() { echo "$me: [${SECONDS}s] $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
leaky=$bin/examples/leaky/leaky
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] || fail "$memgovd is not built"
command -v curl >/dev/null && command -v python3 >/dev/null || {
        echo "$me: curl or python3 is missing: skipped" >&2
        exit 77
}
[ -x "$leaky" ] || {
        echo "$me: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
}

orig=$((120 << 20))
lowered=$((100 << 20))
name=memgov-fr.$$
cg=$root/$name
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
state=$work/state
dumps=$state/dumps/svc
memgovd_pid="" leak_pid="" log=""

cleanup() {
        local rc=$?
        set +e
        exec 2>/dev/null
        for p in $memgovd_pid $leak_pid; do kill -KILL $p; done
        if [ -d "$cg" ]; then
                echo 1 >"$cg/cgroup.kill"
                for _ in $(seq 100); do rmdir "$cg" && break; sleep 0.1; done
        fi
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$cg"
echo 128M >"$cg/memory.max"
echo $orig >"$cg/memory.high"
[ -e "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"
mkdir -p "$work/policies" "$state" "$work/run"
chmod 700 "$state"
cat >"$work/policies/svc.json" <<EOF
{
  "service": "svc",
  "cgroup": "$name",
  "sample_interval": "500ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": {
    "warn": { "usage": "25%" },
    "degrade": { "usage": "40%" },
    "critical": { "usage": "50%" },
    "hold": "3s"
  },
  "memory_high": { "mode": "fixed", "fixed": "100M", "min_interval": "1s" }
}
EOF
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$cg" \
        "$leaky" --mode idle --listen 127.0.0.1:16501 2>"$out/$me.leaky.log" &
leak_pid=$!
control() {
        curl -sf --max-time 5 -X POST "http://127.0.0.1:16501/control?$1" -o /dev/null ||
                fail "leaky refused /control?$1"
}
high() { cat "$cg/memory.high"; }
records() { find "$state/restore" -maxdepth 1 -type f 2>/dev/null | sort; }
bundles() { find "$dumps" -mindepth 1 -maxdepth 1 -name '*-incident-*' 2>/dev/null | sort; }
n_bundles() { bundles | grep -c . || true; }
alive() { kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died"; }
wait_for() { # SECONDS WHAT CMD...
        local s=$1 what=$2 t
        shift 2
        t=$((SECONDS + s))
        until "$@"; do
                [ -z "$memgovd_pid" ] || alive
                [ $SECONDS -lt $t ] || fail "$what (waited ${s}s)"
                sleep 0.2
        done
}
in_log() { grep -q "$1" "$log"; }
lowered_with_record() { [ "$(high)" = $lowered ] && [ -n "$(records)" ]; }

start_memgovd() { # N
        log=$out/$me.$1.log
        "$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" \
                --cgroup-root "$root" 2>"$log" &
        memgovd_pid=$!
        wait_for 60 "memgovd #$1 does not govern $name" in_log "svc: governing $name "
        wait_for 60 "memgovd #$1 did not lower memory.high to $lowered with a record (memory.high $(high))" \
                lowered_with_record
}
stop_memgovd() { # SIGNAL
        kill -"$1" "$memgovd_pid"
        rc=0
        wait "$memgovd_pid" 2>/dev/null || rc=$?
        memgovd_pid=""
}

wait_for 60 "leaky does not answer" curl -sf --max-time 2 http://127.0.0.1:16501/control -o /dev/null
[ "$(high)" = $orig ] || fail "cannot set memory.high to $orig: $(high)"

# 1. the first episode: critical, one bundle.
start_memgovd 1
control "mode=heap&rate=4MiB&max_total=72MiB"
wait_for 90 "memgovd #1 did not write a critical bundle" in_log "incident bundle (critical)"
grep -q "svc: $name entered critical" "$log" || fail "no critical entry in memgovd #1's log"
[ "$(n_bundles)" = 1 ] || fail "episode 1: $(n_bundles) bundles, not 1: $(bundles)"
b1=$(bundles)
say "1. critical with memory.high $(high): bundle $(basename "$b1")"
python3 - "$b1/decisions.jsonl" "$lowered" <<'EOF' || fail "bundle 1's decisions.jsonl lacks the critical entry or the 100M"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert any(e["action"] == "level" and e["level"] == "critical" for e in ev), ev
assert any(e["action"] == "memory_high" and str(e["bytes"]) == sys.argv[2] for e in ev), ev
EOF
cp "$b1/decisions.jsonl" "$out/$me.bundle1.decisions.jsonl"

# 2. SIGKILL in the middle of the episode (the leak holds its 72M).
sleep 2
stop_memgovd KILL
[ "$rc" = 137 ] || fail "memgovd #1 did not die of SIGKILL (status $rc)"
[ "$(high)" = $lowered ] && [ -n "$(records)" ] ||
        fail "after SIGKILL: memory.high $(high), records '$(records)'"
say "2. SIGKILL: memory.high $(high), record $(records | sed "s|$state/||")"

# 3. memgovd #2: restore, govern again, critical again: the same episode.
start_memgovd 2
restored_at=$(grep -n "memory.high of $name restored to $orig" "$log" | head -1 | cut -d: -f1 || true)
lowered_at=$(grep -n "memory.high of $name set to $lowered" "$log" | head -1 | cut -d: -f1 || true)
[ -n "$restored_at" ] && [ -n "$lowered_at" ] && [ "$restored_at" -lt "$lowered_at" ] ||
        fail "memgovd #2 did not restore $orig before its own change (lines '$restored_at', '$lowered_at')"
wait_for 60 "memgovd #2 did not find the cgroup critical again" in_log "svc: $name entered critical"
sleep 3 # a bundle would be written at the entry; give it time to show
[ "$(n_bundles)" = 1 ] || fail "after the restart in the same episode: $(n_bundles) bundles: $(bundles)"
grep -q "svc: $name: the incident of .* continues" "$log" ||
        fail "memgovd #2 does not say that the incident continues"
say "3. memgovd #2: $orig restored (log line $restored_at) before $lowered (line $lowered_at); critical again: $(grep -o "the incident of .* continues.*" "$log" | head -1)"

# 4. the leak lets go: recovered; SIGKILL again.
control "mode=idle&reset=true"
wait_for 60 "memgovd #2 did not see the recovery" in_log "svc: $name recovered"
sleep 1
stop_memgovd KILL
say "4. recovered, then SIGKILL: memory.high $(high), bundles $(n_bundles)"

# 5. memgovd #3 and a new episode: a new bundle.
start_memgovd 3
control "mode=heap&rate=4MiB&max_total=72MiB"
wait_for 90 "memgovd #3 did not write a bundle for the new episode" in_log "incident bundle (critical)"
[ "$(n_bundles)" = 2 ] || fail "after the second episode: $(n_bundles) bundles, not 2: $(bundles)"
say "5. new episode: bundles $(bundles | xargs -n1 basename | tr '\n' ' ')"
cp "$(bundles | tail -1)/decisions.jsonl" "$out/$me.bundle2.decisions.jsonl"

# 6. SIGTERM: everything given back, nothing half-written.
stop_memgovd TERM
[ "$rc" = 0 ] || fail "memgovd #3 exited $rc on SIGTERM"
[ "$(high)" = $orig ] || fail "after SIGTERM memory.high is $(high), not $orig"
[ -z "$(records)" ] || fail "records left after SIGTERM: $(records)"
tmp=$(find "$state/dumps" -name '.*.tmp' | head -3)
[ -z "$tmp" ] || fail "temporary dumps left: $tmp"
say "6. SIGTERM: memory.high $(high), no record, no temporary dump"
say "PASS: SIGKILL mid-incident: 120M restored then 100M again, one bundle for the episode, a new one for the next"
