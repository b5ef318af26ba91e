//! What every component config provides: checks against the stream schema
//! (run by `sluice validate`) and `build`, which does all fallible start-up work.
//!
//! Config structs derive `Deserialize` with `deny_unknown_fields`; transforms and
//! sinks carry `inputs` (the DAG) and an optional `buffer` for their input edge.

use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::component::{Sink, Source, Transform};
use crate::emitter::BufferConfig;
use crate::error::BuildError;
use crate::metrics::ComponentMetrics;
use crate::validate::Validator;

/// What `build` gets from the topology.
#[derive(Debug, Clone)]
pub struct BuildCx {
    /// Pipeline name.
    pub pipeline: Arc<str>,
    /// Component id.
    pub id: Arc<str>,
    /// Schema of the input stream (transforms and sinks).
    pub input_schema: Option<SchemaRef>,
    /// Pre-registered metric handles of this component.
    pub metrics: ComponentMetrics,
}

impl BuildCx {
    /// The input schema, or a build error when the topology did not provide one.
    pub fn require_input_schema(&self) -> Result<SchemaRef, BuildError> {
        self.input_schema
            .clone()
            .ok_or_else(|| BuildError::msg(format!("component `{}` has no input schema", self.id)))
    }
}

/// Config of a source.
pub trait SourceConfig {
    /// The running component.
    type Component: Source;
    /// Reports every problem into `v` and returns the output schema when it is known.
    fn check(&self, v: &mut Validator) -> Option<SchemaRef>;
    /// Builds the component.
    fn build(&self, cx: &BuildCx) -> Result<Self::Component, BuildError>;
}

/// Config of a transform.
pub trait TransformConfig {
    /// The running component.
    type Component: Transform;
    /// Upstream component ids.
    fn inputs(&self) -> &[String];
    /// Input edge settings.
    fn buffer(&self) -> BufferConfig;
    /// Reports every problem into `v` given the input schema and returns the
    /// output schema when it is known.
    fn check(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef>;
    /// Builds the component; `cx.input_schema` is set.
    fn build(&self, cx: &BuildCx) -> Result<Self::Component, BuildError>;
}

/// Config of a sink.
pub trait SinkConfig {
    /// The running component.
    type Component: Sink;
    /// Upstream component ids.
    fn inputs(&self) -> &[String];
    /// Input edge settings.
    fn buffer(&self) -> BufferConfig;
    /// Reports every problem into `v` given the input schema.
    fn check(&self, input: &SchemaRef, v: &mut Validator);
    /// Builds the component; `cx.input_schema` is set.
    fn build(&self, cx: &BuildCx) -> Result<Self::Component, BuildError>;
}
