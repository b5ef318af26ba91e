//! The sink's handle on its outbox: group-committed appends on the blocking
//! pool, leases and acks for the forwarder, and the outbox metrics.
//!
//! rusqlite's `Connection` is `Send` but not `Sync`, so the `Outbox` lives
//! behind a mutex and every call runs on tokio's blocking pool.

use sluice_core::now_ms;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sluice_core::{ComponentError, ComponentMetrics, blocking};

use crate::names;
use sluice_outbox::{
    AppendOutcome, Entry, Evictions, Leased, OnFull, Outbox, OutboxConfig, Priority, SinkStats,
};
use tokio::sync::Notify;
use tracing::{error, warn};

/// How often a blocked append (`on_full: block`) looks for room again.
const BLOCK_RETRY: Duration = Duration::from_millis(100);

/// Entries handed to the forwarder.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) entries: Vec<Leased>,
    /// Higher-priority entries of another sink are waiting.
    pub(crate) yielded: bool,
}

/// Shared handle of one sink's outbox.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    outbox: Arc<Mutex<Outbox>>,
    /// Entries of this sink are stored under `<pipeline>/<component id>`.
    sink: Arc<str>,
    priority: Priority,
    on_full: OnFull,
    metrics: ComponentMetrics,
    /// Wakes the forwarder after an append.
    pub(crate) appended: Arc<Notify>,
}

fn lock(m: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    // A panic while holding the lock cannot leave a half-done transaction
    // behind (rusqlite rolls back on drop), so the outbox stays usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens the outbox file; a damaged file is moved aside, logged and
    /// counted, and a fresh outbox is used.
    pub(crate) fn open(
        cfg: &OutboxConfig,
        pipeline: &str,
        id: &str,
        metrics: &ComponentMetrics,
    ) -> Result<Self, sluice_outbox::OutboxError> {
        let (outbox, report) = Outbox::open(cfg.path(), cfg.open_options())?;
        if let Some(q) = &report.quarantined {
            metrics
                .counter(names::OUTBOX_QUARANTINED_FILES_TOTAL)
                .increment(1);
            error!(
                pipeline, component = id, moved_to = %q.moved_to.display(), reason = %q.reason,
                "Outbox file was damaged; moved it aside and started a fresh outbox."
            );
        }
        let store = Self {
            outbox: Arc::new(Mutex::new(outbox)),
            sink: format!("{pipeline}/{id}").into(),
            priority: cfg.priority,
            on_full: cfg.on_full,
            metrics: metrics.clone(),
            appended: Arc::new(Notify::new()),
        };
        if let Ok(stats) = lock(&store.outbox).sink_stats(&store.sink) {
            store.set_gauges(&stats);
        }
        Ok(store)
    }

    /// Stores all `messages` in one transaction per attempt and returns once
    /// they are committed (or evicted per `on_full`). With `on_full: block`
    /// it waits for the forwarder to make room; the caller's future being
    /// dropped (shutdown) ends the wait.
    pub(crate) async fn append(
        &self,
        messages: Vec<(String, Bytes)>,
        retain: bool,
    ) -> Result<(), ComponentError> {
        let messages = Arc::new(messages);
        let mut start = 0;
        while start < messages.len() {
            let this = self.clone();
            let msgs = Arc::clone(&messages);
            let (out, stats) = blocking(move || {
                let mut outbox = lock(&this.outbox);
                let entries: Vec<Entry<'_>> = msgs[start..]
                    .iter()
                    .map(|(topic, payload)| Entry {
                        topic,
                        payload,
                        qos: 1,
                        retain,
                    })
                    .collect();
                let out = outbox.append(&this.sink, this.priority, &entries);
                (out, outbox.sink_stats(&this.sink))
            })
            .await?;
            let out: AppendOutcome = out.map_err(ComponentError::from)?;
            self.count_evictions(&out.evicted);
            if let Ok(stats) = stats {
                self.set_gauges(&stats);
            }
            if out.consumed > 0 {
                self.appended.notify_one();
            }
            start += out.consumed;
            if !out.blocked {
                break;
            }
            tokio::time::sleep(BLOCK_RETRY).await;
        }
        Ok(())
    }

    fn count_evictions(&self, evicted: &Evictions) {
        let labels = self.metrics.labels();
        for (reason, rows) in evicted.iter() {
            if rows == 0 {
                continue;
            }
            self.metrics
                .counter_with(
                    names::OUTBOX_EVICTED_ROWS_TOTAL,
                    &[("reason", reason.as_str())],
                )
                .increment(rows);
            warn!(
                pipeline = %labels.pipeline, component = %labels.component_id, rows,
                reason = reason.as_str(), on_full = ?self.on_full,
                "Outbox is full; evicted rows."
            );
        }
    }

    fn set_gauges(&self, stats: &SinkStats) {
        // Gauges are f64 by definition; precision loss above 2^53 is moot.
        #[allow(clippy::cast_precision_loss)]
        {
            self.metrics
                .gauge(names::OUTBOX_STORED_ROWS)
                .set(stats.rows as f64);
            self.metrics
                .gauge(names::OUTBOX_STORED_BYTES)
                .set(stats.bytes as f64);
            let age_ms = stats
                .oldest_created_ms
                .map_or(0, |created| now_ms().saturating_sub(created).max(0));
            self.metrics
                .gauge(names::OUTBOX_OLDEST_AGE_SECONDS)
                .set(age_ms as f64 / 1000.0);
        }
    }

    /// Refreshes the stored rows/bytes/age gauges.
    pub(crate) async fn refresh_gauges(&self) {
        let this = self.clone();
        if let Ok(Ok(stats)) = blocking(move || lock(&this.outbox).sink_stats(&this.sink)).await {
            self.set_gauges(&stats);
        }
    }

    /// Up to `max` entries not yet leased, in delivery order.
    /// Leases up to `max` entries. While another sink of the same outbox
    /// file holds entries of a higher priority, `yielded` is true and at most
    /// one entry is leased, and only when `trickle` allows it: insights drain
    /// first, and bulk data keeps moving slowly even if their link is down.
    pub(crate) async fn lease(&self, max: usize, trickle: bool) -> Result<Lease, ComponentError> {
        let this = self.clone();
        blocking(move || {
            let mut outbox = lock(&this.outbox);
            let yielded = this.priority < Priority::High
                && outbox.has_higher_priority_pending(this.priority)?;
            let max = match (yielded, trickle) {
                (false, _) => max,
                (true, true) => 1,
                (true, false) => {
                    return Ok(Lease {
                        entries: Vec::new(),
                        yielded,
                    });
                }
            };
            let entries = outbox.lease(&this.sink, max)?;
            Ok(Lease { entries, yielded })
        })
        .await?
        .map_err(|e: sluice_outbox::OutboxError| ComponentError::from(e))
    }

    /// Deletes the entries the broker acknowledged and counts them.
    pub(crate) async fn ack(&self, ids: Vec<i64>) -> Result<(), ComponentError> {
        let this = self.clone();
        let (acked, stats) = blocking(move || {
            let mut outbox = lock(&this.outbox);
            let acked = outbox.ack(&ids);
            (acked, outbox.sink_stats(&this.sink))
        })
        .await?;
        let acked = acked.map_err(ComponentError::from)?;
        self.metrics
            .counter(names::OUTBOX_ACKED_ROWS_TOTAL)
            .increment(acked);
        if let Ok(stats) = stats {
            self.set_gauges(&stats);
        }
        Ok(())
    }

    /// Forgets the leases: the next lease starts at the oldest unacked entry.
    pub(crate) fn release(&self) {
        lock(&self.outbox).release(&self.sink);
    }

    /// Hands back leased entries that were not published (see
    /// [`Outbox::unlease`]).
    pub(crate) fn unlease(&self, entries: Vec<(Priority, i64)>) {
        lock(&self.outbox).unlease(&self.sink, entries);
    }
}

/// `payload` with `"_id":<id>` as the first member when it is a JSON object
/// (one message per row); arrays (`batch: true`) are returned unchanged.
pub(crate) fn with_id(payload: &[u8], id: i64) -> Bytes {
    let Some(rest) = payload.strip_prefix(b"{") else {
        return Bytes::copy_from_slice(payload);
    };
    let head = format!("{{\"_id\":{id}");
    let mut out = Vec::with_capacity(head.len() + payload.len() + 1);
    out.extend_from_slice(head.as_bytes());
    if !rest.trim_ascii_start().starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_becomes_the_first_member_of_object_payloads() {
        assert_eq!(&with_id(br#"{"a":1}"#, 42)[..], br#"{"_id":42,"a":1}"#);
        assert_eq!(&with_id(b"{}", 7)[..], br#"{"_id":7}"#);
        let v: serde_json::Value = serde_json::from_slice(&with_id(br#"{"a":[1]}"#, 9)).unwrap();
        assert_eq!(v["_id"], 9);
    }

    #[test]
    fn array_payloads_are_left_unchanged() {
        assert_eq!(&with_id(br#"[{"a":1}]"#, 42)[..], br#"[{"a":1}]"#);
    }
}
