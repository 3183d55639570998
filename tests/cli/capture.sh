#!/usr/bin/env bash
# memgovctl capture against the leaky example service in heap-leak mode: a base and a
# current capture 2 s apart. The dumps are complete (no temporary names left, 0700/0600,
# every file's sha256 as the manifest says), the top suspect is the leaking function, and,
# when go is installed, `go tool pprof -top` opens the heap profile and `-diff_base` the
# pair. Skipped (77) when the leaky binary was not built.
set -euo pipefail

ctl=${MEMGOV_BINARY_DIR:?}/memgovctl
leaky=$MEMGOV_BINARY_DIR/examples/leaky/leaky
[ -x "$ctl" ] || { echo "capture.sh: $ctl not built" >&2; exit 1; }
[ -x "$leaky" ] || { echo "capture.sh: $leaky not built (no Go toolchain): skipped"; exit 77; }

tmp=$(mktemp -d /tmp/memgov-capture.XXXXXX)
leaky_pid=
cleanup() {
        [ -n "$leaky_pid" ] && kill "$leaky_pid" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

"$leaky" --mode heap --rate 8MiB --listen 127.0.0.1:0 2>"$tmp/leaky.log" &
leaky_pid=$!
listen=
for _ in $(seq 100); do
        listen=$(jq -r 'select(.event == "start") | .listen' "$tmp/leaky.log" 2>/dev/null || true)
        [ -n "$listen" ] && break
        sleep 0.1
done
[ -n "$listen" ] || fail "leaky did not start: $(cat "$tmp/leaky.log")"
url=http://$listen/debug/pprof
state=$tmp/state

"$ctl" capture --url "$url" --service leaky --state-dir "$state" --event warn >"$tmp/base.out" ||
        fail "the base capture failed: $(cat "$tmp/base.out")"
base=$(head -1 "$tmp/base.out")
sleep 2
"$ctl" capture --url "$url/" --service leaky --state-dir "$state" --event critical \
        --base "$base" >"$tmp/current.out" || fail "the current capture failed"
current=$(head -1 "$tmp/current.out")
cat "$tmp/current.out"

# Complete dumps under their final names, nothing temporary left.
[ -d "$base" ] && [ -d "$current" ] || fail "dump directories missing: $base $current"
[ "$(dirname "$current")" = "$state/dumps/leaky" ] || fail "unexpected dump path $current"
case $(basename "$current") in
[0-9]*T[0-9]*Z-critical) ;;
*) fail "unexpected dump name $(basename "$current")" ;;
esac
[ -z "$(find "$state" -name '.*.tmp')" ] || fail "temporary files left: $(find "$state" -name '.*.tmp')"
[ "$(stat -c %a "$current")" = 700 ] || fail "dump directory mode $(stat -c %a "$current")"

# Every file is listed with its size and sha256; every listed file is there, mode 0600.
for dir in "$base" "$current"; do
        listed=$(jq -r '.files[].name' "$dir/manifest.json" | sort)
        present=$(cd "$dir" && find . -type f ! -name manifest.json | sed 's|^\./||' | sort)
        [ "$listed" = "$present" ] || fail "$dir: manifest lists [$listed], directory holds [$present]"
        while read -r name sum size; do
                [ "$(sha256sum "$dir/$name" | cut -d' ' -f1)" = "$sum" ] || fail "$dir/$name: sha256 differs"
                [ "$(stat -c %s "$dir/$name")" = "$size" ] || fail "$dir/$name: size differs"
                [ "$(stat -c %a "$dir/$name")" = 600 ] || fail "$dir/$name: mode $(stat -c %a "$dir/$name")"
        done < <(jq -r '.files[] | "\(.name) \(.sha256) \(.size)"' "$dir/manifest.json")
        for f in heap.pb.gz allocs.pb.gz goroutine.pb.gz heap.txt goroutine.txt; do
                [ -s "$dir/$f" ] || fail "$dir/$f missing"
        done
        [ "$(head -c2 "$dir/heap.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || fail "heap.pb.gz is not gzip"
done

# The suspects: printed, and in suspects.json with function, file and line.
grep -A1 '^suspects (growth since the base):' "$tmp/current.out" |
        grep -q '^  main.leakIntoGlobalMap (leak.go:76) +[0-9.]* MiB heap$' ||
        fail "the top suspect is not main.leakIntoGlobalMap"
[ "$(jq -r '.heap.growth[0].function' "$current/suspects.json")" = main.leakIntoGlobalMap ] ||
        fail "suspects.json: $(jq -c '.heap.growth[0]' "$current/suspects.json")"
[ "$(jq -r '.base' "$current/suspects.json")" = "$base" ] || fail "suspects.json names another base"

# Mistakes are usage errors (2); an endpoint where nobody listens is a failure (1) that
# still leaves a complete dump saying why.
set +e
"$ctl" capture --url ftp://127.0.0.1/x --service leaky --state-dir "$state" 2>/dev/null
[ $? -eq 2 ] || fail "an ftp URL was not a usage error"
"$ctl" capture --url "$url" --service ../x --state-dir "$state" 2>/dev/null
[ $? -eq 2 ] || fail "a service with a slash was not a usage error"
"$ctl" capture --url http://127.0.0.1:1/debug/pprof --service refused --state-dir "$state" \
        >"$tmp/refused.out" 2>"$tmp/refused.err"
[ $? -eq 1 ] || fail "a refused connection did not exit 1"
set -e
refused=$(head -1 "$tmp/refused.out")
[ "$(jq -r '.errors[0].what' "$refused/manifest.json")" = heap.txt ] || fail "no error recorded for heap.txt"

# go tool pprof opens the files as they are, and the pair with -diff_base.
if command -v go >/dev/null; then
        export HOME=$tmp GOCACHE=$tmp/gocache PPROF_TMPDIR=$tmp GOFLAGS= GOPROXY=off
        go tool pprof -symbolize=none -top "$current/heap.pb.gz" >"$tmp/top.txt" 2>&1 ||
                fail "go tool pprof -top: $(cat "$tmp/top.txt")"
        grep -q 'main.leakIntoGlobalMap' "$tmp/top.txt" || fail "pprof -top: $(cat "$tmp/top.txt")"
        go tool pprof -symbolize=none -top -diff_base "$base/heap.pb.gz" "$current/heap.pb.gz" \
                >"$tmp/diff.txt" 2>&1 || fail "go tool pprof -diff_base: $(cat "$tmp/diff.txt")"
        grep -q 'main.leakIntoGlobalMap' "$tmp/diff.txt" || fail "pprof -diff_base: $(cat "$tmp/diff.txt")"
        head -8 "$tmp/diff.txt"
        go tool pprof -symbolize=none -top "$current/goroutine.pb.gz" >/dev/null 2>&1 ||
                fail "go tool pprof cannot open goroutine.pb.gz"
else
        echo "capture.sh: go not installed: the go tool pprof checks were skipped"
fi
echo "capture.sh: ok"
