#!/bin/bash
# The installed unit passes `systemd-analyze verify`: memgovd is installed with `cmake
# --install --prefix` into a temporary directory (the installed unit then names the
# binary and the config under it), and verify, given the unit by path, must exit 0 and
# print nothing: ExecStart= resolves to the installed memgovd, ExecReload='s /bin/kill to
# the host's, Documentation='s man pages to the installed ones (MANPATH), and every
# setting is one systemd 252 knows. A copy whose ExecStart= names a missing binary must
# make verify complain, so that this test can fail. Nothing outside the temporary
# directory is written. Skipped (77) only when systemd-analyze is not installed.
set -u

build=${MEMGOV_BINARY_DIR:?}
if ! command -v systemd-analyze >/dev/null; then
        echo "SKIP: systemd-analyze not found (apt-get install systemd)"
        exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() {
        echo "FAIL: $*"
        failed=1
}

prefix=$tmp/p
if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
        cat "$tmp/install.log"
        echo "FAIL: cmake --install $build --prefix $prefix"
        exit 1
fi
unit=$prefix/lib/systemd/system/memgovd.service
for f in "$unit" "$prefix/sbin/memgovd" "$prefix/bin/memgovctl" "$prefix/etc/memgov/memgovd.json" \
        "$prefix/lib/sysusers.d/memgov.conf" "$prefix/lib/tmpfiles.d/memgov.conf"; do
        [ -e "$f" ] || fail "cmake --install --prefix did not install $f"
done
[ -d "$prefix/etc/memgov/policies.d" ] || fail "no $prefix/etc/memgov/policies.d"
# Nothing may go outside the prefix: the manifest lists every file installed.
if grep -v "^$prefix/" "$build/install_manifest.txt" >"$tmp/outside"; then
        fail "installed outside $prefix: $(tr '\n' ' ' <"$tmp/outside")"
fi
grep -qxF "ExecStart=$prefix/sbin/memgovd --config $prefix/etc/memgov/memgovd.json" "$unit" ||
        fail "the installed unit does not name the installed binary and config: $(grep '^ExecStart=' "$unit")"

# verify: Documentation= runs man(1); without man, check the pages by path instead.
man_opt=(--man=yes)
if ! command -v man >/dev/null; then
        echo "note: man(1) not installed: Documentation= checked by path, not through man"
        man_opt=(--man=no)
        for p in man8/memgovd.8 man5/memgov-policy.5 man1/memgovctl.1; do
                [ -f "$prefix/share/man/$p" ] || fail "no $prefix/share/man/$p"
        done
fi
verify() { # verify UNIT: systemd-analyze verify's output (stdout and stderr), its status
        MANPATH=$prefix/share/man SYSTEMD_LOG_COLOR=0 \
                systemd-analyze verify "${man_opt[@]}" "$1" >"$tmp/verify.out" 2>&1
}
verify "$unit"
rc=$?
if [ "$rc" -ne 0 ] || [ -s "$tmp/verify.out" ]; then
        fail "systemd-analyze verify $unit: exit $rc, output:"
        sed 's/^/    /' "$tmp/verify.out"
fi

# The same check on a unit whose binary is missing must complain.
mkdir "$tmp/broken"
sed "s|^ExecStart=$prefix/sbin/memgovd |ExecStart=$tmp/missing/memgovd |" "$unit" >"$tmp/broken/memgovd.service"
verify "$tmp/broken/memgovd.service"
rc=$?
grep -q "missing/memgovd" "$tmp/verify.out" && [ "$rc" -ne 0 ] ||
        fail "verify did not complain about a missing ExecStart= binary (exit $rc): $(cat "$tmp/verify.out")"

[ "$failed" -eq 0 ] && echo "PASS: systemd-analyze verify of the installed unit: exit 0, no output"
exit "$failed"
