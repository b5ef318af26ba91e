//! Validation and build errors.

use super::*;

fn check_errors(cfg: &AnomalyConfig, schema: &SchemaRef) -> Vec<(Vec<String>, String)> {
    let mut v = Validator::new();
    let out = cfg.check(&sluice_core::InputSchema::only(schema.clone()), &mut v);
    let issues: Vec<_> = v
        .into_issues()
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| (i.path, i.message))
        .collect();
    assert_eq!(out.is_none(), !issues.is_empty());
    issues
}

#[test]
fn check_returns_the_input_columns_plus_score_and_flag() {
    let cfg = config(&univariate_yaml(""));
    let mut v = Validator::new();
    let out = cfg
        .check(&sluice_core::InputSchema::only(schema(&["value"])), &mut v)
        .unwrap();
    let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "device",
            "ts",
            "value",
            "anomaly_score",
            "is_anomaly",
            "anomaly_likelihood",
            "incident_id",
            "incident_start",
            "incident_end",
            "incident_peak",
            "incident_duration_ms"
        ]
    );
    assert_eq!(out.field(3).data_type(), &DataType::Float64);
    assert_eq!(out.field(4).data_type(), &DataType::Boolean);
    assert_eq!(out.field(6).data_type(), &DataType::Utf8);
    assert_eq!(out.field(10).data_type(), &DataType::Int64);
    assert_eq!(sluice_core::schema::event_time_column(&out), Some("ts"));
}

#[test]
fn output_columns_can_be_renamed_to_chain_transforms() {
    let cfg = config(&univariate_yaml(
        "score_column: vib_score\nflag_column: vib_anomaly\ncolumn_prefix: vib_\n",
    ));
    let s = schema(&["value", "anomaly_score", "incident_start"]);
    let mut v = Validator::new();
    let out = cfg
        .check(&sluice_core::InputSchema::only(s.clone()), &mut v)
        .unwrap();
    let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names[5..8],
        ["vib_score", "vib_anomaly", "vib_anomaly_likelihood"]
    );
    assert_eq!(names[12], "vib_incident_duration_ms");
    let clash = config(&univariate_yaml(""));
    let errors = check_errors(&clash, &s);
    assert!(
        errors.iter().any(|(p, _)| p == &["score_column"]),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["column_prefix"] && m.contains("`incident_start`")),
        "{errors:?}"
    );
}

#[test]
fn check_reports_missing_and_non_numeric_columns() {
    let cfg = config(
        &univariate_yaml("")
            .replace("[value]", "[pressure]")
            .replace("device", "line"),
    );
    let s = Arc::new(Schema::new(vec![
        Field::new("line", DataType::Boolean, false),
        Field::new("pressure", DataType::Utf8, false),
    ]));
    let errors = check_errors(&cfg, &s);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["features"] && m.contains("expected a numeric column")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["key"] && m.contains("string or integer")),
        "{errors:?}"
    );
    let cfg = config(&univariate_yaml("").replace("[value]", "[presure]"));
    let errors = check_errors(&cfg, &schema(&["pressure"]));
    assert!(
        errors
            .iter()
            .any(|(_, m)| m.contains("`presure` is not a column")),
        "{errors:?}"
    );
}

#[test]
fn check_rejects_a_model_whose_window_does_not_match() {
    let cfg = config(&univariate_yaml("history: 16\n"));
    let errors = check_errors(&cfg, &schema(&["value"]));
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["history"] && m.contains("[?, 32]")),
        "{errors:?}"
    );
    let cfg = config(
        &factory_yaml("").replace("[vibration_rms, temperature, current]", "[a, b, c, d, e]"),
    );
    let errors = check_errors(&cfg, &schema(&["a", "b", "c", "d", "e"]));
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["features"] && m.contains("[?, 48]")),
        "{errors:?}"
    );
}

#[test]
fn check_refuses_a_model_with_another_checksum() {
    let cfg = config(&univariate_yaml(&format!("sha256: {}\n", "ab".repeat(32))));
    let errors = check_errors(&cfg, &schema(&["value"]));
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["sha256"] && m.contains("refusing")),
        "{errors:?}"
    );
}

#[test]
fn check_reports_a_missing_model_file() {
    let cfg = config("inputs: [t]\nmodel: models/none.onnx\nfeatures: [value]\n");
    let errors = check_errors(&cfg, &schema(&["value"]));
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == &["model"] && m.contains("models/none.onnx")),
        "{errors:?}"
    );
}

#[test]
fn check_rejects_a_warmup_shorter_than_history() {
    let cfg = config(&univariate_yaml("warmup: 10\n"));
    let errors = check_errors(&cfg, &schema(&["value"]));
    assert!(errors.iter().any(|(p, _)| p == &["warmup"]), "{errors:?}");
}

#[test]
fn building_fails_with_context_on_a_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.onnx");
    let mut bytes = std::fs::read(models_dir().join("univariate-h32.onnx")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, bytes).unwrap();
    let cfg = config(&format!(
        "inputs: [t]\nmodel: {}\nfeatures: [value]\n",
        path.display()
    ));
    let inputs = sluice_core::InputSchema::only(schema(&["value"]));
    let Err(err) = TransformHarness::build(&cfg, inputs, None) else {
        panic!("a corrupt model built");
    };
    let err = err.to_string();
    assert!(
        err.contains("component `transform`") && err.contains("corrupt.onnx"),
        "{err}"
    );
}
