#!/usr/bin/env python3
"""Trains and exports the two anomaly models (numpy only, CPU, deterministic).

* ``univariate-h32.onnx``: one feature, 32 past values, trained on
  ``synth.univariate_series``; meant for any single sensor series after the
  transform's online per-key standardisation.
* ``factory-h16.onnx``: ``vibration_rms``, ``temperature``, ``current``, 16
  past values, trained on ``synth.factory_series``.

Both take one input, ``window`` ``[batch, history * features]`` (f32): per
row the last ``history`` rows of the key, oldest first, each row's features
in the configured order, standardised per key by the transform. Both are the
same small network: engineered window features computed inside the graph (the window itself, absolute first differences, log mean absolute
difference and log standard deviation per feature), then a 64-32-1 ReLU MLP
(the training standardisation of the features folded into its first layer)
and a sigmoid. The
output ``score`` is the probability that the newest row of the window is
anomalous.

Usage: python train.py [--only univariate|factory] [--out DIR]
"""
import argparse
import json
import os
import time

# One BLAS thread: results are reproducible bit for bit and other work on a
# small machine keeps its cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import features as feat
import synth
from metrics import Tally

HERE = os.path.dirname(os.path.abspath(__file__))

WARMUP = 128
HORIZON = 1000
OPSET = 13
IR_VERSION = 8
# Larger than any engineered feature can be (see `export`).
FEATURE_BOUND = 64.0

SPECS = {
    "univariate": {
        "file": "univariate-h32.onnx",
        "history": 32,
        "features": ["value"],
        "train_series": 400,
        "valid_series": 40,
        "seed": 7,
        "epochs": 14,
    },
    "factory": {
        "file": "factory-h16.onnx",
        "history": 16,
        "features": list(synth.FACTORY_FEATURES),
        "train_series": 400,
        "valid_series": 40,
        "seed": 11,
        "epochs": 14,
    },
}


def dataset(family, split, count, history):
    xs, ys = [], []
    for i in range(count):
        s = synth.generate(family, split, i)
        w, idx = feat.standardised_windows(s.values, history, WARMUP, HORIZON)
        xs.append(feat.window_features(w))
        ys.append(s.labels[idx].astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


class Mlp:
    def __init__(self, rng, sizes):
        self.params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            w = rng.normal(0.0, np.sqrt(2.0 / a), (a, b)).astype(np.float32)
            self.params += [w, np.zeros(b, dtype=np.float32)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def forward(self, x):
        acts = [x]
        h = x
        n_layers = len(self.params) // 2
        for i in range(n_layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            h = h @ w + b
            if i < n_layers - 1:
                h = np.maximum(h, 0.0)
            acts.append(h)
        return h[:, 0], acts

    def step(self, x, y, pos_weight, lr, l2=1e-5):
        logit, acts = self.forward(x)
        p = 1.0 / (1.0 + np.exp(-logit))
        wgt = np.where(y > 0.5, pos_weight, 1.0).astype(np.float32)
        g = ((p - y) * wgt / wgt.sum())[:, None].astype(np.float32)
        grads = [None] * len(self.params)
        n_layers = len(self.params) // 2
        for i in reversed(range(n_layers)):
            a_in = acts[i]
            w = self.params[2 * i]
            grads[2 * i] = a_in.T @ g + l2 * w
            grads[2 * i + 1] = g.sum(axis=0)
            if i > 0:
                g = (g @ w.T) * (acts[i] > 0)
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for k, (p_, g_) in enumerate(zip(self.params, grads)):
            self.m[k] = b1 * self.m[k] + (1 - b1) * g_
            self.v[k] = b2 * self.v[k] + (1 - b2) * g_ * g_
            mh = self.m[k] / (1 - b1**self.t)
            vh = self.v[k] / (1 - b2**self.t)
            p_ -= (lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        wloss = -(wgt * (y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))).sum() / wgt.sum()
        return float(wloss)

    def predict(self, x, batch=65536):
        out = []
        for i in range(0, len(x), batch):
            logit, _ = self.forward(x[i : i + batch])
            out.append(1.0 / (1.0 + np.exp(-logit)))
        return np.concatenate(out)


def export(path, spec, mlp, mu, sigma):
    h = spec["history"]
    nf = len(spec["features"])
    f32 = TensorProto.FLOAT
    # The training standardisation of the engineered features is folded into
    # the first dense layer: (x - mu) / sigma @ W + b == x @ (W / sigma) + b'.
    w0, b0 = mlp.params[0], mlp.params[1]
    w0_folded = (w0 / sigma[:, None]).astype(np.float32)
    b0_folded = (b0 - (mu / sigma) @ w0).astype(np.float32)
    params = [w0_folded, b0_folded] + mlp.params[2:]
    inits = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "s_lo"),
        numpy_helper.from_array(np.array([h], dtype=np.int64), "e_hi"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "s_0"),
        numpy_helper.from_array(np.array([h - 1], dtype=np.int64), "e_lo"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_1"),
        numpy_helper.from_array(np.array([-1, nf * h], dtype=np.int64), "shape_flat"),
        numpy_helper.from_array(np.array([-1, nf * (h - 1)], dtype=np.int64), "shape_diff"),
        numpy_helper.from_array(np.array([-1, nf], dtype=np.int64), "shape_per_feature"),
        numpy_helper.from_array(np.array(feat.EPS_LOG, dtype=np.float32), "eps"),
        numpy_helper.from_array(np.full((h, 1), 1.0 / h, dtype=np.float32), "mean_of_values"),
        numpy_helper.from_array(np.full((h - 1, 1), 1.0 / (h - 1), dtype=np.float32), "mean_of_diffs"),
        numpy_helper.from_array(np.array(-FEATURE_BOUND, dtype=np.float32), "feat_min"),
        numpy_helper.from_array(np.array(FEATURE_BOUND, dtype=np.float32), "feat_max"),
    ]
    # Every slice and reduction runs over the last, contiguous axis of a 2-D
    # [batch * features, history] view of the window: tract 0.23 reduces that
    # layout several times faster than the middle axis of a 3-D tensor. The
    # means are products with a constant column of 1/n, which tract runs on
    # its matrix kernels about twice as fast as a ReduceMean.
    # The input is not clipped here: the transform clips standardised values
    # to +-INPUT_CLIP (features.standardised_windows), where it costs nothing;
    # as a graph operator it took 7% of tract's time per batch.
    if nf == 1:
        nodes = [helper.make_node("Identity", ["window"], ["w"])]
    else:
        inits += [
            numpy_helper.from_array(np.array([-1, h, nf], dtype=np.int64), "shape_window"),
            numpy_helper.from_array(np.array([-1, h], dtype=np.int64), "shape_series"),
        ]
        nodes = [
            helper.make_node("Reshape", ["window", "shape_window"], ["w_hf"]),
            helper.make_node("Transpose", ["w_hf"], ["w_fh"], perm=[0, 2, 1]),
            helper.make_node("Reshape", ["w_fh", "shape_series"], ["w"]),
        ]
    nodes += [
        helper.make_node("Reshape", ["w", "shape_flat"], ["flat"]),
        helper.make_node("Slice", ["w", "s_lo", "e_hi", "axis_1"], ["w_next"]),
        helper.make_node("Slice", ["w", "s_0", "e_lo", "axis_1"], ["w_prev"]),
        helper.make_node("Sub", ["w_next", "w_prev"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["abs_diff"]),
        helper.make_node("Reshape", ["abs_diff", "shape_diff"], ["abs_diff_flat"]),
        helper.make_node("MatMul", ["abs_diff", "mean_of_diffs"], ["mad"]),
        helper.make_node("Add", ["mad", "eps"], ["mad_eps"]),
        helper.make_node("Log", ["mad_eps"], ["log_mad_s"]),
        helper.make_node("Reshape", ["log_mad_s", "shape_per_feature"], ["log_mad"]),
        helper.make_node("MatMul", ["w", "mean_of_values"], ["w_mean"]),
        helper.make_node("Sub", ["w", "w_mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "centred"], ["sq"]),
        helper.make_node("MatMul", ["sq", "mean_of_values"], ["var"]),
        helper.make_node("Sqrt", ["var"], ["sd"]),
        helper.make_node("Add", ["sd", "eps"], ["sd_eps"]),
        helper.make_node("Log", ["sd_eps"], ["log_sd_s"]),
        helper.make_node("Reshape", ["log_sd_s", "shape_per_feature"], ["log_sd"]),
        helper.make_node("Concat", ["flat", "abs_diff_flat", "log_mad", "log_sd"], ["feat_parts"], axis=1),
        # An identity on the transform's clipped windows (values within
        # +-20, differences within 40, the logs within [-7, 4]) that bounds
        # the features of any other input and keeps the feature vector in one
        # tensor: fed straight from the Concat, tract 0.23 splits the first
        # dense layer into one matrix product per part (two with k = 1),
        # which made the whole model 1.3-1.5x slower.
        helper.make_node("Clip", ["feat_parts", "feat_min", "feat_max"], ["feat"]),
    ]
    prev = "feat"
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        inits.append(numpy_helper.from_array(w, f"dense{i}_w"))
        inits.append(numpy_helper.from_array(b, f"dense{i}_b"))
        out = f"dense{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"dense{i}_w", f"dense{i}_b"], [out]))
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [out], [f"relu{i}"]))
            prev = f"relu{i}"
        else:
            prev = out
    nodes.append(helper.make_node("Sigmoid", [prev], ["score"]))
    graph = helper.make_graph(
        nodes,
        spec["file"].removesuffix(".onnx"),
        [helper.make_tensor_value_info("window", f32, ["batch", h * nf])],
        [helper.make_tensor_value_info("score", f32, ["batch", 1])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="sluice-models",
        doc_string=(
            f"Anomaly score of the newest row of a window of {h} rows x {nf} features "
            f"({', '.join(spec['features'])}), standardised per key online."
        ),
    )
    model.ir_version = IR_VERSION
    meta = {
        "sluice.history": str(h),
        "sluice.features": ",".join(spec["features"]),
        "sluice.warmup": str(WARMUP),
        "sluice.horizon": str(HORIZON),
    }
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model


def evaluate(mlp, mu, sigma, family, history, split, count, threshold=0.5):
    tally = Tally()
    for i in range(count):
        s = synth.generate(family, split, i)
        w, idx = feat.standardised_windows(s.values, history, WARMUP, HORIZON)
        score = np.zeros(len(s.labels))
        scored = np.zeros(len(s.labels), dtype=bool)
        score[idx] = mlp.predict((feat.window_features(w) - mu) / sigma)
        scored[idx] = True
        tally.add(s.labels, score >= threshold, scored)
    return tally.report()


def train(name, out_dir):
    spec = SPECS[name]
    h = spec["history"]
    t0 = time.time()
    x, y = dataset(name, "train", spec["train_series"], h)
    print(f"[{name}] {len(x)} training windows, {y.mean():.3f} anomalous, {time.time() - t0:.0f}s")
    mu = x.mean(axis=0)
    sigma = x.std(axis=0) + 1e-3
    xn = ((x - mu) / sigma).astype(np.float32)
    rng = np.random.default_rng(spec["seed"])
    mlp = Mlp(rng, [x.shape[1], 64, 32, 1])
    pos_weight = float((1 - y.mean()) / max(y.mean(), 1e-6)) ** 0.5
    batch = 1024
    steps = len(xn) // batch
    for epoch in range(spec["epochs"]):
        lr = 2e-3 * (0.5 ** (epoch // 5))
        order = rng.permutation(len(xn))
        losses = []
        for k in range(steps):
            sel = order[k * batch : (k + 1) * batch]
            losses.append(mlp.step(xn[sel], y[sel], pos_weight, lr))
        print(f"[{name}] epoch {epoch + 1}: loss {np.mean(losses):.4f} ({time.time() - t0:.0f}s)")
    report = evaluate(mlp, mu, sigma, name, h, "valid", spec["valid_series"])
    print(f"[{name}] validation: {json.dumps(report)}")
    path = os.path.join(out_dir, spec["file"])
    export(path, spec, mlp, mu, sigma)
    print(f"[{name}] wrote {path} ({os.path.getsize(path)} bytes)")
    check_against_onnxruntime(path, mlp, mu, sigma, name, h)


def check_against_onnxruntime(path, mlp, mu, sigma, family, history):
    import onnxruntime as ort

    s = synth.generate(family, "valid", 0)
    w, _ = feat.standardised_windows(s.values, history, WARMUP, HORIZON)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(["score"], {"window": w.reshape(len(w), -1)})[0][:, 0]
    want = mlp.predict((feat.window_features(w) - mu) / sigma)
    err = float(np.abs(got - want).max())
    print(f"[{family}] onnxruntime vs numpy: max abs diff {err:.2e}")
    assert err < 1e-4, err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=list(SPECS))
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in SPECS:
        if args.only in (None, name):
            train(name, args.out)


if __name__ == "__main__":
    main()
