//! End-to-end checks of the command line: validate, graph and demo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn validate_accepts_every_shipped_pipeline() {
    let mut files: Vec<_> = std::fs::read_dir(root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let out = Command::new(common::sluice_bin())
        .arg("validate")
        .args(&files)
        .env("SLUICE_MODELS_DIR", root().join("models"))
        .env("SLUICE_RETAIL_FRAMES", root().join("examples/retail"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(err.contains(&format!("{name}: ok")), "{name}: {err}");
    }
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
fn demo_runs_the_factory_and_the_store_and_forwards_alerts_and_digests_upstream() {
    sluice_testkit::require_mosquitto!();
    // A real broker stands in for the cloud.
    let cloud = sluice_testkit::Mosquitto::start().unwrap();
    let upstream = common::subscribe(cloud.port(), "cloud/#".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::sluice_bin())
        .args(["demo", "--duration", "45s", "--speed", "4", "--no-admin"])
        .arg("--out-dir")
        .arg(dir.path())
        .arg("--models-dir")
        .arg(root().join("models"))
        .arg("--retail-dir")
        .arg(root().join("examples/retail"))
        .arg("--uplink")
        .arg(cloud.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // Factory: window summaries on the console and in the windows file.
    assert!(
        stdout.contains("[summary_console]") && stdout.contains("readings"),
        "no summary printed:\n{stdout}"
    );
    let windows = std::fs::read_to_string(dir.path().join("factory-windows.jsonl")).unwrap();
    assert!(windows.lines().count() >= 20, "{windows}");
    // Store: the frames went through the detector, zones and the join.
    let events = std::fs::read_to_string(dir.path().join("retail-events.jsonl")).unwrap();
    assert!(events.contains("\"zone\":\"bagging_area\""), "{events}");
    assert!(stdout.contains("non_scan"), "no non-scan alert:\n{stdout}");
    let thumbs = dir.path().join("thumbnails");
    assert!(std::fs::read_dir(thumbs.join("checkout")).unwrap().count() > 0);

    // Upstream: alerts of both pipelines and at least one digest, each
    // digest with a summary and the facts it was written from.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let got = upstream.lock().unwrap().clone();
    let on = |prefix: &str| got.iter().filter(|(t, _)| t.starts_with(prefix)).count();
    assert!(
        on("cloud/factory/alerts/") + on("cloud/store/alerts/") > 0,
        "{got:?}"
    );
    assert!(
        on("cloud/store/alerts/") > 0,
        "no store alert upstream: {got:?}"
    );
    let digests: Vec<&serde_json::Value> = got
        .iter()
        .filter(|(t, _)| t.ends_with("/digests"))
        .map(|(_, v)| v)
        .collect();
    assert!(!digests.is_empty(), "no digest upstream:\n{stderr}");
    for d in &digests {
        assert!(!d["summary"].as_str().unwrap().is_empty(), "{d}");
        assert!(d["event_count"].as_u64().unwrap() > 0, "{d}");
        assert!(d["facts"].as_str().unwrap().starts_with('{'), "{d}");
    }
}
