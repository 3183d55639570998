#!/usr/bin/env bash
# Webhooks that prevent the OOM kill, on a real kernel: for each leak mode where degrading
# can help (cache, heap), 5 copies of the leaky example service that honour memgov's
# webhooks run under one memgovd (one policy each), beside 5 copies that nobody governs —
# each in a cgroup of its own with memory.max=96M and no swap, all leaking at the same
# rate at the same time. memory.high is left alone (mode off): the webhook and the
# service's reaction to it (drop the cache, stop admitting leak work, lower GOMEMLIMIT)
# are the only difference between the two groups.
#
# A run counts as killed when its cgroup's memory.events shows oom_kill; it survived when,
# at the horizon, its leaky still runs and memory.events shows no oom_kill. The horizon is
# three times the ungoverned runs' median time to their kill (at least 60 s), counted from
# the start of the leaks. Checked: every governed run survived and applied at least one
# degrade (or critical) reaction; every ungoverned run was killed. The counts are printed,
# e.g. "cache: governed 5/5 survived, ungoverned 5/5 killed". memgovd's log (debug, every
# delivery) and the governed services' logs go to $MEMGOV_VM_OUT.
#
# MEMGOV_WH_MODES (default "cache heap") and MEMGOV_WH_RUNS (default 5) choose the modes and
# the copies in each group. Runs as root in the VM (tests/vm/run, --mem 1536M or more: 10 x
# 96M at once) or on a host with cgroup v2 memory.
set -euo pipefail

me=webhook_honoured
fail() {
        echo "$me: FAIL: $*" >&2
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
command -v curl >/dev/null || {
        echo "$me: curl is missing: skipped" >&2
        exit 77
}
[ -x "$leaky" ] || {
        echo "$me: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
}

read -r -a modes <<<"${MEMGOV_WH_MODES:-cache heap}"
runs=${MEMGOV_WH_RUNS:-5}
limit=96M
rate=4MiB      # 96M in about 25 s, unthrottled
min_horizon=60 # seconds from the start of the leaks
max_wait=150   # for the ungoverned kills

parent=memgov-wh.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
state=$work/state
memgovd_pid=""
declare -A pid=()
names=()
for m in "${modes[@]}"; do
        for ((i = 1; i <= runs; i++)); do names+=("$m-gov$i" "$m-ungov$i"); done
done

# On any exit: stop what we started, remove the cgroups, keep the exit status. bash's
# "Killed" notices of the OOM-killed jobs are expected.
cleanup() {
        local rc=$? n
        set +e
        exec 2>/dev/null
        for n in "${!pid[@]}"; do kill -KILL "${pid[$n]}"; done
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid"
        for n in "${names[@]}"; do
                [ -d "$pcg/$n" ] || continue
                echo 1 >"$pcg/$n/cgroup.kill"
                for _ in $(seq 50); do rmdir "$pcg/$n" && break; sleep 0.1; done
        done
        [ -d "$pcg" ] && rmdir "$pcg"
        [ -n "${state_mounted:-}" ] && umount "$state"
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

# oom_kill of a cgroup's memory.events (builtins only: this runs in a tight loop).
oom_kills() {
        local k v
        while read -r k v; do
                [ "$k" = oom_kill ] && { echo "$v"; return; }
        done <"$pcg/$1/memory.events"
        echo 0
}
# Seconds since $1 (an $EPOCHREALTIME), with one decimal.
since() {
        local now=$EPOCHREALTIME d
        d=$(((${now/./} - ${1/./}) / 100000))
        echo "$((d / 10)).$((d % 10))"
}

mkdir "$pcg"
echo +memory >"$pcg/cgroup.subtree_control"
for n in "${names[@]}"; do
        mkdir "$pcg/$n"
        echo $limit >"$pcg/$n/memory.max"
        [ -e "$pcg/$n/memory.swap.max" ] && echo 0 >"$pcg/$n/memory.swap.max"
done

mkdir -p "$work/policies" "$state" "$work/run"
mount -t tmpfs -o size=256m,mode=0700 memgov-wh-state "$state" || fail "cannot mount a tmpfs on $state"
state_mounted=1
secret=$work/leaky.secret
(umask 077 && printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$secret")

# One policy per governed service: levels by forecast ETA or usage, memory.high off (the
# webhook alone acts), webhooks to the service's own receiver. hold 10s: a cache dropped
# at degrade is "recovered" 10 s later, the leak resumes, and the cycle repeats.
port=16200
declare -A port_of=()
for n in "${names[@]}"; do
        port_of[$n]=$port
        port=$((port + 1))
        [[ $n == *-gov* ]] || continue
        cat >"$work/policies/$n.json" <<EOF
{
  "service": "$n",
  "cgroup": "$parent/$n",
  "sample_interval": "500ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": {
    "warn": { "eta": "60s", "usage": "50%" },
    "degrade": { "eta": "20s", "usage": "70%" },
    "critical": { "eta": "8s", "usage": "85%" },
    "hold": "10s"
  },
  "memory_high": { "mode": "off" },
  "webhooks": [
    { "url": "http://127.0.0.1:${port_of[$n]}/memgov", "secret_file": "$secret",
      "events": ["warn", "degrade", "critical", "recovered"], "timeout": "3s", "deadline": "20s" }
  ]
}
EOF
done
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        --log-level debug 2>"$log" &
memgovd_pid=$!

declare -A t0=() killed_at=()
result=()
total_gov=0 total_ungov=0
for m in "${modes[@]}"; do
        group=()
        for n in "${names[@]}"; do [[ $n == "$m"-* ]] && group+=("$n"); done
        # Each leaky joins its cgroup before it starts, idle; the governed ones take the
        # secret (they honour webhooks), the others do not know memgov.
        for n in "${group[@]}"; do
                wh=()
                [[ $n == *-gov* ]] && wh=(--webhook-secret-file "$secret")
                bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$pcg/$n" \
                        "$leaky" --mode idle --listen "127.0.0.1:${port_of[$n]}" "${wh[@]}" \
                        2>"$out/$me.$n.log" &
                pid[$n]=$!
        done
        for n in "${group[@]}"; do
                for _ in $(seq 600); do
                        curl -sf --max-time 2 "http://127.0.0.1:${port_of[$n]}/control" >/dev/null && break
                        kill -0 "${pid[$n]}" 2>/dev/null || fail "leaky $n exited early: $(cat "$out/$me.$n.log")"
                        sleep 0.2
                done
                [[ $n == *-gov* ]] || continue
                for _ in $(seq 300); do
                        grep -q "$n: governing" "$log" && break
                        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early: $(cat "$log")"
                        sleep 0.2
                done
                grep -q "$n: governing" "$log" || fail "memgovd does not govern $parent/$n"
        done
        sleep 3 # a flat start in memgovd's window

        for n in "${group[@]}"; do
                curl -sf --max-time 5 -X POST "http://127.0.0.1:${port_of[$n]}/control?mode=$m&rate=$rate" \
                        >/dev/null || fail "cannot start the $m leak of $n"
                t0[$n]=$EPOCHREALTIME
        done
        tstart=$EPOCHREALTIME
        say "$m: ${runs} governed and ${runs} ungoverned copies leak $rate under memory.max=$limit (no swap)"

        # Until every ungoverned copy is killed, then on to the horizon.
        horizon=""
        exec 3>&2 2>/dev/null
        for ((;;)); do
                pending=0
                for n in "${group[@]}"; do
                        [ -n "${killed_at[$n]:-}" ] && continue
                        if [ "$(oom_kills "$n")" -gt 0 ]; then
                                killed_at[$n]=$(since "${t0[$n]}")
                        elif [[ $n == *-ungov* ]]; then
                                pending=1
                        fi
                done
                el=$(since "$tstart")
                if [ -z "$horizon" ] && { [ $pending = 0 ] || [ "${el%.*}" -ge $max_wait ]; }; then
                        times=()
                        for n in "${group[@]}"; do
                                [[ $n == *-ungov* ]] && [ -n "${killed_at[$n]:-}" ] && times+=("${killed_at[$n]}")
                        done
                        if [ ${#times[@]} = 0 ]; then
                                median=none horizon=$min_horizon
                        else
                                median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 }
                                        END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
                                horizon=$(awk -v m="$median" -v h=$min_horizon 'BEGIN { v = 3 * m; if (v < h) v = h; printf "%d", v + 0.999 }')
                        fi
                        say "$m: ungoverned median time to the OOM kill ${median}s; horizon ${horizon}s"
                fi
                [ -n "$horizon" ] && [ "${el%.*}" -ge "$horizon" ] && break
                sleep 0.5
        done
        exec 2>&3 3>&-

        # The verdict of this mode, then its services go.
        gov_ok=0 ungov_killed=0 ng=0 nu=0
        for n in "${group[@]}"; do
                alive=0
                kill -0 "${pid[$n]}" 2>/dev/null && alive=1
                peak=$(cat "$pcg/$n/memory.peak" 2>/dev/null || echo 0)
                if [[ $n == *-gov* ]]; then
                        ng=$((ng + 1))
                        deg=$(grep '"event":"reaction"' "$out/$me.$n.log" | grep -c '"cause":"\(degrade\|critical\)"' || true)
                        all=$(grep -c '"event":"reaction"' "$out/$me.$n.log" || true)
                        drops=$(grep -c '"event":"cache_dropped"' "$out/$me.$n.log" || true)
                        if [ $alive = 1 ] && [ -z "${killed_at[$n]:-}" ] && [ "$deg" -gt 0 ]; then
                                gov_ok=$((gov_ok + 1))
                                verdict=survived
                        elif [ -n "${killed_at[$n]:-}" ]; then
                                verdict="OOM-killed after ${killed_at[$n]}s"
                        elif [ $alive = 0 ]; then
                                verdict="exited"
                        else
                                verdict="alive but no degrade reaction: not the webhook's doing"
                        fi
                        what="$all reactions ($deg at degrade or critical)"
                        [ "$m" = cache ] && what="$what, $drops cache drops"
                        printf '  %-12s %-40s peak %3d MiB, %s\n' "$n" "$verdict" $((peak >> 20)) "$what"
                else
                        nu=$((nu + 1))
                        if [ -n "${killed_at[$n]:-}" ]; then
                                ungov_killed=$((ungov_killed + 1))
                                verdict="OOM-killed after ${killed_at[$n]}s"
                        else
                                verdict="not killed within ${horizon}s"
                        fi
                        printf '  %-12s %-40s peak %3d MiB\n' "$n" "$verdict" $((peak >> 20))
                fi
        done
        exec 3>&2 2>/dev/null
        for n in "${group[@]}"; do
                kill -KILL "${pid[$n]}" 2>/dev/null || true
                wait "${pid[$n]}" 2>/dev/null || true
                unset "pid[$n]"
        done
        exec 2>&3 3>&-
        result[${#result[@]}]="$m: governed $gov_ok/$ng survived, ungoverned $ungov_killed/$nu killed (ungoverned median time to the OOM kill ${median}s, horizon ${horizon}s)"
        say "${result[-1]}"
        [ $gov_ok = "$ng" ] && [ $ungov_killed = "$nu" ] || bad=1
        total_gov=$((total_gov + gov_ok)) total_ungov=$((total_ungov + ungov_killed))
done

kill -TERM "$memgovd_pid" 2>/dev/null || true
wait "$memgovd_pid" 2>/dev/null || true
memgovd_pid=""
for r in "${result[@]}"; do echo "$me: $r"; done
[ -z "${bad:-}" ] || fail "a governed copy did not survive or an ungoverned one was not killed (see above; logs in $out)"
say "PASS: every governed copy survived its leak, every ungoverned one was OOM-killed"
