//! The publish path of the sink: one task that owns the MQTT event loop and
//! tracks every accepted message until the broker acknowledges it.
//!
//! rumqttc assigns packet ids when it sends, in the order requests were
//! queued, so the n-th new `Outgoing::Publish` belongs to the n-th queued
//! message. Messages are kept until their PUBACK (QoS 1) or PUBCOMP (QoS 2):
//! when the broker starts a new session after a reconnect, rumqttc forgets its
//! unacknowledged packets and this tracker publishes them again, in order.
//! With an outbox, the forwarder feeds messages whose `seq` is the outbox id
//! and is told each completed `seq` (see [`PublisherConfig::acked`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use metrics::{Counter, Gauge};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use sluice_core::{Backoff, ComponentError, ComponentMetrics};

use crate::names;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::options::{ReconnectConfig, network_options};

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Position in acceptance order.
    pub seq: u64,
    /// Topic name (no wildcards).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
}

/// Unacknowledged messages, by stage.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Accepted, not yet handed to rumqttc.
    unsent: VecDeque<Message>,
    /// Handed to rumqttc, no packet id seen yet.
    handed: VecDeque<Message>,
    /// Sent with a packet id, waiting for the broker's acknowledgement.
    inflight: BTreeMap<u16, Message>,
}

impl Tracker {
    /// Messages rumqttc holds.
    fn in_window(&self) -> usize {
        self.handed.len() + self.inflight.len()
    }

    /// Messages not yet acknowledged.
    pub(crate) fn len(&self) -> usize {
        self.unsent.len() + self.in_window()
    }

    fn accept(&mut self, m: Message) {
        self.unsent.push_back(m);
    }

    /// The next message to hand to rumqttc, when the window has room.
    fn next_to_hand(&mut self, window: usize) -> Option<Message> {
        if self.in_window() >= window {
            return None;
        }
        let m = self.unsent.pop_front()?;
        self.handed.push_back(m.clone());
        Some(m)
    }

    /// rumqttc could not take `m` (queue full): try again later, first.
    fn unhand(&mut self) {
        if let Some(m) = self.handed.pop_back() {
            self.unsent.push_front(m);
        }
    }

    /// A handed message that will never be sent (rejected by rumqttc).
    fn reject_last_handed(&mut self) {
        self.handed.pop_back();
    }

    /// rumqttc wrote a PUBLISH. Returns `true` when that completes a QoS 0
    /// message. A packet id already in flight is a retransmission.
    fn on_sent(&mut self, pkid: u16, qos: QoS) -> bool {
        if qos == QoS::AtMostOnce {
            return self.handed.pop_front().is_some();
        }
        if self.inflight.contains_key(&pkid) {
            return false;
        }
        if let Some(m) = self.handed.pop_front() {
            self.inflight.insert(pkid, m);
        }
        false
    }

    /// The broker completed `pkid`. Returns the message when it was ours and unacked.
    fn on_acked(&mut self, pkid: u16) -> Option<Message> {
        self.inflight.remove(&pkid)
    }

    /// The broker started a new session: rumqttc dropped what it held, so all
    /// of it goes back to the front of the queue, in acceptance order.
    fn on_session_lost(&mut self) -> usize {
        let mut back: Vec<Message> = std::mem::take(&mut self.inflight).into_values().collect();
        back.extend(self.handed.drain(..));
        back.sort_by_key(|m| m.seq);
        let n = back.len();
        for m in back.into_iter().rev() {
            self.unsent.push_front(m);
        }
        n
    }
}

/// Settings of a publisher task.
#[derive(Debug, Clone)]
pub(crate) struct PublisherConfig {
    pub options: MqttOptions,
    pub qos: QoS,
    pub retain: bool,
    /// Messages rumqttc may hold at once (its in-flight limit).
    pub window: usize,
    pub reconnect: ReconnectConfig,
    pub pipeline: Arc<str>,
    pub id: Arc<str>,
    /// With an outbox: receives the `seq` of every completed message, so the
    /// outbox entry with that id can be acknowledged. Messages still tracked
    /// when the task ends stay in the outbox instead of being lost.
    pub acked: Option<mpsc::UnboundedSender<u64>>,
}

/// The sink's side of a publisher task.
#[derive(Debug)]
pub(crate) struct Publisher {
    tx: mpsc::Sender<Message>,
    link: watch::Receiver<bool>,
    done: watch::Receiver<u64>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    accepted: u64,
}

/// How long one message may wait for room in the publisher's queue while the
/// link is up (the broker is not acknowledging).
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(30);

impl Publisher {
    /// Spawns the task on the current runtime; it connects right away.
    pub(crate) fn spawn(cfg: PublisherConfig, metrics: &ComponentMetrics) -> Self {
        let (tx, rx) = mpsc::channel(cfg.window);
        let (link_tx, link) = watch::channel(false);
        let (done_tx, done) = watch::channel(0);
        let stop = CancellationToken::new();
        let (client, mut eventloop) = AsyncClient::new(cfg.options.clone(), cfg.window + 4);
        eventloop.set_network_options(network_options());
        let task = Task {
            backoff: cfg.reconnect.backoff(),
            cfg,
            client,
            rx,
            link: link_tx,
            done: done_tx,
            stop: stop.clone(),
            tracker: Tracker::default(),
            completed: 0,
            link_up: false,
            had_error: false,
            ever_connected: false,
            published: metrics.counter(names::MQTT_PUBLISHED_MESSAGES_TOTAL),
            link_gauge: metrics.gauge(names::LINK_UP),
            connection_errors: metrics.counter(names::MQTT_CONNECTION_ERRORS_TOTAL),
            reconnects: metrics.counter(names::MQTT_RECONNECTS_TOTAL),
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(task.run(eventloop));
        Self {
            tx,
            link,
            done,
            stop,
            task: Some(task),
            accepted: 0,
        }
    }

    /// Waits up to `wait` for the broker connection.
    pub(crate) async fn wait_link(&mut self, wait: Duration) -> Result<(), ComponentError> {
        match timeout(wait, self.link.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(ComponentError::external(
                "mqtt_link_down",
                format!("not connected to the MQTT broker after {wait:?}"),
            )),
        }
    }

    /// Hands one message to the task. Fails when the link goes down or the
    /// broker stops acknowledging; messages accepted before stay tracked.
    pub(crate) async fn publish(
        &mut self,
        topic: String,
        payload: Bytes,
    ) -> Result<(), ComponentError> {
        self.publish_seq(self.accepted, topic, payload).await
    }

    /// Like [`Publisher::publish`] with the caller's `seq` (an outbox id),
    /// which orders re-publication after a lost session and is reported on
    /// [`PublisherConfig::acked`] once the broker acknowledged the message.
    pub(crate) async fn publish_seq(
        &mut self,
        seq: u64,
        topic: String,
        payload: Bytes,
    ) -> Result<(), ComponentError> {
        if !*self.link.borrow() {
            return Err(link_lost());
        }
        let msg = Message {
            seq,
            topic,
            payload,
        };
        // Fast path without timers while the queue has room.
        let msg = match self.tx.try_send(msg) {
            Ok(()) => {
                self.accepted += 1;
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(gone()),
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
        };
        let link = &mut self.link;
        tokio::select! {
            r = self.tx.send(msg) => r.map_err(|_| gone())?,
            _ = link.wait_for(|up| !*up) => return Err(link_lost()),
            () = sleep(ENQUEUE_TIMEOUT) => {
                return Err(ComponentError::external(
                    "mqtt_publish_timeout",
                    format!("the MQTT broker acknowledged nothing for {ENQUEUE_TIMEOUT:?}"),
                ));
            }
        }
        self.accepted += 1;
        Ok(())
    }

    /// Waits up to `wait` until every accepted message is acknowledged;
    /// on timeout returns how many are not.
    pub(crate) async fn wait_acked(&mut self, wait: Duration) -> Result<(), u64> {
        let target = self.accepted;
        let acked = matches!(
            timeout(wait, self.done.wait_for(|d| *d >= target)).await,
            Ok(Ok(_))
        );
        if acked {
            Ok(())
        } else {
            Err(target.saturating_sub(*self.done.borrow()))
        }
    }

    /// Disconnects and waits (bounded) for the task to end.
    pub(crate) async fn close(mut self, wait: Duration) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if timeout(wait, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn link_lost() -> ComponentError {
    ComponentError::external("mqtt_link_down", "lost the MQTT broker connection")
}

fn gone() -> ComponentError {
    ComponentError::internal("mqtt_publisher_stopped", "the MQTT publisher task stopped")
}

struct Task {
    cfg: PublisherConfig,
    client: AsyncClient,
    rx: mpsc::Receiver<Message>,
    link: watch::Sender<bool>,
    done: watch::Sender<u64>,
    stop: CancellationToken,
    tracker: Tracker,
    completed: u64,
    link_up: bool,
    /// A connection attempt failed or the link dropped since the last ConnAck.
    had_error: bool,
    /// A ConnAck arrived at least once: later ones are reconnects.
    ever_connected: bool,
    backoff: Backoff,
    published: Counter,
    link_gauge: Gauge,
    connection_errors: Counter,
    reconnects: Counter,
    metrics: ComponentMetrics,
}

/// How long the task waits for its DISCONNECT to be written when stopping.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Task {
    async fn run(mut self, mut el: EventLoop) {
        let mut retry_at: Option<Instant> = None;
        let mut disconnect_by: Option<Instant> = None;
        loop {
            let accepting = disconnect_by.is_none() && self.tracker.len() < self.cfg.window;
            tokio::select! {
                biased;
                () = self.stop.cancelled(), if disconnect_by.is_none() => {
                    if !self.link_up || self.client.try_disconnect().is_err() {
                        break;
                    }
                    disconnect_by = Some(Instant::now() + DISCONNECT_TIMEOUT);
                }
                () = sleep_until(disconnect_by.unwrap_or_else(Instant::now)), if disconnect_by.is_some() => break,
                () = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    retry_at = None;
                }
                event = el.poll(), if retry_at.is_none() => match event {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) if disconnect_by.is_some() => break,
                    Ok(event) => self.on_event(event),
                    Err(e) => {
                        self.on_error(&e);
                        if disconnect_by.is_some() {
                            break;
                        }
                        retry_at = Some(Instant::now() + self.backoff.next_delay());
                    }
                },
                m = self.rx.recv(), if accepting => match m {
                    Some(m) => {
                        self.tracker.accept(m);
                        self.pump();
                    }
                    None => break,
                },
            }
        }
        self.set_link(false);
        let lost = self.tracker.len() + self.rx.len();
        if lost > 0 && self.cfg.acked.is_some() {
            info!(
                pipeline = %self.cfg.pipeline, component = %self.cfg.id, messages = lost,
                "MQTT forwarder stopped; unacknowledged messages stay in the outbox."
            );
        } else if lost > 0 {
            error!(
                pipeline = %self.cfg.pipeline, component = %self.cfg.id, messages = lost,
                "MQTT sink stopped with unacknowledged messages; they are lost."
            );
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                if self.had_error && self.ever_connected {
                    self.reconnects.increment(1);
                }
                self.had_error = false;
                self.ever_connected = true;
                self.backoff.reset();
                if !ack.session_present {
                    let resent = self.tracker.on_session_lost();
                    if resent > 0 {
                        info!(
                            pipeline = %self.cfg.pipeline, component = %self.cfg.id, messages = resent,
                            "Publishing unacknowledged MQTT messages again in the new session."
                        );
                    }
                }
                self.set_link(true);
                self.pump();
            }
            Event::Incoming(Packet::PubAck(ack)) if self.cfg.qos == QoS::AtLeastOnce => {
                self.complete(ack.pkid);
            }
            Event::Incoming(Packet::PubComp(ack)) if self.cfg.qos == QoS::ExactlyOnce => {
                self.complete(ack.pkid);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let completes_qos0 = self.tracker.on_sent(pkid, self.cfg.qos);
                if completes_qos0 {
                    self.completed_one();
                }
            }
            _ => {}
        }
    }

    fn complete(&mut self, pkid: u16) {
        if let Some(m) = self.tracker.on_acked(pkid) {
            self.report_acked(m.seq);
            self.completed_one();
            self.pump();
        }
    }

    fn report_acked(&self, seq: u64) {
        if let Some(acked) = &self.cfg.acked {
            // The receiver is gone only when the forwarder stopped; the entry
            // then stays in the outbox and is sent again (at-least-once).
            acked.send(seq).ok();
        }
    }

    fn completed_one(&mut self) {
        self.completed += 1;
        self.published.increment(1);
        self.done.send_replace(self.completed);
    }

    fn on_error(&mut self, e: &rumqttc::ConnectionError) {
        self.connection_errors.increment(1);
        let was_up = self.link_up;
        self.had_error = true;
        self.set_link(false);
        if let rumqttc::ConnectionError::ConnectionRefused(code) = e {
            error!(pipeline = %self.cfg.pipeline, component = %self.cfg.id, code = ?code, "MQTT broker refused the connection.");
        } else if was_up {
            warn!(pipeline = %self.cfg.pipeline, component = %self.cfg.id, error = %e, "Lost connection to MQTT broker.");
        } else {
            warn!(pipeline = %self.cfg.pipeline, component = %self.cfg.id, error = %e, "Cannot connect to MQTT broker.");
        }
    }

    fn set_link(&mut self, up: bool) {
        self.link_up = up;
        self.link.send_replace(up);
        self.link_gauge.set(if up { 1.0 } else { 0.0 });
    }

    /// Hands queued messages to rumqttc while the link is up and its window
    /// has room. The request channel holds more than the window, so
    /// `try_publish` does not fail for lack of room.
    fn pump(&mut self) {
        while self.link_up {
            let Some(m) = self.tracker.next_to_hand(self.cfg.window) else {
                break;
            };
            if !is_topic_name(&m.topic) {
                // The sink sanitises topics before accepting them; this only
                // guards the invariant so one bad message cannot stall the queue.
                self.tracker.reject_last_handed();
                self.report_acked(m.seq);
                self.metrics.discarded("invalid_topic", false, 1);
                self.completed_one();
                error!(pipeline = %self.cfg.pipeline, component = %self.cfg.id, "Dropped MQTT message with an invalid topic.");
                continue;
            }
            let payload = Vec::from(m.payload);
            if self
                .client
                .try_publish(m.topic, self.cfg.qos, self.cfg.retain, payload)
                .is_err()
            {
                self.tracker.unhand();
                break;
            }
        }
    }
}

/// Whether `topic` is a valid MQTT topic name (not a filter).
pub(crate) fn is_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= 65_535 && !topic.contains(['+', '#', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> Message {
        Message {
            seq,
            topic: format!("t/{seq}"),
            payload: Bytes::from_static(b"{}"),
        }
    }

    fn seqs(t: &Tracker) -> Vec<u64> {
        t.unsent.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn matches_packet_ids_to_messages_in_queue_order() {
        let mut t = Tracker::default();
        (0..3).for_each(|i| t.accept(msg(i)));
        assert_eq!(t.next_to_hand(2).unwrap().seq, 0);
        assert_eq!(t.next_to_hand(2).unwrap().seq, 1);
        assert!(t.next_to_hand(2).is_none(), "window of 2 is full");
        t.on_sent(7, QoS::AtLeastOnce);
        t.on_sent(8, QoS::AtLeastOnce);
        assert_eq!(t.inflight.get(&7).unwrap().seq, 0);
        assert_eq!(t.inflight.get(&8).unwrap().seq, 1);
        assert_eq!(t.on_acked(7).unwrap().seq, 0);
        assert!(t.on_acked(7).is_none(), "a duplicate ack completes nothing");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn retransmissions_do_not_consume_queued_messages() {
        let mut t = Tracker::default();
        (0..2).for_each(|i| t.accept(msg(i)));
        t.next_to_hand(10);
        t.on_sent(1, QoS::AtLeastOnce);
        t.next_to_hand(10);
        t.on_sent(1, QoS::AtLeastOnce);
        assert_eq!(
            t.handed.len(),
            1,
            "the retransmitted pkid 1 must not take message 1"
        );
        t.on_sent(2, QoS::AtLeastOnce);
        assert_eq!(t.inflight.get(&2).unwrap().seq, 1);
    }

    #[test]
    fn a_new_session_requeues_everything_unacked_in_order() {
        let mut t = Tracker::default();
        (0..5).for_each(|i| t.accept(msg(i)));
        for _ in 0..3 {
            t.next_to_hand(10);
        }
        t.on_sent(9, QoS::AtLeastOnce);
        t.on_sent(3, QoS::AtLeastOnce);
        assert!(t.on_acked(9).is_some());
        assert_eq!(t.on_session_lost(), 2);
        assert_eq!(seqs(&t), vec![1, 2, 3, 4]);
        assert_eq!(t.in_window(), 0);
    }

    #[test]
    fn qos0_messages_complete_when_written() {
        let mut t = Tracker::default();
        t.accept(msg(0));
        t.next_to_hand(10);
        assert!(t.on_sent(0, QoS::AtMostOnce));
        assert_eq!(t.len(), 0);
    }
}
