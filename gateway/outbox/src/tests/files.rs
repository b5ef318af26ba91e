//! Damaged, foreign and inaccessible files; a full disk.

use std::path::PathBuf;

use super::*;
use crate::{OutboxError, OutboxReader};

/// Opens `path`, expecting the file to be moved aside; checks the fresh
/// outbox works and returns where the old file went.
fn open_expecting_quarantine(path: &Path) -> (PathBuf, String) {
    let (mut o, report) =
        Outbox::open_with_clock(path, OpenOptions::default(), test_clock).unwrap();
    let q = report.quarantined.expect("the damaged file is moved aside");
    assert!(report.created);
    let ids = append(&mut o, "cloud", Priority::Normal, &payloads(0..2, 10));
    assert_eq!(o.lease("cloud", 10).unwrap().len(), 2);
    assert_eq!(o.ack(&ids).unwrap(), 2);
    (q.moved_to, q.reason)
}

#[test]
fn garbage_file_is_moved_aside_and_a_fresh_outbox_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    set_clock(1_700_000_000_000);
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();

    let (moved_to, reason) = open_expecting_quarantine(&path);
    assert_eq!(moved_to, dir.path().join("o.db.corrupt-20231114T221320Z"));
    assert_eq!(
        std::fs::read(&moved_to).unwrap(),
        garbage,
        "the damaged file is kept as it was"
    );
    assert!(reason.contains("not a database"), "{reason}");
}

#[test]
fn truncated_outbox_is_moved_aside_and_a_fresh_outbox_works() {
    for keep in [50u64, 4096 + 100, 3 * 4096] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        {
            let mut o = open(&path, OpenOptions::default());
            for i in 0..20 {
                append(
                    &mut o,
                    "cloud",
                    Priority::Normal,
                    &payloads(i * 50..(i + 1) * 50, 500),
                );
            }
        }
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(
            len > keep * 2,
            "the database is checkpointed into the main file ({len} bytes)"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(keep)
            .unwrap();

        let (moved_to, reason) = open_expecting_quarantine(&path);
        assert_eq!(std::fs::metadata(&moved_to).unwrap().len(), keep);
        assert!(!reason.is_empty());
    }
}

#[test]
fn a_foreign_database_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(other);
    let (_, reason) = open_expecting_quarantine(&path);
    assert!(reason.contains("tables t"), "{reason}");
}

#[test]
fn a_file_from_a_newer_version_is_an_error_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    drop(open(&path, OpenOptions::default()));
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(c);

    let e = Outbox::open(&path, OpenOptions::default()).unwrap_err();
    assert!(
        matches!(e, OutboxError::NewerSchema { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade"), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().contains("corrupt")),
        "{left:?}"
    );
}

#[test]
fn a_directory_at_the_path_is_an_access_error_and_is_not_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    std::fs::create_dir(&path).unwrap();
    let e = Outbox::open(&path, OpenOptions::default()).unwrap_err();
    assert_eq!(e.code(), "outbox_access", "{e}");
    assert!(e.to_string().contains("o.db"), "{e}");
    assert!(path.is_dir());
}

#[test]
fn a_file_where_the_directory_should_be_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), "x").unwrap();
    let e = Outbox::open(dir.path().join("data/o.db"), OpenOptions::default()).unwrap_err();
    assert!(matches!(e, OutboxError::Fs { .. }), "{e}");
    assert!(
        e.to_string().contains("creating the outbox directory"),
        "{e}"
    );
}

#[test]
fn creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/o.db");
    let (_o, report) = Outbox::open(&path, OpenOptions::default()).unwrap();
    assert!(report.created && path.is_file());
}

#[test]
fn the_reader_refuses_missing_and_damaged_files_without_moving_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    assert_eq!(OutboxReader::open(&path).unwrap_err().code(), "outbox_fs");
    assert!(!path.exists(), "the reader never creates a file");
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    assert_eq!(
        OutboxReader::open(&path).unwrap_err().code(),
        "outbox_corrupt"
    );
    assert!(path.exists());
}

#[test]
fn a_full_disk_is_a_typed_error_and_the_outbox_works_again_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(&dir.path().join("o.db"), OpenOptions::default());
    let kept = append(&mut o, "cloud", Priority::Normal, &payloads(0..20, 1000));
    let pages: i64 = o
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    // The database may not grow past its current size plus a few pages, as
    // on a file system with no space left.
    o.conn
        .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
        .unwrap();

    let big = payloads(20..40, 1000);
    let e = o
        .append("cloud", Priority::Normal, &entries("t", &big))
        .unwrap_err();
    assert!(e.is_disk_full() && e.is_retryable(), "{e}");
    assert_eq!(
        o.totals().unwrap().0,
        20,
        "nothing of the failed append was stored"
    );

    o.ack(&kept).unwrap();
    let out = o
        .append("cloud", Priority::Normal, &entries("t", &big))
        .unwrap();
    assert_eq!(out.ids.len(), 20);
    assert_counters_match(&o);
}
