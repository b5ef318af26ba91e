//! Opening a file: pragmas, integrity and schema checks, and moving a damaged
//! file aside so the gateway starts with a fresh outbox instead of a crash loop.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::config::{Durability, OpenOptions};
use crate::error::OutboxError;
use crate::schema::{self, Found};

/// WAL size kept after a checkpoint; larger WAL files are truncated to it.
const JOURNAL_SIZE_LIMIT: i64 = 16 << 20;

/// Page cache per connection, in KiB (negative `cache_size` means KiB).
const CACHE_KIB: i64 = 8 << 10;

/// A file moved aside because it could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where the file now is (`<name>.corrupt-<UTC timestamp>`); its `-wal`
    /// and `-shm` companions, if any, were moved next to it with the same
    /// suffixes.
    pub moved_to: PathBuf,
    /// Why the file could not be used.
    pub reason: String,
}

/// Why an attempt to open failed.
pub(crate) enum Attempt {
    /// The file is damaged or is not an outbox: move it aside.
    Unusable(String),
    /// Anything else: return to the caller.
    Failed(OutboxError),
}

/// Opens `path` read-write, applies the pragmas, checks integrity and creates
/// or verifies the schema. Returns the connection and whether the schema was
/// created.
pub(crate) fn try_open(
    path: &Path,
    opts: &OpenOptions,
    now_ms: i64,
) -> Result<(Connection, bool), Attempt> {
    let fail = |op: &'static str| {
        move |e: rusqlite::Error| match OutboxError::from_sqlite(path, op, e) {
            OutboxError::Corrupt { detail, .. } => Attempt::Unusable(detail),
            other => Attempt::Failed(other),
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(fail("opening"))?;
    conn.busy_timeout(opts.busy_timeout)
        .map_err(fail("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(fail("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Attempt::Failed(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("journal mode is `{mode}`, WAL could not be enabled"),
        }));
    }
    let synchronous = match opts.durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};
         PRAGMA cache_size = -{CACHE_KIB};
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = OFF;"
    ))
    .map_err(fail("setting pragmas"))?;
    quick_check(&conn).map_err(fail("checking integrity"))??;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail("locking for the schema check"))?;
    // Inspecting under the write lock makes concurrent first opens of one
    // file create the schema exactly once.
    let created = match schema::inspect(&tx).map_err(fail("reading the schema"))? {
        Found::Current => false,
        Found::Empty => {
            tx.execute_batch(schema::CREATE_V1)
                .map_err(fail("creating the schema"))?;
            schema::seed_sequence(&tx, now_ms).map_err(fail("seeding ids"))?;
            true
        }
        Found::Newer(found) => {
            return Err(Attempt::Failed(OutboxError::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported: schema::SCHEMA_VERSION,
            }));
        }
        Found::Foreign(reason) => return Err(Attempt::Unusable(reason)),
    };
    tx.commit().map_err(fail("committing the schema"))?;
    Ok((conn, created))
}

/// Runs `PRAGMA quick_check`: page-level structure, without the index
/// cross-checks of `integrity_check` (which reads every index entry).
fn quick_check(conn: &Connection) -> rusqlite::Result<Result<(), Attempt>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(Ok(()))
    } else {
        Ok(Err(Attempt::Unusable(format!(
            "quick_check failed: {}",
            lines.join("; ")
        ))))
    }
}

/// Opens an existing outbox for inspection: never creates, never moves a file.
pub(crate) fn open_existing(
    path: &Path,
    busy_timeout: std::time::Duration,
) -> Result<Connection, OutboxError> {
    let err = |op| move |e| OutboxError::from_sqlite(path, op, e);
    if !path.is_file() {
        return Err(OutboxError::Fs {
            path: path.to_path_buf(),
            op: "opening an existing outbox",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    // READ_WRITE without CREATE lets SQLite recover a WAL left by a crashed
    // writer; SQLite falls back to read-only when the file is not writable.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(err("opening"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(err("setting the busy timeout"))?;
    match schema::inspect(&conn).map_err(err("reading the schema"))? {
        Found::Current => Ok(conn),
        Found::Newer(found) => Err(OutboxError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: schema::SCHEMA_VERSION,
        }),
        Found::Empty => Err(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: "empty database, no outbox schema".into(),
        }),
        Found::Foreign(detail) => Err(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail,
        }),
    }
}

/// Moves `path` and its `-wal` / `-shm` companions to
/// `<name>.corrupt-<timestamp>[-<n>]`. The companions move first: a crash in
/// between leaves the damaged main file in place (found again on the next
/// open) rather than a stale WAL next to a fresh database.
pub(crate) fn quarantine(path: &Path, now_ms: i64) -> Result<PathBuf, OutboxError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = utc_stamp(now_ms);
    let mut target = None;
    for n in 0..1000u32 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let candidate = path.with_file_name(format!("{name}.corrupt-{stamp}{suffix}"));
        let taken = ["", "-wal", "-shm"]
            .iter()
            .any(|c| companion(&candidate, c).exists());
        if !taken {
            target = Some(candidate);
            break;
        }
    }
    let target = target.ok_or_else(|| OutboxError::Fs {
        path: path.to_path_buf(),
        op: "choosing a name to move the corrupt file to",
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "1000 names taken"),
    })?;
    for c in ["-wal", "-shm", ""] {
        let from = companion(path, c);
        if c.is_empty() || from.exists() {
            std::fs::rename(&from, companion(&target, c)).map_err(|source| OutboxError::Fs {
                path: from.clone(),
                op: "moving the corrupt file aside",
                source,
            })?;
        }
    }
    Ok(target)
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time in milliseconds.
pub(crate) fn utc_stamp(ms: i64) -> String {
    sluice_core::clock::utc(ms)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000Z");
        assert_eq!(utc_stamp(1_709_251_199_999), "20240229T235959Z");
        assert_eq!(utc_stamp(1_735_689_600_000 + 3_723_000), "20250101T010203Z");
    }

    #[test]
    fn quarantine_moves_companions_and_never_overwrites_an_earlier_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        for (c, body) in [("", "main"), ("-wal", "wal")] {
            std::fs::write(companion(&db, c), body).unwrap();
        }
        let first = quarantine(&db, 0).unwrap();
        std::fs::write(&db, "again").unwrap();
        let second = quarantine(&db, 0).unwrap();
        assert_eq!(first, dir.path().join("o.db.corrupt-19700101T000000Z"));
        assert_eq!(second, dir.path().join("o.db.corrupt-19700101T000000Z-1"));
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "main");
        assert_eq!(
            std::fs::read_to_string(companion(&first, "-wal")).unwrap(),
            "wal"
        );
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "again");
        assert!(!db.exists() && !companion(&db, "-wal").exists());
    }
}
