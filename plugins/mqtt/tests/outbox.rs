//! The `mqtt` sink with a durable outbox, against a real Mosquitto on
//! loopback and a real SQLite file.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{TICK, capture};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use sluice_core::arrow_array::{Float64Array, RecordBatch, StringArray};
use sluice_core::arrow_schema::{DataType, Field, Schema};
use sluice_core::{Msg, Sink};
use sluice_plugin_mqtt::names;
use sluice_plugin_mqtt::{MqttSink, MqttSinkConfig};
use sluice_testkit::{Mosquitto, SinkHarness, require_mosquitto, unique_id, wait_until};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const DELIVERY_WAIT: Duration = Duration::from_secs(30);

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("vib", DataType::Float64, true),
    ]))
}

/// Rows `from..to`, each carrying its sequence number in `vib`.
fn rows(from: usize, to: usize) -> Msg {
    let vib: Vec<f64> = (from..to).map(|i| i as f64).collect();
    let devices = vec!["d"; vib.len()];
    Msg::Rows(
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(devices)),
                Arc::new(Float64Array::from(vib)),
            ],
        )
        .unwrap(),
    )
}

fn build(pipeline: &str, config: serde_json::Value) -> MqttSink {
    build_sink(pipeline, "cloud", config)
}

fn build_sink(pipeline: &str, id: &str, config: serde_json::Value) -> MqttSink {
    let config: MqttSinkConfig = serde_json::from_value(config).unwrap();
    SinkHarness::build(pipeline, id, &config, schema(), Some(capture()))
        .unwrap()
        .sink
}

fn config(broker: &Mosquitto, topic: &str, outbox: &Path) -> serde_json::Value {
    json!({
        "inputs": ["agg"], "url": broker.url(), "topic": topic,
        "reconnect": { "min_backoff": "50ms", "max_backoff": "200ms" },
        "outbox": { "path": outbox.to_str().unwrap() },
    })
}

fn gauge(pipeline: &str, name: &str) -> Option<f64> {
    capture().gauge(name, &[("pipeline", pipeline)])
}

fn counter(pipeline: &str, name: &str, extra: &[(&str, &str)]) -> u64 {
    let mut labels = vec![("pipeline", pipeline)];
    labels.extend_from_slice(extra);
    capture().counter(name, &labels)
}

/// A subscriber with a persistent session: the broker (with persistence)
/// queues QoS 1 messages for it across a broker restart.
struct PersistentSubscriber {
    rx: mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
    /// Every `_id` received so far, and the highest.
    seen: std::collections::HashSet<i64>,
    last_id: i64,
}

impl PersistentSubscriber {
    async fn start(port: u16, filter: &str) -> Self {
        let mut o = MqttOptions::new(unique_id("sub"), "127.0.0.1", port);
        o.set_clean_session(false);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(o, 10);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (sub_tx, subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut sub_tx = Some(sub_tx);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = sub_tx.take() {
                            s.send(()).ok();
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx
                            .send(String::from_utf8(p.payload.to_vec()).unwrap())
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        timeout(Duration::from_secs(10), subscribed)
            .await
            .expect("subscribed")
            .unwrap();
        Self {
            rx,
            task,
            seen: std::collections::HashSet::new(),
            last_id: i64::MIN,
        }
    }

    /// Collects messages until `n` `_id`s not seen before arrived; returns
    /// their sequence numbers in first-arrival order and the duplicate count
    /// (re-deliveries are allowed: at-least-once).
    async fn distinct(&mut self, n: usize) -> (Vec<usize>, usize) {
        let mut seqs = Vec::new();
        let mut dups = 0;
        while seqs.len() < n {
            let payload = timeout(DELIVERY_WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("only {} of {n} rows within {DELIVERY_WAIT:?}", seqs.len())
                })
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
            let id = v["_id"].as_i64().expect("every message carries `_id`");
            if self.seen.insert(id) {
                assert!(
                    id > self.last_id,
                    "new ids arrive in increasing order: {payload}"
                );
                self.last_id = id;
                seqs.push(v["vib"].as_f64().unwrap() as usize);
            } else {
                dups += 1;
            }
        }
        (seqs, dups)
    }
}

impl Drop for PersistentSubscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_during_an_outage_arrive_in_order_after_the_broker_returns() {
    require_mosquitto!();
    let mut broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_id("cloud");
    let mut sub = PersistentSubscriber::start(broker.port(), &topic).await;
    let pipeline = unique_id("pipe");
    let mut sink = build(&pipeline, config(&broker, &topic, &dir.path().join("o.db")));

    sink.write(&rows(0, 10)).await.unwrap();
    let (first, _) = sub.distinct(10).await;
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    wait_until(DELIVERY_WAIT, TICK, || {
        gauge(&pipeline, names::OUTBOX_STORED_ROWS) == Some(0.0)
    })
    .await
    .expect("the first rows were acknowledged");

    broker.stop().unwrap();
    for i in 0..5 {
        sink.write(&rows(10 + i * 40, 50 + i * 40)).await.unwrap();
    }
    // Every write returned after its commit; nothing can be acknowledged now.
    assert_eq!(gauge(&pipeline, names::OUTBOX_STORED_ROWS), Some(200.0));

    broker.restart().unwrap();
    let (rest, dups) = sub.distinct(200).await;
    assert_eq!(rest, (10..210).collect::<Vec<_>>(), "zero loss, in order");
    assert!(dups <= 200, "duplicates stay bounded: {dups}");
    wait_until(DELIVERY_WAIT, TICK, || {
        counter(&pipeline, names::OUTBOX_ACKED_ROWS_TOTAL, &[]) >= 210
            && gauge(&pipeline, names::OUTBOX_STORED_ROWS) == Some(0.0)
    })
    .await
    .expect("every row acknowledged and removed from the outbox");
    sink.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sink_delivers_what_a_dropped_sink_left_in_the_outbox() {
    require_mosquitto!();
    let mut broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let topic = unique_id("cloud");
    let mut sub = PersistentSubscriber::start(broker.port(), &topic).await;
    let pipeline = unique_id("pipe");

    broker.stop().unwrap();
    let mut first = build(&pipeline, config(&broker, &topic, &path));
    first.write(&rows(0, 30)).await.unwrap();
    first.write(&rows(30, 50)).await.unwrap();
    drop(first);

    broker.restart().unwrap();
    // No write: the new sink forwards what the outbox holds on its own.
    let mut second = build(&pipeline, config(&broker, &topic, &path));
    let (got, _) = sub.distinct(50).await;
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    wait_until(DELIVERY_WAIT, TICK, || {
        gauge(&pipeline, names::OUTBOX_STORED_ROWS) == Some(0.0)
    })
    .await
    .expect("the outbox drained");
    second.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_under_a_tiny_outbox_are_counted_by_reason() {
    require_mosquitto!();
    let mut broker = Mosquitto::start().unwrap();
    broker.stop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_id("cloud");
    let pipeline = unique_id("pipe");
    let mut c = config(&broker, &topic, &dir.path().join("o.db"));
    c["outbox"]["max_bytes"] = json!("2KiB");
    let mut sink = build(&pipeline, c);

    for i in 0..10 {
        sink.write(&rows(i * 10, i * 10 + 10)).await.unwrap();
    }
    let evicted = counter(
        &pipeline,
        names::OUTBOX_EVICTED_ROWS_TOTAL,
        &[("reason", "drop_oldest")],
    );
    let stored = gauge(&pipeline, names::OUTBOX_STORED_ROWS).unwrap() as u64;
    assert!(evicted > 0, "the outbox overflowed");
    assert!(stored > 0 && stored < 100, "stored {stored}");
    assert_eq!(evicted + stored, 100, "every row is stored or counted");
    timeout(Duration::from_secs(10), sink.flush())
        .await
        .expect("flush does not wait for a dead link")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_outbox_file_is_moved_aside_counted_and_replaced() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    std::fs::write(&path, b"this is not a database, just text").unwrap();
    let topic = unique_id("cloud");
    let mut sub = PersistentSubscriber::start(broker.port(), &topic).await;
    let pipeline = unique_id("pipe");
    let mut sink = build(&pipeline, config(&broker, &topic, &path));
    assert_eq!(
        counter(&pipeline, names::OUTBOX_QUARANTINED_FILES_TOTAL, &[]),
        1
    );
    let moved = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".corrupt-")
        })
        .count();
    assert_eq!(moved, 1, "the damaged file was kept aside");
    sink.write(&rows(0, 5)).await.unwrap();
    let (got, _) = sub.distinct(5).await;
    assert_eq!(got, (0..5).collect::<Vec<_>>());
    sink.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_drain_before_bulk_data_sharing_the_outbox_file() {
    require_mosquitto!();
    let mut broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let prefix = unique_id("cloud");
    let mut sub = PersistentSubscriber::start(broker.port(), &format!("{prefix}/#")).await;
    let pipeline = unique_id("pipe");
    broker.stop().unwrap();
    let mut bulk_cfg = config(&broker, &format!("{prefix}/bulk"), &path);
    bulk_cfg["outbox"]["priority"] = json!("low");
    let mut insights_cfg = config(&broker, &format!("{prefix}/insights"), &path);
    insights_cfg["outbox"]["priority"] = json!("high");
    let mut bulk = build_sink(&pipeline, "bulk", bulk_cfg);
    let mut insights = build_sink(&pipeline, "insights", insights_cfg);

    // During the outage bulk data piles up first, then a few insights.
    for i in 0..4 {
        bulk.write(&rows(i * 50, i * 50 + 50)).await.unwrap();
    }
    insights.write(&rows(1000, 1020)).await.unwrap();
    broker.restart().unwrap();

    // Collect until all 220 distinct rows arrived (ids are per sink, so key
    // on the row number, which is distinct across both sinks here).
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 220 {
        let payload = timeout(DELIVERY_WAIT, sub.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of 220 rows", seen.len()))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        let n = v["vib"].as_f64().unwrap() as usize;
        if seen.insert(n) {
            order.push(n);
        }
    }
    let last_insight = order.iter().rposition(|&n| n >= 1000).unwrap();
    let bulk_before = order[..last_insight].iter().filter(|&&n| n < 1000).count();
    assert!(
        bulk_before <= 10,
        "{bulk_before} bulk rows went out before the last insight: {order:?}"
    );
    let bulk_order: Vec<usize> = order.iter().copied().filter(|&n| n < 1000).collect();
    assert_eq!(
        bulk_order,
        (0..200).collect::<Vec<_>>(),
        "bulk still arrives, in order"
    );
    bulk.flush().await.unwrap();
    insights.flush().await.unwrap();
}
