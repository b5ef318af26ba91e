//! The run loop of the `mqtt` source: connection, subscription, batching,
//! backoff and shutdown.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet};
use rumqttc::{SubscribeFilter, SubscribeReasonCode};
use sluice_core::{ComponentError, Source, SourceCx};
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{error, info, warn};

use super::acks::Acks;
use super::{AckMode, MqttSource, OnBadData};
use crate::droplog::Drops;
use crate::options::network_options;

/// How long shutdown waits for the DISCONNECT to be written.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long shutdown waits for in-flight batches to settle downstream so
/// their PUBACKs can be sent; the rest is redelivered on the next start.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection and batch state of one run.
struct Run {
    src: MqttSource,
    client: AsyncClient,
    /// A connection attempt failed or the link dropped since the last ConnAck.
    had_error: bool,
    connected: bool,
    /// A ConnAck arrived at least once: later ones are reconnects.
    ever_connected: bool,
    /// The broker acknowledged our subscriptions in the current session.
    subscribed: bool,
    batch_started: Option<Instant>,
    batch_bytes: usize,
    drops: Drops,
    /// Unacknowledged messages, with `ack: downstream` at QoS 1.
    acks: Option<Acks>,
}

impl Source for MqttSource {
    async fn run(self, mut cx: SourceCx) -> Result<(), ComponentError> {
        // Room for a batch worth of PUBACK requests between two polls.
        let cap = self.max_batch_rows.clamp(16, 4096);
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), cap);
        eventloop.set_network_options(network_options());
        let acks = (self.ack == AckMode::Downstream).then(Acks::default);
        let mut run = Run {
            src: self,
            client,
            had_error: false,
            connected: false,
            ever_connected: false,
            subscribed: false,
            batch_started: None,
            batch_bytes: 0,
            drops: Drops::default(),
            acks,
        };
        let result = run.main_loop(&mut eventloop, &mut cx).await;
        let result = match result {
            Ok(()) => run.shutdown(&mut eventloop, &mut cx).await,
            Err(e) => Err(e),
        };
        cx.ready.set(false);
        run.src.link_up.set(0.0);
        result
    }
}

impl Run {
    async fn main_loop(
        &mut self,
        el: &mut EventLoop,
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        // Both futures live across iterations: re-creating them per message
        // would register a waiter and a timer for every message.
        let shutdown = cx.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let linger = sleep(Duration::ZERO);
        tokio::pin!(linger);
        let mut linger_armed = false;
        loop {
            match self.batch_started {
                Some(start) if !linger_armed => {
                    linger.as_mut().reset(start + self.src.linger);
                    linger_armed = true;
                }
                None => linger_armed = false,
                Some(_) => {}
            }
            let manual = self.acks.is_some();
            tokio::select! {
                biased;
                () = &mut cancelled => return Ok(()),
                () = &mut linger, if linger_armed => {
                    linger_armed = false;
                    self.flush(cx).await?;
                }
                event = el.poll() => match event {
                    Ok(Event::Incoming(packet)) => {
                        self.on_packet(packet, cx).await?;
                        self.send_acks();
                    }
                    Ok(Event::Outgoing(_)) => self.send_acks(),
                    Err(e) => {
                        self.on_connection_error(&e, cx);
                        // Rows already received must not wait for the link.
                        self.flush(cx).await?;
                        // PUBACKs owed on the old connection are void: the
                        // broker redelivers those messages.
                        if let Some(acks) = &mut self.acks {
                            *acks = Acks::default();
                        }
                        let delay = self.src.backoff.next_delay();
                        tokio::select! {
                            () = &mut cancelled => return Ok(()),
                            () = sleep(delay) => {}
                        }
                    }
                },
                settled = settled(&mut self.acks), if manual => {
                    self.on_settled(settled, cx)?;
                }
                // Nothing more is buffered on the socket: with PUBACKs held
                // until downstream is done, the broker sends no more than its
                // in-flight window, so waiting for `linger` would stall it.
                () = std::future::ready(()), if manual && self.batch_started.is_some() => {
                    linger_armed = false;
                    self.flush(cx).await?;
                }
            }
        }
    }

    /// Applies a settled batch (and any others waiting) and queues the
    /// PUBACKs now due.
    fn on_settled(
        &mut self,
        settled: sluice_core::Settled,
        cx: &SourceCx,
    ) -> Result<(), ComponentError> {
        let Some(acks) = &mut self.acks else {
            return Ok(());
        };
        let applied = acks.apply(settled).and_then(|()| acks.apply_waiting());
        if let Err(f) = applied {
            warn!(pipeline = %cx.pipeline, component = %cx.id, batch = f.seq,
                "A downstream component gave up on a batch; reconnecting so the broker redelivers it.");
            return Err(ComponentError::external(
                "mqtt_redeliver",
                format!(
                    "batch {} was not handled downstream; its messages are redelivered",
                    f.seq
                ),
            ));
        }
        self.send_acks();
        Ok(())
    }

    fn send_acks(&mut self) {
        if let Some(acks) = &mut self.acks
            && acks.has_ready()
        {
            acks.send_ready(&self.client);
        }
    }

    async fn on_packet(&mut self, packet: Packet, cx: &mut SourceCx) -> Result<(), ComponentError> {
        match packet {
            Packet::Publish(p) => {
                if let Some(acks) = &mut self.acks {
                    acks.received(&p);
                }
                self.on_message(&p.topic, &p.payload, cx).await
            }
            Packet::ConnAck(ack) => {
                if self.had_error && self.ever_connected {
                    self.src.reconnects.increment(1);
                }
                self.had_error = false;
                self.connected = true;
                self.ever_connected = true;
                self.src.backoff.reset();
                self.src.link_up.set(1.0);
                info!(pipeline = %cx.pipeline, component = %cx.id, session_present = ack.session_present, "Connected to MQTT broker.");
                if ack.session_present && self.subscribed {
                    cx.ready.set(true);
                    return Ok(());
                }
                self.subscribed = false;
                let filters = self
                    .src
                    .filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), self.src.qos));
                self.client.try_subscribe_many(filters).map_err(|e| {
                    ComponentError::internal("mqtt_subscribe", format!("queueing SUBSCRIBE: {e}"))
                })
            }
            Packet::SubAck(ack) => {
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(&self.src.filters)
                    .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                    .map(|(_, f)| f.as_str())
                    .collect();
                if !refused.is_empty() {
                    let msg = format!("broker refused subscription to {refused:?} (check its ACL)");
                    error!(pipeline = %cx.pipeline, component = %cx.id, topics = ?refused, "MQTT subscription refused.");
                    return Err(ComponentError::user("mqtt_subscribe_refused", msg));
                }
                self.subscribed = true;
                cx.ready.set(true);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        let now = Instant::now();
        self.batch_started.get_or_insert(now);
        self.batch_bytes += payload.len();
        match self.src.decoder.decode(payload, topic) {
            Ok(()) => {
                if self.src.decoder.rows() >= self.src.max_batch_rows {
                    self.flush(cx).await?;
                }
            }
            Err(reason) => {
                if let Some(suppressed) = self.drops.record(reason, now) {
                    warn!(
                        pipeline = %cx.pipeline, component = %cx.id, topic, reason = reason.as_str(),
                        suppressed, "Dropped MQTT message that does not match the schema."
                    );
                }
                if self.src.on_bad_data == OnBadData::Fail {
                    self.flush(cx).await?;
                    return Err(ComponentError::user(
                        "bad_data",
                        format!("message on topic `{topic}` dropped: {reason} (on_bad_data: fail)"),
                    ));
                }
                // Drop bookkeeping is bounded like rows are.
                if self.drops.total() >= self.src.max_batch_rows as u64 {
                    self.flush(cx).await?;
                }
            }
        }
        Ok(())
    }

    /// Emits the rows received since the last flush and counts what was
    /// received and dropped. While `emit` waits for downstream room, the event
    /// loop is not polled: the broker holds further messages (backpressure).
    async fn flush(&mut self, cx: &mut SourceCx) -> Result<(), ComponentError> {
        self.batch_started = None;
        let rows = self.src.decoder.rows();
        if rows == 0 && !self.drops.any() {
            return Ok(());
        }
        let dropped = self.drops.total();
        let metrics = cx.out.metrics();
        metrics.received(
            rows + dropped as usize,
            std::mem::take(&mut self.batch_bytes),
        );
        for (reason, n) in self.drops.take_counts() {
            metrics.discarded(reason.as_str(), false, n);
        }
        let batch =
            self.src.decoder.finish().map_err(|e| {
                ComponentError::internal("mqtt_batch", format!("building batch: {e}"))
            })?;
        let ack = self.acks.as_mut().and_then(Acks::seal);
        cx.out.set_ack(ack);
        let sent = cx.out.emit(batch).await;
        cx.out.set_ack(None);
        sent
    }

    fn on_connection_error(&mut self, e: &ConnectionError, cx: &SourceCx) {
        self.src.connection_errors.increment(1);
        let was_connected = std::mem::replace(&mut self.connected, false);
        self.had_error = true;
        cx.ready.set(false);
        self.src.link_up.set(0.0);
        if let ConnectionError::ConnectionRefused(code) = e {
            error!(pipeline = %cx.pipeline, component = %cx.id, code = ?code, "MQTT broker refused the connection.");
        } else if was_connected {
            warn!(pipeline = %cx.pipeline, component = %cx.id, error = %e, "Lost connection to MQTT broker.");
        } else {
            warn!(pipeline = %cx.pipeline, component = %cx.id, error = %e, "Cannot connect to MQTT broker.");
        }
    }

    /// Flushes the partial batch and disconnects. With `ack: receive`,
    /// messages that arrive before the DISCONNECT is written were already
    /// acknowledged to the broker, so they are decoded and emitted too. With
    /// `ack: downstream`, shutdown first waits (up to 5 s) for the emitted
    /// batches to settle and sends their PUBACKs; later messages are left
    /// unacknowledged for the broker to redeliver.
    async fn shutdown(
        &mut self,
        el: &mut EventLoop,
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        if self.acks.is_some() {
            self.flush(cx).await?;
            return self.settle_and_disconnect(el, cx).await;
        }
        if self.connected && self.client.try_disconnect().is_ok() {
            let deadline = Instant::now() + DISCONNECT_TIMEOUT;
            loop {
                match timeout_at(deadline, el.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        self.on_message(&p.topic, &p.payload, cx).await?;
                    }
                    Ok(Ok(_)) => {}
                }
            }
        }
        self.flush(cx).await
    }
}

impl Run {
    async fn settle_and_disconnect(
        &mut self,
        el: &mut EventLoop,
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while self.connected && self.acks.as_ref().is_some_and(|a| !a.all_settled()) {
            tokio::select! {
                s = settled(&mut self.acks) => self.on_settled(s, cx)?,
                event = el.poll() => match event {
                    Ok(_) => self.send_acks(),
                    Err(_) => return Ok(()),
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let unacked = self.acks.as_ref().map_or(0, Acks::unacked);
        if unacked > 0 {
            info!(pipeline = %cx.pipeline, component = %cx.id, unacked,
                "Stopping with messages not yet handled downstream; the broker redelivers them.");
        }
        if !self.connected {
            return Ok(());
        }
        // PUBACKs queued above go out before the DISCONNECT.
        while self.acks.as_ref().is_some_and(Acks::has_ready) {
            self.send_acks();
            if timeout_at(deadline, el.poll()).await.is_err() {
                break;
            }
        }
        if self.client.try_disconnect().is_ok() {
            let end = Instant::now() + DISCONNECT_TIMEOUT;
            loop {
                match timeout_at(end, el.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
        }
        Ok(())
    }
}

async fn settled(acks: &mut Option<Acks>) -> sluice_core::Settled {
    match acks {
        Some(a) => a.settled().await,
        None => std::future::pending().await,
    }
}
