//! Behaviour tests on real SQLite files in temporary directories.

mod behaviour;
mod crash;
mod damaged;
mod files;
mod history;
mod props;

use std::cell::Cell;
use std::path::Path;

use crate::{Durability, Entry, OnFull, OpenOptions, Outbox, Priority, entry_size};

thread_local! {
    /// Each test runs on its own thread, so each gets its own clock.
    static NOW: Cell<i64> = const { Cell::new(1_700_000_000_000) };
}

pub(crate) fn test_clock() -> i64 {
    NOW.with(Cell::get)
}

pub(crate) fn set_clock(ms: i64) {
    NOW.with(|n| n.set(ms));
}

pub(crate) fn opts(max_bytes: u64, on_full: OnFull) -> OpenOptions {
    OpenOptions {
        max_bytes,
        on_full,
        ..OpenOptions::default()
    }
}

/// Options for tests that do many small transactions and do not test power
/// loss: commits skip the fsync.
pub(crate) fn fast(max_bytes: u64, on_full: OnFull) -> OpenOptions {
    OpenOptions {
        durability: Durability::ProcessCrash,
        ..opts(max_bytes, on_full)
    }
}

pub(crate) fn open(path: &Path, opts: OpenOptions) -> Outbox {
    let (outbox, report) = Outbox::open_with_clock(path, opts, test_clock).unwrap();
    assert_eq!(report.quarantined, None);
    outbox
}

/// Payloads named by a number, so tests can say which entries survive.
pub(crate) fn payloads(range: std::ops::Range<u32>, len: usize) -> Vec<Vec<u8>> {
    range
        .map(|i| {
            let mut p = format!("msg-{i:06}").into_bytes();
            p.resize(len.max(p.len()), b'.');
            p
        })
        .collect()
}

pub(crate) fn entries<'a>(topic: &'a str, payloads: &'a [Vec<u8>]) -> Vec<Entry<'a>> {
    payloads
        .iter()
        .map(|p| Entry {
            topic,
            payload: p,
            qos: 1,
            retain: false,
        })
        .collect()
}

pub(crate) fn append(o: &mut Outbox, sink: &str, p: Priority, payloads: &[Vec<u8>]) -> Vec<i64> {
    let out = o.append(sink, p, &entries("t", payloads)).unwrap();
    assert_eq!(out.evicted.total(), 0, "unexpected eviction: {out:?}");
    out.ids
}

/// Size of an entry with topic `t` and a payload of `len` bytes.
pub(crate) fn size_of(len: usize) -> u64 {
    entry_size("t", &vec![0; len])
}

/// Payload names of the stored entries, in id order.
pub(crate) fn stored_names(o: &Outbox) -> Vec<String> {
    o.dump(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.payload[..10]).into_owned())
        .collect()
}

/// The counters agree with the rows they summarise.
pub(crate) fn assert_counters_match(o: &Outbox) {
    let mut stmt = o
        .conn
        .prepare(
            "SELECT COALESCE(c.rows, 0), COALESCE(c.bytes, 0), t.rows, t.bytes FROM
             (SELECT sink, priority, COUNT(*) AS rows, SUM(size) AS bytes FROM outbox GROUP BY sink, priority) t
             LEFT JOIN counters c USING (sink, priority)",
        )
        .unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (cr, cb, tr, tb) in rows {
        assert_eq!((cr, cb), (tr, tb), "counters drifted from the table");
    }
    let (rows, _) = o.totals().unwrap();
    let actual: i64 = o
        .conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as i64, actual);
    let (hr, hb): (i64, i64) = o
        .conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM history",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (cr, cb) = crate::history::history_totals(&o.conn).unwrap();
    assert_eq!((cr as i64, cb as i64), (hr, hb), "history counters drifted");
}
