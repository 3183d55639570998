#!/bin/bash
# The Debian package builds and installs: on this host, build memgov_*.deb from a copy of
# the source tree (dpkg-buildpackage -us -uc -b, tests skipped), then install it in the
# VM and check what it put in place (tests/vm/scenarios/deb_install.sh). dpkg runs only in
# the guest, whose root is the host's, shared read-only, under a tmpfs overlay: the
# host's /var/lib/dpkg, /usr, /etc and /lib/systemd never see the install.
#
#   tests/vm/deb_install.sh SOURCE_DIR OUT_DIR [tests/vm/run options...]
#
# Exit 77 when debhelper or dpkg-dev is missing (tools/deps.sh installs them) or when the
# VM cannot run here.
set -u
src=${1:?usage: deb_install.sh SOURCE_DIR OUT_DIR [run options]}
out=${2:?usage: deb_install.sh SOURCE_DIR OUT_DIR [run options]}
shift 2
src=$(cd "$src" && pwd)

for t in dpkg-buildpackage dh dpkg-checkbuilddeps; do
        if ! command -v "$t" >/dev/null; then
                echo "SKIP: $t not found (apt-get install debhelper dpkg-dev)"
                exit 77
        fi
done
# The VM before the build: no point building what cannot be installed.
"$src/tests/vm/run" --check || exit $?

rm -rf -- "$out"
mkdir -p "$out/src/memgov"
# A copy of the tree without build directories and VCS data: what a release tarball holds.
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' \
        --exclude=./memgov-demo-out --exclude=./debian/tmp --exclude=./debian/memgov \
        --exclude=./debian/.debhelper -cf - . | tar -C "$out/src/memgov" -xf - || exit 1
cd "$out/src/memgov" || exit 1
if ! dpkg-checkbuilddeps; then
        echo "FAIL: build dependencies missing (tools/deps.sh lists them)"
        exit 1
fi
start=$(date +%s%N)
if ! DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1; then
        tail -40 "$out/build.log"
        echo "FAIL: dpkg-buildpackage -us -uc -b (log: $out/build.log)"
        exit 1
fi
end=$(date +%s%N)
echo "dpkg-buildpackage: $(((end - start) / 1000000)) ms wall"
cd "$out" || exit 1
mv src/memgov_*.deb . && rm -rf src || exit 1
ls -l ./*.deb
dpkg-deb --info memgov_*_*.deb | sed -n '/Package:/,/Depends:/p'

"$src/tests/vm/run" --out "$out" --timing "$@" -- "$src/tests/vm/scenarios/deb_install.sh"
