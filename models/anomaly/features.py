"""What the `anomaly` transform feeds a model, reproduced in numpy.

The transform keeps, per key and per feature, running statistics updated one
row at a time, and scores row ``t`` with the last ``history`` raw values
standardised by the statistics *before* row ``t`` was added (so a spike does
not inflate its own scale). This module mirrors that algorithm exactly so the
models are trained on the inputs they will see in production; the Rust side
is ``plugins/anomaly/src/anomaly/state.rs`` (`Normalizer`).

Per feature, with ``n`` rows seen so far, mean ``m`` and variance ``v``:
  * scoring is possible once ``n >= warmup`` (and ``warmup >= history``);
  * ``z = (x - m) / max(sqrt(v), 1e-9 + 1e-6 * |m|)``, clipped to
    ``+-INPUT_CLIP`` (the graphs do not clip their input);
  * update with ``a = max(1 / (n + 1), 1 / horizon)``; once ``n >= warmup``
    the value is first clipped to ``m +- 4 sqrt(v)`` so anomalies barely move
    the statistics; ``d = x - m; m += a d; v = (1 - a)(v + a d^2)``.

The engineered features (``window_features``) are computed inside the ONNX
graph; the numpy version here is used for training and for parity checks.
"""
import math

import numpy as np

CLIP_SIGMAS = 4.0
INPUT_CLIP = 20.0
EPS_LOG = 1e-3


def sd_floor(mean):
    return 1e-9 + 1e-6 * abs(mean)


def online_stats(x, warmup, horizon):
    """Per-row (mean, sd, scorable) before each row is added. ``x``: [n, F]."""
    n, nf = x.shape
    means = np.zeros((n, nf))
    sds = np.ones((n, nf))
    scorable = np.zeros(n, dtype=bool)
    alpha = 1.0 / horizon
    for f in range(nf):
        m = 0.0
        v = 0.0
        col = x[:, f].tolist()
        for t in range(n):
            if t >= warmup:
                means[t, f] = m
                sds[t, f] = max(math.sqrt(v), sd_floor(m))
            xi = col[t]
            a = max(1.0 / (t + 1), alpha)
            if t >= warmup:
                s = math.sqrt(v)
                xi = min(max(xi, m - CLIP_SIGMAS * s), m + CLIP_SIGMAS * s)
            d = xi - m
            m += a * d
            v = (1.0 - a) * (v + a * d * d)
    scorable[warmup:] = True
    return means, sds, scorable


def standardised_windows(x, history, warmup, horizon):
    """Windows ``[m, history, F]`` (float32) and the row index each one scores."""
    assert warmup >= history
    means, sds, scorable = online_stats(x, warmup, horizon)
    idx = np.nonzero(scorable)[0]
    view = np.lib.stride_tricks.sliding_window_view(x, history, axis=0)  # [n-h+1, F, h]
    raw = view[idx - history + 1].transpose(0, 2, 1)  # [m, h, F]
    z = np.clip((raw - means[idx][:, None, :]) / sds[idx][:, None, :], -INPUT_CLIP, INPUT_CLIP)
    return z.astype(np.float32), idx


def window_features(w):
    """The engineered features the ONNX graph computes from a window ``[m, h, F]``.

    Feature-major: per feature its ``h`` values, then per feature its ``h - 1``
    absolute differences, then per feature the log mean absolute difference,
    then per feature the log standard deviation. (The graph transposes the
    window to ``[m, F, h]`` so every reduction runs over the contiguous axis.)
    """
    w = np.clip(w, -INPUT_CLIP, INPUT_CLIP).astype(np.float32).transpose(0, 2, 1)  # [m, F, h]
    m, nf, h = w.shape
    flat = w.reshape(m, nf * h)
    ad = np.abs(w[:, :, 1:] - w[:, :, :-1])
    ad_flat = ad.reshape(m, nf * (h - 1))
    lmad = np.log(ad.mean(axis=2) + np.float32(EPS_LOG))
    c = w - w.mean(axis=2, keepdims=True)
    lstd = np.log(np.sqrt((c * c).mean(axis=2)) + np.float32(EPS_LOG))
    return np.concatenate([flat, ad_flat, lmad, lstd], axis=1).astype(np.float32)
