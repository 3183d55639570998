#!/bin/bash
# In the VM: install the memgov .deb that tests/vm/deb_install.sh built (in
# $MEMGOV_VM_OUT) with dpkg -i, and check that it does what docs/deploy.md says: the
# binaries run, the unit is installed and enabled (multi-user.target.wants) and passes
# `systemd-analyze verify`, the group memgov exists (sysusers), the directories exist with
# their modes (tmpfiles), the config is a conffile. Then start memgovd under that unit
# with Debian's systemd and check the running process (readiness, memory lock, OOM score,
# sandbox, memory.min, the socket). Then purge it through that systemd and check that the
# daemon stopped and the files and the enablement are gone. The guest's root is an overlay over the host's,
# read-only: nothing here reaches the host. Refuses to run anywhere but the VM.
set -u
if [ "${MEMGOV_VM:-0}" != 1 ]; then
        echo "SKIP: deb_install installs a package: only in the VM (tests/vm/run without --direct-if-possible)"
        exit 77
fi
# dpkg writes /var/lib/dpkg, /usr, /etc, /lib: all must be the overlay's tmpfs.
rootfs=$(awk '$2 == "/" { t = $3 } END { print t }' /proc/mounts)
if [ "$rootfs" != overlay ]; then
        echo "FAIL: the guest's / is '$rootfs', not the overlay over the host root: not installing"
        exit 1
fi
failed=0
fail() {
        echo "FAIL: $*"
        failed=1
}
ok() { echo "ok: $*"; }
step() { echo "== ${SECONDS}s: $*"; }

shopt -s nullglob
debs=("$MEMGOV_VM_OUT"/memgov_*.deb)
[ ${#debs[@]} -eq 1 ] || { echo "FAIL: expected one memgov_*.deb in $MEMGOV_VM_OUT, found ${#debs[@]}"; exit 1; }
deb=${debs[0]}
# The man-db trigger would rebuild the index of every man page on the host: minutes under
# emulation, for nothing this test looks at (the guest's copy of the flag file only).
rm -f /var/lib/man-db/auto-update

step "dpkg -i"
if dpkg -i "$deb" >"$MEMGOV_VM_OUT/dpkg-i.log" 2>&1; then
        ok "dpkg -i $(basename "$deb")"
else
        cat "$MEMGOV_VM_OUT/dpkg-i.log"
        echo "FAIL: dpkg -i $deb"
        exit 1
fi
step "checks"
status=$(dpkg-query -W -f='${Status} ${Version}' memgov)
[ "${status% *}" = "install ok installed" ] && ok "dpkg-query: $status" || fail "dpkg-query: $status"
dpkg --verify memgov >"$MEMGOV_VM_OUT/verify.txt" 2>&1 && [ ! -s "$MEMGOV_VM_OUT/verify.txt" ] &&
        ok "dpkg --verify: every file as packaged" || fail "dpkg --verify: $(cat "$MEMGOV_VM_OUT/verify.txt")"

for f in /usr/sbin/memgovd /usr/bin/memgovctl /lib/systemd/system/memgovd.service \
        /usr/lib/sysusers.d/memgov.conf /usr/lib/tmpfiles.d/memgov.conf /etc/memgov/memgovd.json \
        /usr/share/man/man8/memgovd.8.gz /usr/share/man/man1/memgovctl.1.gz \
        /usr/share/man/man5/memgov-policy.5.gz /usr/share/memgov/policies/policy.schema.json \
        /usr/share/doc/memgov/examples/grafana/memgov.json; do
        [ -f "$f" ] || fail "not installed: $f"
done
[ -d /etc/memgov/policies.d ] || fail "not installed: /etc/memgov/policies.d"
grep -qxF /etc/memgov/memgovd.json /var/lib/dpkg/info/memgov.conffiles &&
        ok "/etc/memgov/memgovd.json is a conffile" || fail "/etc/memgov/memgovd.json is not a conffile"
grep -q '"listen": "127.0.0.1:9464"' /etc/memgov/memgovd.json &&
        ok "config: /metrics on 127.0.0.1:9464" || fail "config lacks listen 127.0.0.1:9464: $(cat /etc/memgov/memgovd.json)"

v=$(memgovd --version 2>&1) && [ "$v" = "memgovd ${status##* }" ] &&
        ok "memgovd --version: $v" || fail "memgovd --version: '$v' (package ${status##* })"
memgovctl --help >"$MEMGOV_VM_OUT/help.txt" 2>&1 && grep -q '^Usage: memgovctl' "$MEMGOV_VM_OUT/help.txt" &&
        ok "memgovctl --help" || fail "memgovctl --help: $(head -3 "$MEMGOV_VM_OUT/help.txt")"
ldd /usr/sbin/memgovd /usr/bin/memgovctl | grep -q 'not found' && fail "missing libraries: $(ldd /usr/sbin/memgovd | grep 'not found')"

# postinst: systemd-sysusers (the group), systemd-tmpfiles (the directories), enable.
g=$(getent group memgov) && ok "group: $g" || fail "no group memgov (systemd-sysusers memgov.conf in postinst)"
for d in /var/lib/memgov:700 /var/lib/memgov/dumps:700 /var/lib/memgov/restore:700 /run/memgov:755; do
        m=$(stat -c %a "${d%:*}" 2>/dev/null) && [ "$m" = "${d#*:}" ] &&
                ok "${d%:*} mode $m" || fail "${d%:*}: mode '${m:-missing}', expected ${d#*:} (tmpfiles)"
done
wants=/etc/systemd/system/multi-user.target.wants/memgovd.service
[ "$(readlink "$wants")" = /lib/systemd/system/memgovd.service ] &&
        ok "enabled: $wants -> $(readlink "$wants")" || fail "not enabled: $wants -> '$(readlink "$wants")'"
e=$(systemctl is-enabled memgovd.service 2>&1)
[ "$e" = enabled ] && ok "systemctl is-enabled: $e" || fail "systemctl is-enabled memgovd.service: $e"

# The unit as the package installed it, with its binary and man pages in place.
out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify /lib/systemd/system/memgovd.service 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ] && ok "systemd-analyze verify: exit 0, no output" ||
        fail "systemd-analyze verify /lib/systemd/system/memgovd.service: exit $rc: $out"

# The unit as it runs: Debian's systemd as the init of a new PID namespace (as in
# systemd_backend.sh), `systemctl start memgovd` with the package's config. Checked on the
# running process: Type=notify readiness came, its memory is locked (mlockall under
# LimitMEMLOCK=infinity without CAP_IPC_LOCK), the OOM killer passes it by, the sandbox
# (capabilities, seccomp, no_new_privs) is in force, its cgroup has memory.min, and
# memgovctl reaches it over the socket. Then the purge below runs through that systemd,
# whose prerm must stop it.
step "memgovd under its unit"
export SYSTEMD_IGNORE_CHROOT=1 # the VM runs us in a chroot of the host's tree
cat >/etc/systemd/system/memgov-vm.target <<'EOF2'
[Unit]
Description=memgov VM test: the manager and nothing else
DefaultDependencies=no
EOF2
env -i container=memgov-vm PATH="$PATH" unshare --pid --fork --mount-proc \
        /lib/systemd/systemd --system --unit=memgov-vm.target --log-target=console \
        --log-level=warning >"$MEMGOV_VM_OUT/systemd.log" 2>&1 &
us=$!
for _ in $(seq 240); do
        [ -S /run/systemd/private ] && break
        sleep 0.5
done
sd=$(tr -d ' ' </proc/$us/task/$us/children 2>/dev/null)
in_sd() { if [ -n "$sd" ]; then nsenter -t "$sd" -p -- "$@"; else "$@"; fi; }
cg=/sys/fs/cgroup/system.slice/memgovd.service
pid=
if [ ! -S /run/systemd/private ] || [ -z "$sd" ]; then
        fail "systemd did not come up within 120 s: $(tail -5 "$MEMGOV_VM_OUT/systemd.log")"
elif ! in_sd timeout 180 systemctl start memgovd.service; then
        fail "systemctl start memgovd.service: $(in_sd systemctl status --no-pager memgovd.service 2>&1 | tail -15)"
else
        st=$(for p in ActiveState SubState NRestarts; do
                in_sd systemctl show -p $p --value memgovd.service
        done | paste -sd' ')
        [ "$st" = "active running 0" ] && ok "systemctl start memgovd: ready (Type=notify), $st" ||
                fail "memgovd.service after start: ActiveState SubState NRestarts = $st"
        pid=$(head -1 "$cg/cgroup.procs" 2>/dev/null)
fi
if [ -n "$pid" ]; then
        lck=$(awk '$1 == "VmLck:" { print $2 }' "/proc/$pid/status")
        [ "${lck:-0}" -gt 0 ] && ok "memory locked: VmLck ${lck} kB" ||
                fail "VmLck '${lck}' kB: mlockall failed under the unit (LimitMEMLOCK=?): $(grep -i lock "/proc/$pid/limits")"
        adj=$(cat "/proc/$pid/oom_score_adj")
        [ "$adj" = -1000 ] && ok "oom_score_adj $adj" || fail "oom_score_adj $adj, the unit says -1000"
        # CAP_SYS_PTRACE is bit 19: the bounding set holds it alone.
        bnd=$(awk '$1 == "CapBnd:" { print $2 }' "/proc/$pid/status")
        [ "$bnd" = 0000000000080000 ] && ok "capability bounding set: CAP_SYS_PTRACE alone ($bnd)" ||
                fail "CapBnd $bnd, the unit says CAP_SYS_PTRACE alone (0000000000080000)"
        sec=$(awk '$1 == "Seccomp:" || $1 == "NoNewPrivs:" { printf "%s%s ", $1, $2 }' "/proc/$pid/status")
        [ "$sec" = "NoNewPrivs:1 Seccomp:2 " ] && ok "sandbox: $sec" || fail "sandbox: '$sec', expected NoNewPrivs:1 Seccomp:2"
        min=$(cat "$cg/memory.min")
        [ "$min" = $((64 << 20)) ] && ok "memory.min of its cgroup: $min" || fail "memory.min '$min', the unit says 64M"
        if out=$(memgovctl status 2>&1); then
                ok "memgovctl status over /run/memgov: $(echo "$out" | head -1)"
        else
                fail "memgovctl status: $out"
        fi
        in_sd journalctl -b --no-pager -o cat -u memgovd.service >"$MEMGOV_VM_OUT/memgovd.journal" 2>&1
        echo "memgovd's journal:" && sed 's/^/  /' "$MEMGOV_VM_OUT/memgovd.journal" | tail -n 20
        grep -q "cannot lock" "$MEMGOV_VM_OUT/memgovd.journal" && fail "memgovd warned that it cannot lock its memory"
fi

step "dpkg --purge"
# Through the systemd above (deb-systemd-invoke talks to it from its PID namespace): the
# prerm stops memgovd. A container image's /usr/sbin/policy-rc.d (exit 101: no service
# actions) would stop deb-systemd-invoke; a host has none, and this is the guest's copy.
rm -f /usr/sbin/policy-rc.d
if in_sd dpkg --purge memgov >"$MEMGOV_VM_OUT/dpkg-purge.log" 2>&1; then
        if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
                fail "memgovd ($pid) still runs after the purge"
        elif [ -n "$pid" ]; then
                ok "the purge stopped memgovd"
        fi
        for f in /usr/sbin/memgovd /lib/systemd/system/memgovd.service /etc/memgov/memgovd.json "$wants"; do
                [ -e "$f" ] || [ -L "$f" ] && fail "left after purge: $f"
        done
        ok "dpkg --purge: binaries, unit, config and enablement gone"
else
        fail "dpkg --purge memgov: $(cat "$MEMGOV_VM_OUT/dpkg-purge.log")"
fi

step "done"
[ "$failed" -eq 0 ] && echo "PASS: the package installs, enables memgovd, runs it under its unit and purges cleanly"
exit "$failed"
