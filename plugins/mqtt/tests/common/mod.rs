//! Shared helpers of the MQTT integration tests: drive a source or sink by
//! hand, publish and subscribe with a plain rumqttc client, read metrics.
#![allow(dead_code)]
// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use sluice_core::ComponentError;
use sluice_core::arrow_array::RecordBatch;
use sluice_plugin_mqtt::{MqttSink, MqttSinkConfig, MqttSourceConfig};
use sluice_testkit::{MetricsCapture, SinkHarness, SourceHarness, unique_id};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(10);
pub const TICK: Duration = Duration::from_millis(10);

/// The process-wide metrics capture; tests tell their series apart by pipeline.
pub fn capture() -> &'static MetricsCapture {
    MetricsCapture::global().expect("no other global recorder in this test binary")
}

/// A source running on its own task (the shared harness), in a pipeline of
/// its own so tests tell their metric series apart.
pub struct RunningSource(pub SourceHarness);

impl Deref for RunningSource {
    type Target = SourceHarness;
    fn deref(&self) -> &SourceHarness {
        &self.0
    }
}

impl DerefMut for RunningSource {
    fn deref_mut(&mut self) -> &mut SourceHarness {
        &mut self.0
    }
}

impl RunningSource {
    /// Builds the source from `config` and runs it; its output edge holds
    /// `capacity` batches.
    pub fn start(config: MqttSourceConfig, capacity: usize) -> Self {
        let capture = capture();
        let pipeline = unique_id("pipe");
        Self(SourceHarness::start(&config, &pipeline, capacity, Some(capture)).unwrap())
    }

    pub async fn wait_ready(&self) {
        assert!(self.0.wait_ready(WAIT).await, "source subscribed");
    }

    /// Receives batches until `rows` rows arrived.
    pub async fn rows(&mut self, rows: usize) -> Vec<RecordBatch> {
        self.0.rows(rows, WAIT).await
    }

    /// Stops the source and returns its result and every batch it emitted.
    pub async fn stop(self) -> (Result<(), ComponentError>, Vec<RecordBatch>) {
        let (result, rest) = self.0.stop(WAIT).await;
        let rows = rest
            .into_iter()
            .filter_map(|d| d.msg.into_rows().ok())
            .collect();
        (result, rows)
    }

    pub fn counter(&self, name: &str, extra: &[(&str, &str)]) -> u64 {
        let mut labels = vec![("pipeline", self.pipeline.as_str())];
        labels.extend_from_slice(extra);
        capture().counter(name, &labels)
    }

    pub fn gauge(&self, name: &str) -> Option<f64> {
        capture().gauge(name, &[("pipeline", self.pipeline.as_str())])
    }
}

/// Builds a sink from `config` for rows of `input`.
pub fn build_sink(
    config: serde_json::Value,
    input: Arc<sluice_core::arrow_schema::Schema>,
) -> (MqttSink, String) {
    let config: MqttSinkConfig = serde_json::from_value(config).unwrap();
    let pipeline = unique_id("pipe");
    let h = SinkHarness::build(&pipeline, "out", &config, input, Some(capture())).unwrap();
    (h.sink, pipeline)
}

fn client_options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o
}

/// Publishes every message at QoS 1 and waits for all PUBACKs.
pub async fn publish(port: u16, messages: &[(String, Vec<u8>)]) {
    let (client, mut el) =
        AsyncClient::new(client_options(port, &unique_id("pub")), messages.len() + 4);
    for (topic, payload) in messages {
        client
            .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
    }
    let mut acked = 0;
    timeout(WAIT, async {
        while acked < messages.len() {
            let event = el.poll().await.expect("test publisher connection");
            if let Event::Incoming(Packet::PubAck(_)) = event {
                acked += 1;
            }
        }
        client.disconnect().await.unwrap();
        while !matches!(
            el.poll().await,
            Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)
        ) {}
    })
    .await
    .expect("all test messages acknowledged");
}

/// Publishes `lines` as one message each with the `mosquitto_pub` tool.
pub async fn mosquitto_pub(port: u16, topic: &str, lines: &[&str]) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-q",
            "1",
            "-l",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines.join("\n").as_bytes()).await.unwrap();
    stdin.write_all(b"\n").await.unwrap();
    drop(stdin);
    let status = timeout(WAIT, child.wait())
        .await
        .expect("mosquitto_pub finished")
        .unwrap();
    assert!(status.success());
}

/// A plain subscriber that collects `(topic, payload)` pairs.
pub struct Subscriber {
    pub rx: mpsc::UnboundedReceiver<(String, String)>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Subscribes to `filter` at QoS 1 and returns once the broker confirmed.
    pub async fn start(port: u16, filter: &str) -> Self {
        let (client, mut el) = AsyncClient::new(client_options(port, &unique_id("sub")), 10);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed_tx.take()
                            && s.send(()).is_err()
                        {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = String::from_utf8(p.payload.to_vec()).unwrap();
                        if tx.send((p.topic, payload)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        timeout(WAIT, subscribed)
            .await
            .expect("test subscriber acknowledged")
            .unwrap();
        Self { rx, task }
    }

    /// Receives `n` messages.
    pub async fn take(&mut self, n: usize) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let m = timeout(WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} messages within {WAIT:?}", out.len()))
                .unwrap();
            out.push(m);
        }
        out
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every row of `batches` as display strings (`""` for null), for exact comparisons.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default();
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter<'_>> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    rows
}

/// Owned strings, to write expected rows briefly.
pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}
