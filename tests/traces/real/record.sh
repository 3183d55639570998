#!/usr/bin/env bash
# Records the real traces of tests/traces/real/: workloads under memory.max on a real
# kernel, each sampled by `memgovctl record` until its OOM kill or a fixed time.
#
#   tests/traces/real/record.sh [--build DIR] [--out DIR] [--list] [NAME...]
#
# On the host (the usual way) it builds leaky and memgovctl in DIR (default: build), makes
# the page-cache workload's data file there, boots the VM (tests/vm/run, or runs directly
# where this host has a cgroup v2 memory controller) with this script in --guest mode,
# checks every trace with `memgovctl replay`, and copies the CSVs to --out (default: this
# directory). Without NAMEs it records all of them at once, in one boot (about 6 min).
#
# In --guest mode (inside the VM, as root) it starts each workload with `memgovctl run` in
# its own cgroup under memgov.traces/, records it into $MEMGOV_VM_OUT (or --out), checks
# that the OOM traces end in an oom_kill and the others do not, and prints a table.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)

fail() {
        echo "record.sh: $*" >&2
        exit 1
}
say() { echo "record.sh: $*"; }

# ---- the traces -------------------------------------------------------------------------
# name|expect|interval ms|duration cap s|memory.max|cpu.max or -|command
# expect: oom (must end in an OOM kill), none (must not), any (recorded either way).
# The command runs in bash, inside its cgroup, once the recorder has taken its first
# sample, with these set:
#   $LEAKY       the leaky binary copied to a tmpfs by this script, so its pages are charged
#                to this script's cgroup, not the workload's, and (no swap) cannot be
#                reclaimed: the workload's cgroup holds no file pages of its own program to
#                thrash on when it reaches its limit, and the kernel kills it there.
#   $LEAKY_DISK  the binary in the build tree: file-backed and reclaimable, as a service's
#                binary usually is; its page-cache pages are charged to whichever workload
#                touches them first.
#   $LEAKY_OWN   a copy of it on disk that only heap-thrash runs, so that all of its file
#                pages are charged to that one cgroup.
#   $DATA        the page-cache workload's file; $LISTEN a loopback address, free port.
# stress-ng and its libraries are read by this script before the workloads start, so their
# page cache, too, is charged to this script's cgroup.
# shellcheck disable=SC2016 # expanded by the trace's shell
traces=(
        'heap-slow|oom|500|480|160M|-|$LEAKY --mode heap --rate 512KiB --listen $LISTEN'
        'heap-fast|oom|250|240|192M|-|$LEAKY --mode heap --rate 3MiB --listen $LISTEN'
        'goroutine|oom|250|300|160M|-|$LEAKY --mode goroutine --rate 20 --goroutine-buf 64KiB --listen $LISTEN'
        'subslice|oom|250|300|128M|-|$LEAKY --mode subslice --rate 1MiB --listen $LISTEN'
        'cache|oom|250|300|160M|-|$LEAKY --mode cache --rate 2MiB --listen $LISTEN'
        'heap-gc-churn|oom|250|360|192M|-|GOGC=400 $LEAKY --mode sawtooth --sawtooth-rate 16MiB --listen $LISTEN & $LEAKY --mode heap --rate 512KiB --listen $LISTEN & wait'
        'stress-bigheap|oom|250|420|160M|4000 100000|stress-ng --bigheap 1 --bigheap-growth 64K --oomable --temp-path /tmp --timeout 900s'
        'heap-thrash|any|500|300|128M|-|$LEAKY_OWN --mode heap --rate 1MiB --listen $LISTEN'
        'sawtooth|none|500|300|128M|-|GOGC=400 $LEAKY_DISK --mode sawtooth --sawtooth-rate 32MiB --listen $LISTEN'
        'burst|none|250|240|160M|-|$LEAKY_DISK --mode burst --burst-size 96MiB --burst-hold 8s --listen $LISTEN'
        'pagecache|none|250|240|128M|-|python3 -c "$PAGECACHE_READER" "$DATA"'
)

# Reads the file again and again, 256 KiB every 0.1 s (2.5 MiB/s): the file's pages fill
# the cgroup's page cache up to memory.max, where the kernel reclaims them instead of
# killing anything.
# shellcheck disable=SC2089 # python source, not shell words
export PAGECACHE_READER='
import sys, time
while True:
    with open(sys.argv[1], "rb", buffering=0) as f:
        while f.read(256 << 10):
            time.sleep(0.1)
'
data_size_mb=384

field() { # field TRACE N
        local IFS='|'
        # shellcheck disable=SC2206 # split on |
        local f=($1)
        echo "${f[$2]}"
}

# ---- arguments --------------------------------------------------------------------------
guest=0
build=""
out=""
names=()
while [ $# -gt 0 ]; do
        case $1 in
        --guest) guest=1 ;;
        --build) build=${2:?--build needs a directory}; shift ;;
        --out) out=${2:?--out needs a directory}; shift ;;
        --list)
                for t in "${traces[@]}"; do
                        printf '%-15s %-5s %4s ms  cap %3s s  memory.max %-5s %s\n' "$(field "$t" 0)" \
                                "$(field "$t" 1)" "$(field "$t" 2)" "$(field "$t" 3)" "$(field "$t" 4)" \
                                "$(field "$t" 6)"
                done
                exit 0
                ;;
        -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) fail "unknown option $1 (see --help)" ;;
        *) names+=("$1") ;;
        esac
        shift
done
selected=()
for t in "${traces[@]}"; do
        if [ ${#names[@]} -eq 0 ] || [[ " ${names[*]} " == *" $(field "$t" 0) "* ]]; then
                selected+=("$t")
        fi
done
[ ${#selected[@]} -gt 0 ] || fail "no trace named ${names[*]} (see --list)"
[ ${#names[@]} -eq 0 ] || [ ${#names[@]} -eq ${#selected[@]} ] || fail "unknown trace in: ${names[*]} (see --list)"

# check_trace CSV EXPECT: prints "rows duration_s oom_at_s peak_mb max_mb" and fails when
# the trace's ending is not EXPECT. The OOM is the first row where ev_oom_kill grows.
check_trace() {
        awk -F, -v expect="$2" -v name="$1" '
                NR == 1 {
                        for (i = 1; i <= NF; i++) col[$i] = i
                        if (!col["t_ms"] || !col["current"] || !col["max"] || !col["ev_oom_kill"]) {
                                print name ": header lacks t_ms, current, max or ev_oom_kill" > "/dev/stderr"; exit 2 }
                        next
                }
                {
                        rows++; t = $col["t_ms"]; k = $col["ev_oom_kill"]
                        if ($col["current"] > peak) peak = $col["current"]
                        max = $col["max"]
                        if (rows > 1 && k > prev && oom == "") oom = t / 1000
                        prev = k
                }
                END {
                        if (rows == 0) { print name ": no rows" > "/dev/stderr"; exit 2 }
                        printf "%d %.1f %s %.1f %.0f\n", rows, t / 1000, oom == "" ? "-" : oom, peak / 1048576, max / 1048576
                        if (expect == "any") exit 0
                        if (expect == "oom" && oom == "") { print name ": no OOM kill in the trace" > "/dev/stderr"; exit 1 }
                        if (expect == "none" && oom != "") { print name ": an OOM kill at " oom " s" > "/dev/stderr"; exit 1 }
                }' "$1"
}

# ---- guest: record ----------------------------------------------------------------------
if [ $guest = 1 ]; then
        root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
        bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
        out=${out:-${MEMGOV_VM_OUT:?--out or MEMGOV_VM_OUT}}
        ctl=$bin/memgovctl
        LEAKY_DISK=$bin/examples/leaky/leaky
        LEAKY_OWN=$bin/traces-data/leaky
        DATA=$bin/traces-data/pagecache.bin
        LISTEN=127.0.0.1:0
        [ -x "$LEAKY_DISK" ] || fail "$LEAKY_DISK is not built"
        [ -x "$LEAKY_OWN" ] || fail "$LEAKY_OWN is missing (the host side of this script copies it)"
        [ -r "$DATA" ] || fail "$DATA is missing (the host side of this script writes it)"
        [ "$(id -u)" = 0 ] || fail "--guest needs root"
        grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null || fail "$root has no memory controller for children"
        parent=memgov.traces
        pcg=$root/$parent
        [ -e "$pcg" ] && fail "$pcg exists: another recording runs, or an old one was left behind"
        mkdir "$pcg"
        # memory for the limits, cpu for the throttled workload
        echo "+memory +cpu" >"$pcg/cgroup.subtree_control"
        logs=$out/logs
        mkdir -p "$logs"

        # shellcheck disable=SC2317 # run by the trap
        cleanup() {
                local d
                for d in "$pcg"/*/; do
                        [ -d "$d" ] || continue
                        echo 1 >"$d/cgroup.kill" 2>/dev/null || true
                        for _ in $(seq 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
                done
                rmdir "$pcg" 2>/dev/null || true
                [ -z "$shm" ] || rm -rf "$shm"
        }
        shm=""
        trap cleanup EXIT
        shm=$(mktemp -d /tmp/memgov-traces.XXXXXX)
        [ "$(stat -f -c %T "$shm")" = tmpfs ] || say "warning: $shm is not on a tmpfs"
        LEAKY=$shm/leaky
        cp "$LEAKY_DISK" "$LEAKY"
        # The copy read the binary into the page cache, charged to this cgroup: drop it,
        # so that the workloads running $LEAKY_DISK fault it in themselves.
        dd if="$LEAKY_DISK" iflag=nocache count=0 status=none
        export LEAKY LEAKY_DISK LEAKY_OWN DATA LISTEN
        if command -v stress-ng >/dev/null; then
                stress_ng=$(command -v stress-ng)
                # shellcheck disable=SC2046 # one path per word
                cat "$stress_ng" $(ldd "$stress_ng" | awk '$3 ~ /^\// { print $3 }') >/dev/null
        fi

        say "kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"
        declare -A rec_pid=()
        for t in "${selected[@]}"; do
                name=$(field "$t" 0)
                interval=$(field "$t" 2)
                cap=$(field "$t" 3)
                limit=$(field "$t" 4)
                cpumax=$(field "$t" 5)
                cmd=$(field "$t" 6)
                csv=$out/$name.csv
                rm -f "$csv" "$csv.tmp"
                # The workload's shell waits for the recorder's first row, then runs the
                # command; memgovctl run has put it in the cgroup already.
                # shellcheck disable=SC2016 # expanded by the trace's shell
                (
                        "$ctl" run --cgroup-root "$root" --cgroup-parent "$parent" --name "$name" \
                                --memory-max "$limit" --memory-swap-max 0 -- \
                                bash -c 'until [ -f "$0" ] && [ "$(wc -l <"$0")" -ge 2 ]; do sleep 0.1; done
                                         eval "$1"' "$csv.tmp" "$cmd" >"$logs/$name.log" 2>&1 || true
                ) 2>/dev/null &
                for _ in $(seq 300); do [ -d "$pcg/$name" ] && break; sleep 0.1; done
                [ -d "$pcg/$name" ] || fail "$name: memgovctl run did not create $pcg/$name (see $logs/$name.log)"
                [ "$cpumax" = - ] || echo "$cpumax" >"$pcg/$name/cpu.max"
                "$ctl" record --cgroup-root "$root" --cgroup "$parent/$name" --interval-ms "$interval" \
                        --duration-s "$cap" --until-oom -o "$csv" 2>"$logs/$name.record.log" &
                rec_pid[$name]=$!
                limits="memory.max $limit"
                [ "$cpumax" = - ] || limits+=", cpu.max $cpumax"
                say "$name: $limits, every $interval ms, up to $cap s: $cmd"
        done

        # As each recording ends, kill what is left in its cgroup (the sawtooth of
        # heap-gc-churn, the steady workloads).
        for t in "${selected[@]}"; do
                name=$(field "$t" 0)
                wait "${rec_pid[$name]}" || say "$name: memgovctl record exited $?"
                say "$name: $(sed 's/^memgovctl record: //' "$logs/$name.record.log")"
                echo 1 >"$pcg/$name/cgroup.kill" 2>/dev/null || true
                cat "$pcg/$name/memory.events" >"$logs/$name.memory.events" 2>/dev/null || true
        done
        dmesg 2>/dev/null | grep -E 'Memory cgroup out of memory|oom-kill:' >"$logs/dmesg-oom.txt" || true

        printf '%-15s %-6s %6s %8s %8s %8s %6s\n' trace expect rows dur_s oom_at_s peak_MiB max_MiB
        bad=0
        for t in "${selected[@]}"; do
                name=$(field "$t" 0)
                expect=$(field "$t" 1)
                if r=$(check_trace "$out/$name.csv" "$expect"); then ok=""; else ok="  <- wrong"; bad=1; fi
                # shellcheck disable=SC2086 # r is five words
                printf '%-15s %-6s %6s %8s %8s %8s %6s%s\n' "$name" "$expect" $r "$ok"
        done
        exit $bad
fi

# ---- host: build, boot, check, copy -------------------------------------------------------
build=$(cd "${build:-${MEMGOV_BINARY_DIR:-$src/build}}" 2>/dev/null && pwd) ||
        fail "no build directory (configure one: cmake -S $src -B $src/build), or pass --build DIR"
out=${out:-$here}
cmake --build "$build" -j2 --target leaky memgovctl >/dev/null || fail "building leaky and memgovctl in $build failed"
mkdir -p "$build/traces-data"
data=$build/traces-data/pagecache.bin
if [ "$(stat -c %s "$data" 2>/dev/null || echo 0)" != $((data_size_mb << 20)) ]; then
        say "writing $data_size_mb MiB of random bytes to $data (the page-cache workload reads it)"
        head -c $((data_size_mb << 20)) /dev/urandom >"$data.tmp" && mv "$data.tmp" "$data"
fi
cp "$build/examples/leaky/leaky" "$build/traces-data/leaky"
stage=$build/traces-real
rm -rf "$stage"
mkdir -p "$stage"
names=()
for t in "${selected[@]}"; do names+=("$(field "$t" 0)"); done
say "recording ${names[*]} into $stage (logs in $stage/logs)"
MEMGOV_BINARY_DIR=$build "$src/tests/vm/run" --mem 2560M --timeout 1200 --timing --direct-if-possible \
        --out "$stage" -- "$here/record.sh" --guest "${names[@]}" || fail "the recording failed (exit $?)"

# The same verdicts through memgovd's own reading of a trace.
policy=$src/policies/examples/go-http-service.json
for t in "${selected[@]}"; do
        name=$(field "$t" 0)
        json=$("$build/memgovctl" replay --policy "$policy" --json "$stage/$name.csv") ||
                fail "memgovctl replay could not read $name.csv"
        oom=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["oom_at_s"])' <<<"$json") || oom=""
        case $(field "$t" 1):$oom in
        *:) fail "memgovctl replay said no oom_at_s for $name.csv: $json" ;;
        oom:None) fail "memgovctl replay finds no OOM in $name.csv: $json" ;;
        none:[0-9]*) fail "memgovctl replay finds an OOM at $oom s in $name.csv" ;;
        *:None) say "replay: $name: no OOM" ;;
        *) say "replay: $name: OOM at $oom s" ;;
        esac
done
mkdir -p "$out"
for n in "${names[@]}"; do cp "$stage/$n.csv" "$out/$n.csv"; done
# The kernel's own account of the kills, when the whole set was recorded.
[ ${#names[@]} -eq ${#traces[@]} ] && cp "$stage/logs/dmesg-oom.txt" "$out/kernel-oom.log"
say "copied ${#names[@]} traces to $out"
