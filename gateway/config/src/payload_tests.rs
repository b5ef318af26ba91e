//! Frame streams wired into components that take rows, and the reverse.

use std::path::{Path, PathBuf};

use super::*;

/// The pipeline with every shipped component.
type Pipeline = crate::Pipeline<sluice_plugins::Catalog>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(body: &str) -> Result<Pipeline, Diagnostics> {
    let text = format!(
        "sources:
  cam:
    type: frames
    path: {}
  telemetry:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [\"f/#\"]
    schema: {{ device: utf8, ts: timestamp_ms, value: float64 }}
    event_time: ts
{body}",
        repo().join("plugins/vision/testdata").display()
    );
    load_str(Path::new("pipelines/store.yaml"), &text)
}

fn detect(input: &str) -> String {
    format!(
        "  people:
    type: detect
    inputs: [{input}]
    model: {}
    format: nanodet
",
        repo().join("models/detect/nanodet-g-416.onnx").display()
    )
}

fn errors(d: &Diagnostics) -> Vec<(u64, u64, String)> {
    d.errors()
        .map(|d| (d.line, d.column, d.message.clone()))
        .collect()
}

#[test]
fn frames_into_a_row_transform_is_an_error_at_the_input() {
    let d = load(
        "transforms:
  peak:
    type: sql
    inputs: [telemetry, cam]
    query: SELECT 1 AS one FROM input
sinks:
  out:
    type: console
    inputs: [peak]
",
    )
    .unwrap_err();
    let errs = errors(&d);
    assert!(
        errs.iter().any(|e| e
            .2
            .starts_with("schema mismatch between inputs `telemetry` and `cam`")),
        "{errs:?}"
    );
    let d = load(
        "sinks:
  out:
    type: console
    inputs: [cam]
",
    )
    .unwrap_err();
    assert_eq!(
        errors(&d),
        [(
            14,
            14,
            "`out` (type `console`) takes rows, but its input `cam` carries camera frames"
                .to_owned()
        )]
    );
}

#[test]
fn rows_into_detect_is_an_error_at_the_input() {
    let d = load(&format!(
        "transforms:\n{}sinks:\n  out:\n    type: console\n    inputs: [people]\n",
        detect("telemetry")
    ))
    .unwrap_err();
    assert_eq!(
        errors(&d),
        [(
            14,
            14,
            "`people` (type `detect`) takes camera frames, but its input `telemetry` carries rows"
                .to_owned()
        )]
    );
}

#[test]
fn frames_detect_track_and_zones_make_a_valid_pipeline() {
    let p = load(&format!(
        "transforms:
{}  tracked:
    type: track
    inputs: [people]
  zones:
    type: zones
    inputs: [tracked]
    zones:
      - {{ name: door, camera: cam, polygon: [[0, 0], [100, 0], [100, 100]] }}
sinks:
  out:
    type: console
    inputs: [zones]
",
        detect("cam")
    ))
    .unwrap();
    assert_eq!(
        p.order,
        ["cam", "telemetry", "people", "tracked", "zones", "out"]
    );
    assert!(p.schemas["tracked"].field_with_name("track_id").is_ok());
    assert!(p.schemas["zones"].field_with_name("event").is_ok());
}
