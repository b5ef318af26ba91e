//! The write path: open, append, lease, ack.

use sluice_core::now_ms;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::config::{Durability, OnFull, OpenOptions, Priority};
use crate::error::OutboxError;
use crate::evict::{self, Evictions, Removed};
use crate::open::{self, Attempt, Quarantined};

/// Bytes counted per entry on top of its topic and payload: the row header,
/// the id, timestamps and the two index entries. With it, `max_bytes` tracks
/// the file's real size closely even for small payloads.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// The size an entry counts against `max_bytes`.
pub fn entry_size(topic: &str, payload: &[u8]) -> u64 {
    (topic.len() + payload.len()) as u64 + ENTRY_OVERHEAD_BYTES
}

/// One message to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// MQTT topic to publish to.
    pub topic: &'a str,
    /// Message payload.
    pub payload: &'a [u8],
    /// MQTT QoS: 0, 1 or 2.
    pub qos: u8,
    /// MQTT retain flag.
    pub retain: bool,
}

/// What one `append` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Ids of the stored entries, increasing, in input order. They are the
    /// messages' stable de-duplication ids.
    pub ids: Vec<i64>,
    /// Entries handled (stored or dropped). Less than the input length only
    /// under `on_full: block`: retry `&entries[consumed..]` once acks made room.
    pub consumed: usize,
    /// Whether some entries were neither stored nor dropped (`on_full: block`).
    pub blocked: bool,
    /// Entries dropped by this call, new and stored, by reason.
    pub evicted: Evictions,
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// A new outbox was created (no file, an empty file, or after moving a
    /// damaged one aside).
    pub created: bool,
    /// The damaged file that was moved aside, if any. Log it as an error and
    /// count it: its un-acknowledged entries are not delivered.
    pub quarantined: Option<Quarantined>,
    /// Un-acknowledged entries found, all sinks: they are delivered again.
    pub pending_rows: u64,
    /// Their bytes, as counted against `max_bytes`.
    pub pending_bytes: u64,
}

/// An entry handed to a forwarder; delete it with [`Outbox::ack`] once the
/// broker acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Stable de-duplication id.
    pub id: i64,
    /// MQTT topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// MQTT QoS.
    pub qos: u8,
    /// MQTT retain flag.
    pub retain: bool,
    /// When the entry was appended, Unix milliseconds.
    pub created_ms: i64,
    /// Priority it was appended with.
    pub priority: Priority,
}

/// A durable store-and-forward queue in one SQLite file, shared by any number
/// of sinks (each entry records its sink and priority).
///
/// The API is synchronous: call it from a dedicated thread or through
/// `spawn_blocking`. Several `Outbox` values (in one process or several) may
/// open the same file; writes serialise on SQLite's lock, waiting up to the
/// busy timeout. A sink id must be leased through one `Outbox` at a time.
#[derive(Debug)]
pub struct Outbox {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) opts: OpenOptions,
    /// Per sink, the highest id leased per priority (indexed by `to_db`).
    /// Only ids above it are handed out, which is exact because ids grow.
    pub(crate) cursors: HashMap<String, [i64; 3]>,
    pub(crate) clock: fn() -> i64,
    /// `synchronous` is NORMAL although the durability asks for FULL (a
    /// deletion ran and restoring FULL failed); appends restore it first.
    pub(crate) relaxed: bool,
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`.
    ///
    /// A file that is not a database, fails `PRAGMA quick_check` or holds
    /// another schema is moved aside to `<name>.corrupt-<UTC timestamp>` with
    /// its `-wal`/`-shm`, and a fresh outbox is created; the report says so.
    /// This happens at most once per call. Permission problems, a directory at
    /// `path`, a full disk or a file from a newer Sluice are returned as errors
    /// and leave the file alone.
    pub fn open(
        path: impl AsRef<Path>,
        opts: OpenOptions,
    ) -> Result<(Outbox, OpenReport), OutboxError> {
        Self::open_with_clock(path.as_ref(), opts, now_ms)
    }

    pub(crate) fn open_with_clock(
        path: &Path,
        opts: OpenOptions,
        clock: fn() -> i64,
    ) -> Result<(Outbox, OpenReport), OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::Fs {
                path: dir.to_path_buf(),
                op: "creating the outbox directory",
                source,
            })?;
        }
        let mut quarantined = None;
        let (conn, created) = match open::try_open(path, &opts, clock()) {
            Ok(ok) => ok,
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Unusable(reason)) => {
                let moved_to = open::quarantine(path, clock())?;
                quarantined = Some(Quarantined { moved_to, reason });
                match open::try_open(path, &opts, clock()) {
                    Ok(ok) => ok,
                    Err(Attempt::Failed(e)) => return Err(e),
                    Err(Attempt::Unusable(detail)) => {
                        return Err(OutboxError::Corrupt {
                            path: path.to_path_buf(),
                            detail,
                        });
                    }
                }
            }
        };
        let outbox = Outbox {
            conn,
            path: path.to_path_buf(),
            opts,
            cursors: HashMap::new(),
            clock,
            relaxed: false,
        };
        let (pending_rows, pending_bytes) = outbox.totals()?;
        tracing::debug!(path = %path.display(), created, pending_rows, "Opened outbox.");
        Ok((
            outbox,
            OpenReport {
                created,
                quarantined,
                pending_rows,
                pending_bytes,
            },
        ))
    }

    /// The file this outbox lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &OpenOptions {
        &self.opts
    }

    pub(crate) fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
        move |e| OutboxError::from_sqlite(&self.path, op, e)
    }

    /// Stores `entries` for `sink` in one transaction (one fsync), enforcing
    /// `max_bytes` per `on_full` (see [`AppendOutcome`]). When this returns
    /// `Ok`, the stored entries survive a crash, and with the default
    /// durability a power loss. On `Err` nothing of this call was stored.
    pub fn append(
        &mut self,
        sink: &str,
        priority: Priority,
        entries: &[Entry<'_>],
    ) -> Result<AppendOutcome, OutboxError> {
        if entries.is_empty() {
            return Ok(AppendOutcome {
                ids: Vec::new(),
                consumed: 0,
                blocked: false,
                evicted: Evictions::default(),
            });
        }
        if let Some((index, e)) = entries.iter().enumerate().find(|(_, e)| e.qos > 2) {
            return Err(OutboxError::InvalidEntry {
                index,
                reason: format!("QoS {} is not 0, 1 or 2", e.qos),
            });
        }
        if self.relaxed {
            self.set_synchronous("FULL")?;
        }
        let sizes: Vec<u64> = entries
            .iter()
            .map(|e| entry_size(e.topic, e.payload))
            .collect();
        let now = (self.clock)();
        let (max_bytes, on_full) = (self.opts.max_bytes, self.opts.on_full);
        let path = self.path.clone();
        let err = |op: &'static str| crate::error::sql(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting an append"))?;
        let (stored, evictable) = stored_bytes(&tx, priority).map_err(err("reading totals"))?;
        let plan = evict::plan(on_full, max_bytes, stored, evictable, &sizes);
        let mut evicted = plan.dropped;
        if on_full == OnFull::DropOldest {
            let removed = evict::evict_oldest(&tx, priority, plan.evict_bytes)
                .map_err(err("evicting old entries"))?;
            evicted.drop_oldest += removed.len() as u64;
            evicted.bytes = evicted.bytes.saturating_add(total_size(&removed));
            subtract_counters(&tx, &removed).map_err(err("updating totals"))?;
        }
        let mut ids = Vec::with_capacity(plan.store.len());
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO outbox (sink, priority, created_ms, topic, payload, qos, retain, size)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err("preparing the insert"))?;
            for &i in &plan.store {
                let e = &entries[i];
                insert
                    .execute((
                        sink,
                        priority.to_db(),
                        now,
                        e.topic,
                        e.payload,
                        e.qos,
                        e.retain,
                        sizes[i] as i64,
                    ))
                    .map_err(err("inserting entries"))?;
                ids.push(tx.last_insert_rowid());
            }
        }
        if !ids.is_empty() {
            let bytes: u64 = plan.store.iter().map(|&i| sizes[i]).sum();
            tx.execute(
                "INSERT INTO counters (sink, priority, rows, bytes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sink, priority) DO UPDATE
                 SET rows = rows + excluded.rows, bytes = bytes + excluded.bytes",
                (sink, priority.to_db(), ids.len() as i64, bytes as i64),
            )
            .map_err(err("updating totals"))?;
        }
        tx.commit().map_err(err("committing an append"))?;
        Ok(AppendOutcome {
            ids,
            consumed: plan.consumed,
            blocked: plan.consumed < entries.len(),
            evicted,
        })
    }

    /// Deletes the entries `ids` (broker acknowledged them), moving them into
    /// the local history when that is on, in one transaction. Returns how many
    /// were deleted; ids already gone (acked or evicted) are skipped.
    ///
    /// The commit is not fsynced: an ack lost to a power cut only means the
    /// entries are delivered again, and the next (fsynced) append makes it
    /// durable together with everything before it. A process crash loses
    /// no committed ack.
    pub fn ack(&mut self, ids: &[i64]) -> Result<u64, OutboxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.without_fsync(|o| o.ack_now(ids))
    }

    /// Runs a deletion with `synchronous = NORMAL`. Safe for durability of
    /// appends because the WAL is append-only and recovered as a prefix: a
    /// later fsynced commit persists every earlier frame, and a power cut can
    /// only drop a suffix of unsynced deletions.
    pub(crate) fn without_fsync<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        if self.opts.durability != Durability::PowerLoss {
            return f(self);
        }
        self.set_synchronous("NORMAL")?;
        let result = f(self);
        let restored = self.set_synchronous("FULL");
        let value = result?;
        restored.map(|()| value)
    }

    fn set_synchronous(&mut self, level: &str) -> Result<(), OutboxError> {
        self.conn
            .execute_batch(&format!("PRAGMA synchronous = {level}"))
            .map_err(crate::error::sql(&self.path, "setting synchronous"))?;
        self.relaxed = level != "FULL" && self.opts.durability == Durability::PowerLoss;
        Ok(())
    }

    fn ack_now(&mut self, ids: &[i64]) -> Result<u64, OutboxError> {
        let now = (self.clock)();
        let history = self.opts.history;
        let path = self.path.clone();
        let err = |op: &'static str| crate::error::sql(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting an ack"))?;
        let mut removed = Vec::with_capacity(ids.len());
        {
            let mut copy = match history {
                Some(_) => Some(
                    tx.prepare(
                        "INSERT OR REPLACE INTO history
                         (id, sink, priority, created_ms, acked_ms, topic, payload, qos, retain, size)
                         SELECT id, sink, priority, created_ms, ?2, topic, payload, qos, retain, size
                         FROM outbox WHERE id = ?1",
                    )
                    .map_err(err("preparing the history copy"))?,
                ),
                None => None,
            };
            let mut delete = tx
                .prepare("DELETE FROM outbox WHERE id = ?1 RETURNING sink, priority, size")
                .map_err(err("preparing the ack"))?;
            for &id in ids {
                if let Some(copy) = copy.as_mut() {
                    copy.execute((id, now))
                        .map_err(err("copying into the history"))?;
                }
                let row = delete
                    .query_row([id], |r| {
                        Ok(Removed {
                            sink: r.get(0)?,
                            priority: r.get(1)?,
                            size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        })
                    })
                    .optional()
                    .map_err(err("deleting acked entries"))?;
                removed.extend(row);
            }
        }
        subtract_counters(&tx, &removed).map_err(err("updating totals"))?;
        if let Some(limits) = history {
            tx.execute(
                "UPDATE history_counters SET rows = rows + ?1, bytes = bytes + ?2 WHERE id = 0",
                (removed.len() as i64, to_i64(total_size(&removed))),
            )
            .map_err(err("updating history totals"))?;
            crate::history::prune_by_size(&tx, limits.max_bytes)
                .map_err(err("pruning the history"))?;
        }
        tx.commit().map_err(err("committing an ack"))?;
        Ok(removed.len() as u64)
    }

    /// Un-acknowledged entries and their bytes, all sinks, without scanning.
    pub fn totals(&self) -> Result<(u64, u64), OutboxError> {
        totals(&self.conn).map_err(self.err("reading totals"))
    }
}

/// Rows and bytes stored, from the counters.
pub(crate) fn totals(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(bytes), 0) FROM counters",
        [],
        |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))),
    )
}

/// Bytes stored in total and in entries of priority <= `priority`.
fn stored_bytes(tx: &Transaction<'_>, priority: Priority) -> rusqlite::Result<(u64, u64)> {
    tx.query_row(
        "SELECT COALESCE(SUM(bytes), 0),
                COALESCE(SUM(CASE WHEN priority <= ?1 THEN bytes ELSE 0 END), 0)
         FROM counters",
        [priority.to_db()],
        |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))),
    )
}

/// Removes deleted entries from the per-(sink, priority) counters and drops
/// counters that reached zero.
fn subtract_counters(tx: &Transaction<'_>, removed: &[Removed]) -> rusqlite::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let mut groups: HashMap<(&str, i64), (i64, i64)> = HashMap::new();
    for r in removed {
        let g = groups.entry((r.sink.as_str(), r.priority)).or_default();
        g.0 += 1;
        g.1 = g.1.saturating_add(to_i64(r.size));
    }
    let mut update = tx.prepare(
        "UPDATE counters SET rows = rows - ?3, bytes = bytes - ?4 WHERE sink = ?1 AND priority = ?2",
    )?;
    for ((sink, priority), (rows, bytes)) in groups {
        update.execute((sink, priority, rows, bytes))?;
    }
    tx.execute("DELETE FROM counters WHERE rows <= 0", [])?;
    Ok(())
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `v` as an SQLite integer, saturating at `i64::MAX`.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Bytes of removed entries. Sizes are read from the file, where a damaged
/// row may hold any value, so the sum saturates instead of overflowing.
fn total_size(removed: &[Removed]) -> u64 {
    removed.iter().fold(0, |sum, r| sum.saturating_add(r.size))
}
