#!/usr/bin/env bash
# bench/daemon on a real kernel (docs/benchmarks.md, "memgovd's own cost"): memgovd's CPU
# for 10 / 100 / 1,000 real cgroups with memory.max at 1 Hz, and the delay from a PSI trigger
# to the sample it causes. Prints Markdown tables. Run by hand, in the VM (one at a time):
#
#   tests/vm/run --timeout 1200 --env MEMGOV_BINARY_DIR=$PWD/build-bench -- \
#           bench/daemon/vm-bench.sh [SECONDS]           (SECONDS per size, default 60)
#
# Under TCG the guest's CPU is several times slower than the host's: read the figures as
# relative (the temp-tree row, run in the same VM by bench-daemon, is the yardstick).
set -euo pipefail

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
seconds=${1:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" = 0 ] || { echo "vm-bench: needs root" >&2; exit 1; }
grep -qw memory "$root/cgroup.subtree_control" ||
        { echo "vm-bench: $root has no memory controller for children" >&2; exit 1; }

work=$(mktemp -d)
slice=$root/memgov-bench.slice
pid=""
cleanup() {
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
        if [ -d "$slice" ]; then
                for c in "$slice"/*/; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
                rmdir "$slice" 2>/dev/null
        fi
        rm -rf "$work"
        return 0
}
trap cleanup EXIT
mkdir -p "$work/pol" "$work/state" "$work/run"
echo "{ \"runtime_dir\": \"$work/run\", \"state_dir\": \"$work/state\", \"rescan_interval\": \"1h\" }" \
        >"$work/memgovd.json"

# ticks PID: utime + stime of /proc/PID/stat, in clock ticks (fields 14 and 15; the command
# name in field 2 has no spaces here).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "### CPU at 1 Hz, real cgroups (VM, TCG)"
echo
echo "| governed cgroups | wall time | CPU time (user + system) | share of one core | CPU per sample |"
echo "|---:|---:|---:|---:|---:|"
mkdir "$slice"
echo +memory >"$slice/cgroup.subtree_control"
cat >"$work/pol/bench.json" <<EOF
{ "service": "bench", "cgroup": "memgov-bench.slice/*.service", "sample_interval": "1s",
  "forecast": { "window": "5m" }, "memory_high": { "mode": "off" } }
EOF
have=0
for n in 10 100 1000; do
        while [ "$have" -lt "$n" ]; do
                c=$(printf '%s/svc-%04d.service' "$slice" "$have")
                mkdir "$c"
                echo 64M >"$c/memory.max"
                have=$((have + 1))
        done
        "$memgovd" --config "$work/memgovd.json" --policy-dir "$work/pol" --cgroup-root "$root" \
                2>"$work/memgovd.log" &
        pid=$!
        # memgovd logs "governing N cgroups under ROOT ..." once its first scan is done
        up=0
        for _ in $(seq 3000); do
                grep -q "governing $n cgroups under" "$work/memgovd.log" && { up=1; break; }
                sleep 0.1
        done
        [ "$up" = 1 ] || { echo "vm-bench: memgovd did not govern $n cgroups in 300 s:" >&2
                           tail -5 "$work/memgovd.log" >&2; exit 1; }
        sleep 3
        t0=$(date +%s.%N) c0=$(ticks "$pid")
        sleep "$seconds"
        t1=$(date +%s.%N) c1=$(ticks "$pid")
        kill -TERM "$pid"
        wait "$pid" || true
        pid=""
        awk -v n="$n" -v w="$(echo "$t1 - $t0" | bc)" -v c="$(((c1 - c0)))" -v hz="$hz" 'BEGIN {
                s = c / hz
                printf "| %d | %.0f s | %.2f s | %.2f%% | %.1f µs |\n", n, w, s, 100 * s / w, s * 1e6 / (w * n)
        }'
done
for c in "$slice"/*/; do rmdir "$c"; done

echo
echo "The same daemon on temporary trees in the same VM (bench-daemon cpu), the yardstick for TCG:"
mkdir -p "$work/tmp"
mount -t tmpfs -o size=512m memgov-bench-tmp "$work/tmp"
"$bin/bench/daemon/bench-daemon" --memgovd "$memgovd" --tmpdir "$work/tmp" \
        --cpu-seconds "$seconds" cpu | sed -n '/^|/p'
umount "$work/tmp"

# ---- PSI trigger → sample ----
# One cgroup whose memory.high (24M, no swap) throttles a process that keeps 40 MiB of anon
# live: the kernel's over-high penalty sleeps count as memory stall, and "some" PSI climbs.
# psi-latency.py holds a trigger of its own on the same file with memgovd's threshold, and
# times each of its wake-ups to memgovd's next sample line of that cgroup.
psi=$slice/psi.service
mkdir "$psi"
echo 256M >"$psi/memory.max"
echo 24M >"$psi/memory.high"
[ -e "$psi/memory.swap.max" ] && echo 0 >"$psi/memory.swap.max"
cat >"$work/pol/bench.json" <<EOF
{ "service": "bench", "cgroup": "memgov-bench.slice/psi.service", "sample_interval": "10s",
  "forecast": { "window": "5m" }, "memory_high": { "mode": "off" } }
EOF
bash -c 'echo $$ >"$1/cgroup.procs" && exec /usr/bin/python3 -c "
b = []
while True:
    b.append(b\"x\" * (1 << 20))
    del b[:-40]
"' hog "$psi" &
hog=$!
echo
/usr/bin/python3 "$here/psi-latency.py" "$psi/memory.pressure" "$seconds" -- "$memgovd" --config \
        "$work/memgovd.json" --policy-dir "$work/pol" --cgroup-root "$root" --log-level debug
kill -KILL "$hog" 2>/dev/null || true
wait "$hog" 2>/dev/null || true
for _ in $(seq 50); do rmdir "$psi" 2>/dev/null && break; sleep 0.1; done
