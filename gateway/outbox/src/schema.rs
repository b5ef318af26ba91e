//! The on-disk schema, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, OptionalExtension};

/// Schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Tables and their columns, in order; an existing file must match exactly.
const TABLES: &[(&str, &[&str])] = &[
    (
        "outbox",
        &[
            "id",
            "sink",
            "priority",
            "created_ms",
            "topic",
            "payload",
            "qos",
            "retain",
            "size",
        ],
    ),
    ("counters", &["sink", "priority", "rows", "bytes"]),
    (
        "history",
        &[
            "id",
            "sink",
            "priority",
            "created_ms",
            "acked_ms",
            "topic",
            "payload",
            "qos",
            "retain",
            "size",
        ],
    ),
    ("history_counters", &["id", "rows", "bytes"]),
];

/// Creates schema version 1 inside the caller's write transaction.
///
/// * `outbox.id` is `AUTOINCREMENT` so an id is never reused, even after the
///   table drained: it is the de-duplication id the cloud side sees.
/// * `outbox_by_sink` serves `lease` (per sink and priority, in id order);
///   `outbox_by_priority` serves eviction (lowest priority, oldest first, across
///   sinks) and `has_higher_priority_pending`.
/// * `counters` holds rows and bytes per (sink, priority), updated in the same
///   transaction as the rows, so size checks never scan the table.
/// * `history` keeps the id of the outbox entry it came from.
pub(crate) const CREATE_V1: &str = "
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sink        TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    qos         INTEGER NOT NULL,
    retain      INTEGER NOT NULL,
    size        INTEGER NOT NULL
);
CREATE INDEX outbox_by_sink ON outbox (sink, priority, id);
CREATE INDEX outbox_by_priority ON outbox (priority, id);
CREATE TABLE counters (
    sink        TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    PRIMARY KEY (sink, priority)
) WITHOUT ROWID;
CREATE TABLE history (
    id          INTEGER PRIMARY KEY,
    sink        TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    acked_ms    INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    qos         INTEGER NOT NULL,
    retain      INTEGER NOT NULL,
    size        INTEGER NOT NULL
);
CREATE INDEX history_by_created ON history (created_ms);
CREATE TABLE history_counters (
    id          INTEGER PRIMARY KEY CHECK (id = 0),
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL
);
INSERT INTO history_counters (id, rows, bytes) VALUES (0, 0, 0);
PRAGMA user_version = 1;
";

/// What an existing file holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// No tables at all: a new or empty file.
    Empty,
    /// The current schema.
    Current,
    /// A newer schema version.
    Newer(i64),
    /// Something else; the reason says what.
    Foreign(String),
}

/// Inspects the schema of `conn`.
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if version > SCHEMA_VERSION {
        return Ok(Found::Newer(version));
    }
    if version == 0 {
        return Ok(if tables.is_empty() {
            Found::Empty
        } else {
            Found::Foreign(format!(
                "unversioned database with tables {}",
                tables.join(", ")
            ))
        });
    }
    if version != SCHEMA_VERSION {
        return Ok(Found::Foreign(format!("unknown schema version {version}")));
    }
    for (table, expected) in TABLES {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
        let cols: Vec<String> = stmt
            .query_map([table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if cols != *expected {
            return Ok(Found::Foreign(format!(
                "table `{table}` has columns [{}], expected [{}]",
                cols.join(", "),
                expected.join(", ")
            )));
        }
    }
    let has_history_row = conn
        .query_row(
            "SELECT 1 FROM history_counters WHERE id = 0",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_history_row {
        return Ok(Found::Foreign("history_counters row is missing".into()));
    }
    Ok(Found::Current)
}

/// Starts the id sequence of a new file at `created_ms * 1024`, so ids of a
/// file recreated after a corruption (or deleted by hand) stay above those of
/// the previous file and a cloud-side de-duplication by id never mistakes a
/// new entry for an old one. This holds while the previous file appended
/// fewer than 1024 entries per millisecond of its life and the clock did not
/// go backwards; 2^63 / 1024 ms leaves room for 285,000 years.
pub(crate) fn seed_sequence(conn: &Connection, created_ms: i64) -> rusqlite::Result<()> {
    let seed = created_ms.max(0).saturating_mul(1024);
    conn.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?1)",
        [seed],
    )?;
    Ok(())
}
