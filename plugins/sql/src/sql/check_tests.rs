//! `check` and `build` of the `sql` transform: output schemas and the paths
//! of reported problems.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{TIMESTAMP_MS, event_time_column, with_event_time};
use sluice_core::validate::Severity;
use sluice_core::{TransformConfig, Validator};

use super::SqlConfig;
use crate::testutil::{build_cx, telemetry_schema};

const PER_DEVICE: &str = "SELECT device, count(*) AS n, sum(v) AS total FROM input GROUP BY device";

fn config(yaml: &str) -> SqlConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

fn tumbling(size: &str, lateness: &str) -> String {
    format!(
        "inputs: [src]\nquery: {PER_DEVICE}\nwindow: {{ tumbling: {size}, allowed_lateness: {lateness} }}\n"
    )
}

fn check_errors(cfg: &SqlConfig, input: &SchemaRef) -> Vec<(Vec<String>, String)> {
    let mut v = Validator::new();
    assert!(
        cfg.check(&sluice_core::InputSchema::only(input.clone()), &mut v)
            .is_none()
    );
    v.into_issues()
        .into_iter()
        .map(|i| (i.path, i.message))
        .collect()
}

#[test]
fn check_returns_window_bounds_then_query_columns() {
    let schema = telemetry_schema(true);
    let out = config(&tumbling("10s", "2s"))
        .check(
            &sluice_core::InputSchema::only(schema.clone()),
            &mut Validator::new(),
        )
        .unwrap();
    let fields: Vec<_> = out
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(
        fields,
        [
            ("window_start", TIMESTAMP_MS),
            ("window_end", TIMESTAMP_MS),
            ("device", DataType::Utf8),
            ("n", DataType::Int64),
            ("total", DataType::Float64),
        ]
    );
    assert_eq!(event_time_column(&out), Some("window_start"));
}

#[test]
fn bad_sql_and_unknown_columns_are_reported_at_query() {
    let schema = telemetry_schema(true);
    for query in [
        "SELEC device FROM input",
        "SELECT temperature FROM input",
        "DROP TABLE input",
    ] {
        let cfg = config(&format!("inputs: [src]\nquery: {query}\n"));
        let errors = check_errors(&cfg, &schema);
        assert_eq!(errors.len(), 1, "{query}: {errors:?}");
        assert_eq!(errors[0].0, ["query"], "{query}");
    }
    let cfg = config("inputs: [src]\nquery: SELECT temperature FROM input\n");
    assert!(check_errors(&cfg, &schema)[0].1.contains("temperature"));
}

#[test]
fn a_query_returning_window_columns_is_rejected() {
    let schema = telemetry_schema(true);
    let cfg = config(
        "inputs: [src]\nquery: SELECT ts AS window_start FROM input\nwindow: { tumbling: 10s }\n",
    );
    assert_eq!(check_errors(&cfg, &schema)[0].0, ["query"]);
}

#[test]
fn bad_windows_are_reported_at_their_keys() {
    let schema = telemetry_schema(true);
    let cfg = config(&format!(
        "inputs: [src]\nquery: {PER_DEVICE}\nwindow: {{ sliding: 30s, every: 7s }}\n"
    ));
    assert_eq!(check_errors(&cfg, &schema)[0].0, ["window", "every"]);
    let cfg = config("inputs: [src]\nquery: SELEC\nwindow: { tumbling: 10s, every: 5s }\n");
    let paths: Vec<_> = check_errors(&cfg, &schema)
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        paths,
        [vec!["window", "every"], vec!["query"]],
        "every problem is reported"
    );
}

#[test]
fn event_time_of_the_wrong_type_is_reported_at_window() {
    let schema = std::sync::Arc::new(with_event_time(
        Schema::new(vec![Field::new("ts", DataType::Int64, false)]),
        "ts",
    ));
    let cfg = config(
        "inputs: [src]\nquery: SELECT count(*) AS n FROM input\nwindow: { tumbling: 10s }\n",
    );
    let errors = check_errors(&cfg, &schema);
    assert_eq!(errors[0].0, ["window"]);
    assert!(errors[0].1.contains("Int64"), "{errors:?}");
}

#[test]
fn lateness_without_event_time_is_a_warning() {
    let mut v = Validator::new();
    let out = config(&tumbling("10s", "2s")).check(
        &sluice_core::InputSchema::only(telemetry_schema(false)),
        &mut v,
    );
    assert!(out.is_some());
    let issues = v.into_issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, ["window", "allowed_lateness"]);
    assert_eq!(issues[0].severity, Severity::Warning);
}

#[test]
fn build_fails_with_the_check_errors() {
    let schema = telemetry_schema(true);
    let cx = build_cx(&schema, SqlConfig::TYPE);
    let err = config("inputs: [src]\nquery: SELECT nope FROM input\n")
        .build(&cx)
        .unwrap_err();
    assert!(err.to_string().contains("query: invalid query"), "{err}");
}

#[test]
fn yaml_rejects_unknown_keys() {
    let r: Result<SqlConfig, _> =
        serde_saphyr::from_str("inputs: [a]\nquery: SELECT 1\nwindow: { tumblng: 10s }\n");
    assert!(r.unwrap_err().to_string().contains("tumblng"));
}
