//! The local history: acked entries, queries and retention.

use std::time::Duration;

use super::*;
use crate::{HistoryLimits, PruneReport};

fn with_history(max_age: Duration, max_bytes: u64) -> OpenOptions {
    OpenOptions {
        history: Some(HistoryLimits { max_age, max_bytes }),
        ..OpenOptions::default()
    }
}

#[test]
fn acked_entries_move_into_the_history_and_queries_show_waiting_ones_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(
        &dir.path().join("o.db"),
        with_history(Duration::from_secs(3600), 1 << 20),
    );
    let t0 = test_clock();
    let ids = append(&mut o, "cloud", Priority::High, &payloads(0..3, 20));
    set_clock(t0 + 5);
    o.ack(&ids[..2]).unwrap();

    let events = o.history_query(t0, 10).unwrap();
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.id, e.acked_ms, e.priority))
        .collect();
    assert_eq!(
        summary,
        [
            (ids[0], Some(t0 + 5), Priority::High),
            (ids[1], Some(t0 + 5), Priority::High),
            (ids[2], None, Priority::High),
        ]
    );
    assert_eq!(events[0].payload, payloads(0..1, 20)[0]);
    assert_eq!(o.history_query(t0, 2).unwrap().len(), 2);
    assert!(o.history_query(t0 + 1, 10).unwrap().is_empty());
    let stats = o.stats().unwrap();
    assert_eq!(
        (stats.rows, stats.history_rows, stats.history_bytes),
        (1, 2, 2 * size_of(20))
    );
    assert_counters_match(&o);
}

#[test]
fn without_history_acked_entries_are_deleted_outright() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..3, 20));
    o.ack(&ids).unwrap();
    assert!(o.history_query(0, 10).unwrap().is_empty());
}

#[test]
fn history_is_bounded_by_size_on_every_ack_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = size_of(100);
    let mut o = open(
        &dir.path().join("o.db"),
        with_history(Duration::from_secs(3600), 3 * s),
    );
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..5, 100));
    o.ack(&ids[..2]).unwrap();
    o.ack(&ids[2..]).unwrap();
    let kept: Vec<i64> = o
        .history_query(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(kept, &ids[2..]);
    assert_counters_match(&o);
}

#[test]
fn prune_removes_history_older_than_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(
        &dir.path().join("o.db"),
        with_history(Duration::from_secs(60), 1 << 20),
    );
    let t0 = test_clock();
    let old = append(&mut o, "cloud", Priority::Normal, &payloads(0..2, 20));
    set_clock(t0 + 30_000);
    let young = append(&mut o, "cloud", Priority::Normal, &payloads(2..3, 20));
    o.ack(&[old.clone(), young.clone()].concat()).unwrap();

    set_clock(t0 + 60_001);
    assert_eq!(
        o.prune_history().unwrap(),
        PruneReport {
            by_age: 2,
            by_size: 0
        }
    );
    let kept: Vec<i64> = o
        .history_query(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(kept, young);
    assert_counters_match(&o);
}

#[test]
fn prune_without_history_configured_clears_what_an_earlier_configuration_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut o = open(&path, with_history(Duration::from_secs(60), 1 << 20));
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..2, 20));
    o.ack(&ids).unwrap();
    drop(o);
    let mut o = open(&path, OpenOptions::default());
    let report = o.prune_history().unwrap();
    assert_eq!(report.by_age + report.by_size, 2);
    assert!(o.history_query(0, 10).unwrap().is_empty());
}
