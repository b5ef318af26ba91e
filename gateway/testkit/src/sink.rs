//! The sink side of the shared component harness: builds a sink from its
//! config as the topology does, writes messages to it and checks the
//! component contract (`run_sink`).

// A harness reports a breach of the contract the way an assertion does.
#![allow(clippy::panic)]

use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::{
    BuildCx, BuildError, ComponentError, ComponentMetrics, InputSchema, Msg, Sink, SinkConfig,
    Validator,
};

use crate::MetricsCapture;
use crate::harness::scoped;

/// A built sink that writes as the topology does.
pub struct SinkHarness<S> {
    /// The component under test.
    pub sink: S,
    /// Its metrics (captured when built with a capture).
    pub metrics: ComponentMetrics,
}

impl<S: Sink> SinkHarness<S> {
    /// Builds the sink of `cfg` as component `id` of pipeline `pipeline`,
    /// reading rows of `schema`; metrics go to `capture` when given.
    pub fn build<C>(
        pipeline: &str,
        id: &str,
        cfg: &C,
        schema: SchemaRef,
        capture: Option<&MetricsCapture>,
    ) -> Result<Self, BuildError>
    where
        C: SinkConfig<Component = S>,
    {
        let labels = ComponentLabels::new(pipeline, id, ComponentKind::Sink, C::TYPE);
        let metrics = scoped(capture, || ComponentMetrics::new(labels));
        let cx = BuildCx {
            pipeline: pipeline.into(),
            id: id.into(),
            inputs: InputSchema::only(schema),
            metrics: metrics.clone(),
        };
        Ok(Self {
            sink: scoped(capture, || cfg.build(&cx))?,
            metrics,
        })
    }

    /// Writes `msg`, counting it as received first, as the topology does.
    pub async fn write(&mut self, msg: Msg) -> Result<(), ComponentError> {
        self.metrics.received(msg.num_rows(), msg.size_bytes());
        self.sink.write(&msg).await
    }

    /// Flushes the sink, as on shutdown.
    pub async fn flush(&mut self) -> Result<(), ComponentError> {
        self.sink.flush().await
    }
}

/// Writes `input` (row batches of `schema`) to the sink of `cfg`, then
/// flushes it, and checks the component contract:
///
/// - `check` accepts the input schema; `build` succeeds;
/// - an empty batch is written without error;
/// - every message is written without error, and `flush` succeeds.
///
/// Returns the sink, flushed, so the caller can check what it delivered.
/// Panics, naming the rule, on a breach.
pub async fn run_sink<C: SinkConfig>(
    cfg: &C,
    schema: SchemaRef,
    input: Vec<RecordBatch>,
) -> C::Component {
    let ty = C::TYPE;
    let mut v = Validator::new();
    cfg.check(&schema, &mut v);
    let errors = v.error_messages();
    assert!(
        errors.is_empty(),
        "`{ty}`: check rejected the input: {errors}"
    );
    let capture = MetricsCapture::new();
    let mut h = SinkHarness::build("test", "sink", cfg, schema.clone(), Some(&capture))
        .unwrap_or_else(|e| panic!("`{ty}`: build failed after check passed: {e}"));
    h.write(Msg::Rows(RecordBatch::new_empty(schema)))
        .await
        .unwrap_or_else(|e| panic!("`{ty}`: an empty batch is an error: {e}"));
    for (i, batch) in input.into_iter().enumerate() {
        h.write(Msg::Rows(batch))
            .await
            .unwrap_or_else(|e| panic!("`{ty}`: message {i} is an error: {e}"));
    }
    h.flush()
        .await
        .unwrap_or_else(|e| panic!("`{ty}`: flush is an error: {e}"));
    h.sink
}
