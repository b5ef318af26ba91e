//! Files that pass the page checks but hold values the outbox never writes
//! (sizes and counters at the ends of their range), as the `outbox_open`
//! fuzz target produces them: every call returns, none panics.

use std::path::Path;

use tempfile::TempDir;

use super::{append, fast, open, payloads};
use crate::{HistoryLimits, OnFull, OutboxReader, Priority};

/// Runs `sql` on the closed outbox file at `path`.
fn damage(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn acking_entries_whose_sizes_add_up_past_i64_max_is_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("o.db");
    let mut opts = fast(1 << 20, OnFull::DropOldest);
    opts.history = Some(HistoryLimits {
        max_age: std::time::Duration::from_secs(3600),
        max_bytes: 1 << 20,
    });
    {
        let mut o = open(&path, opts.clone());
        append(&mut o, "cloud", Priority::Normal, &payloads(0..3, 10));
    }
    damage(&path, "UPDATE outbox SET size = 9223372036854775807");

    let mut o = open(&path, opts);
    let ids: Vec<i64> = o.lease("cloud", 8).unwrap().iter().map(|l| l.id).collect();
    assert_eq!(o.ack(&ids).unwrap(), 3);
    assert_eq!(o.stats().unwrap().rows, 0);
}

#[test]
fn stats_of_counters_that_add_up_past_u64_max_saturate() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("o.db");
    {
        let mut o = open(&path, fast(1 << 20, OnFull::DropOldest));
        for p in [Priority::Low, Priority::Normal, Priority::High] {
            append(&mut o, "cloud", p, &payloads(0..1, 10));
        }
    }
    damage(
        &path,
        "UPDATE counters SET rows = 9223372036854775807, bytes = 9223372036854775807",
    );

    let stats = OutboxReader::open(&path).unwrap().stats().unwrap();
    assert_eq!((stats.rows, stats.bytes), (u64::MAX, u64::MAX));
    assert_eq!(stats.by_sink[0].rows, u64::MAX);
}
