#!/usr/bin/env bash
# memgovctl replay under valgrind memcheck over a long synthetic trace (docs/benchmarks.md,
# "Leak-free"): ROWS samples at 1 s (default 200,000, about 55 hours) of a GC sawtooth with
# noise whose base creeps up, with memory.high throttling and PSI stalls as it nears the
# limit, an OOM kill at the limit and a restart from the bottom, again and again; replayed
# with policies/examples/go-http-service.json (levels, memory.high in guard mode). Prints
# the trace's size, the replay's report and valgrind's verdict; exits non-zero on any
# memory error or definite/indirect leak.
#
#   bench/daemon/replay-memcheck.sh BUILD_DIR [ROWS]
set -euo pipefail

build=${1:?usage: replay-memcheck.sh BUILD_DIR [ROWS]}
rows=${2:-200000}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

awk -v rows="$rows" 'BEGIN {
        srand(7)
        max = 512 * 1048576
        print "t_ms,current,anon,file,max,high,ev_high,ev_max,ev_oom,ev_oom_kill,psi_some_us,psi_full_us"
        base = 0.30; evh = 0; evm = 0; oom = 0; some = 0; full = 0
        for (k = 0; k < rows; k++) {
                base += 0.000004 + 0.00002 * rand()          # a slow leak: hours to the limit
                saw = 0.15 * ((k % 47) / 47.0)                # GC cycles of 47 s
                cur = int(max * (base + saw + 0.01 * rand()))
                if (cur > 0.9 * max) { evh += 1 + int(3 * rand()); some += 200000; full += 50000 }
                if (cur >= max) {                             # OOM kill, restart from the bottom
                        cur = max - 4096; evm++; oom++
                        base = 0.25 + 0.1 * rand()
                }
                anon = int(cur * 0.8); file = cur - anon
                printf "%d,%d,%d,%d,%d,max,%d,%d,%d,%d,%d,%d\n", k * 1000, cur, anon, file, max,
                        evh, evm, oom, oom, some, full
        }
}' >"$work/trace.csv"
echo "trace: $rows rows, $(du -h "$work/trace.csv" | cut -f1), $(tail -1 "$work/trace.csv" | cut -d, -f10) OOM kills"

status=0
/usr/bin/time -f "replay under memcheck: %e s wall, %M KiB max RSS" \
        valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file="$work/vg.log" \
        "$build/memgovctl" replay --policy "$src/policies/examples/go-http-service.json" \
        "$work/trace.csv" >"$work/replay.out" || status=$?

echo "replay's report:"
sed 's/^/    /' "$work/replay.out"
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|All heap blocks|total heap usage' \
        "$work/vg.log" | sed 's/^==[0-9]*== */valgrind: /'
exit "$status"
