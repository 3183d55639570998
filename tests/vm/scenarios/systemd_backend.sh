#!/usr/bin/env bash
# The systemd backend against a real systemd manager (Debian's systemd 252) on a real
# kernel: systemd runs as the init of a new PID namespace inside the VM ("container" mode,
# a target with nothing in it), a transient unit is started with systemd-run, and
# test_actuate's real-manager case drives memgov's backend at it: GetUnitByControlGroup,
# SetUnitProperties(MemoryHigh=300M, runtime) asynchronously on an sd-event loop, then the
# restore record put back synchronously. systemd itself writes memory.high; the case
# checks the file. Clients must be in systemd's PID namespace: it refuses connections to
# its private socket from peers whose pid it cannot see, so everything talking to it runs
# under nsenter -p.
#
# Only in the VM: on a host, starting a second systemd over the host's cgroup tree is not
# something a test may do (exit 77 there).
set -euo pipefail

fail() {
        echo "systemd_backend: FAIL: $*" >&2
        exit 1
}
say() { echo "systemd_backend: $*"; }

[ "${MEMGOV_VM:-0}" = 1 ] || {
        echo "systemd_backend: only in the VM (it starts systemd as an init)" >&2
        exit 77
}
[ -x /lib/systemd/systemd ] || {
        echo "systemd_backend: no /lib/systemd/systemd (apt-get install systemd)" >&2
        exit 77
}
bin=${MEMGOV_BINARY_DIR:?MEMGOV_BINARY_DIR must name the build tree}
[ -x "$bin/test_actuate" ] || fail "$bin/test_actuate is not built"
root=${MEMGOV_CGROUP_ROOT:-/sys/fs/cgroup}
export SYSTEMD_IGNORE_CHROOT=1 # the VM runs us in a chroot of the host's tree

mkdir -p /etc/systemd/system
cat >/etc/systemd/system/memgov-vm.target <<'EOF'
[Unit]
Description=memgov VM test: the manager and nothing else
DefaultDependencies=no
EOF

t0=$(date +%s.%N)
env -i container=memgov-vm PATH="$PATH" unshare --pid --fork --mount-proc \
        /lib/systemd/systemd --system --unit=memgov-vm.target --log-target=console \
        --log-level=notice &
us=$!
for _ in $(seq 240); do
        [ -S /run/systemd/private ] && break
        sleep 0.5
done
[ -S /run/systemd/private ] || fail "systemd did not open /run/systemd/private within 120 s"
sd=$(tr -d ' ' </proc/$us/task/$us/children)
[ -n "$sd" ] || fail "no systemd process under unshare ($us)"
in_sd() { nsenter -t "$sd" -p -- "$@"; }
state=$(in_sd timeout 120 systemctl is-system-running --wait || true)
say "systemd up after $(echo "$(date +%s.%N) - $t0" | bc) s, state: $state"

unit=memgov-probe.service
in_sd systemd-run --quiet --unit=$unit --property=MemoryAccounting=yes sleep 600
cg=system.slice/$unit
[ -d "$root/$cg" ] || fail "no cgroup $root/$cg for $unit"
say "$unit runs in $cg; memory.high $(cat "$root/$cg/memory.high")"

# memgov's backend against the real manager (the case is skipped unless this is set)
out=$(in_sd env MEMGOV_TEST_SYSTEMD_CGROUP=$cg MEMGOV_CGROUP_ROOT="$root" \
        "$bin/test_actuate" 2>&1) || {
        echo "$out"
        fail "test_actuate failed against the real manager"
}
echo "$out" | grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) *\]|systemd' || true
echo "$out" | grep -q '^\[       OK \] test_actuate_systemd_real_manager' ||
        fail "the real-manager case did not run"
prop=$(in_sd systemctl show -p MemoryHigh --value $unit)
[ "$prop" = infinity ] || fail "MemoryHigh of $unit is '$prop' after the restore, not infinity"
say "after the restore: MemoryHigh=$prop, memory.high $(cat "$root/$cg/memory.high")"

# Why a unit's cgroup goes through systemd: a value written behind its back does not last.
echo $((200 << 20)) >"$root/$cg/memory.high"
in_sd systemctl daemon-reload
say "finding: memory.high written directly as 209715200, after daemon-reload: $(cat "$root/$cg/memory.high")"

in_sd systemctl stop $unit || true
say "ok"
