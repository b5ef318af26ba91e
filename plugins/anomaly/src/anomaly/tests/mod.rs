//! Behaviour of the transform with the committed models: real models, real
//! inference, known series. Shared helpers live here.

mod checks;
mod incidents;
mod models;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::Float64Type;
use sluice_core::arrow_array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};
use sluice_core::validate::Severity;
use sluice_core::{TransformConfig, Validator};
use sluice_testkit::{MetricsCapture, TransformHarness};

use super::*;

pub(crate) fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/anomaly")
}

fn univariate_yaml(extra: &str) -> String {
    format!(
        "inputs: [telemetry]\nmodel: {}\nkey: device\nfeatures: [value]\n{extra}",
        models_dir().join("univariate-h32.onnx").display()
    )
}

fn factory_yaml(extra: &str) -> String {
    format!(
        "inputs: [telemetry]\nmodel: {}\nkey: device\nhistory: 16\nfeatures: [vibration_rms, temperature, current]\n{extra}",
        models_dir().join("factory-h16.onnx").display()
    )
}

fn config(yaml: &str) -> AnomalyConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

fn schema(features: &[&str]) -> SchemaRef {
    let mut fields = vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("ts", TIMESTAMP_MS, false),
    ];
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(*f, DataType::Float64, true)),
    );
    Arc::new(with_event_time(Schema::new(fields), "ts"))
}

/// Rows of one device at 1 row/s.
fn batch(schema: &SchemaRef, device: &str, start: usize, columns: &[Vec<f64>]) -> RecordBatch {
    let n = columns[0].len();
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![device; n])),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            (start..start + n).map(|i| i as i64 * 1000),
        )),
    ];
    for c in columns {
        arrays.push(Arc::new(Float64Array::from(c.clone())));
    }
    RecordBatch::try_new(schema.clone(), arrays).unwrap()
}

/// The shared harness with the schema the helpers build batches for.
struct Harness {
    t: TransformHarness<AnomalyTransform>,
    schema: SchemaRef,
}

fn harness(cfg: &AnomalyConfig, schema: SchemaRef, capture: Option<&MetricsCapture>) -> Harness {
    harness_in("test", cfg, schema, capture)
}

fn harness_in(
    pipeline: &str,
    cfg: &AnomalyConfig,
    schema: SchemaRef,
    capture: Option<&MetricsCapture>,
) -> Harness {
    let inputs = sluice_core::InputSchema::only(schema.clone());
    Harness {
        t: TransformHarness::build_as(pipeline, "anomaly", cfg, inputs, capture).unwrap(),
        schema,
    }
}

impl Harness {
    /// Pushes `columns` of one device in batches of 200 rows and returns the
    /// output rows' (score, flag).
    async fn run(
        &mut self,
        device: &str,
        columns: &[Vec<f64>],
    ) -> Vec<(Option<f64>, Option<bool>)> {
        let mut out = Vec::with_capacity(columns[0].len());
        for b in self.run_batches(device, columns, 200).await {
            out.extend(score_and_flag(&b));
        }
        out
    }

    /// Pushes `columns` of one device in batches of `rows` rows and returns
    /// the output batches.
    async fn run_batches(
        &mut self,
        device: &str,
        columns: &[Vec<f64>],
        rows: usize,
    ) -> Vec<RecordBatch> {
        let n = columns[0].len();
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let end = (start + rows).min(n);
            let part: Vec<Vec<f64>> = columns.iter().map(|c| c[start..end].to_vec()).collect();
            let b = batch(&self.schema, device, start, &part);
            self.t.push_rows(b).await.unwrap();
            out.extend(self.t.drain_rows());
            start = end;
        }
        out
    }
}

fn score_and_flag(b: &RecordBatch) -> Vec<(Option<f64>, Option<bool>)> {
    let s = b
        .column_by_name(SCORE_COLUMN)
        .unwrap()
        .as_primitive::<Float64Type>();
    let f = b.column_by_name(FLAG_COLUMN).unwrap().as_boolean();
    s.iter().zip(f.iter()).collect()
}

/// Deterministic standard normal noise (xorshift + Box-Muller).
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A sine of period 60 rows and amplitude 10 around 50, with noise of sd 1.
fn sine(n: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| 50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 60.0).sin() + noise.normal())
        .collect()
}

fn flagged_rows(out: &[(Option<f64>, Option<bool>)]) -> Vec<usize> {
    out.iter()
        .enumerate()
        .filter(|(_, (_, f))| *f == Some(true))
        .map(|(i, _)| i)
        .collect()
}

/// Rows flagged outside `[start, end + grace)`.
fn flagged_outside(
    out: &[(Option<f64>, Option<bool>)],
    start: usize,
    end: usize,
    grace: usize,
) -> Vec<usize> {
    flagged_rows(out)
        .into_iter()
        .filter(|&i| i < start || i >= end + grace)
        .collect()
}

fn first_flag_in(out: &[(Option<f64>, Option<bool>)], start: usize, end: usize) -> Option<usize> {
    (start..end)
        .find(|&i| out[i].1 == Some(true))
        .map(|i| i - start)
}
