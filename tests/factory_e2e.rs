//! End-to-end: the `sluice` binary against a real Mosquitto on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Gateway, metric, publish_all};
use serde_json::Value;
use sluice_testkit::{Mosquitto, require_mosquitto};

/// 2026-01-01T00:00:00Z, aligned to 10 s windows.
const BASE_MS: i64 = 1_767_225_600_000;
const DEVICES: usize = 20;
const PER_DEVICE: i64 = 1000;
const STEP_MS: i64 = 50;

fn pipeline(dir: &Path, url: &str, prefix: &str, idle: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"
sources:
  telemetry:
    type: mqtt
    url: {url}
    topics: ["{prefix}/+/telemetry"]
    qos: at_least_once
    schema: {{ device: utf8, ts: timestamp_ms, value: float64 }}
    event_time: ts
transforms:
  per_device:
    type: sql
    inputs: [telemetry]
    window: {{ tumbling: 10s, allowed_lateness: 2s, idle_timeout: {idle} }}
    query: |
      SELECT device, count(*) AS n, sum(value) AS total, min(value) AS lo, max(value) AS hi
      FROM input GROUP BY device
sinks:
  out:
    type: file
    inputs: [per_device]
    path: {out}
"#,
        out = dir.join("windows.jsonl").display()
    );
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn value(d: usize, k: i64) -> f64 {
    ((d as i64 * 7 + k) % 100) as f64 * 0.5
}

fn read_rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn window_outputs_match_exact_aggregates_and_bad_messages_are_counted() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = sluice_testkit::unique_id("e2e");
    let file = pipeline(dir.path(), &broker.url(), &prefix, "1h");
    let mut gw = Gateway::start(&file, dir.path(), &[]);
    gw.wait_ready(Duration::from_secs(30));

    let topic = |d: usize| format!("{prefix}/dev-{d:02}/telemetry");
    let mut msgs = Vec::new();
    for k in 0..PER_DEVICE {
        for d in 0..DEVICES {
            let body = serde_json::json!({
                "device": format!("dev-{d:02}"), "ts": BASE_MS + k * STEP_MS, "value": value(d, k)
            });
            msgs.push((topic(d), body.to_string().into_bytes()));
        }
        if k == 500 {
            for i in 0..40 {
                msgs.push((topic(0), format!("{{not json {i}").into_bytes()));
            }
            for _ in 0..30 {
                msgs.push((
                    topic(0),
                    br#"{"device":"dev-00","ts":1767225625000}"#.to_vec(),
                ));
            }
            for _ in 0..30 {
                let b = r#"{"device":"dev-00","ts":1767225625000,"value":"abc"}"#;
                msgs.push((topic(0), b.as_bytes().to_vec()));
            }
        }
    }
    // Event time far behind the watermark: the first window closed long ago.
    for _ in 0..25 {
        let b = serde_json::json!({"device": "dev-00", "ts": BASE_MS + 1000, "value": 1.0});
        msgs.push((topic(0), b.to_string().into_bytes()));
    }
    publish_all(broker.port(), msgs);

    let expected_rows = DEVICES as f64 * PER_DEVICE as f64 + 25.0;
    common::wait_until(
        Duration::from_secs(60),
        "every message to be decoded",
        || {
            metric(
                &gw.metrics(),
                "sluice_component_received_rows_total",
                &[("component_id", "telemetry")],
            ) >= expected_rows
        },
    );
    let m = gw.metrics();
    let discarded = |id: &str, reason: &str| {
        metric(
            &m,
            "sluice_component_discarded_rows_total",
            &[("component_id", id), ("reason", reason)],
        )
    };
    assert_eq!(discarded("telemetry", "malformed_json"), 40.0);
    assert_eq!(discarded("telemetry", "missing_field"), 30.0);
    assert_eq!(discarded("telemetry", "schema_mismatch"), 30.0);
    common::wait_until(Duration::from_secs(30), "late rows to be counted", || {
        metric(
            &gw.metrics(),
            "sluice_component_discarded_rows_total",
            &[("component_id", "per_device"), ("reason", "late")],
        ) >= 25.0
    });
    assert!(
        metric(
            &m,
            "sluice_component_processing_seconds_count",
            &[("component_id", "per_device")]
        ) > 0.0
    );

    let status = gw.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}:\n{}", gw.log_text());

    let rows = read_rows(&dir.path().join("windows.jsonl"));
    let mut starts: Vec<String> = rows
        .iter()
        .map(|r| r["window_start"].as_str().unwrap().to_owned())
        .collect();
    starts.sort();
    starts.dedup();
    assert_eq!(starts.len(), 5, "windows: {starts:?}");
    let mut got = BTreeMap::new();
    for r in &rows {
        let w = starts
            .iter()
            .position(|s| s == r["window_start"].as_str().unwrap())
            .unwrap();
        let key = (w, r["device"].as_str().unwrap().to_owned());
        let prev = got.insert(key.clone(), r.clone());
        assert!(prev.is_none(), "window {key:?} emitted twice");
    }
    assert_eq!(got.len(), DEVICES * 5);
    for d in 0..DEVICES {
        for w in 0..5i64 {
            let ks = w * 200..(w + 1) * 200;
            let vals: Vec<f64> = ks.map(|k| value(d, k)).collect();
            let r = &got[&(w as usize, format!("dev-{d:02}"))];
            assert_eq!(r["n"], 200, "{r}");
            assert_eq!(
                r["total"].as_f64().unwrap(),
                vals.iter().sum::<f64>(),
                "{r}"
            );
            assert_eq!(
                r["lo"].as_f64().unwrap(),
                vals.iter().cloned().fold(f64::MAX, f64::min)
            );
            assert_eq!(
                r["hi"].as_f64().unwrap(),
                vals.iter().cloned().fold(f64::MIN, f64::max)
            );
        }
    }
}

#[test]
fn sigterm_mid_stream_accounts_for_every_received_message() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = sluice_testkit::unique_id("e2e-term");
    let file = pipeline(dir.path(), &broker.url(), &prefix, "2s");
    let dump = dir.path().join("final.prom");
    let mut gw = Gateway::start(
        &file,
        dir.path(),
        &["--metrics-dump", dump.to_str().unwrap()],
    );
    gw.wait_ready(Duration::from_secs(30));

    // Live event times, so windows close while the stream runs.
    let port = broker.port();
    let publisher = std::thread::spawn(move || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let msgs: Vec<_> = (0..30_000i64)
            .map(|i| {
                let d = (i % DEVICES as i64) as usize;
                let body = serde_json::json!({
                    "device": format!("dev-{d:02}"), "ts": now + i / 4, "value": value(d, i)
                });
                (
                    format!("{prefix}/dev-{d:02}/telemetry"),
                    body.to_string().into_bytes(),
                )
            })
            .collect();
        publish_all(port, msgs);
    });
    common::wait_until(Duration::from_secs(60), "the stream to be flowing", || {
        metric(
            &gw.metrics(),
            "sluice_component_received_rows_total",
            &[("component_id", "telemetry")],
        ) >= 5_000.0
    });
    let status = gw.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}:\n{}", gw.log_text());
    publisher.join().unwrap();

    let text = std::fs::read_to_string(&dump).unwrap();
    let received = metric(
        &text,
        "sluice_component_received_rows_total",
        &[("component_id", "telemetry")],
    );
    let dropped = metric(
        &text,
        "sluice_component_discarded_rows_total",
        &[("pipeline", "pipeline")],
    );
    let out: f64 = read_rows(&dir.path().join("windows.jsonl"))
        .iter()
        .map(|r| r["n"].as_f64().unwrap())
        .sum();
    assert!(received >= 5_000.0, "received {received}");
    assert_eq!(
        out + dropped,
        received,
        "out {out} + dropped {dropped} != received {received}"
    );
}

#[test]
fn sensors_can_publish_straight_to_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let out = dir.path().join("rows.jsonl");
    let yaml = format!(
        r#"
broker: {{ listen: "127.0.0.1:{port}" }}
sources:
  telemetry:
    type: mqtt
    url: mqtt://127.0.0.1:{port}
    topics: ["plant/+/telemetry"]
    schema: {{ device: utf8, value: float64 }}
sinks:
  out:
    type: file
    inputs: [telemetry]
    path: {out}
"#,
        out = out.display()
    );
    let file = dir.path().join("edge.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut gw = Gateway::start(&file, dir.path(), &[]);
    gw.wait_ready(Duration::from_secs(30));
    let msgs = (0..500)
        .map(|i| {
            let body = serde_json::json!({"device": format!("d{}", i % 5), "value": i});
            (
                format!("plant/d{}/telemetry", i % 5),
                body.to_string().into_bytes(),
            )
        })
        .collect();
    publish_all(port, msgs);
    let received = || {
        metric(
            &gw.metrics(),
            "sluice_component_received_rows_total",
            &[("component_id", "telemetry")],
        )
    };
    let started = std::time::Instant::now();
    while received() < 500.0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of 500 rows after 30 s\n{}",
            received(),
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = gw.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", gw.log_text());
    let rows = read_rows(&out);
    assert_eq!(rows.len(), 500);
    let total: f64 = rows.iter().map(|r| r["value"].as_f64().unwrap()).sum();
    assert_eq!(total, (0..500).sum::<i64>() as f64);
    assert!(
        rows.iter()
            .all(|r| r["_topic"].as_str().unwrap().starts_with("plant/d"))
    );
}
