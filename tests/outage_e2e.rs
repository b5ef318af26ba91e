//! End-to-end store-and-forward: a cloud outage and a `kill -9` of the
//! gateway lose nothing that the local broker accepted.
//!
//! Two real Mosquitto brokers on loopback ("local" and "cloud"). A publisher
//! sends sequenced QoS 1 messages at a fixed rate to local; the gateway
//! forwards them through its SQLite outbox to cloud. Mid-stream the cloud
//! broker is stopped for 20 s, and during that outage the gateway is killed
//! with SIGKILL and started again. A persistent cloud subscriber must end up
//! with every sequence number, first arrivals in order per device, and the
//! duplicates (at-least-once) are counted and bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Gateway;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sluice_testkit::{Mosquitto, require_mosquitto};

const DEVICES: usize = 10;
const MESSAGES: usize = 50_000;
/// Messages per second from the publisher.
const RATE: u64 = 2_000;
const OUTAGE: Duration = Duration::from_secs(20);

fn pipeline(dir: &Path, local: &str, cloud: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
sources:
  plant:
    type: mqtt
    url: {local}
    topics: ["plant/+/data"]
    qos: at_least_once
    client_id: outage-gateway
    schema: {{ device: utf8, seq: int64, ts: timestamp_ms }}
sinks:
  cloud:
    type: mqtt
    inputs: [plant]
    url: {cloud}
    topic: "cloud/{{device}}"
    qos: at_least_once
    keep_alive: 5s
    reconnect: {{ min_backoff: 100ms, max_backoff: 1s }}
    outbox:
      path: {outbox}
      max_bytes: 256MiB
      on_full: block
      priority: high
"#,
        outbox = dir.join("outbox.db").display()
    );
    let path = dir.join("outage.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the cloud subscriber saw: (device, seq) in arrival order.
type Arrivals = Arc<Mutex<Vec<(usize, u64)>>>;

/// A persistent QoS 1 subscriber on the cloud broker that keeps reconnecting
/// while the broker is down.
fn spawn_cloud_subscriber(rt: &tokio::runtime::Runtime, port: u16, seen: Arrivals) {
    rt.spawn(async move {
        let mut opts = MqttOptions::new("outage-cloud-sub", "127.0.0.1", port);
        opts.set_clean_session(false);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut el) = AsyncClient::new(opts, 100);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                    client.subscribe("cloud/#", QoS::AtLeastOnce).await.unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                    let device = v["device"].as_str().unwrap()[4..].parse().unwrap();
                    let seq = v["seq"].as_u64().unwrap();
                    seen.lock().unwrap().push((device, seq));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
}

/// Publishes `MESSAGES` sequenced messages at `RATE`; returns how many the
/// local broker acknowledged.
async fn publish_at_rate(port: u16) -> usize {
    let mut opts = MqttOptions::new("outage-publisher", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(100);
    let (client, mut el) = AsyncClient::new(opts, 1000);
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < MESSAGES {
            match el.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("the local broker never goes down, yet: {e}"),
            }
        }
        acked
    });
    let start = tokio::time::Instant::now();
    for i in 0..MESSAGES {
        let at = start + Duration::from_micros(i as u64 * 1_000_000 / RATE);
        tokio::time::sleep_until(at).await;
        let device = i % DEVICES;
        let seq = (i / DEVICES) as u64;
        let payload = format!(
            r#"{{"device":"dev-{device:02}","seq":{seq},"ts":{}}}"#,
            1_767_225_600_000u64 + i as u64
        );
        client
            .publish(
                format!("plant/dev-{device:02}/data"),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), acks)
        .await
        .expect("local broker acknowledged every message")
        .unwrap()
}

#[test]
fn cloud_outage_and_kill_9_lose_no_accepted_message() {
    require_mosquitto!();
    // Mosquitto's default in-flight window: it bounds the duplicates a
    // `kill -9` can cause (messages handed out but not yet acknowledged).
    let local = Mosquitto::start_with(&["max_inflight_messages 20"]).unwrap();
    let mut cloud = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = pipeline(dir.path(), &local.url(), &cloud.url());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen: Arrivals = Arc::default();
    spawn_cloud_subscriber(&rt, cloud.port(), seen.clone());
    let mut gw = Gateway::start(&yaml, dir.path(), &[]);
    gw.wait_ready(Duration::from_secs(20));

    let publisher = rt.spawn(publish_at_rate(local.port()));
    let stream_len = Duration::from_millis(MESSAGES as u64 * 1000 / RATE);
    let t0 = Instant::now();
    // The outage starts a fifth into the stream; the gateway dies a third
    // into the outage and is back a second later.
    std::thread::sleep(stream_len / 5);
    cloud.stop().unwrap();
    std::thread::sleep(OUTAGE / 3);
    gw.kill();
    std::thread::sleep(Duration::from_secs(1));
    let gw_log = dir.path().join("first-run.log");
    std::fs::copy(&gw.log, &gw_log).unwrap();
    let mut gw = Gateway::start(&yaml, dir.path(), &[]);
    std::thread::sleep(OUTAGE.saturating_sub(OUTAGE / 3 + Duration::from_secs(1)));
    cloud.restart().unwrap();
    eprintln!("cloud broker back after {:?}", t0.elapsed());

    let accepted = rt.block_on(publisher).unwrap();
    assert_eq!(accepted, MESSAGES);
    let want = MESSAGES;
    common::wait_until(
        Duration::from_secs(120),
        "every message in the cloud",
        || {
            let seen = seen.lock().unwrap();
            seen.iter().collect::<HashSet<_>>().len() >= want
        },
    );
    let arrivals = seen.lock().unwrap().clone();

    let mut first: HashSet<(usize, u64)> = HashSet::new();
    let mut last_first: HashMap<usize, u64> = HashMap::new();
    let mut out_of_order = 0usize;
    for &(d, s) in &arrivals {
        if first.insert((d, s)) {
            if last_first.get(&d).is_some_and(|&prev| s < prev) {
                out_of_order += 1;
            }
            last_first.insert(d, s);
        }
    }
    let lost: Vec<(usize, u64)> = (0..MESSAGES)
        .map(|i| (i % DEVICES, (i / DEVICES) as u64))
        .filter(|k| !first.contains(k))
        .collect();
    let duplicates = arrivals.len() - first.len();
    let dup_rate = duplicates as f64 / MESSAGES as f64;
    eprintln!(
        "accepted {accepted}, received {} ({} unique), lost {}, duplicates {duplicates} ({:.3}%), out of order {out_of_order}",
        arrivals.len(),
        first.len(),
        lost.len(),
        dup_rate * 100.0
    );
    assert!(
        lost.is_empty(),
        "lost {} messages, e.g. {:?}\nfirst run:\n{}\nsecond run:\n{}",
        lost.len(),
        &lost[..lost.len().min(10)],
        std::fs::read_to_string(&gw_log).unwrap_or_default(),
        gw.log_text()
    );
    assert_eq!(
        out_of_order, 0,
        "first arrivals must be in order per device"
    );
    assert!(
        dup_rate < 0.001,
        "{duplicates} duplicates ({:.3}%) exceed 0.1%",
        dup_rate * 100.0
    );
    let status = gw.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", gw.log_text());
}

/// Publishes `n` messages of `device` starting at `first`, waiting for every
/// PUBACK from the local broker.
fn publish_seq(port: u16, device: usize, first: u64, n: u64) {
    let messages = (first..first + n)
        .map(|seq| {
            (
                format!("plant/dev-{device:02}/data"),
                format!(r#"{{"device":"dev-{device:02}","seq":{seq},"ts":1767225600000}}"#)
                    .into_bytes(),
            )
        })
        .collect();
    common::publish_all(port, messages);
}

#[test]
fn a_silently_dead_link_is_detected_by_keep_alive_and_nothing_is_lost() {
    require_mosquitto!();
    let local = Mosquitto::start().unwrap();
    let cloud = Mosquitto::start().unwrap();
    let proxy = common::proxy::Proxy::start(cloud.port());
    let dir = tempfile::tempdir().unwrap();
    let yaml = pipeline(dir.path(), &local.url(), &proxy.url());
    let text = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("keep_alive: 5s", "keep_alive: 2s")
        .replace("client_id: outage-gateway", "client_id: deadlink-gateway");
    std::fs::write(&yaml, text).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen: Arrivals = Arc::default();
    spawn_cloud_subscriber(&rt, cloud.port(), seen.clone());
    let mut gw = Gateway::start(&yaml, dir.path(), &[]);
    gw.wait_ready(Duration::from_secs(20));
    let link_up = |gw: &Gateway| {
        common::metric(
            &gw.metrics(),
            "sluice_link_up",
            &[("component_id", "cloud")],
        )
    };
    let unique = |seen: &Arrivals| seen.lock().unwrap().iter().collect::<HashSet<_>>().len();

    publish_seq(local.port(), 1, 0, 500);
    common::wait_until(
        Duration::from_secs(30),
        "the first 500 in the cloud",
        || unique(&seen) >= 500,
    );
    assert_eq!(link_up(&gw), 1.0);

    // Packets now vanish without the TCP connection closing.
    proxy.black_hole_current();
    let cut = Instant::now();
    publish_seq(local.port(), 1, 500, 500);
    common::wait_until(
        Duration::from_secs(15),
        "the dead link to be detected",
        || link_up(&gw) == 0.0 || unique(&seen) >= 1000,
    );
    eprintln!("link down detected or recovered after {:?}", cut.elapsed());
    // A new connection through the proxy works again: everything arrives.
    common::wait_until(Duration::from_secs(60), "all 1000 in the cloud", || {
        unique(&seen) >= 1000
    });
    let metrics = gw.metrics();
    let errors = common::metric(
        &metrics,
        "sluice_mqtt_connection_errors_total",
        &[("component_id", "cloud")],
    );
    let reconnects = common::metric(
        &metrics,
        "sluice_mqtt_reconnects_total",
        &[("component_id", "cloud")],
    );
    assert!(errors >= 1.0 && reconnects >= 1.0, "{metrics}");
    assert!(
        gw.log_text().contains("Lost connection to MQTT broker"),
        "{}",
        gw.log_text()
    );
    let status = gw.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", gw.log_text());
}
