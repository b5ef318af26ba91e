#!/usr/bin/env python3
"""Per-anomaly-kind detection figures of a model on held-out synthetic series.

Scores each series the way the transform does (online standardisation
replica in features.py + onnxruntime; the Rust tests check that the
transform reproduces these scores) and reports, per injected kind, how many
events were detected within their extent plus ``--tolerance`` rows and the
detection delay. The totals use the definitions of metrics.py, the same as
``sluice eval-anomaly``.

Usage: python evaluate.py --family univariate [--series 20] [--threshold 0.9]
       (MODEL_DIR=DIR evaluates the .onnx files in DIR instead)
"""
import argparse
import json
import os

import numpy as np
import onnxruntime as ort

import features as feat
import synth
from metrics import Tally
from train import HORIZON, SPECS, WARMUP

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=list(SPECS), required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--series", type=int, default=20)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--tolerance", type=int, default=10)
    args = ap.parse_args()
    spec = SPECS[args.family]
    sess = ort.InferenceSession(os.path.join(os.environ.get("MODEL_DIR", HERE), spec["file"]), providers=["CPUExecutionProvider"])
    tally = Tally(args.tolerance)
    kinds = {}
    for i in range(args.series):
        s = synth.generate(args.family, args.split, i)
        w, idx = feat.standardised_windows(s.values, spec["history"], WARMUP, HORIZON)
        score = np.zeros(len(s.labels))
        scored = np.zeros(len(s.labels), dtype=bool)
        score[idx] = sess.run(["score"], {"window": w.reshape(len(w), -1)})[0][:, 0]
        scored[idx] = True
        flagged = (score >= args.threshold) & scored
        tally.add(s.labels, flagged, scored)
        for kind, start, end in s.events:
            k = kinds.setdefault(kind, {"events": 0, "detected": 0, "delays": []})
            k["events"] += 1
            hits = np.nonzero(flagged[start : min(len(flagged), end + args.tolerance)])[0]
            if len(hits):
                k["detected"] += 1
                k["delays"].append(int(hits[0]))
    print(json.dumps(tally.report()))
    print("| kind | events | detected | median delay (rows) | max delay (rows) |")
    print("|---|---|---|---|---|")
    for kind, k in sorted(kinds.items()):
        d = k["delays"] or [0]
        print(f"| {kind} | {k['events']} | {k['detected']} | {int(np.median(d))} | {max(d)} |")


if __name__ == "__main__":
    main()
