//! How well flags and incidents match labelled anomalies.
//!
//! Definitions (the same as `models/anomaly/metrics.py`), per key:
//! - *point level*: every row with a decision (`is_anomaly` not null) is a
//!   prediction against its label: precision, recall, F1;
//! - *event level*: an event is a maximal run of label-1 rows, an alarm a
//!   maximal run of flagged rows. An event is detected when a row in
//!   `[start, end + tolerance)` is flagged; its detection delay is the
//!   distance from the event start to that row. An alarm overlapping no such
//!   range is a false alarm.
//!
//! When the transform's output has an `incident_start` column, an alarm is an
//! incident instead: it opens on a row with `incident_start` true and lasts
//! while the following rows carry its `incident_id`; "flagged" above then
//! reads "in an incident". Point-level figures always use `is_anomaly`.
//!
//! Also per key: the NAB standard score ([`super::nab`]) with the first row
//! of each alarm as a detection, and, on series whose labels are all 0, the
//! alarms per 10,000 rows with a decision.

use std::fmt;

use super::nab::{self, NabScore, runs};

/// Counts behind precision, recall, F1 and detection delay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    /// Rows read.
    pub rows: u64,
    /// Rows with a decision (`is_anomaly` not null).
    pub decided_rows: u64,
    /// Flagged rows labelled anomalous.
    pub true_positives: u64,
    /// Flagged rows labelled normal.
    pub false_positives: u64,
    /// Unflagged decided rows labelled anomalous.
    pub false_negatives: u64,
    /// Labelled events (maximal runs of anomalous rows).
    pub events: u64,
    /// Events with a flagged row in `[start, end + tolerance)`.
    pub detected_events: u64,
    /// Alarms (maximal runs of flagged rows).
    pub alarms: u64,
    /// Alarms overlapping no event.
    pub false_alarms: u64,
    /// Detection delay of each detected event, in rows.
    pub delays_rows: Vec<u64>,
    /// Detection delay of each detected event, in milliseconds of row time.
    pub delays_ms: Vec<i64>,
    /// Alarms are incidents (`incident_start`), not runs of flagged rows.
    pub alarms_from_incidents: bool,
    /// NAB standard-profile score, alarm starts as detections.
    pub nab: NabScore,
    /// Series (keys or files) whose labels are all 0.
    pub clean_series: u64,
    /// Rows with a decision in those series.
    pub clean_rows: u64,
    /// Alarms in those series: every one is a false alert.
    pub clean_alarms: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

impl EvalReport {
    /// Flagged rows that are anomalous / flagged rows.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    /// Anomalous rows flagged / anomalous decided rows.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
    /// Point-level F1.
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
    /// Alarms overlapping an event / alarms.
    pub fn event_precision(&self) -> f64 {
        ratio(self.alarms - self.false_alarms, self.alarms)
    }
    /// Detected events / events.
    pub fn event_recall(&self) -> f64 {
        ratio(self.detected_events, self.events)
    }
    /// Event-level F1.
    pub fn event_f1(&self) -> f64 {
        f1(self.event_precision(), self.event_recall())
    }
    /// Flagged rows / rows with a decision.
    pub fn flagged_fraction(&self) -> f64 {
        ratio(
            self.true_positives + self.false_positives,
            self.decided_rows,
        )
    }
    /// Alarms per 10,000 decided rows on series without anomalies; `None`
    /// without such rows.
    pub fn clean_alarms_per_10k_rows(&self) -> Option<f64> {
        (self.clean_rows > 0).then(|| 1e4 * self.clean_alarms as f64 / self.clean_rows as f64)
    }
    /// The `q` quantile (nearest rank) of the detection delays in rows.
    pub fn delay_rows_quantile(&self, q: f64) -> Option<u64> {
        nearest_rank(&self.delays_rows, q)
    }
    /// The `q` quantile (nearest rank) of the detection delays in ms.
    pub fn delay_ms_quantile(&self, q: f64) -> Option<i64> {
        nearest_rank(&self.delays_ms, q)
    }
    /// Adds the counts of `other` (another file or key).
    pub fn merge(&mut self, other: &EvalReport) {
        self.rows += other.rows;
        self.decided_rows += other.decided_rows;
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.false_negatives += other.false_negatives;
        self.events += other.events;
        self.detected_events += other.detected_events;
        self.alarms += other.alarms;
        self.false_alarms += other.false_alarms;
        self.delays_rows.extend_from_slice(&other.delays_rows);
        self.delays_ms.extend_from_slice(&other.delays_ms);
        self.alarms_from_incidents |= other.alarms_from_incidents;
        self.nab.merge(&other.nab);
        self.clean_series += other.clean_series;
        self.clean_rows += other.clean_rows;
        self.clean_alarms += other.clean_alarms;
    }

    /// Adds one series: per row its label, the transform's output and time.
    pub(crate) fn add_series(
        &mut self,
        labels: &[bool],
        out: &[RowOutput],
        times: &[i64],
        tolerance: usize,
    ) {
        let n = labels.len();
        for (label, o) in labels.iter().zip(out) {
            let Some(flag) = o.flag else { continue };
            self.decided_rows += 1;
            match (label, flag) {
                (true, true) => self.true_positives += 1,
                (false, true) => self.false_positives += 1,
                (true, false) => self.false_negatives += 1,
                (false, false) => {}
            }
        }
        let alarms = alarms(out, self.alarms_from_incidents);
        let mut active = vec![false; n];
        let mut detections = vec![false; n];
        for &(s, e) in &alarms {
            active[s..e].fill(true);
            detections[s] = true;
        }
        let windows: Vec<(usize, usize)> = runs(labels)
            .into_iter()
            .map(|(s, e)| (s, (e + tolerance).min(n)))
            .collect();
        for &(s, e) in &windows {
            self.events += 1;
            if let Some(hit) = (s..e).find(|&i| active[i]) {
                self.detected_events += 1;
                self.delays_rows.push((hit - s) as u64);
                self.delays_ms.push(times[hit] - times[s]);
            }
        }
        for &(s, e) in &alarms {
            self.alarms += 1;
            if !windows.iter().any(|&(ws, we)| s < we && ws < e) {
                self.false_alarms += 1;
            }
        }
        self.nab
            .merge(&nab::score_series(labels, &detections, &nab::STANDARD));
        if windows.is_empty() {
            self.clean_series += 1;
            self.clean_rows += out.iter().filter(|o| o.flag.is_some()).count() as u64;
            self.clean_alarms += alarms.len() as u64;
        }
    }
}

/// What the transform said about one input row.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowOutput {
    /// `is_anomaly`.
    pub(crate) flag: Option<bool>,
    /// `incident_start`.
    pub(crate) start: Option<bool>,
    /// `incident_id`.
    pub(crate) incident: Option<String>,
}

/// Alarms of one series as `(first row, end exclusive)`: incidents, or runs
/// of flagged rows.
fn alarms(out: &[RowOutput], incidents: bool) -> Vec<(usize, usize)> {
    if !incidents {
        let flagged: Vec<bool> = out.iter().map(|o| o.flag == Some(true)).collect();
        return runs(&flagged);
    }
    let mut alarms = Vec::new();
    for (s, o) in out.iter().enumerate() {
        if o.start != Some(true) {
            continue;
        }
        let mut e = s + 1;
        if let Some(id) = &o.incident {
            while e < out.len()
                && out[e].start != Some(true)
                && out[e].incident.as_ref() == Some(id)
            {
                e += 1;
            }
        }
        alarms.push((s, e));
    }
    alarms
}

fn nearest_rank<T: Copy + Ord>(values: &[T], q: f64) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |x: Option<i64>| {
            x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}s", v as f64 / 1000.0))
        };
        let r = |x: Option<u64>| x.map_or_else(|| "-".to_owned(), |v| v.to_string());
        writeln!(
            f,
            "rows: {} ({} with a decision)",
            self.rows, self.decided_rows
        )?;
        writeln!(
            f,
            "point level: precision {:.3}, recall {:.3}, F1 {:.3} (TP {}, FP {}, FN {})",
            self.precision(),
            self.recall(),
            self.f1(),
            self.true_positives,
            self.false_positives,
            self.false_negatives
        )?;
        writeln!(
            f,
            "event level: precision {:.3}, recall {:.3}, F1 {:.3} ({}/{} events detected, {} alarms, {} false)",
            self.event_precision(),
            self.event_recall(),
            self.event_f1(),
            self.detected_events,
            self.events,
            self.alarms,
            self.false_alarms
        )?;
        writeln!(
            f,
            "flagged rows: {:.2}% of rows with a decision; alarms are {}",
            100.0 * self.flagged_fraction(),
            if self.alarms_from_incidents {
                "incidents (`incident_start`)"
            } else {
                "runs of flagged rows"
            }
        )?;
        let nab = &self.nab;
        writeln!(
            f,
            "NAB standard: {} (raw {:.3}, null {:.1}, perfect {:.1}; {}/{} windows detected, {} false positives, {} detections in probation)",
            nab.normalized()
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")),
            nab.raw,
            nab.null,
            nab.perfect,
            nab.detected_windows,
            nab.windows,
            nab.false_positives,
            nab.probation_detections
        )?;
        writeln!(
            f,
            "series without anomalies: {}, {} alarms in {} rows with a decision ({} per 10k rows)",
            self.clean_series,
            self.clean_alarms,
            self.clean_rows,
            self.clean_alarms_per_10k_rows()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
        )?;
        write!(
            f,
            "detection delay: median {} rows ({}), p90 {} rows ({}), max {} rows ({})",
            r(self.delay_rows_quantile(0.5)),
            q(self.delay_ms_quantile(0.5)),
            r(self.delay_rows_quantile(0.9)),
            q(self.delay_ms_quantile(0.9)),
            r(self.delay_rows_quantile(1.0)),
            q(self.delay_ms_quantile(1.0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(flags: &[Option<bool>]) -> Vec<RowOutput> {
        flags
            .iter()
            .map(|&flag| RowOutput {
                flag,
                ..RowOutput::default()
            })
            .collect()
    }

    /// Rows from `(is_anomaly, incident_start, incident_id)`.
    fn incident_rows(rows: &[(bool, bool, Option<&str>)]) -> Vec<RowOutput> {
        rows.iter()
            .map(|&(flag, start, id)| RowOutput {
                flag: Some(flag),
                start: Some(start),
                incident: id.map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn runs_finds_maximal_true_stretches() {
        assert_eq!(
            runs(&[false, true, true, false, true]),
            vec![(1, 3), (4, 5)]
        );
        assert!(runs(&[false, false]).is_empty());
    }

    #[test]
    fn event_metrics_count_detections_delays_and_false_alarms() {
        let mut r = EvalReport::default();
        //            0      1      2     3     4      5      6      7     8      9
        let labels = [
            false, false, true, true, true, false, false, false, false, false,
        ];
        let flags = [
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            None,
        ];
        let times: Vec<i64> = (0..10).map(|i| i * 100).collect();
        r.add_series(&labels, &flagged(&flags), &times, 1);
        assert_eq!(
            (r.true_positives, r.false_positives, r.false_negatives),
            (2, 1, 1)
        );
        assert_eq!((r.events, r.detected_events), (1, 1));
        assert_eq!(r.delays_rows, vec![1]);
        assert_eq!(r.delays_ms, vec![100]);
        assert_eq!((r.alarms, r.false_alarms), (2, 1));
        assert_eq!(r.decided_rows, 9);
        assert!((r.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.event_recall() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_alarm_just_after_an_event_is_within_tolerance() {
        let mut r = EvalReport::default();
        let labels = [true, false, false];
        let flags = [Some(false), Some(true), Some(false)];
        r.add_series(&labels, &flagged(&flags), &[0, 1, 2], 1);
        assert_eq!((r.detected_events, r.false_alarms), (1, 0));
    }

    #[test]
    fn an_incident_is_one_alarm_however_its_flags_flicker() {
        let mut r = EvalReport {
            alarms_from_incidents: true,
            ..EvalReport::default()
        };
        let labels = [false, false, false, false, false, false];
        let rows = incident_rows(&[
            (false, false, None),
            (true, true, Some("a")),
            (false, false, Some("a")),
            (true, false, Some("a")),
            (false, false, None),
            (true, true, Some("b")),
        ]);
        r.add_series(&labels, &rows, &[0, 1, 2, 3, 4, 5], 0);
        assert_eq!((r.alarms, r.false_alarms), (2, 2));
        assert_eq!(r.false_positives, 3);
    }

    #[test]
    fn an_open_incident_detects_an_event_it_runs_into() {
        let mut r = EvalReport {
            alarms_from_incidents: true,
            ..EvalReport::default()
        };
        let labels = [false, false, true, true];
        let rows = incident_rows(&[
            (false, false, None),
            (true, true, Some("a")),
            (false, false, Some("a")),
            (false, false, Some("a")),
        ]);
        r.add_series(&labels, &rows, &[0, 10, 20, 30], 0);
        assert_eq!((r.detected_events, r.delays_rows.clone()), (1, vec![0]));
        assert_eq!((r.alarms, r.false_alarms), (1, 0));
    }

    #[test]
    fn alarms_on_series_without_anomalies_count_per_10k_rows() {
        let mut r = EvalReport::default();
        let mut flags = vec![Some(false); 2000];
        flags[..100].fill(None);
        flags[500] = Some(true);
        flags[501] = Some(true);
        flags[900] = Some(true);
        r.add_series(&[false; 2000], &flagged(&flags), &[0; 2000], 10);
        assert_eq!((r.clean_series, r.clean_rows, r.clean_alarms), (1, 1900, 2));
        assert!((r.clean_alarms_per_10k_rows().unwrap() - 2e4 / 1900.0).abs() < 1e-9);
        // Two alarm starts outside any window, none preceding: 2 x -0.11.
        assert!((r.nab.raw + 0.22).abs() < 1e-12);
        assert_eq!(r.nab.normalized(), None);
    }

    #[test]
    fn nab_counts_the_first_row_of_each_alarm() {
        // 1000 rows, event at 500-509: window 450-550.
        let labels: Vec<bool> = (0..1000).map(|i| (500..510).contains(&i)).collect();
        let mut flags = vec![Some(false); 1000];
        flags[450..470].fill(Some(true));
        let mut r = EvalReport::default();
        r.add_series(&labels, &flagged(&flags), &[0; 1000], 10);
        assert!((r.nab.raw - 1.0).abs() < 1e-12);
        assert_eq!(r.nab.normalized(), Some(100.0));
        assert_eq!(r.clean_series, 0);
    }
}
