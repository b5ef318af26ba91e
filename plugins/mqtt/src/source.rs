//! The `mqtt` source: subscribes to topics and turns JSON payloads into
//! micro-batches of the declared schema plus a `_topic` column.

use std::num::NonZeroUsize;
use std::time::Duration;

use indexmap::IndexMap;
use metrics::{Counter, Gauge};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet};
use rumqttc::{SubscribeFilter, SubscribeReasonCode};
use serde::Deserialize;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::metrics::names;
use sluice_core::schema::{FieldSpec, FieldType, TOPIC_COLUMN, build_schema, schema_ref};
use sluice_core::{
    BuildCx, BuildError, ByteSize, ComponentError, EnvString, HumanDuration, Source, SourceConfig,
    SourceCx, Validator,
};
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{error, info, warn};

use crate::decode::JsonDecoder;
use crate::droplog::Drops;
use crate::options::{
    Backoff, ConnectionSpec, Qos, ReconnectConfig, TlsConfig, default_client_id,
    default_keep_alive, default_max_packet_size, network_options,
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
    /// Start a new session on every connection. With `false` the broker keeps
    /// the subscription and queues QoS 1/2 messages while the gateway is away.
    #[serde(default = "default_clean_session")]
    pub clean_session: bool,
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
    true
}

/// How long shutdown waits for the DISCONNECT to be written.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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
        let mut ok = true;
        if self.schema.is_empty() {
            v.error(&["schema"], "schema must declare at least one field")
                .help("e.g. `schema: { device: utf8, ts: timestamp_ms, value: float64 }`");
            ok = false;
        }
        for name in self.schema.keys() {
            if name == TOPIC_COLUMN {
                v.error(
                    &["schema", name],
                    format!("`{TOPIC_COLUMN}` is reserved for the topic"),
                )
                .help("the source adds it as the last column; rename this field");
                ok = false;
            } else if name.is_empty() {
                v.error(&["schema"], "field names must not be empty");
                ok = false;
            }
        }
        if let Some(col) = &self.event_time {
            match self.schema.get(col) {
                None => {
                    v.error(
                        &["event_time"],
                        format!("`{col}` is not a field of `schema`"),
                    );
                    ok = false;
                }
                Some(spec) if spec.ty != FieldType::TimestampMs => {
                    v.error(
                        &["event_time"],
                        format!("event-time field `{col}` is `{spec}`, expected `timestamp_ms`"),
                    );
                    ok = false;
                }
                Some(spec) if spec.nullable => {
                    v.error(
                        &["event_time"],
                        format!("event-time field `{col}` must not be optional"),
                    )
                    .help(format!("declare it as `{col}: timestamp_ms`"));
                    ok = false;
                }
                Some(_) => {}
            }
        }
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
                let msgs: Vec<String> = v.into_issues().into_iter().map(|i| i.message).collect();
                return Err(BuildError::msg(msgs.join("; ")));
            }
        };
        let (options, _) = self
            .connection()
            .mqtt_options(&default_client_id(&cx.pipeline, &cx.id))?;
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
            backoff: Backoff::new(self.reconnect),
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
    backoff: Backoff,
    link_up: Gauge,
    connection_errors: Counter,
    reconnects: Counter,
}

/// Connection and batch state of one run.
struct Run {
    src: MqttSource,
    client: AsyncClient,
    /// A connection attempt failed or the link dropped since the last ConnAck.
    had_error: bool,
    connected: bool,
    /// The broker acknowledged our subscriptions in the current session.
    subscribed: bool,
    batch_started: Option<Instant>,
    batch_bytes: usize,
    drops: Drops,
}

impl Source for MqttSource {
    async fn run(self, mut cx: SourceCx) -> Result<(), ComponentError> {
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 16);
        eventloop.set_network_options(network_options());
        let mut run = Run {
            src: self,
            client,
            had_error: false,
            connected: false,
            subscribed: false,
            batch_started: None,
            batch_bytes: 0,
            drops: Drops::default(),
        };
        let result = run.main_loop(&mut eventloop, &mut cx).await;
        let result = match result {
            Ok(()) => run.shutdown(&mut eventloop, &mut cx).await,
            Err(e) => Err(e),
        };
        cx.ready.set(false);
        run.src.link_up.set(0.0);
        result
    }
}

impl Run {
    async fn main_loop(
        &mut self,
        el: &mut EventLoop,
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        // Both futures live across iterations: re-creating them per message
        // would register a waiter and a timer for every message.
        let shutdown = cx.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let linger = sleep(Duration::ZERO);
        tokio::pin!(linger);
        let mut linger_armed = false;
        loop {
            match self.batch_started {
                Some(start) if !linger_armed => {
                    linger.as_mut().reset(start + self.src.linger);
                    linger_armed = true;
                }
                None => linger_armed = false,
                Some(_) => {}
            }
            tokio::select! {
                biased;
                () = &mut cancelled => return Ok(()),
                () = &mut linger, if linger_armed => {
                    linger_armed = false;
                    self.flush(cx).await?;
                }
                event = el.poll() => match event {
                    Ok(Event::Incoming(packet)) => self.on_packet(packet, cx).await?,
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        self.on_connection_error(&e, cx);
                        // Rows already received must not wait for the link.
                        self.flush(cx).await?;
                        let delay = self.src.backoff.next_delay();
                        tokio::select! {
                            () = &mut cancelled => return Ok(()),
                            () = sleep(delay) => {}
                        }
                    }
                },
            }
        }
    }

    async fn on_packet(&mut self, packet: Packet, cx: &mut SourceCx) -> Result<(), ComponentError> {
        match packet {
            Packet::Publish(p) => self.on_message(&p.topic, &p.payload, cx).await,
            Packet::ConnAck(ack) => {
                if self.had_error {
                    self.src.reconnects.increment(1);
                }
                self.had_error = false;
                self.connected = true;
                self.src.backoff.reset();
                self.src.link_up.set(1.0);
                info!(pipeline = %cx.pipeline, component = %cx.id, session_present = ack.session_present, "Connected to MQTT broker.");
                if ack.session_present && self.subscribed {
                    cx.ready.set(true);
                    return Ok(());
                }
                self.subscribed = false;
                let filters = self
                    .src
                    .filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), self.src.qos));
                self.client.try_subscribe_many(filters).map_err(|e| {
                    ComponentError::internal("mqtt_subscribe", format!("queueing SUBSCRIBE: {e}"))
                })
            }
            Packet::SubAck(ack) => {
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(&self.src.filters)
                    .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                    .map(|(_, f)| f.as_str())
                    .collect();
                if !refused.is_empty() {
                    let msg = format!("broker refused subscription to {refused:?} (check its ACL)");
                    error!(pipeline = %cx.pipeline, component = %cx.id, topics = ?refused, "MQTT subscription refused.");
                    return Err(ComponentError::user("mqtt_subscribe_refused", msg));
                }
                self.subscribed = true;
                cx.ready.set(true);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        let now = Instant::now();
        self.batch_started.get_or_insert(now);
        self.batch_bytes += payload.len();
        match self.src.decoder.decode(payload, topic) {
            Ok(()) => {
                if self.src.decoder.rows() >= self.src.max_batch_rows {
                    self.flush(cx).await?;
                }
            }
            Err(reason) => {
                if let Some(suppressed) = self.drops.record(reason, now) {
                    warn!(
                        pipeline = %cx.pipeline, component = %cx.id, topic, reason = reason.as_str(),
                        suppressed, "Dropped MQTT message that does not match the schema."
                    );
                }
                if self.src.on_bad_data == OnBadData::Fail {
                    self.flush(cx).await?;
                    return Err(ComponentError::user(
                        "bad_data",
                        format!("message on topic `{topic}` dropped: {reason} (on_bad_data: fail)"),
                    ));
                }
                // Drop bookkeeping is bounded like rows are.
                if self.drops.total() >= self.src.max_batch_rows as u64 {
                    self.flush(cx).await?;
                }
            }
        }
        Ok(())
    }

    /// Emits the rows received since the last flush and counts what was
    /// received and dropped. While `emit` waits for downstream room, the event
    /// loop is not polled: the broker holds further messages (backpressure).
    async fn flush(&mut self, cx: &mut SourceCx) -> Result<(), ComponentError> {
        self.batch_started = None;
        let rows = self.src.decoder.rows();
        if rows == 0 && !self.drops.any() {
            return Ok(());
        }
        let dropped = self.drops.total();
        let metrics = cx.out.metrics();
        metrics.received(
            rows + dropped as usize,
            std::mem::take(&mut self.batch_bytes),
        );
        for (reason, n) in self.drops.take_counts() {
            metrics.discarded(reason.as_str(), false, n);
        }
        let batch =
            self.src.decoder.finish().map_err(|e| {
                ComponentError::internal("mqtt_batch", format!("building batch: {e}"))
            })?;
        cx.out.emit(batch).await
    }

    fn on_connection_error(&mut self, e: &ConnectionError, cx: &SourceCx) {
        self.src.connection_errors.increment(1);
        let was_connected = std::mem::replace(&mut self.connected, false);
        self.had_error = true;
        cx.ready.set(false);
        self.src.link_up.set(0.0);
        if let ConnectionError::ConnectionRefused(code) = e {
            error!(pipeline = %cx.pipeline, component = %cx.id, code = ?code, "MQTT broker refused the connection.");
        } else if was_connected {
            warn!(pipeline = %cx.pipeline, component = %cx.id, error = %e, "Lost connection to MQTT broker.");
        } else {
            warn!(pipeline = %cx.pipeline, component = %cx.id, error = %e, "Cannot connect to MQTT broker.");
        }
    }

    /// Flushes the partial batch and disconnects. Messages that arrive before
    /// the DISCONNECT is written were already acknowledged to the broker, so
    /// they are decoded and emitted too.
    async fn shutdown(
        &mut self,
        el: &mut EventLoop,
        cx: &mut SourceCx,
    ) -> Result<(), ComponentError> {
        if self.connected && self.client.try_disconnect().is_ok() {
            let deadline = Instant::now() + DISCONNECT_TIMEOUT;
            loop {
                match timeout_at(deadline, el.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        self.on_message(&p.topic, &p.payload, cx).await?;
                    }
                    Ok(Ok(_)) => {}
                }
            }
        }
        self.flush(cx).await
    }
}

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
        assert!(c.clean_session);
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
            input_schema: None,
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
