//! Read-only views for metrics gauges and the `sluice outbox` CLI.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::config::{DEFAULT_BUSY_TIMEOUT, Priority};
use crate::error::OutboxError;
use crate::history::{self, StoredEntry};
use crate::open;
use crate::outbox::{Outbox, to_u64};

/// Un-acknowledged entries of one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Sink id.
    pub sink: String,
    /// Entries waiting.
    pub rows: u64,
    /// Their bytes, as counted against `max_bytes`.
    pub bytes: u64,
    /// Creation time of the oldest, Unix milliseconds.
    pub oldest_created_ms: Option<i64>,
}

/// Un-acknowledged entries of one priority, all sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityStats {
    /// The priority.
    pub priority: Priority,
    /// Entries waiting.
    pub rows: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The state of an outbox file. Computed from counters and index lookups,
/// never a table scan, so it is cheap enough for periodic gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Un-acknowledged entries, all sinks.
    pub rows: u64,
    /// Their bytes, as counted against `max_bytes`.
    pub bytes: u64,
    /// Creation time of the oldest (lowest id) entry, Unix milliseconds.
    pub oldest_created_ms: Option<i64>,
    /// Per priority, highest first; always three entries.
    pub by_priority: Vec<PriorityStats>,
    /// Per sink with entries waiting, by sink id.
    pub by_sink: Vec<SinkStats>,
    /// Entries in the local history.
    pub history_rows: u64,
    /// Their bytes.
    pub history_bytes: u64,
    /// Size of the database file plus its WAL on disk.
    pub file_bytes: u64,
}

pub(crate) fn stats(conn: &Connection, path: &Path) -> rusqlite::Result<Stats> {
    let tx = conn.unchecked_transaction()?;
    let mut by_priority: Vec<PriorityStats> = Priority::DRAIN_ORDER
        .into_iter()
        .map(|priority| PriorityStats {
            priority,
            rows: 0,
            bytes: 0,
        })
        .collect();
    let mut by_sink: Vec<SinkStats> = Vec::new();
    {
        let mut stmt =
            tx.prepare("SELECT sink, priority, rows, bytes FROM counters ORDER BY sink, priority")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let sink: String = r.get(0)?;
            let priority = Priority::from_db(r.get(1)?);
            let (n, b) = (to_u64(r.get(2)?), to_u64(r.get(3)?));
            // Counters are read from the file, where a damaged row may hold
            // any value: the sums saturate instead of overflowing.
            if let Some(p) = by_priority.iter_mut().find(|p| p.priority == priority) {
                p.rows = p.rows.saturating_add(n);
                p.bytes = p.bytes.saturating_add(b);
            }
            match by_sink.last_mut() {
                Some(s) if s.sink == sink => {
                    s.rows = s.rows.saturating_add(n);
                    s.bytes = s.bytes.saturating_add(b);
                }
                _ => by_sink.push(SinkStats {
                    sink,
                    rows: n,
                    bytes: b,
                    oldest_created_ms: None,
                }),
            }
        }
    }
    for s in &mut by_sink {
        s.oldest_created_ms = oldest_of_sink(&tx, &s.sink)?;
    }
    let oldest_created_ms = tx
        .query_row(
            "SELECT created_ms FROM outbox ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let (history_rows, history_bytes) = history::history_totals(&tx)?;
    tx.finish()?;
    let file_bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).ok().map(|m| m.len())
        })
        .sum();
    Ok(Stats {
        rows: by_priority
            .iter()
            .fold(0, |sum, p| sum.saturating_add(p.rows)),
        bytes: by_priority
            .iter()
            .fold(0, |sum, p| sum.saturating_add(p.bytes)),
        oldest_created_ms,
        by_priority,
        by_sink,
        history_rows,
        history_bytes,
        file_bytes,
    })
}

/// Creation time of the sink's lowest id: one index seek per priority.
fn oldest_of_sink(conn: &Connection, sink: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT created_ms FROM outbox WHERE id = (
             SELECT MIN(first) FROM (
                 SELECT (SELECT MIN(id) FROM outbox WHERE sink = ?1 AND priority = 0) AS first
                 UNION ALL SELECT (SELECT MIN(id) FROM outbox WHERE sink = ?1 AND priority = 1)
                 UNION ALL SELECT (SELECT MIN(id) FROM outbox WHERE sink = ?1 AND priority = 2)))",
        [sink],
        |r| r.get(0),
    )
    .optional()
}

pub(crate) fn sink_stats(conn: &Connection, sink: &str) -> rusqlite::Result<SinkStats> {
    let (rows, bytes): (i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(bytes), 0) FROM counters WHERE sink = ?1",
        [sink],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(SinkStats {
        sink: sink.to_owned(),
        rows: to_u64(rows),
        bytes: to_u64(bytes),
        oldest_created_ms: oldest_of_sink(conn, sink)?,
    })
}

impl Outbox {
    /// The state of the whole file.
    pub fn stats(&self) -> Result<Stats, OutboxError> {
        stats(&self.conn, &self.path).map_err(self.err("reading stats"))
    }

    /// Un-acknowledged entries of `sink`, for the `sluice_outbox_stored_rows`,
    /// `_stored_bytes` and `_oldest_age_seconds` gauges.
    pub fn sink_stats(&self, sink: &str) -> Result<SinkStats, OutboxError> {
        sink_stats(&self.conn, sink).map_err(self.err("reading sink stats"))
    }

    /// The oldest `limit` un-acknowledged entries of all sinks, in id order.
    pub fn dump(&self, limit: usize) -> Result<Vec<StoredEntry>, OutboxError> {
        history::dump(&self.conn, limit).map_err(self.err("dumping entries"))
    }
}

/// An existing outbox opened for inspection (`sluice outbox stats|dump`),
/// safe next to a running gateway: it never creates a file, never moves a
/// damaged one aside and never writes entries.
#[derive(Debug)]
pub struct OutboxReader {
    conn: Connection,
    path: PathBuf,
}

impl OutboxReader {
    /// Opens the outbox at `path`; a missing, damaged or foreign file is an
    /// error.
    pub fn open(path: impl AsRef<Path>) -> Result<OutboxReader, OutboxError> {
        let path = path.as_ref().to_path_buf();
        let conn = open::open_existing(&path, DEFAULT_BUSY_TIMEOUT)?;
        Ok(OutboxReader { conn, path })
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
        move |e| OutboxError::from_sqlite(&self.path, op, e)
    }

    /// See [`Outbox::stats`].
    pub fn stats(&self) -> Result<Stats, OutboxError> {
        stats(&self.conn, &self.path).map_err(self.err("reading stats"))
    }

    /// See [`Outbox::dump`].
    pub fn dump(&self, limit: usize) -> Result<Vec<StoredEntry>, OutboxError> {
        history::dump(&self.conn, limit).map_err(self.err("dumping entries"))
    }

    /// See [`Outbox::history_query`].
    pub fn history_query(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, OutboxError> {
        history::query(&self.conn, since_ms, limit).map_err(self.err("querying the history"))
    }
}
