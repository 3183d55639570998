#!/usr/bin/env bash
# memgovctl report, seen the way an operator sees it: the HTML is rendered by headless
# Chromium (Debian's chromium) and the DOM it built is checked — the SVG chart with its
# series, level bands and one marker per level transition that `memgovctl replay` reports
# plus the OOM kill, the suspects table naming the leaking function, the lead times — and
# that the page loads nothing and runs no script. A screenshot is left in the build tree
# for a person to look at. Skipped (77) where chromium is not installed.
set -euo pipefail

ctl=${MEMGOV_BINARY_DIR:?}/memgovctl
src=${MEMGOV_SOURCE_DIR:?}
[ -x "$ctl" ] || { echo "report_html.sh: $ctl not built" >&2; exit 1; }
chromium=$(command -v chromium || true)
[ -n "$chromium" ] || { echo "report_html.sh: chromium is not installed (apt-get install chromium)"; exit 77; }

tmp=$(mktemp -d /tmp/memgov-report.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat >"$tmp/policy.json" <<'EOF'
{
  "service": "leaky",
  "cgroup": "system.slice/leaky.service",
  "forecast": { "window": "5m", "horizon": "30m" },
  "levels": {
    "warn": { "eta": "10m" },
    "degrade": { "eta": "3m" },
    "critical": { "eta": "45s", "usage": "97%" },
    "hold": "60s"
  }
}
EOF

# Render a page and dump the DOM Chromium built from it (no network, no profile left over).
render() { # FILE.html OUT.dom [SCREENSHOT.png]
        local profile
        profile=$(mktemp -d "$tmp/profile.XXXXXX")
        timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
                --no-first-run --disable-background-networking --disable-component-update \
                --disable-sync --user-data-dir="$profile" --dump-dom "file://$1" \
                >"$2" 2>"$tmp/chromium.log" || { cat "$tmp/chromium.log" >&2; fail "chromium could not render $1"; }
        [ -s "$2" ] || { cat "$tmp/chromium.log" >&2; fail "chromium rendered nothing for $1"; }
        if [ $# -ge 3 ]; then
                timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
                        --no-first-run --disable-background-networking --disable-component-update \
                        --disable-sync --user-data-dir="$profile" --window-size=1100,1300 \
                        --screenshot="$3" "file://$1" >/dev/null 2>&1 || fail "no screenshot of $1"
                [ -s "$3" ] || fail "empty screenshot of $1"
        fi
}

# --- a heap leak that ends in an OOM kill, with the suspects of a capture pair ------------
"$ctl" replay --policy "$tmp/policy.json" --json "$src/tests/traces/leak-to-oom.csv" \
        >"$tmp/leak.json" || fail "replay of leak-to-oom.csv failed"
"$ctl" report --policy "$tmp/policy.json" -o "$tmp/leak.html" \
        --suspects "$src/tests/fixtures/pprof/leaky-heap-suspects.json" \
        "$src/tests/traces/leak-to-oom.csv" || fail "report of leak-to-oom.csv failed"
mkdir -p "$MEMGOV_BINARY_DIR/report-html"
render "$tmp/leak.html" "$tmp/leak.dom" "$MEMGOV_BINARY_DIR/report-html/leak-to-oom.png"

cat >"$tmp/check.py" <<'EOF'
import json, sys
from html.parser import HTMLParser

class Dom(HTMLParser):
    """Every element with its tag, attributes, classes, ancestors and text."""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.stack = [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        e = {"tag": tag, "attrs": a, "classes": set((a.get("class") or "").split()),
             "parents": list(self.stack), "text": ""}
        self.elements.append(e)
        if tag not in ("meta", "br", "img", "input", "link", "line", "rect", "circle", "path") \
                or not self.get_starttag_text().endswith("/>"):
            self.stack.append(e)
    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self.stack and self.stack[-1]["tag"] == tag:
            self.stack.pop()
    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break
    def handle_data(self, data):
        for e in self.stack:
            e["text"] += data

def load(path):
    d = Dom()
    d.feed(open(path, encoding="utf-8").read())
    return d.elements

def select(els, tag=None, cls=(), inside=None):
    return [e for e in els if (tag is None or e["tag"] == tag) and set(cls) <= e["classes"]
            and (inside is None or any(p is inside for p in e["parents"]))]

def by_id(els, i):
    found = [e for e in els if e["attrs"].get("id") == i]
    assert len(found) == 1, f"expected one #{i}, found {len(found)}"
    return found[0]

def no_script_no_fetch(els):
    assert not select(els, "script"), "the page has a script"
    for e in els:
        for k in ("src", "srcset", "data"):
            assert k not in e["attrs"], f"<{e['tag']} {k}=…> loads something"
        if e["tag"] == "link":
            raise AssertionError("<link> loads something")
        href = e["attrs"].get("href") or ""
        assert "://" not in href, f"a link leaves the page: {href}"
        assert "url(" not in (e["attrs"].get("style") or ""), "a style loads something"

mode, dom, replay = sys.argv[1], sys.argv[2], sys.argv[3]
els = load(dom)
r = json.load(open(replay))
no_script_no_fetch(els)
chart = by_id(els, "chart")
assert chart["tag"] == "svg", chart["tag"]
for s in ("current", "max"):
    assert select(els, "path", ["series", "series-" + s], chart), f"no {s} series in the chart"
    d = select(els, "path", ["series-" + s], chart)[0]["attrs"]["d"]
    assert d.count("L") + d.count("H") >= 1, f"the {s} series has no points"
markers = select(els, "g", ["marker", "marker-level"], chart)
assert len(markers) == len(r["transitions"]), \
    f"{len(markers)} level markers for {len(r['transitions'])} transitions"
for m, t in zip(markers, r["transitions"]):
    title = select(els, "title", inside=m)
    assert title and f"{t['from']} → {t['to']}" in title[0]["text"], (title and title[0]["text"], t)
ooms = select(els, "g", ["marker", "marker-oom_kill"], chart)
assert len(ooms) == (1 if r["oom_at_s"] is not None else 0), f"{len(ooms)} OOM markers"
entered = {t["to"] for t in r["transitions"]}
for lv in ("warn", "degrade", "critical"):
    bands = select(els, "rect", ["band", "band-" + lv], chart)
    assert bool(bands) == (lv in entered), f"band {lv}: {len(bands)}, entered: {sorted(entered)}"

suspects = by_id(els, "suspects")
rows = select(els, "tr", ["suspect"], suspects)
summary = " ".join(e["text"] for e in select(els, "table", ["summary"]))
if mode == "leak":
    assert rows, "the suspects table has no row"
    first = rows[0]["text"]
    assert "main.leakIntoGlobalMap" in first, first
    assert "memgov.example/leaky/leak.go:76" in first, first
    assert "+19.8 MiB" in first, first
    lead = r["lead_s"]["warn"]
    m, s = divmod(round(lead), 60)
    assert f"warn {m}m {s:02d}s before the OOM kill" in " ".join(summary.split()), summary
    assert "main.leakIntoGlobalMap" in summary, summary
    decisions = select(els, "tr", ["decision"], by_id(els, "decisions"))
    assert len(decisions) == len(r["transitions"]) + 1, len(decisions)
else:
    assert not rows, "suspects without a capture"
    assert "No suspects" in suspects["text"], suspects["text"]
    assert "no OOM kill" in summary, summary
print(f"{mode}: chart, {len(markers)} level markers, {len(ooms)} OOM kill, "
      f"{len(rows)} suspects")
EOF
python3 "$tmp/check.py" leak "$tmp/leak.dom" "$tmp/leak.json" || fail "leak-to-oom.csv: the rendered report is wrong"

# --- a steady sawtooth: no level change, no OOM, no capture --------------------------------
"$ctl" replay --policy "$tmp/policy.json" --json "$src/tests/traces/sawtooth-steady.csv" \
        >"$tmp/saw.json" || fail "replay of sawtooth-steady.csv failed"
"$ctl" report --policy "$tmp/policy.json" -o "$tmp/saw.html" \
        "$src/tests/traces/sawtooth-steady.csv" || fail "report of sawtooth-steady.csv failed"
render "$tmp/saw.html" "$tmp/saw.dom"
python3 "$tmp/check.py" steady "$tmp/saw.dom" "$tmp/saw.json" || fail "sawtooth-steady.csv: the rendered report is wrong"

echo "report_html: ok (screenshot: $MEMGOV_BINARY_DIR/report-html/leak-to-oom.png)"
