#!/usr/bin/env bash
# The livelock guard on a real kernel: a workload whose working set lies above memory.high,
# with no swap, makes the kernel throttle every charge it makes (stress-ng --vm 1, 96M
# mapped, written and unmapped again and again, under memory.high 64M): it stays pinned at
# memory.high with PSI full high. memgovd must raise memory.high stepwise until the stall
# ends, log the livelock event, and hold the level at critical meanwhile. Two cgroups at
# once, in one boot:
#   - oper:  memory.high=64M written by the operator, policy mode guard (the default);
#   - fixed: policy mode fixed at 64M, memgovd writes it itself.
# Checked: the livelock event in the log for each, at least two raises with cause
# livelock, each above the one before, memory.high read above 64M afterwards, and the
# level entered critical for the livelock. A table of the raises is printed; memgovd's log
# (with the guest's clock) and the traces go to $MEMGOV_VM_OUT. What memgovd does once the
# episode is over (oper: the operator's 64M is the original it gives back) is printed too.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=governance_livelock
fail() {
        echo "$me: FAIL: $*" >&2
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
for c in stress-ng python3; do
        command -v $c >/dev/null || {
                echo "$me: $c is missing (apt-get install $c): skipped" >&2
                exit 77
        }
done
[ -e "$root/cgroup.pressure" ] || [ -e "$root/memory.pressure" ] || {
        echo "$me: no PSI in this kernel (psi=1 on the command line): skipped" >&2
        exit 77
}

high=64M
vm_bytes=96M
run_s=150 # stress-ng's run; the scenario stops earlier once both have had two raises
settle_s=40 # and watches this long after the last raise it needed
interval_ms=250

parent=memgov-gov-livelock.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
state=$work/state
memgovd_pid="" stamp_pid=""
names=(oper fixed)
declare -A stress_pid=() rec_pid=()

# On any exit: stop what we started, remove the cgroups, keep the exit status. No errexit
# here (a cgroup still busy must not turn a pass into a failure), and bash's "Killed"
# notices of the jobs stopped here are expected.
cleanup() {
        local rc=$? n
        set +e
        exec 2>/dev/null
        for n in "${names[@]}"; do
                [ -n "${stress_pid[$n]:-}" ] && kill -KILL "${stress_pid[$n]}" 2>/dev/null
                [ -n "${rec_pid[$n]:-}" ] && kill -KILL "${rec_pid[$n]}" 2>/dev/null
        done
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid" 2>/dev/null
        [ -n "$stamp_pid" ] && kill -KILL "$stamp_pid" 2>/dev/null
        for n in "${names[@]}"; do
                if [ -d "$pcg/$n" ]; then
                        echo 1 >"$pcg/$n/cgroup.kill" 2>/dev/null || true
                        for _ in $(seq 100); do rmdir "$pcg/$n" && break; sleep 0.1; done
                fi
        done
        [ -d "$pcg" ] && rmdir "$pcg"
        [ -n "${state_mounted:-}" ] && umount "$state" 2>/dev/null
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$pcg"
echo +memory >"$pcg/cgroup.subtree_control"
for n in "${names[@]}"; do
        mkdir "$pcg/$n"
        echo 256M >"$pcg/$n/memory.max"
        [ -e "$pcg/$n/memory.swap.max" ] && echo 0 >"$pcg/$n/memory.swap.max"
done
echo $high >"$pcg/oper/memory.high" # the operator's value; memgov finds it there

mkdir -p "$work/policies" "$state" "$work/run"
mount -t tmpfs -o size=2g,mode=0700 memgov-livelock-state "$state" || fail "cannot mount a tmpfs on $state"
state_mounted=1
policy() { # NAME MEMORY_HIGH
        cat <<EOF
{
  "cgroup": "$parent/$1",
  "sample_interval": "${interval_ms}ms",
  "forecast": { "window": "20s", "horizon": "5m" },
  "levels": {
    "warn": { "eta": "60s", "usage": "80%" },
    "degrade": { "eta": "30s", "usage": "90%" },
    "critical": { "eta": "10s", "usage": "97%" },
    "hold": "20s"
  },
  "memory_high": $2
}
EOF
}
# the livelock guard as the defaults have it: PSI full avg10 >= 60 % for 10 s
policy oper '{ "mode": "guard", "min_interval": "2s" }' >"$work/policies/oper.json"
policy fixed '{ "mode": "fixed", "fixed": "'$high'", "min_interval": "2s" }' >"$work/policies/fixed.json"
cp "$work/policies/oper.json" "$out/$me.oper.policy.json"
cp "$work/policies/fixed.json" "$out/$me.fixed.policy.json"
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

mkfifo "$work/log.fifo"
(while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done <"$work/log.fifo" >"$log") &
stamp_pid=$!
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        2>"$work/log.fifo" &
memgovd_pid=$!
for _ in $(seq 300); do
        grep -q "oper: governing" "$log" && grep -q "fixed: governing" "$log" && break
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early: $(cat "$log")"
        sleep 0.2
done
grep -q "fixed: governing" "$log" && grep -q "oper: governing" "$log" ||
        fail "memgovd does not govern both cgroups: $(cat "$log")"
# fixed: memgovd puts 64M in place itself
for _ in $(seq 100); do
        [ "$(cat "$pcg/fixed/memory.high")" = $((64 << 20)) ] && break
        sleep 0.2
done
[ "$(cat "$pcg/fixed/memory.high")" = $((64 << 20)) ] ||
        fail "memgovd did not set memory.high of fixed to 64M: $(cat "$pcg/fixed/memory.high")"

for n in "${names[@]}"; do
        "$ctl" record --cgroup-root "$root" --cgroup "$parent/$n" --interval-ms 500 \
                --duration-s $((run_s + 30)) -o "$out/$me.$n.csv" 2>"$work/record-$n.err" &
        rec_pid[$n]=$!
done

t0=$EPOCHREALTIME
for n in "${names[@]}"; do
        bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' stress "$pcg/$n" \
                stress-ng --vm 1 --vm-bytes $vm_bytes --timeout ${run_s}s --quiet \
                >"$out/$me.stress-$n.log" 2>&1 &
        stress_pid[$n]=$!
done
say "stress-ng --vm 1 --vm-bytes $vm_bytes under memory.high $high (no swap) in oper and fixed"

# raises NAME: how many livelock raises memgovd has logged for NAME
raises() { grep -c "$1: memory.high of $parent/$1 set to .*: livelock:" "$log" || true; }
last_raise_s=""
for ((;;)); do
        now=$EPOCHREALTIME
        el=$(((${now/./} - ${t0/./}) / 1000000))
        ro=$(raises oper) rf=$(raises fixed)
        if [ "$ro" -ge 2 ] && [ "$rf" -ge 2 ]; then
                [ -n "$last_raise_s" ] || last_raise_s=$el
                [ $((el - last_raise_s)) -ge $settle_s ] && break
        fi
        [ "$el" -ge "$run_s" ] && break
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died: $(tail -5 "$log")"
        sleep 1
done
say "stopping after ${el}s: $ro raises of oper, $rf of fixed"
declare -A high_end=()
for n in "${names[@]}"; do
        high_end[$n]=$(cat "$pcg/$n/memory.high")
        kill -TERM "${stress_pid[$n]}" 2>/dev/null || true
        wait "${stress_pid[$n]}" 2>/dev/null || true
        stress_pid[$n]=""
        kill -INT "${rec_pid[$n]}" 2>/dev/null || true
        wait "${rec_pid[$n]}" 2>/dev/null || true
        rec_pid[$n]=""
        cp "$pcg/$n/memory.events" "$out/$me.$n.memory.events"
        cp "$pcg/$n/memory.pressure" "$out/$me.$n.memory.pressure"
done

kill -TERM "$memgovd_pid"
r=0
wait "$memgovd_pid" || r=$?
memgovd_pid=""
wait "$stamp_pid" 2>/dev/null || true
stamp_pid=""
[ "$r" = 0 ] || fail "memgovd exited with status $r on SIGTERM"
declare -A high_restored=()
for n in "${names[@]}"; do high_restored[$n]=$(cat "$pcg/$n/memory.high"); done

python3 - "$log" "$t0" "$parent" "${high_end[oper]}" "${high_end[fixed]}" \
        "${high_restored[oper]}" "${high_restored[fixed]}" <<'EOF'
import re, sys

logf, t0, parent, end_oper, end_fixed, rest_oper, rest_fixed = sys.argv[1:]
t0 = float(t0)
me = "governance_livelock"
MiB = 1 << 20
H = 64 * MiB
log = []
for line in open(logf):
    ts, _, msg = line.rstrip("\n").partition(" ")
    log.append((float(ts) - t0, msg))
bad = []
end = {"oper": end_oper, "fixed": end_fixed}
rest = {"oper": rest_oper, "fixed": rest_fixed}
want_rest = {"oper": str(H), "fixed": "max"}  # what each had before memgov's first change
for n in ("oper", "fixed"):
    cg = re.escape(f"{parent}/{n}")
    sets = []
    for t, m in log:
        k = re.search(rf"^memgovd: \w+: {n}: memory.high of {cg} set to (\d+|max): ([^:]*): (.*)", m)
        if k:
            sets.append((t, k.group(1), k.group(2), k.group(3)))
    events = [t for t, m in log if re.search(rf"^memgovd: \w+: {n}: {cg}: livelock: ", m)]
    crit = [t for t, m in log if re.search(rf"^memgovd: \w+: {n}: {cg} entered critical .*livelock", m)]
    print(f"{me}: {n}: livelock events at {', '.join(f'{t:.1f}s' for t in events) or 'none'}; "
          f"entered critical (livelock) at {', '.join(f'{t:.1f}s' for t in crit) or 'never'}")
    print(f"  {'t_s':>7}  {'memory.high':>11}  {'cause':<14}  why")
    for t, b, c, why in sets:
        mb = "max" if b == "max" else f"{int(b) / MiB:.1f}M"
        print(f"  {t:7.1f}  {mb:>11}  {c:<14}  {why[:100]}")
    ll = [(t, b) for t, b, c, _ in sets if c == "livelock"]
    e = end[n]
    print(f"  memory.high when the workload stopped: {e}; after memgovd's SIGTERM: {rest[n]}")
    if not events:
        bad.append(f"{n}: no livelock event in memgovd's log")
    if not crit:
        bad.append(f"{n}: the level never entered critical for the livelock")
    if len(ll) < 2:
        bad.append(f"{n}: {len(ll)} livelock raise(s); expected memory.high raised stepwise (2 or more)")
    vals = [float("inf") if b == "max" else int(b) for _, b in ll]
    if any(b <= a for a, b in zip(vals, vals[1:])) or (vals and vals[0] <= H):
        bad.append(f"{n}: the livelock raises do not climb from {H}: {vals}")
    if ll and events and events[0] > ll[0][0] + 0.5:
        bad.append(f"{n}: the first raise came before the livelock event")
    # once raised out of the stall, memory.high never goes back under the first raise
    if ll:
        back = [(t, b) for t, b, c, _ in sets if t > ll[0][0] and b != "max" and int(b) < int(ll[0][1])]
        if back:
            bad.append(f"{n}: memory.high set back under the first livelock raise {ll[0][1]} "
                       f"(the stalling value again) at {', '.join(f'{t:.1f}s ({b})' for t, b in back)}")
    if e == "max" or int(e) <= H:
        bad.append(f"{n}: memory.high is {e} when the workload stops; expected the raised value")

    if rest[n] != want_rest[n]:
        bad.append(f"{n}: after SIGTERM memory.high is {rest[n]}, not the original {want_rest[n]}")
for b in bad:
    print(f"{me}: FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
say "PASS: memory.high raised stepwise out of the livelock, the event logged, critical meanwhile, originals back on SIGTERM"
