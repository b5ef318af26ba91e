//! The forwarder of a sink with an outbox: leases entries in order, publishes
//! them at QoS 1 through a [`Publisher`] and acknowledges each entry in the
//! outbox only after the broker's PUBACK.
//!
//! The publisher matches packet ids to entries (its `seq` is the entry id)
//! and publishes unacknowledged entries again, in id order, when a reconnect
//! starts a new session. If the publisher task itself ends, the leases are
//! released and everything unacknowledged is leased again from the outbox.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::QoS;
use sluice_core::ComponentMetrics;
use sluice_outbox::Leased;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::durable::{Store, with_id};
use crate::publisher::{Publisher, PublisherConfig};

/// How long the forwarder waits for the disconnect when stopping.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the gauges are refreshed while idle (the oldest age grows).
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);
/// How often a sink looks again while another sink drains higher-priority
/// entries from the same outbox file...
const YIELD_PAUSE: Duration = Duration::from_millis(50);
/// ...and how often it still sends one of its own entries meanwhile, so bulk
/// data keeps moving when the insights' link is down.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for the link before re-checking acks and the stop signal.
const LINK_POLL: Duration = Duration::from_secs(1);

/// A running forwarder; stopping or dropping it leaves unacknowledged
/// entries in the outbox.
#[derive(Debug)]
pub(crate) struct Forwarder {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Spawns the forwarder on the current runtime.
    pub(crate) fn spawn(store: Store, cfg: PublisherConfig, metrics: &ComponentMetrics) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(store, cfg, metrics.clone(), stop.clone()));
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stops the forwarder, waiting at most `wait` for it to end.
    pub(crate) async fn stop(mut self, wait: Duration) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if timeout(wait, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Entry ids are positive (they start at `created_ms × 1024`).
fn seq_of(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

fn id_of(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

async fn run(
    store: Store,
    mut cfg: PublisherConfig,
    metrics: ComponentMetrics,
    stop: CancellationToken,
) {
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
    cfg.acked = Some(ack_tx);
    cfg.qos = QoS::AtLeastOnce;
    let lease_max = cfg.window.max(1);
    let mut errors = cfg.reconnect.backoff();
    // A previous forwarder of this sink may have leased entries it never
    // published; start again at the oldest unacknowledged one.
    store.release();
    let mut publisher = Publisher::spawn(cfg.clone(), &metrics);
    let mut queue: VecDeque<Leased> = VecDeque::new();
    let mut acked: Vec<i64> = Vec::new();
    let mut last_trickle = Instant::now();
    loop {
        while let Ok(seq) = ack_rx.try_recv() {
            acked.push(id_of(seq));
        }
        if !acked.is_empty() {
            let ids = std::mem::take(&mut acked);
            if let Err(e) = store.ack(ids.clone()).await {
                // Kept and retried: until acknowledged the entries stay in the
                // outbox and would be sent again after a restart.
                error!(pipeline = %cfg.pipeline, component = %cfg.id, error = %e, "Cannot acknowledge entries in the outbox.");
                acked = ids;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = sleep(errors.next_delay()) => {}
                }
            }
        }
        if queue.is_empty() {
            let trickle = last_trickle.elapsed() >= TRICKLE_EVERY;
            match store.lease(lease_max, trickle).await {
                Ok(lease) => {
                    errors.reset();
                    if lease.yielded {
                        // Another sink's insights are draining: let them go
                        // first; one bulk entry per `TRICKLE_EVERY` meanwhile.
                        if !lease.entries.is_empty() {
                            last_trickle = Instant::now();
                        }
                        queue.extend(lease.entries);
                        if queue.is_empty() {
                            tokio::select! {
                                () = stop.cancelled() => break,
                                () = sleep(YIELD_PAUSE) => {}
                            }
                            continue;
                        }
                    } else {
                        queue.extend(lease.entries);
                    }
                }
                Err(e) => {
                    error!(pipeline = %cfg.pipeline, component = %cfg.id, error = %e, "Cannot read the outbox.");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = sleep(errors.next_delay()) => {}
                    }
                    continue;
                }
            }
        }
        let Some(front) = queue.front() else {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(seq) = ack_rx.recv() => acked.push(id_of(seq)),
                () = store.appended.notified() => {}
                () = sleep(GAUGE_INTERVAL) => store.refresh_gauges().await,
            }
            continue;
        };
        let payload = with_id(&front.payload, front.id);
        let (seq, topic) = (seq_of(front.id), front.topic.clone());
        let result = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            r = publisher.publish_seq(seq, topic, payload) => r,
        };
        match result {
            Ok(()) => {
                queue.pop_front();
            }
            Err(e) if e.code == "mqtt_link_down" => {
                // Lease again once the link is back, so that entries of a
                // higher priority stored meanwhile go first.
                store.unlease(queue.drain(..).map(|l| (l.priority, l.id)).collect());
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    _ = publisher.wait_link(LINK_POLL) => {}
                }
            }
            Err(e) if e.code == "mqtt_publisher_stopped" => {
                warn!(pipeline = %cfg.pipeline, component = %cfg.id, "MQTT publisher stopped; publishing again from the outbox.");
                queue.clear();
                store.release();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = sleep(errors.next_delay()) => {}
                }
                publisher = Publisher::spawn(cfg.clone(), &metrics);
            }
            // The broker acknowledged nothing for a while: keep trying.
            Err(_) => {}
        }
    }
    publisher.close(CLOSE_TIMEOUT).await;
    while let Ok(seq) = ack_rx.try_recv() {
        acked.push(id_of(seq));
    }
    if !acked.is_empty() && store.ack(acked).await.is_err() {
        // Not fatal: those entries are delivered again (at-least-once).
        warn!(pipeline = %cfg.pipeline, component = %cfg.id, "Cannot record the last acknowledgements in the outbox.");
    }
    store.refresh_gauges().await;
}
