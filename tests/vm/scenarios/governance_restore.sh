#!/usr/bin/env bash
# Restore on a real kernel: a cgroup whose memory.high is 200M (the operator's) is governed
# by memgovd with a fixed policy of 100M, so memgovd lowers it at once and keeps a restore
# record of the 200M in its state dir. Then, in turn:
#   1. SIGTERM:            memgovd exits 0, memory.high is 200M again, no record is left;
#   2. SIGKILL + restart:  memory.high stays 100M with the record in place; the next
#                          memgovd (same policy) restores 200M before anything else (its
#                          log says so before its own first change), then governs again;
#                          its SIGTERM leaves 200M and no record;
#   3. SIGKILL + `memgovctl restore`: --dry-run changes nothing and says what it would do;
#                          then `memgovctl restore SERVICE` puts 200M back, no record left.
# Every step prints what memory.high read and which records were in the state dir.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=governance_restore
fail() {
        echo "$me: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && sed 's/^/  memgovd: /' "$log" >&2
        exit 1
}
say() { echo "$me: $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
ctl=$bin/memgovctl
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] && [ -x "$ctl" ] || fail "$memgovd or $ctl is not built"

orig=$((200 << 20))
lowered=$((100 << 20))
name=memgov-gov-restore.$$
cg=$root/$name
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
state=$work/state
memgovd_pid="" sleeper=""
log=""

# On any exit: stop what we started, remove the cgroups, keep the exit status. No errexit
# here (a cgroup still busy must not turn a pass into a failure), and bash's "Killed"
# notices of the jobs stopped here are expected.
cleanup() {
        local rc=$?
        set +e
        exec 2>/dev/null
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid" 2>/dev/null
        [ -n "$sleeper" ] && kill -KILL "$sleeper" 2>/dev/null
        if [ -d "$cg" ]; then
                echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
                for _ in $(seq 100); do rmdir "$cg" && break; sleep 0.1; done
        fi
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$cg"
echo 400M >"$cg/memory.max"
echo $orig >"$cg/memory.high"
bash -c 'echo $$ >"$1/cgroup.procs" && exec sleep 100000' sleeper "$cg" &
sleeper=$!

mkdir -p "$work/policies" "$state" "$work/run"
cat >"$work/policies/svc.json" <<EOF
{
  "cgroup": "$name",
  "sample_interval": "250ms",
  "memory_high": { "mode": "fixed", "fixed": "100M", "min_interval": "1s" }
}
EOF
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

high() { cat "$cg/memory.high"; }
records() { find "$state/restore" -maxdepth 1 -type f 2>/dev/null | sort; }
show() { say "$1: memory.high $(high), records: $(records | sed "s|$state/||" | tr '\n' ' ')"; }

# start_memgovd N: a memgovd whose log is $out/$me.N.log; waits until it has lowered
# memory.high to 100M and its record is in place.
start_memgovd() {
        log=$out/$me.$1.log
        "$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" \
                --cgroup-root "$root" 2>"$log" &
        memgovd_pid=$!
        for _ in $(seq 300); do
                [ "$(high)" = $lowered ] && [ -n "$(records)" ] && return 0
                kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd ($1) exited early"
                sleep 0.1
        done
        fail "memgovd ($1) did not lower memory.high to $lowered with a record (memory.high $(high))"
}
stop_memgovd() { # SIGNAL
        kill -"$1" "$memgovd_pid"
        rc=0
        wait "$memgovd_pid" 2>/dev/null || rc=$?
        memgovd_pid=""
}
check_restored() { # WHAT
        [ "$(high)" = $orig ] || fail "$1: memory.high is $(high), not the original $orig"
        [ -z "$(records)" ] || fail "$1: records left in the state dir: $(records)"
}

show "before memgovd"
[ "$(high)" = $orig ] || fail "cannot set memory.high to $orig: $(high)"

# 1. SIGTERM
start_memgovd sigterm
show "1. governed"
rec=$(records)
[ "$(echo "$rec" | wc -l)" = 1 ] || fail "expected one record, got: $rec"
python3 - "$rec" "$name" "$orig" <<'EOF' || fail "the record does not hold the original: $(cat "$rec")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cgroup"] == sys.argv[2] and r["service"] == "svc", r
assert str(r["memory_high"]) == sys.argv[3], r
assert r["backend"] == "cgroupfs", r
EOF
cp "$rec" "$out/$me.record.json"
stop_memgovd TERM
[ "$rc" = 0 ] || fail "memgovd exited $rc on SIGTERM"
show "1. after SIGTERM"
check_restored "after SIGTERM"
grep -q "memory.high of $name restored to $orig" "$log" || fail "the SIGTERM log does not say it restored"

# 2. SIGKILL, then a new memgovd with the same policy
start_memgovd sigkill-restart-1
stop_memgovd KILL
[ "$rc" = 137 ] || fail "memgovd did not die of SIGKILL (status $rc)"
show "2. after SIGKILL"
[ "$(high)" = $lowered ] || fail "after SIGKILL memory.high is $(high), not memgov's $lowered"
[ -n "$(records)" ] || fail "after SIGKILL no record is left for the next start"
start_memgovd sigkill-restart-2
restored_at=$(grep -n "memory.high of $name restored to $orig" "$log" | head -1 | cut -d: -f1)
lowered_at=$(grep -n "memory.high of $name set to $lowered" "$log" | head -1 | cut -d: -f1)
[ -n "$restored_at" ] || fail "the restarted memgovd did not restore $orig"
[ -n "$lowered_at" ] && [ "$restored_at" -lt "$lowered_at" ] ||
        fail "the restarted memgovd changed memory.high before it restored the original"
grep -q "start: memory.high restored for 1 cgroup" "$log" || fail "no start restore summary"
say "2. the restarted memgovd restored $orig (log line $restored_at) before its own change (line $lowered_at)"
stop_memgovd TERM
[ "$rc" = 0 ] || fail "the restarted memgovd exited $rc on SIGTERM"
show "2. after the restart's SIGTERM"
check_restored "after SIGKILL, restart and SIGTERM"

# 3. SIGKILL, then memgovctl restore by hand
start_memgovd sigkill-ctl
stop_memgovd KILL
show "3. after SIGKILL"
[ "$(high)" = $lowered ] || fail "after SIGKILL memory.high is $(high), not memgov's $lowered"
"$ctl" restore --all --dry-run --state-dir "$state" --cgroup-root "$root" >"$out/$me.dry-run.txt" 2>&1 ||
        fail "memgovctl restore --dry-run failed: $(cat "$out/$me.dry-run.txt")"
sed 's/^/  /' "$out/$me.dry-run.txt"
grep -q "would restore memory.high of $name to $orig" "$out/$me.dry-run.txt" ||
        fail "the dry run does not say what it would write"
[ "$(high)" = $lowered ] && [ -n "$(records)" ] || fail "the dry run changed something"
"$ctl" restore svc --state-dir "$state" --cgroup-root "$root" >"$out/$me.restore.txt" 2>&1 ||
        fail "memgovctl restore svc failed: $(cat "$out/$me.restore.txt")"
sed 's/^/  /' "$out/$me.restore.txt"
show "3. after memgovctl restore svc"
check_restored "after SIGKILL and memgovctl restore"

say "PASS: 200M back after SIGTERM, after SIGKILL + restart (restored before governing), after SIGKILL + memgovctl restore"
