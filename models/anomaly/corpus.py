#!/usr/bin/env python3
"""Builds the labelled evaluation corpus for ``sluice eval-anomaly``.

Deterministic: fixed seeds, no download at run time. Real series are read
as data files from the installed wheels pinned in requirements-corpus.txt
(none of those packages is imported). Output, per part (``tuning``,
``heldout``):

* ``PART/uni/*.csv`` (``timestamp`` ms, ``value``, ``label``), one series
  per file:
  - ``syn-*``: synthetic series. Normal behaviour: daily and weekly cycles
    at various periods, heavy-tailed (Student-t) noise, isolated one-row
    spikes that are NOT labelled, slow regime changes, random walks,
    Poisson counts, CPU-like bursty load; 4 in 10 series sampled
    irregularly (jitter and gaps). Labelled anomalies: ``level_shift``,
    ``stuck`` (flatline), ``drift``, ``variance_burst``,
    ``frequency_change``, ``spike_cluster`` (a sustained run of spikes).
    Some series have no anomaly at all (``syn-*-clean``).
  - ``bg-*``: real series unchanged, label 0 everywhere (false alerts).
  - ``inj-*``: the same real series with injected, labelled anomalies.
  - ``real-*``: real series with their own anomaly labels.
* ``PART/pump/pump-rig.csv``: a simulated pump rig at 1 Hz (``accel_x``,
  ``accel_y``, ``current``, ``pressure``, ``temperature``, ``flow``), one
  run per value of the ``run`` column, 1000-1200 rows a run, the first 400
  normal, then faults: ``valve`` (partly closed: pressure up, flow down,
  current up), ``cavitation`` (vibration noise up, pressure dips),
  ``imbalance`` (vibration at a new frequency), ``sensor_fault`` (one
  sensor stuck, offset or dropped to zero).
* ``manifest.csv``: every file with its part, family, source and events.

The two parts use different seeds and different real series: tune on
``tuning`` only and report ``heldout``.

Real data used (file inside the wheel):
  vega_datasets 0.9.0: _data/seattle-temps.csv, sf-temps.csv (hourly air
    temperature, 2010), seattle-weather.csv (daily, 2012-2015);
  statsmodels 0.15.0: datasets/co2/co2.csv (weekly CO2, Mauna Loa),
    elnino/elnino.csv (monthly sea temperature), sunspots/sunspots.csv
    (yearly), elec_equip/elec_equip.csv (monthly orders);
  aeon 1.6.0: datasets/data/Daphnet_S06R02E0/S06R02E0.csv (9 body-worn
    accelerometer channels at 64 Hz, all labelled normal),
    solar/solar.csv (half-hourly solar generation),
    KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_TEST.csv (UCR anomaly
    archive #135, labelled);
  sktime 1.2.0: datasets/data/mitdb/mitdb.csv (an MIT-BIH arrhythmia ECG
    excerpt with anomaly labels, as redistributed by sktime).
sktime's datasets/data/yahoo/yahoo.csv is Yahoo S5 data and is NOT used.

Usage:
  pip install --no-deps -r requirements-corpus.txt
  python corpus.py --out DIR
"""
import argparse
import csv
import importlib.util
import math
import os

import numpy as np

START_MS = 1_700_000_000_000
SEED_BASE = {"tuning": 2_000_000, "heldout": 3_000_000}
SYNTH_SERIES = {"tuning": 40, "heldout": 40}
SYNTH_CLEAN = {"tuning": 10, "heldout": 10}
PUMP_RUNS = {"tuning": 8, "heldout": 8}

HOUR = 3_600_000
DAY = 24 * HOUR
# Real backgrounds: (name, package, file, reader, interval ms, period rows or None).
BACKGROUNDS = {
    "tuning": [
        ("seattle-temps", "vega_datasets", "_data/seattle-temps.csv", "col:temp", HOUR, 24),
        ("co2-weekly", "statsmodels", "datasets/co2/co2.csv", "col:co2", 7 * DAY, 52),
        ("elnino-monthly", "statsmodels", "datasets/elnino/elnino.csv", "elnino", 30 * DAY, 12),
        ("sunspots-yearly", "statsmodels", "datasets/sunspots/sunspots.csv", "col:SUNACTIVITY", 365 * DAY, 11),
    ]
    + [
        (f"daphnet-{c}", "aeon", "datasets/data/Daphnet_S06R02E0/S06R02E0.csv", f"col:{c}", 16, None)
        for c in ("ankle_horiz_fwd", "ankle_vert", "ankle_horiz_lateral")
    ],
    "heldout": [
        ("sf-temps", "vega_datasets", "_data/sf-temps.csv", "col:temp", HOUR, 24),
        ("solar-halfhourly", "aeon", "datasets/data/solar/solar.csv", "col:solar_gen", HOUR // 2, 48),
        ("elec-equip-monthly", "statsmodels", "datasets/elec_equip/elec_equip.csv", "col:STS.M.I7.W.TOVT.NS0016.4.000", 30 * DAY, 12),
    ]
    + [
        (f"seattle-weather-{c}", "vega_datasets", "_data/seattle-weather.csv", f"col:{c}", DAY, None)
        for c in ("temp_max", "temp_min", "precipitation", "wind")
    ]
    + [
        (f"daphnet-{c}", "aeon", "datasets/data/Daphnet_S06R02E0/S06R02E0.csv", f"col:{c}", 16, None)
        for c in (
            "leg_horiz_fwd",
            "leg_vert",
            "leg_horiz_lateral",
            "trunk_horiz_fwd",
            "trunk_vert",
            "trunk_horiz_lateral",
        )
    ],
}
# Real labelled series: (name, package, file, value column, label column, interval ms).
LABELLED = {
    "tuning": [
        ("ucr-135-internal-bleeding", "aeon", "datasets/data/KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_TEST.csv", "value", "is_anomaly", 1000),
    ],
    "heldout": [
        # MIT-BIH is sampled at 360 Hz.
        ("mitdb-ecg", "sktime", "datasets/data/mitdb/mitdb.csv", "data", "label", 1000 / 360),
    ],
}

SYNTH_KINDS = ("level_shift", "stuck", "drift", "variance_burst", "frequency_change", "spike_cluster")
LENGTHS = {
    "level_shift": (60, 400),
    "stuck": (60, 400),
    "drift": (120, 400),
    "variance_burst": (30, 200),
    "frequency_change": (150, 400),
    "spike_cluster": (30, 150),
}


def package_file(package, rel):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: pip install --no-deps -r requirements-corpus.txt")
    path = os.path.join(list(spec.submodule_search_locations)[0], rel)
    if not os.path.exists(path):
        raise SystemExit(f"{package} has no {rel}: check the pinned version")
    return path


def read_background(package, rel, reader):
    """Values of one real series as float64 (NaN where the file has none)."""
    with open(package_file(package, rel), newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if reader == "elnino":
        months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        return np.array([float(r[m]) for r in rows for m in months])
    col = reader.split(":", 1)[1]
    return np.array([float(r[col]) if r[col].strip() not in ("", "NA", "nan") else np.nan for r in rows])


def probation(n):
    """NAB's ignored start of a series (see gateway/cli/src/eval_anomaly/nab.rs)."""
    return min(int(0.15 * n), 750)


def earliest_event(n):
    """Past NAB's probation and the transform's warm-up, with room for windows."""
    return max(probation(n) + 60, min(800, n // 3), 200)


def place_events(rng, n, kinds, count, max_len=None):
    """Non-overlapping (kind, start, end_exclusive), in time order."""
    events = []
    first = earliest_event(n)
    pos = first + int(rng.integers(0, max(1, min(150, (n - first) // 4))))
    cap = max_len or max(20, n // 10)
    for _ in range(count):
        kind = kinds[int(rng.integers(0, len(kinds)))]
        lo, hi = LENGTHS[kind]
        hi = min(hi, cap)
        lo = min(lo, hi)
        length = int(rng.integers(lo, hi + 1))
        if pos + length + 10 >= n:
            break
        events.append((kind, pos, pos + length))
        pos += length + 300 + int(rng.integers(0, max(700, n // 6)))
    return events


def local_scale(x, s):
    """Standard deviation and noise scale of the 500 values before row s."""
    w = x[max(0, s - 500) : s]
    w = w[np.isfinite(w)]
    if len(w) < 10:
        return 1.0, 1.0
    sd = float(np.std(w))
    noise = float(np.median(np.abs(np.diff(w)))) / 0.6745 / math.sqrt(2)
    sd = sd if sd > 0 else 1.0
    return sd, (noise if noise > 0 else 0.1 * sd)


def time_warp(x, s, e, k):
    """x[s:e] played k times as fast from row s (a frequency change)."""
    n = len(x)
    src = s + (np.arange(e - s) * k)
    src = np.clip(src, 0, n - 1)
    idx = np.arange(n, dtype=np.float64)
    finite = np.isfinite(x)
    return np.interp(src, idx[finite], x[finite])


def inject(rng, x, events, period):
    """Applies labelled anomalies to a copy of x; returns (values, labels)."""
    x = x.copy()
    labels = np.zeros(len(x), dtype=np.int8)
    for kind, s, e in events:
        sd, noise = local_scale(x, s)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind == "level_shift":
            x[s:e] += sign * rng.uniform(2.0, 4.0) * sd
        elif kind == "stuck":
            prev = x[:s][np.isfinite(x[:s])]
            x[s:e] = prev[-1] if len(prev) else 0.0
        elif kind == "drift":
            x[s:e] += sign * rng.uniform(3.0, 5.0) * sd * np.linspace(0.0, 1.0, e - s)
        elif kind == "variance_burst":
            burst = max(rng.uniform(3.0, 6.0) * noise, rng.uniform(0.5, 1.0) * sd)
            x[s:e] += rng.normal(0.0, burst, e - s)
        elif kind == "frequency_change":
            k = rng.uniform(2.0, 3.0) if rng.random() < 0.5 else rng.uniform(0.3, 0.5)
            x[s:e] = time_warp(x, s, e, k)
        elif kind == "spike_cluster":
            count = int(rng.integers(max(3, (e - s) // 15), max(4, (e - s) // 5) + 1))
            rows = s + rng.choice(e - s, size=min(count, e - s), replace=False)
            rows[0] = s
            x[rows] += rng.choice([-1.0, 1.0], size=len(rows)) * rng.uniform(4.0, 8.0, len(rows)) * sd
        labels[s:e] = 1
    return x, labels


def eligible_kinds(period, n):
    """Kinds an injection may use: a frequency change needs a short cycle."""
    if period is not None and period * 3 <= min(400, n // 10):
        return SYNTH_KINDS
    return tuple(k for k in SYNTH_KINDS if k != "frequency_change")


# Synthetic normal behaviour ---------------------------------------------------


def student_t(rng, n, df):
    return rng.standard_t(df, n) / math.sqrt(df / (df - 2))


def isolated_spikes(rng, n, scale):
    """Normal, unlabelled one-row spikes: about one in 800 rows."""
    out = np.zeros(n)
    rows = np.nonzero(rng.random(n) < 1.0 / 800)[0]
    out[rows] = rng.choice([-1.0, 1.0], size=len(rows)) * rng.uniform(3.0, 6.0, len(rows)) * scale
    return out


def phase(n, period, warps):
    """Cycle phase per row; inside a warp (s, e, k) it advances k times as fast."""
    rate = np.full(n, 2 * np.pi / period)
    for s, e, k in warps:
        rate[s:e] *= k
    return np.cumsum(rate)


def synth_background(rng, kind, n, warps):
    """(values, interval ms, period rows or None, description)."""
    if kind == "cycles":
        day = int(rng.choice([24, 48, 96, 144, 288]))
        interval = DAY // day
        amp = rng.uniform(1.0, 20.0)
        level = rng.uniform(-50.0, 100.0)
        x = level + amp * np.sin(phase(n, day, warps) + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.6:
            x += rng.uniform(0.2, 0.6) * amp * np.sin(phase(n, 7 * day, warps) + rng.uniform(0, 2 * np.pi))
        noise = amp * rng.uniform(0.05, 0.3)
        x += noise * student_t(rng, n, rng.uniform(2.5, 6.0)) + isolated_spikes(rng, n, noise)
        return x, interval, day, f"daily cycle of {day} rows, t noise"
    if kind == "random_walk":
        step = rng.uniform(0.05, 1.0)
        walk = np.empty(n)
        acc = 0.0
        pull = 1.0 / rng.uniform(500, 3000)
        eps = rng.normal(0.0, step, n)
        for i in range(n):
            acc += eps[i] - pull * acc
            walk[i] = acc
        noise = step * rng.uniform(0.5, 2.0)
        x = rng.uniform(0, 100) + walk + noise * student_t(rng, n, 4.0) + isolated_spikes(rng, n, noise)
        return x, int(rng.choice([1000, 10_000, 60_000])), None, "mean-reverting random walk"
    if kind == "regimes":
        level = np.zeros(n)
        scale = np.ones(n)
        pos = int(rng.integers(800, 1500))
        t = np.arange(n)
        base = rng.uniform(1.0, 5.0)
        while pos < n:
            width = rng.uniform(600, 1500)
            step = rng.uniform(-2.0, 2.0) * base
            ramp = 1.0 / (1.0 + np.exp(-(t - pos) / (width / 8)))
            level += step * ramp
            scale *= 1.0 + (rng.uniform(0.7, 1.4) - 1.0) * ramp
            pos += int(rng.integers(1500, 3000))
        x = rng.uniform(0, 50) + level + base * scale * student_t(rng, n, 5.0) + isolated_spikes(rng, n, base)
        return x, 60_000, None, "slow regime changes"
    if kind == "counts":
        day = int(rng.choice([24, 96, 288]))
        lam = rng.uniform(0.5, 30.0) * (1.0 + rng.uniform(0.3, 0.9) * np.sin(phase(n, day, warps)))
        return rng.poisson(np.maximum(lam, 0.01)).astype(np.float64), DAY // day, day, f"Poisson counts, cycle {day} rows"
    if kind == "cpu":
        base = rng.uniform(5.0, 30.0)
        x = base + rng.uniform(1.0, 3.0) * rng.normal(0.0, 1.0, n)
        i = 0
        while i < n:
            i += int(rng.exponential(150)) + 1
            length = int(rng.geometric(1.0 / rng.uniform(5, 20)))
            x[i : i + length] += rng.uniform(20.0, 70.0)
            i += length
        return np.round(np.clip(x, 0.0, 100.0), 1), 10_000, None, "CPU-like bursty load"
    raise ValueError(kind)


def synth_series(seed, clean):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3000, 6001))
    kind = ["cycles", "cycles", "random_walk", "regimes", "counts", "cpu"][int(rng.integers(0, 6))]
    cyclic = kind in ("cycles", "counts")
    kinds = SYNTH_KINDS if cyclic else tuple(k for k in SYNTH_KINDS if k != "frequency_change")
    events = [] if clean else place_events(rng, n, kinds, int(rng.integers(2, 6)))
    warps = [(s, e, rng.uniform(2.0, 3.0) if rng.random() < 0.5 else rng.uniform(0.3, 0.5)) for k, s, e in events if k == "frequency_change"]
    x, interval, period, desc = synth_background(rng, kind, n, warps)
    # Frequency changes are already in the phase; label them, inject the rest.
    labels = np.zeros(n, dtype=np.int8)
    for k, s, e in events:
        labels[s:e] = 1
    x, other = inject(rng, x, [ev for ev in events if ev[0] != "frequency_change"], period)
    labels |= other
    if kind in ("counts",):
        x = np.maximum(np.round(x), 0.0)
    if kind == "cpu":
        x = np.round(np.clip(x, 0.0, 100.0), 1)
    times = timestamps(rng, n, interval, irregular=rng.random() < 0.4, events=events)
    keep = times >= 0
    # Row numbers after the dropped gaps (which never touch an event).
    new_index = np.cumsum(keep) - 1
    events = [(k, int(new_index[s]), int(new_index[e - 1]) + 1) for k, s, e in events]
    irregular = np.diff(times[keep]).min() != np.diff(times[keep]).max()
    return x[keep], labels[keep], times[keep], events, f"{kind}: {desc}" + (", irregular" if irregular else "")


def timestamps(rng, n, interval, irregular, events):
    """Row times in ms; irregular sampling jitters them and drops a few gaps
    away from the events (dropped rows get -1)."""
    if not irregular:
        return START_MS + interval * np.arange(n, dtype=np.int64)
    steps = np.maximum(1, np.round(interval * rng.lognormal(0.0, 0.3, n))).astype(np.int64)
    times = START_MS + np.cumsum(steps) - steps[0]
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.integers(20, 200))
        s = int(rng.integers(200, max(201, n - length)))
        if any(s < e + 100 and es - 100 < s + length for _, es, e in events):
            continue
        times[s : s + length] = -1
    return times


# Pump rig ---------------------------------------------------------------------

PUMP_FAULTS = ("valve", "cavitation", "imbalance", "sensor_fault")
PUMP_COLUMNS = ("accel_x", "accel_y", "current", "pressure", "temperature", "flow")


def pump_run(seed):
    """One run: dict of columns, labels and events."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1000, 1201))
    t = np.arange(n, dtype=np.float64)
    # Speed set-point changes every few minutes, followed with a 10 s lag.
    target = np.empty(n)
    i = 0
    sp = 1.0
    while i < n:
        hold = int(rng.integers(150, 400))
        target[i : i + hold] = sp
        sp = float(np.clip(sp + rng.uniform(-0.1, 0.1), 0.85, 1.1))
        i += hold
    speed = np.empty(n)
    acc = target[0]
    for j in range(n):
        acc += (target[j] - acc) / 10.0
        speed[j] = acc
    valve = np.ones(n)  # flow resistance factor
    vib_noise = np.ones(n)
    extra_vib = np.zeros((n, 2))
    dips = np.zeros(n)

    events = []
    pos = 400 + int(rng.integers(30, 120))
    for _ in range(int(rng.integers(2, 4))):
        kind = PUMP_FAULTS[int(rng.integers(0, len(PUMP_FAULTS)))]
        length = int(rng.integers(60, 250))
        if pos + length + 20 >= n:
            break
        events.append((kind, pos, pos + length))
        pos += length + int(rng.integers(100, 250))

    sensor_faults = []
    for kind, s, e in events:
        ramp = np.clip((t[s:e] - s) / 20.0, 0.0, 1.0)
        if kind == "valve":
            valve[s:e] += rng.uniform(0.15, 0.35) * ramp
        elif kind == "cavitation":
            vib_noise[s:e] *= rng.uniform(2.5, 4.0)
            hit = rng.random(e - s) < 0.12
            dips[s:e] -= hit * rng.uniform(0.05, 0.15, e - s)
        elif kind == "imbalance":
            period = rng.uniform(2.2, 2.9)
            amp = rng.uniform(2.0, 4.0)
            ph = 2 * np.pi * t[s:e] / period
            extra_vib[s:e, 0] = amp * ramp * np.sin(ph)
            extra_vib[s:e, 1] = amp * ramp * np.cos(ph)
        else:
            sensor_faults.append((s, e, PUMP_COLUMNS[2 + int(rng.integers(0, 4))], ["stuck", "offset", "zero"][int(rng.integers(0, 3))]))

    q0, p0, i0 = rng.uniform(20.0, 60.0), rng.uniform(2.0, 6.0), rng.uniform(8.0, 30.0)
    flow = q0 * speed / np.sqrt(valve) * (1 + 0.01 * rng.normal(0, 1, n))
    pressure = p0 * speed**2 * valve * (1 + dips) * (1 + 0.01 * rng.normal(0, 1, n))
    current = i0 * (0.3 + 0.7 * speed**3 * (1 + 0.4 * (valve - 1))) * (1 + 0.01 * rng.normal(0, 1, n))
    ambient = rng.uniform(18.0, 30.0)
    temperature = np.empty(n)
    temp = ambient + 0.8 * current[0]
    for j in range(n):
        temp += (ambient + 0.8 * current[j] - temp) / 300.0
        temperature[j] = temp
    temperature += 0.05 * rng.normal(0, 1, n)
    # Vibration sampled at 1 Hz: two aliased running components, broadband
    # noise, the y axis partly coupled to x.
    f1, f2 = rng.uniform(0.15, 0.3), rng.uniform(0.32, 0.45)
    base = speed**2 * (np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t + 1.0))
    nx = rng.normal(0, 0.3, n) * vib_noise
    ny = rng.normal(0, 0.3, n) * vib_noise
    accel_x = base + nx + extra_vib[:, 0]
    accel_y = 0.6 * base + 0.5 * nx + ny + extra_vib[:, 1]
    cols = {
        "accel_x": accel_x,
        "accel_y": accel_y,
        "current": current,
        "pressure": pressure,
        "temperature": temperature,
        "flow": flow,
    }
    for s, e, col, mode in sensor_faults:
        if mode == "stuck":
            cols[col][s:e] = cols[col][s - 1]
        elif mode == "offset":
            cols[col][s:e] *= rng.uniform(1.15, 1.3)
        else:
            cols[col][s:e] = 0.0
    labels = np.zeros(n, dtype=np.int8)
    for _, s, e in events:
        labels[s:e] = 1
    faults = {s: f"sensor_fault({col},{mode})" for s, _, col, mode in sensor_faults}
    named = [(faults.get(s, k), s, e) for k, s, e in events]
    return cols, labels, named


# Writing ----------------------------------------------------------------------


def fmt(v):
    return "" if not np.isfinite(v) else f"{v:.6g}"


def write_series(path, times, values, labels):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value", "label"])
        for t, v, l in zip(times, values, labels):
            w.writerow([int(t), fmt(v), int(l)])


def describe(events):
    return " ".join(f"{k}@{s}-{e}" for k, s, e in events)


def build_part(part, out, manifest):
    uni = os.path.join(out, part, "uni")
    pump = os.path.join(out, part, "pump")
    os.makedirs(uni, exist_ok=True)
    os.makedirs(pump, exist_ok=True)
    base = SEED_BASE[part]

    for i in range(SYNTH_SERIES[part] + SYNTH_CLEAN[part]):
        clean = i >= SYNTH_SERIES[part]
        x, labels, times, events, desc = synth_series(base + i, clean)
        name = f"syn-{part}-{i:03d}" + ("-clean" if clean else "")
        write_series(os.path.join(uni, name + ".csv"), times, x, labels)
        manifest.append((f"{part}/uni/{name}.csv", part, "synthetic", desc, len(x), describe(events)))

    for j, (name, package, rel, reader, interval, period) in enumerate(BACKGROUNDS[part]):
        x = read_background(package, rel, reader)
        n = len(x)
        times = START_MS + interval * np.arange(n, dtype=np.int64)
        src = f"{package}: {rel}" + (f" ({reader.split(':', 1)[1]})" if reader.startswith("col:") else "")
        write_series(os.path.join(uni, f"bg-{name}.csv"), times, x, np.zeros(n, dtype=np.int8))
        manifest.append((f"{part}/uni/bg-{name}.csv", part, "real background", src, n, ""))
        copies = 3 if n >= 5000 else 2 if n >= 1000 else 1
        for c in range(copies):
            rng = np.random.default_rng(base + 100_000 + 10 * j + c)
            count = int(rng.integers(2, 6)) if n >= 1000 else 1
            events = place_events(rng, n, eligible_kinds(period, n), count)
            y, labels = inject(rng, x, events, period)
            write_series(os.path.join(uni, f"inj-{name}-{c}.csv"), times, y, labels)
            manifest.append((f"{part}/uni/inj-{name}-{c}.csv", part, "real background, injected", src, n, describe(events)))

    for name, package, rel, value_col, label_col, interval in LABELLED[part]:
        with open(package_file(package, rel), newline="") as f:
            rows = list(csv.DictReader(f))
        x = np.array([float(r[value_col]) for r in rows])
        labels = np.array([int(float(r[label_col])) for r in rows], dtype=np.int8)
        times = START_MS + np.round(interval * np.arange(len(x))).astype(np.int64)
        write_series(os.path.join(uni, f"real-{name}.csv"), times, x, labels)
        edges = np.diff(np.concatenate([[0], labels, [0]]))
        runs = list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))
        manifest.append((f"{part}/uni/real-{name}.csv", part, "real labelled", f"{package}: {rel}", len(x), describe([("labelled", s, e) for s, e in runs])))

    path = os.path.join(pump, "pump-rig.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "run", *PUMP_COLUMNS, "label"])
        for r in range(PUMP_RUNS[part]):
            cols, labels, events = pump_run(base + 200_000 + r)
            run = f"{part}-run-{r:02d}"
            start = START_MS + r * 2 * HOUR
            for k in range(len(labels)):
                w.writerow([start + 1000 * k, run, *(fmt(cols[c][k]) for c in PUMP_COLUMNS), int(labels[k])])
            manifest.append((f"{part}/pump/pump-rig.csv#{run}", part, "pump rig", "simulated, 1 Hz", len(labels), describe(events)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--part", choices=["tuning", "heldout", "all"], default="all")
    args = ap.parse_args()
    parts = ["tuning", "heldout"] if args.part == "all" else [args.part]
    manifest = []
    for part in parts:
        build_part(part, args.out, manifest)
    with open(os.path.join(args.out, "manifest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "part", "family", "source", "rows", "events"])
        w.writerows(manifest)
    for part in parts:
        m = [r for r in manifest if r[1] == part]
        events = sum(len(r[5].split()) for r in m)
        print(f"{part}: {len(m)} series, {sum(r[4] for r in m)} rows, {events} labelled events")


if __name__ == "__main__":
    main()
