//! End-to-end acknowledgement of source batches.
//!
//! A source that can redeliver (MQTT at QoS 1 with a persistent session)
//! attaches an [`Ack`] to every batch it emits and confirms the messages to
//! its upstream only once the batch is done everywhere downstream:
//!
//! - the topology hands the ack of the message a component is processing to
//!   everything that component emits meanwhile, so derived batches carry it;
//! - a sink drops its reference once `write` returned `Ok` (for a sink with
//!   an outbox: once the rows are committed to SQLite);
//! - a windowed transform drops it once it has taken the rows into a window
//!   (durable window state is not kept: a crash loses open windows);
//! - a batch dropped on a `drop_newest` edge releases its ack: the drop is
//!   counted and was asked for.
//!
//! When the last reference goes, the source learns the batch's sequence
//! number, and whether any holder gave up on it with [`Ack::fail`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::msg::Msg;

/// Outcome of one source batch, reported when its last [`Ack`] is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Sequence number given by [`AckTracker::token`].
    pub seq: u64,
    /// `false` when a component gave up on the batch ([`Ack::fail`]).
    pub ok: bool,
}

#[derive(Debug)]
struct Inner {
    seq: u64,
    failed: AtomicBool,
    tx: mpsc::UnboundedSender<Settled>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let settled = Settled {
            seq: self.seq,
            ok: !self.failed.load(Ordering::Acquire),
        };
        // The source may be gone (shutdown or rebuilt after an error): its
        // unacknowledged messages are then redelivered by the broker.
        self.tx.send(settled).ok();
    }
}

/// A shared reference to one in-flight source batch.
#[derive(Debug, Clone)]
pub struct Ack(Arc<Inner>);

impl Ack {
    /// Marks the batch as not handled: the source must not confirm it.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }

    /// Sequence number of the batch.
    pub fn seq(&self) -> u64 {
        self.0.seq
    }
}

/// Hands out [`Ack`]s for a source's batches and reports them settled.
#[derive(Debug)]
pub struct AckTracker {
    next_seq: u64,
    tx: mpsc::UnboundedSender<Settled>,
    rx: mpsc::UnboundedReceiver<Settled>,
}

impl Default for AckTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl AckTracker {
    /// A tracker whose first batch gets sequence number 0.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            next_seq: 0,
            tx,
            rx,
        }
    }

    /// An ack for the next batch, numbered in emit order.
    pub fn token(&mut self) -> Ack {
        let seq = self.next_seq;
        self.next_seq += 1;
        Ack(Arc::new(Inner {
            seq,
            failed: AtomicBool::new(false),
            tx: self.tx.clone(),
        }))
    }

    /// Waits for the next settled batch (in any order).
    pub async fn settled(&mut self) -> Settled {
        match self.rx.recv().await {
            Some(s) => s,
            // The tracker holds a sender itself, so the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// A settled batch, if one is waiting.
    pub fn try_settled(&mut self) -> Option<Settled> {
        self.rx.try_recv().ok()
    }
}

/// What travels on an edge: a message, the ack of the source batch it came
/// from (if that source tracks acks) and which input of the receiver it
/// arrived on.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The payload.
    pub msg: Msg,
    /// Held until the receiving component is done with `msg`.
    pub ack: Option<Ack>,
    /// Position of the producer in the receiver's `inputs` list (0 for a
    /// receiver with one input). All inputs share one queue, so this is the
    /// only way a receiver tells them apart.
    pub input: usize,
}

impl Delivery {
    /// A delivery without an ack, on input 0.
    pub fn new(msg: Msg) -> Self {
        Self {
            msg,
            ack: None,
            input: 0,
        }
    }

    /// Number of rows in the message.
    pub fn num_rows(&self) -> usize {
        self.msg.num_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_when_the_last_clone_is_dropped() {
        let mut t = AckTracker::new();
        let a = t.token();
        let b = t.token();
        let a2 = a.clone();
        drop(a);
        assert_eq!(t.try_settled(), None);
        drop(b);
        assert_eq!(t.settled().await, Settled { seq: 1, ok: true });
        drop(a2);
        assert_eq!(t.settled().await, Settled { seq: 0, ok: true });
    }

    #[tokio::test]
    async fn a_failed_holder_marks_the_batch_failed() {
        let mut t = AckTracker::new();
        let a = t.token();
        let a2 = a.clone();
        a2.fail();
        drop(a2);
        drop(a);
        assert_eq!(t.settled().await, Settled { seq: 0, ok: false });
    }

    #[test]
    fn dropping_after_the_tracker_is_gone_is_harmless() {
        let mut t = AckTracker::new();
        let a = t.token();
        drop(t);
        drop(a);
    }
}
