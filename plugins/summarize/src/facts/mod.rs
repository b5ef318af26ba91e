//! The facts of one digest, computed deterministically from the rows, and the
//! three forms they take: the text the model reads, the JSON written to the
//! `facts` column, and the set of numbers and names a summary may state.

mod collect;
mod severity;
pub mod time;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::lexicon::lexicon;

pub use collect::{Collector, Layout, RowIssue};
pub use severity::{Severity, SeverityRules};

/// One name and how many events it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// Device, zone or kind.
    pub name: String,
    /// Events.
    pub events: u64,
}

/// Counts per value of one column, most events first (ties by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// Column name, e.g. `device`.
    pub column: String,
    /// Counted values, most events first.
    pub counts: Vec<Counted>,
    /// Events whose value was not tracked because `max_keys` was reached.
    pub untracked: u64,
}

impl Breakdown {
    /// The value with the most events.
    pub fn top(&self) -> Option<&Counted> {
        self.counts.first()
    }
}

/// The largest value of a numeric column and where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    /// Column name.
    pub column: String,
    /// The maximum.
    pub value: f64,
    /// Event time of the row that had it (ms since the epoch).
    pub at_ms: i64,
    /// Key values of that row, as (column, value).
    pub keys: Vec<(String, String)>,
}

/// Everything a digest says, computed in Rust.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Events in the window.
    pub events: u64,
    /// Earliest event time (ms).
    pub first_ms: i64,
    /// Latest event time (ms).
    pub last_ms: i64,
    /// Counts per event kind, when a kind column is configured.
    pub kinds: Option<Breakdown>,
    /// Counts per key column (device, zone, …), in configured order.
    pub keys: Vec<Breakdown>,
    /// Maxima of the measure columns.
    pub peaks: Vec<Peak>,
    /// Severity decided by the rules.
    pub severity: Severity,
}

/// Formats a measured value the one way prompts, grammar and checker share:
/// at most two decimals, no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The numbers and names a summary of these facts may state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounding {
    /// Counts, measured values and times, as written in the prompt.
    pub numbers: BTreeSet<String>,
    /// Kinds, key values, column names and the severity word.
    pub names: BTreeSet<String>,
    /// Names the summary must mention: the top value of each key column.
    pub required: Vec<String>,
}

impl Facts {
    /// The facts as compact lines for the prompt, listing at most `top`
    /// values per column, e.g.
    ///
    /// ```text
    /// 212 events 06:00:03 to 06:04:58 UTC, severity critical
    /// kind: bearing_wear 97, jam 40
    /// device: lathe-12 81, kiln-2 40
    /// highest vibration_rms 9.41 on lathe-12 in cell-b at 06:03:12
    /// bearing_wear likely means worn or loose bearings; check the bearings and mounts
    /// ```
    ///
    /// The last line comes from the kind table (`lexicon/kinds.tsv`) and is
    /// there only when it knows the top kind.
    pub fn prompt_text(&self, top: usize) -> String {
        let list = |b: &Breakdown| {
            b.counts
                .iter()
                .take(top)
                .map(|c| format!("{} {}", c.name, c.events))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unit = if self.events == 1 { "event" } else { "events" };
        let mut lines = vec![format!(
            "{} {unit} {} to {} UTC, severity {}",
            self.events,
            time::clock(self.first_ms),
            time::clock(self.last_ms),
            self.severity.as_str()
        )];
        if let Some(k) = self.kinds.as_ref().filter(|k| !k.counts.is_empty()) {
            lines.push(format!("kind: {}", list(k)));
        }
        for b in self.keys.iter().filter(|b| !b.counts.is_empty()) {
            lines.push(format!("{}: {}", b.column, list(b)));
        }
        for p in &self.peaks {
            let on = crate::plan::on_place(p);
            lines.push(format!(
                "highest {} {}{on} at {}",
                p.column,
                number(p.value),
                time::clock(p.at_ms)
            ));
        }
        let top_kind = self.kinds.as_ref().and_then(Breakdown::top);
        if let Some((k, a)) = top_kind.and_then(|k| Some((k, lexicon().advice(&k.name)?))) {
            lines.push(format!(
                "{} likely means {}; check {}",
                k.name, a.cause, a.check
            ));
        }
        lines.join("\n")
    }

    /// What [`Facts::prompt_text`] with the same `top` allows a summary to say.
    pub fn grounding(&self, top: usize) -> Grounding {
        let mut g = Grounding::default();
        g.numbers.insert(self.events.to_string());
        for ms in [self.first_ms, self.last_ms] {
            let c = time::clock(ms);
            g.numbers.insert(c[..5].to_owned());
            g.numbers.insert(c);
        }
        for b in self.kinds.iter().chain(&self.keys) {
            g.names.insert(b.column.clone());
            for c in b.counts.iter().take(top) {
                g.names.insert(c.name.clone());
                g.numbers.insert(c.events.to_string());
            }
        }
        for b in &self.keys {
            if let Some(t) = b.top() {
                g.required.push(t.name.clone());
            }
        }
        for p in &self.peaks {
            g.names.insert(p.column.clone());
            g.numbers.insert(number(p.value));
            let c = time::clock(p.at_ms);
            g.numbers.insert(c[..5].to_owned());
            g.numbers.insert(c);
            for (_, v) in &p.keys {
                g.names.insert(v.clone());
            }
        }
        g.names.insert(self.severity.as_str().to_owned());
        g
    }

    /// The `facts` column: every count, not only the ones in the prompt.
    pub fn to_json(&self) -> Value {
        let breakdown = |b: &Breakdown| {
            json!({
                "column": b.column,
                "counts": b.counts.iter().map(|c| json!({"name": c.name, "events": c.events})).collect::<Vec<_>>(),
                "untracked_events": b.untracked,
            })
        };
        json!({
            "events": self.events,
            "first": time::rfc3339(self.first_ms),
            "last": time::rfc3339(self.last_ms),
            "kinds": self.kinds.as_ref().map(breakdown),
            "keys": self.keys.iter().map(breakdown).collect::<Vec<_>>(),
            "peaks": self.peaks.iter().map(|p| json!({
                "column": p.column,
                "value": p.value,
                "at": time::rfc3339(p.at_ms),
                "keys": p.keys.iter().map(|(c, v)| json!({"column": c, "value": v})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "severity": self.severity.as_str(),
        })
    }
}

#[cfg(test)]
mod tests;
