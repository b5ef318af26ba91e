"""Point- and event-level detection metrics, the same definitions as the
Rust ``sluice eval-anomaly`` (``gateway/cli/src/eval_anomaly/report.rs``).

* point level: every scored row is a prediction; precision, recall, F1.
* event level: an *event* is a maximal run of label 1; an *alarm* is a maximal
  run of flagged rows. An event is detected when a flagged row falls in
  ``[start, end + tolerance)``; the detection delay is the distance from the
  event start to that first flagged row. An alarm is true when it overlaps
  some ``[start, end + tolerance)``. Event precision = true alarms / alarms,
  event recall = detected events / events.
"""
import numpy as np


def runs(mask):
    """Maximal runs of True as (start, end_exclusive)."""
    out = []
    start = None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


class Tally:
    def __init__(self, tolerance=10):
        self.tolerance = tolerance
        self.tp = self.fp = self.fn = 0
        self.events = self.detected = 0
        self.alarms = self.true_alarms = 0
        self.delays = []
        self.rows = 0

    def add(self, labels, flagged, scored):
        """``labels``, ``flagged``, ``scored``: arrays over the rows of one series."""
        labels = np.asarray(labels, dtype=bool)
        flagged = np.asarray(flagged, dtype=bool) & np.asarray(scored, dtype=bool)
        scored = np.asarray(scored, dtype=bool)
        self.rows += int(scored.sum())
        self.tp += int((labels & flagged & scored).sum())
        self.fp += int((~labels & flagged & scored).sum())
        self.fn += int((labels & ~flagged & scored).sum())
        n = len(labels)
        ev = runs(labels)
        windows = [(s, min(n, e + self.tolerance)) for s, e in ev]
        for s, e in windows:
            self.events += 1
            hits = np.nonzero(flagged[s:e])[0]
            if len(hits):
                self.detected += 1
                self.delays.append(int(hits[0]))
        for s, e in runs(flagged):
            self.alarms += 1
            if any(s < we and ws < e for ws, we in windows):
                self.true_alarms += 1

    def report(self):
        def f1(p, r):
            return 2 * p * r / (p + r) if p + r else 0.0

        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        ep = self.true_alarms / self.alarms if self.alarms else 0.0
        er = self.detected / self.events if self.events else 0.0
        d = np.array(self.delays) if self.delays else np.array([0])
        return {
            "rows": self.rows,
            "point_precision": p,
            "point_recall": r,
            "point_f1": f1(p, r),
            "events": self.events,
            "detected": self.detected,
            "alarms": self.alarms,
            "false_alarms": self.alarms - self.true_alarms,
            "event_precision": ep,
            "event_recall": er,
            "event_f1": f1(ep, er),
            "delay_rows_median": float(np.median(d)),
            "delay_rows_p90": float(np.percentile(d, 90)),
            "delay_rows_max": int(d.max()),
        }
