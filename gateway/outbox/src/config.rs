//! The `outbox:` block of a cloud-bound sink and the options of [`crate::Outbox::open`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::{ByteSize, EnvString, HumanDuration, Validator};

/// Default bound of the stored entries: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// How long a writer waits for another connection's write transaction on the
/// same file before failing with [`crate::OutboxError::Busy`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What `append` does when the new entries do not fit under `max_bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Evict the lowest-priority, oldest stored entries (of any sink in the
    /// file) until the new ones fit; entries of a higher priority than the new
    /// ones are never evicted for them.
    #[default]
    DropOldest,
    /// Keep what is stored and reject the new entries that do not fit.
    DropNew,
    /// Store what fits and tell the caller to retry the rest later
    /// (back-pressure towards the pipeline).
    Block,
}

/// Delivery priority of a sink's entries. Higher priorities drain first and
/// are evicted last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Bulk data: drains last, evicted first.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Condensed insights: drain first, evicted last.
    High,
}

impl Priority {
    /// Every priority, highest first (the drain order).
    pub const DRAIN_ORDER: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The YAML spelling, also used as a label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    /// The value stored in the `priority` column; higher drains first.
    pub(crate) fn to_db(self) -> i64 {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
        }
    }

    /// The priority stored as `v`; unknown values read as `Low` so that a
    /// damaged row is delivered last and evicted first rather than lost.
    pub(crate) fn from_db(v: i64) -> Priority {
        match v {
            2 => Priority::High,
            1 => Priority::Normal,
            _ => Priority::Low,
        }
    }
}

/// Retention of the local event history (delivered entries kept for on-site
/// queries).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HistoryConfig {
    /// Delivered entries older than this (by creation time) are pruned.
    pub max_age: HumanDuration,
    /// Bound of the history's stored bytes; the oldest delivered entries are
    /// pruned beyond it. Counted like `max_bytes` of the outbox.
    pub max_bytes: ByteSize,
}

/// The `outbox:` block of a cloud-bound sink.
///
/// ```yaml
/// outbox:
///   path: /var/lib/sluice/cloud.db
///   max_bytes: 512MiB
///   on_full: drop_oldest
///   priority: high
///   history: { max_age: 7d, max_bytes: 1GiB }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OutboxConfig {
    /// SQLite file of the outbox (`${VAR}` is interpolated). Several sinks may
    /// share one file; each entry records its sink and priority.
    pub path: EnvString,
    /// Bound of the entries stored in the file (topic + payload + a fixed
    /// per-entry overhead), e.g. `512MiB`. Default 256MiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// What happens when new entries do not fit: `drop_oldest` (default),
    /// `drop_new` or `block`.
    #[serde(default)]
    pub on_full: OnFull,
    /// Priority of this sink's entries: `high`, `normal` (default) or `low`.
    #[serde(default)]
    pub priority: Priority,
    /// Keep delivered entries as a queryable local history, bounded by age
    /// and size. Off when absent.
    #[serde(default)]
    pub history: Option<HistoryConfig>,
}

fn default_max_bytes() -> ByteSize {
    ByteSize(DEFAULT_MAX_BYTES)
}

impl OutboxConfig {
    /// The file path.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.path.as_str())
    }

    /// Options for [`crate::Outbox::open`] with the durable defaults.
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            max_bytes: self.max_bytes.bytes(),
            on_full: self.on_full,
            history: self.history.as_ref().map(|h| HistoryLimits {
                max_age: h.max_age.get(),
                max_bytes: h.max_bytes.bytes(),
            }),
            ..OpenOptions::default()
        }
    }

    /// Reports every problem under the `outbox` key of the sink.
    pub fn check(&self, v: &mut Validator) {
        if self.path.trim().is_empty() {
            v.error(&["outbox", "path"], "the outbox path is empty")
                .help("set a file path, e.g. `/var/lib/sluice/outbox.db`");
        }
        if self.max_bytes.bytes() == 0 {
            v.error(
                &["outbox", "max_bytes"],
                "`max_bytes` must be greater than zero",
            );
        } else if self.max_bytes.bytes() < 64 << 10 {
            v.warn(
                &["outbox", "max_bytes"],
                format!(
                    "`max_bytes` of {} holds only a few hundred messages",
                    self.max_bytes
                ),
            );
        }
        if let Some(h) = &self.history {
            if h.max_bytes.bytes() == 0 {
                v.error(
                    &["outbox", "history", "max_bytes"],
                    "`max_bytes` must be greater than zero",
                )
                .help("remove `history` to turn the local history off");
            }
            if h.max_age.get().is_zero() {
                v.error(
                    &["outbox", "history", "max_age"],
                    "`max_age` must be greater than zero",
                );
            }
        }
    }
}

/// Retention of the local history, in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Entries created longer ago than this are pruned.
    pub max_age: Duration,
    /// The oldest entries are pruned while the history holds more bytes.
    pub max_bytes: u64,
}

/// What a committed append survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: every commit is fsynced to the WAL before
    /// `append` returns, so it survives a power loss. The default.
    #[default]
    PowerLoss,
    /// `synchronous = NORMAL`: commits survive a process crash (`kill -9`);
    /// a power loss may lose the commits since the last checkpoint but never
    /// corrupts the file. For benchmarks and tests.
    ProcessCrash,
}

/// Options of [`crate::Outbox::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Bound of the stored entries in bytes, see [`crate::entry_size`].
    pub max_bytes: u64,
    /// What `append` does when new entries do not fit.
    pub on_full: OnFull,
    /// Local history retention; `None` deletes acknowledged entries outright.
    pub history: Option<HistoryLimits>,
    /// What a committed append survives.
    pub durability: Durability,
    /// How long to wait for another writer of the same file.
    pub busy_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            on_full: OnFull::default(),
            history: None,
            durability: Durability::default(),
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<OutboxConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_to_drop_oldest_normal_priority_and_no_history() {
        let c = parse(r#"{"path": "/data/o.db"}"#).unwrap();
        let o = c.open_options();
        assert_eq!(o.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(o.on_full, OnFull::DropOldest);
        assert_eq!(c.priority, Priority::Normal);
        assert_eq!(o.history, None);
        assert_eq!(o.durability, Durability::PowerLoss);
    }

    #[test]
    fn parses_sizes_policies_priorities_and_history() {
        let c = parse(
            r#"{"path": "o.db", "max_bytes": "1MiB", "on_full": "block", "priority": "high",
                "history": {"max_age": "2h", "max_bytes": "10MB"}}"#,
        )
        .unwrap();
        let o = c.open_options();
        assert_eq!(o.max_bytes, 1 << 20);
        assert_eq!(o.on_full, OnFull::Block);
        assert_eq!(c.priority, Priority::High);
        assert_eq!(
            o.history,
            Some(HistoryLimits {
                max_age: Duration::from_secs(7200),
                max_bytes: 10_000_000
            })
        );
    }

    #[test]
    fn rejects_unknown_fields_and_policies() {
        assert!(
            parse(r#"{"path": "o.db", "max_byte": 1}"#)
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse(r#"{"path": "o.db", "on_full": "drop_newest"}"#)
                .unwrap_err()
                .contains("drop_new")
        );
        assert!(
            parse(r#"{"path": "o.db", "history": {"max_age": "1h", "max_bytes": 1, "x": 1}}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn check_reports_zero_sizes_at_their_paths() {
        let c = parse(
            r#"{"path": "o.db", "max_bytes": 0, "history": {"max_age": "0s", "max_bytes": 0}}"#,
        )
        .unwrap();
        let mut v = Validator::new();
        c.check(&mut v);
        let paths: Vec<Vec<String>> = v.into_issues().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            vec![
                vec!["outbox", "max_bytes"],
                vec!["outbox", "history", "max_bytes"],
                vec!["outbox", "history", "max_age"],
            ]
        );
    }

    #[test]
    fn priorities_order_low_below_high() {
        assert!(Priority::Low < Priority::Normal && Priority::Normal < Priority::High);
        for p in Priority::DRAIN_ORDER {
            assert_eq!(Priority::from_db(p.to_db()), p);
        }
    }
}
