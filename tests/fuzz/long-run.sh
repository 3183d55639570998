#!/usr/bin/env bash
# The long fuzz run behind docs/benchmarks.md ("Fuzzing"): every libFuzzer target for RUNS
# executions (default 10 million) with ASan+UBSan, one after another on one core at the
# lowest priority, starting from the seed corpus. Prints a Markdown table: target,
# executions, time, exec/s, crashes (crash, leak, timeout or OOM files), corpus size
# (inputs and bytes at the end).
#
#   tests/fuzz/long-run.sh [BUILD_DIR] [RUNS] [TARGET...]   (default: build-fuzz, 10000000)
#
# MAX_SECONDS (default 14400) bounds each target's run: a target slower than RUNS/MAX_SECONDS
# exec/s stops early, and the table shows the executions it reached.
#
# BUILD_DIR is configured with clang if it is not yet; crashes and the grown corpus stay in
# BUILD_DIR/fuzz-long/, never in the source tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
runs=${2:-10000000}
max_seconds=${MAX_SECONDS:-14400}
# ASan's defaults (a 256 MiB quarantine of freed memory, 30 frames recorded per malloc) made
# the allocating targets several times slower (fuzz_pprof_parse: 800 exec/s against 3,300;
# profiled: page faults on fresh quarantine memory and stack unwinding in every malloc, not
# the parsers). A use after free is still caught while the block is among the last 16 MiB
# freed (the inputs here are a few KiB), and 5 frames still name the allocation site. Set
# ASAN_OPTIONS to override.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=5}
shift 2 2>/dev/null || shift $#
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
        mapfile -t targets < <(sed -n '/^set(MEMGOV_FUZZ_TARGETS/,/)/p' tests/fuzz/CMakeLists.txt |
                grep -o 'fuzz_[a-z_]*')
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
        CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
grep -q 'CMAKE_C_COMPILER_ID:.*Clang\|CMAKE_C_COMPILER:FILEPATH=.*clang' "$build/CMakeCache.txt" ||
        { echo "long-run.sh: $build is not a clang build" >&2; exit 1; }
cmake --build "$build" -j1 --target "${targets[@]}" >/dev/null

out=$build/fuzz-long
mkdir -p "$out"
echo "| target | executions | time | exec/s | crashes | corpus (inputs, bytes) |"
echo "|---|---:|---:|---:|---|---:|"
for t in "${targets[@]}"; do
        mkdir -p "$out/$t"
        start=$(date +%s)
        set +e
        nice -n 19 "$build/tests/fuzz/$t" -runs="$runs" -max_total_time="$max_seconds" -timeout=10 \
                -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$t-" \
                "$out/$t" "tests/fuzz/corpus/$t" >"$out/$t.log" 2>&1
        rc=$?
        set -e
        secs=$(($(date +%s) - start))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
        rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
        corpus=$(grep -o 'corp: [0-9]*/[0-9]*[A-Za-z]*' "$out/$t.log" | tail -1 |
                sed 's|corp: \([0-9]*\)/\(.*\)|\1 (\2)|')
        crashes=$(find "$out" -maxdepth 1 -name "$t-*" -type f | wc -l)
        if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]; then
                findings=0
        else
                findings="$crashes (exit $rc, files in $out)"
        fi
        printf '| %s | %s | %dm%02ds | %s | %s | %s |\n' "$t" "${execs:-?}" $((secs / 60)) \
                $((secs % 60)) "${rate:-?}" "$findings" "$corpus"
done
