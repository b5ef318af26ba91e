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
#[cfg(test)]
mod tests;

pub use dispatch::{AnySink, AnySource, AnyTransform};

use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{
    BufferConfig, BuildCx, BuildError, Payload, SinkConfig, SourceConfig, TransformConfig,
    Validator,
};
use sluice_plugin_camera::CameraConfig;
use sluice_plugin_io::{ConsoleSinkConfig, FileSinkConfig};
use sluice_plugin_mqtt::{MqttSinkConfig, MqttSourceConfig};
use sluice_plugin_onnx::AnomalyConfig;
use sluice_plugin_sql::{FilterConfig, SqlConfig};
use sluice_plugin_summarize::SummarizeConfig;
use sluice_plugin_vision::{DetectConfig, FramesConfig, TrackConfig, ZonesConfig};

/// Source `type`s, for error messages.
pub const SOURCE_KINDS: &[&str] = &["mqtt", "frames", "camera"];
/// Transform `type`s, for error messages.
pub const TRANSFORM_KINDS: &[&str] = &[
    "sql",
    "filter",
    "anomaly",
    "summarize",
    "detect",
    "track",
    "zones",
];
/// Sink `type`s, for error messages.
pub const SINK_KINDS: &[&str] = &["mqtt", "file", "console"];

/// Config of any source.
#[derive(Debug, Clone)]
pub enum AnySourceConfig {
    /// `type: mqtt`
    Mqtt(MqttSourceConfig),
    /// `type: frames`
    Frames(FramesConfig),
    /// `type: camera`
    Camera(CameraConfig),
}

/// Config of any transform.
#[derive(Debug, Clone)]
pub enum AnyTransformConfig {
    /// `type: sql`
    Sql(SqlConfig),
    /// `type: filter`
    Filter(FilterConfig),
    /// `type: anomaly`
    Anomaly(AnomalyConfig),
    /// `type: summarize`
    Summarize(SummarizeConfig),
    /// `type: detect`
    Detect(DetectConfig),
    /// `type: track`
    Track(TrackConfig),
    /// `type: zones`
    Zones(ZonesConfig),
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
            Self::Frames(_) => "frames",
            Self::Camera(_) => "camera",
        }
    }

    /// Reports problems and returns the output schema when known.
    pub fn check(&self, v: &mut Validator) -> Option<SchemaRef> {
        match self {
            Self::Mqtt(c) => c.check(v),
            Self::Frames(c) => c.check(v),
            Self::Camera(c) => c.check(v),
        }
    }

    /// Builds the running source.
    pub fn build(&self, cx: &BuildCx) -> Result<AnySource, BuildError> {
        Ok(match self {
            Self::Mqtt(c) => AnySource::Mqtt(c.build(cx)?),
            Self::Frames(c) => AnySource::Frames(c.build(cx)?),
            Self::Camera(c) => AnySource::Camera(c.build(cx)?),
        })
    }
}

impl AnyTransformConfig {
    /// The `type` of the component.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Filter(_) => "filter",
            Self::Anomaly(_) => "anomaly",
            Self::Summarize(_) => "summarize",
            Self::Detect(_) => "detect",
            Self::Track(_) => "track",
            Self::Zones(_) => "zones",
        }
    }

    /// What the transform reads: rows, or camera frames (`detect`).
    pub fn input_payload(&self) -> Payload {
        match self {
            Self::Detect(_) => Payload::Frames,
            _ => Payload::Rows,
        }
    }

    /// Upstream component ids.
    pub fn inputs(&self) -> &[String] {
        match self {
            Self::Sql(c) => c.inputs(),
            Self::Filter(c) => c.inputs(),
            Self::Anomaly(c) => c.inputs(),
            Self::Summarize(c) => c.inputs(),
            Self::Detect(c) => c.inputs(),
            Self::Track(c) => c.inputs(),
            Self::Zones(c) => c.inputs(),
        }
    }

    /// Input edge settings.
    pub fn buffer(&self) -> BufferConfig {
        match self {
            Self::Sql(c) => c.buffer(),
            Self::Filter(c) => c.buffer(),
            Self::Anomaly(c) => c.buffer(),
            Self::Summarize(c) => c.buffer(),
            Self::Detect(c) => c.buffer(),
            Self::Track(c) => c.buffer(),
            Self::Zones(c) => c.buffer(),
        }
    }

    /// Reports problems given the input schema and returns the output schema.
    pub fn check(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
        match self {
            Self::Sql(c) => c.check(input, v),
            Self::Filter(c) => c.check(input, v),
            Self::Anomaly(c) => c.check(input, v),
            Self::Summarize(c) => c.check(input, v),
            Self::Detect(c) => c.check(input, v),
            Self::Track(c) => c.check(input, v),
            Self::Zones(c) => c.check(input, v),
        }
    }

    /// Builds the running transform.
    pub fn build(&self, cx: &BuildCx) -> Result<AnyTransform, BuildError> {
        Ok(match self {
            Self::Sql(c) => AnyTransform::Sql(c.build(cx)?),
            Self::Filter(c) => AnyTransform::Filter(c.build(cx)?),
            Self::Anomaly(c) => AnyTransform::Anomaly(c.build(cx)?),
            Self::Summarize(c) => AnyTransform::Summarize(c.build(cx)?),
            Self::Detect(c) => AnyTransform::Detect(c.build(cx)?),
            Self::Track(c) => AnyTransform::Track(c.build(cx)?),
            Self::Zones(c) => AnyTransform::Zones(c.build(cx)?),
        })
    }

    /// Whether the transform reads each input apart, so its inputs may
    /// differ in columns (a `sql` query joining its inputs as tables).
    pub fn reads_inputs_apart(&self) -> bool {
        match self {
            Self::Sql(c) => c.reads_inputs_apart(),
            Self::Filter(c) => c.reads_inputs_apart(),
            Self::Anomaly(c) => c.reads_inputs_apart(),
            Self::Summarize(c) => c.reads_inputs_apart(),
            Self::Detect(c) => c.reads_inputs_apart(),
            Self::Track(c) => c.reads_inputs_apart(),
            Self::Zones(c) => c.reads_inputs_apart(),
        }
    }

    /// Reports problems given the schema of every input and returns the
    /// output schema (for transforms that read their inputs apart).
    pub fn check_inputs(
        &self,
        inputs: &[sluice_core::config::InputSchema],
        v: &mut Validator,
    ) -> Option<SchemaRef> {
        match self {
            Self::Sql(c) => c.check_inputs(inputs, v),
            Self::Filter(c) => c.check_inputs(inputs, v),
            Self::Anomaly(c) => c.check_inputs(inputs, v),
            Self::Summarize(c) => c.check_inputs(inputs, v),
            Self::Detect(c) => c.check_inputs(inputs, v),
            Self::Track(c) => c.check_inputs(inputs, v),
            Self::Zones(c) => c.check_inputs(inputs, v),
        }
    }

    /// Builds the running transform given the schema of every input.
    pub fn build_inputs(
        &self,
        cx: &BuildCx,
        inputs: &[sluice_core::config::InputSchema],
    ) -> Result<AnyTransform, BuildError> {
        Ok(match self {
            Self::Sql(c) => AnyTransform::Sql(c.build_inputs(cx, inputs)?),
            Self::Filter(c) => AnyTransform::Filter(c.build_inputs(cx, inputs)?),
            Self::Anomaly(c) => AnyTransform::Anomaly(c.build_inputs(cx, inputs)?),
            Self::Summarize(c) => AnyTransform::Summarize(c.build_inputs(cx, inputs)?),
            Self::Detect(c) => AnyTransform::Detect(c.build_inputs(cx, inputs)?),
            Self::Track(c) => AnyTransform::Track(c.build_inputs(cx, inputs)?),
            Self::Zones(c) => AnyTransform::Zones(c.build_inputs(cx, inputs)?),
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
