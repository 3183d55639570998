#!/usr/bin/env bash
# Ground truth for what memgov forecasts: the leaky example service, ungoverned, in each
# leak mode (heap, goroutine, subslice, cache) under memory.max=96M with no swap, is
# OOM-killed by the kernel and memory.events counts the kill; in its steady mode
# (sawtooth) and with bursts that it releases, it is still alive after 60 s and
# memory.events shows no kill. All six run at once, each in its own cgroup created by
# `memgovctl run`, so the scenario takes about as long as the slowest of them.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory. Writes each
# workload's log and final memory.events to $MEMGOV_VM_OUT when that is set.
set -euo pipefail

fail() {
        echo "ground_truth: FAIL: $*" >&2
        exit 1
}
say() { echo "ground_truth: $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
ctl=$bin/memgovctl
leaky=$bin/examples/leaky/leaky
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$ctl" ] || fail "$ctl is not built"
if [ ! -x "$leaky" ]; then
        echo "ground_truth: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
fi

limit_mb=96
steady_s=60   # how long the steady workloads must survive
deadline_s=180 # how long a leak may take to be killed
out=${MEMGOV_VM_OUT:-}
tmpdir=""
if [ -n "$out" ]; then
        logdir=$out
else
        tmpdir=$(mktemp -d)
        logdir=$tmpdir
fi
rm -f "$logdir"/ground_truth.*.status
parent=memgov-ground-truth.$$
pcg=$root/$parent

# name, expectation, leaky's arguments. Leak rates of 4 MiB/s reach 96M in about 25 s on
# an idle machine; an emulated CPU shared with other work may take several times that.
names=(heap goroutine subslice cache sawtooth burst)
declare -A expect=(
        [heap]=oom [goroutine]=oom [subslice]=oom [cache]=oom
        [sawtooth]=survive [burst]=survive)
declare -A args=(
        [heap]="--mode heap --rate 4MiB"
        [goroutine]="--mode goroutine --rate 64 --goroutine-buf 64KiB"
        [subslice]="--mode subslice --rate 4MiB"
        [cache]="--mode cache --rate 4MiB"
        [sawtooth]="--mode sawtooth --sawtooth-rate 16MiB"
        [burst]="--mode burst --burst-size 48MiB --burst-hold 3s")
declare -A status=() ended=()

cleanup() {
        local n
        for n in "${names[@]}"; do
                if [ -d "$pcg/$n" ]; then
                        echo 1 >"$pcg/$n/cgroup.kill" 2>/dev/null || true
                        for _ in $(seq 50); do rmdir "$pcg/$n" 2>/dev/null && break; sleep 0.1; done
                fi
        done
        [ -d "$pcg" ] && rmdir "$pcg" 2>/dev/null
        [ -n "$tmpdir" ] && rm -rf "$tmpdir"
        return 0
}
trap cleanup EXIT

# event FILE NAME: the counter NAME of a memory.events file, 0 when absent.
event() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"; }

t0=$(date +%s)
for n in "${names[@]}"; do
        # memgovctl run execs leaky, so the exit status is leaky's (137 when SIGKILLed).
        # The subshell writes it to a file; its own stderr, where bash reports "Killed",
        # is dropped.
        # shellcheck disable=SC2086 # args are word lists
        (
                rc=0
                "$ctl" run --cgroup-root "$root" --cgroup-parent "$parent" --name "$n" \
                        --memory-max ${limit_mb}M --memory-swap-max 0 --quiet -- \
                        "$leaky" ${args[$n]} --listen 127.0.0.1:0 2>"$logdir/ground_truth.$n.log" ||
                        rc=$?
                echo $rc >"$logdir/ground_truth.$n.status"
        ) 2>/dev/null &
done
say "started ${names[*]} under memory.max=${limit_mb}M, memory.swap.max=0"

# Poll once a second: a workload has ended when its status is written. Stop when every
# leak has ended and the steady ones have had their time, or at the deadline.
while :; do
        now=$(date +%s)
        pending=0
        for n in "${names[@]}"; do
                [ -n "${status[$n]:-}" ] && continue
                if [ -s "$logdir/ground_truth.$n.status" ]; then
                        status[$n]=$(cat "$logdir/ground_truth.$n.status")
                        ended[$n]=$((now - t0))
                        say "$n ended with status ${status[$n]} after ${ended[$n]}s"
                elif [ "${expect[$n]}" = oom ] || [ $((now - t0)) -lt $steady_s ]; then
                        pending=1
                fi
        done
        [ $pending = 0 ] && break
        [ $((now - t0)) -ge $deadline_s ] && break
        sleep 1
done

# The table, then the verdicts.
printf '%-10s %-6s %-8s %-22s %-9s %-9s %s\n' mode limit expect outcome oom_kill max_evts peak
bad=()
for n in "${names[@]}"; do
        ev=$pcg/$n/memory.events
        oom_kill=$(event "$ev" oom_kill)
        max_events=$(event "$ev" max)
        peak=-
        [ -r "$pcg/$n/memory.peak" ] && peak=$(awk '{ printf "%.1fM", $1 / 1048576 }' "$pcg/$n/memory.peak")
        [ -n "$out" ] && cat "$ev" >"$out/ground_truth.$n.memory.events"
        if [ -n "${status[$n]:-}" ]; then
                if [ "${status[$n]}" = 137 ]; then
                        outcome="killed (SIGKILL) ${ended[$n]}s"
                else
                        outcome="exited ${status[$n]} ${ended[$n]}s"
                fi
        else
                outcome="alive at $(($(date +%s) - t0))s"
        fi
        printf '%-10s %-6s %-8s %-22s %-9s %-9s %s\n' "$n" ${limit_mb}M "${expect[$n]}" "$outcome" \
                "$oom_kill" "$max_events" "$peak"
        case ${expect[$n]} in
        oom)
                if [ -z "${status[$n]:-}" ]; then
                        bad+=("$n was not OOM-killed within ${deadline_s}s")
                elif [ "$oom_kill" -lt 1 ]; then
                        bad+=("$n ended (status ${status[$n]}) but memory.events shows oom_kill $oom_kill")
                elif [ "${status[$n]}" != 137 ]; then
                        bad+=("$n ended with status ${status[$n]}, not 137 (SIGKILL from the OOM killer)")
                fi
                ;;
        survive)
                [ -z "${status[$n]:-}" ] || bad+=("$n ended with status ${status[$n]} after ${ended[$n]}s; it should run on")
                [ "$oom_kill" = 0 ] || bad+=("$n: memory.events shows oom_kill $oom_kill; expected 0")
                ;;
        esac
done

# The bursts really came and went: leaky logs each release.
released=$(grep -c '"event":"burst_released"' "$logdir/ground_truth.burst.log" || true)
[ "$released" -ge 1 ] || bad+=("burst: no burst_released event in its log; the burst never came and went")

if [ ${#bad[@]} -gt 0 ]; then
        for b in "${bad[@]}"; do echo "ground_truth: FAIL: $b" >&2; done
        exit 1
fi
say "PASS: 4 leak modes OOM-killed with oom_kill counted; sawtooth and burst ($released releases) alive after ${steady_s}s with no kill"
