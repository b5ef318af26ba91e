//! MQTT source and sink.
//!
//! - [`MqttSourceConfig`] (`type: mqtt` under `sources`) subscribes to topic
//!   filters and decodes JSON payloads into micro-batches of a declared schema
//!   plus a `_topic` column.
//! - [`MqttSinkConfig`] (`type: mqtt` under `sinks`) publishes rows as JSON,
//!   one message per row to a templated topic, or one array per batch. With
//!   `outbox`, rows are committed to a durable SQLite outbox before `write`
//!   returns and a forwarder publishes them at QoS 1, deleting each entry
//!   after its PUBACK.
//!
//! Both reconnect on their own with jittered exponential backoff and report
//! `sluice_link_up`, `sluice_mqtt_connection_errors_total` and
//! `sluice_mqtt_reconnects_total`. See the crate's README for the keys, drop
//! reasons and delivery guarantees.
#![warn(missing_docs)]

pub mod decode;
mod droplog;
mod durable;
mod forward;
pub mod names;
mod options;
mod publisher;
mod sink;
mod source;
mod topic;

pub use decode::{DropReason, JsonDecoder};
pub use options::{Qos, ReconnectConfig, TlsConfig};
pub use sink::{MqttSink, MqttSinkConfig};
pub use source::{AckMode, Format, MqttSource, MqttSourceConfig, OnBadData};
