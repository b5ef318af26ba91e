#!/usr/bin/env python3
"""Labelled synthetic sensor series for training and evaluating the anomaly models.

Two families, both deterministic given a seed:

* ``univariate_series``: one sensor. Normal behaviour is a random level and
  scale, zero to two seasonal components, white or AR(1) noise and a slow
  trend. Injected anomalies (label 1 over their whole extent): ``spike``,
  ``level_shift``, ``drift``, ``stuck``, ``variance_burst``.
* ``factory_series``: one machine with ``vibration_rms``, ``temperature`` and
  ``current``. Half the machines are driven by a shared load profile
  (temperature follows load with a thermal lag), half have independent slow
  cycles per sensor (as on a line sampled at 10 Hz: vibration cycles over a
  few hundred rows, temperature over thousands). Injected faults:
  ``vibration_burst``, ``overheating`` (temperature drift independent of
  load), ``current_spike``, ``stuck_temperature``, ``current_shift``,
  ``vibration_spike``, ``spike_pair`` (current and vibration together) and
  ``stuck_all`` (every sensor frozen).

Splits use disjoint seed ranges, so the held-out ``test`` split never overlaps
training data. Written as CSV (``timestamp,<features...>,label``) the series
replay through ``sluice eval-anomaly``.

Usage:
  python synth.py --family univariate --split test --series 20 --out DIR
  python synth.py --family factory --split test --series 20 --out DIR
"""
import argparse
import csv
import os
from dataclasses import dataclass, field

import numpy as np

SPLIT_SEED_BASE = {"train": 0, "valid": 500_000, "test": 1_000_000}

UNIVARIATE_KINDS = ("spike", "level_shift", "drift", "stuck", "variance_burst")
FACTORY_KINDS = (
    "vibration_burst",
    "overheating",
    "current_spike",
    "stuck_temperature",
    "current_shift",
    "vibration_spike",
    "spike_pair",
    "stuck_all",
)
FACTORY_FEATURES = ("vibration_rms", "temperature", "current")

# Anomalies start after this many rows: the transform's warm-up (128 rows by
# default) plus room for its running statistics to settle.
FIRST_ANOMALY = 600
# Rows between the end of one anomaly and the start of the next.
MIN_GAP = 250


@dataclass
class Series:
    """One labelled series: values ``[n, features]``, labels ``[n]`` and events."""

    values: np.ndarray
    labels: np.ndarray
    events: list = field(default_factory=list)  # (kind, start, end_exclusive)
    features: tuple = ("value",)


def _log_uniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _place_events(rng, n, kinds, lengths, count):
    """Non-overlapping (kind, start, end) with gaps, in time order."""
    events = []
    pos = FIRST_ANOMALY + int(rng.integers(0, 200))
    for _ in range(count):
        kind = kinds[int(rng.integers(0, len(kinds)))]
        lo, hi = lengths[kind]
        length = int(rng.integers(lo, hi + 1))
        if pos + length + 1 >= n:
            break
        events.append((kind, pos, pos + length))
        pos += length + MIN_GAP + int(rng.integers(0, 600))
    return events


def _normal_univariate(rng, n):
    t = np.arange(n, dtype=np.float64)
    amplitude = _log_uniform(rng, 0.1, 100.0)
    level = rng.uniform(-5.0, 5.0) * amplitude
    signal = np.zeros(n)
    n_seasonal = int(rng.choice([0, 1, 1, 2]))
    for _ in range(n_seasonal):
        period = rng.uniform(20.0, 400.0)
        signal += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    noise_ratio = _log_uniform(rng, 0.03, 0.5) if n_seasonal else 1.0
    phi = rng.uniform(0.0, 0.8) if rng.random() < 0.5 else 0.0
    eps = rng.normal(0.0, 1.0, n)
    noise = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = phi * acc + eps[i]
        noise[i] = acc
    noise *= np.sqrt(1.0 - phi * phi)
    trend = rng.uniform(-0.5, 0.5) * t / n
    clean = level + amplitude * (signal + trend + noise_ratio * noise)
    return clean, amplitude * noise_ratio


def univariate_series(seed, n=4000, anomalies=True):
    """A univariate series with injected anomalies (or none)."""
    rng = np.random.default_rng(seed)
    x, noise_sigma = _normal_univariate(rng, n)
    labels = np.zeros(n, dtype=np.int8)
    events = []
    if anomalies:
        sigma = float(np.std(x[:FIRST_ANOMALY]))
        lengths = {
            "spike": (1, 3),
            "level_shift": (60, 400),
            "drift": (120, 400),
            "stuck": (60, 400),
            "variance_burst": (30, 200),
        }
        events = _place_events(rng, n, UNIVARIATE_KINDS, lengths, int(rng.integers(3, 7)))
        for kind, s, e in events:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            if kind == "spike":
                x[s:e] += sign * rng.uniform(4.0, 10.0) * sigma
            elif kind == "level_shift":
                x[s:e] += sign * rng.uniform(2.0, 5.0) * sigma
            elif kind == "drift":
                x[s:e] += sign * rng.uniform(3.0, 6.0) * sigma * np.linspace(0.0, 1.0, e - s)
            elif kind == "stuck":
                x[s:e] = x[s - 1]
            elif kind == "variance_burst":
                burst = max(rng.uniform(4.0, 10.0) * noise_sigma, rng.uniform(0.8, 2.0) * sigma)
                x[s:e] += rng.normal(0.0, burst, e - s)
            labels[s:e] = 1
    return Series(values=x[:, None], labels=labels, events=events, features=("value",))


def _load_profile(rng, n):
    load = np.empty(n)
    current = rng.uniform(0.3, 1.0)
    target = current
    i = 0
    while i < n:
        hold = int(rng.integers(50, 300))
        target = rng.uniform(0.3, 1.0)
        for j in range(i, min(n, i + hold)):
            current += (target - current) * 0.05
            load[j] = current
        i += hold
    return load + rng.normal(0.0, 0.01, n)


def _coupled_machine(rng, n):
    load = _load_profile(rng, n)
    t = np.arange(n, dtype=np.float64)
    i_nominal = rng.uniform(5.0, 40.0)
    v_nominal = rng.uniform(1.0, 4.0)
    t_ambient = rng.uniform(20.0, 35.0)
    t_rise = rng.uniform(15.0, 40.0)
    tau = rng.uniform(80.0, 300.0)

    current = i_nominal * (0.2 + 0.8 * load) + rng.normal(0.0, 0.02 * i_nominal, n)
    vibration = v_nominal * (0.5 + 0.5 * load) + np.abs(rng.normal(0.0, 0.08 * v_nominal, n))
    temperature = np.empty(n)
    temp = t_ambient + t_rise * load[0]
    ambient = t_ambient + 1.5 * np.sin(2 * np.pi * t / rng.uniform(1500, 4000) + rng.uniform(0, 6.3))
    for i in range(n):
        temp += (ambient[i] + t_rise * load[i] - temp) / tau
        temperature[i] = temp
    temperature = temperature + rng.normal(0.0, 0.15, n)
    return vibration, temperature, current


def _independent_machine(rng, n):
    t = np.arange(n, dtype=np.float64)

    def cycle(lo, hi):
        return np.sin(2 * np.pi * t / rng.uniform(lo, hi) + rng.uniform(0, 2 * np.pi))

    v0, t0, i0 = rng.uniform(0.5, 3.0), rng.uniform(30.0, 70.0), rng.uniform(5.0, 40.0)
    vibration = v0 * (1 + rng.uniform(0.05, 0.25) * cycle(100, 400) + rng.uniform(0.01, 0.06) * rng.normal(0, 1, n))
    temperature = t0 + rng.uniform(0.5, 3.0) * cycle(1500, 6000) + rng.uniform(0.05, 0.3) * rng.normal(0, 1, n)
    current = i0 * (1 + rng.uniform(0.03, 0.2) * cycle(200, 800) + rng.uniform(0.01, 0.04) * rng.normal(0, 1, n))
    return vibration, temperature, current


def factory_series(seed, n=4000, anomalies=True):
    """One machine's vibration, temperature and motor current with faults."""
    rng = np.random.default_rng(seed)
    if rng.random() < 0.5:
        vibration, temperature, current = _coupled_machine(rng, n)
    else:
        vibration, temperature, current = _independent_machine(rng, n)
    x = np.stack([vibration, temperature, current], axis=1)
    labels = np.zeros(n, dtype=np.int8)
    events = []
    if anomalies:
        sd = x[:FIRST_ANOMALY].std(axis=0)
        lengths = {
            "vibration_burst": (40, 250),
            "overheating": (150, 400),
            "current_spike": (1, 3),
            "stuck_temperature": (80, 400),
            "current_shift": (60, 300),
            "vibration_spike": (1, 3),
            "spike_pair": (1, 10),
            "stuck_all": (60, 300),
        }
        events = _place_events(rng, n, FACTORY_KINDS, lengths, int(rng.integers(3, 7)))
        for kind, s, e in events:
            if kind == "vibration_burst":
                x[s:e, 0] += np.abs(rng.normal(rng.uniform(1.0, 2.5) * sd[0], rng.uniform(1.0, 2.5) * sd[0], e - s))
            elif kind == "overheating":
                x[s:e, 1] += rng.uniform(4.0, 8.0) * sd[1] * np.linspace(0.0, 1.0, e - s)
            elif kind == "current_spike":
                x[s:e, 2] += rng.uniform(4.0, 10.0) * sd[2]
            elif kind == "stuck_temperature":
                x[s:e, 1] = x[s - 1, 1]
            elif kind == "current_shift":
                sign = 1.0 if rng.random() < 0.5 else -1.0
                x[s:e, 2] += sign * rng.uniform(2.0, 4.0) * sd[2]
            elif kind == "vibration_spike":
                x[s:e, 0] += rng.uniform(4.0, 10.0) * sd[0]
            elif kind == "spike_pair":
                factor = rng.uniform(2.0, 4.0)
                x[s:e, 0] *= factor
                x[s:e, 2] *= factor
            elif kind == "stuck_all":
                x[s:e] = x[s - 1]
            labels[s:e] = 1
    return Series(values=x, labels=labels, events=events, features=FACTORY_FEATURES)


def generate(family, split, index, n=4000, anomalies=True):
    seed = SPLIT_SEED_BASE[split] + index
    if family == "univariate":
        return univariate_series(seed, n, anomalies)
    return factory_series(seed, n, anomalies)


def write_csv(path, series, period_ms=1000, start_ms=1_700_000_000_000):
    """``timestamp`` (ms since the epoch), the features, ``label``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", *series.features, "label"])
        for i in range(len(series.labels)):
            row = [start_ms + i * period_ms]
            row += [f"{v:.6g}" for v in series.values[i]]
            row.append(int(series.labels[i]))
            w.writerow(row)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=["univariate", "factory"], required=True)
    ap.add_argument("--split", choices=list(SPLIT_SEED_BASE), default="test")
    ap.add_argument("--series", type=int, default=20)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.series):
        s = generate(args.family, args.split, i, args.rows)
        path = os.path.join(args.out, f"{args.family}-{args.split}-{i:03d}.csv")
        write_csv(path, s)
        kinds = ", ".join(f"{k}@{a}" for k, a, _ in s.events)
        print(f"{path}: {len(s.labels)} rows, events: {kinds}")


if __name__ == "__main__":
    main()
