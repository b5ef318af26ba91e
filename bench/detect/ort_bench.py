"""onnxruntime on the same model and photos as the tract benchmark, on one
thread: per-frame latency (decode, resize, inference, decode, NMS), model-only
latency on a prepared input, and frames/s.

Usage: ort_bench.py [FRAMES]   (prints lines in the format of the Rust bench)
"""

import os
import statistics
import sys
import time

import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "models", "detect"))
from check_onnx import decode, preprocess  # noqa: E402

MODEL = os.path.join(ROOT, "models", "detect", "nanodet-g-416.onnx")
PHOTOS = [os.path.join(ROOT, "plugins", "vision", "testdata", n) for n in ("person.jpg", "kite.jpg")]


def report(name, lat):
    lat = sorted(lat)
    p = lambda q: lat[round((len(lat) - 1) * q)] * 1000  # noqa: E731
    print(f"{name}: n={len(lat)} mean_ms={statistics.mean(lat) * 1000:.2f} p50_ms={p(0.5):.2f} p99_ms={p(0.99):.2f}")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def frame(path):
        x, w, h = preprocess(path)
        return decode(session.run(None, {name: x}), w, h)

    for p in PHOTOS:
        frame(p)
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        frame(PHOTOS[i % len(PHOTOS)])
        lat.append(time.perf_counter() - t)
    fps = n / (time.perf_counter() - start)
    report("ort_frame", lat)
    x, _, _ = preprocess(PHOTOS[0])
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        session.run(None, {name: x})
        lat.append(time.perf_counter() - t)
    report("ort_model", lat)
    print(f"ort_throughput: workers=1 frames_per_s={fps:.1f}")


if __name__ == "__main__":
    main()
