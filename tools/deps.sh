# shellcheck shell=bash
# The Debian packages memgov builds, tests and demos with; sourced by tools/test and tools/demo.
MEMGOV_DEPS=(
        cmake make gcc pkg-config clang-format
        libsystemd-dev libjson-c-dev libcurl4-openssl-dev libcmocka-dev libmicrohttpd-dev libssl-dev
        golang-go python3-jsonschema chromium
        clang valgrind
        qemu-system-x86 busybox-static linux-image-amd64 stress-ng
        debhelper dpkg-dev
)

# Install what is missing (as root, through apt-get); otherwise say what to install.
memgov_install_deps() {
        local missing=() p
        for p in "${MEMGOV_DEPS[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
                        missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
                echo "memgov: missing packages: ${missing[*]}" >&2
                echo "memgov: install them with: sudo apt-get install ${missing[*]}" >&2
                return 1
        fi
        echo "== installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
