//! Incidents, not rows: one alert per episode of a key.
//!
//! An incident opens on the first row whose decision value reaches the
//! threshold, stays open while rows stay at or above the lower `release`
//! value (hysteresis), and closes on the first row below it once `quiet`
//! has passed since the last high row. After it closes, the key may not
//! open another for `cooldown`, so the tail of one episode does not count
//! as the next. Spans are rows, or event time when given as a duration.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use sluice_core::HumanDuration;

/// A length in rows or in event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// This many rows of the key.
    Rows(u64),
    /// This much event time (processing time when the stream has none).
    Time(Duration),
}

impl Span {
    /// Whether `rows` rows or `ms` milliseconds cover this span.
    fn covered(self, rows: u64, ms: i64) -> bool {
        match self {
            Span::Rows(n) => rows >= n,
            Span::Time(d) => ms >= 0 && ms as u128 >= d.as_millis(),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Rows(n) => write!(f, "{n} rows"),
            Span::Time(d) => write!(f, "{d:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of rows such as `100` or a duration such as `10m`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span::Rows(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(Span::Rows)
                    .map_err(|_| E::custom(format!("`{v}` rows: expected zero or more")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                if let Ok(n) = v.trim().parse::<u64>() {
                    return Ok(Span::Rows(n));
                }
                v.parse::<HumanDuration>()
                    .map(|d| Span::Time(d.get()))
                    .map_err(|e| E::custom(format!("`{v}`: {e}; or a number of rows")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Incident settings shared by every key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IncidentSpec {
    /// Decision value at or above which an incident opens.
    pub open: f64,
    /// Decision value at or above which an open incident stays open.
    pub release: f64,
    /// Time below `release` after the last high row before it closes.
    pub quiet: Span,
    /// Time after a close during which the key opens no new incident.
    pub cooldown: Span,
}

/// What a row means for its key's incidents.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mark {
    /// Outside any incident.
    Outside,
    /// The row opened the incident with this id.
    Opened(Box<str>),
    /// The row is inside the open incident.
    Inside(Box<str>),
    /// The row closed the incident.
    Closed {
        /// The incident's id.
        id: Box<str>,
        /// Highest raw score seen during the incident.
        peak: f64,
        /// Event time from the opening row to this row.
        duration_ms: i64,
    },
}

#[derive(Debug, Clone)]
struct Open {
    id: Box<str>,
    start_ms: i64,
    peak: f64,
    last_high_row: u64,
    last_high_ms: i64,
}

/// Incident state of one key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Incidents {
    open: Option<Open>,
    /// Decided rows seen.
    rows: u64,
    /// Row and time of the last close, for the cool-down.
    closed_at: Option<(u64, i64)>,
    /// Openings refused by the cool-down.
    pub suppressed: u64,
}

impl Incidents {
    /// Feeds one decided row: `value` is what the thresholds apply to (the
    /// likelihood, or the raw score without calibration), `score` the raw
    /// score for the peak. `name` names the key in the incident id.
    pub fn observe(
        &mut self,
        value: f64,
        score: f64,
        now_ms: i64,
        name: &str,
        spec: &IncidentSpec,
    ) -> Mark {
        let row = self.rows;
        self.rows += 1;
        if let Some(open) = &mut self.open {
            open.peak = open.peak.max(score);
            if value >= spec.release {
                open.last_high_row = row;
                open.last_high_ms = now_ms;
                return Mark::Inside(open.id.clone());
            }
            if !spec
                .quiet
                .covered(row - open.last_high_row, now_ms - open.last_high_ms)
            {
                return Mark::Inside(open.id.clone());
            }
            let mark = Mark::Closed {
                id: open.id.clone(),
                peak: open.peak,
                duration_ms: now_ms - open.start_ms,
            };
            self.open = None;
            self.closed_at = Some((row, now_ms));
            return mark;
        }
        if value < spec.open {
            return Mark::Outside;
        }
        if let Some((r, t)) = self.closed_at
            && !spec.cooldown.covered(row - r, now_ms - t)
        {
            self.suppressed += 1;
            return Mark::Outside;
        }
        let id: Box<str> = format!("{name}@{now_ms}").into();
        self.open = Some(Open {
            id: id.clone(),
            start_ms: now_ms,
            peak: score,
            last_high_row: row,
            last_high_ms: now_ms,
        });
        Mark::Opened(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(quiet: Span, cooldown: Span) -> IncidentSpec {
        IncidentSpec {
            open: 0.9,
            release: 0.5,
            quiet,
            cooldown,
        }
    }

    fn run(values: &[f64], spec: &IncidentSpec) -> Vec<Mark> {
        let mut s = Incidents::default();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| s.observe(*v, *v, i as i64 * 1000, "k", spec))
            .collect()
    }

    fn opened(marks: &[Mark]) -> Vec<usize> {
        marks
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m, Mark::Opened(_)))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn one_episode_with_dips_is_one_incident() {
        let s = spec(Span::Rows(3), Span::Rows(0));
        // Crosses, dips below release for 2 rows (less than quiet), rises.
        let v = [0.1, 0.95, 0.6, 0.2, 0.3, 0.92, 0.7, 0.1, 0.1, 0.1, 0.1];
        let m = run(&v, &s);
        assert_eq!(opened(&m), vec![1]);
        assert_eq!(m[1], Mark::Opened("k@1000".into()));
        assert_eq!(m[4], Mark::Inside("k@1000".into()));
        // Last high row is 6; the first row with 3 rows of quiet is 9.
        assert_eq!(
            m[9],
            Mark::Closed {
                id: "k@1000".into(),
                peak: 0.95,
                duration_ms: 8000
            }
        );
        assert_eq!(m[10], Mark::Outside);
    }

    #[test]
    fn the_cool_down_stops_a_reopening_and_counts_it() {
        let s = spec(Span::Rows(1), Span::Rows(5));
        let mut st = Incidents::default();
        let v = [0.95, 0.1, 0.95, 0.95, 0.1, 0.1, 0.1, 0.95];
        let m: Vec<Mark> = v
            .iter()
            .enumerate()
            .map(|(i, x)| st.observe(*x, *x, i as i64, "k", &s))
            .collect();
        assert!(matches!(m[1], Mark::Closed { .. }));
        assert_eq!(opened(&m), vec![0, 7]);
        assert_eq!(st.suppressed, 2);
    }

    #[test]
    fn spans_can_be_event_time() {
        // Rows every second; quiet 2.5 s means the third quiet row closes.
        let s = spec(Span::Time(Duration::from_millis(2500)), Span::Rows(0));
        let m = run(&[0.95, 0.1, 0.1, 0.1, 0.1], &s);
        assert_eq!(m[2], Mark::Inside("k@0".into()));
        assert!(matches!(m[3], Mark::Closed { .. }));
    }

    #[test]
    fn spans_parse_from_rows_or_durations() {
        let rows: Span = serde_saphyr::from_str("100").unwrap();
        assert_eq!(rows, Span::Rows(100));
        let time: Span = serde_saphyr::from_str("10m").unwrap();
        assert_eq!(time, Span::Time(Duration::from_secs(600)));
        let err = serde_saphyr::from_str::<Span>("soon")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`soon`"), "{err}");
    }
}
