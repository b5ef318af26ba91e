#!/usr/bin/env python3
"""A numpy replica of the `anomaly` transform's default decisions, for
choosing their settings on the corpus of ``corpus.py`` quickly.

It mirrors, per series (one key): the running statistics with rebasing
(``plugins/anomaly/src/anomaly/state.rs``), the univariate model's score
(onnxruntime), the per-key likelihood with the memory of short spikes
(``likelihood.rs``), incidents (``incident.rs``) and the NAB standard score
(``nab.rs``). ``sluice eval-anomaly`` gives the figures that are reported;
this script only ranks settings (its NAB differs from the Rust replay by a
few points: it keeps rows with missing values out of the series instead of
scoring around them).

Usage (after ``python corpus.py --out /tmp/corpus``, in a venv with
requirements.txt):
  python decisions.py /tmp/corpus tuning --quiet 40 --cooldown 150
"""
import argparse
import csv
import glob
import math
import os
from collections import deque

import numpy as np
import onnxruntime as ort

import features
import metrics

HISTORY, WARMUP, HORIZON = 32, 128, 1000


def scores(sess, x, rebase_sigmas, rebase_rows):
    """Raw scores of the univariate model, NaN before warm-up."""
    n = len(x)
    m = v = 0.0
    away = 0
    means, sds = np.zeros(n), np.ones(n)
    for t in range(n):
        if t >= WARMUP:
            means[t], sds[t] = m, max(math.sqrt(v), features.sd_floor(m))
        xi, a = x[t], max(1.0 / (t + 1), 1.0 / HORIZON)
        if t >= WARMUP:
            s = math.sqrt(v)
            xi = min(max(xi, m - features.CLIP_SIGMAS * s), m + features.CLIP_SIGMAS * s)
        d = xi - m
        m += a * d
        v = (1 - a) * (v + a * d * d)
        if t >= WARMUP and rebase_rows > 0:
            recent = x[t - HISTORY + 1:t + 1].mean()
            away = away + 1 if abs(recent - m) > rebase_sigmas * math.sqrt(v) else 0
            if away >= rebase_rows:
                m, away = recent, 0
    out = np.full(n, np.nan)
    idx = np.arange(WARMUP, n)
    if len(idx):
        raw = np.lib.stride_tricks.sliding_window_view(x, HISTORY)[idx - HISTORY + 1]
        z = np.clip((raw - means[idx][:, None]) / sds[idx][:, None], -20, 20)
        out[idx] = sess.run(None, {"window": z.astype(np.float32)})[0][:, 0]
    return out


class Decider:
    """Likelihood (Gaussian tail of the short mean of log-odds) and spikes."""

    def __init__(self, a):
        self.a = a
        self.recent = deque()
        self.n, self.mean, self.var = 0, 0.0, 0.0
        self.onsets, self.run = 0.0, 0

    def __call__(self, raw):
        a = self.a
        high = raw >= a.spike_score
        onset = high and self.run == 0
        self.run = self.run + 1 if high else 0
        spiky = self.onsets >= a.spikes
        self.onsets = self.onsets * (1 - 1 / a.long) + onset
        raw_ok = raw >= a.min_score and (not spiky or self.run >= a.persist)
        p = min(max(raw, 1e-6), 1 - 1e-6)
        if len(self.recent) == a.short:
            self.recent.popleft()
        self.recent.append(math.log(p / (1 - p)))
        avg = sum(self.recent) / len(self.recent)
        lik = None
        if self.n >= a.learn:
            sd = max(math.sqrt(self.var), a.min_std)
            lik = 1 - 0.5 * math.erfc((avg - self.mean) / sd / math.sqrt(2))
        self.n += 1
        w = max(1 / self.n, 1 / a.long)
        d = avg - self.mean
        self.mean += w * d
        self.var = (1 - w) * (self.var + w * d * d)
        return None if lik is None else (lik >= a.threshold and raw_ok)


def openings(decisions, quiet, cooldown):
    """Rows that open incidents; `decisions` is a list of (row, bool)."""
    last_high = closed = None
    out = []
    for k, (row, hit) in enumerate(decisions):
        if last_high is not None:
            if hit:
                last_high = k
            elif k - last_high >= quiet:
                last_high, closed = None, k
            continue
        if hit and not (closed is not None and k - closed < cooldown):
            last_high = k
            out.append(row)
    return out


def sigmoid(y):
    return -1.0 if y > 3 else 2 / (1 + math.exp(5 * y)) - 1


def nab(labels, detections):
    """(raw, null, perfect) of the NAB standard profile, as nab.rs."""
    n = len(labels)
    probation = min(int(0.15 * n), 750)
    runs = metrics.runs(labels)
    windows = []
    if runs:
        share = int(0.1 * n / len(runs))
        for s, e in runs:
            half = max(e - s, share) // 2
            w = [max(s - half, 0), min(s + half, n - 1)]
            if windows and w[0] <= windows[-1][1] + 1:
                windows[-1][1] = max(windows[-1][1], w[1])
            else:
                windows.append(w)
    best = [None] * len(windows)
    fp, nxt = 0.0, 0
    for i in detections:
        if i < probation:
            continue
        while nxt < len(windows) and windows[nxt][1] < i:
            nxt += 1
        if nxt < len(windows) and windows[nxt][0] <= i:
            if best[nxt] is None:
                w = windows[nxt]
                best[nxt] = sigmoid(-(w[1] - i + 1) / (w[1] - w[0] + 1)) / sigmoid(-1)
        elif nxt == 0:
            fp -= 0.11
        else:
            p = windows[nxt - 1]
            fp += 0.11 * sigmoid((i - p[1]) / max(p[1] - p[0], 1))
    scored = [b for w, b in zip(windows, best) if w[1] >= probation]
    return sum(-1.0 if b is None else b for b in scored) + fp, -len(scored), len(scored)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus")
    p.add_argument("part", choices=["tuning", "heldout"])
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--min-score", type=float, default=0.9)
    p.add_argument("--short", type=int, default=3)
    p.add_argument("--long", type=float, default=2000)
    p.add_argument("--learn", type=int, default=300)
    p.add_argument("--min-std", type=float, default=1.0)
    p.add_argument("--spike-score", type=float, default=0.95)
    p.add_argument("--spikes", type=float, default=3)
    p.add_argument("--persist", type=int, default=3)
    p.add_argument("--quiet", type=int, default=40)
    p.add_argument("--cooldown", type=int, default=150)
    p.add_argument("--rebase-sigmas", type=float, default=2.0)
    p.add_argument("--rebase-rows", type=int, default=40, help="0: no rebasing")
    a = p.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sess = ort.InferenceSession(os.path.join(here, "univariate-h32.onnx"))
    raw = null = perfect = 0.0
    clean_rows = clean_alarms = 0
    for f in sorted(glob.glob(os.path.join(a.corpus, a.part, "uni", "*.csv"))):
        rows = list(csv.DictReader(open(f)))
        x = np.array([float(r["value"]) if r["value"] not in ("", "nan") else np.nan for r in rows])
        labels = np.array([r["label"] not in ("0", "", "false") for r in rows])
        ok = np.nonzero(np.isfinite(x))[0]
        if len(ok) <= WARMUP:
            continue
        s = scores(sess, x[ok], a.rebase_sigmas, a.rebase_rows)
        decide = Decider(a)
        decided = []
        for i in range(len(ok)):
            if np.isfinite(s[i]):
                hit = decide(float(s[i]))
                if hit is not None:
                    decided.append((int(ok[i]), hit))
        opened = openings(decided, a.quiet, a.cooldown)
        if labels.any():
            r, nl, pf = nab(labels, opened)
            raw, null, perfect = raw + r, null + nl, perfect + pf
        else:
            clean_rows += len(decided)
            clean_alarms += len(opened)
    print(f"{a.part}: NAB {100 * (raw - null) / (perfect - null):.1f}, "
          f"false alerts {1e4 * clean_alarms / max(clean_rows, 1):.1f} per 10k rows")


if __name__ == "__main__":
    main()
