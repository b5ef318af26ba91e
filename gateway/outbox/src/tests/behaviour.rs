//! Append, lease, ack, priorities and eviction.

use super::*;
use crate::{EvictReason, Evictions, OutboxError};

fn names(leased: &[crate::Leased]) -> Vec<String> {
    leased
        .iter()
        .map(|l| String::from_utf8_lossy(&l.payload[..10]).into_owned())
        .collect()
}

#[test]
fn leases_entries_in_append_order_and_ack_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let first = append(&mut o, "cloud", Priority::Normal, &payloads(0..2, 20));
    let second = append(&mut o, "cloud", Priority::Normal, &payloads(2..3, 20));
    assert!(
        first[0] < first[1] && first[1] < second[0],
        "{first:?} {second:?}"
    );

    let leased = o.lease("cloud", 10).unwrap();
    assert_eq!(names(&leased), ["msg-000000", "msg-000001", "msg-000002"]);
    assert_eq!(
        leased.iter().map(|l| l.id).collect::<Vec<_>>(),
        [first.clone(), second.clone()].concat()
    );
    assert_eq!(
        (leased[0].topic.as_str(), leased[0].qos, leased[0].retain),
        ("t", 1, false)
    );
    assert_eq!(leased[0].created_ms, test_clock());
    assert!(
        o.lease("cloud", 10).unwrap().is_empty(),
        "leased entries are not handed out twice"
    );

    assert_eq!(o.ack(&[first[0], second[0], 999]).unwrap(), 2);
    assert_eq!(stored_names(&o), ["msg-000001"]);
    assert_eq!(o.totals().unwrap(), (1, size_of(20)));
    assert_counters_match(&o);
}

#[test]
fn lease_respects_max_and_continues_where_the_last_lease_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    append(&mut o, "cloud", Priority::Normal, &payloads(0..5, 20));
    assert_eq!(
        names(&o.lease("cloud", 2).unwrap()),
        ["msg-000000", "msg-000001"]
    );
    assert_eq!(
        names(&o.lease("cloud", 2).unwrap()),
        ["msg-000002", "msg-000003"]
    );
    assert_eq!(names(&o.lease("cloud", 2).unwrap()), ["msg-000004"]);
}

#[test]
fn ids_keep_increasing_after_the_outbox_drained() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let a = append(&mut o, "cloud", Priority::Normal, &payloads(0..3, 20));
    o.ack(&a).unwrap();
    let b = append(&mut o, "cloud", Priority::Normal, &payloads(3..4, 20));
    assert!(b[0] > a[2], "{a:?} then {b:?}");
}

#[test]
fn ids_of_a_new_file_start_above_those_of_a_file_created_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("a.db"), OpenOptions::default());
    let old = append(&mut o, "cloud", Priority::Normal, &payloads(0..100, 20));
    set_clock(test_clock() + 1);
    let mut o = open(&dir.path().join("b.db"), OpenOptions::default());
    let new = append(&mut o, "cloud", Priority::Normal, &payloads(0..1, 20));
    assert!(new[0] > old[99], "{} <= {}", new[0], old[99]);
}

#[test]
fn sinks_of_one_file_lease_only_their_own_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    append(&mut o, "a", Priority::Normal, &payloads(0..2, 20));
    append(&mut o, "b", Priority::Normal, &payloads(2..4, 20));
    assert_eq!(
        names(&o.lease("b", 10).unwrap()),
        ["msg-000002", "msg-000003"]
    );
    assert_eq!(
        names(&o.lease("a", 10).unwrap()),
        ["msg-000000", "msg-000001"]
    );
}

#[test]
fn higher_priority_entries_are_leased_before_earlier_lower_priority_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    append(&mut o, "cloud", Priority::Low, &payloads(0..2, 20));
    append(&mut o, "cloud", Priority::Normal, &payloads(2..3, 20));
    append(&mut o, "cloud", Priority::High, &payloads(3..5, 20));
    let leased = o.lease("cloud", 3).unwrap();
    assert_eq!(names(&leased), ["msg-000003", "msg-000004", "msg-000002"]);
    assert_eq!(leased[0].priority, Priority::High);

    // A high-priority entry appended after the lease overtakes the low ones.
    append(&mut o, "cloud", Priority::High, &payloads(5..6, 20));
    assert_eq!(
        names(&o.lease("cloud", 10).unwrap()),
        ["msg-000005", "msg-000000", "msg-000001"]
    );
}

#[test]
fn reports_higher_priority_entries_of_any_sink_until_they_are_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    append(&mut o, "bulk", Priority::Low, &payloads(0..1, 20));
    assert!(!o.has_higher_priority_pending(Priority::Low).unwrap());
    let ids = append(&mut o, "insights", Priority::High, &payloads(1..2, 20));
    assert!(o.has_higher_priority_pending(Priority::Low).unwrap());
    assert!(!o.has_higher_priority_pending(Priority::High).unwrap());
    o.ack(&ids).unwrap();
    assert!(!o.has_higher_priority_pending(Priority::Low).unwrap());
}

#[test]
fn unleased_entries_come_back_after_higher_priorities_stored_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    append(&mut o, "cloud", Priority::Low, &payloads(0..4, 20));
    let leased = o.lease("cloud", 4).unwrap();
    // Two were published; the last two go back.
    o.unlease("cloud", leased[2..].iter().map(|l| (l.priority, l.id)));
    append(&mut o, "cloud", Priority::High, &payloads(4..5, 20));
    assert_eq!(
        names(&o.lease("cloud", 10).unwrap()),
        ["msg-000004", "msg-000002", "msg-000003"]
    );
}

#[test]
fn release_hands_out_unacked_entries_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..3, 20));
    o.lease("cloud", 3).unwrap();
    o.ack(&ids[..1]).unwrap();
    o.release("cloud");
    assert_eq!(
        names(&o.lease("cloud", 10).unwrap()),
        ["msg-000001", "msg-000002"]
    );
}

#[test]
fn reopening_keeps_unacked_entries_and_delivers_leased_ones_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut o = open(&path, OpenOptions::default());
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..4, 20));
    o.lease("cloud", 4).unwrap();
    o.ack(&ids[..1]).unwrap();
    drop(o);

    let (mut o, report) =
        Outbox::open_with_clock(&path, OpenOptions::default(), test_clock).unwrap();
    assert!(!report.created && report.quarantined.is_none());
    assert_eq!(
        (report.pending_rows, report.pending_bytes),
        (3, 3 * size_of(20))
    );
    let again = o.lease("cloud", 10).unwrap();
    assert_eq!(again.iter().map(|l| l.id).collect::<Vec<_>>(), &ids[1..]);
}

#[test]
fn drop_oldest_evicts_lowest_priority_then_oldest_entries_across_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let s = size_of(100);
    let mut o = open(&dir.path().join("o.db"), opts(6 * s, OnFull::DropOldest));
    append(&mut o, "a", Priority::Normal, &payloads(0..2, 100));
    append(&mut o, "b", Priority::Low, &payloads(2..4, 100));
    append(&mut o, "a", Priority::High, &payloads(4..6, 100));

    let p = payloads(6..9, 100);
    let out = o.append("a", Priority::Normal, &entries("t", &p)).unwrap();
    assert_eq!(out.ids.len(), 3);
    assert_eq!(
        out.evicted,
        Evictions {
            drop_oldest: 3,
            bytes: 3 * s,
            ..Default::default()
        }
    );
    // Both low entries of sink b go first, then the oldest normal one.
    assert_eq!(
        stored_names(&o),
        [
            "msg-000001",
            "msg-000004",
            "msg-000005",
            "msg-000006",
            "msg-000007",
            "msg-000008"
        ]
    );
    assert_eq!(o.totals().unwrap(), (6, 6 * s));
    assert_counters_match(&o);
}

#[test]
fn drop_oldest_never_evicts_higher_priority_entries_for_lower_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = size_of(100);
    let mut o = open(&dir.path().join("o.db"), opts(4 * s, OnFull::DropOldest));
    append(&mut o, "insights", Priority::High, &payloads(0..3, 100));
    append(&mut o, "bulk", Priority::Low, &payloads(3..4, 100));

    let p = payloads(4..7, 100);
    let out = o.append("bulk", Priority::Low, &entries("t", &p)).unwrap();
    // The newest low entry replaces the older one; two newer ones cannot
    // displace the high-priority entries.
    assert_eq!(out.evicted.drop_oldest, 1);
    assert_eq!(out.evicted.outranked, 2);
    assert_eq!(
        out.evicted.iter().map(|(r, _)| r).collect::<Vec<_>>(),
        [EvictReason::DropOldest, EvictReason::Outranked]
    );
    assert_eq!(
        stored_names(&o),
        ["msg-000000", "msg-000001", "msg-000002", "msg-000006"]
    );
}

#[test]
fn drop_new_rejects_what_does_not_fit_and_keeps_stored_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = size_of(100);
    let mut o = open(&dir.path().join("o.db"), opts(3 * s, OnFull::DropNew));
    append(&mut o, "cloud", Priority::Low, &payloads(0..2, 100));
    let p = payloads(2..5, 100);
    let out = o
        .append("cloud", Priority::High, &entries("t", &p))
        .unwrap();
    assert_eq!((out.ids.len(), out.consumed, out.blocked), (1, 3, false));
    assert_eq!(
        out.evicted,
        Evictions {
            drop_new: 2,
            bytes: 2 * s,
            ..Default::default()
        }
    );
    assert_eq!(stored_names(&o), ["msg-000000", "msg-000001", "msg-000002"]);
}

#[test]
fn block_stores_what_fits_and_the_retry_succeeds_once_acks_made_room() {
    let dir = tempfile::tempdir().unwrap();
    let s = size_of(100);
    let mut o = open(&dir.path().join("o.db"), opts(3 * s, OnFull::Block));
    let old = append(&mut o, "cloud", Priority::Normal, &payloads(0..2, 100));
    let p = payloads(2..5, 100);
    let batch = entries("t", &p);
    let out = o.append("cloud", Priority::Normal, &batch).unwrap();
    assert_eq!((out.ids.len(), out.consumed, out.blocked), (1, 1, true));
    assert_eq!(out.evicted.total(), 0);

    o.ack(&old).unwrap();
    let retry = o
        .append("cloud", Priority::Normal, &batch[out.consumed..])
        .unwrap();
    assert_eq!((retry.ids.len(), retry.blocked), (2, false));
    assert_eq!(stored_names(&o), ["msg-000002", "msg-000003", "msg-000004"]);
}

#[test]
fn an_entry_larger_than_the_outbox_is_dropped_under_every_policy() {
    for on_full in [OnFull::DropOldest, OnFull::DropNew, OnFull::Block] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = open(&dir.path().join("o.db"), opts(2 * size_of(100), on_full));
        append(&mut o, "cloud", Priority::Normal, &payloads(0..1, 100));
        let mut p = payloads(1..3, 100);
        p[0].resize(1000, b'x');
        let out = o
            .append("cloud", Priority::Normal, &entries("t", &p))
            .unwrap();
        assert_eq!(out.evicted.too_large, 1, "{on_full:?}");
        assert_eq!((out.consumed, out.blocked), (2, false), "{on_full:?}");
        assert_eq!(
            stored_names(&o),
            ["msg-000000", "msg-000002"],
            "{on_full:?}"
        );
    }
}

#[test]
fn rejects_an_invalid_qos_without_storing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let p = payloads(0..2, 10);
    let mut batch = entries("t", &p);
    batch[1].qos = 3;
    let e = o.append("cloud", Priority::Normal, &batch).unwrap_err();
    assert!(
        matches!(e, OutboxError::InvalidEntry { index: 1, .. }),
        "{e}"
    );
    assert_eq!(o.totals().unwrap(), (0, 0));
}

#[test]
fn stats_count_per_sink_and_priority_and_a_reader_sees_a_live_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut o = open(&path, OpenOptions::default());
    append(&mut o, "a", Priority::High, &payloads(0..2, 50));
    set_clock(test_clock() + 10);
    append(&mut o, "b", Priority::Low, &payloads(2..3, 100));
    append(&mut o, "a", Priority::Low, &payloads(3..4, 100));

    let reader = crate::OutboxReader::open(&path).unwrap();
    let stats = reader.stats().unwrap();
    assert_eq!(stats, o.stats().unwrap());
    assert_eq!(
        (stats.rows, stats.bytes),
        (4, 2 * size_of(50) + 2 * size_of(100))
    );
    assert_eq!(stats.oldest_created_ms, Some(test_clock() - 10));
    let per_priority: Vec<_> = stats
        .by_priority
        .iter()
        .map(|p| (p.priority, p.rows))
        .collect();
    assert_eq!(
        per_priority,
        [
            (Priority::High, 2),
            (Priority::Normal, 0),
            (Priority::Low, 2)
        ]
    );
    let per_sink: Vec<_> = stats
        .by_sink
        .iter()
        .map(|s| (s.sink.as_str(), s.rows, s.oldest_created_ms))
        .collect();
    assert_eq!(
        per_sink,
        [
            ("a", 3, Some(test_clock() - 10)),
            ("b", 1, Some(test_clock()))
        ]
    );
    assert!(stats.file_bytes > 0);
    assert_eq!(o.sink_stats("b").unwrap(), stats.by_sink[1]);
    assert_eq!(reader.dump(2).unwrap().len(), 2);
    assert_eq!(o.sink_stats("nobody").unwrap().rows, 0);
}

#[test]
fn two_handles_on_one_file_share_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let s = size_of(100);
    let mut a = open(&path, opts(3 * s, OnFull::DropNew));
    let mut b = open(&path, opts(3 * s, OnFull::DropNew));
    append(&mut a, "a", Priority::Normal, &payloads(0..2, 100));
    let p = payloads(2..4, 100);
    let out = b.append("b", Priority::Normal, &entries("t", &p)).unwrap();
    assert_eq!((out.ids.len(), out.evicted.drop_new), (1, 1));
    assert_eq!(a.totals().unwrap(), (3, 3 * s));
}

#[test]
fn acks_skip_the_fsync_while_appends_stay_fully_synchronous() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let synchronous = |o: &Outbox| -> i64 {
        o.conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(synchronous(&o), 2, "FULL");
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..2, 20));
    o.ack(&ids[..1]).unwrap();
    assert_eq!(synchronous(&o), 2, "FULL again after an ack");
    assert!(!o.relaxed);
}

#[test]
fn an_outbox_can_move_to_a_dedicated_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let worker = std::thread::spawn(move || {
        append(&mut o, "cloud", Priority::Normal, &payloads(0..3, 20));
        o
    });
    let o = worker.join().unwrap();
    assert_eq!(o.totals().unwrap().0, 3);
}
