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
use crate::payload::Payload;
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

/// The schema of one input of a component, named by the upstream component id.
#[derive(Debug, Clone)]
pub struct InputSchema {
    /// Upstream component id, as listed in `inputs`.
    pub id: Arc<str>,
    /// Schema of the upstream component's output.
    pub schema: SchemaRef,
}

/// Config of a source.
pub trait SourceConfig {
    /// The `type` that selects it in a pipeline file.
    const TYPE: &'static str;
    /// The running component.
    type Component: Source;
    /// Reports every problem into `v` and returns the output schema when it is known.
    fn check(&self, v: &mut Validator) -> Option<SchemaRef>;
    /// Builds the component.
    fn build(&self, cx: &BuildCx) -> Result<Self::Component, BuildError>;
}

/// Config of a transform.
pub trait TransformConfig {
    /// The `type` that selects it in a pipeline file.
    const TYPE: &'static str;
    /// What it reads: rows (the default) or camera frames.
    const INPUT: Payload = Payload::Rows;
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

    /// Whether the component reads each of its inputs as a stream of its own
    /// (e.g. a SQL query joining its inputs as tables), so the inputs may
    /// have different columns. Then [`TransformConfig::check_inputs`] and
    /// [`TransformConfig::build_inputs`] replace `check` and `build`; otherwise
    /// every input must have the same columns. Default `false`.
    fn reads_inputs_apart(&self) -> bool {
        false
    }

    /// Like `check`, with the schema of every input in `inputs` order. Called
    /// instead of `check` when [`TransformConfig::reads_inputs_apart`] holds;
    /// the default checks against the first input.
    fn check_inputs(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let first = inputs.first()?;
        self.check(&first.schema, v)
    }

    /// Like `build`, with the schema of every input in `inputs` order
    /// (`cx.input_schema` is the first). The topology always calls this; the
    /// default calls `build`.
    fn build_inputs(
        &self,
        cx: &BuildCx,
        inputs: &[InputSchema],
    ) -> Result<Self::Component, BuildError> {
        let _ = inputs;
        self.build(cx)
    }
}

/// Config of a sink.
pub trait SinkConfig {
    /// The `type` that selects it in a pipeline file.
    const TYPE: &'static str;
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
