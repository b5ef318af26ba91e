#!/usr/bin/env python3
"""Exports the one real, labelled sensor series obtainable from a package
registry as a CSV for ``sluice eval-anomaly``.

Source: the ``aeon`` wheel on PyPI (BSD-3-Clause, pinned in
requirements-real.txt) ships series 135 of the UCR / KDD-TSAD 2021 anomaly
archive, ``UCR_Anomaly_InternalBleeding16``: 7501 samples of a physiological
pressure sensor, the first 1200 known normal, one labelled anomaly at rows
4187-4198. The file is read straight from the installed package (aeon itself
is not imported). The same wheel's Daphnet excerpt carries no anomaly labels
and is not used. The archive gives no sampling rate; rows are written one
second apart.

Usage:
  pip install -r requirements-real.txt
  python real_data.py --out DIR   # writes DIR/ucr-135-internal-bleeding.csv
"""
import argparse
import csv
import importlib.util
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("aeon is not installed: pip install -r requirements-real.txt")
    root = list(spec.submodule_search_locations)[0]
    src = os.path.join(root, "datasets", "data", "KDD-TSAD_135", "135_UCR_Anomaly_InternalBleeding16_TEST.csv")
    os.makedirs(args.out, exist_ok=True)
    dst = os.path.join(args.out, "ucr-135-internal-bleeding.csv")
    start_ms = 1_700_000_000_000
    with open(src, newline="") as f, open(dst, "w", newline="") as g:
        r = csv.DictReader(f)
        w = csv.writer(g)
        w.writerow(["timestamp", "value", "label"])
        n = anomalous = 0
        for row in r:
            label = int(float(row["is_anomaly"]))
            w.writerow([start_ms + 1000 * int(row["timestamp"]), row["value"], label])
            n += 1
            anomalous += label
    print(f"wrote {dst}: {n} rows, {anomalous} labelled anomalous")


if __name__ == "__main__":
    main()
