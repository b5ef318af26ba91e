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
use crate::metrics::{ComponentMetrics, MetricDoc};
use crate::payload::Payload;
use crate::validate::Validator;

/// What `build` gets from the topology.
#[derive(Debug, Clone)]
pub struct BuildCx {
    /// Pipeline name.
    pub pipeline: Arc<str>,
    /// Component id.
    pub id: Arc<str>,
    /// The schema of every input, in `inputs` order (empty for sources).
    pub inputs: Vec<InputSchema>,
    /// Pre-registered metric handles of this component.
    pub metrics: ComponentMetrics,
}

impl BuildCx {
    /// The schema of the input stream: the first input's, which every input
    /// shares unless the transform reads its inputs apart. A build error
    /// when the topology provided none.
    pub fn require_input_schema(&self) -> Result<SchemaRef, BuildError> {
        self.inputs
            .first()
            .map(|i| i.schema.clone())
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

impl InputSchema {
    /// A single input named `input` (tests, tools).
    pub fn only(schema: SchemaRef) -> Vec<InputSchema> {
        vec![InputSchema {
            id: "input".into(),
            schema,
        }]
    }

    /// The schema of the stream of a transform that treats its inputs as
    /// one (they all have the same columns): the first input's.
    pub fn stream(inputs: &[InputSchema]) -> Option<&SchemaRef> {
        inputs.first().map(|i| &i.schema)
    }
}

/// Config of a source.
pub trait SourceConfig {
    /// The `type` that selects it in a pipeline file.
    const TYPE: &'static str;
    /// Help texts of the metrics it records beyond those every component
    /// has (registered by the catalog).
    const METRICS: &'static [MetricDoc] = &[];
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
    /// Help texts of the metrics it records beyond those every component
    /// has (registered by the catalog).
    const METRICS: &'static [MetricDoc] = &[];
    /// What it reads: rows (the default) or camera frames.
    const INPUT: Payload = Payload::Rows;
    /// The running component.
    type Component: Transform;
    /// Upstream component ids.
    fn inputs(&self) -> &[String];
    /// Input edge settings.
    fn buffer(&self) -> BufferConfig;
    /// Whether the component reads each of its inputs as a stream of its own
    /// (e.g. a SQL query joining its inputs as tables), so the inputs may
    /// have different columns; otherwise validation requires every input to
    /// have the same columns. Default `false`.
    fn reads_inputs_apart(&self) -> bool {
        false
    }
    /// Reports every problem into `v` given the schema of every input (in
    /// `inputs` order) and returns the output schema when it is known.
    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef>;
    /// Builds the component; `cx.inputs` holds the schema of every input.
    fn build(&self, cx: &BuildCx) -> Result<Self::Component, BuildError>;
}

/// Config of a sink.
pub trait SinkConfig {
    /// The `type` that selects it in a pipeline file.
    const TYPE: &'static str;
    /// Help texts of the metrics it records beyond those every component
    /// has (registered by the catalog).
    const METRICS: &'static [MetricDoc] = &[];
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
