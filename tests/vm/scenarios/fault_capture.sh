#!/usr/bin/env bash
# Bad pprof endpoints and a full dump directory do not hurt the daemon, on a real kernel.
# One memgovd governs five services (cgroups with a small process each); their pprof base
# URLs point at:
#   hang     an endpoint that reads the request and never answers
#   trickle  one that answers 200 and then a byte every 0.5 s, forever
#   huge     one that answers 200 and streams zeros as fast as it can, without end
#            (gigabytes if nobody hangs up)
#   garbage  one that answers 200 with 64K of random bytes (not a profile)
#   good     the leaky example's own net/http/pprof
# Captures are asked for with `memgovctl dump SERVICE`, all four bad ones at once, with a
# per-request timeout of 3 s and a size cap of 1M. Checked as an operator would see it:
#   - each bad capture ends by timeout, size cap or the gzip check, and memgovd's log says
#     which, naming the URL; the huge endpoint is hung up on near the cap;
#   - the dump directory holds only complete dumps: each has a manifest.json whose files
#     are all there with their sizes and sha256, a cut or refused response is kept only as
#     NAME.partial with its error in the manifest (never under the profile's own name),
#     and no temporary (.NAME.tmp) file or directory is left;
#   - /metrics answers while the captures hang, and memgov_samples_total of every service
#     keeps advancing at about its interval (500 ms); memgov_profile_captures_total counts
#     the failures;
#   - nothing is stuck: a second capture of the hung service starts (not "still running"),
#     and a later capture of the good service is complete (gzip profiles, no errors).
# Then the dump directory's filesystem (a tmpfs of its own) is made full, twice:
#   - below the dump store's free-space floor (64M): captures are refused before anything
#     is written, with a log line naming the directory and the figures;
#   - out of inodes (bytes to spare): the filesystem itself says ENOSPC, at the dump's first
#     directory and, with two inodes left, half-way through writing a dump; either way the
#     log names the directory, and no dump, partial file or temporary name is left;
#   meanwhile sampling goes on; once the space is freed, captures are complete again.
# memgovd's log and the dumps' manifests go to $MEMGOV_VM_OUT.
#
# Runs as root in the VM (tests/vm/run) or on a host with cgroup v2 memory.
set -euo pipefail

me=fault_capture
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
ctl=$bin/memgovctl
leaky=$bin/examples/leaky/leaky
[ "$(id -u)" = 0 ] || fail "needs root"
grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null ||
        fail "$root has no memory controller enabled for children (cgroup.subtree_control)"
[ -x "$memgovd" ] && [ -x "$ctl" ] || fail "$memgovd or $ctl is not built"
# python3 itself, not a version manager's shim: each start counts under emulation.
py=$(command -v /usr/bin/python3 python3 | head -1)
command -v curl >/dev/null && [ -n "$py" ] || {
        echo "$me: curl or python3 is missing: skipped" >&2
        exit 77
}
[ -x "$leaky" ] || {
        echo "$me: $leaky is not built (no Go toolchain?): skipped" >&2
        exit 77
}

names=(hang trickle huge garbage good)
bad=(hang trickle huge garbage)
declare -A port=([hang]=16401 [trickle]=16402 [huge]=16403 [garbage]=16404 [good]=16405)

parent=memgov-fcap.$$
pcg=$root/$parent
work=$(mktemp -d)
out=${MEMGOV_VM_OUT:-$work}
log=$out/$me.memgovd.log
state=$work/state
dumps=$state/dumps
sock=$work/run/memgovd.sock
memgovd_pid="" srv_pid="" state_mounted=""
declare -A pid=()

cleanup() {
        local rc=$? n
        set +e
        exec 2>/dev/null
        for n in "${!pid[@]}"; do kill -KILL "${pid[$n]}"; done
        [ -n "$srv_pid" ] && kill -KILL "$srv_pid"
        [ -n "$memgovd_pid" ] && kill -KILL "$memgovd_pid"
        for n in "${names[@]}"; do
                [ -d "$pcg/$n" ] || continue
                echo 1 >"$pcg/$n/cgroup.kill"
                for _ in $(seq 50); do rmdir "$pcg/$n" && break; sleep 0.1; done
        done
        [ -d "$pcg" ] && rmdir "$pcg"
        [ -n "$state_mounted" ] && umount "$state"
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT

mkdir "$pcg"
echo +memory >"$pcg/cgroup.subtree_control"
for n in "${names[@]}"; do
        mkdir "$pcg/$n"
        echo 128M >"$pcg/$n/memory.max"
done
# The state dir on a tmpfs of its own: 100M, above the dump store's free-space floor (64M)
# and the captures' reserve, and few inodes, so that it can be filled.
mkdir -p "$work/policies" "$state" "$work/run"
mount -t tmpfs -o size=100m,nr_inodes=400,mode=0700 memgov-fcap-state "$state" ||
        fail "cannot mount a tmpfs on $state"
state_mounted=1

# The bad endpoints: one python3 process, a thread per request; each counts what it sent.
cat >"$work/endpoints.py" <<'PY'
import http.server, os, sys, threading, time
log = open(sys.argv[1], "a", buffering=1)
def handler(kind):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            log.write(f"{time.time():.3f} {kind} start {self.path}\n")
            sent = 0
            try:
                if kind == "hang":
                    time.sleep(3600)
                    return
                self.send_response(200)
                if kind == "garbage":
                    body = os.urandom(65536)
                    if body[:2] == b"\x1f\x8b":
                        body = b"x" + body[1:]
                    self.send_header("content-type", "application/octet-stream")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    sent = len(body)
                    return
                self.send_header("content-type", "application/octet-stream")
                self.end_headers()
                chunk = b"\0" * (1 << 16) if kind == "huge" else b"\0"
                while sent < (8 << 30):
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if kind == "trickle":
                        self.wfile.flush()
                        time.sleep(0.5)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                log.write(f"{time.time():.3f} {kind} end {self.path} sent={sent}\n")
        def log_message(self, *a):
            pass
    return H
for kind, p in zip(("hang", "trickle", "huge", "garbage"), sys.argv[2:6]):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(p)), handler(kind))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
log.write("ready\n")
threading.Event().wait()
PY
srvlog=$out/$me.endpoints.log
: >"$srvlog"
"$py" "$work/endpoints.py" "$srvlog" ${port[hang]} ${port[trickle]} ${port[huge]} \
        ${port[garbage]} &
srv_pid=$!

# Levels that an idle process never reaches: every capture here is asked for by hand.
for n in "${names[@]}"; do
        cat >"$work/policies/$n.json" <<EOF
{
  "service": "$n",
  "cgroup": "$parent/$n",
  "sample_interval": "500ms",
  "forecast": { "window": "10s", "horizon": "5m" },
  "levels": { "warn": { "usage": "80%" }, "degrade": { "usage": "90%" },
              "critical": { "usage": "95%" }, "hold": "3s" },
  "memory_high": { "mode": "off" },
  "pprof": { "url": "http://127.0.0.1:${port[$n]}/debug/pprof", "kinds": ["heap", "goroutine"],
             "timeout": "3s", "max_bytes": "1M", "cooldown": "0s", "max_per_hour": 3600 }
}
EOF
done
cat >"$work/memgovd.json" <<EOF
{ "runtime_dir": "$work/run", "state_dir": "$state", "rescan_interval": "1h" }
EOF
"$memgovd" --config "$work/memgovd.json" --policy-dir "$work/policies" --cgroup-root "$root" \
        --log-level debug 2>"$log" &
memgovd_pid=$!

for n in "${names[@]}"; do
        if [ $n = good ]; then
                bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' leaky "$pcg/$n" \
                        "$leaky" --mode idle --listen "127.0.0.1:${port[$n]}" 2>"$out/$me.leaky.log" &
        else
                bash -c 'echo $$ >"$1/cgroup.procs" && exec sleep 3600' sleeper "$pcg/$n" &
        fi
        pid[$n]=$!
done

metrics() { curl -sf --max-time 5 --unix-socket "$sock" http://memgovd/metrics; }
samples() { # FILE SERVICE
        awk -v s="service=\"$2\"" '$1 ~ /^memgov_samples_total\{/ && index($1, s) { print $2 }' "$1"
}
t_end=$((SECONDS + 60))
while [ $SECONDS -lt $t_end ]; do
        if metrics >"$work/m0" 2>/dev/null && grep -q ready "$srvlog" &&
                curl -sf --max-time 2 "http://127.0.0.1:${port[good]}/control" >/dev/null; then
                ok=1
                for n in "${names[@]}"; do
                        s=$(samples "$work/m0" $n)
                        [ -n "$s" ] && [ "$s" -ge 2 ] || ok=0
                done
                [ $ok = 1 ] && break
        fi
        kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd exited early"
        sleep 0.2
done
for n in "${names[@]}"; do
        [ -n "$(samples "$work/m0" $n)" ] || fail "memgovd does not sample $n"
done
say "memgovd governs ${names[*]}; the bad endpoints and leaky are up"

# dump SERVICE: ask for a capture; prints memgovd's answer (where the dump goes).
dump() { "$ctl" dump "$1" --socket "$sock"; }

# Every dump is complete: manifest.json lists exactly the files there, with their sizes
# and sha256; no temporary name anywhere; profiles under their own names are what they
# should be. Prints one line per dump.
verify_dumps() {
        "$py" - "$dumps" <<'EOF'
import hashlib, json, os, sys
top = sys.argv[1]
bad = []
for dirpath, dirnames, filenames in os.walk(top):
    for n in dirnames + filenames:
        if n.startswith(".") or n.endswith(".tmp"):
            bad.append(f"temporary name left: {os.path.join(dirpath, n)}")
if not os.path.isdir(top):
    sys.exit(0)
for svc in sorted(os.listdir(top)):
    for dump in sorted(os.listdir(os.path.join(top, svc))):
        d = os.path.join(top, svc, dump)
        if dump.startswith("."):
            continue
        try:
            m = json.load(open(os.path.join(d, "manifest.json")))
        except Exception as e:
            bad.append(f"{d}: no readable manifest.json ({e})")
            continue
        listed = {f["name"]: f for f in m.get("files", [])}
        on_disk = set()
        for dp, _, fns in os.walk(d):
            for fn in fns:
                on_disk.add(os.path.relpath(os.path.join(dp, fn), d))
        on_disk.discard("manifest.json")
        if set(listed) != on_disk:
            bad.append(f"{d}: manifest lists {sorted(listed)}, the directory has {sorted(on_disk)}")
        for name, f in listed.items():
            p = os.path.join(d, name)
            if not os.path.isfile(p):
                continue
            data = open(p, "rb").read()
            if len(data) != f.get("size"):
                bad.append(f"{p}: {len(data)} bytes, the manifest says {f.get('size')}")
            if hashlib.sha256(data).hexdigest() != f.get("sha256"):
                bad.append(f"{p}: sha256 differs from the manifest's")
            if name.endswith(".pb.gz") and data[:2] != b"\x1f\x8b":
                bad.append(f"{p}: not gzip, yet under a profile's own name")
            if name.endswith(".partial") and not f.get("error"):
                bad.append(f"{p}: partial, yet no error in the manifest")
        errs = "; ".join(f"{e.get('what')}: {e.get('error')}" for e in m.get("errors", []))
        print(f"  {svc}/{dump}: {' '.join(sorted(listed))}" + (f" | errors: {errs}" if errs else ""))
for b in bad:
    print(f"FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}
ndumps() { find "$dumps/$1" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null | wc -l; }

# ---- 1. the bad endpoints, all at once ----
t0=$EPOCHREALTIME
metrics >"$work/m1" || fail "/metrics did not answer before the captures"
for n in "${bad[@]}"; do
        msg=$(dump $n) || fail "memgovctl dump $n: $msg"
        say "dump $n: $msg"
done
# While they hang: /metrics answers within 5 s, once a second.
for k in $(seq 5); do
        sleep 1
        metrics >"$work/m.hang.$k" || fail "/metrics did not answer while the captures hang"
done
# Until each has ended (3 s timeout per request; the hung one skips its second request).
for _ in $(seq 150); do
        done_all=1
        for n in "${bad[@]}"; do [ "$(ndumps $n)" -ge 1 ] || done_all=0; done
        [ $done_all = 1 ] && break
        sleep 0.2
done
for n in "${bad[@]}"; do [ "$(ndumps $n)" -ge 1 ] || fail "the capture of $n never completed"; done
metrics >"$work/m2" || fail "/metrics did not answer after the captures"
t1=$EPOCHREALTIME
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
say "the four captures ended within ${el}s"

grep -q "hang: http://127.0.0.1:${port[hang]}/debug/pprof/[^ ]*: timed out after 3s" "$log" ||
        fail "no log line says the hung endpoint timed out"
grep -q "trickle: http://127.0.0.1:${port[trickle]}/debug/pprof/[^ ]*: timed out after 3s" "$log" ||
        fail "no log line says the trickling endpoint timed out"
grep -q "huge: http://127.0.0.1:${port[huge]}/debug/pprof/[^ ]*: cut at the size cap of 1048576 bytes" "$log" ||
        fail "no log line says the huge answer was cut at the size cap"
grep -q "garbage: http://127.0.0.1:${port[garbage]}/debug/pprof/heap[^ ]*: not a gzip-compressed profile" "$log" ||
        fail "no log line says the garbage was not a profile"
grep -E "(hang|trickle|huge|garbage): http://" "$log" | sed 's/^/  memgovd: /'

# The huge endpoint was hung up on: it sent little more than the cap, not gigabytes.
sleep 1
sent=$(awk '$2 == "huge" && $3 == "end" { sub("sent=", "", $5); s += $5 } END { print s + 0 }' "$srvlog")
[ "$sent" -gt 0 ] && [ "$sent" -lt $((64 << 20)) ] ||
        fail "the huge endpoint sent $sent bytes: memgovd did not hang up at the 1M cap"
say "the huge endpoint sent $((sent >> 10)) KiB before memgovd hung up"

# Sampling went on at about its interval for everyone while the captures ran.
for n in "${names[@]}"; do
        a=$(samples "$work/m1" $n) b=$(samples "$work/m2" $n)
        want=$(awk -v e="$el" 'BEGIN { printf "%d", e / 0.5 * 0.5 }')
        [ -n "$a" ] && [ -n "$b" ] && [ $((b - a)) -ge "$want" ] ||
                fail "$n: $((b - a)) samples in ${el}s, less than half of one per 500 ms"
        say "$n: $((b - a)) samples in ${el}s while the captures ran"
done
grep -E '^memgov_profile_captures_total' "$work/m2" | sed 's/^/  /'
failed=$(awk '$1 ~ /^memgov_profile_captures_total\{/ && $1 ~ /result="failed"/ { s += $2 } END { print s + 0 }' "$work/m2")
[ "$failed" -ge 4 ] || fail "memgov_profile_captures_total counts $failed failed captures, not 4 or more"

say "the dumps after the bad captures:"
verify_dumps || fail "a dump is incomplete or a temporary file is left"
"$py" - "$dumps" "${bad[@]}" <<'EOF' || fail "a bad capture's manifest lists no error"
import json, os, sys
for svc in sys.argv[2:]:
    top = os.path.join(sys.argv[1], svc)
    for d in sorted(n for n in os.listdir(top) if not n.startswith(".")):
        m = json.load(open(os.path.join(top, d, "manifest.json")))
        if not (m.get("errors") or any(f.get("error") for f in m["files"])):
            sys.exit(f"{top}/{d}/manifest.json lists no error")
EOF

# ---- 2. nothing stuck: the hung service captures again; the good one is complete ----
msg=$(dump hang) || fail "a second capture of hang was refused: $msg"
case $msg in *"still running"*) fail "hang's first capture is still running: $msg" ;; esac
msg=$(dump good) || fail "memgovctl dump good: $msg"
for _ in $(seq 150); do
        [ "$(ndumps good)" -ge 1 ] && [ "$(ndumps hang)" -ge 2 ] && break
        sleep 0.2
done
[ "$(ndumps good)" -ge 1 ] || fail "the capture of good never completed"
[ "$(ndumps hang)" -ge 2 ] || fail "the second capture of hang never completed"
gd=$(find "$dumps/good" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -1)
[ -f "$gd/heap.pb.gz" ] || fail "the good capture has no heap.pb.gz: $(ls "$gd")"
"$py" -c 'import json,sys; m=json.load(open(sys.argv[1])); sys.exit(1 if m.get("errors") or any(f.get("error") for f in m["files"]) else 0)' \
        "$gd/manifest.json" || fail "the good capture has errors: $(cat "$gd/manifest.json")"
say "after the faults: hang captured again (it timed out again), good's capture is complete"
verify_dumps >/dev/null || fail "a dump is incomplete or a temporary file is left"

# ---- 3. the dump directory's filesystem is full ----
# wait_log PATTERN: until memgovd's log has a new line matching PATTERN (10 s).
wait_log() {
        for _ in $(seq 50); do
                tail -n +$((from + 1)) "$log" | grep -qE "$1" && return 0
                sleep 0.2
        done
        return 1
}
# 3a. Below the free-space floor: 40M taken leaves under 60M of 100M, below 64M.
fallocate -l 40M "$state/filler" || dd if=/dev/zero of="$state/filler" bs=1M count=40 status=none
before=$(ndumps good)
from=$(wc -l <"$log")
metrics >"$work/m3" || fail "/metrics did not answer"
msg=$(dump good 2>&1) && fail "a capture was started on a full dump directory: $msg"
say "dump good, below the floor: $msg"
wait_log "good: not capturing \(manual\): .* free in $dumps, the floor is" ||
        fail "no log line says the capture was refused for want of space in $dumps"
tail -n +$((from + 1)) "$log" | grep "not capturing" | sed 's/^/  memgovd: /'
rm -f "$state/filler"

# 3b. Out of inodes, bytes to spare: the filesystem refuses the dump's directory.
# fill_inodes N: create empty files until the tmpfs has N inodes free.
fill_inodes() {
        local k free
        mkdir -p "$state/fill"
        free=$(stat -f -c %d "$state")
        for ((k = 0; k < free - $1; k++)); do : >"$state/fill/$k" || break; done
        free=$(stat -f -c %d "$state")
        [ "$free" = "$1" ] || fail "cannot leave $1 inodes free in $state ($free free)"
}
fill_inodes 0
from=$(wc -l <"$log")
msg=$(dump good 2>&1) && fail "a capture was started with no inode left: $msg"
say "dump good, no inode left: $msg"
wait_log "good: cannot create a dump in $dumps/good: No space left on device" ||
        fail "no log line says the dump could not be created in $dumps/good"
tail -n +$((from + 1)) "$log" | grep -E "No space|not capturing" | sed 's/^/  memgovd: /'
[ "$(ndumps good)" = "$before" ] || fail "a dump appeared with no inode left"
verify_dumps >/dev/null || fail "a temporary file is left after a refused capture"

# 3c. Two inodes left: the dump's directory and its first file fit, the rest does not.
rm -f "$state/fill/0" "$state/fill/1"
[ "$(stat -f -c %d "$state")" = 2 ] || fail "expected 2 free inodes, $(stat -f -c %d "$state")"
from=$(wc -l <"$log")
msg=$(dump good 2>&1) || fail "memgovctl dump good with two inodes left: $msg"
say "dump good, two inodes left: $msg"
wait_log "good: cannot write the manifest of dump $dumps/good/\.[^ ]*\.tmp: No space left on device" ||
        fail "no log line says the dump in $dumps/good could not be completed"
tail -n +$((from + 1)) "$log" | grep -q "good: cannot create [^ ]* in $dumps/good/\.[^ ]*\.tmp: No space left on device" ||
        fail "no log line names the file that could not be created in $dumps/good"
tail -n +$((from + 1)) "$log" | grep -E "No space|cannot" | sed 's/^/  memgovd: /'
sleep 1
[ "$(ndumps good)" = "$before" ] || fail "a dump appeared though it could not be completed"
verify_dumps >/dev/null || fail "the half-written dump was left behind"
[ "$(stat -f -c %d "$state")" = 2 ] || fail "the half-written dump's inodes were not given back"
metrics >"$work/m4" || fail "/metrics did not answer with the dump directory full"
for n in "${names[@]}"; do
        a=$(samples "$work/m3" $n) b=$(samples "$work/m4" $n)
        [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] ||
                fail "$n: samples did not advance while the dump directory was full ($a -> $b)"
done
say "sampling went on while the dump directory was full"

# 3d. Space freed: captures are complete again.
rm -rf "$state/fill"
msg=$(dump good) || fail "memgovctl dump good after the space was freed: $msg"
for _ in $(seq 100); do [ "$(ndumps good)" -gt "$before" ] && break; sleep 0.2; done
[ "$(ndumps good)" -gt "$before" ] || fail "no capture after the space was freed"
say "space freed: good captured again; all dumps:"
verify_dumps || fail "a dump is incomplete or a temporary file is left"
kill -0 "$memgovd_pid" 2>/dev/null || fail "memgovd died"
kill -TERM "$memgovd_pid"
wait "$memgovd_pid" || fail "memgovd did not exit cleanly on SIGTERM"
memgovd_pid=""
find "$dumps" -name manifest.json -exec sh -c 'for f; do d=${f%/manifest.json}; cp "$f" "$0/$(basename "$(dirname "$d")").$(basename "$d").manifest.json"; done' "$out" {} +
say "PASS: bad endpoints aborted, logged and counted; dumps complete; full filesystem refused cleanly; sampling never stopped"
