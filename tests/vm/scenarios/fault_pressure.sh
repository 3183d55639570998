#!/usr/bin/env bash
# memgovd itself under memory pressure, on a real kernel without swap: it governs a cgroup
# in which two memory hogs (`tail /dev/zero`, which keeps the endless "line" it reads) grow
# until the kernel's OOM killer takes them, and are started again at once for
# $MEMGOV_FAULT_PRESSURE_S seconds (default 40), the last ones running to their own kill
# (about 100 s in all under TCG, 4 OOM kills): the guest runs out of memory over and over,
# its page cache squeezed out. (`stress-ng --vm` with more than MemAvailable did not
# do it here: stress-ng 0.15 ran 40 s with no OOM kill and no memory stall.) Checked as an
# operator would see it:
#   - memgovd's memory is locked (VmLck in /proc/PID/status near VmSize; MCL_ONFAULT shows
#     as locked mappings that are not all resident) and its oom_score_adj is -1000;
#   - it keeps sampling while the guest thrashes: memgov_samples_total advances by at least
#     half of one per interval (500 ms) over the thrash, and the scrapes taken during it
#     are shown with their rates;
#   - the kernel's OOM killer never picks it (it is alive, and no "Killed process ...
#     (memgovd)" in the kernel log);
#   - its RSS stays bounded: read every second, the largest is at most 8 MiB above the RSS
#     before the thrash.
# memgovd's log, the RSS series and the kernel's OOM lines go to $MEMGOV_VM_OUT.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory. Not on a host
# directly: it thrashes the whole machine.
set -euo pipefail

me=fault_pressure
fail() {
        echo "$me: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && tail -n 30 "$log" | sed 's/^/  memgovd: /' >&2
        exit 1
}
say() { echo "$me: [${SECONDS}s] $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
thrash_s=${MEMGOV_FAULT_PRESSURE_S:-40}
[ "$(id -u)" = 0 ] || fail "needs root"
[ "${MEMGOV_VM:-0}" = 1 ] || {
        echo "$me: thrashes the whole machine: runs only in the VM: skipped" >&2
        exit 77
}
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] || fail "$memgovd is not built"
command -v curl >/dev/null || {
        echo "$me: curl is missing: skipped" >&2
        exit 77
}
[ "$(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo)" = 0 ] || fail "the guest has swap"

parent=memgov-fpre.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
sock=$work/run/memgovd.sock
memgovd_pid="" hog="" rss_pid=""

cleanup() {
        local rc=$?
        set +e
        exec 2>/dev/null
        [ -n "$hog" ] && kill -KILL "$hog"
        [ -n "$rss_pid" ] && kill -KILL "$rss_pid"
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid"
        if [ -d "$pcg/hog" ]; then
                echo 1 >"$pcg/hog/cgroup.kill"
                for _ in $(seq 100); do rmdir "$pcg/hog" && break; sleep 0.1; done
        fi
        [ -d "$pcg" ] && rmdir "$pcg"
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

# This script and what it runs (curl, awk) are kept out of the OOM killer's first choices.
echo -900 >/proc/$$/oom_score_adj

mkdir "$pcg"
echo +memory >"$pcg/cgroup.subtree_control"
mkdir "$pcg/hog" # no memory.max: the pressure is the whole guest's
mkdir -p "$work/policies" "$work/state" "$work/run"
cat >"$work/policies/hog.json" <<EOF
{
  "service": "hog",
  "cgroup": "$parent/hog",
  "sample_interval": "500ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": { "warn": { "usage": "80%" }, "degrade": { "usage": "90%" },
              "critical": { "usage": "95%" }, "hold": "3s" },
  "memory_high": { "mode": "off" }
}
EOF
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$work/state", "rescan_interval": "1h" }
EOF
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        2>"$log" &
memgovd_pid=$!

metrics() { curl -sf --max-time "${1:-5}" --unix-socket "$sock" http://memgovd/metrics; }
samples() { # FILE
        awk '$1 ~ /^memgov_samples_total\{/ && index($1, "service=\"hog\"") { print $2; exit }' "$1"
}
t_end=$((SECONDS + 60))
s=""
while [ $SECONDS -lt $t_end ]; do
        metrics >"$work/m0" 2>/dev/null && s=$(samples "$work/m0") && [ -n "$s" ] && [ "$s" -ge 4 ] &&
                break
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited at start"
        sleep 0.2
done
[ -n "$s" ] && [ "$s" -ge 4 ] || fail "memgovd does not sample $parent/hog"

# ---- locked, and out of the OOM killer's reach ----
st=/proc/$memgovd_pid/status
lck=$(awk '/^VmLck:/ { print $2 }' "$st")
size=$(awk '/^VmSize:/ { print $2 }' "$st")
rss0=$(awk '/^VmRSS:/ { print $2 }' "$st")
adj=$(cat /proc/$memgovd_pid/oom_score_adj)
say "memgovd: VmLck ${lck} kB of VmSize ${size} kB, VmRSS ${rss0} kB, oom_score_adj $adj"
[ -n "$lck" ] && [ "$lck" -gt 0 ] || fail "memgovd's memory is not locked (VmLck ${lck:-?} kB)"
[ "$adj" = -1000 ] || fail "memgovd's oom_score_adj is $adj, not -1000"
# MCL_ONFAULT is not shown in /proc on 6.1 (smaps has no flag for VM_LOCKONFAULT), but its
# effect is: without it, mlockall(MCL_CURRENT) faults in every accessible locked mapping
# at once; with it, only the pages touched are resident. So: the locked, accessible
# mappings (not ---p) must be far from all resident.
read -r n_lo lo_kb lo_rss_kb <<<"$(awk '
        /^[0-9a-f]+-[0-9a-f]+ / { perms = $2; next }
        /^Size:/ { size = $2; next }
        /^Rss:/ { rss = $2; next }
        /^VmFlags:/ { if (perms != "---p" && / lo/) { n++; s += size; r += rss } }
        END { print n + 0, s + 0, r + 0 }' /proc/$memgovd_pid/smaps)"
say "memgovd: $n_lo accessible mappings locked, ${lo_kb} kB, of which ${lo_rss_kb} kB resident"
[ "$n_lo" -gt 0 ] || fail "no mapping of memgovd is locked (smaps VmFlags lo)"
[ "$lck" -ge $((size * 9 / 10)) ] || fail "only ${lck} kB of memgovd's ${size} kB are locked"
[ "$lo_rss_kb" -lt $((lo_kb * 9 / 10)) ] ||
        fail "memgovd's locked mappings are all resident: mlockall without MCL_ONFAULT?"
grep -q "cannot lock memgovd's memory" "$log" && fail "memgovd says it cannot lock its memory"

# ---- RSS every second, without forking (read -t on a fifo nobody writes is the sleep) ----
mkfifo "$work/tick"
(
        exec 9<>"$work/tick"
        while [ -r "$st" ]; do
                while read -r k v _; do
                        [ "$k" = VmRSS: ] && printf '%s %s\n' "$EPOCHREALTIME" "$v" && break
                done <"$st"
                read -r -t 1 -u 9 _ || true
        done
) >"$out/$me.rss.txt" 2>/dev/null &
rss_pid=$!

# ---- the thrash ----
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
dmesg -c >/dev/null 2>&1 || true
psi0=$(awk '/^full/ { sub("total=", "", $5); print $5 }' /proc/pressure/memory)
say "two tail /dev/zero hogs, restarted when killed (MemAvailable ${avail}M, no swap) for ${thrash_s}s"
t0=$EPOCHREALTIME
cp "$work/m0" "$work/m.start"
metrics >"$work/m.start" || fail "/metrics did not answer before the thrash"
bash -c 'echo $$ >"$1/cgroup.procs" && echo 0 >/proc/self/oom_score_adj || exit 1
        end=$((SECONDS + $2))
        for k in 1 2; do
                (while [ $SECONDS -lt $end ]; do tail /dev/zero; done) &
        done
        wait' hog "$pcg/hog" "$thrash_s" >"$out/$me.hog.log" 2>&1 &
hog=$!

# Scrapes during the thrash, each allowed 10 s (curl itself is not locked in memory).
prev_t=$t0 prev_s=$(samples "$work/m.start") n_ok=0 n_failed=0 k=0
while kill -0 "$hog" 2>/dev/null; do
        sleep 5
        k=$((k + 1))
        if metrics 10 >"$work/m.$k" 2>/dev/null; then
                now=$EPOCHREALTIME
                s=$(samples "$work/m.$k")
                awk -v a="$prev_t" -v b="$now" -v sa="$prev_s" -v sb="$s" -v k="$k" -v me="$me" \
                        'BEGIN { printf "%s:   scrape %d: %d samples in %.1fs (%.2f/s)\n", me, k, sb - sa, b - a, (sb - sa) / (b - a) }'
                prev_t=$now prev_s=$s n_ok=$((n_ok + 1))
        else
                n_failed=$((n_failed + 1))
                say "  scrape $k: /metrics did not answer within 10 s"
        fi
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died during the thrash"
done
wait "$hog" || true
hog=""
metrics 10 >"$work/m.end" || fail "/metrics did not answer after the thrash"
t1=$EPOCHREALTIME
kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died during the thrash"

dmesg 2>/dev/null | grep -E "Killed process|invoked oom-killer" >"$out/$me.oom.txt" || true
n_kills=$(grep -c "Killed process" "$out/$me.oom.txt" || true)
say "the kernel's OOM killer killed $n_kills processes during the thrash:"
{ grep "Killed process" "$out/$me.oom.txt" || true; } | sed 's/.*Killed process [0-9]*/  Killed process/; s/, anon-rss.*//' | sort | uniq -c | head -5
grep -q "Killed process [0-9]* (memgovd)" "$out/$me.oom.txt" && fail "the OOM killer killed memgovd"
# The guest did thrash: tasks stalled on memory (the system's PSI), or the OOM killer came.
psi1=$(awk '/^full/ { sub("total=", "", $5); print $5 }' /proc/pressure/memory)
stall_ms=$(((psi1 - psi0) / 1000))
say "the guest's memory stall over the thrash (PSI full): ${stall_ms} ms"
[ "$n_kills" -gt 0 ] || [ "$stall_ms" -ge 1000 ] ||
        fail "the guest did not thrash (no OOM kill, ${stall_ms} ms of memory stall)"

a=$(samples "$work/m.start") b=$(samples "$work/m.end")
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
want=$(awk -v e="$el" 'BEGIN { printf "%d", e / 0.5 / 2 }')
say "samples over the thrash: $((b - a)) in ${el}s (one per 500 ms would be $((want * 2))); scrapes answered $n_ok, not $n_failed"
[ $((b - a)) -ge "$want" ] || fail "memgovd sampled $((b - a)) times in ${el}s: less than half of one per 500 ms"
[ "$n_ok" -ge 1 ] || fail "/metrics never answered during the thrash"

kill -KILL "$rss_pid" 2>/dev/null || true
wait "$rss_pid" 2>/dev/null || true
rss_pid=""
rmax=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$out/$me.rss.txt")
n_rss=$(wc -l <"$out/$me.rss.txt")
say "memgovd's RSS: ${rss0} kB before, at most ${rmax} kB over $n_rss readings"
[ "$n_rss" -ge 5 ] || fail "only $n_rss RSS readings"
[ "$rmax" -le $((rss0 + 8192)) ] || fail "memgovd's RSS grew from ${rss0} kB to ${rmax} kB"

kill -TERM "$memgovd_pid"
wait "$memgovd_pid" || fail "memgovd did not exit cleanly on SIGTERM"
memgovd_pid=""
say "PASS: memgovd locked and OOM-protected, sampled through the thrash, never killed, RSS bounded"
