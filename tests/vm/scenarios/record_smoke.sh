#!/usr/bin/env bash
# memgovctl record on a real cgroup: a process holding 24M in a cgroup with memory.max=64M
# (made by `memgovctl run`) is recorded for 4 s at 250 ms; the trace has the contract's
# header and whole rows, t_ms rises, every row shows the limit that was set and a usage
# above zero, the usage includes the 24M, and the recording says why it ended.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory. Leaves the
# trace in $MEMGOV_VM_OUT when that is set.
set -euo pipefail

fail() {
        echo "record_smoke: FAIL: $*" >&2
        exit 1
}
say() { echo "record_smoke: $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
ctl=$bin/memgovctl
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$ctl" ] || fail "$ctl is not built"
if ! command -v stress-ng >/dev/null; then
        echo "record_smoke: stress-ng is not installed (apt-get install stress-ng): skipped" >&2
        exit 77
fi

parent=memgov-record-smoke.$$
cg=$root/$parent/hog
limit=$((64 << 20))
tmpdir=""
if [ -n "${MEMGOV_VM_OUT:-}" ]; then
        dir=$MEMGOV_VM_OUT
else
        tmpdir=$(mktemp -d)
        dir=$tmpdir
fi
csv=$dir/record_smoke.csv
rm -f "$csv"

cleanup() {
        if [ -d "$cg" ]; then
                echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
                for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
        fi
        [ -d "$root/$parent" ] && rmdir "$root/$parent" 2>/dev/null
        [ -n "$tmpdir" ] && rm -rf "$tmpdir"
        return 0
}
trap cleanup EXIT

# The hog maps 24M, touches it and sleeps (--vm-hang 0) until the cgroup is killed. The
# subshell's stderr, where bash reports the kill at cleanup, is dropped.
(
        "$ctl" run --cgroup-root "$root" --cgroup-parent "$parent" --name hog --memory-max 64M \
                --memory-swap-max 0 --quiet -- \
                stress-ng --vm 1 --vm-bytes 24M --vm-hang 0 --timeout 120s --temp-path /tmp \
                --quiet 2>"$dir/record_smoke.hog.log" || true
) 2>/dev/null &
for _ in $(seq 600); do
        [ -r "$cg/memory.current" ] && [ "$(cat "$cg/memory.current")" -ge $((24 << 20)) ] && break
        sleep 0.1
done
[ -r "$cg/memory.current" ] || fail "memgovctl run did not create $cg"
current=$(cat "$cg/memory.current")
[ "$current" -ge $((24 << 20)) ] || fail "the hog's cgroup holds only $current bytes after 60 s"

"$ctl" record --cgroup-root "$root" --cgroup "$parent/hog" --interval-ms 250 --duration-s 4 \
        -o "$csv" 2>"$dir/record_smoke.err" || fail "memgovctl record exited $?: $(cat "$dir/record_smoke.err")"
say "memgovctl record said: $(cat "$dir/record_smoke.err")"
grep -q 'the duration ended' "$dir/record_smoke.err" || fail "record did not say the duration ended"

header='t_ms,current,anon,file,max,high,ev_high,ev_max,ev_oom,ev_oom_kill,psi_some_us,psi_full_us'
[ -f "$csv" ] || fail "$csv was not written"
[ ! -e "$csv.tmp" ] || fail "$csv.tmp was left behind"
[ "$(head -n1 "$csv")" = "$header" ] || fail "header: $(head -n1 "$csv")"
rows=$(($(wc -l <"$csv") - 1))
# 4 s at 250 ms is 17 samples; allow a loaded machine to miss some ticks.
[ "$rows" -ge 8 ] || fail "$rows rows in 4 s at 250 ms"
# Every row: 12 cells, whole numbers (high may read "max"), t_ms rising, current above
# zero, max the limit set.
awk -F, -v limit=$limit '
        NR == 1 { next }
        NF != 12 { print "row " NR ": " NF " cells"; exit 1 }
        {
                for (i = 1; i <= 12; i++)
                        if ($i !~ /^[0-9]+$/ && !(i == 6 && $i == "max")) {
                                print "row " NR ", cell " i ": \"" $i "\""; exit 1 }
                if (NR > 2 && $1 + 0 <= last) { print "row " NR ": t_ms " $1 " after " last; exit 1 }
                last = $1 + 0
                if ($2 + 0 <= 0) { print "row " NR ": current " $2; exit 1 }
                if ($5 + 0 != limit) { print "row " NR ": max " $5 ", set " limit; exit 1 }
                if ($10 + 0 != 0) { print "row " NR ": ev_oom_kill " $10; exit 1 }
        }' "$csv" >"$dir/record_smoke.bad" || fail "$csv: $(cat "$dir/record_smoke.bad")"
rm -f "$dir/record_smoke.bad"
peak=$(awk -F, 'NR > 1 && $2 > p { p = $2 } END { print p + 0 }' "$csv")
[ "$peak" -ge $((24 << 20)) ] || fail "the trace's largest current is $peak; the hog holds 24M"
say "PASS: $rows rows, current up to $((peak >> 20))M, max $limit in every row"
