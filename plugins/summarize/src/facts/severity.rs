//! Digest severity, decided by rules in Rust, never by the model.

use serde::Deserialize;

/// How serious a digest is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Nothing needs attention.
    #[default]
    Info,
    /// Someone should look.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// The word written to the `severity` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Reads a severity word as upstream components write it; `None` for
    /// words it does not know.
    pub fn from_label(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" | "low" | "debug" | "notice" | "ok" | "normal" => Some(Severity::Info),
            "warning" | "warn" | "medium" | "minor" => Some(Severity::Warning),
            "critical" | "high" | "major" | "alarm" | "alert" | "error" | "emergency" => {
                Some(Severity::Critical)
            }
            _ => None,
        }
    }
}

/// The `severity:` block: how a digest's severity follows from its events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SeverityRules {
    /// Optional per-event column: a word (`info`, `warning`, `critical`,
    /// `high`, …) or a score compared with `warning_score` / `critical_score`.
    /// The digest takes the most severe event.
    #[serde(default)]
    pub column: Option<String>,
    /// Score at or above which an event is a warning.
    #[serde(default = "default_warning_score")]
    pub warning_score: f64,
    /// Score at or above which an event is critical.
    #[serde(default = "default_critical_score")]
    pub critical_score: f64,
    /// A window with at least this many events is at least a warning.
    #[serde(default = "default_warning_events")]
    pub warning_events: u64,
    /// A window with at least this many events is critical.
    #[serde(default = "default_critical_events")]
    pub critical_events: u64,
}

impl Default for SeverityRules {
    fn default() -> Self {
        Self {
            column: None,
            warning_score: default_warning_score(),
            critical_score: default_critical_score(),
            warning_events: default_warning_events(),
            critical_events: default_critical_events(),
        }
    }
}

fn default_warning_score() -> f64 {
    0.5
}
fn default_critical_score() -> f64 {
    0.9
}
fn default_warning_events() -> u64 {
    10
}
fn default_critical_events() -> u64 {
    100
}

impl SeverityRules {
    /// Severity of one event with score `v`.
    pub fn of_score(&self, v: f64) -> Severity {
        if v >= self.critical_score {
            Severity::Critical
        } else if v >= self.warning_score {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    /// Severity implied by the number of events alone.
    pub fn of_count(&self, events: u64) -> Severity {
        if events >= self.critical_events {
            Severity::Critical
        } else if events >= self.warning_events {
            Severity::Warning
        } else {
            Severity::Info
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_map_to_three_levels() {
        assert_eq!(Severity::from_label(" HIGH "), Some(Severity::Critical));
        assert_eq!(Severity::from_label("medium"), Some(Severity::Warning));
        assert_eq!(Severity::from_label("low"), Some(Severity::Info));
        assert_eq!(Severity::from_label("purple"), None);
    }

    #[test]
    fn scores_and_counts_escalate_at_the_thresholds() {
        let r = SeverityRules::default();
        assert_eq!(r.of_score(0.49), Severity::Info);
        assert_eq!(r.of_score(0.5), Severity::Warning);
        assert_eq!(r.of_score(0.9), Severity::Critical);
        assert_eq!(r.of_count(9), Severity::Info);
        assert_eq!(r.of_count(10), Severity::Warning);
        assert_eq!(r.of_count(100), Severity::Critical);
    }
}
