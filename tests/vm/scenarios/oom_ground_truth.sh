#!/usr/bin/env bash
# Ground truth on a real kernel: a memory hog in a cgroup with memory.max=64M and no swap
# is OOM-killed, memory.events counts the kill, memory.pressure reads as PSI lines, and a
# PSI trigger can be armed on it. Everything memgov's probe relies on, checked at the
# source. Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
#
# Writes memory.events, memory.pressure, memory.stat and the kernel's OOM report to
# $MEMGOV_VM_OUT when that is set.
set -euo pipefail

fail() {
        echo "oom_ground_truth: FAIL: $*" >&2
        exit 1
}
say() { echo "oom_ground_truth: $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"

cg=$root/memgov-oom-ground-truth.$$
hog_pid=""
cleanup() {
        [ -n "$hog_pid" ] && kill -KILL "$hog_pid" 2>/dev/null
        if [ -d "$cg" ]; then
                [ -e "$cg/cgroup.kill" ] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
                for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
        fi
        return 0
}
trap cleanup EXIT

mkdir "$cg"
echo 64M >"$cg/memory.max"
[ -e "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"
[ "$(cat "$cg/memory.max")" = $((64 << 20)) ] || fail "memory.max reads '$(cat "$cg/memory.max")', not 64M"

# memory.pressure: two lines, "some" and "full", each with avg10, avg60, avg300 and total.
psi_re='^(some|full) avg10=[0-9]+\.[0-9]{2} avg60=[0-9]+\.[0-9]{2} avg300=[0-9]+\.[0-9]{2} total=[0-9]+$'
check_pressure() { # check_pressure FILE
        local n=0 line
        [ -r "$1" ] || fail "$1 is missing (kernel without PSI, or psi=0?)"
        while IFS= read -r line; do
                [[ $line =~ $psi_re ]] || fail "$1: unexpected line '$line'"
                n=$((n + 1))
        done <"$1"
        [ "$n" = 2 ] || fail "$1: $n lines, expected some and full"
}
check_pressure "$cg/memory.pressure"

# A PSI trigger (150 ms of "some" stall within 1 s) is accepted on the cgroup's file; it
# belongs to the open file, so a successful write is the whole check.
exec 3<>"$cg/memory.pressure"
printf 'some 150000 1000000' >&3 || fail "writing a PSI trigger to $cg/memory.pressure failed"
exec 3>&-
say "PSI trigger 'some 150000 1000000' accepted by memory.pressure"

# The hog enters the cgroup before it allocates: 200M against a 64M limit.
if command -v stress-ng >/dev/null; then
        # --oomable: do not respawn the worker after the OOM kill, so stress-ng ends.
        # --temp-path: stress-ng insists on a writable one, and the cwd may not be.
        hog=(stress-ng --vm 1 --vm-bytes 200M --vm-keep --oomable --timeout 60s --quiet --temp-path /tmp)
else
        # tail keeps the last line of a file in memory; /dev/zero has no line end.
        hog=(tail /dev/zero)
fi
say "hog: ${hog[*]}"
t0=$(date +%s)
bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' hog "$cg" "${hog[@]}" &
hog_pid=$!
hog_rc=0
wait "$hog_pid" || hog_rc=$?
hog_pid=""
t1=$(date +%s)
say "hog ended with status $hog_rc after $((t1 - t0))s"
[ $((t1 - t0)) -lt 55 ] || fail "the hog ran $((t1 - t0))s: it was not OOM-killed in time"

events=$(cat "$cg/memory.events")
while IFS= read -r line; do echo "  memory.events: $line"; done <<<"$events"
oom_kill=$(awk '$1 == "oom_kill" { print $2 }' <<<"$events")
[ -n "$oom_kill" ] || fail "memory.events has no oom_kill line"
[ "$oom_kill" -ge 1 ] || fail "memory.events shows oom_kill $oom_kill after the hog ended; expected >= 1"
max_events=$(awk '$1 == "max" { print $2 }' <<<"$events")
[ "${max_events:-0}" -ge 1 ] || fail "memory.events shows max ${max_events:-?}; the limit was never hit"

check_pressure "$cg/memory.pressure"
sed 's/^/  memory.pressure: /' "$cg/memory.pressure"
[ -e "$cg/memory.peak" ] && say "memory.peak $(cat "$cg/memory.peak") (limit $((64 << 20)))"

if [ -n "${MEMGOV_VM_OUT:-}" ]; then
        for f in memory.events memory.pressure memory.stat; do
                cp "$cg/$f" "$MEMGOV_VM_OUT/oom_ground_truth.$f"
        done
        dmesg 2>/dev/null | grep -iE 'oom|killed process' >"$MEMGOV_VM_OUT/oom_ground_truth.dmesg" || true
fi
say "PASS: oom_kill $oom_kill, memory.pressure parses, PSI trigger accepted"
