//! The Numenta Anomaly Benchmark's window-based score, standard profile.
//!
//! Implemented from NAB's published scorer (Lavin and Ahmad, "Evaluating
//! Real-time Anomaly Detection Algorithms: the Numenta Anomaly Benchmark",
//! 2015, and `nab/sweeper.py` of NAB 1.1, which scores the benchmark),
//! for detections that are already decided (NAB sweeps a threshold over
//! scores; here the transform has decided, so there is one threshold):
//!
//! - **Scaled sigmoid** of a relative position `y`:
//!   `σ(y) = 2 / (1 + e^(5y)) - 1` (that is `2·sigmoid(-5y) - 1`), and
//!   `σ(y) = -1` for `y > 3`.
//! - **Windows.** Inside a window `[l, r]` (rows, inclusive, width
//!   `w = r - l + 1`) a detection at row `i` has position
//!   `-(r - i + 1) / w` (-1 at the left edge) and earns
//!   `A_TP · σ(position) / σ(-1)`: exactly `A_TP` at the window's first row,
//!   less the later it comes. Only the first detection in a window counts
//!   (NAB keeps the best, which is the first: σ falls with the position);
//!   a window without one costs `-A_FN`.
//! - **False positives.** A detection outside every window costs
//!   `A_FP · σ((i - r) / (w - 1))` with `r`, `w` of the closest window
//!   ending before it (cheap right after a window, about `-A_FP` far from
//!   it), and `-A_FP` when no window precedes it. (`w - 1` is taken as 1
//!   for a one-row window, where NAB would divide by zero.)
//! - **Probation.** Detections in the first `min(floor(0.15 · n), 750)` rows
//!   of a series are ignored (NAB 1.1 caps its 15 % probationary period at
//!   15 % of 5,000 rows); a window lying wholly in it is not scored.
//! - **Standard profile:** `A_TP = 1`, `A_FP = 0.11`, `A_FN = 1`,
//!   `A_TN = 1` (NAB's `config/profiles.json`; `A_TN` enters no score).
//! - **Normalised score** `100 · (raw - null) / (perfect - null)`, where
//!   `null` is the raw score of a detector that never alerts
//!   (`-A_FN` per window) and `perfect` that of one detection at the start
//!   of each window (`A_TP` per window). Over a corpus, raw, null and
//!   perfect scores are summed over the files before normalising, as NAB's
//!   `runner.normalize` does.
//!
//! **Windows from row labels** (our choice: NAB's labels are points, ours
//! are runs). An event is a maximal run of label-1 rows. As NAB centres a
//! window of `floor(0.10 · n / events)` rows on each labelled point, the
//! window of an event is centred on its *first* row, with width
//! `max(event length, floor(0.10 · n / events))`, clipped to the series;
//! windows that overlap or touch are merged into one, as NAB's labeller
//! merges them. NAB's labeller also deletes a first window that starts in
//! the probationary period; here such a window is scored like any other
//! on its rows after probation, as the scorer itself does.

/// Costs of each outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostProfile {
    /// Reward for a window detected at its first row.
    pub tp: f64,
    /// Cost of a false positive far from any window.
    pub fp: f64,
    /// Cost of a window without a detection.
    pub fn_: f64,
    /// Weight of true negatives; NAB's score does not use it.
    pub tn: f64,
}

/// NAB's "standard" application profile.
pub const STANDARD: CostProfile = CostProfile {
    tp: 1.0,
    fp: 0.11,
    fn_: 1.0,
    tn: 1.0,
};

/// Share of a series in its probationary period.
pub const PROBATION_FRACTION: f64 = 0.15;
/// Longest probationary period: NAB's 15 % of 5,000 rows.
pub const PROBATION_MAX_ROWS: usize = 750;
/// Share of a series covered by windows, split between its events.
pub const WINDOW_FRACTION: f64 = 0.10;

/// `2 / (1 + e^(5y)) - 1`, or -1 past `y = 3`.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Rows at the start of an `n`-row series whose detections are ignored.
pub fn probation_rows(n: usize) -> usize {
    ((PROBATION_FRACTION * n as f64).floor() as usize).min(PROBATION_MAX_ROWS)
}

/// An anomaly window: rows `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First row.
    pub start: usize,
    /// Last row (inclusive).
    pub end: usize,
}

impl Window {
    fn width(&self) -> usize {
        self.end - self.start + 1
    }
}

/// The NAB windows of a series labelled per row (see the module docs).
pub fn windows(labels: &[bool]) -> Vec<Window> {
    let n = labels.len();
    let events = runs(labels);
    if events.is_empty() {
        return Vec::new();
    }
    let share = (WINDOW_FRACTION * n as f64 / events.len() as f64).floor() as usize;
    let mut out: Vec<Window> = Vec::with_capacity(events.len());
    for (s, e) in events {
        let half = (e - s).max(share) / 2;
        let w = Window {
            start: s.saturating_sub(half),
            end: (s + half).min(n - 1),
        };
        match out.last_mut() {
            Some(last) if w.start <= last.end + 1 => last.end = last.end.max(w.end),
            _ => out.push(w),
        }
    }
    out
}

/// Raw NAB score of one series or a sum over several, with what it is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NabScore {
    /// Sum of the window rewards, window misses and false-positive costs.
    pub raw: f64,
    /// Raw score of a detector that never alerts.
    pub null: f64,
    /// Raw score of a detector that alerts at the start of each window.
    pub perfect: f64,
    /// Windows scored (not wholly in the probationary period).
    pub windows: u64,
    /// Scored windows with a detection.
    pub detected_windows: u64,
    /// Detections after probation outside every window.
    pub false_positives: u64,
    /// Detections in the probationary period (ignored).
    pub probation_detections: u64,
}

impl NabScore {
    /// `100 · (raw - null) / (perfect - null)`; `None` without windows.
    pub fn normalized(&self) -> Option<f64> {
        let span = self.perfect - self.null;
        (span > 0.0).then(|| 100.0 * (self.raw - self.null) / span)
    }

    /// Adds another series or file (NAB sums before normalising).
    pub fn merge(&mut self, other: &NabScore) {
        self.raw += other.raw;
        self.null += other.null;
        self.perfect += other.perfect;
        self.windows += other.windows;
        self.detected_windows += other.detected_windows;
        self.false_positives += other.false_positives;
        self.probation_detections += other.probation_detections;
    }
}

/// Scores one series: `labels` per row, `detections` the rows where an
/// alert was raised.
///
/// # Panics
///
/// If the two slices differ in length (a caller bug).
pub fn score_series(labels: &[bool], detections: &[bool], costs: &CostProfile) -> NabScore {
    assert_eq!(
        labels.len(),
        detections.len(),
        "one detection flag per label"
    );
    let probation = probation_rows(labels.len());
    let windows = windows(labels);
    // A window ending in probation has no row to detect it on; it still
    // prices the false positives after it.
    let scored = windows.iter().filter(|w| w.end >= probation).count();
    let max_tp = scaled_sigmoid(-1.0);
    let mut best: Vec<Option<f64>> = vec![None; windows.len()];
    let mut score = NabScore {
        windows: scored as u64,
        null: -costs.fn_ * scored as f64,
        perfect: costs.tp * scored as f64,
        ..NabScore::default()
    };
    let mut fp_sum = 0.0;
    // Windows are sorted and disjoint: `next` is the first window not
    // wholly before the current row.
    let mut next = 0;
    for i in detections
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| d.then_some(i))
    {
        if i < probation {
            score.probation_detections += 1;
            continue;
        }
        while next < windows.len() && windows[next].end < i {
            next += 1;
        }
        match windows.get(next) {
            Some(w) if w.start <= i => {
                if best[next].is_none() {
                    let position = -((w.end - i + 1) as f64) / w.width() as f64;
                    best[next] = Some(costs.tp * scaled_sigmoid(position) / max_tp);
                }
            }
            _ => {
                score.false_positives += 1;
                fp_sum += match next.checked_sub(1).map(|p| windows[p]) {
                    None => -costs.fp,
                    Some(prev) => {
                        let span = (prev.width() - 1).max(1) as f64;
                        costs.fp * scaled_sigmoid((i - prev.end) as f64 / span)
                    }
                };
            }
        }
    }
    let windows_sum: f64 = windows
        .iter()
        .zip(&best)
        .filter(|(w, _)| w.end >= probation)
        .map(|(_, b)| b.unwrap_or(-costs.fn_))
        .sum();
    score.detected_windows = best.iter().filter(|b| b.is_some()).count() as u64;
    score.raw = windows_sum + fp_sum;
    score
}

/// Maximal runs of `true` as `(start, end_exclusive)`.
pub(crate) fn runs(mask: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &v) in mask.iter().enumerate() {
        match (v, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, mask.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 rows, one 10-row event at rows 500-509: probation is 150 rows,
    /// the window `floor(0.1 · 1000 / 1) = 100` rows wide centred on row
    /// 500, i.e. rows 450-550 (101 rows).
    fn one_event() -> Vec<bool> {
        (0..1000).map(|i| (500..510).contains(&i)).collect()
    }

    fn at(rows: &[usize]) -> Vec<bool> {
        (0..1000).map(|i| rows.contains(&i)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn scaled_sigmoid_has_the_published_values() {
        assert!(close(scaled_sigmoid(-1.0), 0.986_614_298_151_430_5));
        assert!(close(scaled_sigmoid(-0.5), 0.848_283_639_957_513_1));
        assert!(close(scaled_sigmoid(0.0), 0.0));
        assert!(close(scaled_sigmoid(1.0), -0.986_614_298_151_430_5));
        assert_eq!(scaled_sigmoid(3.01), -1.0);
    }

    #[test]
    fn probation_is_15_percent_capped_at_750_rows() {
        assert_eq!(probation_rows(1000), 150);
        assert_eq!(probation_rows(4001), 600);
        assert_eq!(probation_rows(10_000), 750);
    }

    #[test]
    fn window_is_centred_on_the_event_start() {
        assert_eq!(
            windows(&one_event()),
            vec![Window {
                start: 450,
                end: 550
            }]
        );
    }

    #[test]
    fn a_long_event_widens_its_window_and_edges_clip() {
        // 100 rows, events at 2-5 and 60-89: share floor(0.1·100/2) = 5,
        // widths 5 and 30, halves 2 and 15.
        let labels: Vec<bool> = (0..100)
            .map(|i| (2..6).contains(&i) || (60..90).contains(&i))
            .collect();
        assert_eq!(
            windows(&labels),
            vec![Window { start: 0, end: 4 }, Window { start: 45, end: 75 }]
        );
    }

    #[test]
    fn overlapping_windows_merge() {
        // 200 rows, events at 100 and 104: share 10, halves 5.
        let labels: Vec<bool> = (0..200).map(|i| i == 100 || i == 104).collect();
        assert_eq!(
            windows(&labels),
            vec![Window {
                start: 95,
                end: 109
            }]
        );
    }

    #[test]
    fn never_alerting_scores_zero() {
        let s = score_series(&one_event(), &at(&[]), &STANDARD);
        assert_eq!((s.raw, s.null, s.perfect), (-1.0, -1.0, 1.0));
        assert_eq!(s.normalized(), Some(0.0));
    }

    #[test]
    fn one_detection_at_each_window_start_scores_100() {
        let s = score_series(&one_event(), &at(&[450]), &STANDARD);
        assert!(close(s.raw, 1.0));
        assert!(close(s.normalized().unwrap(), 100.0));
        assert_eq!(s.detected_windows, 1);
    }

    #[test]
    fn a_false_positive_before_any_window_costs_a_fp() {
        // raw = -1 (missed window) - 0.11; normalised 100·(-1.11+1)/2.
        let s = score_series(&one_event(), &at(&[200]), &STANDARD);
        assert!(close(s.raw, -1.11));
        assert!(close(s.normalized().unwrap(), -5.5));
        assert_eq!(s.false_positives, 1);
    }

    #[test]
    fn a_false_positive_after_a_window_costs_by_its_distance() {
        // 50 rows past the window's end, (50 / (101 - 1)) = 0.5:
        // 0.11 · σ(0.5) = -0.11 · 0.84828...; one row past: σ(0.01).
        let s = score_series(&one_event(), &at(&[450, 600]), &STANDARD);
        assert!(close(s.raw, 1.0 - 0.093_311_200_395_326_42));
        let s = score_series(&one_event(), &at(&[450, 551]), &STANDARD);
        assert!(close(s.raw, 1.0 - 0.002_749_427_226_526_285));
    }

    #[test]
    fn a_late_detection_earns_less_than_an_early_one() {
        // Row 500: σ(-51/101) / σ(-1); row 540: σ(-11/101) / σ(-1).
        let mid = score_series(&one_event(), &at(&[500]), &STANDARD);
        let late = score_series(&one_event(), &at(&[540]), &STANDARD);
        assert!(close(mid.raw, 0.863_273_411_443_223_4));
        assert!(close(late.raw, 0.269_347_936_490_017_5));
    }

    #[test]
    fn only_the_first_detection_in_a_window_counts() {
        let s = score_series(&one_event(), &at(&[460, 470, 540]), &STANDARD);
        let first = score_series(&one_event(), &at(&[460]), &STANDARD);
        assert_eq!(s.raw, first.raw);
        assert_eq!(s.false_positives, 0);
    }

    #[test]
    fn detections_in_probation_are_ignored() {
        let s = score_series(&one_event(), &at(&[0, 149]), &STANDARD);
        assert_eq!(s.raw, -1.0);
        assert_eq!((s.probation_detections, s.false_positives), (2, 0));
    }

    #[test]
    fn a_window_wholly_in_probation_is_not_scored() {
        // 1000 rows, events at 10 and 600: share 50, windows 0-35 and 575-625.
        let labels: Vec<bool> = (0..1000).map(|i| i == 10 || i == 600).collect();
        let s = score_series(&labels, &at(&[]), &STANDARD);
        assert_eq!((s.windows, s.null, s.perfect), (1, -1.0, 1.0));
    }

    #[test]
    fn a_series_without_events_has_no_normalised_score() {
        let s = score_series(&[false; 1000], &at(&[200, 300]), &STANDARD);
        assert!(close(s.raw, -0.22));
        assert_eq!(s.normalized(), None);
    }

    #[test]
    fn a_corpus_is_normalised_over_summed_scores() {
        let mut total = score_series(&one_event(), &at(&[450]), &STANDARD);
        total.merge(&score_series(&one_event(), &at(&[]), &STANDARD));
        total.merge(&score_series(&[false; 1000], &at(&[200]), &STANDARD));
        // raw 1 - 1 - 0.11, null -2, perfect 2.
        assert!(close(total.normalized().unwrap(), 100.0 * 1.89 / 4.0));
    }
}
