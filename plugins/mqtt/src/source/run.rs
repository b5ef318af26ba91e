//! The run loop of the `mqtt` source: connection, subscription, batching,
//! backoff and shutdown.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet};
use rumqttc::{SubscribeFilter, SubscribeReasonCode};
use sluice_core::{ComponentError, Source, SourceCx};
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{error, info, warn};

use super::{MqttSource, OnBadData};
use crate::droplog::Drops;
use crate::options::network_options;

/// How long shutdown waits for the DISCONNECT to be written.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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
}

impl Source for MqttSource {
    async fn run(self, mut cx: SourceCx) -> Result<(), ComponentError> {
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 16);
        eventloop.set_network_options(network_options());
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
            tokio::select! {
                biased;
                () = &mut cancelled => return Ok(()),
                () = &mut linger, if linger_armed => {
                    linger_armed = false;
                    self.flush(cx).await?;
                }
                event = el.poll() => match event {
                    Ok(Event::Incoming(packet)) => self.on_packet(packet, cx).await?,
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        self.on_connection_error(&e, cx);
                        // Rows already received must not wait for the link.
                        self.flush(cx).await?;
                        let delay = self.src.backoff.next_delay();
                        tokio::select! {
                            () = &mut cancelled => return Ok(()),
                            () = sleep(delay) => {}
                        }
                    }
                },
            }
        }
    }

    async fn on_packet(&mut self, packet: Packet, cx: &mut SourceCx) -> Result<(), ComponentError> {
        match packet {
            Packet::Publish(p) => self.on_message(&p.topic, &p.payload, cx).await,
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
        cx.out.emit(batch).await
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

    /// Flushes the partial batch and disconnects. Messages that arrive before
    /// the DISCONNECT is written were already acknowledged to the broker, so
    /// they are decoded and emitted too.
    async fn shutdown(
        &mut self,
        el: &mut EventLoop,
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
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
