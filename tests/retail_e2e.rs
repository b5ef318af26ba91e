//! End-to-end: camera frames through detection, tracking and zone rules to a
//! real Mosquitto, through the `sluice` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Gateway, wait_until};
use serde_json::Value;
use sluice_testkit::{Mosquitto, require_mosquitto};

/// 2026-11-20 (a Friday) 23:00:00 UTC: after the store's hours.
const NIGHT_MS: i64 = 1_795_215_600_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Four frames of the photo with one person, 200 ms apart, named by time.
fn frames(dir: &Path) -> PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir(&frames).unwrap();
    let photo = root().join("plugins/vision/testdata/person.jpg");
    for i in 0..4 {
        let name = format!("stockroom-{}.jpg", NIGHT_MS + i * 200);
        std::fs::copy(&photo, frames.join(name)).unwrap();
    }
    frames
}

fn pipeline(dir: &Path, url: &str, prefix: &str) -> PathBuf {
    let yaml = format!(
        r#"
sources:
  cam:
    type: frames
    camera: stockroom
    path: {frames}
    fps: 10
    timestamps: name
transforms:
  people:
    type: detect
    inputs: [cam]
    model: {model}
    format: nanodet
    classes: [person]
  tracked:
    type: track
    inputs: [people]
  events:
    type: zones
    inputs: [tracked]
    schedule: {{ open: "08:00", close: "21:00" }}
    lost_after: 1s
    zones:
      - {{ name: stockroom, camera: stockroom, polygon: [[150, 300], [350, 300], [350, 420], [150, 420]],
          when: after_hours }}
      - {{ name: shop_floor, camera: stockroom, polygon: [[0, 0], [640, 0], [640, 424], [0, 424]],
          when: open_hours }}
sinks:
  alerts:
    type: mqtt
    inputs: [events]
    url: {url}
    topic: {prefix}/alerts/{{camera}}
"#,
        frames = frames(dir).display(),
        model = root().join("models/detect/nanodet-g-416.onnx").display(),
    );
    let path = dir.join("retail.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_person_in_the_stockroom_after_hours_raises_one_enter_and_one_exit() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = sluice_testkit::unique_id("retail");
    let got = common::subscribe(broker.port(), format!("{prefix}/alerts/#"));
    let path = pipeline(dir.path(), &broker.url(), &prefix);
    let mut gw = Gateway::start(&path, dir.path(), &[]);
    wait_until(
        Duration::from_secs(120),
        "the enter and exit alerts",
        || got.lock().unwrap().len() >= 2,
    );
    // Anything else would have arrived with the exit (same batch or tick).
    std::thread::sleep(Duration::from_millis(1500));
    gw.terminate(Duration::from_secs(20));
    let events: Vec<Value> = got.lock().unwrap().iter().map(|(_, v)| v.clone()).collect();
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["zone"].as_str().unwrap(),
                e["event"].as_str().unwrap(),
                e["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("stockroom", "enter", "person"),
            ("stockroom", "exit", "person")
        ],
        "{events:?}"
    );
    assert_eq!(events[0]["track_id"], events[1]["track_id"]);
    assert_eq!(events[0]["after_hours"], Value::Bool(true));
    assert_eq!(events[0]["camera"], "stockroom");
    // The exit comes at the last frame's time, 600 ms after the first.
    assert_eq!(events[1]["dwell_seconds"].as_f64(), Some(0.6));
}

/// The checkout scenario of `examples/retail/scenario.json`.
fn scenario() -> Value {
    let text = std::fs::read_to_string(root().join("examples/retail/scenario.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Stockroom and checkout cameras played from the sample frames, till scans
/// over MQTT, and the loss-prevention rules of the demo: after-hours entry
/// and items bagged without a scan (a windowed SQL join of the two streams).
/// The frame queues hold every frame, so a detector slower than the cameras
/// on a busy machine drops none and the outcome does not depend on timing.
fn checkout_pipeline(dir: &Path, url: &str, prefix: &str) -> PathBuf {
    let examples = root().join("examples/retail");
    let yaml = format!(
        r#"
sources:
  stockroom_cam:
    type: frames
    camera: stockroom
    path: {stockroom}
    fps: 10
    timestamps: name
    queue: 128
  checkout_cam:
    type: frames
    camera: checkout
    path: {checkout}
    fps: 10
    timestamps: name
    queue: 128
  scans:
    type: mqtt
    url: {url}
    topics: ["{prefix}/pos/+/scans"]
    schema: {{ lane: int64, ts: timestamp_ms, item_id: int64, item: utf8, receipt: int64 }}
    event_time: ts
transforms:
  detections:
    type: detect
    inputs: [stockroom_cam, checkout_cam]
    model: {model}
    format: nanodet
    classes: [person, cup, vase]
    score_threshold: 0.4
    workers: 2
  tracked:
    type: track
    inputs: [detections]
    max_age: 2s
  events:
    type: zones
    inputs: [tracked]
    anchor: center
    schedule: {{ open: "08:00", close: "21:00" }}
    lost_after: 3s
    zones:
      - {{ name: stockroom, camera: stockroom, polygon: [[0, 0], [640, 0], [640, 480], [0, 480]],
          classes: [person], events: [enter], when: after_hours }}
      - {{ name: bagging_area, camera: checkout, polygon: [[380, 150], [640, 150], [640, 480], [380, 480]],
          classes: [cup, vase], events: [enter] }}
  zone_alerts:
    type: sql
    inputs: [events]
    query: |
      SELECT camera, ts, CAST(ts AS BIGINT) AS ts_ms, zone, event AS alert, track_id, class, score
      FROM input WHERE zone <> 'bagging_area'
  bagged:
    type: sql
    inputs: [events]
    query: SELECT camera, ts, zone, track_id, class, score, CAST(1 AS BIGINT) AS lane FROM input WHERE zone = 'bagging_area'
  non_scan:
    type: sql
    inputs: [bagged, scans]
    window: {{ tumbling: 10s, allowed_lateness: 2s, context: 5s }}
    query: |
      SELECT b.camera, b.ts, b.zone, 'non_scan' AS alert, b.track_id, b.class, b.score
      FROM bagged b
      WHERE NOT EXISTS (
        SELECT 1 FROM scans s
        WHERE s.lane = b.lane
          AND s.ts BETWEEN b.ts - INTERVAL '3 seconds' AND b.ts + INTERVAL '1 second')
  non_scan_alerts:
    type: sql
    inputs: [non_scan]
    query: SELECT camera, ts, CAST(ts AS BIGINT) AS ts_ms, zone, alert, track_id, class, score FROM input
sinks:
  alerts:
    type: mqtt
    inputs: [zone_alerts, non_scan_alerts]
    url: {url}
    topic: {prefix}/alerts/{{camera}}
"#,
        stockroom = examples.join("stockroom").display(),
        checkout = examples.join("checkout").display(),
        model = root().join("models/detect/nanodet-g-416.onnx").display(),
    );
    let path = dir.join("checkout.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn checkout_frames_and_till_scans_give_exactly_the_non_scan_and_after_hours_alerts() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = sluice_testkit::unique_id("checkout");
    let got = common::subscribe(broker.port(), format!("{prefix}/alerts/#"));
    let path = checkout_pipeline(dir.path(), &broker.url(), &prefix);
    let mut gw = Gateway::start(&path, dir.path(), &[]);
    gw.wait_ready(Duration::from_secs(60));

    // The till scans the items the scenario says it scans, at their times.
    let checkout = &scenario()["checkout"];
    let lane = checkout["lane"].as_i64().unwrap();
    let items = checkout["items"].as_array().unwrap();
    let scans: Vec<(String, Vec<u8>)> = items
        .iter()
        .filter(|i| i["scanned"] == Value::Bool(true))
        .enumerate()
        .map(|(n, i)| {
            let payload = serde_json::json!({
                "lane": lane,
                "ts": i["scan_ms"],
                "item_id": i["item_id"],
                "item": i["item"],
                "receipt": n + 1,
            });
            (
                format!("{prefix}/pos/lane-{lane}/scans"),
                payload.to_string().into_bytes(),
            )
        })
        .collect();
    assert!(!scans.is_empty() && scans.len() < items.len());
    common::publish_all(broker.port(), scans);

    wait_until(
        Duration::from_secs(120),
        "the after-hours stockroom alert",
        || !got.lock().unwrap().is_empty(),
    );
    // Give the frames time to play out (45 checkout frames at 10 fps); the
    // join's window closes on shutdown at the latest.
    std::thread::sleep(Duration::from_secs(8));
    gw.terminate(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));

    let alerts: Vec<Value> = got.lock().unwrap().iter().map(|(_, v)| v.clone()).collect();
    let mut summary: Vec<(String, String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["zone"].as_str().unwrap().to_owned(),
                a["alert"].as_str().unwrap().to_owned(),
                a["class"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    summary.sort();
    let unscanned: Vec<&Value> = items
        .iter()
        .filter(|i| i["scanned"] == Value::Bool(false))
        .collect();
    let mut want: Vec<(String, String, String)> = unscanned
        .iter()
        .map(|i| {
            (
                "bagging_area".to_owned(),
                "non_scan".to_owned(),
                i["class"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    want.push(("stockroom".into(), "enter".into(), "person".into()));
    want.sort();
    assert_eq!(summary, want, "{alerts:#?}");

    // Each non-scan alert is stamped with the frame in which its item
    // entered the bagging area, on the checkout camera.
    let mut alert_times: Vec<i64> = alerts
        .iter()
        .filter(|a| a["alert"] == "non_scan")
        .map(|a| {
            assert_eq!(a["camera"], "checkout", "{a}");
            a["ts_ms"].as_i64().unwrap()
        })
        .collect();
    alert_times.sort_unstable();
    let mut entered: Vec<i64> = unscanned
        .iter()
        .map(|i| i["enters_bagging_area_ms"].as_i64().unwrap())
        .collect();
    entered.sort_unstable();
    assert_eq!(alert_times, entered, "{alerts:#?}");
}
