#!/usr/bin/env python3
"""tract versus onnxruntime on the anomaly models: same ONNX files, same batches.

1. Builds batches of standardised windows from held-out synthetic series
   (models/anomaly/synth.py, split `test`) for each model and batch size and
   writes them as raw little-endian f32.
2. Times onnxruntime (CPU provider, 1 and 2 intra-op threads) on them.
3. Runs the Rust bench (`cargo bench -p sluice-plugin-anomaly --bench anomaly
   -- --batches DIR`), which times tract on the same batches, writes tract's
   scores back, and also times the whole `anomaly` transform.
4. Prints one table: rows/s, p50 and p99 batch latency, the tract/onnxruntime
   throughput ratio, and the largest score difference between the engines.

Every measurement runs at least 3 s and 300 batches after 30 warm-up batches.

Usage: python bench/anomaly/run.py [--json OUT]
Needs numpy and onnxruntime (models/anomaly/requirements.txt) and cargo.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "models", "anomaly")
sys.path.insert(0, MODELS)

import features as feat  # noqa: E402
import synth  # noqa: E402
from train import HORIZON, SPECS, WARMUP  # noqa: E402

BATCH_SIZES = (1024, 64)
N_BATCHES = 64
MIN_TIME = 3.0
MIN_BATCHES = 300
WARMUP_BATCHES = 30


def windows_for(family, history, count):
    out, have, i = [], 0, 0
    while have < count:
        s = synth.generate(family, "test", i)
        w, _ = feat.standardised_windows(s.values, history, WARMUP, HORIZON)
        out.append(w)
        have += len(w)
        i += 1
    return np.concatenate(out)[:count]


def time_ort(path, batches, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    scores = np.concatenate([sess.run(["score"], {"window": b})[0][:, 0] for b in batches])
    for k in range(WARMUP_BATCHES):
        sess.run(["score"], {"window": batches[k % len(batches)]})
    lat = []
    start = time.perf_counter()
    k = 0
    while len(lat) < MIN_BATCHES or time.perf_counter() - start < MIN_TIME:
        b = batches[k % len(batches)]
        t = time.perf_counter()
        sess.run(["score"], {"window": b})
        lat.append(time.perf_counter() - t)
        k += 1
    lat = np.sort(np.array(lat))
    rows = batches[0].shape[0]

    def q(p):
        return float(lat[min(len(lat), max(1, int(np.ceil(p * len(lat))))) - 1])

    return {
        "engine": "onnxruntime",
        "threads": threads,
        "batch_rows": rows,
        "batches": len(lat),
        "rows_per_s": len(lat) * rows / float(lat.sum()),
        "p50_ms": q(0.5) * 1e3,
        "p99_ms": q(0.99) * 1e3,
        "load_ms": load_ms,
    }, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write all results to this file")
    ap.add_argument("--no-tract", action="store_true", help="time onnxruntime only")
    args = ap.parse_args()
    import onnxruntime as ort

    results = []
    ort_scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family, spec in SPECS.items():
            stem = spec["file"].removesuffix(".onnx")
            path = os.path.join(MODELS, spec["file"])
            for rows in BATCH_SIZES:
                w = windows_for(family, spec["history"], rows * N_BATCHES).reshape(rows * N_BATCHES, -1)
                w.astype("<f4").tofile(os.path.join(tmp, f"{stem}-b{rows}.f32"))
                batches = [w[i * rows : (i + 1) * rows] for i in range(N_BATCHES)]
                for threads in (1, 2):
                    r, scores = time_ort(path, batches, threads)
                    r["model"] = spec["file"]
                    results.append(r)
                    ort_scores[(spec["file"], rows)] = scores
                    print(json.dumps(r), flush=True)
        if not args.no_tract:
            cmd = ["cargo", "bench", "-p", "sluice-plugin-anomaly", "--bench", "anomaly", "--", "--batches", tmp]
            out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    key = (r["model"], r["batch_rows"])
                    tract_file = os.path.join(
                        tmp, f"{r['model'].removesuffix('.onnx')}-b{r['batch_rows']}-t{r['threads']}.tract.f32")
                    if r["engine"] == "tract" and os.path.exists(tract_file):
                        got = np.fromfile(tract_file, dtype="<f4")
                        r["max_abs_diff_vs_onnxruntime"] = float(np.abs(got - ort_scores[key]).max())
                    results.append(r)
                    print(json.dumps(r), flush=True)

    print()
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print("| model | batch | engine | threads | rows/s | p50 ms | p99 ms "
          "| tract / ort(1) | tract / ort(2) | tract / best ort | max |diff| |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratios = ["", "", ""]
        if r["engine"] == "tract":
            ort_rates = [
                x["rows_per_s"] for t in (1, 2) for x in results
                if x["engine"] == "onnxruntime" and x["model"] == r["model"]
                and x["batch_rows"] == r["batch_rows"] and x["threads"] == t
            ]
            ratios = [f"{r['rows_per_s'] / rate:.2f}" for rate in ort_rates + [max(ort_rates)]]
        diff = r.get("max_abs_diff_vs_onnxruntime")
        print(
            f"| {r['model']} | {r['batch_rows']} | {r['engine']} | {r['threads']} | {r['rows_per_s']:,.0f} "
            f"| {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {' | '.join(ratios)} "
            f"| {'' if diff is None else f'{diff:.1e}'} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
