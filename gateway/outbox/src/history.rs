//! The local event history: delivered entries kept for on-site queries,
//! bounded by age and size.

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::config::Priority;
use crate::error::OutboxError;
use crate::outbox::{Outbox, to_i64, to_u64};

/// An entry as stored, for `dump` and `history_query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Stable de-duplication id.
    pub id: i64,
    /// Sink that appended it.
    pub sink: String,
    /// Its priority.
    pub priority: Priority,
    /// MQTT topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// MQTT QoS.
    pub qos: u8,
    /// MQTT retain flag.
    pub retain: bool,
    /// When it was appended, Unix milliseconds.
    pub created_ms: i64,
    /// Bytes it counts against `max_bytes`.
    pub size: u64,
    /// When the broker acknowledged it, Unix milliseconds; `None` while it
    /// waits in the outbox.
    pub acked_ms: Option<i64>,
}

/// Entries removed from the history by one prune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Older than `max_age`.
    pub by_age: u64,
    /// Beyond `max_bytes`, oldest first.
    pub by_size: u64,
}

const COLUMNS: &str = "id, sink, priority, topic, payload, qos, retain, created_ms, size";

pub(crate) fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        id: r.get(0)?,
        sink: r.get(1)?,
        priority: Priority::from_db(r.get(2)?),
        topic: r.get(3)?,
        payload: r.get(4)?,
        qos: r.get(5)?,
        retain: r.get(6)?,
        created_ms: r.get(7)?,
        size: to_u64(r.get(8)?),
        acked_ms: r.get(9)?,
    })
}

/// The oldest `limit` un-acknowledged entries of all sinks, in id order.
pub(crate) fn dump(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<StoredEntry>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, NULL FROM outbox ORDER BY id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([clamp(limit)], read_entry)?;
    rows.collect()
}

/// Events created at or after `since_ms`, delivered (history) and still
/// waiting (outbox), in id order, at most `limit`.
pub(crate) fn query(
    conn: &Connection,
    since_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StoredEntry>> {
    let tx = conn.unchecked_transaction()?;
    let mut delivered = {
        let mut stmt = tx.prepare(&format!(
            "SELECT {COLUMNS}, acked_ms FROM history WHERE created_ms >= ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map((since_ms, clamp(limit)), read_entry)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let waiting = {
        let mut stmt = tx.prepare(&format!(
            "SELECT {COLUMNS}, NULL FROM outbox WHERE created_ms >= ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map((since_ms, clamp(limit)), read_entry)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.finish()?;
    delivered.extend(waiting);
    delivered.sort_by_key(|e| e.id);
    delivered.truncate(limit);
    Ok(delivered)
}

fn clamp(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Deletes the oldest history entries until it holds at most `max_bytes`.
pub(crate) fn prune_by_size(tx: &Transaction<'_>, max_bytes: u64) -> rusqlite::Result<u64> {
    let (_, bytes) = history_totals(tx)?;
    if bytes <= max_bytes {
        return Ok(0);
    }
    let excess = bytes - max_bytes;
    let (mut freed, mut rows, mut last) = (0u64, 0u64, None);
    {
        let mut stmt = tx.prepare("SELECT id, size FROM history ORDER BY id")?;
        let mut it = stmt.query([])?;
        while freed < excess {
            let Some(r) = it.next()? else { break };
            last = Some(r.get::<_, i64>(0)?);
            freed += to_u64(r.get(1)?);
            rows += 1;
        }
    }
    if let Some(last) = last {
        tx.execute("DELETE FROM history WHERE id <= ?1", [last])?;
        tx.execute(
            "UPDATE history_counters SET rows = rows - ?1, bytes = bytes - ?2 WHERE id = 0",
            (rows as i64, to_i64(freed)),
        )?;
    }
    Ok(rows)
}

/// Deletes history entries created before `cutoff_ms`.
fn prune_by_age(tx: &Transaction<'_>, cutoff_ms: i64) -> rusqlite::Result<u64> {
    let (rows, bytes): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM history WHERE created_ms < ?1",
        [cutoff_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if rows > 0 {
        tx.execute("DELETE FROM history WHERE created_ms < ?1", [cutoff_ms])?;
        tx.execute(
            "UPDATE history_counters SET rows = rows - ?1, bytes = bytes - ?2 WHERE id = 0",
            (rows, bytes),
        )?;
    }
    Ok(to_u64(rows))
}

/// Rows and bytes in the history, from its counter.
pub(crate) fn history_totals(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT rows, bytes FROM history_counters WHERE id = 0",
        [],
        |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))),
    )
}

impl Outbox {
    /// Events created at or after `since_ms` (Unix milliseconds), oldest
    /// first, at most `limit`: delivered ones from the history (with
    /// `acked_ms`) and those still waiting in the outbox (`acked_ms: None`),
    /// so an operator sees what happened while the cloud was unreachable.
    pub fn history_query(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, OutboxError> {
        query(&self.conn, since_ms, limit).map_err(self.err("querying the history"))
    }

    /// Enforces the history's retention: deletes entries older than
    /// `max_age`, then the oldest beyond `max_bytes`. Size is also enforced on
    /// every ack; call this periodically (e.g. every minute) for age. Without
    /// history configured it removes whatever an earlier configuration left.
    pub fn prune_history(&mut self) -> Result<PruneReport, OutboxError> {
        self.without_fsync(Self::prune_history_now)
    }

    fn prune_history_now(&mut self) -> Result<PruneReport, OutboxError> {
        let now = (self.clock)();
        let (max_age, max_bytes) = match self.opts.history {
            Some(h) => (h.max_age, h.max_bytes),
            None => (Duration::ZERO, 0),
        };
        let cutoff = now.saturating_sub(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX));
        let path = self.path.clone();
        let err = |op: &'static str| crate::error::sql(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting a history prune"))?;
        let by_age = prune_by_age(&tx, cutoff).map_err(err("pruning the history by age"))?;
        let by_size = prune_by_size(&tx, max_bytes).map_err(err("pruning the history by size"))?;
        tx.commit().map_err(err("committing a history prune"))?;
        Ok(PruneReport { by_age, by_size })
    }
}
