//! The `mqtt` sink against a real Mosquitto on loopback.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Subscriber, TICK, WAIT, build_sink, capture};
use serde_json::json;
use sluice_core::arrow_array::{Float64Array, RecordBatch, StringArray};
use sluice_core::arrow_schema::{DataType, Field, Schema};
use sluice_core::{Msg, Retry, Sink};
use sluice_plugin_mqtt::names;
use sluice_testkit::{Mosquitto, require_mosquitto, unique_id, wait_until};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("vib", DataType::Float64, true),
    ]))
}

fn batch(devices: &[&str], vib: &[f64]) -> Msg {
    Msg::Rows(
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(devices.to_vec())),
                Arc::new(Float64Array::from(vib.to_vec())),
            ],
        )
        .unwrap(),
    )
}

fn published(pipeline: &str) -> u64 {
    capture().counter(
        names::MQTT_PUBLISHED_MESSAGES_TOTAL,
        &[("pipeline", pipeline)],
    )
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_one_message_per_row_to_its_templated_topic() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("insights");
    let mut sub = Subscriber::start(broker.port(), &format!("{prefix}/#")).await;
    let config = json!({
        "inputs": ["agg"], "url": broker.url(), "topic": format!("{prefix}/{{device}}/vib"),
    });
    let (mut sink, pipeline) = build_sink(config, schema());

    sink.write(&batch(&["m1", "m2"], &[0.5, 1.0]))
        .await
        .unwrap();
    sink.write(&batch(&["m1"], &[2.0])).await.unwrap();
    sink.flush().await.unwrap();
    // Flush returns once every message was acknowledged at QoS 1.
    assert_eq!(published(&pipeline), 3);

    let got = sorted(sub.take(3).await);
    let expected = sorted(vec![
        (
            format!("{prefix}/m1/vib"),
            r#"{"device":"m1","vib":0.5}"#.to_owned(),
        ),
        (
            format!("{prefix}/m2/vib"),
            r#"{"device":"m2","vib":1.0}"#.to_owned(),
        ),
        (
            format!("{prefix}/m1/vib"),
            r#"{"device":"m1","vib":2.0}"#.to_owned(),
        ),
    ]);
    assert_eq!(got, expected);
    assert_eq!(
        capture().gauge(names::LINK_UP, &[("pipeline", pipeline.as_str())]),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_publishes_one_json_array_per_batch() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let topic = format!("{}/digest", unique_id("insights"));
    let mut sub = Subscriber::start(broker.port(), &topic).await;
    let config = json!({ "inputs": ["agg"], "url": broker.url(), "topic": topic, "batch": true });
    let (mut sink, pipeline) = build_sink(config, schema());

    sink.write(&batch(&["m1", "m2"], &[0.5, 1.0]))
        .await
        .unwrap();
    sink.write(&batch(&["m3"], &[3.0])).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(published(&pipeline), 2);

    let got = sub.take(2).await;
    assert_eq!(
        got,
        vec![
            (
                topic.clone(),
                r#"[{"device":"m1","vib":0.5},{"device":"m2","vib":1.0}]"#.to_owned()
            ),
            (topic.clone(), r#"[{"device":"m3","vib":3.0}]"#.to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rows_are_all_acknowledged_before_flush_returns() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("bulk");
    let mut sub = Subscriber::start(broker.port(), &format!("{prefix}/#")).await;
    let config = json!({
        "inputs": ["agg"], "url": broker.url(), "topic": format!("{prefix}/{{device}}"),
        "max_inflight": 10,
    });
    let (mut sink, pipeline) = build_sink(config, schema());
    let devices: Vec<String> = (0..500).map(|i| format!("d{i}")).collect();
    let names: Vec<&str> = devices.iter().map(String::as_str).collect();
    let vib: Vec<f64> = (0..500).map(f64::from).collect();
    for chunk in 0..5 {
        let r = chunk * 100..(chunk + 1) * 100;
        sink.write(&batch(&names[r.clone()], &vib[r]))
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    assert_eq!(published(&pipeline), 500);
    assert_eq!(sub.take(500).await.len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_fails_with_a_retryable_error_while_the_broker_is_down_then_recovers() {
    require_mosquitto!();
    let mut broker = Mosquitto::start().unwrap();
    let topic = format!("{}/out", unique_id("outage"));
    let config = json!({
        "inputs": ["agg"], "url": broker.url(), "topic": topic,
        "reconnect": { "min_backoff": "50ms", "max_backoff": "200ms" },
    });
    let (mut sink, pipeline) = build_sink(config, schema());
    sink.write(&batch(&["before"], &[1.0])).await.unwrap();
    wait_until(WAIT, TICK, || published(&pipeline) == 1)
        .await
        .unwrap();

    broker.stop().unwrap();
    let labels = [("pipeline", pipeline.as_str())];
    wait_until(WAIT, TICK, || {
        capture().gauge(names::LINK_UP, &labels) == Some(0.0)
    })
    .await
    .unwrap();
    let err = sink.write(&batch(&["during"], &[2.0])).await.unwrap_err();
    assert_eq!(err.retry, Retry::Backoff);
    assert_eq!(err.code, "mqtt_link_down");

    broker.restart().unwrap();
    let mut sub = Subscriber::start(broker.port(), &topic).await;
    sink.write(&batch(&["during"], &[2.0])).await.unwrap();
    sink.flush().await.unwrap();
    let got = sub.take(1).await;
    assert_eq!(got[0].1, r#"{"device":"during","vib":2.0}"#);
    assert_eq!(capture().counter(names::MQTT_RECONNECTS_TOTAL, &labels), 1);
    assert!(capture().counter(names::MQTT_CONNECTION_ERRORS_TOTAL, &labels) >= 1);
    assert_eq!(published(&pipeline), 2);
}
