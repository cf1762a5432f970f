#!/usr/bin/env python3
"""Writes fixtures/detect/*.csv: labelled series that look like real networks, for the
precision/recall test of noctua's detection (tests/detect_corpus.rs).

Each file is `timestamp,value,label` at five-minute steps (epoch seconds); label 1 marks the
samples of an incident that detection should report. Deterministic (fixed seed): re-running it
rewrites the same files. The metric is the file-name prefix (latency, loss, utilisation).
"""
import math
import os
import random

STEP = 300
DAY = 86400
START = 1764460800  # 2025-11-30T00:00:00Z, a Sunday
OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "detect")


def diurnal(t, low, high, peak_hour=15.0):
    hour = (t % DAY) / 3600.0
    return low + (high - low) * (0.5 - 0.5 * math.cos((hour - peak_hour + 12) / 24 * 2 * math.pi))


def weekday_factor(t):
    day = int((t - START) // DAY) % 7  # 0 = Sunday
    return 0.6 if day in (0, 6) else 1.0


def write(name, days, value, events=(), gap=None):
    rng = random.Random(name)
    path = os.path.join(OUT, name + ".csv")
    with open(path, "w") as f:
        f.write("timestamp,value,label\n")
        for i in range(days * DAY // STEP):
            t = START + i * STEP
            if gap and gap[0] <= t - START < gap[1]:
                continue
            v, label = value(t, rng), 0
            for (start, end, fn) in events:
                if start <= t - START < end:
                    v, label = fn(v, t, rng), 1
            f.write(f"{t},{max(v, 0.0):.2f},{label}\n")


def at(day, hour, minutes=0):
    return day * DAY + hour * 3600 + minutes * 60


def main():
    os.makedirs(OUT, exist_ok=True)
    util = lambda t, r: diurnal(t, 15, 65) * weekday_factor(t) + r.gauss(0, 2.0)
    write("utilisation-weekly-normal", 14, util)
    write("utilisation-missing-data", 7, util, gap=(at(3, 6), at(3, 12)))
    write("utilisation-collapse", 7, util,
          events=[(at(4, 10), at(4, 11, 30), lambda v, t, r: abs(r.gauss(0.3, 0.2)))])
    write("utilisation-flapping-noise", 7,
          lambda t, r: 40 + (8 if (t // STEP) % 2 else -8) + r.gauss(0, 1.5))
    write("utilisation-slow-ramp", 7,
          lambda t, r: 40 + 55 * min(max((t - START - 3 * DAY) / (3 * DAY), 0), 1) + r.gauss(0, 1.5),
          # The incident is the link running past the 70 % warning level (from day 4, about 13:00, with noise).
          events=[(at(4, 13), at(7, 0), lambda v, t, r: v)])
    lat = lambda t, r: 14 + 4 * diurnal(t, 0, 1) + abs(r.gauss(0, 0.8))
    write("latency-spikes", 7, lat, events=[
        (at(2, 9), at(2, 9, 30), lambda v, t, r: 90 + r.gauss(0, 10)),
        (at(4, 20), at(4, 20, 45), lambda v, t, r: 45 + r.gauss(0, 5)),
        (at(6, 3), at(6, 3, 20), lambda v, t, r: 160 + r.gauss(0, 20)),
    ])
    write("latency-level-shift", 7,
          lambda t, r: lat(t, r) + (18 if t - START >= at(4, 0) else 0),
          events=[(at(4, 0), at(4, 1), lambda v, t, r: v)])
    write("loss-bursts", 7, lambda t, r: abs(r.gauss(0.05, 0.04)), events=[
        (at(1, 14), at(1, 14, 15), lambda v, t, r: 4 + r.gauss(0, 1)),
        (at(3, 2), at(3, 2, 30), lambda v, t, r: 1.5 + abs(r.gauss(0, 0.3))),
        (at(5, 18), at(5, 18, 10), lambda v, t, r: 12 + r.gauss(0, 2)),
    ])


if __name__ == "__main__":
    main()
