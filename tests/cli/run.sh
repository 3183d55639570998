#!/usr/bin/env bash
# memgovctl run against a temporary directory as the cgroup root: without a cgroup2 memory
# controller nothing is enforced, but the cgroup is created where asked, the limit files
# hold what was asked, +memory is enabled on the way down, cgroup.procs names the process
# that became CMD, and CMD runs with its arguments and exit status. Real enforcement is
# tested in the VM (tests/vm).
set -euo pipefail

ctl=${MEMGOV_BINARY_DIR:?}/memgovctl
[ -x "$ctl" ] || { echo "run.sh: $ctl not built" >&2; exit 1; }

tmp=$(mktemp -d /tmp/memgov-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/cg
mkdir "$root"

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect FILE CONTENT
expect() {
        [ -f "$1" ] || fail "$1 missing"
        [ "$(cat "$1")" = "$2" ] || fail "$1: '$(cat "$1")', expected '$2'"
}

# 1. Limits, the move and the exec: CMD sees its arguments and keeps memgovctl's pid.
out=$("$ctl" run --cgroup-root "$root" --name job --memory-max 64M --memory-high 48M \
        --memory-swap-max 0 -- sh -c 'echo $$ >"$0"; echo "args:$*"' "$tmp/pid" one 'two words' \
        2>"$tmp/err") || fail "run exited $? ($(cat "$tmp/err"))"
[ "$out" = "args:one two words" ] || fail "CMD output: $out"
cg=$root/memgov.run/job
expect "$cg/memory.max" 67108864
expect "$cg/memory.high" 50331648
expect "$cg/memory.swap.max" 0
expect "$cg/cgroup.procs" "$(cat "$tmp/pid")"
expect "$root/cgroup.subtree_control" +memory
expect "$root/memgov.run/cgroup.subtree_control" +memory
grep -q "running sh in cgroup .*/memgov.run/job" "$tmp/err" || fail "message: $(cat "$tmp/err")"
grep -q "not a cgroup2 filesystem" "$tmp/err" || fail "no warning about the plain tree"

# 2. CMD's exit status is memgovctl's; "max" is written as the word; no limit, no file.
set +e
"$ctl" run -q --cgroup-root "$root" --name st --memory-max max -- sh -c 'exit 3' 2>"$tmp/err"
st=$?
set -e
[ "$st" = 3 ] || fail "exit status $st, expected CMD's 3"
expect "$root/memgov.run/st/memory.max" max
[ ! -e "$root/memgov.run/st/memory.high" ] || fail "memory.high written though not asked"
grep -q running "$tmp/err" && fail "-q still says which cgroup"

# 3. A nested parent is created component by component, +memory at each level.
"$ctl" run -q --cgroup-root "$root" --cgroup-parent /batch/nightly --memory-high 1G -- true \
        2>/dev/null || fail "nested parent"
expect "$root/batch/cgroup.subtree_control" +memory
expect "$root/batch/nightly/cgroup.subtree_control" +memory
n=$(find "$root/batch/nightly" -mindepth 1 -maxdepth 1 -type d -name 'true-*' | wc -l)
[ "$n" = 1 ] || fail "default name true-<pid>: $(ls "$root/batch/nightly")"
expect "$(find "$root/batch/nightly" -mindepth 1 -maxdepth 1 -type d)/memory.high" 1073741824

# 4. Mistakes: clear messages, and nothing created for them.
set +e
"$ctl" run --cgroup-root "$root" --name job -- true 2>"$tmp/err"
[ $? = 1 ] || fail "existing name: exit status"
grep -q "memgov.run/job: File exists; choose another --name" "$tmp/err" || fail "$(cat "$tmp/err")"

"$ctl" run --cgroup-root "$root" --name nocmd -- /nonexistent/cmd 2>"$tmp/err"
[ $? = 127 ] || fail "missing command: exit status"
grep -q "/nonexistent/cmd: command not found" "$tmp/err" || fail "$(cat "$tmp/err")"
[ ! -e "$root/memgov.run/nocmd" ] || fail "a cgroup for a command that cannot run"

"$ctl" run --cgroup-root "$root" --memory-max 80% -- true 2>"$tmp/err"
[ $? = 2 ] || fail "percent size: exit status"
grep -q -- "--memory-max: expected a size" "$tmp/err" || fail "$(cat "$tmp/err")"

"$ctl" run --cgroup-root "$root" --name a/b -- true 2>"$tmp/err"
[ $? = 2 ] || fail "name with '/': exit status"

"$ctl" run --cgroup-root "$root" --cgroup-parent ../up -- true 2>"$tmp/err"
[ $? = 2 ] || fail "parent with '..': exit status"
grep -q "'..' is not allowed" "$tmp/err" || fail "$(cat "$tmp/err")"
[ ! -e "$tmp/up" ] || fail "escaped the cgroup root"

"$ctl" run --cgroup-root "$root" 2>"$tmp/err"
[ $? = 2 ] || fail "no command: exit status"
set -e

echo "run.sh: all passed"
