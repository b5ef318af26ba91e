//! Inputs with different columns: allowed into a `sql` query that joins them
//! as tables, a reported mismatch everywhere else.

use std::path::Path;

use super::*;

/// The pipeline with every shipped component.
type Pipeline = crate::Pipeline<sluice_plugins::Catalog>;

const SOURCES: &str = "sources:
  bagged:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [\"zones/bagging\"]
    schema: { camera: utf8, zone: utf8, track: int64, class: utf8, score: float64, lane: utf8, ts: timestamp_ms }
    event_time: ts
  scans:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [\"pos/scans\"]
    schema: { lane: utf8, sku: utf8, ts: timestamp_ms }
    event_time: ts
";

const NON_SCAN: &str = "transforms:
  non_scan:
    type: sql
    inputs: [bagged, scans]
    window: { tumbling: 10s, allowed_lateness: 2s, context: 30s }
    query: |
      SELECT b.camera, b.zone, b.track, b.class, b.score, b.ts
      FROM bagged b
      WHERE NOT EXISTS (
        SELECT 1 FROM scans s
        WHERE s.lane = b.lane
          AND s.ts BETWEEN b.ts - INTERVAL '20 seconds' AND b.ts + INTERVAL '5 seconds')
sinks:
  alerts: { type: console, inputs: [non_scan] }
";

fn load(body: &str) -> Result<Pipeline, Diagnostics> {
    load_str(Path::new("loss.yaml"), &format!("{SOURCES}{body}"))
}

fn errors(d: &Diagnostics) -> Vec<(u64, u64, &str)> {
    d.errors()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect()
}

#[test]
fn a_sql_join_of_differently_shaped_inputs_validates_with_its_output_schema() {
    let p = load(NON_SCAN).unwrap();
    let out = &p.schemas["non_scan"];
    let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "window_start",
            "window_end",
            "camera",
            "zone",
            "track",
            "class",
            "score",
            "ts"
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn a_join_query_error_points_at_the_query() {
    let d = load(&NON_SCAN.replace("FROM scans s", "FROM input s")).unwrap_err();
    let e = errors(&d);
    assert_eq!(e.len(), 1, "{d}");
    assert_eq!((e[0].0, e[0].1), (20, 7), "{d}");
    assert!(e[0].2.starts_with("table `input` is not defined"), "{d}");
}

#[test]
fn a_query_over_input_still_needs_the_same_columns() {
    let d = load(
        "transforms:
  both:
    type: sql
    inputs: [bagged, scans]
    query: SELECT * FROM input
sinks:
  print: { type: console, inputs: [both] }
",
    )
    .unwrap_err();
    let e = errors(&d);
    assert_eq!(e.len(), 1, "{d}");
    assert_eq!((e[0].0, e[0].1), (17, 22), "{d}");
    assert!(
        e[0].2
            .starts_with("schema mismatch between inputs `bagged` and `scans`"),
        "{d}"
    );
    let help = d.errors().next().and_then(|d| d.help.clone()).unwrap();
    assert!(help.contains("`bagged`, `scans`"), "{help}");
}

#[test]
fn other_components_still_report_mismatched_inputs() {
    let d = load(
        "sinks:
  print: { type: console, inputs: [bagged, scans] }
",
    )
    .unwrap_err();
    let e = errors(&d);
    assert_eq!(e.len(), 1, "{d}");
    assert_eq!((e[0].0, e[0].1), (15, 44), "{d}");
    assert!(e[0].2.starts_with("schema mismatch"), "{d}");
    let help = d.errors().next().and_then(|d| d.help.clone()).unwrap();
    assert!(!help.contains("table"), "{help}");
}
