//! Behaviour with the real model (SmolLM2-135M-Instruct, fetched by
//! `models/slm/fetch.sh`): no mocks. Shared helpers live here.

mod checks;
mod events;
mod lora;
mod model;

use std::path::PathBuf;

use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::validate::{Issue, Severity};
use sluice_core::{InputSchema, TransformConfig, Validator};
use sluice_testkit::{MetricsCapture, TransformHarness};

use super::*;

pub(crate) const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The default model; fails the test (never skips it) when it is missing.
pub(crate) fn model_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/slm")
        .join(MODEL_FILE);
    assert!(
        p.is_file(),
        "model file {} is missing: run models/slm/fetch.sh (scripts/setup.sh does it)",
        p.display()
    );
    p
}

/// A config for the fixed event batches. The time budget is generous unless
/// a test sets its own: these tests check content, and a test machine may be
/// busy with other builds (speed is checked by `bench/slm`).
pub(crate) fn config(extra: &str) -> SummarizeConfig {
    let timeout = if extra.contains("timeout:") {
        ""
    } else {
        "timeout: 300s\n"
    };
    let yaml = format!(
        "inputs: [events]\nmodel: {}\nkind: kind\nmeasures: [score]\n{timeout}{extra}",
        model_path().display()
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

/// The shared harness, as component `digest` of pipeline `test`.
/// The errors `check` reports for `cfg` on the fixed events' schema;
/// asserts that it returns an output schema exactly when there are none.
pub(crate) fn errors(cfg: &SummarizeConfig) -> Vec<Issue> {
    let mut v = Validator::new();
    let schema = cfg.check(&InputSchema::only(events::schema()), &mut v);
    let errors: Vec<Issue> = v
        .into_issues()
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert_eq!(schema.is_some(), errors.is_empty(), "{errors:?}");
    errors
}

pub(crate) struct Harness {
    pub(crate) t: TransformHarness<SummarizeTransform>,
}

pub(crate) fn harness(
    cfg: &SummarizeConfig,
    schema: SchemaRef,
    capture: Option<&MetricsCapture>,
) -> Harness {
    let inputs = sluice_core::InputSchema::only(schema);
    Harness {
        t: TransformHarness::build_as("test", "digest", cfg, inputs, capture).unwrap(),
    }
}

/// One digest row, read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) summary: String,
    pub(crate) severity: String,
    pub(crate) event_count: u64,
    pub(crate) facts: String,
    pub(crate) model: String,
    pub(crate) prompt_tokens: u32,
    pub(crate) generated_tokens: u32,
}

pub(crate) fn rows(b: &RecordBatch) -> Vec<Row> {
    use sluice_core::arrow_array::types::{UInt32Type, UInt64Type};
    let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
    let (summary, severity, facts, model) = (s("summary"), s("severity"), s("facts"), s("model"));
    let count = b
        .column_by_name("event_count")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let pt = b
        .column_by_name("prompt_tokens")
        .unwrap()
        .as_primitive::<UInt32Type>();
    let gt = b
        .column_by_name("generated_tokens")
        .unwrap()
        .as_primitive::<UInt32Type>();
    (0..b.num_rows())
        .map(|i| Row {
            summary: summary.value(i).to_owned(),
            severity: severity.value(i).to_owned(),
            event_count: count.value(i),
            facts: facts.value(i).to_owned(),
            model: model.value(i).to_owned(),
            prompt_tokens: pt.value(i),
            generated_tokens: gt.value(i),
        })
        .collect()
}

impl Harness {
    /// Pushes `batches`, closes the input and returns every digest row.
    pub(crate) async fn run(&mut self, batches: Vec<RecordBatch>) -> Vec<Row> {
        for b in batches {
            self.t.push_rows(b).await.unwrap();
        }
        self.t.finish().await.unwrap();
        self.drain()
    }

    pub(crate) fn drain(&mut self) -> Vec<Row> {
        self.t.drain_rows().iter().flat_map(rows).collect()
    }
}
