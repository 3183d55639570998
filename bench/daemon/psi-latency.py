#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# PSI trigger → memgovd's sample, on a real kernel (bench/daemon/vm-bench.sh runs it): holds a
# trigger of its own on PRESSURE with memgovd's threshold ("some 150ms in 1s",
# INSTANCE_PSI_* in include/memgov/instance.h), starts memgovd (the argv after --, at
# --log-level debug) and times each wake-up of its trigger to memgovd's next debug sample
# line of that cgroup. Prints a Markdown table.
#
# What this does not isolate: the kernel limits each trigger to one wake-up per window, on
# the trigger's own schedule, so memgovd's trigger may fire up to a window (1 s) after ours;
# and a cgroup throttled at memory.high also changes memory.events, whose inotify wake-ups
# sample it too. The figure is "a PSI stall burst is seen by our trigger → memgovd has
# sampled the cgroup", an upper bound on memgovd's own PSI path, not that path alone.
# memgovd's own probe is the second row: its debug line "PSI trigger wake-up: decided N us
# after the loop woke", from the moment its event loop woke on its trigger to the decision
# made (the kernel's wake-up of memgovd is not in it).
#
#   psi-latency.py PRESSURE SECONDS -- MEMGOVD ARGS...
import math
import os
import re
import select
import subprocess
import sys
import time

pressure, seconds = sys.argv[1], float(sys.argv[2])
argv = sys.argv[sys.argv.index("--") + 1:]
cgroup = os.path.basename(os.path.dirname(pressure))
needle = (cgroup + ": current=").encode()



def high_events():
    """The "high" count of memory.events beside PRESSURE: each change also wakes memgovd
    (inotify), so its samples are not all the trigger's."""
    with open(os.path.join(os.path.dirname(pressure), "memory.events")) as f:
        return next(int(v) for k, v in (line.split() for line in f) if k == "high")


high0 = high_events()
trig = os.open(pressure, os.O_RDWR | os.O_NONBLOCK)
os.write(trig, b"some 150000 1000000\0")
proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
os.set_blocking(proc.stderr.fileno(), False)
p = select.poll()
p.register(trig, select.POLLPRI)
p.register(proc.stderr.fileno(), select.POLLIN)

pending = None  # when our trigger last fired and no sample has followed yet
lat, fired, missed, buf = [], 0, 0, b""
probe_re = re.compile(re.escape(cgroup.encode()) + rb": PSI trigger wake-up: decided (\d+) us")
gap_needle = cgroup.encode() + b": PSI trigger wake-up "
probe, deferred = [], 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    events = p.poll(200)
    now = time.monotonic()
    # memgovd's log first: its line was written after the wake-up that caused it
    for fd, ev in events:
        if fd == proc.stderr.fileno():
            buf += os.read(fd, 65536) or b""
            *lines, buf = buf.split(b"\n")
            for line in lines:
                m = probe_re.search(line)
                if m:
                    probe.append(int(m.group(1)) / 1e6)
                elif gap_needle in line:
                    deferred += 1
                if needle in line and pending is not None:
                    lat.append(now - pending)
                    pending = None
    for fd, ev in events:
        if fd == trig and ev & select.POLLPRI:
            fired += 1
            if pending is not None:
                missed += 1  # the previous wake-up got no sample of its own
            pending = now
proc.terminate()
proc.wait(10)
high1 = high_events()

lat.sort()
probe.sort()


def pct(q, v=lat):
    return v[min(len(v) - 1, math.ceil(q * len(v)) - 1)] * 1e3


print("### PSI trigger → sample (VM, TCG)")
print()
print("| from | to | events | p50 | p90 | p99 | max |")
print("|---|---|---:|---:|---:|---:|---:|")
if lat:
    print("| a PSI trigger wake-up (some 150ms in 1s) | memgovd's sample of that cgroup "
          f"| {len(lat)} | {pct(0.5):.2f} ms | {pct(0.9):.2f} ms | {pct(0.99):.2f} ms "
          f"| {lat[-1] * 1e3:.2f} ms |")
if probe:
    print("| memgovd's loop woke on its PSI trigger | the decision (memgovd's probe) "
          f"| {len(probe)} | {pct(0.5, probe):.2f} ms | {pct(0.9, probe):.2f} ms "
          f"| {pct(0.99, probe):.2f} ms | {probe[-1] * 1e3:.2f} ms |")
print()
print(f"memgovd's own trigger woke it {len(probe) + deferred} times: {len(probe)} sampled and "
      f"decided at once, {deferred} within the event gap of the previous sample (sampled when "
      "the gap had passed).")
print()
print(f"{seconds:.0f} s, sample interval 10 s (the timer rarely meets a wake-up); {fired} "
      f"wake-ups, {missed} with no sample of their own (within memgovd's event gap of the "
      "previous sample). The decision follows the sample in the same pass of the loop. "
      f"memory.events \"high\" rose by {high1 - high0} meanwhile: those changes wake memgovd "
      "too (inotify), so a sample may be the inotify wake-up's rather than the trigger's.")
