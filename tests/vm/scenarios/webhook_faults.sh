#!/usr/bin/env bash
# Bad webhook receivers do not hurt the daemon or the other services, on a real kernel:
# one memgovd governs five services (cgroups with memory.max=96M, each running the leaky
# example service, which leaks 64M of heap at 2 MiB/s and then lets it all go, twice, so
# that their levels climb warn, degrade, critical and come back) whose webhook endpoints
# are:
#   good  the service's own receiver (leaky, signed, honours the webhook)
#   dead  a port nobody listens on (connection refused)
#   slow  a receiver that reads the request and then hangs for 60 s
#   e500  a receiver that answers 500 to everything
#   gone  a receiver that answers 410 Gone
# Checked as an operator would see it, while the bad receivers misbehave:
#   - every webhook of good is delivered on its first attempt, and its median latency (the
#     level change to "delivered" in memgovd's log) stays below one attempt's timeout of the
#     bad endpoints (2 s), which a loop waiting on a hung receiver could not do;
#   - /metrics answers, and memgov_samples_total of every service advances while the slow
#     receiver holds requests open;
#   - memgov_webhook_deliveries_total says what happened: good delivered and never failed;
#     dead, slow and e500 failed (nothing delivered); gone disabled (the 410 and the events
#     after it), and its receiver saw a single request (nothing is sent after the 410).
# memgovd's log (each line prefixed with the guest's clock) and the receivers' logs go to
# $MEMGOV_VM_OUT.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=webhook_faults
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
command -v curl >/dev/null && command -v python3 >/dev/null || {
        echo "$me: curl or python3 is missing: skipped" >&2
        exit 77
}
[ -x "$leaky" ] || {
        echo "$me: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
}

names=(good dead slow e500 gone)
declare -A leaky_port=([good]=16301 [dead]=16302 [slow]=16303 [e500]=16304 [gone]=16305)
declare -A hook_port=([good]=16301 [dead]=16314 [slow]=16311 [e500]=16312 [gone]=16313)

parent=memgov-whf.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
sock=$work/run/memgovd.sock
memgovd_pid="" stamp_pid="" rcv_pid=""
declare -A pid=()

cleanup() {
        local rc=$? n
        set +e
        exec 2>/dev/null
        for n in "${!pid[@]}"; do kill -KILL "${pid[$n]}"; done
        [ -n "$rcv_pid" ] && kill -KILL "$rcv_pid"
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid"
        [ -n "$stamp_pid" ] && kill -KILL "$stamp_pid"
        for n in "${names[@]}"; do
                [ -d "$pcg/$n" ] || continue
                echo 1 >"$pcg/$n/cgroup.kill"
                for _ in $(seq 50); do rmdir "$pcg/$n" && break; sleep 0.1; done
        done
        [ -d "$pcg" ] && rmdir "$pcg"
        [ -n "${state_mounted:-}" ] && umount "$work/state"
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$pcg"
echo +memory >"$pcg/cgroup.subtree_control"
for n in "${names[@]}"; do
        mkdir "$pcg/$n"
        echo 96M >"$pcg/$n/memory.max"
        [ -e "$pcg/$n/memory.swap.max" ] && echo 0 >"$pcg/$n/memory.swap.max"
done
mkdir -p "$work/policies" "$work/state" "$work/run"
mount -t tmpfs -o size=64m,mode=0700 memgov-whf-state "$work/state" || fail "cannot mount a tmpfs"
state_mounted=1
secret=$work/leaky.secret
(umask 077 && printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$secret")

# The misbehaving receivers: one python3 process, a thread per request.
cat >"$work/receivers.py" <<'PY'
import http.server, sys, threading, time
log = open(sys.argv[1], "a", buffering=1)
def handler(kind):
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            log.write(f"{time.time():.3f} {kind} {self.headers.get('webhook-id')}\n")
            if kind == "slow":
                time.sleep(60)
            code = {"slow": 200, "e500": 500, "gone": 410}[kind]
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()
        def log_message(self, *a):
            pass
    return H
for kind, port in (("slow", int(sys.argv[2])), ("e500", int(sys.argv[3])), ("gone", int(sys.argv[4]))):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(kind))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
log.write("ready\n")
threading.Event().wait()
PY
: >"$out/$me.receivers.log"
python3 "$work/receivers.py" "$out/$me.receivers.log" ${hook_port[slow]} ${hook_port[e500]} ${hook_port[gone]} &
rcv_pid=$!

# Levels by usage only, about 7 s apart at 2 MiB/s, and recovered 3 s after the heap is
# let go. (Not bursts in a loop: memgovd holds the level of a service whose memory cycles
# within 2 minutes at the cycle's peak, as it does for a garbage collector's sawtooth.) The
# bad endpoints give up soon (2 s per attempt, 6 s in all), so that each event ends as
# failed before the next comes.
for n in "${names[@]}"; do
        if [ $n = good ]; then timeout=2s deadline=20s; else timeout=2s deadline=6s; fi
        cat >"$work/policies/$n.json" <<EOF
{
  "service": "$n",
  "cgroup": "$parent/$n",
  "sample_interval": "500ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": {
    "warn": { "usage": "25%" },
    "degrade": { "usage": "40%" },
    "critical": { "usage": "55%" },
    "hold": "3s"
  },
  "memory_high": { "mode": "off" },
  "webhooks": [
    { "url": "http://127.0.0.1:${hook_port[$n]}/memgov", "secret_file": "$secret",
      "events": ["warn", "degrade", "critical", "recovered"], "timeout": "$timeout", "deadline": "$deadline" }
  ]
}
EOF
done
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$work/state", "rescan_interval": "1h" }
EOF
# memgovd's log with the guest's clock in front of every line, through a fifo so that $!
# is memgovd's pid.
mkfifo "$work/log.fifo"
(while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done <"$work/log.fifo" >"$log") &
stamp_pid=$!
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        --log-level debug 2>"$work/log.fifo" &
memgovd_pid=$!

for n in "${names[@]}"; do
        wh=()
        [ $n = good ] && wh=(--webhook-secret-file "$secret")
        bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$pcg/$n" \
                "$leaky" --mode idle --listen "127.0.0.1:${leaky_port[$n]}" "${wh[@]}" \
                2>"$out/$me.$n.log" &
        pid[$n]=$!
done
for n in "${names[@]}"; do
        for _ in $(seq 600); do
                curl -sf --max-time 2 "http://127.0.0.1:${leaky_port[$n]}/control" >/dev/null &&
                        grep -q " $n: governing" "$log" && break
                kill -0 "${pid[$n]}" 2>/dev/null || fail "leaky $n exited early: $(cat "$out/$me.$n.log")"
                kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early: $(cat "$log")"
                sleep 0.2
        done
        grep -q " $n: governing" "$log" || fail "memgovd does not govern $parent/$n"
done
for _ in $(seq 300); do grep -q ready "$out/$me.receivers.log" && break; sleep 0.2; done
grep -q ready "$out/$me.receivers.log" || fail "the receivers did not start"
sleep 2

# Two rounds: leak 64M (about 75% of the limit with the service's own), let go, again.
control() { # QUERY
        local n
        for n in "${names[@]}"; do
                curl -sf --max-time 5 -X POST "http://127.0.0.1:${leaky_port[$n]}/control?$1" \
                        >/dev/null || fail "leaky $n refused /control?$1"
        done
}
leak="mode=heap&rate=2MiB&max_total=64MiB" letgo="mode=idle&reset=true"
control "$leak"
say "five services leak 64M at 2 MiB/s under memory.max=96M, let go, leak again; their endpoints: good, dead, slow (hangs 60 s), 500, 410"

# /metrics every 10 s: it must answer, and the samples of everyone must advance.
metrics() { curl -sf --max-time 5 --unix-socket "$sock" http://memgovd/metrics; }
samples() { # FILE SERVICE
        awk -v s="service=\"$2\"" '$1 ~ /^memgov_samples_total\{/ && index($1, s) { print $2 }' "$1"
}
for scrapes in $(seq 10); do
        sleep 10
        metrics >"$work/m.$scrapes" || fail "/metrics did not answer within 5 s (scrape $scrapes)"
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died"
        case $scrapes in
        4 | 9) control "$letgo" ;;
        5) control "$leak" ;;
        esac
done
hangs=$(grep -c ' slow ' "$out/$me.receivers.log" || true)
[ "$hangs" -gt 0 ] || fail "the slow receiver never got a request"

for n in "${names[@]}"; do
        a=$(samples "$work/m.1" $n) b=$(samples "$work/m.$scrapes" $n)
        [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] ||
                fail "memgov_samples_total of $n did not advance between the scrapes ($a -> $b)"
        say "$n: samples $a -> $b over $(((scrapes - 1) * 10))s of scrapes"
done
sleep 3 # what is in flight settles
metrics >"$out/$me.metrics.txt" || fail "/metrics did not answer within 5 s (last scrape)"
kill -TERM "$memgovd_pid"
wait "$memgovd_pid" || true
memgovd_pid=""
wait "$stamp_pid" 2>/dev/null || true
stamp_pid=""

# The verdict: the counters, the receivers' log, the good one's latency from the log.
python3 - "$out" "$me" "$parent" "${hook_port[good]}" <<'EOF'
import re, statistics, sys
out, me, parent, good_port = sys.argv[1:]
bad = []
counters = {}
for line in open(f"{out}/{me}.metrics.txt"):
    m = re.match(r'memgov_webhook_deliveries_total\{service="(\w+)",result="(\w+)"\} (\d+)', line)
    if m:
        counters.setdefault(m[1], {})[m[2]] = int(m[3])
print(f"{me}: memgov_webhook_deliveries_total at the end:")
for s in ("good", "dead", "slow", "e500", "gone"):
    c = counters.get(s, {})
    print(f"  {s:5} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
def c(s, r):
    return counters.get(s, {}).get(r, 0)
if c("good", "delivered") < 3 or c("good", "failed") or c("good", "dropped"):
    bad.append(f"good: {counters.get('good')}: expected 3 or more delivered, none failed or dropped")
for s in ("dead", "slow", "e500"):
    if c(s, "failed") < 1 or c(s, "delivered"):
        bad.append(f"{s}: {counters.get(s)}: expected failed, nothing delivered")
if c("gone", "disabled") < 2 or c("gone", "delivered") or c("gone", "failed"):
    bad.append(f"gone: {counters.get('gone')}: expected disabled only, the 410 and the events after it")
rcv = [l.split() for l in open(f"{out}/{me}.receivers.log") if l != "ready\n"]
per = {k: sum(1 for r in rcv if r[1] == k) for k in ("slow", "e500", "gone")}
print(f"{me}: requests the bad receivers got: " + ", ".join(f"{k} {v}" for k, v in per.items()))
if per["gone"] != 1:
    bad.append(f"the 410 receiver got {per['gone']} requests, not 1 (nothing after the 410)")
if per["e500"] <= c("e500", "failed"):
    bad.append(f"the 500 receiver got {per['e500']} requests for {c('e500', 'failed')} failed events: no retries")

# good's latency: from the level change (entered X / recovered) to its delivery.
t_level, lat, attempts = [], [], []
url = f"http://127.0.0.1:{good_port}/memgov"
for line in open(f"{out}/{me}.memgovd.log"):
    ts, _, msg = line.rstrip("\n").partition(" ")
    m = re.search(rf" good: {re.escape(parent)}/good (entered (\w+)|recovered) ", msg)
    if m:
        t_level.append((float(ts), m[2] or "recovered"))
        continue
    m = re.search(rf"webhook {re.escape(url)}: (\w+) \S+ delivered \(HTTP (\d+), attempt (\d+)\)", msg)
    if m:
        prev = [t for t, e in t_level if e == m[1]]
        if prev:
            lat.append(float(ts) - prev[-1])
        attempts.append(int(m[3]))
    if re.search(rf"webhook {re.escape(url)}: .*(retrying|not delivered)", msg):
        bad.append("good: " + msg)
if not lat:
    bad.append("no delivery to good found in memgovd's log")
else:
    lat.sort()
    p50 = statistics.median(lat)
    print(f"{me}: good: {len(lat)} webhooks delivered, all on attempt 1: {all(a == 1 for a in attempts)}; "
          f"level change -> delivered: median {p50 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
          f"(the bad endpoints' attempt timeout: 2000 ms)")
    if any(a != 1 for a in attempts):
        bad.append(f"good: deliveries needed retries: {attempts}")
    if p50 >= 2.0:
        bad.append(f"good: median latency {p50:.2f}s is not below the bad endpoints' 2 s timeout")
for b in bad:
    print(f"{me}: FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
say "PASS: bad receivers failed, disabled and counted; good's webhooks on time; samples flowed"
