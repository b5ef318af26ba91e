//! The `mqtt` source against a real Mosquitto on loopback.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{RunningSource, TICK, WAIT, mosquitto_pub, publish, rows_of, strs};
use serde_json::json;
use sluice_plugin_mqtt::MqttSourceConfig;
use sluice_plugin_mqtt::names;
use sluice_testkit::{Mosquitto, require_mosquitto, unique_id, wait_until};
use tokio::time::{Instant, timeout};

fn source_config(broker: &Mosquitto, prefix: &str, extra: serde_json::Value) -> MqttSourceConfig {
    let mut c = json!({
        "url": broker.url(),
        "topics": [format!("{prefix}/+/telemetry")],
        "schema": {},
        "event_time": "ts",
        "client_id": unique_id("src"),
        "linger": "20ms",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    let mut config: MqttSourceConfig = serde_json::from_value(c).unwrap();
    // JSON values sort their keys; the schema order is the column order.
    config.schema = [
        ("device", "utf8"),
        ("ts", "timestamp_ms"),
        ("vibration", "float64"),
        ("ok", "bool?"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t.parse().unwrap()))
    .collect();
    config
}

fn msg(topic: String, payload: &str) -> (String, Vec<u8>) {
    (topic, payload.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decodes_published_json_into_rows_with_their_topic() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("factory");
    let mut src = RunningSource::start(source_config(&broker, &prefix, json!({})), 8);
    src.wait_ready().await;
    assert_eq!(src.gauge(names::LINK_UP), Some(1.0));

    mosquitto_pub(
        broker.port(),
        &format!("{prefix}/m1/telemetry"),
        &[
            r#"{"device":"m1","ts":1700000000000,"vibration":0.5,"ok":true}"#,
            r#"{"ts":"2023-11-14T22:13:20.250Z","device":"m1","vibration":2,"extra":[1]}"#,
        ],
    )
    .await;
    let batches = src.rows(2).await;
    let topic = format!("{prefix}/m1/telemetry");
    assert_eq!(
        rows_of(&batches),
        vec![
            strs(&["m1", "2023-11-14T22:13:20", "0.5", "true", &topic]),
            strs(&["m1", "2023-11-14T22:13:20.250", "2.0", "", &topic]),
        ]
    );
    let schema = batches[0].schema();
    assert_eq!(sluice_core::schema::event_time_column(&schema), Some("ts"));

    let (result, rest) = src.stop().await;
    result.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_bad_messages_and_counts_them_by_reason() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("factory");
    let mut src = RunningSource::start(source_config(&broker, &prefix, json!({})), 8);
    src.wait_ready().await;
    let t = format!("{prefix}/m2/telemetry");
    let payloads = [
        r#"{"device":"a","ts":1,"vibration":1.0}"#,
        r#"{"device":"a","ts":2,"vibration":"#,
        r#"[1,2,3]"#,
        r#"{"device":"a","ts":3}"#,
        r#"{"device":null,"ts":4,"vibration":1.0}"#,
        r#"{"device":"a","ts":5,"vibration":"high"}"#,
        r#"{"device":"b","ts":6,"vibration":2.5,"ok":null}"#,
    ];
    let bytes: u64 = payloads.iter().map(|p| p.len() as u64).sum();
    let messages: Vec<_> = payloads.iter().map(|p| msg(t.clone(), p)).collect();
    publish(broker.port(), &messages).await;

    let batches = src.rows(2).await;
    let devices: Vec<String> = rows_of(&batches)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(devices, strs(&["a", "b"]));
    let discarded =
        |reason: &str| src.counter(names::COMPONENT_DISCARDED_ROWS_TOTAL, &[("reason", reason)]);
    wait_until(WAIT, TICK, || {
        discarded("malformed_json") + discarded("missing_field") + discarded("schema_mismatch") == 5
    })
    .await
    .unwrap();
    assert_eq!(discarded("malformed_json"), 2);
    assert_eq!(discarded("missing_field"), 2);
    assert_eq!(discarded("schema_mismatch"), 1);
    assert_eq!(
        src.counter(
            names::COMPONENT_DISCARDED_ROWS_TOTAL,
            &[("intentional", "false")]
        ),
        5
    );
    assert_eq!(src.counter(names::COMPONENT_RECEIVED_ROWS_TOTAL, &[]), 7);
    assert_eq!(
        src.counter(names::COMPONENT_RECEIVED_BYTES_TOTAL, &[]),
        bytes
    );
    wait_until(WAIT, TICK, || {
        src.counter(names::COMPONENT_SENT_ROWS_TOTAL, &[]) == 2
    })
    .await
    .unwrap();
    src.stop().await.0.unwrap();
}

/// `n` valid readings `{"device":"d","ts":i,"vibration":i}` on `topic`.
fn readings(topic: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            msg(
                topic.to_owned(),
                &format!(r#"{{"device":"d","ts":{i},"vibration":{i}}}"#),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_hold_at_most_max_batch_rows_and_flush_after_linger() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("factory");
    let linger = Duration::from_millis(400);
    // With `ack: receive` nothing limits what the broker sends, so batches
    // fill up to `max_batch_rows` or wait for `linger`.
    let extra = json!({ "max_batch_rows": 10, "linger": "400ms", "ack": "receive" });
    let mut src = RunningSource::start(source_config(&broker, &prefix, extra), 16);
    src.wait_ready().await;
    let t = format!("{prefix}/m3/telemetry");
    let messages = readings(&t, 25);
    publish(broker.port(), &messages).await;
    let published = Instant::now();

    let batches = src.rows(25).await;
    let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    // The last 5 rows waited for the linger, counted from their first message.
    assert!(
        published.elapsed() >= linger - Duration::from_millis(100),
        "{:?}",
        published.elapsed()
    );
    // The emitter counts a batch right after queueing it.
    wait_until(WAIT, TICK, || {
        src.counter(names::COMPONENT_SENT_BATCHES_TOTAL, &[]) == 3
    })
    .await
    .unwrap();
    src.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_emits_the_partial_batch_and_returns_ok() {
    require_mosquitto!();
    let broker = Mosquitto::start_with(&["log_type debug"]).unwrap();
    let prefix = unique_id("factory");
    let client_id = unique_id("src");
    let extra = json!({ "linger": "1h", "client_id": client_id, "ack": "receive" });
    let src = RunningSource::start(source_config(&broker, &prefix, extra), 8);
    src.wait_ready().await;
    let t = format!("{prefix}/m4/telemetry");
    let messages = readings(&t, 3);
    publish(broker.port(), &messages).await;
    // The source acknowledges a message once it has read it from the socket.
    let acked = format!("Received PUBACK from {client_id} ");
    wait_until(WAIT, TICK, || broker.log().matches(&acked).count() == 3)
        .await
        .unwrap();

    let (result, batches) = src.stop().await;
    result.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubacks_wait_until_downstream_is_done_with_the_batch() {
    require_mosquitto!();
    let broker = Mosquitto::start_with(&["log_type debug"]).unwrap();
    let prefix = unique_id("factory");
    let client_id = unique_id("src");
    // A long linger: the batch goes out because the socket went quiet.
    let extra = json!({ "linger": "1h", "client_id": client_id });
    let mut src = RunningSource::start(source_config(&broker, &prefix, extra), 8);
    src.wait_ready().await;
    let t = format!("{prefix}/m6/telemetry");
    let messages = readings(&t, 3);
    publish(broker.port(), &messages).await;
    // The batches may arrive one by one (a batch goes out as soon as the
    // socket is quiet); hold all of them.
    let mut held = Vec::new();
    while held
        .iter()
        .map(sluice_core::Delivery::num_rows)
        .sum::<usize>()
        < 3
    {
        let delivery = timeout(WAIT, src.rx.recv()).await.unwrap().unwrap();
        assert!(delivery.ack.is_some(), "the batch carries the source's ack");
        held.push(delivery);
    }
    let acked = format!("Received PUBACK from {client_id} ");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        broker.log().matches(&acked).count(),
        0,
        "no PUBACK while the batch is downstream"
    );
    drop(held);
    wait_until(WAIT, TICK, || broker.log().matches(&acked).count() == 3)
        .await
        .expect("three PUBACKs once the batch is done");
    src.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_not_acked_and_comes_back_after_a_reconnect() {
    require_mosquitto!();
    let broker = Mosquitto::start_with(&["log_type debug"]).unwrap();
    let prefix = unique_id("factory");
    let client_id = unique_id("src");
    let extra = json!({ "client_id": client_id });
    let mut src = RunningSource::start(source_config(&broker, &prefix, extra), 8);
    src.wait_ready().await;
    let t = format!("{prefix}/m7/telemetry");
    let messages = vec![msg(t.clone(), r#"{"device":"d","ts":1,"vibration":1}"#)];
    publish(broker.port(), &messages).await;
    let delivery = timeout(WAIT, src.rx.recv()).await.unwrap().unwrap();
    delivery.ack.as_ref().unwrap().fail();
    drop(delivery);
    // The source gives up its connection without acknowledging...
    let result = timeout(WAIT, &mut src.task).await.unwrap().unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.code, "mqtt_redeliver");
    assert_eq!(
        broker
            .log()
            .matches(&format!("Received PUBACK from {client_id} "))
            .count(),
        0
    );
    // ...so a new run of it (the topology rebuilds a failed source) gets the
    // message again from its persistent session.
    let extra = json!({ "client_id": client_id });
    let mut again = RunningSource::start(source_config(&broker, &prefix, extra), 8);
    let batches = again.rows(1).await;
    assert_eq!(batches[0].num_rows(), 1);
    again.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_resubscribes_after_the_broker_restarts() {
    require_mosquitto!();
    let mut broker = Mosquitto::start().unwrap();
    let prefix = unique_id("factory");
    let extra = json!({ "reconnect": { "min_backoff": "50ms", "max_backoff": "200ms" } });
    let mut src = RunningSource::start(source_config(&broker, &prefix, extra), 8);
    src.wait_ready().await;
    let t = format!("{prefix}/m5/telemetry");
    publish(
        broker.port(),
        &[msg(
            t.clone(),
            r#"{"device":"before","ts":1,"vibration":1}"#,
        )],
    )
    .await;
    src.rows(1).await;

    broker.stop().unwrap();
    let ready = src.ready.clone();
    wait_until(WAIT, TICK, || !ready.get()).await.unwrap();
    assert_eq!(src.gauge(names::LINK_UP), Some(0.0));
    broker.restart().unwrap();
    src.wait_ready().await;

    publish(
        broker.port(),
        &[msg(t.clone(), r#"{"device":"after","ts":2,"vibration":1}"#)],
    )
    .await;
    // At least once: if the broker stopped before the first message's ack
    // reached it, the persistent session delivers that message again.
    let mut devices = Vec::new();
    while devices.last().map(String::as_str) != Some("after") {
        let batches = src.rows(1).await;
        devices.extend(rows_of(&batches).into_iter().map(|r| r[0].clone()));
        assert!(devices.len() <= 3, "{devices:?}");
    }
    assert!(
        devices[..devices.len() - 1].iter().all(|d| d == "before"),
        "{devices:?}"
    );
    assert_eq!(src.counter(names::MQTT_RECONNECTS_TOTAL, &[]), 1);
    assert!(src.counter(names::MQTT_CONNECTION_ERRORS_TOTAL, &[]) >= 1);
    assert_eq!(src.gauge(names::LINK_UP), Some(1.0));
    src.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_receives_messages_published_while_stopped() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("factory");
    let extra = json!({ "clean_session": false, "client_id": unique_id("persistent") });
    let config = source_config(&broker, &prefix, extra);
    let first = RunningSource::start(config.clone(), 8);
    first.wait_ready().await;
    first.stop().await.0.unwrap();

    let t = format!("{prefix}/m6/telemetry");
    publish(
        broker.port(),
        &[msg(t, r#"{"device":"queued","ts":1,"vibration":1}"#)],
    )
    .await;
    let mut second = RunningSource::start(config, 8);
    let batches = second.rows(1).await;
    assert_eq!(batches[0].num_rows(), 1);
    second.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_bad_data_fail_stops_with_a_user_error() {
    require_mosquitto!();
    let broker = Mosquitto::start().unwrap();
    let prefix = unique_id("factory");
    let mut src = RunningSource::start(
        source_config(&broker, &prefix, json!({ "on_bad_data": "fail" })),
        8,
    );
    src.wait_ready().await;
    let t = format!("{prefix}/m7/telemetry");
    publish(
        broker.port(),
        &[
            msg(t.clone(), r#"{"device":"good","ts":1,"vibration":1}"#),
            msg(t, "oops"),
        ],
    )
    .await;
    let err = tokio::time::timeout(WAIT, &mut src.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, "bad_data");
    assert_eq!(err.kind, sluice_core::ErrorKind::User);
    assert!(err.message.contains("malformed_json"), "{}", err.message);
    let batches = src.rows(1).await;
    assert_eq!(
        batches[0].num_rows(),
        1,
        "rows before the bad message are emitted"
    );
}
