#!/usr/bin/env python3
"""Writes fixtures/forecast/*.csv: 60 days of a link's utilisation every 15 minutes, with a
diurnal season (quiet nights, a 15:00 busy hour), a weekly one (weekends at 70 %) and noise,
each with one thing to forecast:

- ramp-3pct: grows 3 % a week, busy hour from 65 %, so it reaches 80 % in week 8 (day 49);
- flat-seasonal: no growth (must predict nothing);
- bursts: no growth, and three days with a flash crowd at 95 % (must predict nothing);
- level-shift: no growth, 15 points more from day 30 (traffic moved onto it; no trend);
- ramp-gaps: the ramp, with two days missing and a burst (the collector was down).

Deterministic (seeded), so the golden outputs in the same folder stay valid:
    python3 scripts/make-forecast-fixtures.py
"""
import math
import os
import random

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "forecast")
START = 1_793_491_200  # 2026-11-01T00:00:00Z
STEP = 15 * 60
DAYS = 60


def write(name, value, skip=lambda d: False):
    rng = random.Random(name)
    with open(os.path.join(OUT, name + ".csv"), "w") as f:
        f.write("timestamp,value\n")
        for i in range(DAYS * 86400 // STEP):
            t = START + i * STEP
            d = (t - START) // 86400
            if skip(d):
                continue
            v = value(t, d) + rng.gauss(0, 1.5)
            f.write("%d,%.2f\n" % (t, max(0.0, min(100.0, v))))


def seasonal(busy):
    def value(t, d):
        hour = (t % 86400) / 3600.0
        day = (t // 86400 + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday
        weekend = 0.7 if day >= 5 else 1.0
        night = 15.0
        return night + (busy(t, d) - night) * weekend * math.exp(-((hour - 15.0) / 3.5) ** 2)
    return value


def grow(t, d):
    return 65.0 * 1.03 ** ((t - START) / (7 * 86400.0))


os.makedirs(OUT, exist_ok=True)
write("ramp-3pct", seasonal(grow))
write("flat-seasonal", seasonal(lambda t, d: 60.0))
write("bursts", lambda t, d: 95.0 if d in (20, 33, 47) and 14 <= (t % 86400) / 3600 < 17
      else seasonal(lambda t, d: 60.0)(t, d))
write("level-shift", seasonal(lambda t, d: 60.0 + (15.0 if d >= 30 else 0.0)))
write("ramp-gaps", lambda t, d: 95.0 if d == 40 and 14 <= (t % 86400) / 3600 < 17
      else seasonal(grow)(t, d), skip=lambda d: d in (25, 26))
