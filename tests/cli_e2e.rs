//! End-to-end checks of the command line: validate, graph and demo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn validate_accepts_every_shipped_pipeline() {
    let out = Command::new(common::sluice_bin())
        .arg("validate")
        .arg(root().join("pipelines/factory-telemetry.yaml"))
        .arg(root().join("pipelines/demo.yaml"))
        .env("SLUICE_MODELS_DIR", root().join("models"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("factory-telemetry.yaml: ok"), "{err}");
}

#[test]
fn validate_reports_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "sources:\n  telemetry:\n    type: mqtt\n    url: mqtt://127.0.0.1:1883\n    topics: [\"a/#\"]\n    schema: { v: float64 }\ntransforms:\n  agg:\n    type: sql\n    inputs: [telemtry]\n    window: { tumbling: 10 sec }\n    query: SELECT count(*) FROM input\nsinks:\n  out:\n    type: console\n    inputs: [agg]\n    colour: red\n",
    )
    .unwrap();
    let out = Command::new(common::sluice_bin())
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let name = file.display().to_string();
    assert!(
        err.contains(&format!("{name}:11:25: error:")),
        "bad duration location missing:\n{err}"
    );
    assert!(
        err.contains(&format!("{name}:17:5: error:")),
        "unknown field location missing:\n{err}"
    );
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn graph_prints_a_mermaid_flowchart() {
    let out = Command::new(common::sluice_bin())
        .arg("graph")
        .arg(root().join("pipelines/factory-telemetry.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("flowchart LR"), "{text}");
    assert!(
        text.contains("telemetry") && text.contains("per_device") && text.contains("uplink"),
        "{text}"
    );
}

#[test]
fn demo_prints_window_summaries_from_the_embedded_broker_and_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::sluice_bin())
        .args(["demo", "--duration", "16s", "--no-admin", "--rate", "20"])
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("[summary_console]"),
        "no summary printed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("readings"), "{stdout}");
    let windows = std::fs::read_to_string(dir.path().join("factory-windows.jsonl")).unwrap();
    assert!(windows.lines().count() >= 20, "{windows}");
}
