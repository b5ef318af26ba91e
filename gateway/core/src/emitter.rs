//! The only way a component sends downstream.

use std::num::NonZeroUsize;

use arrow_array::RecordBatch;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::ack::{Ack, Delivery};
use crate::error::ComponentError;
use crate::metrics::{ComponentMetrics, EdgeMetrics};
use crate::msg::Msg;

/// What an edge does when its queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: a slow consumer slows its producers (no data loss).
    #[default]
    Block,
    /// Drop the new batch and count it as `queue_full`.
    DropNewest,
}

/// Queue settings of a component's input edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BufferConfig {
    /// Batches the input queue holds.
    #[serde(default = "default_capacity")]
    pub capacity: NonZeroUsize,
    /// What producers do when the queue is full.
    #[serde(default)]
    pub when_full: WhenFull,
}

fn default_capacity() -> NonZeroUsize {
    NonZeroUsize::MIN.saturating_add(7)
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            capacity: default_capacity(),
            when_full: WhenFull::Block,
        }
    }
}

/// One downstream edge.
#[derive(Debug, Clone)]
pub struct Output {
    /// Input queue of the downstream component.
    pub tx: mpsc::Sender<Delivery>,
    /// Policy of that queue.
    pub when_full: WhenFull,
    /// Edge counters.
    pub edge: EdgeMetrics,
}

/// Sends batches to every downstream component in turn (the slowest consumer
/// sets the pace) and counts what was sent.
#[derive(Debug, Clone)]
pub struct Emitter {
    /// Each output with the position of this component in that consumer's
    /// `inputs` list, stamped on every delivery as [`Delivery::input`].
    outputs: Vec<(Output, usize)>,
    metrics: ComponentMetrics,
    /// Ack of the message being processed, attached to everything emitted.
    ack: Option<Ack>,
}

impl Emitter {
    /// An emitter over `outputs`, counting into `metrics`; every delivery is
    /// marked as arriving on input 0.
    pub fn new(outputs: Vec<Output>, metrics: ComponentMetrics) -> Self {
        Self::with_input_positions(outputs.into_iter().map(|o| (o, 0)).collect(), metrics)
    }

    /// An emitter over `outputs`, each paired with the position of the
    /// emitting component in that consumer's `inputs` list.
    pub fn with_input_positions(outputs: Vec<(Output, usize)>, metrics: ComponentMetrics) -> Self {
        Self {
            outputs,
            metrics,
            ack: None,
        }
    }

    /// Attaches `ack` to everything emitted until the next call; the topology
    /// sets it to the ack of the message a component is processing, a source
    /// to the ack of the batch it is about to emit.
    pub fn set_ack(&mut self, ack: Option<Ack>) {
        self.ack = ack;
    }

    /// The metrics of the emitting component.
    pub fn metrics(&self) -> &ComponentMetrics {
        &self.metrics
    }

    /// Whether anything reads from this component.
    pub fn has_outputs(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// Sends `batch` to every output. Empty batches are skipped.
    ///
    /// Waits for room on `block` edges. Fails with `downstream_closed` only when
    /// every downstream has gone away.
    pub async fn emit(&mut self, batch: RecordBatch) -> Result<(), ComponentError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.emit_msg(Msg::Rows(batch)).await
    }

    /// Sends any payload to every output, like [`Emitter::emit`].
    pub async fn emit_msg(&mut self, msg: Msg) -> Result<(), ComponentError> {
        let rows = msg.num_rows();
        let mut delivered = 0usize;
        let n = self.outputs.len();
        for (out, input) in &self.outputs {
            // Arrow arrays and frames are reference counted: cloning is cheap.
            let msg = Delivery {
                msg: msg.clone(),
                ack: self.ack.clone(),
                input: *input,
            };
            match out.when_full {
                WhenFull::Block => {
                    if out.tx.send(msg).await.is_ok() {
                        out.edge.sent();
                        delivered += 1;
                    }
                }
                WhenFull::DropNewest => match out.tx.try_send(msg) {
                    Ok(()) => {
                        out.edge.sent();
                        delivered += 1;
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.metrics.discarded("queue_full", false, rows as u64);
                        delivered += 1;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                },
            }
        }
        if delivered == 0 && n > 0 {
            return Err(ComponentError::downstream_closed());
        }
        self.metrics.sent(rows);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;

    use super::*;
    use crate::metrics::{ComponentKind, ComponentLabels};

    fn batch(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from_iter_values(0..n)) as _)])
            .unwrap()
    }

    fn emitter(outs: Vec<(mpsc::Sender<Delivery>, WhenFull)>) -> Emitter {
        let m = ComponentMetrics::new(ComponentLabels::new(
            "p",
            "c",
            ComponentKind::Transform,
            "test",
        ));
        let outputs = outs
            .into_iter()
            .map(|(tx, when_full)| Output {
                tx,
                when_full,
                edge: EdgeMetrics::new("p", "c", "d"),
            })
            .collect();
        Emitter::new(outputs, m)
    }

    #[tokio::test]
    async fn fans_out_to_every_output() {
        let (a, mut ra) = mpsc::channel(1);
        let (b, mut rb) = mpsc::channel(1);
        let mut e = emitter(vec![(a, WhenFull::Block), (b, WhenFull::Block)]);
        e.emit(batch(3)).await.unwrap();
        assert_eq!(ra.recv().await.unwrap().num_rows(), 3);
        assert_eq!(rb.recv().await.unwrap().num_rows(), 3);
    }

    #[tokio::test]
    async fn drop_newest_edge_does_not_wait_when_full() {
        let (a, mut ra) = mpsc::channel(1);
        let mut e = emitter(vec![(a, WhenFull::DropNewest)]);
        e.emit(batch(1)).await.unwrap();
        e.emit(batch(2)).await.unwrap();
        assert_eq!(ra.recv().await.unwrap().num_rows(), 1);
        assert!(ra.try_recv().is_err());
    }

    #[tokio::test]
    async fn attaches_the_current_ack_until_it_is_cleared() {
        let (a, mut ra) = mpsc::channel(4);
        let mut e = emitter(vec![(a, WhenFull::Block)]);
        let mut tracker = crate::ack::AckTracker::new();
        e.set_ack(Some(tracker.token()));
        e.emit(batch(1)).await.unwrap();
        e.set_ack(None);
        e.emit(batch(2)).await.unwrap();
        let first = ra.recv().await.unwrap();
        assert_eq!(first.ack.as_ref().map(|a| a.seq()), Some(0));
        assert!(ra.recv().await.unwrap().ack.is_none());
        assert_eq!(tracker.try_settled(), None, "the delivery still holds it");
        drop(first);
        assert_eq!(tracker.settled().await.seq, 0);
    }

    #[tokio::test]
    async fn marks_each_delivery_with_the_input_position_at_its_consumer() {
        let (a, mut ra) = mpsc::channel(1);
        let (b, mut rb) = mpsc::channel(1);
        let m = ComponentMetrics::new(ComponentLabels::new(
            "p",
            "c",
            ComponentKind::Transform,
            "test",
        ));
        let output = |tx| Output {
            tx,
            when_full: WhenFull::Block,
            edge: EdgeMetrics::new("p", "c", "d"),
        };
        let mut e = Emitter::with_input_positions(vec![(output(a), 0), (output(b), 2)], m);
        e.emit(batch(1)).await.unwrap();
        assert_eq!(ra.recv().await.unwrap().input, 0);
        assert_eq!(rb.recv().await.unwrap().input, 2);
    }

    #[tokio::test]
    async fn fails_when_every_downstream_is_gone() {
        let (a, ra) = mpsc::channel(1);
        drop(ra);
        let mut e = emitter(vec![(a, WhenFull::Block)]);
        assert_eq!(
            e.emit(batch(1)).await.unwrap_err().code,
            "downstream_closed"
        );
    }
}
