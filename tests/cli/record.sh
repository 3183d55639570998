#!/usr/bin/env bash
# memgovctl record against a temporary cgroup tree whose files this script rewrites: the
# CSV has the contract's header and the values written, and every way a recording ends
# (duration, the cgroup removed, a signal, an OOM kill) leaves a complete file.
set -euo pipefail

ctl=${MEMGOV_BINARY_DIR:?}/memgovctl
[ -x "$ctl" ] || { echo "record.sh: $ctl not built" >&2; exit 1; }

tmp=$(mktemp -d /tmp/memgov-record.XXXXXX)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

header='t_ms,current,anon,file,max,high,ev_high,ev_max,ev_oom,ev_oom_kill,psi_some_us,psi_full_us'

# put FILE CONTENT: replace a file the way the kernel shows a new value: never half-written.
put() {
        printf '%s\n' "$2" >"$1.new"
        mv -f "$1.new" "$1"
}

# make_cgroup DIR: a cgroup as a 6.1 kernel shows it, memory.max 1 GiB.
make_cgroup() {
        mkdir -p "$1"
        put "$1/memory.current" 1000000
        put "$1/memory.max" 1073741824
        put "$1/memory.high" max
        printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n' >"$1/memory.events"
        printf 'anon 600000\nfile 300000\nkernel 4096\n' >"$1/memory.stat"
        printf 'some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=40\n' \
                >"$1/memory.pressure"
}

# wait_for FILE PATTERN: until a line of FILE matches (the recorder has sampled it).
wait_for() {
        for _ in $(seq 600); do
                grep -q -- "$2" "$1" 2>/dev/null && return 0
                sleep 0.05
        done
        fail "'$2' never appeared in $1"
}

# check_complete CSV: the header, then whole rows of 12 cells, t_ms non-decreasing.
check_complete() {
        [ -f "$1" ] || fail "$1 was not written"
        [ ! -e "$1.tmp" ] || fail "$1.tmp left behind"
        [ "$(head -n1 "$1")" = "$header" ] || fail "header of $1: $(head -n1 "$1")"
        [ "$(tail -c1 "$1" | od -An -c | tr -d ' ')" = '\n' ] || fail "$1 ends mid-line"
        awk -F, 'NR > 1 { if (NF != 12) { print "row " NR ": " NF " cells"; exit 1 }
                          if ($1 < last) { print "row " NR ": t_ms goes back"; exit 1 }
                          last = $1 }' "$1" || fail "rows of $1"
        [ "$(wc -l <"$1")" -ge 2 ] || fail "$1 has no rows"
}

root=$tmp/cg
mkdir -p "$tmp/proc"
echo 'MemTotal:        8000000 kB' >"$tmp/proc/meminfo"

# 1. Values rewritten while recording appear, in order, with the other columns; SIGTERM
#    ends the recording with a complete file.
make_cgroup "$root/app"
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup app \
        --interval-ms 100 --duration-s 600 -o "$tmp/a.csv" 2>"$tmp/a.err" &
rec=$!
pids+=("$rec")
for v in 2000000 3000000 4000000; do
        wait_for "$tmp/a.csv.tmp" '^[0-9]*,[0-9]*,'
        put "$root/app/memory.current" "$v"
        wait_for "$tmp/a.csv.tmp" "^[0-9]*,$v,"
done
kill -TERM "$rec"
wait "$rec" || fail "record exited $? on SIGTERM ($(cat "$tmp/a.err"))"
check_complete "$tmp/a.csv"
grep -q terminated "$tmp/a.err" || fail "message: $(cat "$tmp/a.err")"
sed -n 2p "$tmp/a.csv" | grep -qx '0,1000000,600000,300000,1073741824,max,0,0,0,0,100,40' ||
        fail "first row: $(sed -n 2p "$tmp/a.csv")"
order=$(cut -d, -f2 "$tmp/a.csv" | uniq | tr '\n' ' ')
[ "$order" = "current 1000000 2000000 3000000 4000000 " ] || fail "values in order: $order"

# 1b. --duration-s: the recording ends by itself, with the value written during it.
make_cgroup "$root/short"
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup short \
        --interval-ms 100 --duration-s 2 -o "$tmp/a2.csv" 2>"$tmp/a2.err" &
rec=$!
pids+=("$rec")
wait_for "$tmp/a2.csv.tmp" '^[0-9]*,1000000,'
put "$root/short/memory.current" 7777777
wait "$rec" || fail "record exited $? ($(cat "$tmp/a2.err"))"
check_complete "$tmp/a2.csv"
grep -q 'duration ended' "$tmp/a2.err" || fail "message: $(cat "$tmp/a2.err")"
grep -q '^[0-9]*,7777777,' "$tmp/a2.csv" || fail "the rewritten value is not in a2.csv"

# 2. The cgroup removed mid-recording: a complete file and a message that says so.
make_cgroup "$root/gone"
put "$root/memory.max" 500000000 # above the root: not part of the effective limit
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup gone \
        --interval-ms 100 --duration-s 600 -o "$tmp/b.csv" 2>"$tmp/b.err" &
rec=$!
pids+=("$rec")
put "$root/gone/memory.current" 5555555
wait_for "$tmp/b.csv.tmp" '^[0-9]*,5555555,'
rm -rf "$root/gone"
wait "$rec" || fail "record exited $? after the cgroup went ($(cat "$tmp/b.err"))"
check_complete "$tmp/b.csv"
grep -q 'cgroup was removed' "$tmp/b.err" || fail "message: $(cat "$tmp/b.err")"
tail -n1 "$tmp/b.csv" | grep -q '^[0-9]*,5555555,' || fail "last row: $(tail -n1 "$tmp/b.csv")"

# 3. Effective limit: no memory.max of its own, bounded by its parent; unbounded → MemTotal.
make_cgroup "$root/slice/svc"
put "$root/slice/memory.max" 268435456
put "$root/slice/svc/memory.max" max
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup slice/svc \
        --interval-ms 100 --duration-s 1 -o "$tmp/c.csv" 2>"$tmp/c.err" ||
        fail "record slice/svc: $(cat "$tmp/c.err")"
check_complete "$tmp/c.csv"
[ "$(cut -d, -f5 "$tmp/c.csv" | sed 1d | sort -u)" = 268435456 ] || fail "max column of c.csv"
put "$root/slice/memory.max" max
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup /slice/svc/ \
        --interval-ms 100 --duration-s 1 -o "$tmp/c2.csv" 2>"$tmp/c.err" ||
        fail "record slice/svc: $(cat "$tmp/c.err")"
[ "$(cut -d, -f5 "$tmp/c2.csv" | sed 1d | sort -u)" = 8192000000 ] || fail "max column of c2.csv"

# 4. SIGINT: the rows so far are kept under the final name.
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup app \
        --interval-ms 100 -o "$tmp/d.csv" 2>"$tmp/d.err" &
rec=$!
pids+=("$rec")
wait_for "$tmp/d.csv.tmp" '^[0-9]*,4000000,'
kill -INT "$rec"
wait "$rec" || fail "record exited $? on SIGINT ($(cat "$tmp/d.err"))"
check_complete "$tmp/d.csv"
grep -q interrupted "$tmp/d.err" || fail "message: $(cat "$tmp/d.err")"

# 5. --until-oom: stops one sample after oom_kill grows.
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup app \
        --interval-ms 100 --until-oom -o "$tmp/e.csv" 2>"$tmp/e.err" &
rec=$!
pids+=("$rec")
wait_for "$tmp/e.csv.tmp" '^[0-9]*,4000000,'
printf 'low 0\nhigh 9\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n' >"$root/app/memory.events.new"
mv "$root/app/memory.events.new" "$root/app/memory.events"
wait "$rec" || fail "record --until-oom exited $? ($(cat "$tmp/e.err"))"
check_complete "$tmp/e.csv"
grep -q 'OOM kill' "$tmp/e.err" || fail "message: $(cat "$tmp/e.err")"
[ "$(tail -n2 "$tmp/e.csv" | cut -d, -f10 | tr '\n' ' ')" = "1 1 " ] ||
        fail "the last two rows should show the kill: $(tail -n2 "$tmp/e.csv")"
[ "$(grep -c ',1,100,40$' "$tmp/e.csv")" = 2 ] || fail "exactly one sample after the kill"

# 6. A value that cannot be parsed (junk where a number should be) skips that sample only.
make_cgroup "$root/junk"
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup junk \
        --interval-ms 100 --duration-s 2 -o "$tmp/j.csv" 2>"$tmp/j.err" &
rec=$!
pids+=("$rec")
wait_for "$tmp/j.csv.tmp" '^[0-9]*,1000000,'
put "$root/junk/memory.current" 'not a number'
wait "$rec" || fail "record exited $? on junk ($(cat "$tmp/j.err"))"
check_complete "$tmp/j.csv"
grep -q 'unreadable samples skipped' "$tmp/j.err" || fail "message: $(cat "$tmp/j.err")"
grep -q 'not a number' "$tmp/j.csv" && fail "junk in the CSV"

# 7. Mistakes: a usage error is 2, a missing cgroup 1, and neither leaves a file.
set +e
"$ctl" record --cgroup app 2>"$tmp/f.err"
[ $? = 2 ] || fail "no -o: exit status"
grep -q -- '-o FILE.csv is required' "$tmp/f.err" || fail "no -o: $(cat "$tmp/f.err")"
"$ctl" record --cgroup-root "$root" --proc-root "$tmp/proc" --cgroup nothere -o "$tmp/g.csv" \
        2>"$tmp/g.err"
[ $? = 1 ] || fail "missing cgroup: exit status"
grep -q "nothere: No such file or directory" "$tmp/g.err" || fail "missing cgroup: $(cat "$tmp/g.err")"
[ ! -e "$tmp/g.csv" ] && [ ! -e "$tmp/g.csv.tmp" ] || fail "a file for a missing cgroup"
"$ctl" record --cgroup-root "$root" --cgroup ../etc -o "$tmp/h.csv" 2>"$tmp/h.err"
[ $? = 1 ] || fail "'..': exit status"
"$ctl" record --cgroup-root "$root" --cgroup app --interval-ms 0 -o "$tmp/h.csv" 2>"$tmp/h.err"
[ $? = 2 ] || fail "--interval-ms 0: exit status"
grep -q -- '--interval-ms: expected a whole number' "$tmp/h.err" || fail "$(cat "$tmp/h.err")"
set -e

echo "record.sh: all passed"
