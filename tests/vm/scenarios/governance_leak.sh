#!/usr/bin/env bash
# memory.high ahead of the OOM killer, on a real kernel: two copies of the leaky example
# service leak heap at the same rate under the same memory.max (no swap), side by side;
# memgovd governs one with a guard policy and only watches the other (the same levels,
# memory_high off). Checked as an operator would see it:
#   - memory.high is really applied: memgovd's log says it set it, the governed cgroup's
#     memory.high reads below memory.max while governed (the recorded trace), memory.events
#     high rises after it, and memory.current grows more slowly after it than before;
#   - the time from the first `degrade` (or higher) to the kernel's OOM kill is longer
#     governed than ungoverned. The ungoverned time is measured twice: from memgovd's log
#     (the policy with memory_high off) and from `memgovctl replay --json` of its recorded
#     trace with the governed policy (lead_s.degrade).
# A table of both runs is printed; the traces, the replays and memgovd's log (each line
# prefixed with the guest's clock) go to $MEMGOV_VM_OUT. At the end SIGTERM gives the
# governed cgroup's memory.high back (max).
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=governance_leak
fail() {
        echo "$me: FAIL: $*" >&2
        exit 1
}
say() { echo "$me: $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
ctl=$bin/memgovctl
leaky=$bin/examples/leaky/leaky
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] && [ -x "$ctl" ] || fail "$memgovd or $ctl is not built"
command -v curl >/dev/null && command -v python3 >/dev/null || {
        echo "$me: curl or python3 is missing: skipped" >&2
        exit 77
}
[ -x "$leaky" ] || {
        echo "$me: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
}

limit=160M
rate=2560KiB  # 2.5 MiB/s: 160M in about a minute, unthrottled
budget=30s    # the guard engages at an ETA of 1.5 x budget
interval_ms=250
deadline_s=180 # after the leaks start: the governed one may take this long to be killed

parent=memgov-gov-leak.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
state=$work/state
memgovd_pid="" stamp_pid=""
declare -A leaky_pid=() rec_pid=() port=([gov]=16071 [ungov]=16072)
names=(gov ungov)

# On any exit: stop what we started, remove the cgroups, keep the exit status. No errexit
# here (a cgroup still busy must not turn a pass into a failure), and bash's "Killed"
# notices of the jobs stopped here are expected.
cleanup() {
        local rc=$? n
        set +e
        exec 2>/dev/null
        for n in "${names[@]}"; do
                [ -n "${leaky_pid[$n]:-}" ] && kill -KILL "${leaky_pid[$n]}" 2>/dev/null
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
        echo $limit >"$pcg/$n/memory.max"
        [ -e "$pcg/$n/memory.swap.max" ] && echo 0 >"$pcg/$n/memory.swap.max"
done

# The state dir on a tmpfs of its own (restore records; the dump store wants free space the
# guest's /tmp has not). The levels come by ETA or usage; the guard's budget is half the
# unthrottled minute; livelock guard and everything else as the defaults have them.
mkdir -p "$work/policies" "$state" "$work/run"
mount -t tmpfs -o size=2g,mode=0700 memgov-gov-state "$state" || fail "cannot mount a tmpfs on $state"
state_mounted=1
policy() { # NAME MODE
        cat <<EOF
{
  "cgroup": "$parent/$1",
  "sample_interval": "${interval_ms}ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": {
    "warn": { "eta": "60s", "usage": "60%" },
    "degrade": { "eta": "30s", "usage": "75%" },
    "critical": { "eta": "10s", "usage": "90%" },
    "hold": "5m"
  },
  "memory_high": { "mode": "$2", "budget": "$budget", "min_interval": "2s" }
}
EOF
}
policy gov guard >"$work/policies/gov.json"
policy ungov off >"$work/policies/ungov.json"
cp "$work/policies/gov.json" "$out/$me.policy.json"
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

# memgovd's log with the guest's clock in front of every line (bash's $EPOCHREALTIME: no
# fork per line), through a fifo so that $! is memgovd's pid.
mkfifo "$work/log.fifo"
(while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done <"$work/log.fifo" >"$log") &
stamp_pid=$!
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        2>"$work/log.fifo" &
memgovd_pid=$!

# Both leakies join their cgroup before they start, idle, so that memgovd has a flat
# history to start from.
for n in "${names[@]}"; do
        bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$pcg/$n" \
                "$leaky" --mode idle --listen 127.0.0.1:${port[$n]} 2>"$out/$me.leaky-$n.log" &
        leaky_pid[$n]=$!
done
for _ in $(seq 300); do
        up=0
        for n in "${names[@]}"; do
                curl -sf --max-time 2 http://127.0.0.1:${port[$n]}/control >/dev/null && up=$((up + 1))
        done
        [ $up = 2 ] && grep -q "ungov: governing" "$log" && grep -q "gov: governing" "$log" && break
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early: $(cat "$log")"
        sleep 0.2
done
[ $up = 2 ] || fail "the leakies did not come up"
grep -q " gov: governing" "$log" || fail "memgovd does not govern $parent/gov: $(cat "$log")"

for n in "${names[@]}"; do
        "$ctl" record --cgroup-root "$root" --cgroup "$parent/$n" --interval-ms $interval_ms \
                --until-oom --duration-s $((deadline_s + 60)) -o "$out/$me.$n.csv" \
                2>"$work/record-$n.err" &
        rec_pid[$n]=$!
done
sleep 5 # a flat start in the traces and in memgovd's window

t0=$EPOCHREALTIME
for n in "${names[@]}"; do
        curl -sf --max-time 5 -X POST "http://127.0.0.1:${port[$n]}/control?mode=heap&rate=$rate" \
                >/dev/null || fail "cannot start the leak of $n"
done
say "both leak $rate under memory.max=$limit (no swap); memgovd governs gov (guard, budget $budget)"

declare -A end_s=() rc=() at_max=()
min_high=max
# bash reports the OOM-killed job ("Killed") on its own stderr: expected here.
exec 3>&2 2>/dev/null
for ((;;)); do
        now=$EPOCHREALTIME
        el=$(((${now/./} - ${t0/./}) / 1000000))
        for n in "${names[@]}"; do
                [ -n "${end_s[$n]:-}" ] && continue
                if ! kill -0 "${leaky_pid[$n]}" 2>/dev/null; then
                        r=0
                        wait "${leaky_pid[$n]}" 2>/dev/null || r=$?
                        rc[$n]=$r end_s[$n]=$el leaky_pid[$n]=""
                        say "$n ended with status $r after ${el}s"
                fi
                # when memory.current first met memory.max (memory.events max > 0)
                if [ -z "${at_max[$n]:-}" ]; then
                        while read -r k v; do
                                [ "$k" = max ] && [ "$v" -gt 0 ] && at_max[$n]=$el
                        done <"$pcg/$n/memory.events"
                fi
        done
        read -r h <"$pcg/gov/memory.high"
        [ "$h" != max ] && { [ "$min_high" = max ] || [ "$h" -lt "$min_high" ]; } && min_high=$h
        [ -n "${end_s[gov]:-}" ] && [ -n "${end_s[ungov]:-}" ] && break
        [ "$el" -ge $deadline_s ] && break
        sleep 1
done
for n in "${names[@]}"; do # the governed one may still run: it is not needed any more
        [ -n "${leaky_pid[$n]}" ] || continue
        kill -KILL "${leaky_pid[$n]}"
        wait "${leaky_pid[$n]}" || true
        leaky_pid[$n]=""
done
exec 2>&3 3>&-

# The recorders stop one sample after the OOM kill; one still running is stopped (SIGINT
# renames its file too).
for n in "${names[@]}"; do
        for _ in $(seq 40); do kill -0 "${rec_pid[$n]}" 2>/dev/null || break; sleep 0.25; done
        kill -INT "${rec_pid[$n]}" 2>/dev/null || true
        wait "${rec_pid[$n]}" 2>/dev/null || true
        rec_pid[$n]=""
        [ -s "$out/$me.$n.csv" ] || fail "no trace of $n: $(cat "$work/record-$n.err")"
done

# SIGTERM: memgovd exits 0 and gives memory.high back.
kill -TERM "$memgovd_pid"
r=0
wait "$memgovd_pid" || r=$?
memgovd_pid=""
wait "$stamp_pid" 2>/dev/null || true
stamp_pid=""
[ "$r" = 0 ] || fail "memgovd exited with status $r on SIGTERM"
high_after=$(cat "$pcg/gov/memory.high")
for n in "${names[@]}"; do cp "$pcg/$n/memory.events" "$out/$me.$n.memory.events"; done

for n in "${names[@]}"; do
        "$ctl" replay --policy "$out/$me.policy.json" --json "$out/$me.$n.csv" >"$out/$me.$n.replay.json" ||
                fail "replay of $n's trace failed"
done

# The verdict, from memgovd's log, the traces and the replays.
python3 - "$out" "$me" "$parent" "$t0" "${end_s[gov]:-}" "${end_s[ungov]:-}" "$deadline_s" \
        "$min_high" "$high_after" "${at_max[gov]:-}" "${at_max[ungov]:-}" <<'EOF'
import csv, json, re, sys

out, me, parent, t0, gov_end, ungov_end, deadline, min_high, high_after, gov_max, ungov_max = sys.argv[1:]
at_max = {"gov": gov_max, "ungov": ungov_max}
t0 = float(t0)
bad = []

log = []
for line in open(f"{out}/{me}.memgovd.log"):
    ts, _, msg = line.rstrip("\n").partition(" ")
    log.append((float(ts) - t0, msg))

def first(pattern):
    r = re.compile(pattern)
    for t, m in log:
        if r.search(m):
            return t, m
    return None, None

def load(n):
    rows = list(csv.DictReader(open(f"{out}/{me}.{n}.csv")))
    for r in rows:
        r["t"] = int(r["t_ms"]) / 1000
        r["current"] = int(r["current"])
        r["ev_high"] = int(r["ev_high"] or 0)
    return rows

MiB = 1 << 20
res = {}
for n in ("gov", "ungov"):
    cg = f"{parent}/{n}"
    d = {"trace": load(n), "replay": json.load(open(f"{out}/{me}.{n}.replay.json"))}
    d["degrade"], m = first(rf"^memgovd: \w+: {n}: {re.escape(cg)} entered (degrade|critical) ")
    d["degrade_why"] = m.split("): ", 1)[-1] if m else "-"
    d["oom"], _ = first(rf"^memgovd: \w+: {n}: {re.escape(cg)}: the kernel OOM-killed")
    d["sets"] = [(t, m) for t, m in log if re.search(rf"^memgovd: \w+: {n}: memory.high of {re.escape(cg)} set to ", m)]
    d["livelock"] = [(t, m) for t, m in log if re.search(rf"^memgovd: \w+: {n}: {re.escape(cg)}: livelock", m)]
    res[n] = d

# memory.high applied, in the governed trace: below the limit, memory.events high rising
g = res["gov"]
tr = g["trace"]
if not g["sets"]:
    bad.append("memgovd never set memory.high of gov")
limited = [r for r in tr if r["high"] not in ("", "max") and int(r["high"]) < int(r["max"])]
if not limited:
    bad.append("gov's trace never shows memory.high below memory.max")
if res["ungov"]["sets"]:
    bad.append("memgovd set memory.high of ungov (mode off): " + res["ungov"]["sets"][0][1])
rate_pre = rate_post = None
if limited:
    ts = limited[0]["t"]
    ev_at = limited[0]["ev_high"]
    ev_end = tr[-1]["ev_high"]
    if ev_end <= ev_at:
        bad.append(f"memory.events high did not rise after memory.high was set ({ev_at} -> {ev_end})")
    # growth before: the 10 s before the first write; after: from the first sample at or
    # above a memory.high the guard set, for 10 s (or to the next change of memory.high, or
    # the OOM). A shrinking ETA may lower memory.high again before usage reaches the first
    # value: the first value that usage reached and that then held for 2 s is the one used.
    def at(t):
        return min(tr, key=lambda r: abs(r["t"] - t))
    a, b = at(ts - 10), at(ts)
    rate_pre = (b["current"] - a["current"]) / max(b["t"] - a["t"], 1e-9)
    def is_limited(r):
        return r["high"] not in ("", "max") and int(r["high"]) < int(r["max"])
    for k, r0 in enumerate(tr):
        if not is_limited(r0) or (k > 0 and tr[k - 1]["high"] == r0["high"]):
            continue
        h = int(r0["high"])
        seg = []
        for r in tr[k:]:
            if r["high"] != r0["high"]:
                break
            seg.append(r)
        reached = next((r for r in seg if r["current"] >= h * 0.98), None)
        if not reached:
            continue
        end = reached["t"] + 10
        for r in tr:
            if r["t"] > reached["t"] and (r["high"] != r0["high"] or r["ev_oom_kill"] not in ("", "0")):
                end = min(end, r["t"])
                break
        c = at(end)
        if c["t"] - reached["t"] >= 2:
            rate_post = (c["current"] - reached["current"]) / (c["t"] - reached["t"])
            break
    if rate_post is None:
        bad.append("no window after memory.high was reached to measure the growth in")
    elif rate_post >= rate_pre:
        bad.append(f"growth did not slow: {rate_pre / MiB:.2f} MiB/s before, {rate_post / MiB:.2f} after")
if min_high == "max":
    bad.append("memory.high of gov never read below max while governed")

def fmt(v, unit="s"):
    return "-" if v is None else f"{v:.1f}{unit}"

rows = []
for n, label in (("gov", "governed"), ("ungov", "ungoverned")):
    d = res[n]
    end = gov_end if n == "gov" else ungov_end
    rp = d["replay"]
    d["d2o"] = d["oom"] - d["degrade"] if d["oom"] is not None and d["degrade"] is not None else None
    d["d2o_replay"] = rp["lead_s"]["degrade"]
    ev = d["trace"][-1]["ev_high"]
    if d["d2o"] is None and d["degrade"] is not None and not end:
        d2o = f">{float(deadline) - d['degrade']:.0f}s"
    else:
        d2o = fmt(d["d2o"])
    rows.append((label, fmt(d["degrade"]), fmt(d["oom"]) if d["oom"] is not None else
                 (f">{deadline}s" if not end else f"ended {end}s"),
                 at_max[n] + "s" if at_max[n] else "-", d2o, fmt(d["d2o_replay"]),
                 str(len(d["sets"])), str(len(d["livelock"])), str(ev)))
hdr = ("run", "degrade_at", "oom_at", "at_max", "degrade->oom", "(replay)", "high_sets",
       "livelocks", "ev_high")
w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
print(f"{me}: times from the start of the leaks; degrade->oom from memgovd's log, "
      "(replay) from memgovctl replay --json of the recorded trace with the guard policy")
for r in (hdr, *rows):
    print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
for n, label in (("gov", "governed"), ("ungov", "ungoverned")):
    print(f"{me}: {label}: first at degrade or above because: {res[n]['degrade_why']}")
if limited:
    print(f"{me}: gov: first memory.high {int(limited[0]['high']) / MiB:.1f} MiB at "
          f"{fmt(g['sets'][0][0] if g['sets'] else None)}; lowest read {int(min_high) / MiB:.1f} MiB; "
          f"growth {fmt(rate_pre and rate_pre / MiB, ' MiB/s')} before, "
          f"{fmt(rate_post and rate_post / MiB, ' MiB/s')} after it was reached")
for t, m in g["sets"]:
    print(f"  {t:7.1f}s {m.split(': ', 2)[-1]}")
for t, m in g["livelock"]:
    print(f"  {t:7.1f}s livelock event")

u = res["ungov"]
if u["oom"] is None:
    bad.append("ungov was not OOM-killed (or memgovd did not see it)")
if u["degrade"] is None:
    bad.append("memgovd never put ungov at degrade")
if g["degrade"] is None:
    bad.append("memgovd never put gov at degrade")
if u["d2o"] is not None and g["degrade"] is not None:
    gov_d2o = g["d2o"] if g["d2o"] is not None else float(deadline) - g["degrade"]
    if gov_d2o <= u["d2o"]:
        bad.append(f"degrade->OOM governed {gov_d2o:.1f}s is not longer than ungoverned {u['d2o']:.1f}s")
    if u["d2o_replay"] is not None and gov_d2o <= u["d2o_replay"]:
        bad.append(f"degrade->OOM governed {gov_d2o:.1f}s is not longer than ungoverned by replay "
                   f"{u['d2o_replay']:.1f}s")
if high_after != "max":
    bad.append(f"after SIGTERM gov's memory.high is {high_after}, not max (the original)")
for b in bad:
    print(f"{me}: FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
say "PASS: memory.high applied and slowed the leak; degrade->OOM longer governed; SIGTERM gave max back"
