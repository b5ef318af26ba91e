//! Builders shared by the unit tests: schemas, batches, an emitter over a
//! channel, and per-test metric capture.

use std::future::Future;
use std::sync::Arc;

use datafusion::arrow::array::{
    Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sluice_core::metrics::EdgeMetrics;
use sluice_core::schema::{FieldSpec, build_schema};
use sluice_core::{
    BuildCx, ComponentKind, ComponentLabels, ComponentMetrics, Delivery, Emitter, Msg, Output,
    WhenFull,
};
use tokio::sync::mpsc;

/// `device: utf8, ts: timestamp_ms, v: float64`, with `ts` as event time when asked.
pub fn telemetry_schema(event_time: bool) -> SchemaRef {
    let spec = |s: &str| s.parse::<FieldSpec>().unwrap();
    Arc::new(build_schema(
        [
            ("device", spec("utf8")),
            ("ts", spec("timestamp_ms")),
            ("v", spec("float64")),
        ],
        event_time.then_some("ts"),
    ))
}

/// Rows `(device, ts_ms, v)` with `schema` (see [`telemetry_schema`]).
pub fn rows(schema: &SchemaRef, rows: &[(&str, i64, f64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.1),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

/// A schema of one nullable column, for tests that need `NULL`s.
pub fn nullable_schema(name: &str, ty: datafusion::arrow::datatypes::DataType) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, ty, true)]))
}

/// A build context over `input` whose metrics go to the current recorder.
pub fn build_cx(input: &SchemaRef, component_type: &'static str) -> BuildCx {
    let labels = ComponentLabels::new("p", "t", ComponentKind::Transform, component_type);
    BuildCx {
        pipeline: "p".into(),
        id: "t".into(),
        inputs: sluice_core::InputSchema::only(input.clone()),
        metrics: ComponentMetrics::new(labels),
    }
}

/// An emitter into a roomy channel, and its receiving end.
pub fn emitter(cx: &BuildCx) -> (Emitter, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel(4096);
    let out = Output {
        tx,
        when_full: WhenFull::Block,
        edge: EdgeMetrics::new("p", "t", "sink"),
    };
    (Emitter::new(vec![out], cx.metrics.clone()), rx)
}

/// Every batch emitted so far.
pub fn drain(rx: &mut mpsc::Receiver<Delivery>) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    while let Ok(Delivery {
        msg: Msg::Rows(b), ..
    }) = rx.try_recv()
    {
        out.push(b);
    }
    out
}

/// Runs `body` on a paused current-thread runtime with a recorder local to
/// this test, so every metric the component updates lands in `Snapshotter`.
pub fn recorded<F, Fut>(body: F) -> Fut::Output
where
    F: FnOnce(Snapshotter) -> Fut,
    Fut: Future,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(body(snapshotter))
    })
}

/// Value of `sluice_component_discarded_rows_total{reason}` (reads reset it).
pub fn discarded(s: &Snapshotter, reason: &str) -> u64 {
    s.snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| {
            k.key().name() == sluice_core::metrics::names::COMPONENT_DISCARDED_ROWS_TOTAL
                && k.key()
                    .labels()
                    .any(|l| l.key() == "reason" && l.value() == reason)
        })
        .map(|(.., v)| match v {
            DebugValue::Counter(c) => c,
            _ => 0,
        })
        .sum()
}

/// A batch of event times `ts` (nulls allowed) and a counter `v`, with the
/// time column also returned on its own.
pub fn timed_batch(ts: &[Option<i64>]) -> (RecordBatch, TimestampMillisecondArray) {
    let t = TimestampMillisecondArray::from(ts.to_vec());
    let v = Int64Array::from_iter_values(0..ts.len() as i64);
    let b = RecordBatch::try_from_iter([("ts", Arc::new(t.clone()) as _), ("v", Arc::new(v) as _)])
        .expect("two equal-length columns");
    (b, t)
}
