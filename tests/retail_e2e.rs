//! End-to-end: camera frames through detection, tracking and zone rules to a
//! real Mosquitto, through the `sluice` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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

/// Collects every message on `topic` in the background.
fn subscribe(port: u16, topic: String) -> Arc<Mutex<Vec<Value>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = rumqttc::MqttOptions::new(
                format!("e2e-sub-{}", std::process::id()),
                "127.0.0.1",
                port,
            );
            let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 100);
            client
                .subscribe(topic, rumqttc::QoS::AtLeastOnce)
                .await
                .unwrap();
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        ready_tx.send(()).unwrap();
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        sink.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&p.payload).unwrap());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    got
}

#[test]
fn a_person_in_the_stockroom_after_hours_raises_one_enter_and_one_exit() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = sluice_testkit::unique_id("retail");
    let got = subscribe(broker.port(), format!("{prefix}/alerts/#"));
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
    let events = got.lock().unwrap().clone();
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
