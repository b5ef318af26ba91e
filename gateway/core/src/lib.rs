//! Core types of the Sluice gateway: the message that flows on every edge, the
//! three component roles, errors, metrics and the small value types that
//! pipeline configs share.
//!
//! A pipeline is a DAG of components. Sources own their I/O and run a loop until
//! shutdown; transforms and sinks are event handlers whose loop is owned by the
//! topology:
//!
//! ```no_run
//! use sluice_core::{Emitter, Msg, Transform, ComponentError};
//!
//! /// Passes every batch through unchanged.
//! struct Identity;
//!
//! impl Transform for Identity {
//!     async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
//!         out.emit(msg.into_rows()?).await
//!     }
//! }
//! ```
//!
//! `Emitter::emit` is the only way to send downstream: it counts what was sent
//! and waits for channel capacity, which is where backpressure happens.
#![warn(missing_docs)]

pub mod ack;
pub mod backoff;
pub mod blocking;
pub mod broker;
pub mod catalog;
mod catalog_table;
pub mod clock;
pub mod component;
pub mod config;
pub mod emitter;
pub mod env;
pub mod error;
pub mod frame;
pub mod health;
pub mod json;
pub mod latest;
pub mod metrics;
pub mod msg;
pub mod payload;
pub mod schema;
pub mod units;
pub mod validate;

pub use ack::{Ack, AckTracker, Delivery, Settled};
pub use backoff::Backoff;
pub use blocking::blocking;
pub use catalog::{Catalog, SinkEntry, SourceEntry, TransformEntry};
pub use clock::{LogLimiter, now_ms};
pub use component::{Sink, Source, SourceCx, Transform};
pub use config::{BuildCx, InputSchema, SinkConfig, SourceConfig, TransformConfig};
pub use emitter::{BufferConfig, Emitter, Output, WhenFull};
pub use env::EnvString;
pub use error::{BuildError, ComponentError, ErrorKind, Retry};
pub use frame::{Frame, FrameEncoding};
pub use health::ReadyFlag;
pub use latest::LatestQueue;
pub use metrics::{ComponentKind, ComponentLabels, ComponentMetrics, EdgeMetrics, InputMetrics};
pub use msg::Msg;
pub use payload::{Payload, frame_stream_schema};
pub use units::{ByteSize, HumanDuration};
pub use validate::Validator;

/// Arrow types re-exported so plugins agree on one version.
pub use arrow_array;
pub use arrow_schema;
pub use bytes;

/// What [`catalog!`] expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use tokio::time::Instant;

    use serde::de::{self, MapAccess};

    /// Reads the leading `type` key of a component map.
    pub fn read_type<'de, A: MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
        match map.next_key::<String>()?.as_deref() {
            Some("type") => map.next_value(),
            Some(k) => Err(de::Error::custom(format!(
                "`type` must be the first key, found `{k}`"
            ))),
            None => Err(de::Error::missing_field("type")),
        }
    }
}
