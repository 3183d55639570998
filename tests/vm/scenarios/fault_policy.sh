#!/usr/bin/env bash
# A corrupt state file at start, a broken policy on SIGHUP and a policy replaced while
# running, on a real kernel.
#   1. The restore records (<state-dir>/restore/*.json, the memory.high originals memgov
#      changed) hold, when memgovd starts: one valid record (a cgroup whose memory.high
#      memgov "lowered" to 100M from 200M), one truncated JSON and one garbage. memgovd
#      starts, puts 200M back, keeps each corrupt record aside as NAME.corrupt and says so
#      in its log, and governs.
#   2. The policy of a governed service (a process holding ~48M under memory.max=100M,
#      warn at 80%: level ok) is broken and SIGHUP sent, twice: cut short mid-file, then a
#      field of the wrong kind. Each time memgovd's log names the file and the JSON path of
#      the problem and says the previous policies stay; the service is still governed
#      (memgov_samples_total advances, memgov_policies unchanged, level still ok).
#   3. The policy is replaced atomically (written to a temporary name, renamed over the
#      file) with warn at 30%, then SIGHUP: memgovd reloads (memgov_reloads_total) and the
#      service enters warn under the new threshold (memgov_level 1, and the log).
# memgovd's log goes to $MEMGOV_VM_OUT.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=fault_policy
fail() {
        echo "$me: FAIL: $*" >&2
        [ -n "${log:-}" ] && [ -s "$log" ] && tail -n 40 "$log" | sed 's/^/  memgovd: /' >&2
        [ -n "${memgovd_pid:-}" ] && grep -E '^(State|VmRSS)' "/proc/$memgovd_pid/status" 2>/dev/null |
                sed 's/^/  memgovd: /' >&2
        exit 1
}
say() { echo "$me: [${SECONDS}s] $*"; }

root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
memgovd=$bin/memgovd
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] || fail "$memgovd is not built"
py=$(command -v /usr/bin/python3 python3 | head -1)
command -v curl >/dev/null && [ -n "$py" ] || {
        echo "$me: curl or python3 is missing: skipped" >&2
        exit 77
}

parent=memgov-fpol.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
state=$work/state
sock=$work/run/memgovd.sock
memgovd_pid="" holder=""

cleanup() {
        local rc=$? n
        set +e
        exec 2>/dev/null
        [ -n "$holder" ] && kill -KILL "$holder"
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid"
        for n in svc restored; do
                [ -d "$pcg/$n" ] || continue
                echo 1 >"$pcg/$n/cgroup.kill"
                for _ in $(seq 50); do rmdir "$pcg/$n" && break; sleep 0.1; done
        done
        [ -d "$pcg" ] && rmdir "$pcg"
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$pcg"
echo +memory >"$pcg/cgroup.subtree_control"
mkdir "$pcg/svc" "$pcg/restored"
echo 100M >"$pcg/svc/memory.max"
[ -e "$pcg/svc/memory.swap.max" ] && echo 0 >"$pcg/svc/memory.swap.max"
echo 100M >"$pcg/restored/memory.high" # as memgov left it, the original being 200M
mkdir -p "$work/policies" "$state/restore" "$work/run"
chmod 700 "$state"

# ---- 1. the restore records at start: one good, two corrupt ----
ino=$(stat -c %i "$pcg/restored")
good_rec="$state/restore/$parent%2Frestored.json"
printf '{"version":1,"service":"restored","cgroup":"%s/restored","inode":%s,"backend":"cgroupfs","memory_high":%s}\n' \
        "$parent" "$ino" $((200 << 20)) >"$good_rec"
printf '{"version":1,"service":"cut","cgroup":"%s/cut","ino' "$parent" >"$state/restore/$parent%2Fcut.json"
head -c 300 /dev/urandom >"$state/restore/$parent%2Fgarbage.json"
ls "$state/restore" | sed 's/^/  record at start: /'

policy() { # WARN_USAGE: the policy of svc, on stdout
        cat <<EOF
{
  "service": "svc",
  "cgroup": "$parent/svc",
  "sample_interval": "500ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": { "warn": { "usage": "$1" }, "degrade": { "usage": "90%" },
              "critical": { "usage": "95%" }, "hold": "3s" },
  "memory_high": { "mode": "off" }
}
EOF
}
policy 80% >"$work/policies/svc.json"
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF

# A process that holds ~48M (touched) in svc: about half of memory.max.
bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$0" -c "import time; b = b\"x\" * (48 << 20); time.sleep(3600)"' \
        "$py" "$pcg/svc" &
holder=$!

"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        --log-level debug 2>"$log" &
memgovd_pid=$!

metrics() { curl -sf --max-time 5 --unix-socket "$sock" http://memgovd/metrics; }
# metric FILE NAME: NAME's value for svc (or the unlabelled NAME) in a scrape.
metric() {
        awk -v n="$2" '$1 == n || (index($1, n "{") == 1 && index($1, "service=\"svc\"")) { print $2; exit }' "$1"
}
reloads() { # FILE RESULT: memgov_reloads_total{result=RESULT}
        awk -v l="memgov_reloads_total{result=\"$2\"}" '$1 == l { print $2; exit }' "$1"
}
t_end=$((SECONDS + 40))
while [ $SECONDS -lt $t_end ]; do
        if metrics >"$work/m0" 2>/dev/null; then
                s=$(metric "$work/m0" memgov_samples_total)
                [ -n "$s" ] && [ "$s" -ge 4 ] && break
        fi
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited at start"
        sleep 0.2
done
[ -n "${s:-}" ] && [ "$s" -ge 4 ] || fail "memgovd does not sample svc: $(curl -sS --max-time 5 --unix-socket "$sock" http://memgovd/metrics 2>&1 | grep -E "samples|curl" | head -3)"
kill -0 "$holder" 2>/dev/null || fail "the holder process died"
say "memgovd started and samples svc ($s samples)"

high=$(cat "$pcg/restored/memory.high")
[ "$high" = $((200 << 20)) ] || fail "memory.high of restored is $high, not the recorded 200M"
say "the valid record was restored: memory.high of $parent/restored is $high"
[ ! -e "$good_rec" ] || fail "the restored record $good_rec is still there"
for n in cut garbage; do
        f="$state/restore/$parent%2F$n.json"
        [ ! -e "$f" ] || fail "the corrupt record $f is still in the way"
        [ -f "$f.corrupt" ] || fail "the corrupt record $f was not kept aside as $f.corrupt"
        grep -qF "restore record $state/restore/$parent%2F$n.json cannot be read (not a valid record): kept as $parent%2F$n.json.corrupt" "$log" ||
                fail "no log line says what was done with the corrupt record $n"
done
grep -E "restore record|restored to" "$log" | sed 's/^/  memgovd: /'
# The holder's 48M in place (python starts slowly under emulation).
for _ in $(seq 150); do
        [ "$(cat "$pcg/svc/memory.current")" -ge $((45 << 20)) ] && break
        sleep 0.2
done
sleep 1
metrics >"$work/m0" || fail "/metrics did not answer"
lvl=$(metric "$work/m0" memgov_level)
[ "$lvl" = 0 ] || fail "svc is at level $lvl with warn at 80%: expected ok"
usage=$(awk -v c="$(cat "$pcg/svc/memory.current")" 'BEGIN { printf "%d", c * 100 / (100 * 1048576) }')
say "svc uses ${usage}% of memory.max; level ok"
[ "$usage" -ge 35 ] && [ "$usage" -lt 75 ] || fail "svc uses ${usage}%: the thresholds below assume 35-75%"

# ---- 2. a broken policy and SIGHUP, twice ----
# hup TAG: SIGHUP, then wait until the log has a new "reload" line; scrape before and after.
hup() {
        local from
        from=$(wc -l <"$log")
        metrics >"$work/m.$1.before" || fail "/metrics did not answer before SIGHUP ($1)"
        kill -HUP "$memgovd_pid"
        for _ in $(seq 50); do
                tail -n +$((from + 1)) "$log" | grep -qE "reload(ed)?:" && break
                sleep 0.2
        done
        sleep 2 # a few samples
        tail -n +$((from + 1)) "$log" >"$work/log.$1"
        metrics >"$work/m.$1.after" || fail "/metrics did not answer after SIGHUP ($1)"
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died on SIGHUP ($1)"
        sed 's/^/  memgovd: /' "$work/log.$1"
}
still_governs() { # TAG
        local a b
        a=$(metric "$work/m.$1.before" memgov_samples_total)
        b=$(metric "$work/m.$1.after" memgov_samples_total)
        [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] ||
                fail "$1: svc's samples did not advance after SIGHUP ($a -> ${b:-gone})"
        [ "$(metric "$work/m.$1.after" memgov_policies)" = 1 ] ||
                fail "$1: memgov_policies is $(metric "$work/m.$1.after" memgov_policies), not 1"
        [ "$(metric "$work/m.$1.after" memgov_level)" = 0 ] ||
                fail "$1: svc's level changed to $(metric "$work/m.$1.after" memgov_level)"
        say "$1: still governed by the previous policy (samples $a -> $b, level ok)"
        a=$(reloads "$work/m.$1.before" failed) b=$(reloads "$work/m.$1.after" failed)
        [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] ||
                fail "$1: memgov_reloads_total{result=\"failed\"} did not advance ($a -> $b)"
}

policy 80% | head -c 200 >"$work/policies/svc.json"
say "svc.json cut short at 200 bytes; SIGHUP"
hup cut
grep -qF "$work/policies/svc.json" "$work/log.cut" || fail "cut: the log does not name the policy file"
grep -q "still running the previous 1 policies" "$work/log.cut" ||
        fail "cut: the log does not say the previous policy stays"
still_governs cut

policy lots >"$work/policies/svc.json"
say "svc.json with \"usage\": \"lots\"; SIGHUP"
hup field
grep -qF "$work/policies/svc.json: .levels.warn.usage: " "$work/log.field" ||
        fail "field: the log does not name the file and the field (.levels.warn.usage)"
grep -q "still running the previous 1 policies" "$work/log.field" ||
        fail "field: the log does not say the previous policy stays"
still_governs field

# ---- 3. replaced atomically with warn at 30%, SIGHUP ----
policy 30% >"$work/policies/.svc.json.new"
mv -f "$work/policies/.svc.json.new" "$work/policies/svc.json"
say "svc.json replaced by rename with warn at 30%; SIGHUP"
hup replace
grep -q "reloaded: 1 policy" "$work/log.replace" || fail "replace: no \"reloaded\" line"
r0=$(reloads "$work/m.replace.before" ok)
r1=$(reloads "$work/m.replace.after" ok)
[ -n "$r0" ] && [ -n "$r1" ] && [ "$r1" -gt "$r0" ] ||
        fail "replace: memgov_reloads_total{result=\"ok\"} did not advance ($r0 -> $r1)"
for _ in $(seq 50); do
        metrics >"$work/m.end" || fail "/metrics did not answer"
        [ "$(metric "$work/m.end" memgov_level)" = 1 ] && break
        sleep 0.2
done
[ "$(metric "$work/m.end" memgov_level)" = 1 ] ||
        fail "replace: svc's level is $(metric "$work/m.end" memgov_level), not warn, under warn at 30%"
grep -E "svc: .*entered warn" "$log" | tail -1 | sed 's/^/  memgovd: /'
grep -qE "svc: .*entered warn" "$log" || fail "replace: no log line says svc entered warn"
say "the new threshold applies: svc at warn (reloads $r0 -> $r1)"

kill -TERM "$memgovd_pid"
wait "$memgovd_pid" || fail "memgovd did not exit cleanly on SIGTERM"
memgovd_pid=""
say "PASS: corrupt records kept aside and the valid one restored; broken policies refused with file and field, the previous kept; the replaced policy applies"
