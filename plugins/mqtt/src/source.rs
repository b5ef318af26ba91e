//! The `mqtt` source: subscribes to topics and turns JSON payloads into
//! micro-batches of the declared schema plus a `_topic` column.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::names;
use indexmap::IndexMap;
use metrics::{Counter, Gauge};
use rumqttc::MqttOptions;
use serde::Deserialize;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::schema::{
    FieldSpec, FieldType, TOPIC_COLUMN, build_schema, check_declared, schema_ref,
};
use sluice_core::{
    Backoff, BuildCx, BuildError, ByteSize, EnvString, HumanDuration, SourceConfig, Validator,
};

use crate::decode::JsonDecoder;
use crate::options::{
    ConnectionSpec, Qos, ReconnectConfig, TlsConfig, default_client_id, default_keep_alive,
    default_max_packet_size,
};
use crate::topic::check_filter;

/// Payload encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per message.
    #[default]
    Json,
}

/// What to do with a message that does not match the schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadData {
    /// Drop it, count it by reason and log it (rate-limited).
    #[default]
    Drop,
    /// Stop the pipeline with an error.
    Fail,
}

/// When the source acknowledges a QoS 1 message to the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Once the batch holding it has been handled downstream: written by
    /// every sink (committed to every outbox) or taken into a window. With a
    /// persistent session nothing acknowledged is lost if the gateway dies.
    #[default]
    Downstream,
    /// As soon as it is read (faster; a crash loses what is in flight).
    Receive,
}

/// Config of the `mqtt` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MqttSourceConfig {
    /// Broker URL: `mqtt://host[:port]` (default port 1883) or
    /// `mqtts://host[:port]` (TLS, default port 8883).
    pub url: EnvString,
    /// Topic filters to subscribe to; `+` and `#` wildcards allowed.
    pub topics: Vec<String>,
    /// Subscription QoS.
    #[serde(default)]
    pub qos: Qos,
    /// Payload encoding.
    #[serde(default)]
    pub format: Format,
    /// Declared fields, in column order: `name: type`, with `?` for optional.
    pub schema: IndexMap<String, FieldSpec>,
    /// The `timestamp_ms` field that carries event time, for windowing.
    #[serde(default)]
    pub event_time: Option<String>,
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
    /// A batch is emitted once it has this many rows...
    #[serde(default = "default_max_batch_rows")]
    pub max_batch_rows: NonZeroUsize,
    /// ...or this long after its first message arrived.
    #[serde(default = "default_linger")]
    pub linger: HumanDuration,
    /// Start a new session on every connection. With `false` (the default)
    /// the broker keeps the subscription and queues QoS 1 messages while the
    /// gateway is away, and redelivers those it did not acknowledge.
    #[serde(default = "default_clean_session")]
    pub clean_session: bool,
    /// When QoS 1 messages are acknowledged to the broker.
    #[serde(default)]
    pub ack: AckMode,
    /// What to do with a message that does not match the schema.
    #[serde(default)]
    pub on_bad_data: OnBadData,
    /// Backoff between connection attempts.
    #[serde(default)]
    pub reconnect: ReconnectConfig,
    /// Largest accepted MQTT packet.
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: ByteSize,
}

fn default_max_batch_rows() -> NonZeroUsize {
    NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN)
}

fn default_linger() -> HumanDuration {
    HumanDuration(Duration::from_millis(50))
}

fn default_clean_session() -> bool {
    false
}

impl MqttSourceConfig {
    fn connection(&self) -> ConnectionSpec<'_> {
        ConnectionSpec {
            url: &self.url,
            client_id: self.client_id.as_deref(),
            username: self.username.as_deref(),
            password: self.password.as_deref(),
            tls: self.tls.as_ref(),
            keep_alive: self.keep_alive.0,
            clean_session: self.clean_session,
            max_packet_size: self.max_packet_size.0,
            reconnect: self.reconnect,
        }
    }

    /// Checks the schema keys; returns the output schema when they are valid.
    fn check_schema(&self, v: &mut Validator) -> Option<SchemaRef> {
        let ok = check_declared(
            self.schema.iter().map(|(n, s)| (n.as_str(), *s)),
            self.event_time.as_deref(),
            &[(TOPIC_COLUMN, "for the topic")],
            v,
        );
        ok.then(|| schema_ref(self.output_schema()))
    }

    fn output_schema(&self) -> sluice_core::arrow_schema::Schema {
        let topic = FieldSpec {
            ty: FieldType::Utf8,
            nullable: false,
        };
        let fields = self
            .schema
            .iter()
            .map(|(n, s)| (n.as_str(), *s))
            .chain([(TOPIC_COLUMN, topic)]);
        build_schema(fields, self.event_time.as_deref())
    }
}

impl SourceConfig for MqttSourceConfig {
    const TYPE: &'static str = "mqtt";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] = crate::names::METRICS;
    type Component = MqttSource;

    fn check(&self, v: &mut Validator) -> Option<SchemaRef> {
        self.connection().check(v);
        if self.topics.is_empty() {
            v.error(&["topics"], "at least one topic filter is required");
        }
        for (i, t) in self.topics.iter().enumerate() {
            if let Err(e) = check_filter(t) {
                v.error(&["topics", &i.to_string()], e);
            }
        }
        self.check_schema(v)
    }

    fn build(&self, cx: &BuildCx) -> Result<MqttSource, BuildError> {
        let mut v = Validator::new();
        let schema = self.check(&mut v);
        let schema = match schema {
            Some(s) if !v.has_errors() => s,
            _ => {
                return Err(v.into_build_error(&cx.id));
            }
        };
        let (mut options, _) = self
            .connection()
            .mqtt_options(&default_client_id(&cx.pipeline, &cx.id))?;
        let ack = match self.qos {
            Qos::AtMostOnce => AckMode::Receive,
            _ => self.ack,
        };
        options.set_manual_acks(ack == AckMode::Downstream);
        let max_batch_rows = self.max_batch_rows.get();
        let fields = self.schema.iter().map(|(n, s)| (n.clone(), *s)).collect();
        Ok(MqttSource {
            options,
            filters: self.topics.clone(),
            qos: self.qos.to_rumqttc(),
            decoder: JsonDecoder::new(fields, schema, max_batch_rows.min(4096)),
            max_batch_rows,
            linger: self.linger.0,
            on_bad_data: self.on_bad_data,
            ack,
            backoff: self.reconnect.backoff(),
            link_up: cx.metrics.gauge(names::LINK_UP),
            connection_errors: cx.metrics.counter(names::MQTT_CONNECTION_ERRORS_TOTAL),
            reconnects: cx.metrics.counter(names::MQTT_RECONNECTS_TOTAL),
        })
    }
}

/// The running `mqtt` source.
#[derive(Debug)]
pub struct MqttSource {
    options: MqttOptions,
    filters: Vec<String>,
    qos: rumqttc::QoS,
    decoder: JsonDecoder,
    max_batch_rows: usize,
    linger: Duration,
    on_bad_data: OnBadData,
    ack: AckMode,
    backoff: Backoff,
    link_up: Gauge,
    connection_errors: Counter,
    reconnects: Counter,
}

mod acks;
mod run;

#[cfg(test)]
mod tests {
    use sluice_core::schema::{TIMESTAMP_MS, event_time_column};

    use super::*;

    fn config(extra: &[(&str, serde_json::Value)]) -> MqttSourceConfig {
        let mut v = serde_json::json!({
            "url": "mqtt://127.0.0.1:1883",
            "topics": ["factory/+/telemetry"],
            "schema": { "device": "utf8", "ts": "timestamp_ms", "v": "float64?" },
        });
        for (k, val) in extra {
            v[*k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn issues(c: &MqttSourceConfig) -> (Option<SchemaRef>, Vec<(String, String)>) {
        let mut v = Validator::new();
        let s = c.check(&mut v);
        let issues = v
            .into_issues()
            .into_iter()
            .map(|i| (i.path.join("."), i.message))
            .collect();
        (s, issues)
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = config(&[]);
        assert_eq!(c.qos, Qos::AtLeastOnce);
        assert_eq!(c.format, Format::Json);
        assert_eq!(c.max_batch_rows.get(), 1024);
        assert_eq!(c.linger.0, Duration::from_millis(50));
        assert_eq!(c.keep_alive.0, Duration::from_secs(30));
        assert!(!c.clean_session);
        assert_eq!(c.ack, AckMode::Downstream);
        assert_eq!(c.on_bad_data, OnBadData::Drop);
        assert_eq!(c.reconnect, ReconnectConfig::default());
    }

    #[test]
    fn output_schema_is_declared_fields_in_order_then_topic_with_event_time() {
        let c = config(&[("event_time", "ts".into())]);
        let (schema, problems) = issues(&c);
        assert!(problems.is_empty(), "{problems:?}");
        let schema = schema.unwrap();
        let cols: Vec<(&str, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.is_nullable()))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("device", false),
                ("ts", false),
                ("v", true),
                ("_topic", false)
            ]
        );
        assert_eq!(schema.field(1).data_type(), &TIMESTAMP_MS);
        assert_eq!(event_time_column(&schema), Some("ts"));
    }

    #[test]
    fn schema_keeps_the_declared_field_order() {
        let text =
            r#"{"url":"mqtt://h","topics":["a"],"schema":{"z":"utf8","a":"int64","m":"bool"}}"#;
        let c: MqttSourceConfig = serde_json::from_str(text).unwrap();
        let (schema, _) = issues(&c);
        let names: Vec<String> = schema
            .unwrap()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, vec!["z", "a", "m", "_topic"]);
    }

    #[test]
    fn event_time_must_name_a_required_timestamp_field() {
        for (col, msg) in [
            ("nope", "not a field"),
            ("device", "expected `timestamp_ms`"),
        ] {
            let (schema, problems) = issues(&config(&[("event_time", col.into())]));
            assert!(schema.is_none());
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].0, "event_time");
            assert!(problems[0].1.contains(msg), "{}", problems[0].1);
        }
        let c = config(&[
            ("schema", serde_json::json!({"ts": "timestamp_ms?"})),
            ("event_time", "ts".into()),
        ]);
        assert!(issues(&c).1[0].1.contains("must not be optional"));
    }

    #[test]
    fn reports_every_problem_at_its_path() {
        let c = config(&[
            ("url", "http://x".into()),
            ("topics", serde_json::json!(["ok/+", "bad/#/x"])),
            ("schema", serde_json::json!({"_topic": "utf8"})),
        ]);
        let (schema, problems) = issues(&c);
        assert!(schema.is_none());
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["url", "topics.1", "schema._topic"]);
        let empty = config(&[("topics", serde_json::json!([]))]);
        assert_eq!(issues(&empty).1[0].0, "topics");
    }

    #[test]
    fn unknown_keys_and_bad_enum_values_are_rejected() {
        let mut v = serde_json::json!({
            "url": "mqtt://h", "topics": ["a"], "schema": {"x": "utf8"}, "topcs": ["a"]
        });
        let e = serde_json::from_value::<MqttSourceConfig>(v.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `topcs`"), "{e}");
        v.as_object_mut().unwrap().remove("topcs");
        v["qos"] = "twice".into();
        let e = serde_json::from_value::<MqttSourceConfig>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at_least_once"), "{e}");
    }

    #[test]
    fn build_fails_with_the_check_messages() {
        let c = config(&[("topics", serde_json::json!([]))]);
        let cx = BuildCx {
            pipeline: "p".into(),
            id: "s".into(),
            inputs: Vec::new(),
            metrics: sluice_core::ComponentMetrics::new(sluice_core::ComponentLabels::new(
                "p",
                "s",
                sluice_core::ComponentKind::Source,
                "mqtt",
            )),
        };
        let e = c.build(&cx).unwrap_err().to_string();
        assert!(e.contains("at least one topic"), "{e}");
        assert!(config(&[]).build(&cx).is_ok());
    }
}
