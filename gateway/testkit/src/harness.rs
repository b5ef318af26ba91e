//! The shared component harness: builds a transform from its config as the
//! topology does, drives it message by message with an ack on each, and
//! checks the component contract (`run_transform`).

// A harness reports a breach of the contract the way an assertion does.
#![allow(clippy::panic)]

use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::metrics::{ComponentKind, ComponentLabels, EdgeMetrics, names};
use sluice_core::{
    AckTracker, BuildCx, BuildError, ComponentError, ComponentMetrics, Delivery, Emitter,
    InputSchema, Msg, Output, Payload, Transform, TransformConfig, Validator, WhenFull,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::MetricsCapture;

/// Messages the harness output holds before a push waits.
const OUTPUT_CAPACITY: usize = 4096;

/// A running transform with an output channel and an ack per pushed message.
pub struct TransformHarness<T> {
    /// The component under test.
    pub transform: T,
    /// Its metrics (captured when built with a capture).
    pub metrics: ComponentMetrics,
    emitter: Emitter,
    rx: mpsc::Receiver<Delivery>,
    acks: AckTracker,
    handed: u64,
    settled: u64,
}

impl<T: Transform> TransformHarness<T> {
    /// Builds the transform of `cfg` as component `transform` of pipeline
    /// `test`, reading `inputs`; metrics go to `capture` when given.
    pub fn build<C>(
        cfg: &C,
        inputs: Vec<InputSchema>,
        capture: Option<&MetricsCapture>,
    ) -> Result<Self, BuildError>
    where
        C: TransformConfig<Component = T>,
    {
        Self::build_as("test", "transform", cfg, inputs, capture)
    }

    /// [`TransformHarness::build`] as component `id` of pipeline `pipeline`.
    pub fn build_as<C>(
        pipeline: &str,
        id: &str,
        cfg: &C,
        inputs: Vec<InputSchema>,
        capture: Option<&MetricsCapture>,
    ) -> Result<Self, BuildError>
    where
        C: TransformConfig<Component = T>,
    {
        let labels = ComponentLabels::new(pipeline, id, ComponentKind::Transform, C::TYPE);
        let metrics = scoped(capture, || ComponentMetrics::new(labels));
        let cx = BuildCx {
            pipeline: pipeline.into(),
            id: id.into(),
            inputs,
            metrics: metrics.clone(),
        };
        let transform = scoped(capture, || cfg.build(&cx))?;
        let (tx, rx) = mpsc::channel(OUTPUT_CAPACITY);
        let output = Output {
            tx,
            when_full: WhenFull::Block,
            edge: EdgeMetrics::new(pipeline, id, "out"),
        };
        Ok(Self {
            transform,
            emitter: Emitter::new(vec![output], metrics.clone()),
            metrics,
            rx,
            acks: AckTracker::new(),
            handed: 0,
            settled: 0,
        })
    }

    /// Hands `msg` to the transform (input 0) with a fresh ack, as the
    /// topology does.
    pub async fn push(&mut self, msg: Msg) -> Result<(), ComponentError> {
        self.push_input(0, msg).await
    }

    /// Hands a batch of rows to the transform.
    pub async fn push_rows(&mut self, batch: RecordBatch) -> Result<(), ComponentError> {
        self.push(Msg::Rows(batch)).await
    }

    /// Hands `msg` to the transform as arriving on input `input`.
    pub async fn push_input(&mut self, input: usize, msg: Msg) -> Result<(), ComponentError> {
        self.handed += 1;
        self.emitter.set_ack(Some(self.acks.token()));
        let result = self
            .transform
            .process_input(input, msg, &mut self.emitter)
            .await;
        self.emitter.set_ack(None);
        result
    }

    /// Runs the transform's periodic work at `now`.
    pub async fn tick(&mut self, now: Instant) -> Result<(), ComponentError> {
        self.transform.on_tick(now, &mut self.emitter).await
    }

    /// Tells the transform its inputs closed.
    pub async fn finish(&mut self) -> Result<(), ComponentError> {
        self.transform.finish(&mut self.emitter).await
    }

    /// Everything emitted since the last call; dropping the deliveries
    /// releases their acks.
    pub fn drain(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Ok(d) = self.rx.try_recv() {
            out.push(d.msg);
        }
        out
    }

    /// The row batches emitted since the last call.
    pub fn drain_rows(&mut self) -> Vec<RecordBatch> {
        self.drain()
            .into_iter()
            .filter_map(|m| match m {
                Msg::Rows(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    /// Acks handed out with pushed messages and not yet released.
    pub fn unsettled_acks(&mut self) -> u64 {
        while self.acks.try_settled().is_some() {
            self.settled += 1;
        }
        self.handed - self.settled
    }
}

/// Runs `f` with `capture` as the thread's recorder, when there is one.
pub(crate) fn scoped<R>(capture: Option<&MetricsCapture>, f: impl FnOnce() -> R) -> R {
    match capture {
        Some(c) => c.scoped(f),
        None => f(),
    }
}

/// Runs `input` through the transform of `cfg` reading one stream of
/// `schema`, then finishes it, and checks the component contract:
///
/// - `check` accepts the input and returns an output schema; `build` succeeds;
/// - an empty batch (rows) is accepted and emits nothing;
/// - every message is accepted, and `finish` succeeds;
/// - every emitted batch has the columns `check` announced;
/// - `sluice_component_sent_rows_total` equals the rows emitted;
/// - once the output is read, no ack of an input message is still held.
///
/// Returns the emitted row batches. Panics, naming the rule, on a breach.
pub async fn run_transform<C: TransformConfig>(
    cfg: &C,
    schema: SchemaRef,
    input: Vec<Msg>,
) -> Vec<RecordBatch> {
    let ty = C::TYPE;
    let inputs = InputSchema::only(schema.clone());
    let mut v = Validator::new();
    let out_schema = cfg.check(&inputs, &mut v);
    let errors = v.error_messages();
    let Some(out_schema) = out_schema.filter(|_| errors.is_empty()) else {
        panic!("`{ty}`: check rejected the input: {errors}");
    };
    let capture = MetricsCapture::new();
    let mut h = TransformHarness::build(cfg, inputs, Some(&capture))
        .unwrap_or_else(|e| panic!("`{ty}`: build failed after check passed: {e}"));
    if C::INPUT == Payload::Rows {
        h.push_rows(RecordBatch::new_empty(schema))
            .await
            .unwrap_or_else(|e| panic!("`{ty}`: an empty batch is an error: {e}"));
        let emitted = h.drain();
        assert!(
            emitted.iter().all(|m| m.num_rows() == 0),
            "`{ty}`: an empty batch emitted rows"
        );
    }
    for (i, msg) in input.into_iter().enumerate() {
        h.push(msg)
            .await
            .unwrap_or_else(|e| panic!("`{ty}`: message {i} is an error: {e}"));
    }
    h.finish()
        .await
        .unwrap_or_else(|e| panic!("`{ty}`: finish is an error: {e}"));
    let out = h.drain_rows();
    for b in &out {
        assert_eq!(
            b.schema().fields(),
            out_schema.fields(),
            "`{ty}`: emitted columns differ from those check announced"
        );
    }
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(
        capture.counter(names::COMPONENT_SENT_ROWS_TOTAL, &[]),
        rows as u64,
        "`{ty}`: sent rows counter differs from the rows emitted"
    );
    assert_eq!(
        h.unsettled_acks(),
        0,
        "`{ty}`: acks of input messages still held after finish"
    );
    out
}
