//! The `mqtt` sink: publishes rows as JSON, one message per row (to a topic
//! filled from the row) or one JSON array per batch.

use std::num::NonZeroU16;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::json::{split_lines, to_json_array, to_json_lines};
use sluice_core::{
    BufferConfig, BuildCx, BuildError, ByteSize, ComponentError, ComponentMetrics, EnvString,
    HumanDuration, Msg, Sink, SinkConfig, Validator,
};
use sluice_outbox::OutboxConfig;
use tracing::error;

use crate::durable::Store;
use crate::forward::Forwarder;
use crate::options::{
    ConnectionSpec, Qos, ReconnectConfig, TlsConfig, default_client_id, default_keep_alive,
    default_max_packet_size,
};
use crate::publisher::{Publisher, PublisherConfig, is_topic_name};
use crate::topic::TopicTemplate;

/// Config of the `mqtt` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MqttSinkConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input queue settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// Broker URL: `mqtt://host[:port]` (default port 1883) or
    /// `mqtts://host[:port]` (TLS, default port 8883).
    pub url: EnvString,
    /// Topic to publish to; `{column}` placeholders are filled from each row
    /// (`{{`/`}}` for literal braces).
    pub topic: EnvString,
    /// Publish QoS.
    #[serde(default)]
    pub qos: Qos,
    /// Ask the broker to retain the last message per topic.
    #[serde(default)]
    pub retain: bool,
    /// `false`: one JSON object per row. `true`: one JSON array per batch, to a
    /// topic without placeholders.
    #[serde(default)]
    pub batch: bool,
    /// MQTT client id; default `sluice-<pipeline>-<component id>`.
    #[serde(default)]
    pub client_id: Option<EnvString>,
    /// User name for the broker.
    #[serde(default)]
    pub username: Option<EnvString>,
    /// Password for the broker; requires `username`.
    #[serde(default)]
    pub password: Option<EnvString>,
    /// TLS settings (with an `mqtts://` URL).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Keep-alive interval; `0s` disables pings.
    #[serde(default = "default_keep_alive")]
    pub keep_alive: HumanDuration,
    /// Messages published but not yet acknowledged, at most.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: NonZeroU16,
    /// Backoff between connection attempts.
    #[serde(default)]
    pub reconnect: ReconnectConfig,
    /// Largest MQTT packet to send; bigger `batch: true` payloads are split,
    /// bigger single rows are dropped and counted as `payload_too_large`.
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: ByteSize,
    /// Durable store-and-forward: rows are committed to this SQLite outbox
    /// before `write` returns and published from it at QoS 1 by a forwarder;
    /// each per-row message carries its outbox id as `_id`. Off when absent.
    #[serde(default)]
    pub outbox: Option<OutboxConfig>,
}

fn default_max_inflight() -> NonZeroU16 {
    NonZeroU16::new(1000).unwrap_or(NonZeroU16::MIN)
}

/// How long `write` waits for the broker connection before failing with a
/// retryable error.
const LINK_WAIT: Duration = Duration::from_secs(5);
/// How long `flush` waits for the broker to acknowledge everything.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `flush` waits for the disconnect after everything was acknowledged.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `flush` waits for the outbox forwarder to stop; unacknowledged
/// entries stay in the outbox for the next start.
const FORWARDER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl MqttSinkConfig {
    fn connection(&self) -> ConnectionSpec<'_> {
        ConnectionSpec {
            url: &self.url,
            client_id: self.client_id.as_deref(),
            username: self.username.as_deref(),
            password: self.password.as_deref(),
            tls: self.tls.as_ref(),
            keep_alive: self.keep_alive.0,
            // Unacknowledged messages are tracked by the sink and published
            // again in a new session, so no broker-side state is needed.
            clean_session: true,
            max_packet_size: self.max_packet_size.0,
            reconnect: self.reconnect,
        }
    }

    fn check_outbox(&self, input: &SchemaRef, v: &mut Validator) {
        let Some(outbox) = &self.outbox else {
            return;
        };
        outbox.check(v);
        if self.qos != Qos::AtLeastOnce {
            v.error(&["qos"], "with an `outbox` the sink publishes at QoS 1")
                .help("remove `qos` or set it to 1");
        }
        if !self.batch && input.column_with_name("_id").is_some() {
            v.error(&["outbox"], "with an `outbox` each message gets an `_id` member, which clashes with the input column `_id`")
                .help("rename the `_id` column upstream");
        }
    }

    fn check_topic(&self, input: &SchemaRef, v: &mut Validator) -> Option<TopicTemplate> {
        let template = match TopicTemplate::parse(&self.topic) {
            Ok(t) => t,
            Err(e) => {
                v.error(&["topic"], e);
                return None;
            }
        };
        let unknown = template.unknown_fields(input);
        if !unknown.is_empty() {
            let columns: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
            v.error(
                &["topic"],
                format!(
                    "placeholder `{{{}}}` names no input column",
                    unknown.join("}`, `{")
                ),
            )
            .help(format!("input columns: {}", columns.join(", ")));
        }
        if self.batch && !template.is_static() {
            v.error(&["topic"], "with `batch: true` one message carries many rows, so the topic cannot have placeholders")
                .help("use a fixed topic, or `batch: false` for one message per row");
        }
        Some(template)
    }
}

impl SinkConfig for MqttSinkConfig {
    const TYPE: &'static str = "mqtt";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] = crate::names::METRICS;
    type Component = MqttSink;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, input: &SchemaRef, v: &mut Validator) {
        self.connection().check(v);
        self.check_topic(input, v);
        self.check_outbox(input, v);
    }

    fn build(&self, cx: &BuildCx) -> Result<MqttSink, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        self.connection().check(&mut v);
        let topic = self.check_topic(&input, &mut v);
        self.check_outbox(&input, &mut v);
        let topic = match topic {
            Some(t) if !v.has_errors() => t,
            _ => {
                return Err(v.into_build_error(&cx.id));
            }
        };
        let (mut options, _) = self
            .connection()
            .mqtt_options(&default_client_id(&cx.pipeline, &cx.id))?;
        options.set_inflight(self.max_inflight.get());
        let store = match &self.outbox {
            Some(cfg) => Some(
                Store::open(cfg, &cx.pipeline, &cx.id, &cx.metrics)
                    .map_err(|e| BuildError::msg(format!("outbox: {e}")))?,
            ),
            None => None,
        };
        let mut sink = MqttSink {
            publisher_cfg: PublisherConfig {
                options,
                qos: self.qos.to_rumqttc(),
                retain: self.retain,
                window: usize::from(self.max_inflight.get()),
                reconnect: self.reconnect,
                pipeline: cx.pipeline.clone(),
                id: cx.id.clone(),
                acked: None,
            },
            metrics: cx.metrics.clone(),
            topic,
            batch: self.batch,
            retain: self.retain,
            max_packet_size: usize::try_from(self.max_packet_size.0).unwrap_or(usize::MAX),
            publisher: None,
            store,
            forwarder: None,
        };
        // Entries left from a previous run are sent without waiting for the
        // first write when a runtime is already running.
        if tokio::runtime::Handle::try_current().is_ok() {
            sink.ensure_forwarder();
        }
        Ok(sink)
    }
}

/// The running `mqtt` sink.
#[derive(Debug)]
pub struct MqttSink {
    publisher_cfg: PublisherConfig,
    metrics: ComponentMetrics,
    topic: TopicTemplate,
    batch: bool,
    max_packet_size: usize,
    retain: bool,
    /// Spawned on the first write, because `build` runs outside the runtime.
    publisher: Option<Publisher>,
    /// The outbox, when configured: `write` commits to it and the forwarder
    /// publishes from it.
    store: Option<Store>,
    /// Spawned at build inside a runtime, else on the first write.
    forwarder: Option<Forwarder>,
}

/// Messages of one batch, and the rows that could not become messages.
#[derive(Debug, Default)]
struct Encoded {
    messages: Vec<(String, Bytes)>,
    too_large: u64,
    invalid_topic: u64,
}

impl MqttSink {
    fn ensure_forwarder(&mut self) {
        if let (Some(store), None) = (&self.store, &self.forwarder) {
            self.forwarder = Some(Forwarder::spawn(
                store.clone(),
                self.publisher_cfg.clone(),
                &self.metrics,
            ));
        }
    }

    /// Whether a PUBLISH of `payload` to `topic` stays within the packet limit
    /// (remaining length: topic length prefix, topic, packet id, payload).
    fn fits(&self, topic: &str, payload: usize) -> bool {
        4 + topic.len() + payload <= self.max_packet_size
    }

    fn encode(&self, batch: &RecordBatch) -> Result<Encoded, ComponentError> {
        let mut enc = Encoded::default();
        if batch.num_rows() == 0 {
            return Ok(enc);
        }
        if self.batch {
            self.encode_array(batch, &self.topic.literal(), &mut enc)?;
        } else {
            self.encode_rows(batch, &mut enc)?;
        }
        Ok(enc)
    }

    fn encode_rows(&self, batch: &RecordBatch, enc: &mut Encoded) -> Result<(), ComponentError> {
        let lines = Bytes::from(to_json_lines(batch).map_err(json_error)?);
        let literal = self.topic.is_static().then(|| self.topic.literal());
        let mut renderer = self.topic.for_batch(batch).map_err(topic_error)?;
        let mut rows = 0;
        for (row, line) in split_lines(&lines).enumerate() {
            rows += 1;
            let topic = match &literal {
                Some(t) => t.clone(),
                None => renderer.render(row).map_err(topic_error)?,
            };
            if !is_topic_name(&topic) {
                enc.invalid_topic += 1;
            } else if !self.fits(&topic, line.len()) {
                enc.too_large += 1;
            } else {
                enc.messages.push((topic, lines.slice_ref(line)));
            }
        }
        if rows != batch.num_rows() {
            return Err(ComponentError::internal(
                "json_encode",
                format!("{} rows became {rows} JSON lines", batch.num_rows()),
            ));
        }
        Ok(())
    }

    /// One JSON array for the batch, halved until each part fits the packet limit.
    fn encode_array(
        &self,
        batch: &RecordBatch,
        topic: &str,
        enc: &mut Encoded,
    ) -> Result<(), ComponentError> {
        let payload = to_json_array(batch).map_err(json_error)?;
        let n = batch.num_rows();
        if self.fits(topic, payload.len()) {
            enc.messages.push((topic.to_owned(), Bytes::from(payload)));
        } else if n > 1 {
            self.encode_array(&batch.slice(0, n / 2), topic, enc)?;
            self.encode_array(&batch.slice(n / 2, n - n / 2), topic, enc)?;
        } else {
            enc.too_large += 1;
        }
        Ok(())
    }

    fn count_dropped(&self, enc: &Encoded) {
        for (reason, n) in [
            ("payload_too_large", enc.too_large),
            ("invalid_topic", enc.invalid_topic),
        ] {
            if n > 0 {
                self.metrics.discarded(reason, false, n);
                let labels = self.metrics.labels();
                error!(
                    pipeline = %labels.pipeline, component = %labels.component_id, rows = n, reason,
                    max_packet_size = self.max_packet_size, "Dropped rows that cannot be published."
                );
            }
        }
    }
}

fn json_error(e: sluice_core::arrow_schema::ArrowError) -> ComponentError {
    ComponentError::internal("json_encode", format!("encoding rows as JSON: {e}"))
}

fn topic_error(e: sluice_core::arrow_schema::ArrowError) -> ComponentError {
    ComponentError::internal("mqtt_topic", format!("filling the topic template: {e}"))
}

impl Sink for MqttSink {
    async fn write(&mut self, msg: &Msg) -> Result<(), ComponentError> {
        let enc = self.encode(msg.rows()?)?;
        self.count_dropped(&enc);
        if enc.messages.is_empty() {
            return Ok(());
        }
        if let Some(store) = &self.store {
            let store = store.clone();
            self.ensure_forwarder();
            return store.append(enc.messages, self.retain).await;
        }
        let cfg = &self.publisher_cfg;
        let metrics = &self.metrics;
        let publisher = self
            .publisher
            .get_or_insert_with(|| Publisher::spawn(cfg.clone(), metrics));
        let mut result = publisher.wait_link(LINK_WAIT).await;
        if result.is_ok() {
            for (topic, payload) in enc.messages {
                result = publisher.publish(topic, payload).await;
                if result.is_err() {
                    break;
                }
            }
        }
        if let Err(e) = &result
            && e.code == "mqtt_publisher_stopped"
        {
            self.publisher = None;
        }
        result
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        if let Some(forwarder) = self.forwarder.take() {
            forwarder.stop(FORWARDER_STOP_TIMEOUT).await;
        }
        let Some(mut publisher) = self.publisher.take() else {
            return Ok(());
        };
        match publisher.wait_acked(FLUSH_TIMEOUT).await {
            Ok(()) => {
                publisher.close(CLOSE_TIMEOUT).await;
                Ok(())
            }
            Err(pending) => {
                self.publisher = Some(publisher);
                Err(ComponentError::external(
                    "mqtt_unacked",
                    format!(
                        "{pending} messages not acknowledged by the MQTT broker within {FLUSH_TIMEOUT:?}"
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_core::arrow_array::{Float64Array, StringArray};
    use sluice_core::arrow_schema::{DataType, Field, Schema};
    use sluice_core::{ComponentKind, ComponentLabels};

    use super::*;

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("device", DataType::Utf8, false),
            Field::new("v", DataType::Float64, true),
        ]))
    }

    fn config(extra: &[(&str, serde_json::Value)]) -> MqttSinkConfig {
        let mut v = serde_json::json!({
            "inputs": ["agg"], "url": "mqtt://127.0.0.1:1883", "topic": "out/{device}",
        });
        for (k, val) in extra {
            v[*k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn problems(c: &MqttSinkConfig) -> Vec<(String, String)> {
        let mut v = Validator::new();
        c.check(&input(), &mut v);
        v.into_issues()
            .into_iter()
            .map(|i| (i.path.join("."), i.message))
            .collect()
    }

    fn sink(c: &MqttSinkConfig) -> MqttSink {
        let cx = BuildCx {
            pipeline: "p".into(),
            id: "out".into(),
            inputs: sluice_core::InputSchema::only(input()),
            metrics: ComponentMetrics::new(ComponentLabels::new(
                "p",
                "out",
                ComponentKind::Sink,
                "mqtt",
            )),
        };
        c.build(&cx).unwrap()
    }

    fn batch(devices: &[&str]) -> RecordBatch {
        let v: Vec<f64> = (0..devices.len()).map(|i| i as f64).collect();
        RecordBatch::try_new(
            input(),
            vec![
                Arc::new(StringArray::from(devices.to_vec())),
                Arc::new(Float64Array::from(v)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = config(&[]);
        assert_eq!((c.qos, c.retain, c.batch), (Qos::AtLeastOnce, false, false));
        assert_eq!(c.max_inflight.get(), 1000);
        assert_eq!(c.buffer, BufferConfig::default());
        assert!(problems(&c).is_empty());
    }

    #[test]
    fn outbox_settings_are_checked_under_the_outbox_key_and_require_qos_1() {
        let p = problems(&config(&[
            ("outbox", serde_json::json!({ "path": " " })),
            ("qos", "at_most_once".into()),
        ]));
        let paths: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        assert!(paths.contains(&"outbox.path"), "{p:?}");
        assert!(paths.contains(&"qos"), "{p:?}");
        assert!(
            problems(&config(&[(
                "outbox",
                serde_json::json!({ "path": "o.db" })
            )]))
            .is_empty()
        );
    }

    #[test]
    fn placeholders_must_name_input_columns() {
        let p = problems(&config(&[("topic", "out/{devise}/{v}".into())]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "topic");
        assert!(p[0].1.contains("`{devise}`"), "{}", p[0].1);
    }

    #[test]
    fn batch_mode_needs_a_fixed_topic() {
        let p = problems(&config(&[("batch", true.into())]));
        assert_eq!(p[0].0, "topic");
        assert!(p[0].1.contains("cannot have placeholders"));
        assert!(
            problems(&config(&[
                ("batch", true.into()),
                ("topic", "out/all".into())
            ]))
            .is_empty()
        );
    }

    #[test]
    fn encodes_one_message_per_row_to_its_topic() {
        let s = sink(&config(&[]));
        let enc = s.encode(&batch(&["a", "b/c"])).unwrap();
        let msgs: Vec<(String, String)> = enc
            .messages
            .into_iter()
            .map(|(t, p)| (t, String::from_utf8(p.to_vec()).unwrap()))
            .collect();
        assert_eq!(
            msgs,
            vec![
                ("out/a".to_owned(), r#"{"device":"a","v":0.0}"#.to_owned()),
                (
                    "out/b_c".to_owned(),
                    r#"{"device":"b/c","v":1.0}"#.to_owned()
                ),
            ]
        );
    }

    #[test]
    fn splits_batch_arrays_to_fit_the_packet_limit_and_drops_oversized_rows() {
        let s = sink(&config(&[
            ("batch", true.into()),
            ("topic", "out/all".into()),
            ("max_packet_size", "1KiB".into()),
        ]));
        let small = s.encode(&batch(&["a", "b", "c"])).unwrap();
        assert_eq!(small.messages.len(), 1);
        let long = "x".repeat(200);
        let names: Vec<&str> = vec![long.as_str(); 12];
        let split = s.encode(&batch(&names)).unwrap();
        assert!(split.messages.len() > 1);
        let rows: usize = split
            .messages
            .iter()
            .map(|(_, p)| {
                serde_json::from_slice::<Vec<serde_json::Value>>(p)
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(rows, 12);
        let huge = "x".repeat(2000);
        let dropped = s.encode(&batch(&[huge.as_str(), "ok"])).unwrap();
        assert_eq!((dropped.messages.len(), dropped.too_large), (1, 1));
    }

    #[test]
    fn rows_whose_topic_would_be_empty_are_counted_not_published() {
        let s = sink(&config(&[("topic", "{device}".into())]));
        let enc = s.encode(&batch(&["", "d"])).unwrap();
        assert_eq!(enc.invalid_topic, 1);
        assert_eq!(enc.messages[0].0, "d");
    }
}
