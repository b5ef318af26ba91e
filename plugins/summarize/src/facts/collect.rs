//! Accumulates the rows of an open window into bounded tallies: memory grows
//! with distinct keys (capped by `max_keys`), never with rows.

use std::collections::HashMap;
use std::ops::Range;

use arrow_cast::cast;
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, Int64Type};
use sluice_core::arrow_array::{Array, ArrayRef, RecordBatch};
use sluice_core::arrow_schema::{ArrowError, DataType, TimeUnit};

use super::{Breakdown, Counted, Facts, Peak, Severity, SeverityRules};

/// Longest key or kind value accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Which columns mean what.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Event-time column (timestamp or integer milliseconds); arrival time
    /// when absent or null.
    pub time: Option<String>,
    /// Event-kind column.
    pub kind: Option<String>,
    /// Columns counted per value, e.g. `device`, `zone`.
    pub keys: Vec<String>,
    /// Numeric columns whose maxima are reported.
    pub measures: Vec<String>,
    /// Severity rules.
    pub severity: SeverityRules,
    /// Most distinct values tracked per column.
    pub max_keys: usize,
}

/// Why a row was left out of a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowIssue {
    /// A key or kind value was empty, too long or had control characters.
    InvalidName,
}

impl RowIssue {
    /// Bounded `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            RowIssue::InvalidName => "invalid_name",
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    counts: HashMap<String, u64>,
    untracked: u64,
}

impl Tally {
    fn add(&mut self, name: &str, max: usize) {
        if let Some(n) = self.counts.get_mut(name) {
            *n += 1;
        } else if self.counts.len() < max {
            self.counts.insert(name.to_owned(), 1);
        } else {
            self.untracked += 1;
        }
    }

    fn take(&mut self, column: &str) -> Breakdown {
        let mut counts: Vec<Counted> = self
            .counts
            .drain()
            .map(|(name, events)| Counted { name, events })
            .collect();
        counts.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.name.cmp(&b.name)));
        Breakdown {
            column: column.to_owned(),
            counts,
            untracked: std::mem::take(&mut self.untracked),
        }
    }
}

/// The open window's tallies.
#[derive(Debug)]
pub struct Collector {
    layout: Layout,
    events: u64,
    first_ms: i64,
    last_ms: i64,
    kinds: Tally,
    keys: Vec<Tally>,
    peaks: Vec<Option<Peak>>,
    severity: Severity,
}

/// Columns of one batch, cast once to the types the tallies read.
struct Cols {
    time: Option<ArrayRef>,
    kind: Option<ArrayRef>,
    keys: Vec<Option<ArrayRef>>,
    measures: Vec<Option<ArrayRef>>,
    severity: Option<ArrayRef>,
}

fn column(
    batch: &RecordBatch,
    name: Option<&str>,
    to: &DataType,
) -> Result<Option<ArrayRef>, ArrowError> {
    let Some(c) = name.and_then(|n| batch.column_by_name(n)) else {
        return Ok(None);
    };
    if matches!(c.data_type(), DataType::Timestamp(..)) && to == &DataType::Int64 {
        let ms = cast(c, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        return cast(&ms, to).map(Some);
    }
    cast(c, to).map(Some)
}

fn text(a: &Option<ArrayRef>, row: usize) -> Option<&str> {
    let a = a.as_ref()?;
    (!a.is_null(row)).then(|| a.as_string::<i32>().value(row))
}

fn valid_name(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= MAX_NAME_BYTES && !s.chars().any(char::is_control)
}

impl Collector {
    /// An empty window.
    pub fn new(layout: Layout) -> Self {
        let keys = layout.keys.iter().map(|_| Tally::default()).collect();
        let peaks = layout.measures.iter().map(|_| None).collect();
        Self {
            layout,
            events: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            kinds: Tally::default(),
            keys,
            peaks,
            severity: Severity::Info,
        }
    }

    /// Events counted so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    fn cols(&self, batch: &RecordBatch) -> Result<Cols, ArrowError> {
        let l = &self.layout;
        let severity = match l
            .severity
            .column
            .as_deref()
            .and_then(|n| batch.column_by_name(n))
        {
            Some(c) if c.data_type().is_numeric() => {
                column(batch, l.severity.column.as_deref(), &DataType::Float64)?
            }
            Some(_) => column(batch, l.severity.column.as_deref(), &DataType::Utf8)?,
            None => None,
        };
        Ok(Cols {
            time: column(batch, l.time.as_deref(), &DataType::Int64)?,
            kind: column(batch, l.kind.as_deref(), &DataType::Utf8)?,
            keys: l
                .keys
                .iter()
                .map(|k| column(batch, Some(k), &DataType::Utf8))
                .collect::<Result<_, _>>()?,
            measures: l
                .measures
                .iter()
                .map(|m| column(batch, Some(m), &DataType::Float64))
                .collect::<Result<_, _>>()?,
            severity,
        })
    }

    /// Counts rows `rows` of `batch`; rows without an event time take
    /// `arrival_ms`. Returns the rows left out and why.
    pub fn add(
        &mut self,
        batch: &RecordBatch,
        rows: Range<usize>,
        arrival_ms: i64,
    ) -> Result<Vec<(RowIssue, u64)>, ArrowError> {
        let cols = self.cols(batch)?;
        let mut invalid = 0u64;
        let max = self.layout.max_keys;
        for row in rows {
            let names_ok = text(&cols.kind, row).is_none_or(valid_name)
                && cols
                    .keys
                    .iter()
                    .all(|k| text(k, row).is_none_or(valid_name));
            if !names_ok {
                invalid += 1;
                continue;
            }
            let t = cols
                .time
                .as_ref()
                .filter(|a| !a.is_null(row))
                .map_or(arrival_ms, |a| a.as_primitive::<Int64Type>().value(row));
            self.events += 1;
            self.first_ms = self.first_ms.min(t);
            self.last_ms = self.last_ms.max(t);
            if let Some(k) = text(&cols.kind, row) {
                self.kinds.add(k, max);
            }
            for (tally, col) in self.keys.iter_mut().zip(&cols.keys) {
                if let Some(v) = text(col, row) {
                    tally.add(v, max);
                }
            }
            for (i, col) in cols.measures.iter().enumerate() {
                let Some(a) = col.as_ref().filter(|a| !a.is_null(row)) else {
                    continue;
                };
                let v = a.as_primitive::<Float64Type>().value(row);
                if !v.is_finite() || self.peaks[i].as_ref().is_some_and(|p| p.value >= v) {
                    continue;
                }
                let keys = self
                    .layout
                    .keys
                    .iter()
                    .zip(&cols.keys)
                    .filter_map(|(k, c)| text(c, row).map(|v| (k.clone(), v.to_owned())))
                    .collect();
                self.peaks[i] = Some(Peak {
                    column: self.layout.measures[i].clone(),
                    value: v,
                    at_ms: t,
                    keys,
                });
            }
            if let Some(a) = cols.severity.as_ref().filter(|a| !a.is_null(row)) {
                let s = if a.data_type() == &DataType::Float64 {
                    let v = a.as_primitive::<Float64Type>().value(row);
                    if v.is_finite() {
                        self.layout.severity.of_score(v)
                    } else {
                        Severity::Info
                    }
                } else {
                    Severity::from_label(a.as_string::<i32>().value(row)).unwrap_or(Severity::Info)
                };
                self.severity = self.severity.max(s);
            }
        }
        Ok(if invalid > 0 {
            vec![(RowIssue::InvalidName, invalid)]
        } else {
            Vec::new()
        })
    }

    /// The facts of the window so far, leaving the collector empty; `None`
    /// when no event was counted.
    pub fn take(&mut self) -> Option<Facts> {
        if self.events == 0 {
            return None;
        }
        let severity = self
            .severity
            .max(self.layout.severity.of_count(self.events));
        let facts = Facts {
            events: self.events,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            kinds: self.layout.kind.as_deref().map(|k| self.kinds.take(k)),
            keys: self
                .keys
                .iter_mut()
                .zip(&self.layout.keys)
                .map(|(t, k)| t.take(k))
                .collect(),
            peaks: self.peaks.iter_mut().filter_map(Option::take).collect(),
            severity,
        };
        *self = Collector::new(self.layout.clone());
        Some(facts)
    }
}
