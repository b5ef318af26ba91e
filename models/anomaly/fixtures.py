#!/usr/bin/env python3
"""Writes the parity fixtures the Rust tests compare tract against.

For each model: 96 standardised windows taken from a held-out series (normal
and anomalous rows alike), and onnxruntime's score for each. One CSV line per
window: ``score,v0,v1,...`` with the window flattened row-major
(``[history, features]``, the model's input layout). Running the Rust side on the same windows must
give the same scores (within 1e-5).

It also writes one held-out labelled series per model, ``<model>-series.csv``
(``timestamp,<features>,label,expected_score``), where ``expected_score`` is
what the numpy replica of the transform's online standardisation plus
onnxruntime gives for that row (empty while the series warms up). Replaying
the series through the Rust transform must give the same scores, which
checks the standardisation as well as the model.

Usage: python fixtures.py
"""
import os

import numpy as np
import onnxruntime as ort

import features as feat
import synth
from train import HORIZON, SPECS, WARMUP

HERE = os.path.dirname(os.path.abspath(__file__))
SERIES_ROWS = 2500
START_MS = 1_700_000_000_000


def main():
    out_dir = os.path.join(HERE, "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    for family, spec in SPECS.items():
        s = synth.generate(family, "test", 0)
        w, idx = feat.standardised_windows(s.values, spec["history"], WARMUP, HORIZON)
        rng = np.random.default_rng(3)
        anomalous = np.nonzero(s.labels[idx])[0]
        normal = np.nonzero(s.labels[idx] == 0)[0]
        pick = np.sort(np.concatenate([rng.choice(anomalous, 32, replace=False), rng.choice(normal, 64, replace=False)]))
        windows = w[pick]
        sess = ort.InferenceSession(os.path.join(HERE, spec["file"]), providers=["CPUExecutionProvider"])
        scores = sess.run(["score"], {"window": windows.reshape(len(windows), -1)})[0][:, 0]
        path = os.path.join(out_dir, spec["file"].replace(".onnx", "-parity.csv"))
        with open(path, "w") as f:
            for score, window in zip(scores, windows):
                values = ",".join(repr(float(v)) for v in window.reshape(-1))
                f.write(f"{float(score)!r},{values}\n")
        print(f"wrote {path}: {len(scores)} windows, {int((scores >= 0.9).sum())} scored >= 0.9")

        series = synth.generate(family, "test", 1, n=SERIES_ROWS)
        w, idx = feat.standardised_windows(series.values, spec["history"], WARMUP, HORIZON)
        expected = [""] * SERIES_ROWS
        for i, v in zip(idx, sess.run(["score"], {"window": w.reshape(len(w), -1)})[0][:, 0]):
            expected[i] = repr(float(v))
        path = os.path.join(out_dir, spec["file"].replace(".onnx", "-series.csv"))
        with open(path, "w") as f:
            f.write(",".join(["timestamp", *series.features, "label", "expected_score"]) + "\n")
            for i in range(SERIES_ROWS):
                values = ",".join(repr(float(v)) for v in series.values[i])
                f.write(f"{START_MS + 1000 * i},{values},{int(series.labels[i])},{expected[i]}\n")
        kinds = ", ".join(f"{k}@{a}" for k, a, _ in series.events)
        print(f"wrote {path}: {SERIES_ROWS} rows, events: {kinds}")


if __name__ == "__main__":
    main()
