//! The loops the topology owns: source supervision, transform and sink drivers.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::{
    BuildCx, ComponentError, ComponentMetrics, Delivery, Emitter, InputMetrics, ReadyFlag, Retry,
    Sink, Source, SourceCx, SourceEntry, Transform,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::pipeline::PipelineState;
use sluice_core::Backoff;

/// A source that ran this long before failing is considered healthy again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Marks a pipeline failed and starts its graceful stop.
#[derive(Clone)]
pub(crate) struct Failer {
    pub state: Arc<watch::Sender<PipelineState>>,
    pub sources: CancellationToken,
}

impl Failer {
    pub fn fail(&self, component: &str, err: &ComponentError) {
        error!(component_id = component, error = %err, code = err.code, "Component failed; stopping its pipeline.");
        self.state.send_if_modified(|s| {
            if matches!(s, PipelineState::Failed(_)) {
                return false;
            }
            *s = PipelineState::Failed(format!("{component}: {err}"));
            true
        });
        self.sources.cancel();
    }
}

fn log_error(metrics: &ComponentMetrics, err: &ComponentError, stage: &'static str) {
    metrics.error(err, stage);
    warn!(
        component_id = %metrics.labels().component_id,
        error = %err,
        code = err.code,
        stage,
        "Component error."
    );
}

/// Everything a source needs to be (re)started.
pub(crate) struct SourceTask<S: SourceEntry> {
    pub config: S,
    pub build_cx: BuildCx,
    pub first: S::Running,
    pub out: Emitter,
    pub ready: ReadyFlag,
    pub shutdown: CancellationToken,
    pub failer: Failer,
}

/// Runs a source, rebuilding and restarting it with backoff when it fails
/// with `Retry::Backoff`.
pub(crate) async fn run_source<S: SourceEntry>(task: SourceTask<S>) {
    let SourceTask {
        config,
        build_cx,
        first,
        out,
        ready,
        shutdown,
        failer,
    } = task;
    let id = build_cx.id.clone();
    let metrics = build_cx.metrics.clone();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    let mut next = Some(first);
    loop {
        let source = match next.take() {
            Some(s) => s,
            None => match config.build(&build_cx) {
                Ok(s) => s,
                Err(e) => {
                    let err =
                        ComponentError::external("rebuild", format!("rebuilding source: {e}"));
                    log_error(&metrics, &err, "receiving");
                    if wait_or_shutdown(&shutdown, backoff.next_delay()).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let started = Instant::now();
        let cx = SourceCx {
            pipeline: build_cx.pipeline.clone(),
            id: id.clone(),
            out: out.clone(),
            shutdown: shutdown.clone(),
            ready: ready.clone(),
        };
        let result = source.run(cx).await;
        ready.set(false);
        match result {
            Ok(()) => break,
            Err(e) if e.code == "downstream_closed" => break,
            Err(e) if e.retry == Retry::Backoff && !shutdown.is_cancelled() => {
                log_error(&metrics, &e, "receiving");
                if started.elapsed() >= HEALTHY_RUN {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                info!(component_id = %id, delay_ms = delay.as_millis() as u64, "Restarting source.");
                metrics.restarted();
                if wait_or_shutdown(&shutdown, delay).await {
                    break;
                }
            }
            Err(e) => {
                log_error(&metrics, &e, "receiving");
                failer.fail(&id, &e);
                break;
            }
        }
    }
}

/// Sleeps for `d`; returns true if shutdown fired first.
async fn wait_or_shutdown(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Drives a transform until all of its inputs close, then runs `finish`.
pub(crate) async fn run_transform<T: Transform>(
    mut t: T,
    mut rx: mpsc::Receiver<Delivery>,
    mut out: Emitter,
    input: InputMetrics,
    failer: Failer,
) {
    let metrics = out.metrics().clone();
    let id = metrics.labels().component_id.clone();
    let mut ticker = t.tick_interval().map(|d| {
        let mut i = tokio::time::interval_at(Instant::now() + d, d);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    });
    loop {
        let result = tokio::select! {
            biased;
            msg = rx.recv() => match msg {
                Some(Delivery { msg, ack, input: from }) => {
                    input.received();
                    let rows = msg.num_rows();
                    metrics.received(rows, msg.size_bytes());
                    let started = Instant::now();
                    // Whatever the transform emits for this message carries its
                    // ack; a window that absorbs the rows releases it here.
                    out.set_ack(ack);
                    let r = t.process_input(from, msg, &mut out).await;
                    out.set_ack(None);
                    metrics.processing(started.elapsed());
                    if let Err(e) = &r
                        && e.retry == Retry::Backoff
                    {
                        // The batch could not be processed; say so in the drop counters.
                        metrics.discarded("processing_error", false, rows as u64);
                    }
                    r
                }
                None => break,
            },
            now = next_tick(&mut ticker) => t.on_tick(now, &mut out).await,
        };
        if let Err(e) = result
            && !handle_transform_error(&metrics, &failer, &id, e)
        {
            return;
        }
    }
    if let Err(e) = t.finish(&mut out).await {
        handle_transform_error(&metrics, &failer, &id, e);
    }
}

/// Returns whether the transform may go on.
fn handle_transform_error(
    metrics: &ComponentMetrics,
    failer: &Failer,
    id: &str,
    e: ComponentError,
) -> bool {
    if e.code == "downstream_closed" {
        return false;
    }
    log_error(metrics, &e, "processing");
    if e.retry == Retry::Never {
        failer.fail(id, &e);
        return false;
    }
    true
}

async fn next_tick(ticker: &mut Option<tokio::time::Interval>) -> Instant {
    match ticker {
        Some(t) => t.tick().await,
        None => std::future::pending().await,
    }
}

/// Drives a sink until all of its inputs close, then flushes it.
///
/// A write that fails with `Retry::Backoff` is retried with the same batch
/// until it succeeds or the shutdown deadline aborts the task: nothing is
/// dropped silently.
pub(crate) async fn run_sink<K: Sink>(
    mut s: K,
    mut rx: mpsc::Receiver<Delivery>,
    metrics: ComponentMetrics,
    input: InputMetrics,
    failer: Failer,
) {
    let id = metrics.labels().component_id.clone();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    // The delivery (and with it the source's ack) is held until the write
    // succeeded: for a sink with an outbox, until the rows are committed.
    while let Some(Delivery { msg, ack, .. }) = rx.recv().await {
        input.received();
        metrics.received(msg.num_rows(), msg.size_bytes());
        let started = Instant::now();
        loop {
            match s.write(&msg).await {
                Ok(()) => {
                    backoff.reset();
                    break;
                }
                Err(e) if e.retry == Retry::Backoff => {
                    log_error(&metrics, &e, "sending");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    log_error(&metrics, &e, "sending");
                    metrics.discarded("sink_error", false, msg.num_rows() as u64);
                    if let Some(ack) = &ack {
                        ack.fail();
                    }
                    failer.fail(&id, &e);
                    return;
                }
            }
        }
        metrics.processing(started.elapsed());
        drop(ack);
    }
    if let Err(e) = s.flush().await {
        log_error(&metrics, &e, "sending");
        error!(component_id = %id, error = %e, "Sink flush failed on shutdown; data may not be delivered.");
    }
}
