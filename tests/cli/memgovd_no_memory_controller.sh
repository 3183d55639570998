#!/bin/bash
# memgovd on trees it cannot govern: a cgroup root without the memory controller, a
# directory that is no cgroup2 tree, a machine without a cgroup2 mount, and this host's own
# cgroup2 mount when it lacks memory (hybrid hosts). Each gives exit 1 and a message that
# says what is wrong and what to do. It only reads the host's cgroups, never writes them,
# and every memgovd here keeps its state and its socket in a private temporary directory,
# never the host's /var/lib/memgov or /run/memgov.
# A tree with the memory controller, by contrast, starts and stops cleanly on SIGTERM.
set -u

bin=${MEMGOV_BINARY_DIR:?}/memgovd
tmp=$(mktemp -d)
daemon_pid=
cleanup() {
        [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
failed=0

fail() {
        echo "FAIL: $*"
        failed=1
}

# expect_exit1 NAME PATTERN... -- ARGS...: memgovd ARGS exits 1, stderr holds each PATTERN
expect_exit1() {
        local name=$1 rc p
        shift
        local patterns=()
        while [ "$1" != -- ]; do
                patterns+=("$1")
                shift
        done
        shift
        "$bin" "${private[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [ "$rc" -eq 1 ] || fail "$name: exit $rc, expected 1"
        for p in "${patterns[@]}"; do
                grep -qF -- "$p" "$tmp/err" || fail "$name: stderr lacks '$p'"
        done
        if [ $failed -ne 0 ]; then
                echo "--- $name stderr:"
                cat "$tmp/err"
        fi
}

mkdir -p "$tmp/policies" "$tmp/proc" "$tmp/nomem" "$tmp/notcg" "$tmp/mem"
# State and runtime (the socket) of every memgovd run below: private, gone at the end.
mkdir -m 700 "$tmp/state" "$tmp/run"
printf '{"runtime_dir": "%s/run"}\n' "$tmp" >"$tmp/memgovd.json"
private=(--config "$tmp/memgovd.json" --state-dir "$tmp/state")
echo "MemTotal:        8388608 kB" >"$tmp/proc/meminfo"
echo "cpu io pids" >"$tmp/nomem/cgroup.controllers"
echo "cpu memory pids" >"$tmp/mem/cgroup.controllers"

expect_exit1 "root without memory" \
        "the cgroup root $tmp/nomem has no memory controller" \
        "(its cgroup.controllers lists: cpu io pids)" \
        "memgov governs cgroup v2 memory only" \
        "systemd.unified_cgroup_hierarchy=1" \
        "point --cgroup-root at a cgroup2 tree with the memory controller" \
        -- --cgroup-root "$tmp/nomem" --proc-root "$tmp/proc" --policy-dir "$tmp/policies"

expect_exit1 "not a cgroup tree" \
        "the cgroup root $tmp/notcg has no readable cgroup.controllers" \
        "it is not a cgroup2 tree" \
        -- --cgroup-root "$tmp/notcg" --proc-root "$tmp/proc" --policy-dir "$tmp/policies"

# A machine whose mountinfo has no cgroup2 line at all (cgroup v1 only).
mkdir -p "$tmp/proc/self"
cat >"$tmp/proc/self/mountinfo" <<'EOF'
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory
EOF
expect_exit1 "no cgroup2 mount" \
        "found no cgroup2 mount in $tmp/proc/self/mountinfo" \
        "memgov governs cgroup v2 memory only" \
        -- --proc-root "$tmp/proc" --policy-dir "$tmp/policies"

# This host, auto-detected: only where its cgroup2 mount really lacks memory (or is absent).
mount=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
        /proc/self/mountinfo | head -n 1)
if [ -z "$mount" ]; then
        expect_exit1 "host without cgroup2" "found no cgroup2 mount in /proc/self/mountinfo" \
                -- --policy-dir "$tmp/policies"
elif ! grep -qw memory "$mount/cgroup.controllers" 2>/dev/null; then
        listed=$(tr -s ' \n' ' ' <"$mount/cgroup.controllers" | sed 's/ $//')
        expect_exit1 "host cgroup2 mount without memory" \
                "the cgroup2 mount $mount has no memory controller" \
                "(its cgroup.controllers lists: ${listed:-nothing})" \
                "memgov governs cgroup v2 memory only" \
                -- --policy-dir "$tmp/policies"
else
        echo "note: this host's cgroup2 mount $mount has memory; its auto-detect case is not run"
fi

# The control: with memory listed, memgovd starts, and exits 0 on SIGTERM.
"$bin" "${private[@]}" --cgroup-root "$tmp/mem" --proc-root "$tmp/proc" \
        --policy-dir "$tmp/policies" >"$tmp/out" 2>"$tmp/err" &
daemon_pid=$!
for _ in $(seq 100); do
        grep -q "governing 0 cgroups under $tmp/mem" "$tmp/err" && break
        sleep 0.1
done
grep -q "governing 0 cgroups under $tmp/mem" "$tmp/err" || fail "memory tree: memgovd did not start"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] || {
        fail "memory tree: exit $rc after SIGTERM, expected 0"
        cat "$tmp/err"
}
# It listened and kept its state where it was told, not in the host's directories.
grep -qF "$tmp/run/memgovd.sock" "$tmp/err" || fail "memory tree: no socket under $tmp/run"
[ -d "$tmp/state" ] || fail "memory tree: state dir $tmp/state is gone"

[ $failed -eq 0 ] && echo "ok"
exit $failed
