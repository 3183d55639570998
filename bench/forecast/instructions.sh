#!/usr/bin/env bash
# Instructions per forecast_update + decide_update, measured with callgrind over a small
# generated corpus: callgrind counts only inside those two functions (inclusive), and the
# benchmark says how many times it called them.
#
#   bench/forecast/instructions.sh [BUILD_DIR]     (default: build)
set -euo pipefail
build=${1:-build}
bin=$build/bench/forecast/bench-forecast
[ -x "$bin" ] || { echo "instructions.sh: build $bin first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }

tmp=$(mktemp -d /tmp/memgov-instr.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
        --toggle-collect=forecast_update --toggle-collect=decide_update \
        "$bin" --scale 0.1 --memgov-only --corpus "$tmp/corpus" >/dev/null 2>"$tmp/log"
updates=$(sed -n 's/^bench-forecast: \([0-9]*\) forecast+decide updates$/\1/p' "$tmp/log")
ir=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$tmp/cg.out")
[ -n "$updates" ] && [ -n "$ir" ] || { cat "$tmp/log" >&2; exit 1; }
echo "$ir instructions over $updates updates: $((ir / updates)) instructions per forecast_update + decide_update"
