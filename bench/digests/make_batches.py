#!/usr/bin/env python3
"""Writes bench/digests/batches.json: the event batches of the digest harness.

64 batches, half factory and half retail, 1 to 500 events each, generated
from a fixed seed per batch (Python's `random.Random`, whose sequences are
stable across Python 3 versions), so running this again writes the same
file. The device, zone, camera and kind names here are used nowhere else in
the repository: not by the crate's unit tests, not by its prompt examples,
so a digest cannot look good because the model saw these names before.

Each batch is a story: one entity and one kind stand out (or, in a few
"quiet" batches, nothing does), the rest is background noise, and the
measures peak where the story is.

Usage: python3 bench/digests/make_batches.py [--out bench/digests/batches.json]
The Rust harness (`cargo run --release -p sluice-plugin-summarize --example
eval-digests`) and the crate's test `tests/digests.rs` read the file.
"""
import argparse
import json
import os
import random

# 2025-06-02T06:00:00Z: a Monday morning shift.
T0 = 1_748_844_000_000

FACTORY = {
    "devices": ["lathe-12", "kiln-2", "extruder-5", "cnc-21", "welder-8",
                "chiller-4", "boiler-1", "packer-6", "sorter-9", "robot-14"],
    "zones": ["cell-a", "cell-b", "bay-3", "hall-east", "paint-shop", "assembly-2"],
    "kinds": ["bearing_wear", "overheat", "pressure_drop", "jam", "spindle_overload",
              "coolant_low", "door_open", "emergency_stop", "power_spike", "belt_slip"],
}
RETAIL = {
    "cameras": ["cam-entrance", "cam-aisle-7", "cam-till-3", "cam-dock",
                "cam-pharmacy", "cam-fitting", "cam-till-5", "cam-deli"],
    "zones": ["aisle-7", "till-3", "till-5", "entrance", "loading-dock",
              "fitting-room", "pharmacy", "deli-counter"],
    "kinds": ["non_scan", "sweethearting", "queue_overflow", "tailgating",
              "shelf_empty", "after_hours_entry", "spill", "fridge_door_open",
              "price_switch", "cart_pushout"],
}

# Sizes per domain: many 20-event batches (the latency target), a spread
# from a single event to 500 (the other latency target).
SIZES = [1, 2, 3, 5, 8, 12, 20, 20, 20, 20, 20, 20, 20, 20, 30, 40,
         50, 60, 75, 100, 150, 200, 250, 300, 350, 400, 450, 500, 500, 500, 15, 10]

# Factory layouts: (kind column, keys, measures, severity)
FACTORY_LAYOUTS = [
    ("kind", ["device", "zone"], ["vibration_rms", "temperature", "anomaly_score"],
     {"column": "anomaly_score", "warning_score": 0.7, "critical_score": 0.95}),
    ("alarm", ["device"], ["anomaly_score"],
     {"column": "anomaly_score", "warning_score": 0.7, "critical_score": 0.95}),
    ("kind", ["zone", "device"], ["current_a"], {}),
    ("event", ["device", "zone"], ["temperature", "pressure_bar"],
     {"column": "level"}),
]
RETAIL_LAYOUTS = [
    ("alert", ["zone", "camera"], ["score"], {"column": "level"}),
    ("alert", ["camera", "zone"], ["dwell_s", "score"], {}),
    ("kind", ["zone"], ["queue_len", "score"], {"column": "score", "warning_score": 0.6,
                                       "critical_score": 0.9}),
    ("alert", ["camera"], ["score"], {"column": "level"}),
]

MEASURE_RANGES = {
    "vibration_rms": (0.4, 3.0, 14.0),   # normal low, normal high, story peak
    "temperature": (35.0, 70.0, 118.0),
    "anomaly_score": (0.1, 0.6, 0.999),
    "current_a": (4.0, 18.0, 46.0),
    "pressure_bar": (5.5, 7.5, 11.5),
    "score": (0.2, 0.6, 0.99),
    "dwell_s": (3.0, 40.0, 420.0),
    "queue_len": (1.0, 6.0, 19.0),
}


def skewed(r, items, weight):
    """An item, the first one with probability `weight`, otherwise uniform."""
    if r.random() < weight:
        return items[0]
    return r.choice(items)


def make_batch(domain, index, size, layout_index):
    r = random.Random(f"sluice-digests-{domain}-{index}")
    if domain == "factory":
        kind_col, keys, measures, severity = FACTORY_LAYOUTS[layout_index]
        entities = {"device": r.sample(FACTORY["devices"], k=6),
                    "zone": r.sample(FACTORY["zones"], k=4)}
        kinds = r.sample(FACTORY["kinds"], k=5)
    else:
        kind_col, keys, measures, severity = RETAIL_LAYOUTS[layout_index]
        entities = {"camera": r.sample(RETAIL["cameras"], k=5),
                    "zone": r.sample(RETAIL["zones"], k=5)}
        kinds = r.sample(RETAIL["kinds"], k=5)
    quiet = index % 7 == 3  # no clear story: flat spread
    weight = 0.15 if quiet else r.uniform(0.35, 0.7)
    span_ms = r.choice([60_000, 120_000, 300_000, 600_000])
    start = T0 + index * 900_000 + (0 if domain == "factory" else 450_000)
    rows = []
    for _ in range(size):
        story = r.random() < weight
        row = {"ts": start + r.randrange(span_ms)}
        row[kind_col] = kinds[0] if story else skewed(r, kinds, 0.2)
        for k in keys:
            row[k] = entities[k][0] if story else skewed(r, entities[k], 0.2)
        for m in measures:
            lo, hi, peak = MEASURE_RANGES[m]
            if story and r.random() < 0.3:
                v = r.uniform(hi, peak)
            else:
                v = r.uniform(lo, hi)
            row[m] = round(v, 3 if m in ("anomaly_score", "score") else 2)
        if severity.get("column") == "level":
            row["level"] = r.choices(["info", "warning", "critical"],
                                     weights=[80, 15 + (10 if story else 0), 3 if story else 1])[0]
        rows.append(row)
    rows.sort(key=lambda x: x["ts"])
    columns = ["ts", kind_col] + keys + measures
    if severity.get("column") == "level":
        columns.append("level")
    sev_col = severity.get("column")
    if sev_col and sev_col not in columns:
        raise ValueError(f"severity column {sev_col} is not a column")
    text = [c for c in columns if c not in ("ts",) and c not in measures]
    return {
        "id": f"{domain[0]}{index:02d}",
        "domain": domain,
        "kind": kind_col,
        "keys": keys,
        "measures": measures,
        "severity": severity,
        "text_columns": text,
        "columns": {c: [row[c] for row in rows] for c in columns},
    }


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "batches.json"))
    args = ap.parse_args()
    batches = []
    for domain in ("factory", "retail"):
        for i, size in enumerate(SIZES):
            batches.append(make_batch(domain, i, size, i % 4))
    with open(args.out, "w") as f:
        f.write('{"batches": [\n')
        for i, b in enumerate(batches):
            f.write(json.dumps(b, separators=(",", ":")))
            f.write(",\n" if i + 1 < len(batches) else "\n")
        f.write("]}\n")
    total = sum(len(b["columns"]["ts"]) for b in batches)
    print(f"wrote {len(batches)} batches, {total} events, to {args.out}")


if __name__ == "__main__":
    main()
