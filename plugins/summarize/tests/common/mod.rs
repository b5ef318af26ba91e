//! The digest harness's batches (`bench/digests/batches.json`, written by
//! `bench/digests/make_batches.py`) and their replay through the real
//! `summarize` transform. Shared by `examples/eval-digests.rs` and
//! `tests/digests.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use sluice_core::arrow_array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};
use sluice_core::{
    BuildCx, ComponentMetrics, Delivery, EdgeMetrics, Emitter, Msg, Output, Transform,
    TransformConfig, Validator, WhenFull,
};
use sluice_plugin_summarize::facts::{Collector, Facts};
use sluice_plugin_summarize::names::SUMMARIZE_FALLBACKS_TOTAL;
use sluice_plugin_summarize::{FALLBACK_REASONS, SummarizeConfig};
use sluice_testkit::MetricsCapture;
use tokio::sync::mpsc;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The default model file.
pub fn default_model() -> PathBuf {
    repo_root().join("models/slm/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The batch file.
pub fn default_batches() -> PathBuf {
    repo_root().join("bench/digests/batches.json")
}

/// One batch of the harness, as stored.
#[derive(Debug, Clone, Deserialize)]
pub struct EvalBatch {
    /// `f00`…, `r00`…
    pub id: String,
    /// `factory` or `retail`.
    pub domain: String,
    /// Kind column.
    pub kind: String,
    /// Key columns.
    pub keys: Vec<String>,
    /// Measure columns.
    pub measures: Vec<String>,
    /// The `severity:` block.
    pub severity: Value,
    /// Columns holding text (kind, keys, severity words).
    pub text_columns: Vec<String>,
    /// Column name to values; `ts` holds epoch milliseconds.
    pub columns: BTreeMap<String, Vec<Value>>,
}

#[derive(Deserialize)]
struct BatchFile {
    batches: Vec<EvalBatch>,
}

/// Reads every batch of `path`.
pub fn load(path: &Path) -> Vec<EvalBatch> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let file: BatchFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    file.batches
}

impl EvalBatch {
    /// Events in the batch.
    pub fn events(&self) -> usize {
        self.columns.get("ts").map_or(0, Vec::len)
    }

    /// Arrow schema: `ts` (event time), text columns, float measures.
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .keys()
            .map(|c| {
                if c == "ts" {
                    Field::new(c, TIMESTAMP_MS, false)
                } else if self.text_columns.contains(c) {
                    Field::new(c, DataType::Utf8, true)
                } else {
                    Field::new(c, DataType::Float64, true)
                }
            })
            .collect();
        Arc::new(with_event_time(Schema::new(fields), "ts"))
    }

    /// The rows as one Arrow batch.
    pub fn record_batch(&self) -> RecordBatch {
        let schema = self.schema();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| {
                let v = &self.columns[f.name()];
                let a: ArrayRef = match f.data_type() {
                    DataType::Utf8 => Arc::new(StringArray::from(
                        v.iter().map(Value::as_str).collect::<Vec<_>>(),
                    )),
                    DataType::Float64 => Arc::new(Float64Array::from(
                        v.iter().map(Value::as_f64).collect::<Vec<_>>(),
                    )),
                    _ => Arc::new(TimestampMillisecondArray::from(
                        v.iter().map(|x| x.as_i64().unwrap()).collect::<Vec<_>>(),
                    )),
                };
                a
            })
            .collect();
        RecordBatch::try_new(schema, cols).unwrap()
    }

    /// The transform's config for this batch: one window holding every
    /// event, the batch's columns, `extra` settings on top.
    pub fn config(&self, model: &Path, extra: &serde_json::Map<String, Value>) -> SummarizeConfig {
        let mut cfg = serde_json::json!({
            "inputs": ["events"],
            "model": model.display().to_string(),
            "max_events": 100_000,
            "kind": self.kind,
            "keys": self.keys,
            "measures": self.measures,
            "severity": self.severity,
        });
        let obj = cfg.as_object_mut().unwrap();
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
        serde_json::from_value(cfg).unwrap()
    }

    /// The facts the transform computes, recomputed on their own.
    pub fn facts(&self, cfg: &SummarizeConfig) -> Facts {
        let layout = cfg.layout(&self.schema(), &mut Validator::new()).unwrap();
        let mut c = Collector::new(layout);
        let b = self.record_batch();
        c.add(&b, 0..b.num_rows(), 0).unwrap();
        c.take().unwrap()
    }
}

/// One digest row produced by the transform, with what it cost.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// `summary` column.
    pub summary: String,
    /// `severity` column.
    pub severity: String,
    /// `model` column: the GGUF file name, or `template`.
    pub model: String,
    /// `event_count` column.
    pub event_count: u64,
    /// `prompt_tokens` column.
    pub prompt_tokens: u32,
    /// `generated_tokens` column.
    pub generated_tokens: u32,
    /// `generation_seconds` column.
    pub generation_seconds: f64,
    /// Wall time from the first row in to the digest out.
    pub wall_seconds: f64,
    /// Why the template was used, from `sluice_summarize_fallbacks_total`.
    pub fallback: Option<&'static str>,
}

/// What one run of a batch through a freshly built transform produced.
pub struct Run {
    /// Every digest row emitted, in order.
    pub rows: Vec<RecordBatch>,
    /// The metrics the transform recorded.
    pub capture: MetricsCapture,
    /// Wall time from the first row in to the last digest out.
    pub wall_seconds: f64,
}

/// Runs `batch` through a freshly built transform (one `process` call, then
/// `finish`) and returns every digest row it emitted.
pub async fn run(cfg: &SummarizeConfig, batch: &EvalBatch) -> Run {
    let capture = MetricsCapture::new();
    let labels = ComponentLabels::new("eval", "digest", ComponentKind::Transform, "summarize");
    let metrics = capture.scoped(|| ComponentMetrics::new(labels));
    let cx = BuildCx {
        pipeline: "eval".into(),
        id: "digest".into(),
        inputs: sluice_core::InputSchema::only(batch.schema()),
        metrics: metrics.clone(),
    };
    let mut transform = capture
        .scoped(|| cfg.build(&cx))
        .unwrap_or_else(|e| panic!("building the transform for {}: {e}", batch.id));
    let (tx, mut rx) = mpsc::channel(64);
    let mut emitter = Emitter::new(
        vec![Output {
            tx,
            when_full: WhenFull::Block,
            edge: EdgeMetrics::new("eval", "digest", "out"),
        }],
        metrics,
    );
    let input = batch.record_batch();
    let started = Instant::now();
    transform
        .process(Msg::Rows(input), &mut emitter)
        .await
        .unwrap();
    transform.finish(&mut emitter).await.unwrap();
    let wall_seconds = started.elapsed().as_secs_f64();
    let mut rows = Vec::new();
    while let Ok(Delivery {
        msg: Msg::Rows(b), ..
    }) = rx.try_recv()
    {
        rows.push(b);
    }
    Run {
        rows,
        capture,
        wall_seconds,
    }
}

/// Runs `batch` through a freshly built transform and returns its digest.
pub async fn replay(cfg: &SummarizeConfig, batch: &EvalBatch) -> Replayed {
    let Run {
        rows,
        capture,
        wall_seconds,
    } = run(cfg, batch).await;
    assert_eq!(rows.len(), 1, "batch {}: expected one digest row", batch.id);
    let b = &rows[0];
    let s = |n: &str| {
        b.column_by_name(n)
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_owned()
    };
    let u32_col = |n: &str| {
        b.column_by_name(n)
            .unwrap()
            .as_primitive::<UInt32Type>()
            .value(0)
    };
    let labels = |r: &'static str| [("component_id", "digest"), ("reason", r)];
    Replayed {
        summary: s("summary"),
        severity: s("severity"),
        model: s("model"),
        event_count: b
            .column_by_name("event_count")
            .unwrap()
            .as_primitive::<UInt64Type>()
            .value(0),
        prompt_tokens: u32_col("prompt_tokens"),
        generated_tokens: u32_col("generated_tokens"),
        generation_seconds: b
            .column_by_name("generation_seconds")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0),
        wall_seconds,
        fallback: FALLBACK_REASONS
            .iter()
            .copied()
            .find(|r| capture.counter(SUMMARIZE_FALLBACKS_TOTAL, &labels(r)) > 0),
    }
}
