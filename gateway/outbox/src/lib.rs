//! Durable store-and-forward outbox and local event history on SQLite.
//!
//! A cloud-bound sink appends every message to the outbox before it
//! acknowledges the batch to the pipeline, and a forwarder leases entries,
//! publishes them and acks each one after the broker's PUBACK:
//!
//! ```no_run
//! use sluice_outbox::{Entry, OpenOptions, Outbox, Priority};
//!
//! # fn main() -> Result<(), sluice_outbox::OutboxError> {
//! let (mut outbox, report) = Outbox::open("/var/lib/sluice/cloud.db", OpenOptions::default())?;
//! if let Some(q) = &report.quarantined {
//!     eprintln!("moved damaged outbox to {}: {}", q.moved_to.display(), q.reason);
//! }
//! // One transaction (one fsync) per call: batch the entries of a micro-batch.
//! let entries = [Entry { topic: "plant/line3", payload: b"{\"t\":21.5}", qos: 1, retain: false }];
//! let outcome = outbox.append("cloud", Priority::Normal, &entries)?;
//! for (reason, n) in outcome.evicted.iter() {
//!     eprintln!("evicted {n} entries: {}", reason.as_str());
//! }
//! for leased in outbox.lease("cloud", 64)? {
//!     // publish with QoS 1, carry `leased.id` as the de-duplication id,
//!     // and once the PUBACK arrived:
//!     outbox.ack(&[leased.id])?;
//! }
//! # Ok(()) }
//! ```
//!
//! Durability: WAL journal with `synchronous = FULL`, so `append` returns only
//! after its transaction is fsynced; a power loss loses nothing that was
//! acknowledged. Leases are in memory: after a crash every un-acked entry is
//! delivered again (at-least-once; the stable id lets the cloud de-duplicate).
//! See the crate README for the schema, eviction policy and measured figures.
#![warn(missing_docs)]

mod config;
mod error;
mod evict;
mod history;
mod inspect;
mod lease;
mod open;
mod outbox;
mod schema;

#[cfg(test)]
mod tests;

pub use config::{
    DEFAULT_BUSY_TIMEOUT, DEFAULT_MAX_BYTES, Durability, HistoryConfig, HistoryLimits, OnFull,
    OpenOptions, OutboxConfig, Priority,
};
pub use error::OutboxError;
pub use evict::{EvictReason, Evictions};
pub use history::{PruneReport, StoredEntry};
pub use inspect::{OutboxReader, PriorityStats, SinkStats, Stats};
pub use open::Quarantined;
pub use outbox::{
    AppendOutcome, ENTRY_OVERHEAD_BYTES, Entry, Leased, OpenReport, Outbox, entry_size,
};
pub use schema::SCHEMA_VERSION;
