//! Opening an outbox file whose bytes are arbitrary, then using it through
//! the public API: the read-only inspector, then stats, dump, history,
//! lease, ack, append and prune.
//!
//! A damaged or foreign file must be moved aside (or reported as an error),
//! and an opened file whose rows or counters hold any values must give
//! errors, never a panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_outbox::{
    Durability, Entry, HistoryLimits, OnFull, OpenOptions, Outbox, OutboxReader, Priority,
};
use tempfile::TempDir;

fn dir() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// Removes what the previous input left: the file, its `-wal`/`-shm` and
/// any copy moved aside.
fn clear(dir: &Path) {
    for entry in std::fs::read_dir(dir)
        .expect("the temporary directory")
        .flatten()
    {
        std::fs::remove_file(entry.path()).ok();
    }
}

fn options() -> OpenOptions {
    OpenOptions {
        // Small, so that an append evicts from whatever the file holds.
        max_bytes: 4096,
        on_full: OnFull::DropOldest,
        history: Some(HistoryLimits {
            max_age: Duration::from_secs(3600),
            max_bytes: 2048,
        }),
        // The fsync of `PowerLoss` adds nothing to parsing.
        durability: Durability::ProcessCrash,
        busy_timeout: Duration::from_millis(10),
    }
}

fn inspect(path: &Path) {
    if let Ok(reader) = OutboxReader::open(path) {
        reader.stats().ok();
        reader.dump(16).ok();
        reader.history_query(0, 16).ok();
    }
}

fn exercise(path: &Path) {
    let Ok((mut outbox, _report)) = Outbox::open(path, options()) else {
        return;
    };
    let sinks: Vec<String> = match outbox.stats() {
        Ok(stats) => stats.by_sink.into_iter().map(|s| s.sink).collect(),
        Err(_) => Vec::new(),
    };
    outbox.totals().ok();
    outbox.dump(16).ok();
    outbox.history_query(i64::MIN, 16).ok();
    outbox.has_higher_priority_pending(Priority::Low).ok();
    for sink in sinks.iter().take(4) {
        outbox.sink_stats(sink).ok();
        if let Ok(leased) = outbox.lease(sink, 8) {
            let ids: Vec<i64> = leased.iter().map(|l| l.id).collect();
            outbox.unlease(sink, leased.iter().map(|l| (l.priority, l.id)).take(1));
            outbox.ack(&ids).ok();
        }
        outbox.release(sink);
    }
    let entries = [
        Entry {
            topic: "plant/line3",
            payload: b"{\"t\":21.5}",
            qos: 1,
            retain: false,
        },
        Entry {
            topic: "plant/line3",
            payload: &[0; 700],
            qos: 0,
            retain: true,
        },
    ];
    for priority in [Priority::High, Priority::Low] {
        outbox.append("cloud", priority, &entries).ok();
    }
    if let Ok(leased) = outbox.lease("cloud", 8) {
        let ids: Vec<i64> = leased.iter().map(|l| l.id).collect();
        outbox.ack(&ids).ok();
    }
    outbox.prune_history().ok();
    outbox.stats().ok();
    drop(outbox);
    inspect(path);
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    clear(dir);
    let path = dir.join("outbox.db");
    std::fs::write(&path, data).expect("writing the input file");
    // The inspector first: it reads the file as found, without the
    // integrity check and the quarantine of `Outbox::open`.
    inspect(&path);
    exercise(&path);
});
