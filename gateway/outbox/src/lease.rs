//! The read side of forwarding: leasing entries in priority order.

use crate::config::Priority;
use crate::error::OutboxError;
use crate::outbox::{Leased, Outbox};

impl Outbox {
    /// Up to `max` entries of `sink` not leased yet, highest priority first,
    /// then in append (id) order. Leases live in memory only: after a restart,
    /// or [`Outbox::release`], un-acknowledged entries are handed out again
    /// (at-least-once delivery).
    ///
    /// Priorities are ordered within a sink. Across sinks of one file, a
    /// low-priority forwarder may ask [`Outbox::has_higher_priority_pending`]
    /// and pause while insights of another sink drain.
    pub fn lease(&mut self, sink: &str, max: usize) -> Result<Vec<Leased>, OutboxError> {
        let path = self.path.clone();
        let err = |op: &'static str| crate::error::sql(&path, op);
        let cursor = self.cursors.entry(sink.to_owned()).or_insert([0; 3]);
        let mut out = Vec::with_capacity(max.min(4096));
        // One read transaction: a consistent snapshot across the priorities.
        let tx = self.conn.transaction().map_err(err("starting a lease"))?;
        {
            let mut stmt = tx
                .prepare(
                    "SELECT id, topic, payload, qos, retain, created_ms FROM outbox
                     WHERE sink = ?1 AND priority = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
                )
                .map_err(err("preparing a lease"))?;
            for p in Priority::DRAIN_ORDER {
                if out.len() >= max {
                    break;
                }
                let slot = p.to_db() as usize;
                let limit = (max - out.len()) as i64;
                let rows = stmt
                    .query_map((sink, p.to_db(), cursor[slot], limit), |r| {
                        Ok(Leased {
                            id: r.get(0)?,
                            topic: r.get(1)?,
                            payload: r.get(2)?,
                            qos: r.get(3)?,
                            retain: r.get(4)?,
                            created_ms: r.get(5)?,
                            priority: p,
                        })
                    })
                    .map_err(err("leasing entries"))?;
                for row in rows {
                    let row = row.map_err(err("reading leased entries"))?;
                    cursor[slot] = row.id;
                    out.push(row);
                }
            }
        }
        tx.finish().map_err(err("ending a lease"))?;
        Ok(out)
    }

    /// Forgets the leases of `sink`: the next `lease` starts again at its
    /// oldest un-acknowledged entry (e.g. after the broker lost the session).
    pub fn release(&mut self, sink: &str) {
        self.cursors.remove(sink);
    }

    /// Hands back leased entries that were never published, so the next
    /// `lease` of `sink` returns them again, after whatever a higher priority
    /// holds by then (e.g. after an outage, insights that arrived meanwhile
    /// go first).
    pub fn unlease(&mut self, sink: &str, entries: impl IntoIterator<Item = (Priority, i64)>) {
        if let Some(cursor) = self.cursors.get_mut(sink) {
            for (p, id) in entries {
                let slot = p.to_db() as usize;
                cursor[slot] = cursor[slot].min(id - 1);
            }
        }
    }

    /// Whether any entry (of any sink in the file, leased or not) has a
    /// priority above `priority`.
    pub fn has_higher_priority_pending(&self, priority: Priority) -> Result<bool, OutboxError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE priority > ?1)",
                [priority.to_db()],
                |r| r.get(0),
            )
            .map_err(self.err("checking for higher priorities"))
    }
}
