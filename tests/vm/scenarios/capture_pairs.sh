#!/usr/bin/env bash
# Capture pairs before the OOM kill, on a real kernel: memgovd governs two cgroups
# (memory.max=192M, no swap) in which the leaky example service leaks — goroutines in one,
# heap in the other — until the kernel OOM-kills it. The policy captures pprof at warn (the
# base) and at critical (the current, diffed against the base). Checked as an operator
# would: the current capture's suspects.json names the leaking function first
# (main.stuckWorker or main.spawnStuckWorker; main.leakIntoGlobalMap), the pair was complete
# at least 30 s before the OOM kill, `go tool pprof -top` opens the heap profile and
# `go tool pprof -diff_base` opens the pair. Both run at once: a few minutes in the VM.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory. Copies the
# dumps, memgovd's log and a summary to $MEMGOV_VM_OUT when that is set.
set -euo pipefail

fail() {
        echo "capture_pairs: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && sed 's/^/  memgovd: /' "$log" >&2
        exit 1
}
say() { echo "capture_pairs: [${SECONDS}s] $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
leaky=$bin/examples/leaky/leaky
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] && [ -x "$bin/memgovctl" ] || fail "memgovd or memgovctl is not built in $bin"
for tool in curl python3 go; do
        command -v $tool >/dev/null || {
                echo "capture_pairs: $tool is missing (tools/deps.sh): skipped" >&2
                exit 77
        }
done
if [ ! -x "$leaky" ]; then
        echo "capture_pairs: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
fi

limit_mb=192
lead_min_s=30
deadline_s=300
modes=(goroutine heap)
declare -A port=([goroutine]=16071 [heap]=16072)
# 24 goroutines/s holding 128 KiB (and their stacks), or 3 MiB/s of heap: 1 to 3 MiB/s as
# the emulated CPU manages
declare -A leak=([goroutine]="mode=goroutine&rate=24&goroutine_buf=128KiB" [heap]="mode=heap&rate=3MiB")
declare -A cg=() pid=() oom_at=() status=()

work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/capture_pairs.memgovd.log
memgovd_pid=""

cleanup() {
        local m
        for m in "${modes[@]}"; do
                [ -n "${pid[$m]:-}" ] && kill -KILL "${pid[$m]}" 2>/dev/null
                if [ -n "${cg[$m]:-}" ] && [ -d "${cg[$m]}" ]; then
                        echo 1 >"${cg[$m]}/cgroup.kill" 2>/dev/null || true
                        for _ in $(seq 50); do rmdir "${cg[$m]}" 2>/dev/null && break; sleep 0.1; done
                fi
        done
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid" 2>/dev/null
        [ -n "${state_mounted:-}" ] && umount "$state" 2>/dev/null
        rm -rf "$work"
        return 0
}
trap cleanup EXIT

# The dumps on a tmpfs of their own: the guest's /tmp is below the dump store's free-space
# floor, and the 9p out share refuses RENAME_NOREPLACE. They are copied out at the end.
state=$work/state
mkdir -p "$work/policies" "$state"
mount -t tmpfs -o size=2g,mode=0700 memgov-pairs-state "$state" || fail "cannot mount a tmpfs on $state"
state_mounted=1

# warn at 15% of the limit (the base), critical at 30% (the current: 134 MiB below the
# limit, 45 s or more at 3 MiB/s), degrade in between captures nothing; usage conditions
# only, so that the levels come at known sizes whatever the emulated CPU's pace. A 60 s
# window: the ring, and so the bundle's trace, holds 120 samples. memory.high is left
# alone: the kernel's OOM kill comes.
for m in "${modes[@]}"; do
        cg[$m]=$root/memgov-pairs-$m.$$
        mkdir "${cg[$m]}"
        echo ${limit_mb}M >"${cg[$m]}/memory.max"
        [ -e "${cg[$m]}/memory.swap.max" ] && echo 0 >"${cg[$m]}/memory.swap.max"
        cat >"$work/policies/leaky-$m.json" <<EOF
{
  "service": "leaky-$m",
  "cgroup": "${cg[$m]#"$root"/}",
  "sample_interval": "500ms",
  "forecast": { "window": "60s", "horizon": "10m" },
  "levels": {
    "warn": { "usage": "15%" },
    "degrade": { "usage": "22%" },
    "critical": { "usage": "30%" },
    "hold": "10m"
  },
  "memory_high": { "mode": "off" },
  "pprof": { "url": "http://127.0.0.1:${port[$m]}/debug/pprof", "on": ["warn", "critical"],
             "kinds": ["heap", "goroutine"], "cooldown": "5s", "timeout": "20s" }
}
EOF
done
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        2>"$log" &
memgovd_pid=$!

# Each leaky joins its cgroup before it starts, idle until memgovd samples and pprof answers.
for m in "${modes[@]}"; do
        bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "${cg[$m]}" \
                "$leaky" --mode idle --listen 127.0.0.1:${port[$m]} 2>"$work/leaky-$m.log" &
        pid[$m]=$!
done
for m in "${modes[@]}"; do
        for _ in $(seq 300); do
                curl -sf --max-time 2 "http://127.0.0.1:${port[$m]}/control" >/dev/null && break
                kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early"
                sleep 0.1
        done
        curl -sf --max-time 2 "http://127.0.0.1:${port[$m]}/control" >/dev/null ||
                fail "leaky ($m) does not answer on port ${port[$m]}"
done
sleep 2 # a few samples of the idle service: the levels start from ok

t0=$(date +%s.%N)
for m in "${modes[@]}"; do
        curl -sf --max-time 5 -X POST "http://127.0.0.1:${port[$m]}/control?${leak[$m]}" >/dev/null ||
                fail "cannot start leaky's $m leak (${leak[$m]})"
done
say "leaking (${modes[*]}) under memory.max=${limit_mb}M"

# Until both are killed: the moment memory.events first shows the kill, per cgroup.
# bash reports a SIGKILLed background job ("Killed") on its own stderr: expected here.
exec 3>&2 2>/dev/null
for _ in $(seq $((deadline_s * 5))); do
        pending=0
        for m in "${modes[@]}"; do
                [ -n "${oom_at[$m]:-}" ] && continue
                k=$(awk '$1 == "oom_kill" { print $2 }' "${cg[$m]}/memory.events")
                if [ "${k:-0}" -ge 1 ]; then
                        oom_at[$m]=$(date +%s.%N)
                else
                        pending=1
                fi
        done
        [ $pending = 0 ] && break
        sleep 0.2
done
for m in "${modes[@]}"; do
        wait "${pid[$m]}" 2>/dev/null && status[$m]=0 || status[$m]=$?
        pid[$m]=""
done
exec 2>&3 3>&-
for m in "${modes[@]}"; do
        [ -n "${oom_at[$m]:-}" ] || fail "leaky ($m) was not OOM-killed within ${deadline_s}s"
        say "$m: OOM kill after $(awk -v a="${oom_at[$m]}" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')s (leaky status ${status[$m]})"
done
sleep 3 # memgovd's own oom_kill capture (a snapshot) lands in the store too
say "checking the dumps"

# go tool pprof opens the profiles as they are: -top on the current heap, -diff_base on the
# pairs. The pprof tool itself (what `go tool pprof` runs), in the background while the
# dumps are checked: each start of a Go binary or of python costs seconds of emulated CPU.
# The captures are <time>-warn and <time>-critical, memgovd's incident bundles
# <time>-incident-critical and <time>-incident-oom_kill.
export HOME=${HOME:-/root} GOTOOLCHAIN=local GOFLAGS=
pprof=$(go env GOTOOLDIR)/pprof
[ -x "$pprof" ] || fail "go tool pprof is not there ($pprof)"
hb=$(ls -d "$state"/dumps/leaky-heap/*Z-warn) hc=$(ls -d "$state"/dumps/leaky-heap/*Z-critical)
gb=$(ls -d "$state"/dumps/leaky-goroutine/*Z-warn) gc=$(ls -d "$state"/dumps/leaky-goroutine/*Z-critical)
"$pprof" -top "$hc/heap.pb.gz" >"$work/pprof-top-heap" 2>&1 &
p1=$!
"$pprof" -top -diff_base "$hb/heap.pb.gz" "$hc/heap.pb.gz" >"$work/pprof-diff-heap" 2>&1 &
p2=$!
"$pprof" -top -diff_base "$gb/goroutine.pb.gz" "$gc/goroutine.pb.gz" >"$work/pprof-diff-goroutine" 2>&1 &
p3=$!

# Per mode: the base and current dumps, the lead of the current before the kill, the top
# suspects against what the mode leaks, and the bundle at the kill: its decisions, its
# report, and a trace that memgovctl replay reads back with the OOM kill in it.
verdict=$work/verdict.txt
python3 - "$state/dumps" "$bin/memgovctl" "$work/policies" "$lead_min_s" \
        "goroutine=${oom_at[goroutine]}" "heap=${oom_at[heap]}" >"$verdict" <<'PY' ||
import glob, json, os, subprocess, sys
dumps, ctl, policies, lead_min = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
for arg in sys.argv[5:]:
    mode, oom_at = arg.split("=")[0], float(arg.split("=")[1])
    d = os.path.join(dumps, "leaky-" + mode)
    def only(pattern):
        found = sorted(glob.glob(os.path.join(d, pattern)))
        if len(found) != 1:
            sys.exit(f"{mode}: expected one dump {pattern}, found "
                     f"{[os.path.basename(f) for f in found]} among "
                     f"{sorted(os.listdir(d)) if os.path.isdir(d) else 'nothing'}")
        return found[0]
    base, cur, bundle = only("*Z-warn"), only("*Z-critical"), only("*Z-incident-oom_kill")
    s = json.load(open(os.path.join(cur, "suspects.json")))
    if s["base"] != base:
        sys.exit(f"{mode}: the current capture was diffed against {s['base']}, not {base}")
    kind, want = ("goroutine", {"main.stuckWorker", "main.spawnStuckWorker"}) \
        if mode == "goroutine" else ("heap", {"main.leakIntoGlobalMap"})
    growth = (s.get(kind) or {}).get("growth") or []
    if not growth:
        sys.exit(f"{mode}: suspects.json has no {kind} growth list: {json.dumps(s)[:400]}")
    top = growth[0]
    if top["function"] not in want:
        sys.exit(f"{mode}: the top {kind} suspect is {top['function']}, not {sorted(want)}: "
                 f"{[g['summary'] for g in growth[:3]]}")
    lead = oom_at - os.stat(os.path.join(cur, "manifest.json")).st_mtime
    if lead < lead_min:
        sys.exit(f"{mode}: the pair was complete {lead:.1f}s before the OOM kill, "
                 f"under {lead_min:.0f}s")
    size = sum(os.path.getsize(os.path.join(cur, f)) for f in os.listdir(cur))

    events = [json.loads(l) for l in open(os.path.join(bundle, "decisions.jsonl"))]
    kill = [e for e in events if e["action"] == "oom_kill"]
    if not kill:
        sys.exit(f"{mode}: the bundle's decisions.jsonl has no oom_kill: {events}")
    def first(level):
        t = [e["t_s"] for e in events if e["action"] == "level" and e["level"] == level]
        return f"{kill[0]['t_s'] - t[0]:.0f}s" if t else "never"
    report = open(os.path.join(bundle, "report.html")).read()
    for what in ('class="marker marker-oom_kill"', 'id="suspects"', top["function"]):
        if what not in report:
            sys.exit(f"{mode}: the bundle's report.html lacks {what}")
    r = subprocess.run([ctl, "replay", "--policy", os.path.join(policies, f"leaky-{mode}.json"),
                        "--json", os.path.join(bundle, "trace.csv")], capture_output=True, text=True)
    if r.returncode != 0 or json.loads(r.stdout)["oom_at_s"] is None:
        sys.exit(f"{mode}: memgovctl replay of the bundle's trace.csv: {r.returncode} "
                 f"{r.stdout[:300]} {r.stderr[:300]}")
    print(f"{mode}: base {os.path.basename(base)}, current {os.path.basename(cur)} complete "
          f"{lead:.1f}s before the OOM kill ({size // 1024} KiB); top {kind} suspect: "
          f"{top['summary']}" + (f"; next: {growth[1]['summary']}" if len(growth) > 1 else "")
          + f"; lead of warn {first('warn')}, critical {first('critical')}; bundle "
          f"{os.path.basename(bundle)}, its trace replays to the OOM kill")
PY
        fail "the captures or the bundles are not what they should be (see above)"

for check in "$p1 top-heap leakIntoGlobalMap" "$p2 diff-heap leakIntoGlobalMap" \
        "$p3 diff-goroutine stuckWorker"; do
        read -r p what want <<<"$check"
        wait "$p" || fail "go tool pprof ($what) failed: $(head -20 "$work/pprof-$what")"
        grep -q "$want" "$work/pprof-$what" ||
                fail "go tool pprof ($what) does not show $want: $(head -20 "$work/pprof-$what")"
        say "go tool pprof $what: $(grep -m1 "$want" "$work/pprof-$what" | sed 's/  */ /g')"
done

if [ -n "${MEMGOV_VM_OUT:-}" ]; then
        cp -r "$state/dumps" "$out/" 2>/dev/null || true
        cp "$verdict" "$out/capture_pairs.txt"
fi
kill -TERM "$memgovd_pid"
wait "$memgovd_pid" || true
memgovd_pid=""
sed 's/^/  /' "$verdict"
say "PASS: both pairs complete at least ${lead_min_s}s before the OOM kill, leaking functions named"
