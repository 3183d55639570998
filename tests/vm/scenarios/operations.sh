#!/usr/bin/env bash
# What an operator reads matches what the kernel says, on a real kernel: memgovd governs the
# leaky example service (memory.max=256M, memory.high=128M written by hand, no swap) through
# idle, a heap leak that memory.high throttles, memory.high raised to 192M and then lifted,
# and the OOM kill. At each stage /metrics and GET /v1/status are scraped over the Unix
# socket (curl --unix-socket), several times, and their figures are compared with the
# cgroup's own files read just before and just after:
#   memory.current  within what the files showed from 4 sample intervals before the scrape
#                   to just after it (the sample is at most that old: checked), +- 2 MiB;
#   memory.max, memory.high, the effective limit   exactly (absent / null when "max");
#   memory.events   each counter within [value 4 intervals before, value after], exactly
#                   when it did not move;
#   PSI             the totals likewise, avg10 within the files' range +- 0.5 points;
#   the level       /metrics and the status say the same one;
#   the runtime     goroutines as leaky's own /debug/vars says, +- 10.
# `memgovctl status` and `memgovctl status --json` must list the instance with the same
# figures. A failure names the figure, both values and by how much they differ.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory. Writes
# memgovd's log, each round's verdict (operations.rounds), scrapes and status documents to
# $MEMGOV_VM_OUT when that is set.
set -euo pipefail

me=operations
fail() {
        echo "$me: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && tail -n 40 "$log" | sed 's/^/  memgovd: /' >&2
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
# The system's python when there is one: a version manager's shim costs seconds per start
# under emulation.
python=$(command -v python3)
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
[ -x "$leaky" ] || {
        echo "$me: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
}

name=memgov-ops.$$
cg=$root/$name
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
sock=$work/run/memgovd.sock
port=16081
interval_ms=250
memgovd_pid="" leaky_pid=""

cleanup() {
        local rc=$?
        set +e
        exec 2>/dev/null
        [ -n "$leaky_pid" ] && kill -KILL "$leaky_pid"
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid"
        if [ -d "$cg" ]; then
                echo 1 >"$cg/cgroup.kill"
                for _ in $(seq 50); do rmdir "$cg" && break; sleep 0.1; done
        fi
        [ -n "${state_mounted:-}" ] && umount "$state"
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$cg"
echo 256M >"$cg/memory.max"
echo 128M >"$cg/memory.high"
[ -e "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"

# memory.high is the operator's here (mode off): memgovd must report it, not change it.
# The state dir on a tmpfs of its own (the dump store wants more free space than the
# guest's /tmp has); the runtime figures from leaky's expvar every second.
state=$work/state
mkdir -p "$work/policies" "$state" "$work/run"
mount -t tmpfs -o size=1g,mode=0700 memgov-ops-state "$state" || fail "cannot mount a tmpfs on $state"
state_mounted=1
cat >"$work/policies/leaky.json" <<EOF
{
  "service": "leaky",
  "cgroup": "$name",
  "sample_interval": "${interval_ms}ms",
  "forecast": { "window": "4s", "horizon": "5m" },
  "levels": {
    "warn": { "usage": "40%" },
    "degrade": { "usage": "60%" },
    "critical": { "usage": "85%" },
    "hold": "5m"
  },
  "memory_high": { "mode": "off" },
  "runtime": { "url": "http://127.0.0.1:$port/debug/vars", "interval": "1s", "timeout": "900ms" }
}
EOF
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        2>"$log" &
memgovd_pid=$!

bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$cg" \
        "$leaky" --mode idle --listen 127.0.0.1:$port 2>"$out/$me.leaky.log" &
leaky_pid=$!

# The comparisons, one round per call: check.py ROUND [ctl] [runtime]. Exit 1 with one line
# per figure that differed.
cat >"$work/check.py" <<'PY'
import json, os, re, subprocess, sys, time

sock, cg, name, ctl = (os.environ[k] for k in ("SOCK", "CG", "NAME", "CTL"))
ival = int(os.environ["INTERVAL_MS"]) / 1000.0
out, port, daemon_pid = os.environ["OUT"], os.environ["PORT"], int(os.environ["MEMGOVD_PID"])
rnd, opts = sys.argv[1], set(sys.argv[2:])
MiB = 1 << 20
SLACK = 2 * MiB            # an idle Go runtime and the kernel move memory.current by pages
LOOKBACK = 4               # sample intervals read before the scrape
LEVELS = ["ok", "warn", "degrade", "critical"]
EVENTS = ["low", "high", "max", "oom", "oom_kill"]
problems = []


def problem(msg):
    problems.append(msg)


def rd(f):
    with open(os.path.join(cg, f)) as fh:
        return fh.read()


def limit(f):
    v = rd(f).strip()
    return None if v == "max" else int(v)


def files():
    d = {"current": int(rd("memory.current")), "max": limit("memory.max"),
         "high": limit("memory.high")}
    d["events"] = {k: int(v) for k, v in (l.split() for l in rd("memory.events").splitlines())}
    for line in rd("memory.pressure").splitlines():
        kind, *fields = line.split()
        kv = dict(f.split("=") for f in fields)
        d["psi_" + kind] = (float(kv["avg10"]), int(kv["total"]))
    return d


def curl(path):
    r = subprocess.run(["curl", "-sf", "--max-time", "5", "--unix-socket", sock,
                        "http://memgovd" + path], capture_output=True)
    if r.returncode != 0:
        print(f"{rnd}: FAIL: curl {path} over {sock} exited {r.returncode}: "
              f"{r.stderr.decode().strip()}")
        sys.exit(1)
    return r.stdout.decode()


def metrics():
    text = curl("/metrics")
    m = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            m[series] = float(value)
    return text, m


def series(metric, **extra):
    labels = f'service="leaky",cgroup="{name}"'
    for k, v in extra.items():
        labels += f',{k}="{v}"'
    return f"{metric}{{{labels}}}"


def mib(b):
    return f"{b / MiB:.2f} MiB"


def within(what, got, values, slack, unit=""):
    """got must lie within [min(values) - slack, max(values) + slack]."""
    lo, hi = min(values) - slack, max(values) + slack
    if got is None:
        problem(f"{what}: absent, the files said {min(values)}..{max(values)}{unit}")
    elif got < lo or got > hi:
        off = lo - got if got < lo else got - hi

        def amount(v):
            return f"{int(v)} B ({mib(v)})" if unit == " B" else f"{v:g}{unit}"
        problem(f"{what}: {got}{unit}, the files said {min(values)}..{max(values)}{unit} "
                f"around it: off by {amount(off)} beyond the tolerance of {amount(slack)}")


def exact(what, got, want):
    if got != want:
        diff = "" if got is None or want is None else f": off by {got - want:+d}"
        problem(f"{what}: {'absent' if got is None else got}, the file says "
                f"{'max (absent)' if want is None else want}{diff}")


def metric_int(m, s):
    v = m.get(s)
    return None if v is None else int(v)


def find_instance(doc, source):
    for i in doc.get("instances", []):
        if i.get("cgroup") == name:
            return i
    problem(f"{source}: no instance for the cgroup {name}: {json.dumps(doc)[:300]}")
    return None


def fmt_bytes(b):  # status_format_bytes(): memgovctl's table
    if b < 1024:
        return f"{b}B"
    v, u, units = b / 1024, 0, "KMGTPE"
    while v >= 1023.95 and u + 1 < len(units):
        v /= 1024
        u += 1
    return f"{v:.1f}{units[u]}"


def parse_bytes(s):
    m = re.fullmatch(r"([0-9.]+)([KMGTPE]?)B?", s)
    if not m:
        return None
    return float(m.group(1)) * 1024 ** ("_KMGTPE".index(m.group(2)) if m.group(2) else 0)


# Files from LOOKBACK intervals before the scrape, just before, and just after it.
f_early = files()
time.sleep(LOOKBACK * ival)
f0 = files()
text1, m1 = metrics()
status_text = curl("/v1/status")
f1 = files()
text2, m2 = metrics()
win = [f_early, f0, f1]
with open(os.path.join(out, f"{rnd}.metrics"), "w") as fh:
    fh.write(text1)
with open(os.path.join(out, f"{rnd}.status.json"), "w") as fh:
    fh.write(status_text)
doc = json.loads(status_text)
st = find_instance(doc, "GET /v1/status")
if st is None:
    print(f"{rnd}: FAIL: " + "; ".join(problems))
    sys.exit(1)

# The sample behind the figures is recent enough for the window to cover it.
age = st["last_sample_age_s"]
if age is None or age > LOOKBACK * ival:
    problem(f"status last_sample_age_s: {age}, more than {LOOKBACK} sample intervals "
            f"({LOOKBACK * ival:g} s): samples do not keep up")

cur = [f["current"] for f in win]
within("memory.current: /metrics memgov_memory_current_bytes",
       metric_int(m1, series("memgov_memory_current_bytes")), cur, SLACK, " B")
within("memory.current: status memory.current_bytes", st["memory"]["current_bytes"], cur,
       SLACK, " B")
for key, metric, field in (("max", "memgov_memory_max_bytes", "max_bytes"),
                           ("high", "memgov_memory_high_bytes", "high_bytes")):
    if f_early[key] != f1[key]:
        problem(f"memory.{key} changed during the round ({f_early[key]} -> {f1[key]}): "
                "nobody should write it")
    exact(f"memory.{key}: /metrics {metric}", metric_int(m1, series(metric)), f1[key])
    exact(f"memory.{key}: status memory.{field}", st["memory"][field], f1[key])
exact("effective limit: /metrics memgov_memory_limit_bytes",
      metric_int(m1, series("memgov_memory_limit_bytes")), f1["max"])
exact("effective limit: status memory.limit_bytes", st["memory"]["limit_bytes"], f1["max"])

for ev in EVENTS:
    got = metric_int(m1, series("memgov_memory_events_total", event=ev))
    vals = [f["events"][ev] for f in win]
    if vals[0] == vals[-1]:
        exact(f"memory.events {ev}: /metrics memgov_memory_events_total", got, vals[-1])
    else:
        within(f"memory.events {ev}: /metrics memgov_memory_events_total", got, vals, 0)

for kind in ("some", "full"):
    avgs = [f["psi_" + kind][0] for f in win]
    totals = [f["psi_" + kind][1] / 1e6 for f in win]
    within(f"memory.pressure {kind} total: /metrics memgov_pressure_{kind}_seconds_total",
           m1.get(series(f"memgov_pressure_{kind}_seconds_total")), totals, 0.001, " s")
    ratio = m1.get(series(f"memgov_pressure_{kind}_avg10_ratio"))
    within(f"memory.pressure {kind} avg10: /metrics memgov_pressure_{kind}_avg10_ratio x 100",
           None if ratio is None else round(ratio * 100, 4), avgs, 0.5, "%")
    within(f"memory.pressure {kind} avg10: status pressure.{kind}_avg10",
           st["pressure"][f"{kind}_avg10"], avgs, 0.5, "%")

l1 = metric_int(m1, series("memgov_level"))
l2 = metric_int(m2, series("memgov_level"))
if l1 is None or l2 is None:
    problem("/metrics has no memgov_level for the cgroup")
elif LEVELS.index(st["level"]) not in (l1, l2):
    problem(f"level: status says {st['level']}, /metrics said {LEVELS[l1]} before and "
            f"{LEVELS[l2]} after it")

if "runtime" in opts:
    g = metric_int(m1, series("memgov_runtime_goroutines"))
    try:
        vars_ = json.loads(subprocess.run(["curl", "-sf", "--max-time", "5",
                                           f"http://127.0.0.1:{port}/debug/vars"],
                                          capture_output=True, check=True).stdout)
        own = vars_["goroutines"]
    except Exception as e:  # noqa: BLE001 - the message is the point
        own = None
        problem(f"leaky's /debug/vars unreadable: {e}")
    if own is not None:
        within("goroutines: /metrics memgov_runtime_goroutines (leaky's /debug/vars)", g,
               [own], 10)
    heap = metric_int(m1, series("memgov_runtime_heap_inuse_bytes"))
    if heap is None or heap <= 0:
        problem(f"/metrics memgov_runtime_heap_inuse_bytes: {heap}, expected leaky's HeapInuse")
    ok = metric_int(m1, series("memgov_runtime_polls_total", result="ok"))
    if not ok:
        problem(f"/metrics memgov_runtime_polls_total{{result=ok}}: {ok}, expected >= 1")

if "ctl" in opts:
    g0 = files()
    r = subprocess.run([ctl, "status", "--json", "--socket", sock], capture_output=True)
    r2 = subprocess.run([ctl, "status", "--socket", sock], capture_output=True)
    g1 = files()
    _, m3 = metrics()
    ctl_levels = {l1, l2, metric_int(m3, series("memgov_level"))}
    if r.returncode != 0 or r2.returncode != 0:
        problem(f"memgovctl status exited {r.returncode} (--json) and {r2.returncode}: "
                f"{r.stderr.decode().strip()} {r2.stderr.decode().strip()}")
    else:
        with open(os.path.join(out, f"{rnd}.memgovctl-status.txt"), "wb") as fh:
            fh.write(r2.stdout)
        cwin = [f_early, f0, f1, g0, g1]
        ci = find_instance(json.loads(r.stdout), "memgovctl status --json")
        if ci:
            if ci["service"] != "leaky":
                problem(f"memgovctl status --json: service {ci['service']}, expected leaky")
            if doc["daemon"]["pid"] != daemon_pid:
                problem(f"status daemon.pid {doc['daemon']['pid']}, memgovd is {daemon_pid}")
            within("memory.current: memgovctl status --json", ci["memory"]["current_bytes"],
                   [f["current"] for f in cwin], SLACK, " B")
            exact("memory.max: memgovctl status --json", ci["memory"]["max_bytes"], g1["max"])
            exact("memory.high: memgovctl status --json", ci["memory"]["high_bytes"], g1["high"])
            if LEVELS.index(ci["level"]) not in ctl_levels:
                problem(f"level: memgovctl status --json says {ci['level']}, /metrics said "
                        f"{sorted(LEVELS[x] for x in ctl_levels if x is not None)}")
        lines = r2.stdout.decode().splitlines()
        head = lines[0] if lines else ""
        if f"(pid {daemon_pid})" not in head or ", 1 cgroup" not in head:
            problem(f"memgovctl status header: {head!r}: expected pid {daemon_pid} and 1 cgroup")
        rows = [re.split(r"\s{2,}", l.strip()) for l in lines[2:]]
        row = next((c for c in rows if len(c) >= 6 and c[0] == "leaky" and c[1] == name), None)
        if row is None:
            problem(f"memgovctl status lists no row for leaky {name}:\n{r2.stdout.decode()}")
        else:
            usage, _, lim = row[2].partition("/")
            lim = lim.split(" ")[0]
            if lim != fmt_bytes(g1["max"]):
                problem(f"memgovctl status USAGE/LIMIT {row[2]!r}: the limit should read "
                        f"{fmt_bytes(g1['max'])} (memory.max {g1['max']})")
            u = parse_bytes(usage)
            # One decimal of the unit: up to 0.05 of it lost to rounding.
            within("memory.current: memgovctl status USAGE", None if u is None else int(u),
                   [f["current"] for f in cwin], SLACK + MiB // 20, " B")
            if row[4] not in [LEVELS[x] for x in ctl_levels if x is not None]:
                problem(f"memgovctl status LEVEL {row[4]!r}, /metrics said "
                        f"{sorted(LEVELS[x] for x in ctl_levels if x is not None)}")
            want_high = "max" if g1["high"] is None else fmt_bytes(g1["high"])
            if row[5] != want_high:
                problem(f"memgovctl status MEMORY.HIGH {row[5]!r}, memory.high is "
                        f"{g1['high'] or 'max'}: expected {want_high!r}")

if problems:
    print(f"{rnd}: FAIL:")
    for p in problems:
        print("  " + p)
    sys.exit(1)
ev = f1["events"]
print(f"{rnd}: ok: memory.current {mib(f1['current'])} (/metrics "
      f"{mib(m1[series('memgov_memory_current_bytes')])}, sample {age:.3f}s old), "
      f"memory.high {f1['high'] or 'max'}, events high={ev['high']} max={ev['max']} "
      f"oom={ev['oom']} oom_kill={ev['oom_kill']}, level {st['level']}, "
      f"samples {st['samples']}" + (", memgovctl status agrees" if "ctl" in opts else ""))
PY
check() {
        SOCK=$sock CG=$cg NAME=$name CTL=$ctl INTERVAL_MS=$interval_ms OUT=$out PORT=$port \
                MEMGOVD_PID=$memgovd_pid "$python" "$work/check.py" "$@" | tee -a "$out/$me.rounds" ||
                fail "round $1"
}
leaky_control() {
        curl -sf --max-time 5 -X POST "http://127.0.0.1:$port/control?$1" >/dev/null ||
                fail "leaky refused /control?$1"
}
events_high() { awk '$1 == "high" { print $2 }' "$cg/memory.events"; }
now() { date +%s; }

# Up: memgovd samples the cgroup and has polled leaky's runtime figures at least once.
for _ in $(seq 300); do
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early"
        polls=$(curl -sf --max-time 2 --unix-socket "$sock" http://memgovd/metrics 2>/dev/null |
                awk -v s="memgov_runtime_polls_total{service=\"leaky\",cgroup=\"$name\",result=\"ok\"}" \
                        '$1 == s { print $2 }') || true
        [ -n "${polls:-}" ] && [ "$polls" -ge 1 ] && break
        sleep 0.1
done
[ -n "${polls:-}" ] && [ "$polls" -ge 1 ] || fail "memgovd did not poll leaky's runtime figures"
say "memgovd governs $name; leaky is up and idle"

check idle-1 runtime ctl

# A heap leak at 8 MiB/s that stops by itself after 136 MiB: past memory.high (128M), where
# the kernel throttles it (leaky hardly answers then) and counts memory.events high.
leaky_control "mode=heap&rate=8MiB&max_total=136MiB"
t0=$(now)
say "leaking 8 MiB/s, 136 MiB in all, under memory.high=128M, memory.max=256M"
check leak-1
until [ "$(events_high)" -gt 0 ]; do
        [ $(($(now) - t0)) -lt 90 ] || fail "memory.events high still 0 after 90 s of leaking"
        kill -0 "$leaky_pid" 2>/dev/null || fail "leaky ended before memory.high held it"
        sleep 0.5
done
say "memory.high holds the leak after $(($(now) - t0))s (memory.events high $(events_high))"
check throttled-1 ctl

# memory.high raised by hand to 192M: the leak completes below it, the high counter stops,
# leaky answers again and memgovd polls its runtime figures again.
echo 192M >"$cg/memory.high"
for _ in $(seq 300); do
        g=$(curl -sf --max-time 2 --unix-socket "$sock" http://memgovd/metrics 2>/dev/null |
                awk -v s="memgov_runtime_goroutines{service=\"leaky\",cgroup=\"$name\"}" \
                        '$1 == s { print $2 }') || true
        [ -n "${g:-}" ] && curl -sf --max-time 2 "http://127.0.0.1:$port/control" >/dev/null && break
        sleep 0.2
done
[ -n "${g:-}" ] || fail "no fresh runtime figures from leaky 60 s after memory.high was raised"
say "memory.high raised to 192M; leaky answers again (events high $(events_high))"
check raised-1 runtime ctl

# memory.high lifted by hand: absent from /metrics, null in the status, "max" in the table.
echo max >"$cg/memory.high"
sleep 1
check unlimited-1 ctl
leaky_control "mode=heap&rate=8MiB&max_total=1GiB"
t0=$(now)
say "memory.high lifted; leaking on to memory.max"
exec 3>&2 2>/dev/null # bash's "Killed" notice of the OOM-killed job is expected
while kill -0 "$leaky_pid" 2>/dev/null; do
        [ $(($(now) - t0)) -lt 120 ] || { exec 2>&3; fail "leaky still runs after 120 s: no OOM kill"; }
        sleep 0.2
done
leaky_rc=0
wait "$leaky_pid" || leaky_rc=$?
exec 2>&3 3>&-
leaky_pid=""
oom_kill=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events")
[ "${oom_kill:-0}" -ge 1 ] || fail "leaky ended (status $leaky_rc) without an OOM kill"
say "the kernel OOM-killed leaky after $(($(now) - t0))s (status $leaky_rc)"
# memgovd samples after the kill (inotify on memory.events); then the counters hold still.
sleep 1
check oom-1 ctl

kill -TERM "$memgovd_pid"
rc=0
wait "$memgovd_pid" || rc=$?
memgovd_pid=""
[ "$rc" = 0 ] || fail "memgovd exited with status $rc on SIGTERM"
say "PASS: /metrics, the status API and memgovctl status match the cgroup's files through idle, a leak, throttling at memory.high, memory.high raised and lifted, and the OOM kill"
