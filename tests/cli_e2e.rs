//! End-to-end checks of the command line: validate, graph, run on a
//! replayed file, and demo.
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
fn run_replays_a_csv_file_through_a_window_and_stops_when_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("ts,device,vibration\n");
    // Two devices, one reading a second for 25 s: windows 0-10 s, 10-20 s
    // and 20-30 s (the last closes when the input ends).
    for s in 0..25i64 {
        for (d, base) in [("press-1", 1.0), ("press-2", 2.0)] {
            csv.push_str(&format!(
                "{},{d},{}\n",
                1_700_000_000_000 + s * 1000,
                base + s as f64
            ));
        }
    }
    csv.push_str("not-a-time,press-1,1\n");
    std::fs::write(dir.path().join("recorded.csv"), csv).unwrap();
    let out_file = dir.path().join("windows.jsonl");
    let pipeline = dir.path().join("replay.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "sources:
  recorded:
    type: csv
    path: {}
    schema: {{ ts: timestamp_ms, device: utf8, vibration: float64 }}
    event_time: ts
transforms:
  per_device:
    type: sql
    inputs: [recorded]
    window: {{ tumbling: 10s }}
    query: SELECT device, COUNT(*) AS n, MAX(vibration) AS peak FROM input GROUP BY device
sinks:
  out:
    type: file
    inputs: [per_device]
    path: {}
",
            dir.path().join("recorded.csv").display(),
            out_file.display()
        ),
    )
    .unwrap();
    let out = Command::new(common::sluice_bin())
        .args(["run", "--no-admin"])
        .arg(&pipeline)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Every pipeline has finished"), "{err}");
    let mut rows: Vec<(String, u64, f64)> = std::fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["device"].as_str().unwrap().to_owned(),
                v["n"].as_u64().unwrap(),
                v["peak"].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.0.as_str(), a.2)
            .partial_cmp(&(b.0.as_str(), b.2))
            .unwrap()
    });
    assert_eq!(
        rows,
        [
            ("press-1".to_owned(), 10, 10.0),
            ("press-1".to_owned(), 10, 20.0),
            ("press-1".to_owned(), 5, 25.0),
            ("press-2".to_owned(), 10, 11.0),
            ("press-2".to_owned(), 10, 21.0),
            ("press-2".to_owned(), 5, 26.0),
        ]
    );
}

#[test]
fn demo_runs_the_factory_and_the_store_and_forwards_alerts_and_digests_upstream() {
    sluice_testkit::require_mosquitto!();
    // A real broker stands in for the cloud.
    let cloud = sluice_testkit::Mosquitto::start().unwrap();
    let upstream = common::subscribe(cloud.port(), "cloud/#".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let (stdout_path, stderr_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(common::sluice_bin())
        .args(["demo", "--duration", "45s", "--speed", "4"])
        .arg("--admin")
        .arg(admin.to_string())
        .arg("--out-dir")
        .arg(dir.path())
        .arg("--models-dir")
        .arg(root().join("models"))
        .arg("--retail-dir")
        .arg(root().join("examples/retail"))
        .arg("--uplink")
        .arg(cloud.url())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // Every component of both pipelines has recorded something by the time
    // the detector has run and the first digest is out.
    let mut scraped = String::new();
    common::wait_until(
        std::time::Duration::from_secs(44),
        "the demo's metrics of every plugin",
        || {
            scraped = common::http_get(admin, "/metrics")
                .map(|(_, b)| b)
                .unwrap_or_default();
            [
                "sluice_component_received_rows_total",
                "sluice_mqtt_published_messages_total",
                "sluice_outbox_stored_rows",
                "sluice_anomaly_scored_rows_total",
                "sluice_frames_captured_total",
                "sluice_detect_frames_total",
                "sluice_summarize_fallbacks_total",
            ]
            .iter()
            .all(|f| scraped.contains(&format!("# TYPE {f} ")))
        },
    );
    every_family_is_described(&scraped);
    let status = child.wait().unwrap();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "{stderr}");

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

/// Every `sluice_` family on the page has `# HELP` and `# TYPE`, and every
/// sample belongs to a family with both.
fn every_family_is_described(page: &str) {
    let mut typed = std::collections::BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    for line in page.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("#"), Some("TYPE"), Some(name)) => {
                typed.insert(name.to_owned(), w.next().unwrap_or_default().to_owned());
            }
            (Some("#"), Some("HELP"), Some(name)) => {
                helped.insert(name.to_owned());
            }
            _ => {}
        }
    }
    let ours: Vec<&String> = typed.keys().filter(|n| n.starts_with("sluice_")).collect();
    assert!(ours.len() >= 20, "{ours:?}");
    let undescribed: Vec<&&String> = ours.iter().filter(|n| !helped.contains(**n)).collect();
    assert!(undescribed.is_empty(), "no # HELP for {undescribed:?}");
    for line in page.lines().filter(|l| l.starts_with("sluice_")) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| {
                    matches!(
                        typed.get(*f).map(String::as_str),
                        Some("histogram" | "summary")
                    )
                })
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no # TYPE for {line}");
    }
}
