//! The registry of component types.
//!
//! A component's `type` selects a variant of [`AnySourceConfig`],
//! [`AnyTransformConfig`] or [`AnySinkConfig`]; the running component is the
//! matching variant of [`AnySource`], [`AnyTransform`] or [`AnySink`]. The set of
//! components is closed at compile time, so dispatch is a `match` with native
//! `async fn` in traits and no boxing. Adding a component costs one line in
//! each `match` below.
#![warn(missing_docs)]

mod de;
mod dispatch;

pub use dispatch::{AnySink, AnySource, AnyTransform};

use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{
    BufferConfig, BuildCx, BuildError, SinkConfig, SourceConfig, TransformConfig, Validator,
};
use sluice_plugin_io::{ConsoleSinkConfig, FileSinkConfig};
use sluice_plugin_mqtt::{MqttSinkConfig, MqttSourceConfig};
use sluice_plugin_sql::{FilterConfig, SqlConfig};

/// Source `type`s, for error messages.
pub const SOURCE_KINDS: &[&str] = &["mqtt"];
/// Transform `type`s, for error messages.
pub const TRANSFORM_KINDS: &[&str] = &["sql", "filter"];
/// Sink `type`s, for error messages.
pub const SINK_KINDS: &[&str] = &["mqtt", "file", "console"];

/// Config of any source.
#[derive(Debug, Clone)]
pub enum AnySourceConfig {
    /// `type: mqtt`
    Mqtt(MqttSourceConfig),
}

/// Config of any transform.
#[derive(Debug, Clone)]
pub enum AnyTransformConfig {
    /// `type: sql`
    Sql(SqlConfig),
    /// `type: filter`
    Filter(FilterConfig),
}

/// Config of any sink.
// Parsed once per component; not worth boxing the largest variant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AnySinkConfig {
    /// `type: mqtt`
    Mqtt(MqttSinkConfig),
    /// `type: file`
    File(FileSinkConfig),
    /// `type: console`
    Console(ConsoleSinkConfig),
}

impl AnySourceConfig {
    /// The `type` of the component.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Mqtt(_) => "mqtt",
        }
    }

    /// Reports problems and returns the output schema when known.
    pub fn check(&self, v: &mut Validator) -> Option<SchemaRef> {
        match self {
            Self::Mqtt(c) => c.check(v),
        }
    }

    /// Builds the running source.
    pub fn build(&self, cx: &BuildCx) -> Result<AnySource, BuildError> {
        Ok(match self {
            Self::Mqtt(c) => AnySource::Mqtt(c.build(cx)?),
        })
    }
}

impl AnyTransformConfig {
    /// The `type` of the component.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Filter(_) => "filter",
        }
    }

    /// Upstream component ids.
    pub fn inputs(&self) -> &[String] {
        match self {
            Self::Sql(c) => c.inputs(),
            Self::Filter(c) => c.inputs(),
        }
    }

    /// Input edge settings.
    pub fn buffer(&self) -> BufferConfig {
        match self {
            Self::Sql(c) => c.buffer(),
            Self::Filter(c) => c.buffer(),
        }
    }

    /// Reports problems given the input schema and returns the output schema.
    pub fn check(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
        match self {
            Self::Sql(c) => c.check(input, v),
            Self::Filter(c) => c.check(input, v),
        }
    }

    /// Builds the running transform.
    pub fn build(&self, cx: &BuildCx) -> Result<AnyTransform, BuildError> {
        Ok(match self {
            Self::Sql(c) => AnyTransform::Sql(c.build(cx)?),
            Self::Filter(c) => AnyTransform::Filter(c.build(cx)?),
        })
    }
}

impl AnySinkConfig {
    /// The `type` of the component.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Mqtt(_) => "mqtt",
            Self::File(_) => "file",
            Self::Console(_) => "console",
        }
    }

    /// Upstream component ids.
    pub fn inputs(&self) -> &[String] {
        match self {
            Self::Mqtt(c) => c.inputs(),
            Self::File(c) => c.inputs(),
            Self::Console(c) => c.inputs(),
        }
    }

    /// Input edge settings.
    pub fn buffer(&self) -> BufferConfig {
        match self {
            Self::Mqtt(c) => c.buffer(),
            Self::File(c) => c.buffer(),
            Self::Console(c) => c.buffer(),
        }
    }

    /// Reports problems given the input schema.
    pub fn check(&self, input: &SchemaRef, v: &mut Validator) {
        match self {
            Self::Mqtt(c) => c.check(input, v),
            Self::File(c) => c.check(input, v),
            Self::Console(c) => c.check(input, v),
        }
    }

    /// Builds the running sink.
    pub fn build(&self, cx: &BuildCx) -> Result<AnySink, BuildError> {
        Ok(match self {
            Self::Mqtt(c) => AnySink::Mqtt(c.build(cx)?),
            Self::File(c) => AnySink::File(c.build(cx)?),
            Self::Console(c) => AnySink::Console(c.build(cx)?),
        })
    }
}
