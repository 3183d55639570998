#!/usr/bin/env bash
# memgovd end to end on a real kernel: it governs a cgroup (memory.max=96M, no swap) in
# which the leaky example service leaks heap at 4 MiB/s until the kernel OOM-kills it.
# Checked as an operator would: /metrics over the Unix socket (curl) matches the cgroup's
# memory.current within a sample; the level rises before the OOM kill and the log says
# each transition before the kill; the first level entry captured a heap profile from
# leaky's pprof; SIGTERM ends memgovd with status 0, its socket removed.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory. Writes
# memgovd's log, the last /metrics and the cgroup's memory.events to $MEMGOV_VM_OUT when
# that is set.
set -euo pipefail

fail() {
        echo "memgovd_smoke: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && sed 's/^/  memgovd: /' "$log" >&2
        exit 1
}
say() { echo "memgovd_smoke: $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
leaky=$bin/examples/leaky/leaky
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] || fail "$memgovd is not built"
command -v curl >/dev/null || {
        echo "memgovd_smoke: curl is missing (apt-get install curl): skipped" >&2
        exit 77
}
if [ ! -x "$leaky" ]; then
        echo "memgovd_smoke: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
fi

name=memgov-smoke.$$
cg=$root/$name
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/memgovd_smoke.log
sock=$work/run/memgovd.sock
port=16060
interval_ms=250
memgovd_pid=""
leaky_pid=""

cleanup() {
        [ -n "$leaky_pid" ] && kill -KILL "$leaky_pid" 2>/dev/null
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid" 2>/dev/null
        if [ -d "$cg" ]; then
                echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
                for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
        fi
        [ -n "${state_mounted:-}" ] && umount "$state" 2>/dev/null
        rm -rf "$work"
        return 0
}
trap cleanup EXIT

mkdir "$cg"
echo 96M >"$cg/memory.max"
[ -e "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"

# Levels by usage and by ETA (a 4 s window: the forecast is known after 2 s); memory.high
# is left alone so that the kernel's OOM kill comes; each level entry captures the heap.
# The state dir (dumps) on a tmpfs of its own: the guest's /tmp is smaller than the dump
# store's free-space floor (512M), and the 9p out share refuses RENAME_NOREPLACE.
state=$work/state
mkdir -p "$work/policies" "$state"
mount -t tmpfs -o size=2g,mode=0700 memgov-smoke-state "$state" || fail "cannot mount a tmpfs on $state"
state_mounted=1
cat >"$work/policies/leaky.json" <<EOF
{
  "cgroup": "$name",
  "sample_interval": "${interval_ms}ms",
  "forecast": { "window": "4s", "horizon": "5m" },
  "levels": {
    "warn": { "eta": "20s", "usage": "50%" },
    "degrade": { "eta": "10s", "usage": "75%" },
    "critical": { "eta": "4s", "usage": "90%" },
    "hold": "5m"
  },
  "memory_high": { "mode": "off" },
  "pprof": { "url": "http://127.0.0.1:$port/debug/pprof", "on": ["warn", "degrade", "critical"],
             "kinds": ["heap"], "cooldown": "0s" }
}
EOF
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        2>"$log" &
memgovd_pid=$!

# metric NAME: the value of NAME{service="leaky",cgroup=...} in a fresh scrape ("" if absent).
scrape() { curl -sf --max-time 5 --unix-socket "$sock" http://memgovd/metrics; }
metric() {
        scrape | awk -v s="$1{service=\"leaky\",cgroup=\"$name\"}" '$1 == s { print $2 }'
}

# leaky joins the cgroup before it starts; idle at first, so that memory stands still.
bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$cg" \
        "$leaky" --mode idle --listen 127.0.0.1:$port 2>"$work/leaky.log" &
leaky_pid=$!

for _ in $(seq 200); do
        n=$(metric memgov_samples_total 2>/dev/null || true)
        [ -n "$n" ] && [ "$n" -ge 4 ] && curl -sf --max-time 2 http://127.0.0.1:$port/control >/dev/null &&
                break
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early"
        sleep 0.1
done
[ -n "${n:-}" ] && [ "$n" -ge 4 ] || fail "memgovd did not sample $name (samples: ${n:-none})"
say "memgovd governs $name ($n samples); leaky is up"

# /metrics against the file, leaky idle: the last sample is at most one interval old, and
# an idle Go process moves memory.current by a few pages at most.
c0=$(cat "$cg/memory.current")
m=$(metric memgov_memory_current_bytes)
c1=$(cat "$cg/memory.current")
[ -n "$m" ] || fail "/metrics has no memgov_memory_current_bytes for $name"
lo=$(( (c0 < c1 ? c0 : c1) - (1 << 20) ))
hi=$(( (c0 > c1 ? c0 : c1) + (1 << 20) ))
[ "$m" -ge "$lo" ] && [ "$m" -le "$hi" ] ||
        fail "/metrics says memory.current $m, the file $c0..$c1"
say "/metrics memgov_memory_current_bytes $m, memory.current $c0..$c1"
mx=$(metric memgov_memory_max_bytes)
[ "$mx" = $((96 << 20)) ] || fail "/metrics says memory.max ${mx:-none}, the file $((96 << 20))"
[ "$(metric memgov_level)" = 0 ] || fail "idle, yet level $(metric memgov_level)"

# Now the leak, until the kernel kills it.
curl -sf --max-time 5 -X POST "http://127.0.0.1:$port/control?mode=heap&rate=4MiB" >/dev/null ||
        fail "cannot start leaky's heap leak"
t0=$(date +%s)
say "leaking 4 MiB/s under memory.max=96M"
# bash reports a SIGKILLed background job ("Killed") on its own stderr: expected here.
exec 3>&2 2>/dev/null
while kill -0 "$leaky_pid" 2>/dev/null; do
        [ $(($(date +%s) - t0)) -lt 150 ] || { exec 2>&3; fail "leaky still runs after 150s: no OOM kill"; }
        sleep 0.2
done
leaky_rc=0
wait "$leaky_pid" || leaky_rc=$?
exec 2>&3 3>&-
leaky_pid=""
say "leaky ended with status $leaky_rc after $(($(date +%s) - t0))s"
oom_kill=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events")
[ "${oom_kill:-0}" -ge 1 ] || fail "leaky ended (status $leaky_rc) without an OOM kill"

# memgovd's view of the kill: a sample after it (inotify on memory.events).
for _ in $(seq 100); do
        k=$(scrape | awk -v s="memgov_events_total{service=\"leaky\",cgroup=\"$name\",event=\"oom_kill\"}" \
                '$1 == s { print $2 }')
        [ "${k:-0}" -ge 1 ] && break
        sleep 0.1
done
[ "${k:-0}" -ge 1 ] || fail "memgovd did not see the OOM kill (events_total oom_kill ${k:-none})"

# The log: the transitions, all upwards and all before the kill.
grep -n "entered \|recovered\|OOM-killed" "$log" | sed 's/^/  /'
kill_line=$(grep -n "the kernel OOM-killed" "$log" | head -1 | cut -d: -f1)
[ -n "$kill_line" ] || fail "the log does not report the OOM kill"
highest="" rank=0
while IFS= read -r l; do
        to=$(sed -n 's/.* entered \([a-z]*\) (was \([a-z]*\)).*/\1/p' <<<"$l")
        case $to in warn) r=1 ;; degrade) r=2 ;; critical) r=3 ;; *) continue ;; esac
        [ "$r" -gt "$rank" ] || fail "the level fell before the kill: $l"
        rank=$r highest=$to
done <<<"$(head -n "$kill_line" "$log" | grep "leaky: $name entered ")" # no /dev/fd in the VM
[ -n "$highest" ] || fail "no level was entered before the OOM kill"
head -n "$kill_line" "$log" | grep -q "recovered" && fail "a recovery before the kill"
say "level rose to $highest before the OOM kill"

# The first entry captured leaky's heap while it lived.
dump=$(find "$state/dumps/leaky" -mindepth 1 -maxdepth 1 -name '2*' | sort | head -1)
[ -n "$dump" ] || fail "no dump under $state/dumps/leaky"
[ -s "$dump/heap.pb.gz" ] && [ -s "$dump/manifest.json" ] ||
        fail "the dump $dump lacks heap.pb.gz or manifest.json: $(ls "$dump")"
say "capture: $dump ($(ls "$dump" | tr '\n' ' '))"

if [ -n "${MEMGOV_VM_OUT:-}" ]; then
        scrape >"$out/memgovd_smoke.metrics" || true
        cp -r "$dump" "$out/" 2>/dev/null || true
        cp "$cg/memory.events" "$out/memgovd_smoke.memory.events"
fi

kill -TERM "$memgovd_pid"
rc=0
wait "$memgovd_pid" || rc=$?
memgovd_pid=""
[ "$rc" = 0 ] || fail "memgovd exited with status $rc on SIGTERM"
[ ! -e "$sock" ] || fail "memgovd left its socket $sock behind"
say "PASS: level $highest before the OOM kill, /metrics matches memory.current, SIGTERM exits 0"
