use std::path::Path;

use sluice_core::{SourceEntry, TransformEntry};

use super::*;

/// The pipeline with every shipped component.
type Pipeline = crate::Pipeline<sluice_plugins::Catalog>;

const SOURCE: &str = "  telemetry:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [\"f/#\"]
    schema: { device: utf8, ts: timestamp_ms, value: float64 }
    event_time: ts
";

fn load(body: &str) -> Result<Pipeline, Diagnostics> {
    load_str(
        Path::new("pipelines/line3.yaml"),
        &format!("sources:\n{SOURCE}{body}"),
    )
}

fn errors(d: &Diagnostics) -> Vec<(u64, u64, &str)> {
    d.errors()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect()
}

#[test]
fn loads_a_pipeline_with_order_schemas_and_file_stem_name() {
    let p = load(
        "sinks:
  print:
    type: console
    inputs: [peak]
transforms:
  peak:
    type: sql
    inputs: [telemetry]
    query: SELECT device, max(value) AS peak FROM input GROUP BY device
",
    )
    .unwrap();
    assert_eq!(p.name, "line3");
    assert_eq!(p.order, ["telemetry", "peak", "print"]);
    assert_eq!(p.sources["telemetry"].type_name(), "mqtt");
    assert_eq!(p.transforms["peak"].type_name(), "sql");
    let peak = &p.schemas["peak"];
    assert!(peak.field_with_name("peak").is_ok(), "{peak:?}");
    assert!(p.schemas["telemetry"].field_with_name("value").is_ok());
    assert!(!p.schemas.contains_key("print"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn broken_component_still_counts_as_reader_and_as_input() {
    // `slow` fails to deserialise, but its `inputs` are read from the tree: the
    // source is not "unused" and the sink's input `slow` exists.
    let d = load(
        "transforms:
  slow:
    type: sql
    inputs: [telemetry]
    window: { tumbling: 10 sec }
    query: SELECT * FROM input
sinks:
  print:
    type: console
    inputs: [slow]
",
    )
    .unwrap_err();
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!(errors(&d)[0].0, 12);
    assert!(
        errors(&d)[0].2.starts_with("invalid duration `10 sec`"),
        "{d}"
    );
}

#[test]
fn validator_issue_paths_resolve_to_the_nested_node() {
    let d = load(
        "transforms:
  w:
    type: sql
    inputs: [telemetry]
    window:
      tumbling: 0s
    query: SELECT count(*) AS n FROM input
sinks:
  print: { type: console, inputs: [w] }
",
    )
    .unwrap_err();
    assert_eq!(
        errors(&d),
        [(13, 17, "`tumbling` must be greater than zero")],
        "{d}"
    );
}

#[test]
fn warnings_come_back_with_the_pipeline_and_after_errors_in_diagnostics() {
    let text = "sinks:\n  print: { type: console, inputs: [telemetry] }\n";
    let p = load(&format!("{SOURCE_SPARE}{text}")).unwrap();
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].severity, Severity::Warning);
    assert_eq!(p.warnings[0].line, 8);

    let d = load(&format!(
        "{SOURCE_SPARE}sinks:\n  print: {{ type: console, inputs: [nope] }}\n"
    ))
    .unwrap_err();
    let severities: Vec<Severity> = d.0.iter().map(|d| d.severity).collect();
    assert_eq!(
        severities,
        [Severity::Error, Severity::Warning, Severity::Warning],
        "{d}"
    );
}

const SOURCE_SPARE: &str = "  spare:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [\"g/#\"]
    schema: { device: utf8 }
";

#[test]
fn components_downstream_of_broken_ones_are_not_checked_against_a_guess() {
    // `peak` cannot be planned without its input schema; no error is made up
    // for it, only the source's own problem is reported.
    let text = "sources:
  telemetry:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [\"f/#\"]
    schema: { device: utf8 }
    event_time: missing
transforms:
  peak:
    type: sql
    inputs: [telemetry]
    query: SELECT no_such_column FROM input
sinks:
  print: { type: console, inputs: [peak] }
";
    let d = load_str::<sluice_plugins::Catalog>(Path::new("p.yaml"), text).unwrap_err();
    assert_eq!(
        errors(&d),
        [(7, 17, "`missing` is not a field of `schema`")],
        "{d}"
    );
}

#[test]
fn unset_variable_in_a_component_is_reported_at_its_value() {
    let text = format!(
        "sources:\n{SOURCE}sinks:\n  out:\n    type: file\n    inputs: [telemetry]\n    path: \"${{SLUICE_CONFIG_TEST_UNSET_DIR}}/x.jsonl\"\n"
    );
    let d = load_str::<sluice_plugins::Catalog>(Path::new("p.yaml"), &text).unwrap_err();
    let e = errors(&d);
    assert_eq!((e[0].0, e[0].1), (12, 11), "{d}");
    assert!(
        e[0].2.contains("`SLUICE_CONFIG_TEST_UNSET_DIR` is not set"),
        "{d}"
    );
}

#[test]
fn syntax_error_is_the_only_diagnostic() {
    let d = load_str::<sluice_plugins::Catalog>(Path::new("p.yaml"), "sources:\n  a: [1, 2\n")
        .unwrap_err();
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(d.0[0].line >= 2, "{d}");
}

#[test]
fn unreadable_file_is_a_file_level_error() {
    let d =
        load_file::<sluice_plugins::Catalog>(Path::new("/nonexistent/sluice/p.yaml")).unwrap_err();
    assert_eq!(d.0.len(), 1);
    assert!(
        d.to_string()
            .starts_with("/nonexistent/sluice/p.yaml: error: cannot read"),
        "{d}"
    );
}

#[test]
fn mermaid_and_downstream_follow_the_loaded_graph() {
    let p = load(
        "transforms:
  hot:
    type: filter
    inputs: [telemetry]
    where: value > 1
sinks:
  print: { type: console, inputs: [hot, telemetry] }
  file: { type: file, inputs: [telemetry], path: out/x.jsonl }
",
    )
    .unwrap();
    assert_eq!(downstream_of(&p, "telemetry"), ["hot", "print", "file"]);
    assert_eq!(downstream_of(&p, "hot"), ["print"]);
    assert!(downstream_of(&p, "print").is_empty());
    assert_eq!(
        mermaid(&p),
        "flowchart LR
    n0([\"telemetry<br/>mqtt\"])
    n1[\"hot<br/>filter\"]
    n2[(\"print<br/>console\")]
    n3[(\"file<br/>file\")]
    n0 --> n1
    n1 --> n2
    n0 --> n2
    n0 --> n3
"
    );
}
