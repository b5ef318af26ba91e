//! The source side of the shared component harness: builds a source from its
//! config as the topology does, runs it on its own task with an output
//! channel, and checks the component contract (`run_source`).

// A harness reports a breach of the contract the way an assertion does.
#![allow(clippy::panic)]

use std::future::Future;
use std::time::Duration;

use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::metrics::{ComponentKind, ComponentLabels, EdgeMetrics, names};
use sluice_core::{
    BuildCx, BuildError, ComponentError, ComponentMetrics, Delivery, Emitter, Msg, Output,
    ReadyFlag, Source, SourceConfig, SourceCx, Validator, WhenFull,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use crate::MetricsCapture;
use crate::harness::scoped;

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(10);

/// A source running on its own task, with its output channel.
pub struct SourceHarness {
    /// Pipeline name of the source (its metrics carry it as a label).
    pub pipeline: String,
    /// The source's output edge. Holding a [`Delivery`] holds its ack.
    pub rx: mpsc::Receiver<Delivery>,
    /// Cancelling it asks the source to stop.
    pub shutdown: CancellationToken,
    /// Raised by the source once it receives.
    pub ready: ReadyFlag,
    /// Its metrics (captured when started with a capture).
    pub metrics: ComponentMetrics,
    /// The task running the source.
    pub task: JoinHandle<Result<(), ComponentError>>,
}

impl SourceHarness {
    /// Builds the source of `cfg` as component `source` of `pipeline` and
    /// runs it; its output edge holds `capacity` messages before the source
    /// waits. Metrics go to `capture` when given. Must be called inside a
    /// tokio runtime.
    pub fn start<C: SourceConfig>(
        cfg: &C,
        pipeline: &str,
        capacity: usize,
        capture: Option<&MetricsCapture>,
    ) -> Result<Self, BuildError> {
        let labels = ComponentLabels::new(pipeline, "source", ComponentKind::Source, C::TYPE);
        let metrics = scoped(capture, || ComponentMetrics::new(labels));
        let cx = BuildCx {
            pipeline: pipeline.into(),
            id: "source".into(),
            inputs: Vec::new(),
            metrics,
        };
        let source = scoped(capture, || cfg.build(&cx))?;
        // The harness's handles name the same series as the source's own.
        Ok(Self::start_with(
            pipeline,
            C::TYPE,
            capacity,
            capture,
            |cx| source.run(cx),
        ))
    }

    /// Runs `run` as source `source` of type `ty` in `pipeline`: for a
    /// source driven through a test seam rather than built from its config
    /// (a camera with a scripted device, say).
    pub fn start_with<F>(
        pipeline: &str,
        ty: &'static str,
        capacity: usize,
        capture: Option<&MetricsCapture>,
        run: impl FnOnce(SourceCx) -> F,
    ) -> Self
    where
        F: Future<Output = Result<(), ComponentError>> + Send + 'static,
    {
        let labels = ComponentLabels::new(pipeline, "source", ComponentKind::Source, ty);
        let metrics = scoped(capture, || ComponentMetrics::new(labels));
        let id = "source";
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let out = Emitter::new(
            vec![Output {
                tx,
                when_full: WhenFull::Block,
                edge: scoped(capture, || EdgeMetrics::new(pipeline, id, "out")),
            }],
            metrics.clone(),
        );
        let shutdown = CancellationToken::new();
        let ready = ReadyFlag::new();
        let scx = SourceCx {
            pipeline: pipeline.into(),
            id: id.into(),
            out,
            shutdown: shutdown.clone(),
            ready: ready.clone(),
        };
        Self {
            pipeline: pipeline.to_owned(),
            rx,
            shutdown,
            ready,
            metrics,
            task: tokio::spawn(run(scx)),
        }
    }

    /// Waits until the source says it is ready; `false` after `within`.
    pub async fn wait_ready(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.ready.get() {
            if Instant::now() >= deadline || self.task.is_finished() {
                return self.ready.get();
            }
            tokio::time::sleep(POLL).await;
        }
        true
    }

    /// The next message, or `None` after `within` or when the source ended.
    pub async fn recv(&mut self, within: Duration) -> Option<Delivery> {
        timeout(within, self.rx.recv()).await.ok().flatten()
    }

    /// Row batches until `rows` rows arrived (their acks released).
    ///
    /// # Panics
    /// When they do not arrive within `within`.
    pub async fn rows(&mut self, rows: usize, within: Duration) -> Vec<RecordBatch> {
        let deadline = Instant::now() + within;
        let mut batches = Vec::new();
        let mut n = 0;
        while n < rows {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(d) = self.recv(left).await else {
                panic!("only {n} of {rows} rows within {within:?}");
            };
            if let Msg::Rows(b) = d.msg {
                n += b.num_rows();
                batches.push(b);
            }
        }
        batches
    }

    /// Asks the source to stop and waits up to `within` for it: returns its
    /// result and every message still in the channel (the flushed partial
    /// batch among them).
    ///
    /// # Panics
    /// When the source does not return within `within`, or panicked.
    pub async fn stop(mut self, within: Duration) -> (Result<(), ComponentError>, Vec<Delivery>) {
        self.shutdown.cancel();
        let mut rest = Vec::new();
        // Reading while waiting: a source blocked on a full channel must be
        // able to flush and return.
        let stopped = timeout(within, async {
            loop {
                tokio::select! {
                    r = &mut self.task => return r,
                    Some(d) = self.rx.recv() => rest.push(d),
                }
            }
        })
        .await;
        let result = match stopped {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("the source task panicked: {e}"),
            Err(_) => panic!("the source did not stop within {within:?} of shutdown"),
        };
        while let Ok(d) = self.rx.try_recv() {
            rest.push(d);
        }
        (result, rest)
    }
}

/// Runs the source of `cfg` and checks the component contract:
///
/// - `check` accepts the config and announces an output schema; `build`
///   succeeds;
/// - the source becomes ready within `within`;
/// - once `feed` has run, messages are collected until `until` holds for
///   everything received (or `within` passes);
/// - on shutdown the source returns `Ok` within `within`, flushing what it
///   holds;
/// - every row batch has the columns `check` announced;
/// - `sluice_component_sent_rows_total` equals the rows received.
///
/// Returns every message, in order; their acks are released. Panics, naming
/// the rule, on a breach.
pub async fn run_source<C, F>(
    cfg: &C,
    feed: F,
    mut until: impl FnMut(&[Msg]) -> bool,
    within: Duration,
) -> Vec<Msg>
where
    C: SourceConfig,
    F: Future<Output = ()>,
{
    let ty = C::TYPE;
    let mut v = Validator::new();
    let schema = cfg.check(&mut v);
    let errors = v.error_messages();
    let Some(schema) = schema.filter(|_| errors.is_empty()) else {
        panic!("`{ty}`: check rejected the config or announced no schema: {errors}");
    };
    let capture = MetricsCapture::new();
    let mut h = SourceHarness::start(cfg, "test", 64, Some(&capture))
        .unwrap_or_else(|e| panic!("`{ty}`: build failed after check passed: {e}"));
    assert!(
        h.wait_ready(within).await,
        "`{ty}`: the source was not ready within {within:?}"
    );
    feed.await;
    let deadline = Instant::now() + within;
    let mut msgs = Vec::new();
    while !until(&msgs) {
        let left = deadline.saturating_duration_since(Instant::now());
        match h.recv(left).await {
            Some(d) => msgs.push(d.msg),
            None => break,
        }
    }
    let (result, rest) = h.stop(within).await;
    if let Err(e) = result {
        panic!("`{ty}`: the source returned an error on shutdown: {e}");
    }
    msgs.extend(rest.into_iter().map(|d| d.msg));
    check_rows(ty, &schema, &msgs);
    let rows: usize = msgs.iter().map(Msg::num_rows).sum();
    assert_eq!(
        capture.counter(names::COMPONENT_SENT_ROWS_TOTAL, &[]),
        rows as u64,
        "`{ty}`: sent rows counter differs from the rows received"
    );
    msgs
}

fn check_rows(ty: &str, schema: &SchemaRef, msgs: &[Msg]) {
    for m in msgs {
        if let Msg::Rows(b) = m {
            assert_eq!(
                b.schema().fields(),
                schema.fields(),
                "`{ty}`: emitted columns differ from those check announced"
            );
        }
    }
}
