#!/usr/bin/env python3
"""tools/demo's live view and summary (run by tools/demo inside the VM).

Live: once a second, memgovd's status document (GET /v1/status over its Unix socket)
as one line; as they happen, memgovd's log lines about levels, memory.high, webhooks,
captures and OOM kills, and the leaky service's reactions (its JSON log). It ends at the
OOM kill, when the service held steady for 30 s after pausing its leak, or at the time
limit, and writes what happened to --summary.

--final: prints the summary with the evidence found under --out.
"""
import argparse
import glob
import json
import re
import os
import socket
import sys
import time
import urllib.request

MIB = 1 << 20
RANK = {"ok": 0, "warn": 1, "degrade": 2, "critical": 3}


def status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(path)
        s.sendall(b"GET /v1/status HTTP/1.0\r\nHost: memgovd\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    _, _, body = data.partition(b"\r\n\r\n")
    return json.loads(body)


def mib(b):
    return "-" if b is None else f"{b / MIB:.0f}M"


def secs(s):
    return "-" if s is None else (f"{s:.0f}s" if s < 3600 else ">1h")


class Tail:
    def __init__(self, path):
        self.path, self.pos, self.buf = path, 0, ""

    def lines(self):
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.pos)
                chunk = f.read()
                self.pos = f.tell()
        except OSError:
            return []
        self.buf += chunk
        *done, self.buf = self.buf.split("\n")
        return done


def start_leak(url):
    req = urllib.request.Request(url, data=b"", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def memgovd_line(s, el, line):
    """Show and note one line of memgovd's log when it is about what the demo shows."""
    body = line.removeprefix("memgovd: ")
    lvl, _, msg = body.partition(": ")
    m = re.search(r" entered (\w+) \(was (\w+)\): (.*)", msg)
    if m:
        s["levels"].append({"t_s": round(el, 1), "to": m[1], "from": m[2], "why": m[3]})
    elif re.search(r" recovered \(was (\w+)\)", msg):
        m = re.search(r" recovered \(was (\w+)\): (.*)", msg)
        s["levels"].append({"t_s": round(el, 1), "to": "ok", "from": m[1] if m else "?",
                            "why": m[2] if m else ""})
    elif (m := re.search(r"memory\.high of \S+ (set|restored) to (\w+)", msg)):
        to = None if m[2] == "max" else int(m[2])
        s["high_changes"].append({"t_s": round(el, 1), "to": to})
        msg = re.sub(r"set to (\d+)", lambda x: f"set to {int(x[1]) / MIB:.1f}M", msg)
    elif (m := re.search(r"^webhook (\S+): (\w+) (\S+) (delivered|not delivered|superseded)", msg)):
        s["webhooks"].append({"t_s": round(el, 1), "event": m[2], "id": m[3], "result": m[4]})
    elif (m := re.search(r"^webhook .* (\w+) (msg_\S+) not delivered", msg)):
        s["webhooks"].append({"t_s": round(el, 1), "event": m[1], "id": m[2],
                              "result": "not delivered"})
    elif "profile_captured" in msg:
        s["captures"].append({"t_s": round(el, 1), "what": msg.split("profile_captured: ", 1)[-1]})
        if "top suspect: " in msg:
            s["top_suspect_log"] = msg.split("top suspect: ", 1)[1]
    elif not any(w in msg for w in ("OOM", "incident bundle", "livelock")):
        return
    if lvl == "debug" and "webhook" not in msg:
        return
    if lvl == "debug" and "retrying" in msg:
        return
    print(f"{el:5.0f}s  memgovd: {msg}")


def oom_kills(cg):
    try:
        with open(os.path.join(cg, "memory.events")) as f:
            for line in f:
                k, v = line.split()
                if k == "oom_kill":
                    return int(v)
    except OSError:
        pass
    return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for us.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def monitor(a):
    t0 = time.monotonic()
    mlog, llog = Tail(a.memgovd_log), Tail(a.leaky_log)
    s = {"levels": [], "high_changes": [], "webhooks": [], "reactions": [], "captures": [],
         "oom_kill": False, "oom_kill_s": None, "end": None, "peak_bytes": 0,
         "limit_bytes": None, "top_suspect_log": None}
    level, paused_at, steady_from, steady_cur = "ok", None, None, None
    started = False
    last_line = 0.0
    print(f"{'time':>5}  {'usage/limit':>15}  {'ETA':>6}  {'level':<8}  {'memory.high':>11}  last action")
    while True:
        el = time.monotonic() - t0
        for line in mlog.lines():
            memgovd_line(s, el, line)
        for line in llog.lines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            e = ev.get("event", "")
            if e in ("reaction", "cache_dropped", "stop") or e.startswith("webhook"):
                fields = {k: v for k, v in ev.items() if k not in ("time", "event")}
                print(f"{el:5.0f}s  leaky:   {e} {json.dumps(fields, separators=(',', ':'))}")
                if e == "reaction":
                    s["reactions"].append({"t_s": round(el, 1), **fields})
                    if fields.get("cause") in ("degrade", "critical"):
                        paused_at = paused_at or el
                    elif fields.get("cause") in ("recovered", "warn"):
                        paused_at = None
        try:
            st = status(a.socket)
            inst = next((i for i in st.get("instances", []) if i.get("cgroup") == a.cgrel), None)
        except (OSError, ValueError):
            inst = None
        if inst and inst.get("memory") and not started:
            started = True
            start_leak(a.start_url)
            t0 = time.monotonic()
            el = 0.0
            print(f"   0s  leaky starts leaking: POST {a.start_url}")
        if inst and inst.get("memory"):
            m, fc = inst["memory"], inst.get("forecast") or {}
            cur, lim = m.get("current_bytes") or 0, m.get("limit_bytes")
            s["peak_bytes"] = max(s["peak_bytes"], cur)
            s["limit_bytes"] = lim
            lv = inst.get("level", "ok")
            level = lv
            h = m.get("high_bytes")
            if el - last_line >= 0.95:
                last_line = el
                ev = inst.get("last_event") or {}
                act = f"{ev.get('event')} {ev.get('age_s', 0):.0f}s ago" if ev else "-"
                pct = f"{100 * cur / lim:3.0f}%" if lim else ""
                print(f"{el:4.0f}s  {mib(cur):>5}/{mib(lim):<5} {pct:>4}  "
                      f"{secs(fc.get('eta_s')) if fc.get('known') else 'warmup':>6}  "
                      f"{lv:<8}  {mib(h) if h else 'max':>11}  {act}", flush=True)
            # Steady: once memgov has acted (a level entered), usage within 4 MiB for the
            # hold: the leak paused on the webhook, or held at memory.high by the kernel.
            if s["levels"]:
                if steady_cur is None or abs(cur - steady_cur) > 4 * MIB:
                    steady_cur, steady_from = cur, el
                if el - steady_from >= (10 if a.quick else 30):
                    s["end"] = "steady"
                    s["steady_s"] = 10 if a.quick else 30
                    s["steady_bytes"] = cur
                    s["paused_by_webhook"] = paused_at is not None
                    s["at_memory_high"] = bool(h) and cur >= h - 4 * MIB
                    s["memory_high_bytes"] = h
                    break
            if a.quick and RANK.get(lv, 0) >= 3:
                s["end"] = "critical"
                break
        if oom_kills(a.cgroup) > 0 or not alive(a.leaky_pid):
            s["oom_kill"] = oom_kills(a.cgroup) > 0
            s["oom_kill_s"] = round(el, 1)
            s["end"] = "oom_kill" if s["oom_kill"] else "leaky_exited"
            print(f"{el:5.0f}s  ** {'the kernel OOM-killed leaky' if s['oom_kill'] else 'leaky exited'}")
            time.sleep(3)  # memgovd's view of the kill: its log, the incident bundle
            for line in mlog.lines():
                memgovd_line(s, el, line)
            break
        if el >= a.time_limit:
            s["end"] = "time_limit"
            break
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0 - el)))
    if s["end"] == "critical":  # what critical set off: the webhook, the capture
        for _ in range(6):
            time.sleep(1)
            el = time.monotonic() - t0
            for line in mlog.lines():
                memgovd_line(s, el, line)
            for line in llog.lines():
                if '"reaction"' in line:
                    print(f"{el:5.0f}s  leaky:   {line}")
    s["duration_s"] = round(time.monotonic() - t0, 1)
    with open(a.summary, "w") as f:
        json.dump(s, f, indent=1)
    print(f"{s['duration_s']:5.0f}s  == run ended: {s['end']}")
    return 0


def top_suspect(out):
    """The first suspect of the newest suspects.json under the dumps."""
    files = sorted(glob.glob(os.path.join(out, "dumps", "**", "suspects.json"), recursive=True))
    for path in reversed(files):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        stack = [doc]
        while stack:
            o = stack.pop(0)
            if isinstance(o, dict):
                if "function" in o:
                    loc = f" ({o.get('file')}:{o.get('line')})" if o.get("file") else ""
                    grow = o.get("growth", o.get("current"))
                    g = f", {grow / MIB:+.1f} MiB" if isinstance(grow, int) else ""
                    return f"{o['function']}{loc}{g}", path
                stack.extend(o.values())
            elif isinstance(o, list):
                stack.extend(o)
    return None, None


def final(a):
    try:
        with open(a.summary) as f:
            s = json.load(f)
    except (OSError, ValueError):
        print("memgov demo: no summary: the run did not get that far")
        return 1
    out = a.out
    print("")
    print("== what happened")
    ends = {"oom_kill": "the kernel OOM-killed leaky",
            "steady": (f"memgov prevented the OOM: leaky paused its leak on memgov's webhook and "
                       f"memory held steady for {s.get('steady_s')} s"
                       if s.get("paused_by_webhook") else
                       f"no OOM kill: memory held steady for {s.get('steady_s')} s after memgov "
                       "acted (held by memory.high: the service is throttled, not fixed)"
                       if s.get("at_memory_high") else
                       f"no OOM kill: memory held steady for {s.get('steady_s')} s after memgov acted"),
            "critical": "memgov reached critical before any OOM kill (--quick stops here)",
            "time_limit": "the time limit came first; no OOM kill until then",
            "leaky_exited": "leaky exited without an OOM kill"}
    print(f"outcome: {ends.get(s['end'], s['end'])}"
          + (f" at {s['oom_kill_s']:.0f}s" if s.get("oom_kill") else "")
          + f"; peak {mib(s['peak_bytes'])} of {mib(s['limit_bytes'])}")
    if s["end"] == "steady":
        how = []
        if s.get("paused_by_webhook"):
            how.append("leaky paused its leak on memgov's webhook")
        if s.get("at_memory_high"):
            how.append(f"usage {mib(s['steady_bytes'])} sat at memory.high "
                       f"{mib(s['memory_high_bytes'])}: the kernel throttled the leak")
        print("how: " + ("; ".join(how) if how else "the leak stopped growing"))
    if s["levels"]:
        print("levels:")
        for x in s["levels"]:
            print(f"  {x['t_s']:4.0f}s  {x['from']} -> {x['to']}: {x['why']}")
    else:
        print("levels:  none left ok")
    if s["high_changes"]:
        print("memory.high: " + ", ".join(
            f"{mib(x['to']) if x['to'] else 'max'} at {x['t_s']:.0f}s" for x in s["high_changes"]))
    else:
        print("memory.high: not changed")
    if s["webhooks"]:
        print("webhooks (memgovd's view): " + ", ".join(
            f"{x['event']} {x['result']} at {x['t_s']:.0f}s" for x in s["webhooks"]))
    else:
        print("webhooks (memgovd's view): none delivered")
    if s["reactions"]:
        print("leaky's reactions to them: " + ", ".join(f"{x.get('cause')} at {x['t_s']:.0f}s"
                                               for x in s["reactions"]))
    dumps = sorted(d for d in glob.glob(os.path.join(out, "dumps", "*", "*")) if os.path.isdir(d))
    profiles = sorted(glob.glob(os.path.join(out, "dumps", "**", "*.pb.gz"), recursive=True))
    print(f"profiles captured: {len(profiles)} pprof file(s) in {len(dumps)} dump(s)")
    sus, where = top_suspect(out)
    if sus:
        print(f"top suspect: {sus}   (from {where})")
    elif s.get("top_suspect_log"):
        print(f"top suspect: {s['top_suspect_log']}   (memgovd's log)")
    else:
        print("top suspect: none named")
    print("")
    print("== evidence (host paths)")
    reports = sorted(glob.glob(os.path.join(out, "dumps", "**", "report.html"), recursive=True))
    if not reports and os.path.exists(os.path.join(out, "report.html")):
        reports = [os.path.join(out, "report.html")]
    for label, p in (("trace", os.path.join(out, "trace.csv")),
                     ("policy", os.path.join(out, "policies", "leaky.json")),
                     ("memgovd log", os.path.join(out, "memgovd.log")),
                     ("leaky log", os.path.join(out, "leaky.log")),
                     ("dumps", os.path.join(out, "dumps")),
                     ("summary", a.summary)):
        if os.path.exists(p):
            print(f"{label + ':':13}{p}")
    for r in reports:
        how = " (memgovctl report of the trace)" if r == os.path.join(out, "report.html") else ""
        print(f"{'report:':13}{r}{how}")
    print("memgov demo: done")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--final", action="store_true")
    p.add_argument("--out")
    p.add_argument("--summary", required=True)
    p.add_argument("--socket")
    p.add_argument("--cgroup")
    p.add_argument("--cgrel")
    p.add_argument("--memgovd-log")
    p.add_argument("--leaky-log")
    p.add_argument("--leaky-pid", type=int)
    p.add_argument("--start-url")
    p.add_argument("--time-limit", type=float, default=200)
    p.add_argument("--quick", type=int, default=0)
    p.add_argument("--webhooks", type=int, default=1)
    a = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    return final(a) if a.final else monitor(a)


if __name__ == "__main__":
    sys.exit(main())
