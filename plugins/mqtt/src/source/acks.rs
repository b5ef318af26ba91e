//! PUBACKs after the pipeline is done with a message.
//!
//! With `ack: downstream` the source confirms a QoS 1 message to the broker
//! only once the batch it travelled in has been handled everywhere downstream
//! (written by every sink, committed to every outbox, or taken into a
//! window). PUBACKs go out in receive order, as MQTT requires: a batch that
//! settles early waits for the batches received before it.

use std::collections::VecDeque;

use rumqttc::{AsyncClient, Publish, QoS};
use sluice_core::{Ack, AckTracker, Settled};

/// One emitted batch waiting for its ack.
#[derive(Debug)]
struct Pending {
    seq: u64,
    ids: Vec<(u16, QoS)>,
    settled: bool,
}

/// Receive-ordered bookkeeping of unacknowledged messages.
#[derive(Debug, Default)]
pub(super) struct Acks {
    tracker: AckTracker,
    /// Packet ids (and QoS) of the batch being filled.
    current: Vec<(u16, QoS)>,
    /// Emitted batches, oldest first.
    pending: VecDeque<Pending>,
    /// Settled packet ids whose PUBACK could not be queued yet.
    ready: VecDeque<(u16, QoS)>,
}

/// Why the source must reconnect instead of acknowledging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Failed {
    pub seq: u64,
}

impl Acks {
    /// Records a received QoS 1 message (QoS 0 messages need no ack).
    pub fn received(&mut self, p: &Publish) {
        if p.qos != QoS::AtMostOnce {
            self.current.push((p.pkid, p.qos));
        }
    }

    /// Messages received but not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.current.len()
            + self.ready.len()
            + self.pending.iter().map(|p| p.ids.len()).sum::<usize>()
    }

    /// Whether nothing emitted is still waiting downstream.
    pub fn all_settled(&self) -> bool {
        self.pending.is_empty() && self.current.is_empty()
    }

    /// Closes the current batch: returns the ack to attach to it, or `None`
    /// when it holds no QoS 1 message.
    pub fn seal(&mut self) -> Option<Ack> {
        if self.current.is_empty() {
            return None;
        }
        let ack = self.tracker.token();
        self.pending.push_back(Pending {
            seq: ack.seq(),
            ids: std::mem::take(&mut self.current),
            settled: false,
        });
        Some(ack)
    }

    /// Waits until some batch settles.
    pub async fn settled(&mut self) -> Settled {
        self.tracker.settled().await
    }

    /// Applies a settlement and moves every leading settled batch to the
    /// ready queue. Fails when a component gave up on a batch: its messages
    /// must be redelivered, so the source reconnects without acking them.
    pub fn apply(&mut self, s: Settled) -> Result<(), Failed> {
        if !s.ok {
            return Err(Failed { seq: s.seq });
        }
        let Some(front) = self.pending.front().map(|p| p.seq) else {
            return Ok(());
        };
        // Sequence numbers are contiguous from the front.
        if let Some(idx) = s
            .seq
            .checked_sub(front)
            .and_then(|i| usize::try_from(i).ok())
            && let Some(p) = self.pending.get_mut(idx)
        {
            p.settled = true;
        }
        while self.pending.front().is_some_and(|p| p.settled) {
            if let Some(p) = self.pending.pop_front() {
                self.ready.extend(p.ids);
            }
        }
        Ok(())
    }

    /// Applies every settlement already waiting.
    pub fn apply_waiting(&mut self) -> Result<(), Failed> {
        while let Some(s) = self.tracker.try_settled() {
            self.apply(s)?;
        }
        Ok(())
    }

    /// Queues PUBACKs for ready messages, in order, until the client's
    /// request queue is full (the event loop drains it; call again later).
    /// Returns how many were queued.
    pub fn send_ready(&mut self, client: &AsyncClient) -> usize {
        let mut sent = 0;
        while let Some(&(pkid, qos)) = self.ready.front() {
            let mut p = Publish::new("", qos, Vec::new());
            p.pkid = pkid;
            if client.try_ack(&p).is_err() {
                break;
            }
            self.ready.pop_front();
            sent += 1;
        }
        sent
    }

    /// Whether PUBACKs are waiting for room in the client's queue.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(pkid: u16) -> Publish {
        let mut p = Publish::new("t", QoS::AtLeastOnce, b"{}".to_vec());
        p.pkid = pkid;
        p
    }

    fn ready(a: &Acks) -> Vec<u16> {
        a.ready.iter().map(|(id, _)| *id).collect()
    }

    #[tokio::test]
    async fn acks_in_receive_order_even_when_later_batches_settle_first() {
        let mut a = Acks::default();
        a.received(&publish(1));
        a.received(&publish(2));
        let first = a.seal().unwrap();
        a.received(&publish(3));
        let second = a.seal().unwrap();
        assert_eq!(a.unacked(), 3);
        drop(second);
        let s = a.settled().await;
        a.apply(s).unwrap();
        assert!(ready(&a).is_empty(), "batch 0 is still downstream");
        drop(first);
        let s = a.settled().await;
        a.apply(s).unwrap();
        assert_eq!(ready(&a), vec![1, 2, 3]);
        assert!(a.all_settled());
    }

    #[tokio::test]
    async fn a_failed_batch_is_reported_and_not_acked() {
        let mut a = Acks::default();
        a.received(&publish(7));
        let ack = a.seal().unwrap();
        ack.fail();
        drop(ack);
        let s = a.settled().await;
        assert_eq!(a.apply(s), Err(Failed { seq: 0 }));
        assert!(ready(&a).is_empty());
    }

    #[test]
    fn qos0_messages_need_no_ack() {
        let mut a = Acks::default();
        a.received(&Publish::new("t", QoS::AtMostOnce, Vec::new()));
        assert!(a.seal().is_none());
        assert!(a.all_settled());
    }

    #[tokio::test]
    async fn settlements_already_waiting_are_applied_at_once() {
        let mut a = Acks::default();
        for id in 1..=3 {
            a.received(&publish(id));
            drop(a.seal());
        }
        a.apply_waiting().unwrap();
        assert_eq!(ready(&a), vec![1, 2, 3]);
    }
}
