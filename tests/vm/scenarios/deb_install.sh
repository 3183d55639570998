#!/bin/bash
# In the VM: install the memgov .deb that tests/vm/deb_install.sh built (in
# $MEMGOV_VM_OUT) with dpkg -i, and check that it does what docs/deploy.md says: the
# binaries run, the unit is installed and enabled (multi-user.target.wants) and passes
# `systemd-analyze verify`, the group memgov exists (sysusers), the directories exist with
# their modes (tmpfiles), the config is a conffile. Then purge it and check that the
# files and the enablement are gone. The guest's root is an overlay over the host's,
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

step "dpkg --purge"
if dpkg --purge memgov >"$MEMGOV_VM_OUT/dpkg-purge.log" 2>&1; then
        for f in /usr/sbin/memgovd /lib/systemd/system/memgovd.service /etc/memgov/memgovd.json "$wants"; do
                [ -e "$f" ] || [ -L "$f" ] && fail "left after purge: $f"
        done
        ok "dpkg --purge: binaries, unit, config and enablement gone"
else
        fail "dpkg --purge memgov: $(cat "$MEMGOV_VM_OUT/dpkg-purge.log")"
fi

step "done"
[ "$failed" -eq 0 ] && echo "PASS: the package installs, enables memgovd and purges cleanly"
exit "$failed"
